// The commands over a result database: `mmi run` (a sweep into it), `mmi report` (tables, Markdown and
// the HTML dashboard from it), `mmi export` (CSV/JSON), `mmi merge` (shards into one) and `mmi bench
// import` (benchmark JSON into it).
#include <cstdio>
#include <set>
#include <fstream>
#include <iostream>

#include "harness/bench_results.h"
#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/report.h"
#include "harness/run_info.h"
#include "harness/store.h"
#include "tasks/files.h"
#ifdef MMI_WITH_VIDEO
#include "harness/runner.h"
#endif

namespace mmi {
namespace {

constexpr const char* kDefaultDatabase = "results/mmi.sqlite";

void parse_shard(const std::string& text, int& index, int& count) {
  int64_t i = 0, n = 0;
  const size_t slash = text.find('/');
  if (slash == std::string::npos || !parse_int64(text.substr(0, slash), i) || !parse_int64(text.substr(slash + 1), n) ||
      n < 1 || i < 0 || i >= n)
    throw UsageError("--shard must be i/n with 0 <= i < n, got '" + text + "'");
  index = static_cast<int>(i);
  count = static_cast<int>(n);
}

void write_text(const std::string& path, const std::string& text) {
  make_directories(parent_directory(path));
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write");
}

}  // namespace

#ifdef MMI_WITH_VIDEO
int run_command(int argc, char** argv) {
  ArgParser args("run", "run a sweep (YAML) and record every sample into SQLite");
  args.option("db", "FILE", "the database (default: the sweep's `output`, results/mmi.sqlite)")
      .option("shard", "i/n", "run every n-th case starting at i (0-based), e.g. one shard per GPU", "0/1")
      .option("cache", "DIR", "generated haystacks and decoded frames", "results/cache")
      .option("html", "FILE", "write the HTML report here when the sweep ends")
      .flag("resume", "skip the samples already recorded ok (failed ones run again)")
      .flag("dry-run", "list the cases with token and time estimates; run nothing")
      .positionals("SWEEP.yaml", "the sweep (configs/quickstart.yaml documents the format)");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  const std::vector<std::string> positional = args.positional();
  if (positional.size() != 1) throw UsageError("give exactly one sweep file");
  RunOptions options;
  options.database = args.get("db");
  options.resume = args.has("resume");
  options.dry_run = args.has("dry-run");
  options.cache_dir = args.get("cache");
  options.html = args.get("html");
  parse_shard(args.get("shard"), options.shard_index, options.shard_count);
  const int64_t failed = run_sweep(load_sweep(positional[0]), options);
  if (failed > 0) std::printf("%lld samples failed: see their rows (status 'failed') for the reasons\n", (long long)failed);
  return 0;
}
#endif

int report_command(int argc, char** argv) {
  ArgParser args("report", "tables in the paper's shapes from a result database");
  args.option("db", "FILE", "the database", kDefaultDatabase)
      .option("sweep", "NAME", "only the runs of this sweep")
      .option("markdown", "FILE", "also write the tables as Markdown")
      .option("html", "FILE", "also write the self-contained HTML dashboard")
      .flag("paper", "place the published numbers (configs/paper/) beside the measurements");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!file_exists(args.get("db"))) throw std::runtime_error(args.get("db") + ": no such database (run a sweep first)");
  const ResultStore store = ResultStore::open(args.get("db"));
  const auto [runs, samples] = store.sweep_results(args.get("sweep"));
  ReportOptions options{args.get("sweep"), utc_timestamp(), {}};
  if (args.has("paper"))
    options.paper_files = {"configs/paper/table1.yaml", "configs/paper/longvila_niah.yaml", "configs/paper/speedup.yaml"};
  std::set<std::string> run_ids;
  for (const RunRecord& run : runs) run_ids.insert(run.run_id);
  std::vector<KernelBenchRecord> kernel_bench;
  for (KernelBenchRecord& c : store.kernel_bench())
    if (run_ids.count(c.run_id)) kernel_bench.push_back(std::move(c));
  const Report report = build_report(runs, samples, options, kernel_bench);
  std::printf("%s", render_console(report).c_str());
  if (args.has("markdown")) write_text(args.get("markdown"), render_markdown(report));
  if (args.has("html")) write_text(args.get("html"), render_html(report, runs, samples));
  return 0;
}

int export_command(int argc, char** argv) {
  ArgParser args("export", "every run, sample and benchmark case of a result database as CSV or JSON");
  args.option("db", "FILE", "the database", kDefaultDatabase)
      .option("format", "F", "csv or json (json: every table)", "csv")
      .option("table", "T", "with csv: samples or kernel_bench (mmi bench attention's cases)", "samples")
      .option("out", "FILE", "write here instead of standard output");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  const std::string format = args.get("format"), table = args.get("table");
  if (format != "csv" && format != "json") throw UsageError("--format must be csv or json, got '" + format + "'");
  if (table != "samples" && table != "kernel_bench") {
    throw UsageError("--table must be samples or kernel_bench, got '" + table + "'");
  }
  if (!file_exists(args.get("db"))) throw std::runtime_error(args.get("db") + ": no such database");
  const ResultStore store = ResultStore::open(args.get("db"));
  std::ofstream file;
  if (args.has("out")) {
    make_directories(parent_directory(args.get("out")));
    file.open(args.get("out"));
    if (!file) throw std::runtime_error(args.get("out") + ": cannot write");
  }
  std::ostream& out = args.has("out") ? file : std::cout;
  format == "csv" ? store.export_csv(out, table) : store.export_json(out);
  return 0;
}

int merge_command(int argc, char** argv) {
  ArgParser args("merge", "merge result databases (e.g. the shards of a sweep) into one");
  args.positionals("INTO.sqlite FROM.sqlite...", "the target database, then the databases merged into it");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  const std::vector<std::string> files = args.positional();
  if (files.size() < 2) throw UsageError("give the target database and at least one database to merge into it");
  ResultStore store = ResultStore::open(files[0]);
  for (size_t i = 1; i < files.size(); ++i) {
    const MergeCounts added = store.merge_from(files[i]);
    std::printf("%s: %lld runs, %lld samples, %lld benchmark cases added\n", files[i].c_str(), (long long)added.runs,
                (long long)added.samples, (long long)added.bench_cases);
  }
  return 0;
}

int bench_import_command(int argc, char** argv) {
  ArgParser args("bench import",
                 "record `mmi bench attention --json` files (e.g. from a GPU machine without SQLite) into a\n"
                 "result database: one run per file, one row per case");
  args.option("db", "FILE", "the database", kDefaultDatabase)
      .positionals("FILE.json...", "benchmark files, as mmi bench attention --json writes them");
  if (!args.parse(argc, argv, 3)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  const std::vector<std::string> given = args.positional();
  if (given.empty()) throw UsageError("give at least one benchmark JSON file");
  // Every file is read before anything is written; one that is not a benchmark file (results/bench/
  // also holds Google Benchmark output) is named and skipped, and the exit status says so.
  std::vector<std::string> files;
  std::vector<BenchDocument> documents;
  for (const std::string& file : given) {
    try {
      documents.push_back(read_bench_document(file));
      files.push_back(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "skipped: %s\n", e.what());
    }
  }
  ResultStore store = ResultStore::open(args.get("db"));
  std::set<std::string> known;
  for (const RunRecord& run : store.runs()) known.insert(run.run_id);
  for (size_t i = 0; i < files.size(); ++i) {
    const BenchContext& context = documents[i].context;
    RunRecord run;
    // Named by the file's own context, so importing a file twice finds its run.
    run.run_id = "bench " + context.time + " " + context.commit + " " + context.device;
    if (known.count(run.run_id)) {
      std::printf("%s: already recorded (run %s)\n", files[i].c_str(), run.run_id.c_str());
      continue;
    }
    run.started_at = context.time;
    run.sweep_name = "bench attention";
    run.git_commit = context.commit;
    run.device = context.device;
    run.torch_version = context.libtorch;
    run.sweep_yaml = bench_document(context, {})["context"].dump();
    store.begin_run(run);
    known.insert(run.run_id);
    for (KernelBenchRecord c : documents[i].cases) {
      c.run_id = run.run_id;
      c.finished_at = context.time;
      store.record(c);
    }
    std::printf("%s: %zu cases recorded (run %s)\n", files[i].c_str(), documents[i].cases.size(), run.run_id.c_str());
  }
  return files.size() == given.size() ? 0 : 1;
}

}  // namespace mmi
