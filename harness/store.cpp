#include "harness/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tasks/files.h"

namespace mmi {
namespace {

// Stored in the SQLite header (PRAGMA application_id): tells an mmi database from any other.
constexpr int64_t kApplicationId = 0x6D6D6952;  // "mmiR"
constexpr int kBusyTimeoutMs = 30000;
constexpr int64_t kFirstSchemaVersion = 1;  // the oldest schema this build reads (and upgrades)

// ---- The fields tables: one line per column drives the DDL, INSERT, SELECT and the exporters.

enum class Kind { kText, kInteger, kReal };

template <typename Record>
struct Field {
  Field(const char* name, std::string Record::*member)
      : name(name), kind(Kind::kText), text(member) {}
  Field(const char* name, int64_t Record::*member)
      : name(name), kind(Kind::kInteger), integer(member) {}
  Field(const char* name, double Record::*member) : name(name), kind(Kind::kReal), real(member) {}

  const char* name;
  Kind kind;
  std::string Record::*text = nullptr;
  int64_t Record::*integer = nullptr;
  double Record::*real = nullptr;
};

template <typename Record>
struct Table {
  const char* name;
  const char* leading_columns;  // before the fields, e.g. a row id
  std::vector<Field<Record>> fields;
  const char* constraints;  // table constraints after the fields
};

const Table<RunRecord>& runs_table() {
  static const Table<RunRecord> table{"runs",
                                      "",
                                      {
                                          {"run_id", &RunRecord::run_id},
                                          {"started_at", &RunRecord::started_at},
                                          {"sweep_name", &RunRecord::sweep_name},
                                          {"shard", &RunRecord::shard},
                                          {"git_commit", &RunRecord::git_commit},
                                          {"host", &RunRecord::host},
                                          {"device", &RunRecord::device},
                                          {"driver", &RunRecord::driver},
                                          {"cuda", &RunRecord::cuda},
                                          {"torch_version", &RunRecord::torch_version},
                                          {"sweep_yaml", &RunRecord::sweep_yaml},
                                      },
                                      ", PRIMARY KEY (run_id)"};
  return table;
}

const Table<SampleRecord>& samples_table() {
  // AUTOINCREMENT: row ids only grow, so the largest id of a case key is its latest row.
  static const Table<SampleRecord> table{"samples",
                                         "id INTEGER PRIMARY KEY AUTOINCREMENT, ",
                                         {
                                             {"run_id", &SampleRecord::run_id},
                                             {"case_key", &SampleRecord::case_key},
                                             {"model", &SampleRecord::model},
                                             {"method", &SampleRecord::method},
                                             {"method_params", &SampleRecord::method_params},
                                             {"pattern_table", &SampleRecord::pattern_table},
                                             {"task", &SampleRecord::task},
                                             {"sample_id", &SampleRecord::sample_id},
                                             {"frames", &SampleRecord::frames},
                                             {"tokens", &SampleRecord::tokens},
                                             {"depth", &SampleRecord::depth},
                                             {"prediction", &SampleRecord::prediction},
                                             {"target", &SampleRecord::target},
                                             {"score", &SampleRecord::score},
                                             {"vision_ms", &SampleRecord::vision_ms},
                                             {"prefill_ms", &SampleRecord::prefill_ms},
                                             {"attention_ms", &SampleRecord::attention_ms},
                                             {"index_ms", &SampleRecord::index_ms},
                                             {"peak_memory_gb", &SampleRecord::peak_memory_gb},
                                             {"density", &SampleRecord::density},
                                             {"flops_ratio", &SampleRecord::flops_ratio},
                                             {"recall", &SampleRecord::recall},
                                             {"status", &SampleRecord::status},
                                             {"error", &SampleRecord::error},
                                             {"finished_at", &SampleRecord::finished_at},
                                         },
                                         ", FOREIGN KEY (run_id) REFERENCES runs (run_id)"};
  return table;
}

const Table<KernelBenchRecord>& kernel_bench_table() {
  static const Table<KernelBenchRecord> table{"kernel_bench",
                                              "id INTEGER PRIMARY KEY AUTOINCREMENT, ",
                                              {
                                                  {"run_id", &KernelBenchRecord::run_id},
                                                  {"method", &KernelBenchRecord::method},
                                                  {"configuration", &KernelBenchRecord::configuration},
                                                  {"tokens", &KernelBenchRecord::tokens},
                                                  {"heads", &KernelBenchRecord::heads},
                                                  {"kv_heads", &KernelBenchRecord::kv_heads},
                                                  {"head_dim", &KernelBenchRecord::head_dim},
                                                  {"dtype", &KernelBenchRecord::dtype},
                                                  {"inputs", &KernelBenchRecord::inputs},
                                                  {"run_ms", &KernelBenchRecord::run_ms},
                                                  {"plan_ms", &KernelBenchRecord::plan_ms},
                                                  {"estimate_ms", &KernelBenchRecord::estimate_ms},
                                                  {"build_ms", &KernelBenchRecord::build_ms},
                                                  {"upload_ms", &KernelBenchRecord::upload_ms},
                                                  {"density", &KernelBenchRecord::density},
                                                  {"flops_ratio", &KernelBenchRecord::flops_ratio},
                                                  {"achieved_tflops", &KernelBenchRecord::achieved_tflops},
                                                  {"effective_tflops", &KernelBenchRecord::effective_tflops},
                                                  {"speedup", &KernelBenchRecord::speedup},
                                                  {"speedup_with_plan", &KernelBenchRecord::speedup_with_plan},
                                                  {"peak_memory_gb", &KernelBenchRecord::peak_memory_gb},
                                                  {"status", &KernelBenchRecord::status},
                                                  {"error", &KernelBenchRecord::error},
                                                  {"finished_at", &KernelBenchRecord::finished_at},
                                              },
                                              ", FOREIGN KEY (run_id) REFERENCES runs (run_id)"};
  return table;
}

const char* sql_type(Kind kind) {
  switch (kind) {
    case Kind::kText:
      return "TEXT NOT NULL";
    case Kind::kInteger:
      return "INTEGER NOT NULL";
    case Kind::kReal:
      return "REAL";  // NULL stands for NaN
  }
  return "";
}

template <typename Record>
std::string column_list(const Table<Record>& table) {
  std::string list;
  for (const Field<Record>& field : table.fields)
    list += (list.empty() ? "" : ", ") + std::string(field.name);
  return list;
}

template <typename Record>
std::string create_table_sql(const Table<Record>& table) {
  std::string sql = std::string("CREATE TABLE ") + table.name + " (" + table.leading_columns;
  for (size_t i = 0; i < table.fields.size(); ++i) {
    sql +=
        (i ? ", " : "") + std::string(table.fields[i].name) + " " + sql_type(table.fields[i].kind);
  }
  return sql + table.constraints + ") STRICT";
}

// ---- Thin RAII over the C API; every error names the database file.

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

void exec(sqlite3* db, const std::string& path, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return;
  const std::string what = message ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  fail(path, what);
}

class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const std::string& sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      fail(path, sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  sqlite3_stmt* get() const { return stmt_; }

  // True while a row is ready, false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(path_, sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* stmt_ = nullptr;
};

int64_t query_integer(sqlite3* db, const std::string& path, const std::string& sql) {
  Statement statement(db, path, sql);
  if (!statement.step()) fail(path, "no result for " + sql);
  return sqlite3_column_int64(statement.get(), 0);
}

// By default BEGIN IMMEDIATE: it takes the write lock up front (waiting for other writers up to the
// busy timeout), so a transaction never fails half-way because another process wrote first.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path, const char* begin = "BEGIN IMMEDIATE")
      : db_(db), path_(path) {
    exec(db, path, begin);
  }
  ~Transaction() {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    exec(db_, path_, "COMMIT");
    committed_ = true;
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  bool committed_ = false;
};

// ---- Rows: C++ record <-> SQLite row, through the fields table.

template <typename Record>
void bind_row(sqlite3_stmt* stmt, const std::vector<Field<Record>>& fields, const Record& record) {
  for (size_t i = 0; i < fields.size(); ++i) {
    const Field<Record>& field = fields[i];
    const int index = static_cast<int>(i) + 1;
    switch (field.kind) {
      case Kind::kText: {
        const std::string& text = record.*field.text;
        sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
        break;
      }
      case Kind::kInteger:
        sqlite3_bind_int64(stmt, index, record.*field.integer);
        break;
      case Kind::kReal:
        if (std::isnan(record.*field.real)) {
          sqlite3_bind_null(stmt, index);
        } else {
          sqlite3_bind_double(stmt, index, record.*field.real);
        }
        break;
    }
  }
}

template <typename Record>
Record read_row(sqlite3_stmt* stmt, const std::vector<Field<Record>>& fields) {
  Record record;
  for (size_t i = 0; i < fields.size(); ++i) {
    const Field<Record>& field = fields[i];
    const int column = static_cast<int>(i);
    switch (field.kind) {
      case Kind::kText: {
        // Bytes, not a C string: a text with a NUL in it comes back whole.
        const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, column));
        record.*field.text = std::string(bytes ? bytes : "", sqlite3_column_bytes(stmt, column));
        break;
      }
      case Kind::kInteger:
        record.*field.integer = sqlite3_column_int64(stmt, column);
        break;
      case Kind::kReal:
        record.*field.real = sqlite3_column_type(stmt, column) == SQLITE_NULL
                                 ? std::numeric_limits<double>::quiet_NaN()
                                 : sqlite3_column_double(stmt, column);
        break;
    }
  }
  return record;
}

template <typename Record>
void insert_row(sqlite3* db, const std::string& path, const Table<Record>& table,
                const Record& record, const std::string& what) {
  std::string placeholders;
  for (size_t i = 0; i < table.fields.size(); ++i) placeholders += i ? ", ?" : "?";
  Statement statement(db, path,
                      std::string("INSERT INTO ") + table.name + " (" + column_list(table) +
                          ") VALUES (" + placeholders + ")");
  bind_row(statement.get(), table.fields, record);
  if (sqlite3_step(statement.get()) == SQLITE_DONE) return;
  switch (sqlite3_extended_errcode(db)) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      fail(path, "cannot record " + what + ": its run_id is already recorded");
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      fail(path, "cannot record " + what + ": its run_id was not recorded by begin_run");
    default:
      fail(path, "cannot record " + what + ": " + sqlite3_errmsg(db));
  }
}

// Every row, or those `where` selects, in insertion order.
template <typename Record>
std::vector<Record> select_rows(sqlite3* db, const std::string& path, const Table<Record>& table,
                                const std::string& where = "") {
  Statement statement(
      db, path,
      "SELECT " + column_list(table) + " FROM " + table.name + " " + where + " ORDER BY rowid");
  std::vector<Record> rows;
  while (statement.step()) rows.push_back(read_row(statement.get(), table.fields));
  return rows;
}

// ---- Connections and schema versions.

// Opens an existing database file (`name` is the path errors give). The handle is closed on error.
sqlite3* open_connection(const std::string& file, const std::string& name) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    fail(name, std::string("cannot open: ") + sqlite3_errstr(rc));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return db;
}

struct SchemaState {
  int64_t application_id = 0;
  int64_t user_version = 0;
};

// `schema` is "main" or the name of an attached database. A file that is not SQLite fails here,
// with SQLite's "file is not a database".
SchemaState read_schema_state(sqlite3* db, const std::string& path, const std::string& schema) {
  Transaction snapshot(db, path, "BEGIN");  // both values from one version of the file
  SchemaState state;
  state.application_id = query_integer(db, path, "PRAGMA " + schema + ".application_id");
  state.user_version = query_integer(db, path, "PRAGMA " + schema + ".user_version");
  snapshot.commit();
  return state;
}

std::string hex(int64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

void check_schema(const SchemaState& state, const std::string& path) {
  const std::string ours =
      "mmi result schema version " + std::to_string(ResultStore::kSchemaVersion);
  if (state.application_id != kApplicationId) {
    fail(path, "not an mmi result database (SQLite application_id " + hex(state.application_id) +
                   ", user_version " + std::to_string(state.user_version) + "; this build reads " +
                   ours + ", application_id " + hex(kApplicationId) + ")");
  }
  if (state.user_version < kFirstSchemaVersion || state.user_version > ResultStore::kSchemaVersion) {
    const bool newer = state.user_version > ResultStore::kSchemaVersion;
    fail(path, "written with mmi result schema version " + std::to_string(state.user_version) +
                   (newer ? " by a newer mmi" : "") + "; this build reads " + ours);
  }
}

// Brings an older schema (checked) up to this build's, in one transaction that first re-reads the
// version: processes opening one old database at once upgrade it once.
void upgrade_schema(sqlite3* db, const std::string& path) {
  Transaction transaction(db, path);
  const int64_t version = query_integer(db, path, "PRAGMA user_version");
  if (version >= ResultStore::kSchemaVersion) return;
  if (version < 2) exec(db, path, create_table_sql(kernel_bench_table()));
  exec(db, path, "PRAGMA user_version = " + std::to_string(ResultStore::kSchemaVersion));
  transaction.commit();
}

void create_schema(sqlite3* db, const std::string& path) {
  // WAL lets readers and one writer at a time share the file across processes, and the mode is
  // stored in the file. Set here, on a file no one else has open yet: switching a file that other
  // processes have open can fail at once with "database is locked".
  exec(db, path, "PRAGMA journal_mode = WAL");
  Transaction transaction(db, path);
  exec(db, path, "PRAGMA application_id = " + std::to_string(kApplicationId));
  exec(db, path, "PRAGMA user_version = " + std::to_string(ResultStore::kSchemaVersion));
  exec(db, path, create_table_sql(runs_table()));
  exec(db, path, create_table_sql(samples_table()));
  exec(db, path, create_table_sql(kernel_bench_table()));
  exec(db, path, "CREATE INDEX samples_case_key ON samples (case_key)");
  exec(db, path, "CREATE INDEX samples_run_id ON samples (run_id)");
  transaction.commit();
}

// A new database is built under a temporary name and then linked to `path`: processes opening the
// same new path at once (shards started together) never see a half-made database, and exactly one
// creation wins; the others find the winner's file.
void create_database(const std::string& path) {
  std::string temporary = path + ".new-XXXXXX";
  const int fd = mkstemp(temporary.data());
  if (fd < 0) fail(path, std::string("cannot create: ") + std::strerror(errno));
  fchmod(fd, 0644);  // mkstemp's 0600 would hide the results from other users
  close(fd);
  try {
    sqlite3* db = open_connection(temporary, path);
    try {
      create_schema(db, path);
    } catch (...) {
      sqlite3_close(db);
      throw;
    }
    // Closing the last connection checkpoints the WAL into the file and deletes it.
    if (sqlite3_close(db) != SQLITE_OK) fail(path, "cannot close the new database");
    if (link(temporary.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      fail(path, std::string("cannot create: ") + std::strerror(errno));
    }
  } catch (...) {
    unlink(temporary.c_str());
    throw;
  }
  unlink(temporary.c_str());
}

// ---- Exporters.

std::string format_double(double value) {
  if (std::isnan(value)) return "";
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);  // shortest round trip
  return std::string(text, result.ptr);
}

template <typename Record>
std::string cell_text(const Field<Record>& field, const Record& record) {
  switch (field.kind) {
    case Kind::kText:
      return record.*field.text;
    case Kind::kInteger:
      return std::to_string(record.*field.integer);
    case Kind::kReal:
      return format_double(record.*field.real);
  }
  return "";
}

std::string csv_quoted(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

void write_csv_row(std::ostream& out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) out << (i ? "," : "") << csv_quoted(cells[i]);
  out << "\r\n";
}

// A header row of the column names, then one row per record.
template <typename Record>
void write_csv(std::ostream& out, const Table<Record>& table, const std::vector<Record>& rows) {
  std::vector<std::string> cells;
  for (const Field<Record>& field : table.fields) cells.push_back(field.name);
  write_csv_row(out, cells);
  for (const Record& record : rows) {
    cells.clear();
    for (const Field<Record>& field : table.fields) cells.push_back(cell_text(field, record));
    write_csv_row(out, cells);
  }
}

template <typename Record>
nlohmann::ordered_json json_rows(const Table<Record>& table, const std::vector<Record>& rows) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const Record& record : rows) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (const Field<Record>& field : table.fields) {
      auto& value = object[field.name];
      switch (field.kind) {
        case Kind::kText:
          value = record.*field.text;
          break;
        case Kind::kInteger:
          value = record.*field.integer;
          break;
        case Kind::kReal:
          if (!std::isnan(record.*field.real)) value = record.*field.real;  // else stays null
          break;
      }
    }
    array.push_back(std::move(object));
  }
  return array;
}

// ATTACHes a database for the lifetime of this object.
class Attachment {
 public:
  Attachment(sqlite3* db, const std::string& path, const std::string& name) : db_(db), name_(name) {
    Statement attach(db, path, "ATTACH DATABASE ?1 AS " + name);
    sqlite3_bind_text(attach.get(), 1, path.c_str(), -1, SQLITE_STATIC);
    attach.step();
  }
  ~Attachment() {
    sqlite3_exec(db_, ("DETACH DATABASE " + name_).c_str(), nullptr, nullptr, nullptr);
  }
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

 private:
  sqlite3* db_;
  std::string name_;
};

// Copies the rows of `table` from the attached database `from` whose run is not in main.runs yet.
template <typename Record>
int64_t copy_new_rows(sqlite3* db, const std::string& path, const Table<Record>& table,
                      const std::string& from) {
  const std::string columns = column_list(table);
  exec(db, path,
       std::string("INSERT INTO main.") + table.name + " (" + columns + ") SELECT " + columns +
           " FROM " + from + "." + table.name +
           " WHERE run_id NOT IN (SELECT run_id FROM main.runs) ORDER BY rowid");
  return sqlite3_changes64(db);
}

}  // namespace

ResultStore ResultStore::open(const std::string& path) {
  make_directories(parent_directory(path));
  if (!file_exists(path)) create_database(path);
  ResultStore store(path, open_connection(path, path));
  // Nothing is written before the check: a file that is not ours is left as it was.
  const SchemaState state = read_schema_state(store.db_, path, "main");
  check_schema(state, path);
  if (state.user_version < kSchemaVersion) upgrade_schema(store.db_, path);
  // With WAL, synchronous=NORMAL still keeps every commit through a killed process (only a power
  // loss may drop the last ones), and commits need no fsync.
  exec(store.db_, path, "PRAGMA synchronous = NORMAL");
  exec(store.db_, path, "PRAGMA foreign_keys = ON");
  return store;
}

ResultStore::ResultStore(ResultStore&& other) noexcept
    : path_(std::move(other.path_)), db_(std::exchange(other.db_, nullptr)) {}

ResultStore& ResultStore::operator=(ResultStore&& other) noexcept {
  if (this != &other) {
    sqlite3_close(db_);
    path_ = std::move(other.path_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

ResultStore::~ResultStore() { sqlite3_close(db_); }

void ResultStore::begin_run(const RunRecord& run) {
  insert_row(db_, path_, runs_table(), run, "run \"" + run.run_id + "\"");
}

void ResultStore::record(const SampleRecord& sample) {
  // One INSERT in autocommit mode: its own transaction, durable when it returns.
  insert_row(db_, path_, samples_table(), sample,
             "sample \"" + sample.case_key + "\" of run \"" + sample.run_id + "\"");
}

void ResultStore::record(const KernelBenchRecord& bench_case) {
  insert_row(db_, path_, kernel_bench_table(), bench_case,
             "benchmark case " + bench_case.method + " at " + std::to_string(bench_case.tokens) +
                 " tokens of run \"" + bench_case.run_id + "\"");
}

std::set<std::string> ResultStore::completed_keys() const {
  Statement statement(db_, path_, "SELECT DISTINCT case_key FROM samples WHERE status = 'ok'");
  std::set<std::string> keys;
  while (statement.step()) {
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement.get(), 0));
    keys.emplace(bytes ? bytes : "", sqlite3_column_bytes(statement.get(), 0));
  }
  return keys;
}

std::vector<RunRecord> ResultStore::runs() const { return select_rows(db_, path_, runs_table()); }

std::vector<SampleRecord> ResultStore::samples() const {
  return select_rows(db_, path_, samples_table());
}

std::vector<KernelBenchRecord> ResultStore::kernel_bench() const {
  return select_rows(db_, path_, kernel_bench_table());
}

std::vector<SampleRecord> ResultStore::latest_samples() const {
  return select_rows(db_, path_, samples_table(),
                     "WHERE id IN (SELECT max(id) FROM samples GROUP BY case_key)");
}

void ResultStore::export_csv(std::ostream& out, const std::string& table) const {
  if (table == "samples") return write_csv(out, samples_table(), samples());
  if (table == "kernel_bench") return write_csv(out, kernel_bench_table(), kernel_bench());
  throw std::invalid_argument("no table '" + table + "' to export (samples or kernel_bench)");
}

void ResultStore::export_json(std::ostream& out) const {
  nlohmann::ordered_json document = nlohmann::ordered_json::object();
  document["runs"] = json_rows(runs_table(), runs());
  document["samples"] = json_rows(samples_table(), samples());
  document["kernel_bench"] = json_rows(kernel_bench_table(), kernel_bench());
  // A prediction may hold invalid UTF-8 (a token cut mid-character): replaced, not an error.
  out << document.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

MergeCounts ResultStore::merge_from(const std::string& other_path) {
  if (!file_exists(other_path)) fail(other_path, "no such database to merge");
  const Attachment attachment(db_, other_path, "merged");
  const SchemaState other = read_schema_state(db_, other_path, "merged");
  check_schema(other, other_path);
  // Deferred, unlike the others: BEGIN IMMEDIATE would also lock the attached file for writing
  // (and time out waiting on itself when a database is merged into itself). The first INSERT
  // still takes main's write lock before it reads anything, so it waits for other writers.
  Transaction transaction(db_, path_, "BEGIN");
  // Samples first, while their runs are still absent from main.runs; the foreign keys are checked
  // at COMMIT instead of per statement.
  exec(db_, path_, "PRAGMA defer_foreign_keys = ON");
  MergeCounts counts;
  counts.samples = copy_new_rows(db_, path_, samples_table(), "merged");
  if (other.user_version >= 2) counts.bench_cases = copy_new_rows(db_, path_, kernel_bench_table(), "merged");
  counts.runs = copy_new_rows(db_, path_, runs_table(), "merged");
  transaction.commit();
  return counts;
}

std::pair<std::vector<RunRecord>, std::vector<SampleRecord>> ResultStore::sweep_results(
    const std::string& sweep_name) const {
  std::pair<std::vector<RunRecord>, std::vector<SampleRecord>> out;
  std::set<std::string> ids;
  for (RunRecord& r : runs()) {
    if (!sweep_name.empty() && r.sweep_name != sweep_name) continue;
    ids.insert(r.run_id);
    out.first.push_back(std::move(r));
  }
  for (SampleRecord& s : latest_samples())
    if (ids.count(s.run_id)) out.second.push_back(std::move(s));
  return out;
}

}  // namespace mmi
