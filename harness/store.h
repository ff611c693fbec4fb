// The result store: one SQLite database per sweep (or per shard), with a `runs` table (one
// RunRecord per run), a `samples` table (one SampleRecord per evaluated sample) and a `kernel_bench`
// table (one KernelBenchRecord per case of `mmi bench attention`). The only code in mmi that speaks
// SQL (SPEC.md §8, DESIGN.md "Seams"). Torch-free.
//
// Several processes may write one database at once (two shards on two GPUs): the database is in WAL
// mode and a writer waits up to 30 s for another's lock. Every sample is committed on its own, so a
// sweep killed at any point keeps every sample recorded before the kill; the runner's --resume then
// skips completed_keys(). Every error is a std::runtime_error that names the database file.
#pragma once

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness/records.h"

struct sqlite3;

namespace mmi {

// What merge_from added.
struct MergeCounts {
  int64_t runs = 0;
  int64_t samples = 0;
  int64_t bench_cases = 0;
};

class ResultStore {
 public:
  // Bumped whenever the tables change; a database written by a newer schema is refused. Version 2
  // added the kernel_bench table.
  static constexpr int kSchemaVersion = 2;

  // Opens the database at `path`, creating it (and its parent folders) when missing, and upgrading an
  // older schema in place (its rows kept). Throws when the file is not an SQLite database, not an mmi
  // result database, or of a newer schema version.
  static ResultStore open(const std::string& path);

  ResultStore(ResultStore&& other) noexcept;
  ResultStore& operator=(ResultStore&& other) noexcept;
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;
  ~ResultStore();

  const std::string& path() const { return path_; }

  // Records a run; throws if its run_id is already recorded.
  void begin_run(const RunRecord& run);
  // Records one sample in its own transaction, committed when this returns. Its run_id must have
  // been recorded by begin_run (here or in a merged database). NaN doubles are stored as NULL.
  void record(const SampleRecord& sample);
  // Records one benchmark case the same way.
  void record(const KernelBenchRecord& bench_case);

  // The case keys with at least one "ok" row: what a resumed sweep skips (failed cases are
  // retried).
  std::set<std::string> completed_keys() const;

  // Every row, in insertion order.
  std::vector<RunRecord> runs() const;
  std::vector<SampleRecord> samples() const;
  std::vector<KernelBenchRecord> kernel_bench() const;
  // For each case key, only its latest row (after a resume that retried a failure, the retry), in
  // insertion order.
  std::vector<SampleRecord> latest_samples() const;
  // The runs of one sweep ("" = every run) and the latest sample rows of those runs: what a report shows.
  std::pair<std::vector<RunRecord>, std::vector<SampleRecord>> sweep_results(const std::string& sweep_name) const;

  // Every row of `table` ("samples" or "kernel_bench") as CSV (RFC 4180: CRLF line ends, quoted
  // where needed), a header row of the column names first; NaN is an empty cell. Throws
  // std::invalid_argument for another table.
  void export_csv(std::ostream& out, const std::string& table = "samples") const;
  // {"runs": [...], "samples": [...], "kernel_bench": [...]}, one object per row keyed by column name;
  // NaN is null.
  void export_json(std::ostream& out) const;

  // Copies the runs, samples and benchmark cases of another mmi database (e.g. a shard written on
  // another machine; an older schema is read as it is) in one transaction. Runs already here (same
  // run_id) are skipped with all their rows, so merging the same database twice adds nothing the
  // second time.
  MergeCounts merge_from(const std::string& other_path);

 private:
  ResultStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace mmi
