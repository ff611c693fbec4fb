// mmi: the command-line front end. Dispatches to a subcommand and turns every error into one clear
// message and a non-zero exit status.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "harness/cli.h"
#include "harness/commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"ask", "answer a question about a video with Qwen2.5-VL (a model folder or random weights)", mmi::ask_command},
    {"attention", "compare attention methods on a synthetic sequence layout", mmi::attention_command},
    {"search", "offline modality-aware pattern search: a per-head table for mminference", mmi::search_command},
    {"bench", "benchmark attention methods against cuDNN SDPA on the GPU (mmi bench attention)", mmi::bench_command},
#if defined(MMI_WITH_VIDEO) && defined(MMI_WITH_STORE)
    {"run", "run a sweep (YAML: models x methods x tasks) into the SQLite result database", mmi::run_command},
#endif
#ifdef MMI_WITH_STORE
    {"report", "tables, Markdown and the HTML dashboard from a result database", mmi::report_command},
    {"export", "a result database as CSV or JSON", mmi::export_command},
    {"merge", "merge result databases (the shards of a sweep) into one", mmi::merge_command},
#endif
#ifdef MMI_WITH_VIDEO
    {"video", "probe, sample and decode videos, or generate test videos (info|frames|generate)", mmi::video_command},
    {"inspect", "render one attention head on one sample as a PNG (grid, vertical-slash, boundaries)", mmi::inspect_command},
    {"prepare", "write the model inputs of a sweep's samples to one file (e.g. to train a model on them)", mmi::prepare_command},
#endif
};

void print_help() {
  std::printf(
      "mmi: modality-aware permutation sparse attention for long-video VLM pre-fill\n\n"
      "usage: mmi <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::printf("  %-12s %s\n", c.name, c.summary);
  std::printf("\nRun 'mmi <command> --help' for the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc, argv);
    } catch (const mmi::UsageError& e) {
      std::fprintf(stderr, "mmi %s: %s\nRun 'mmi %s --help' for usage.\n", c.name, e.what(), c.name);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mmi %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "mmi: unknown command '%s'\n\n", argv[1]);
  print_help();
  return 2;
}
