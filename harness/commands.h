// The mmi subcommands. Each takes the full argv (argv[1] is the command name) and returns the exit
// status; errors escape as exceptions (UsageError for bad usage) and main reports them.
#pragma once

namespace mmi {

int ask_command(int argc, char** argv);
int attention_command(int argc, char** argv);
int search_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int video_command(int argc, char** argv);   // built with FFmpeg only
int prepare_command(int argc, char** argv); // built with FFmpeg and OpenCV
int inspect_command(int argc, char** argv); // built with FFmpeg and OpenCV
int run_command(int argc, char** argv);     // built with FFmpeg and SQLite
int report_command(int argc, char** argv);  // the commands below need SQLite
int export_command(int argc, char** argv);
int merge_command(int argc, char** argv);
int bench_import_command(int argc, char** argv);  // `mmi bench import`: bench JSON into a database

}  // namespace mmi
