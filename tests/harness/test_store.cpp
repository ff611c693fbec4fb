// The SQLite result store: every field round-trips (NaN as NULL, any bytes in text), resume and
// latest-row semantics, schema version checks, a sweep killed mid-way, several processes writing
// one file at once, CSV and JSON export, and merging shards.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "harness/bench_results.h"
#include "harness/store.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;
using nlohmann::json;

using mmi::testing::TempDir;
using mmi::testing::write_file;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

RunRecord make_run(const std::string& run_id) {
  RunRecord run;
  run.run_id = run_id;
  run.started_at = "2025-03-01T12:00:00Z";
  run.sweep_name = "vniah 日本語";
  run.shard = "1/2";
  run.git_commit = "5423dd7deb74";
  run.host = "gpu-host";
  run.device = "NVIDIA H100 80GB HBM3";
  run.driver = "580.65";
  run.cuda = "13.0";
  run.torch_version = "2.11.0";
  run.sweep_yaml = "name: vniah\nmethods: [dense, \"grid\"]\n";
  return run;
}

// Every field distinct and non-default; the doubles from `rng` use all 53 bits.
SampleRecord make_sample(const std::string& run_id, const std::string& case_key,
                         std::mt19937_64& rng, const std::string& status = "ok") {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  SampleRecord s;
  s.run_id = run_id;
  s.case_key = case_key;
  s.model = "qwen2.5-vl-7b";
  s.method = "vertical_slash";
  s.method_params = "vertical_slash(n_vertical=1000,n_slash=2000)";
  s.pattern_table = "configs/patterns/example.yaml";
  s.task = "vniah";
  s.sample_id = "needle-" + case_key;
  s.frames = 1 + static_cast<int64_t>(rng() % 1000);
  s.tokens = (int64_t{1} << 40) + static_cast<int64_t>(rng() % 1000);
  s.depth = uniform(rng);
  s.prediction = "Der Bär 🐻 — ünïcödé, \"quoted\"\nsecond line";
  s.target = std::string("with a NUL\0inside", 17);
  s.score = uniform(rng);
  s.vision_ms = 1e3 * uniform(rng);
  s.prefill_ms = 1e5 * uniform(rng);
  s.attention_ms = 1e-300 * uniform(rng);
  s.index_ms = 4.9e-324;  // the smallest subnormal
  s.peak_memory_gb = 1e300 * uniform(rng);
  s.density = uniform(rng);
  s.flops_ratio = uniform(rng);
  s.recall = uniform(rng);
  s.status = status;
  s.error = status == "ok" ? "" : "CUDA out of memory";
  s.finished_at = "2025-03-01T12:00:01Z";
  return s;
}

// Only the keys set; every double NaN and the other fields empty or zero.
SampleRecord bare_sample(const std::string& run_id, const std::string& case_key,
                         const std::string& status = "ok") {
  SampleRecord s;
  s.run_id = run_id;
  s.case_key = case_key;
  s.status = status;
  return s;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void require_same(const RunRecord& a, const RunRecord& b) {
  REQUIRE(a.run_id == b.run_id);
  REQUIRE(a.started_at == b.started_at);
  REQUIRE(a.sweep_name == b.sweep_name);
  REQUIRE(a.shard == b.shard);
  REQUIRE(a.git_commit == b.git_commit);
  REQUIRE(a.host == b.host);
  REQUIRE(a.device == b.device);
  REQUIRE(a.driver == b.driver);
  REQUIRE(a.cuda == b.cuda);
  REQUIRE(a.torch_version == b.torch_version);
  REQUIRE(a.sweep_yaml == b.sweep_yaml);
}

void require_same(const SampleRecord& a, const SampleRecord& b) {
  REQUIRE(a.run_id == b.run_id);
  REQUIRE(a.case_key == b.case_key);
  REQUIRE(a.model == b.model);
  REQUIRE(a.method == b.method);
  REQUIRE(a.method_params == b.method_params);
  REQUIRE(a.pattern_table == b.pattern_table);
  REQUIRE(a.task == b.task);
  REQUIRE(a.sample_id == b.sample_id);
  REQUIRE(a.frames == b.frames);
  REQUIRE(a.tokens == b.tokens);
  REQUIRE(same(a.depth, b.depth));
  REQUIRE(a.prediction == b.prediction);
  REQUIRE(a.target == b.target);
  REQUIRE(same(a.score, b.score));
  REQUIRE(same(a.vision_ms, b.vision_ms));
  REQUIRE(same(a.prefill_ms, b.prefill_ms));
  REQUIRE(same(a.attention_ms, b.attention_ms));
  REQUIRE(same(a.index_ms, b.index_ms));
  REQUIRE(same(a.peak_memory_gb, b.peak_memory_gb));
  REQUIRE(same(a.density, b.density));
  REQUIRE(same(a.flops_ratio, b.flops_ratio));
  REQUIRE(same(a.recall, b.recall));
  REQUIRE(a.status == b.status);
  REQUIRE(a.error == b.error);
  REQUIRE(a.finished_at == b.finished_at);
}

// A benchmark case with every double from `rng` (all 53 bits) and the other fields distinct.
KernelBenchRecord make_bench_case(const std::string& run_id, int64_t tokens, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  KernelBenchRecord c;
  c.run_id = run_id;
  c.method = "grid";
  c.configuration = "grid(strides=0,lines=v,local=1024) grid(stride=256,phase=3)";
  c.tokens = tokens;
  c.heads = 28;
  c.kv_heads = 4;
  c.head_dim = 128;
  c.dtype = "bf16";
  c.inputs = "structured";
  for (double* x : {&c.run_ms, &c.plan_ms, &c.estimate_ms, &c.build_ms, &c.upload_ms, &c.density,
                    &c.flops_ratio, &c.achieved_tflops, &c.effective_tflops, &c.speedup,
                    &c.speedup_with_plan, &c.peak_memory_gb}) {
    *x = 1e3 * uniform(rng);
  }
  c.finished_at = "2026-11-27T13:00:00Z";
  return c;
}

void require_same(const KernelBenchRecord& a, const KernelBenchRecord& b) {
  REQUIRE(a.run_id == b.run_id);
  REQUIRE(a.method == b.method);
  REQUIRE(a.configuration == b.configuration);
  REQUIRE(a.tokens == b.tokens);
  REQUIRE(a.heads == b.heads);
  REQUIRE(a.kv_heads == b.kv_heads);
  REQUIRE(a.head_dim == b.head_dim);
  REQUIRE(a.dtype == b.dtype);
  REQUIRE(a.inputs == b.inputs);
  REQUIRE(same(a.run_ms, b.run_ms));
  REQUIRE(same(a.plan_ms, b.plan_ms));
  REQUIRE(same(a.estimate_ms, b.estimate_ms));
  REQUIRE(same(a.build_ms, b.build_ms));
  REQUIRE(same(a.upload_ms, b.upload_ms));
  REQUIRE(same(a.density, b.density));
  REQUIRE(same(a.flops_ratio, b.flops_ratio));
  REQUIRE(same(a.achieved_tflops, b.achieved_tflops));
  REQUIRE(same(a.effective_tflops, b.effective_tflops));
  REQUIRE(same(a.speedup, b.speedup));
  REQUIRE(same(a.speedup_with_plan, b.speedup_with_plan));
  REQUIRE(same(a.peak_memory_gb, b.peak_memory_gb));
  REQUIRE(a.status == b.status);
  REQUIRE(a.error == b.error);
  REQUIRE(a.finished_at == b.finished_at);
}

std::vector<std::string> case_keys(const std::vector<SampleRecord>& samples) {
  std::vector<std::string> keys;
  for (const SampleRecord& s : samples) keys.push_back(s.case_key);
  return keys;
}

// Raw SQL on a database file, bypassing the store: the first column of the first row as text.
std::string query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  const int rc = sqlite3_step(stmt);
  std::string text;
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
    text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  REQUIRE((rc == SQLITE_ROW || rc == SQLITE_DONE));
  return text;
}

// What a database of schema version 1 (before the kernel_bench table) holds: made by this build,
// then taken back to version 1.
void make_version_1(const std::string& path, const std::string& run_id, int samples) {
  {
    ResultStore store = ResultStore::open(path);
    store.begin_run(make_run(run_id));
    for (int i = 0; i < samples; ++i) store.record(bare_sample(run_id, "case-" + std::to_string(i)));
  }
  query(path, "DROP TABLE kernel_bench");
  query(path, "PRAGMA user_version = 1");
}

// Runs `body` in a child process, which exits 0 when it returns and 1 (with the message on
// stderr) when it throws. The child never returns into Catch.
pid_t spawn(const std::function<void()>& body) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid > 0) return pid;
  int code = 0;
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child %d: %s\n", static_cast<int>(getpid()), e.what());
    code = 1;
  }
  _exit(code);
}

int wait_status(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return status;
}

void require_exit_0(pid_t pid) {
  const int status = wait_status(pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

std::string key(int i) { return "case-" + std::to_string(i); }

// What a sweep does: one row per case, "ok", skipping the cases already completed.
void sweep(ResultStore& store, const std::string& run_id, int cases,
           const std::function<void(int)>& after_each = nullptr) {
  const std::set<std::string> done = store.completed_keys();
  for (int i = 0; i < cases; ++i) {
    if (done.count(key(i))) continue;
    store.record(bare_sample(run_id, key(i)));
    if (after_each) after_each(i);
  }
}

// The rows must be case-0 .. case-(n-1), each once, in order.
void require_cases_in_order(const std::vector<SampleRecord>& samples, size_t n) {
  REQUIRE(samples.size() == n);
  for (size_t i = 0; i < n; ++i) REQUIRE(samples[i].case_key == key(static_cast<int>(i)));
}

void write_byte(int fd) {
  const char byte = 1;
  if (write(fd, &byte, 1) != 1) throw std::runtime_error("pipe write failed");
}

void read_bytes(int fd, int count) {
  char byte;
  for (int i = 0; i < count; ++i) REQUIRE(read(fd, &byte, 1) == 1);
}

// An RFC 4180 reader: CRLF ends a record, quotes enclose cells, "" is a quote inside them.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
      cell += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == ',') {
      rows.back().push_back(std::move(cell));
      cell.clear();
    } else if (!quoted && c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      rows.back().push_back(std::move(cell));
      cell.clear();
      rows.emplace_back();
      ++i;
    } else {
      cell += c;
    }
  }
  rows.pop_back();  // after the last CRLF
  return rows;
}

const std::vector<std::string> kSampleColumns = {
    "run_id",        "case_key",     "model",     "method",         "method_params",
    "pattern_table", "task",         "sample_id", "frames",         "tokens",
    "depth",         "prediction",   "target",    "score",          "vision_ms",
    "prefill_ms",    "attention_ms", "index_ms",  "peak_memory_gb", "density",
    "flops_ratio",   "recall",       "status",    "error",          "finished_at"};

}  // namespace

TEST_CASE("every field round-trips, NaN as NULL and any bytes in text", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const std::string path = dir.file("nested/folders/results.db");
  const RunRecord run = make_run("run-1");
  const SampleRecord full = make_sample("run-1", "case-full", rng);
  SampleRecord nans = bare_sample("run-1", "case-nan", "failed");
  nans.error = "OOM, at 12 GiB";
  nans.frames = -1;
  nans.tokens = std::numeric_limits<int64_t>::max();
  {
    ResultStore store = ResultStore::open(path);
    REQUIRE(store.path() == path);
    store.begin_run(run);
    store.record(full);
    store.record(nans);

    REQUIRE(store.runs().size() == 1);
    require_same(store.runs()[0], run);
    const std::vector<SampleRecord> samples = store.samples();
    REQUIRE(samples.size() == 2);
    require_same(samples[0], full);
    require_same(samples[1], nans);
  }
  REQUIRE(query(path, "SELECT typeof(score) FROM samples WHERE case_key = 'case-nan'") == "null");
  REQUIRE(query(path, "SELECT typeof(score) FROM samples WHERE case_key = 'case-full'") == "real");
  REQUIRE(query(path, "SELECT count(*) FROM samples WHERE recall IS NULL") == "1");
  REQUIRE(query(path, "PRAGMA journal_mode") == "wal");
  REQUIRE(query(path, "PRAGMA user_version") == std::to_string(ResultStore::kSchemaVersion));
}

TEST_CASE("completed keys skip only ok cases; latest samples keep each case's last row",
          "[store]") {
  TempDir dir;
  ResultStore store = ResultStore::open(dir.file("results.db"));
  store.begin_run(make_run("first"));
  store.begin_run(make_run("resumed"));
  REQUIRE(store.completed_keys().empty());
  REQUIRE(store.latest_samples().empty());

  store.record(bare_sample("first", "ok"));
  store.record(bare_sample("first", "failed", "failed"));
  store.record(bare_sample("first", "retried", "failed"));
  store.record(bare_sample("first", "ok-then-failed"));
  store.record(bare_sample("first", "failed-twice", "failed"));
  store.record(bare_sample("resumed", "retried"));
  store.record(bare_sample("resumed", "ok-then-failed", "failed"));
  store.record(bare_sample("resumed", "failed-twice", "failed"));

  REQUIRE(store.completed_keys() == std::set<std::string>{"ok", "retried", "ok-then-failed"});
  const std::vector<SampleRecord> latest = store.latest_samples();
  REQUIRE(case_keys(latest) ==
          std::vector<std::string>{"ok", "failed", "retried", "ok-then-failed", "failed-twice"});
  REQUIRE(latest[0].run_id == "first");
  REQUIRE((latest[2].run_id == "resumed" && latest[2].status == "ok"));
  REQUIRE((latest[3].run_id == "resumed" && latest[3].status == "failed"));
  REQUIRE(latest[4].run_id == "resumed");
  REQUIRE(store.samples().size() == 8);
}

TEST_CASE("a database reopens with its rows, takes more, and moves", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const std::string path = dir.file("results.db");
  const SampleRecord first = make_sample("run-1", "a", rng);
  const SampleRecord second = make_sample("run-2", "b", rng);
  {
    ResultStore store = ResultStore::open(path);
    store.begin_run(make_run("run-1"));
    store.record(first);
  }
  ResultStore reopened = ResultStore::open(path);
  REQUIRE(reopened.runs().size() == 1);
  require_same(reopened.samples().at(0), first);
  reopened.begin_run(make_run("run-2"));
  reopened.record(second);

  ResultStore moved = std::move(reopened);
  ResultStore assigned = ResultStore::open(dir.file("other.db"));
  assigned = std::move(moved);
  REQUIRE(assigned.path() == path);
  REQUIRE(assigned.runs().size() == 2);
  REQUIRE(assigned.samples().size() == 2);
  require_same(assigned.samples()[1], second);
}

TEST_CASE("open refuses newer schemas, other SQLite files and non-SQLite files", "[store]") {
  TempDir dir;
  SECTION("a newer schema version") {
    const std::string path = dir.file("newer.db");
    ResultStore::open(path).begin_run(make_run("run-1"));
    query(path, "PRAGMA user_version = 99");
    REQUIRE_THROWS_WITH(ResultStore::open(path), Contains(path) && Contains("version 99") &&
                                                     Contains("newer mmi") &&
                                                     Contains("reads mmi result schema version " +
                                                              std::to_string(ResultStore::kSchemaVersion)));
  }
  SECTION("another program's SQLite database, left untouched") {
    const std::string path = dir.file("foreign.db");
    query(path, "CREATE TABLE notes (text TEXT)");
    query(path, "PRAGMA user_version = 7");
    REQUIRE_THROWS_WITH(ResultStore::open(path), Contains(path) &&
                                                     Contains("not an mmi result database") &&
                                                     Contains("user_version 7"));
    REQUIRE(query(path, "PRAGMA journal_mode") == "delete");
  }
  SECTION("a file that is not SQLite") {
    const std::string path = dir.file("notes.txt");
    write_file(path, std::string(4096, 'x'));
    REQUIRE_THROWS_WITH(ResultStore::open(path), Contains(path) && Contains("not a database"));
  }
  SECTION("a folder or a file that cannot be created") {
    write_file(dir.file("file"), "x");
    REQUIRE_THROWS_WITH(ResultStore::open(dir.file("file/sub/results.db")),
                        Contains(dir.file("file/sub")) && Contains("cannot create the folder"));
    REQUIRE_THROWS_WITH(ResultStore::open(dir.file("file/results.db")),
                        Contains(dir.file("file/results.db")) && Contains("cannot create"));
  }
}

TEST_CASE("a duplicate run or a sample of an unknown run is an error naming the file", "[store]") {
  TempDir dir;
  const std::string path = dir.file("results.db");
  ResultStore store = ResultStore::open(path);
  store.begin_run(make_run("run-1"));
  REQUIRE_THROWS_WITH(store.begin_run(make_run("run-1")),
                      Contains(path) && Contains("run \"run-1\"") && Contains("already recorded"));
  REQUIRE_THROWS_WITH(store.record(bare_sample("run-2", "a")),
                      Contains(path) && Contains("sample \"a\" of run \"run-2\"") &&
                          Contains("not recorded by begin_run"));
  REQUIRE(store.runs().size() == 1);
  REQUIRE(store.samples().empty());
}

TEST_CASE("a sweep killed mid-way keeps every committed sample and resumes", "[store]") {
  TempDir dir;
  const std::string path = dir.file("results.db");
  constexpr int kCases = 400;
  int progress[2];
  REQUIRE(pipe(progress) == 0);
  // The child never finishes on its own: it is killed, or it exits part-way.
  const auto start_sweep = [&](const std::function<void(int)>& after_each) {
    return spawn([&] {
      close(progress[0]);
      ResultStore store = ResultStore::open(path);
      store.begin_run(make_run("killed"));
      sweep(store, "killed", kCases, after_each);
      pause();
    });
  };
  const int committed = 37;
  size_t survived = 0;

  SECTION("killed while it waits: exactly the committed rows") {
    // The child reports each committed sample on the pipe, the parent kills it after `committed`.
    const pid_t child = start_sweep([&](int i) {
      write_byte(progress[1]);
      if (i + 1 == committed) pause();
    });
    read_bytes(progress[0], committed);
    kill(child, SIGKILL);
    REQUIRE(WTERMSIG(wait_status(child)) == SIGKILL);
    survived = ResultStore::open(path).samples().size();
    REQUIRE(survived == committed);
  }
  SECTION("killed while it writes: a prefix of the cases, none torn or doubled") {
    const pid_t child = start_sweep([&](int) { write_byte(progress[1]); });
    read_bytes(progress[0], committed);
    kill(child, SIGKILL);
    REQUIRE(WTERMSIG(wait_status(child)) == SIGKILL);
    survived = ResultStore::open(path).samples().size();
    REQUIRE(survived >= committed);
  }
  SECTION("exits without closing the database") {
    const pid_t child = start_sweep([&](int i) {
      if (i + 1 == committed) _exit(0);
    });
    require_exit_0(child);
    survived = ResultStore::open(path).samples().size();
    REQUIRE(survived == committed);
  }
  close(progress[0]);
  close(progress[1]);
  REQUIRE(query(path, "PRAGMA integrity_check") == "ok");

  ResultStore store = ResultStore::open(path);
  require_cases_in_order(store.samples(), survived);
  REQUIRE(store.completed_keys().size() == survived);
  store.begin_run(make_run("resumed"));
  sweep(store, "resumed", kCases);
  const std::vector<SampleRecord> samples = store.samples();
  require_cases_in_order(samples, kCases);
  const auto rows_of = [&](const std::string& run_id) {
    return std::count_if(samples.begin(), samples.end(),
                         [&](const SampleRecord& s) { return s.run_id == run_id; });
  };
  REQUIRE(rows_of("killed") == static_cast<long>(survived));
  REQUIRE(rows_of("resumed") == static_cast<long>(kCases - survived));
}

TEST_CASE("several processes write one new database at once", "[store]") {
  TempDir dir;
  const std::string path = dir.file("shared/results.db");
  constexpr int kWriters = 3;
  constexpr int kSamplesEach = 200;
  int gate[2];
  REQUIRE(pipe(gate) == 0);
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    children.push_back(spawn([&, w] {
      // Start together: read() returns when the parent closes the gate.
      close(gate[1]);
      char byte;
      if (read(gate[0], &byte, 1) != 0) throw std::runtime_error("gate misused");
      ResultStore store = ResultStore::open(path);
      const std::string run_id = "writer-" + std::to_string(w);
      store.begin_run(make_run(run_id));
      for (int i = 0; i < kSamplesEach; ++i) {
        store.record(bare_sample(run_id, run_id + "/" + key(i)));
      }
    }));
  }
  close(gate[0]);
  close(gate[1]);
  for (pid_t child : children) require_exit_0(child);

  const ResultStore store = ResultStore::open(path);
  REQUIRE(store.runs().size() == kWriters);
  const std::vector<SampleRecord> samples = store.samples();
  REQUIRE(samples.size() == kWriters * kSamplesEach);
  REQUIRE(store.completed_keys().size() == samples.size());
  std::map<std::string, int> next_case;  // each writer's rows arrive in its own order
  for (const SampleRecord& s : samples) {
    REQUIRE(s.case_key == s.run_id + "/" + key(next_case[s.run_id]++));
  }
  for (const auto& [run_id, count] : next_case) REQUIRE(count == kSamplesEach);
}

TEST_CASE("CSV export: a header row, RFC 4180 quoting, NaN as an empty cell", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  ResultStore store = ResultStore::open(dir.file("results.db"));
  store.begin_run(make_run("run,1"));
  SampleRecord tricky = make_sample("run,1", "a,b", rng);
  tricky.prediction = "say \"hi\", then\nleave";
  tricky.target = "crlf\r\nand a lone \r";
  tricky.depth = 0.1;
  tricky.score = kNaN;
  store.record(tricky);
  store.record(bare_sample("run,1", "plain"));

  std::ostringstream out;
  store.export_csv(out);
  const std::string text = out.str();
  REQUIRE(text.find("\"say \"\"hi\"\", then\nleave\"") != std::string::npos);
  REQUIRE(text.substr(text.size() - 2) == "\r\n");
  const std::vector<std::vector<std::string>> rows = parse_csv(text);
  REQUIRE(rows.size() == 3);
  REQUIRE(rows[0] == kSampleColumns);
  const auto cell = [&](size_t row, const std::string& column) {
    const size_t index =
        std::find(kSampleColumns.begin(), kSampleColumns.end(), column) - kSampleColumns.begin();
    REQUIRE(rows[row].size() == kSampleColumns.size());
    return rows[row].at(index);
  };
  REQUIRE(cell(1, "run_id") == "run,1");
  REQUIRE(cell(1, "case_key") == "a,b");
  REQUIRE(cell(1, "prediction") == tricky.prediction);
  REQUIRE(cell(1, "target") == tricky.target);
  REQUIRE(cell(1, "frames") == std::to_string(tricky.frames));
  REQUIRE(cell(1, "depth") == "0.1");
  REQUIRE(cell(1, "score") == "");
  REQUIRE(std::stod(cell(1, "prefill_ms")) == tricky.prefill_ms);
  REQUIRE(cell(2, "case_key") == "plain");
  REQUIRE(cell(2, "recall") == "");
}

TEST_CASE("JSON export parses back; NaN is null; invalid UTF-8 does not throw", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  ResultStore store = ResultStore::open(dir.file("results.db"));
  const RunRecord run = make_run("run-1");
  store.begin_run(run);
  const SampleRecord full = make_sample("run-1", "full", rng);
  SampleRecord broken = bare_sample("run-1", "broken", "failed");
  broken.prediction = "cut mid-character \xe6\x97";
  store.record(full);
  store.record(broken);

  std::ostringstream out;
  store.export_json(out);
  const json document = json::parse(out.str());
  REQUIRE(document["runs"].size() == 1);
  REQUIRE(document["runs"][0]["sweep_name"] == run.sweep_name);
  REQUIRE(document["runs"][0]["sweep_yaml"] == run.sweep_yaml);
  REQUIRE(document["samples"].size() == 2);
  const json& first = document["samples"][0];
  REQUIRE(first.size() == kSampleColumns.size());
  REQUIRE(first["prediction"] == full.prediction);
  REQUIRE(first["target"].get<std::string>() == full.target);
  REQUIRE(first["tokens"] == full.tokens);
  REQUIRE(first["depth"].get<double>() == full.depth);
  REQUIRE(first["index_ms"].get<double>() == full.index_ms);
  REQUIRE(first["peak_memory_gb"].get<double>() == full.peak_memory_gb);
  const json& second = document["samples"][1];
  REQUIRE(second["score"].is_null());
  REQUIRE(second["status"] == "failed");
  REQUIRE(second["prediction"] == "cut mid-character \xef\xbf\xbd");
}

TEST_CASE("merge_from copies each shard's runs and samples once", "[store]") {
  TempDir dir;
  const std::string shard0 = dir.file("shard0.db");
  const std::string shard1 = dir.file("shard1.db");
  const std::string merged_path = dir.file("merged.db");
  {
    ResultStore store = ResultStore::open(shard0);
    store.begin_run(make_run("run-a"));
    for (int i = 0; i < 3; ++i) store.record(bare_sample("run-a", key(i)));
    ResultStore other = ResultStore::open(shard1);
    other.begin_run(make_run("run-b"));
    for (int i = 3; i < 5; ++i) other.record(bare_sample("run-b", key(i), "failed"));
  }
  ResultStore merged = ResultStore::open(merged_path);
  MergeCounts counts = merged.merge_from(shard0);
  REQUIRE((counts.runs == 1 && counts.samples == 3));
  counts = merged.merge_from(shard1);
  REQUIRE((counts.runs == 1 && counts.samples == 2));
  counts = merged.merge_from(shard0);
  REQUIRE((counts.runs == 0 && counts.samples == 0));
  counts = merged.merge_from(merged_path);
  REQUIRE((counts.runs == 0 && counts.samples == 0));

  REQUIRE(merged.runs().size() == 2);
  require_same(merged.runs()[1], make_run("run-b"));
  require_cases_in_order(merged.samples(), 5);
  REQUIRE(merged.completed_keys() == std::set<std::string>{key(0), key(1), key(2)});
  merged.record(bare_sample("run-b", key(5)));  // merged runs take new samples
  REQUIRE(merged.samples().size() == 6);

  SECTION("a run already present is skipped with all its samples") {
    ResultStore store = ResultStore::open(dir.file("has-run-a.db"));
    store.begin_run(make_run("run-a"));
    store.record(bare_sample("run-a", key(0)));
    counts = store.merge_from(shard0);
    REQUIRE((counts.runs == 0 && counts.samples == 0));
    REQUIRE(store.samples().size() == 1);
  }
  SECTION("a missing file, a non-SQLite file, another program's database") {
    const std::string missing = dir.file("missing.db");
    REQUIRE_THROWS_WITH(merged.merge_from(missing), Contains(missing) && Contains("no such"));
    REQUIRE_FALSE(file_exists(missing));
    const std::string text = dir.file("notes.txt");
    write_file(text, std::string(4096, 'x'));
    REQUIRE_THROWS_WITH(merged.merge_from(text), Contains(text) && Contains("not a database"));
    const std::string foreign = dir.file("foreign.db");
    query(foreign, "CREATE TABLE runs (run_id TEXT)");
    REQUIRE_THROWS_WITH(merged.merge_from(foreign),
                        Contains(foreign) && Contains("not an mmi result database"));
    REQUIRE(merged.samples().size() == 6);
    REQUIRE(merged.merge_from(shard1).samples == 0);  // still usable, nothing left attached
  }
}

TEST_CASE("benchmark cases round-trip, export and merge with their runs", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const std::string path = dir.file("bench.db");
  const KernelBenchRecord full = make_bench_case("bench-1", 131072, rng);
  KernelBenchRecord failed = failed_bench_case(1 << 20, "vertical_slash", "out of GPU memory");
  failed.run_id = "bench-1";
  {
    ResultStore store = ResultStore::open(path);
    REQUIRE_THROWS_WITH(store.record(full), Contains(path) && Contains("grid at 131072 tokens") &&
                                                Contains("was not recorded by begin_run"));
    store.begin_run(make_run("bench-1"));
    store.record(full);
    store.record(failed);
    const std::vector<KernelBenchRecord> rows = store.kernel_bench();
    REQUIRE(rows.size() == 2);
    require_same(rows[0], full);
    require_same(rows[1], failed);
    REQUIRE(store.samples().empty());

    std::ostringstream out;
    store.export_json(out);
    const json document = json::parse(out.str());
    REQUIRE(document["kernel_bench"].size() == 2);
    REQUIRE(document["kernel_bench"][0]["run_ms"].get<double>() == full.run_ms);
    REQUIRE(document["kernel_bench"][1]["run_ms"].is_null());
    REQUIRE(document["kernel_bench"][1]["error"] == failed.error);
  }
  REQUIRE(query(path, "SELECT typeof(plan_ms) FROM kernel_bench WHERE method = 'vertical_slash'") == "null");

  ResultStore merged = ResultStore::open(dir.file("merged.db"));
  MergeCounts counts = merged.merge_from(path);
  REQUIRE((counts.runs == 1 && counts.samples == 0 && counts.bench_cases == 2));
  counts = merged.merge_from(path);
  REQUIRE((counts.runs == 0 && counts.bench_cases == 0));
  REQUIRE(merged.kernel_bench().size() == 2);
  require_same(merged.kernel_bench()[0], full);

  std::ostringstream csv;
  merged.export_csv(csv, "kernel_bench");
  const auto rows = parse_csv(csv.str());
  REQUIRE(rows.size() == 3);
  REQUIRE(rows[0][0] == "run_id");
  REQUIRE(rows[0].size() == rows[1].size());
  REQUIRE(rows[2][1] == "vertical_slash");
  REQUIRE_THROWS_AS(merged.export_csv(csv, "runs"), std::invalid_argument);
}

TEST_CASE("a version 1 database is upgraded in place, its rows kept, and merges", "[store]") {
  TempDir dir;
  std::mt19937_64 rng(std::random_device{}());
  const std::string old_path = dir.file("version1.db");
  make_version_1(old_path, "old-run", 3);
  REQUIRE(query(old_path, "SELECT count(*) FROM sqlite_master WHERE name = 'kernel_bench'") == "0");

  SECTION("opening it upgrades it") {
    {
      ResultStore store = ResultStore::open(old_path);
      require_cases_in_order(store.samples(), 3);
      store.record(make_bench_case("old-run", 4096, rng));
      REQUIRE(store.kernel_bench().size() == 1);
    }
    REQUIRE(query(old_path, "PRAGMA user_version") == std::to_string(ResultStore::kSchemaVersion));
    ResultStore reopened = ResultStore::open(old_path);
    REQUIRE(reopened.kernel_bench().size() == 1);
    REQUIRE(reopened.runs().size() == 1);
  }
  SECTION("merging it reads it as it is") {
    ResultStore merged = ResultStore::open(dir.file("merged.db"));
    const MergeCounts counts = merged.merge_from(old_path);
    REQUIRE((counts.runs == 1 && counts.samples == 3 && counts.bench_cases == 0));
    REQUIRE(query(old_path, "PRAGMA user_version") == "1");  // left as it was
  }
}
