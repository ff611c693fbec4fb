// The report's aggregates, the published numbers' loader, and the console and Markdown renderers.
#include "harness/report.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include "harness/bench_results.h"

namespace mmi {
namespace {

constexpr size_t kMaxExactDepths = 6;   // V-NIAH's 0, 0.2, ..., 1.0 stay six exact rows
constexpr int kDepthBins = 5;           // otherwise bins of 0.2, as MM-NIAH draws them
constexpr size_t kMaxExactTokens = 12;  // more distinct token counts are binned by octave
const char* const kNiahTasks[] = {"vniah", "mmniah"};

bool is_ok(const SampleRecord& s) { return s.status == "ok"; }

std::string label_of(const SampleRecord& s) {
  return s.method_params.empty() ? s.method : s.method_params;
}

bool belongs(const SampleRecord& s, const MethodKey& key) {
  return s.model == key.model && label_of(s) == key.label;
}

class Mean {
 public:
  void add(const SampleRecord& s, double value) {
    if (!is_ok(s)) {
      ++failed_;
    } else if (std::isfinite(value)) {
      sum_ += value;
      ++n_;
    }
  }
  Stat stat(double scale = 1.0) const {
    Stat out;
    out.n = n_;
    out.failed = failed_;
    if (n_ > 0) out.mean = scale * sum_ / static_cast<double>(n_);
    return out;
  }

 private:
  double sum_ = 0;
  int64_t n_ = 0, failed_ = 0;
};

double median(std::vector<double> values) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t half = values.size() / 2;
  return values.size() % 2 ? values[half] : 0.5 * (values[half - 1] + values[half]);
}

// Dense first within a model, so that every table reads from the baseline down.
std::vector<MethodKey> method_keys(const std::vector<SampleRecord>& samples) {
  std::vector<MethodKey> keys;
  std::set<std::pair<std::string, std::string>> seen;
  for (const SampleRecord& s : samples) {
    if (seen.insert({s.model, label_of(s)}).second) {
      keys.push_back({s.model, label_of(s), s.method});
    }
  }
  std::sort(keys.begin(), keys.end(), [](const MethodKey& a, const MethodKey& b) {
    return std::make_tuple(a.model, !a.dense(), a.label) <
           std::make_tuple(b.model, !b.dense(), b.label);
  });
  return keys;
}

std::vector<std::string> task_columns(const std::vector<SampleRecord>& samples) {
  static const std::vector<std::string> kOrder = {"caption", "videoqa", "eventqa", "vniah", "mmniah"};
  auto rank = [](const std::string& task) {
    return std::find(kOrder.begin(), kOrder.end(), task) - kOrder.begin();
  };
  std::set<std::string> distinct;
  for (const SampleRecord& s : samples) distinct.insert(s.task);
  std::vector<std::string> tasks(distinct.begin(), distinct.end());
  std::stable_sort(tasks.begin(), tasks.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return tasks;
}

// ---------------------------------------------------------------------------------------------
// Table 1

// The share of dense causal attention a sample's method computed: the exact kept elements when they
// were counted (inputs of a few thousand tokens, where whole 128 x 64 tiles would overstate it, even
// past 100%), else the computed tiles (long inputs, where the two agree closely).
double attention_flops(const SampleRecord& s) { return std::isfinite(s.density) ? s.density : s.flops_ratio; }

AccuracyRow accuracy_row(const MethodKey& key, const std::vector<std::string>& tasks,
                         const std::vector<SampleRecord>& samples) {
  std::vector<Mean> by_task(tasks.size());
  Mean flops;
  AccuracyRow row;
  row.key = key;
  for (const SampleRecord& s : samples) {
    if (!belongs(s, key)) continue;
    row.failed += !is_ok(s);
    by_task[std::find(tasks.begin(), tasks.end(), s.task) - tasks.begin()].add(s, s.score);
    flops.add(s, key.dense() ? 1.0 : attention_flops(s));
  }
  double sum = 0;
  for (const Mean& m : by_task) {
    row.tasks.push_back(m.stat(100.0));
    sum += row.tasks.back().mean;  // NaN propagates: no average over an incomplete row
  }
  row.flops = flops.stat(100.0);
  if (!tasks.empty()) row.average = sum / static_cast<double>(tasks.size());
  return row;
}

AccuracyTable accuracy_table(const std::vector<MethodKey>& keys,
                             const std::vector<SampleRecord>& samples) {
  AccuracyTable table;
  table.tasks = task_columns(samples);
  for (const MethodKey& key : keys) table.rows.push_back(accuracy_row(key, table.tasks, samples));
  return table;
}

// ---------------------------------------------------------------------------------------------
// NIAH heat maps

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", fraction * 100.0);
  return text;
}

std::vector<DepthBin> depth_bins(const std::vector<SampleRecord>& rows) {
  std::set<double> values;
  for (const SampleRecord& s : rows) {
    if (std::isfinite(s.depth)) values.insert(s.depth);
  }
  std::vector<DepthBin> bins;
  if (values.size() <= kMaxExactDepths) {
    for (double v : values) bins.push_back({v, v, percent(v) + "%"});
    return bins;
  }
  for (int b = 0; b < kDepthBins; ++b) {
    const double lo = b / static_cast<double>(kDepthBins),
                 hi = (b + 1) / static_cast<double>(kDepthBins);
    bins.push_back({lo, hi, percent(lo) + "–" + percent(hi) + "%"});
  }
  return bins;
}

int depth_index(const std::vector<DepthBin>& bins, double depth) {
  if (!std::isfinite(depth) || bins.empty()) return -1;
  if (bins.front().lo == bins.front().hi) {
    for (size_t r = 0; r < bins.size(); ++r) {
      if (bins[r].lo == depth) return static_cast<int>(r);
    }
    return -1;
  }
  // The epsilon keeps 0.6 (0.6 / 0.2 = 2.9999...) in its bin; 1.0 falls into the top bin.
  const int b = static_cast<int>(std::floor(depth * kDepthBins + 1e-9));
  return std::clamp(b, 0, kDepthBins - 1);
}

HeatMap heat_map(const MethodKey& key, const NiahSection& section,
                 const std::vector<SampleRecord>& rows) {
  std::vector<std::vector<Mean>> grid(section.depths.size(),
                                      std::vector<Mean>(section.frames.size()));
  for (const SampleRecord& s : rows) {
    const int r = depth_index(section.depths, s.depth);
    if (!belongs(s, key) || r < 0) continue;
    const auto c = std::find(section.frames.begin(), section.frames.end(), s.frames);
    grid[r][c - section.frames.begin()].add(s, s.score);
  }
  HeatMap map;
  map.key = key;
  double sum = 0;
  int64_t cells = 0;
  for (const std::vector<Mean>& line : grid) {
    map.cells.emplace_back();
    for (const Mean& m : line) {
      map.cells.back().push_back(m.stat());
      if (map.cells.back().back().n > 0) sum += map.cells.back().back().mean, ++cells;
    }
  }
  if (cells > 0) map.mean = sum / static_cast<double>(cells);
  return map;
}

void add_differences(HeatMap& map, const HeatMap& dense) {
  map.diff.assign(map.cells.size(), std::vector<double>(map.cells.front().size(), NAN));
  for (size_t r = 0; r < map.cells.size(); ++r) {
    for (size_t c = 0; c < map.cells[r].size(); ++c) {
      map.diff[r][c] = map.cells[r][c].mean - dense.cells[r][c].mean;  // NaN where either is
    }
  }
}

NiahSection niah_section(const std::string& task, const std::vector<MethodKey>& keys,
                         const std::vector<SampleRecord>& samples) {
  NiahSection section;
  section.task = task;
  std::vector<SampleRecord> rows;
  std::set<int64_t> frames;
  for (const SampleRecord& s : samples) {
    // A task that failed as a whole (no sample was built) has no cell: it shows in the tables only.
    if (s.task != task || s.frames <= 0) continue;
    rows.push_back(s);
    frames.insert(s.frames);
  }
  section.frames.assign(frames.begin(), frames.end());
  section.depths = depth_bins(rows);
  if (section.depths.empty()) return section;
  for (const MethodKey& key : keys) {
    const bool present = std::any_of(rows.begin(), rows.end(),
                                     [&](const SampleRecord& s) { return belongs(s, key); });
    if (present) section.maps.push_back(heat_map(key, section, rows));
  }
  for (HeatMap& map : section.maps) {
    for (const HeatMap& dense : section.maps) {
      if (!map.key.dense() && dense.key.dense() && dense.key.model == map.key.model) {
        add_differences(map, dense);
        break;
      }
    }
  }
  return section;
}

// ---------------------------------------------------------------------------------------------
// Latency against context length

bool timed(const SampleRecord& s) { return is_ok(s) && std::isfinite(s.prefill_ms); }

int octave(int64_t tokens) {  // k with 2^k <= tokens < 2^(k+1)
  int k = 0;
  while ((int64_t{2} << k) <= tokens) ++k;
  return k;
}

std::vector<TokenBin> token_bins(const std::vector<SampleRecord>& samples) {
  std::set<int64_t> tokens;
  for (const SampleRecord& s : samples) {
    if (timed(s) && s.tokens > 0) tokens.insert(s.tokens);
  }
  std::vector<TokenBin> bins;
  if (tokens.size() <= kMaxExactTokens) {
    for (int64_t t : tokens) bins.push_back({t, t, static_cast<double>(t), format_tokens(t)});
    return bins;
  }
  std::set<int> octaves;
  for (int64_t t : tokens) octaves.insert(octave(t));
  for (int k : octaves) {
    const int64_t lo = int64_t{1} << k, hi = int64_t{2} << k;
    bins.push_back({lo, hi, lo * std::sqrt(2.0), format_tokens(lo) + "–" + format_tokens(hi)});
  }
  return bins;
}

int token_index(const std::vector<TokenBin>& bins, int64_t tokens) {
  for (size_t b = 0; b < bins.size(); ++b) {
    const TokenBin& bin = bins[b];
    if (bin.lo == bin.hi ? tokens == bin.lo : bin.lo <= tokens && tokens < bin.hi) {
      return static_cast<int>(b);
    }
  }
  return -1;
}

LatencySeries latency_series(const MethodKey& key, const std::vector<TokenBin>& bins,
                             const std::vector<SampleRecord>& samples) {
  struct Times {
    std::vector<double> prefill, attention, index;
  };
  std::vector<Times> times(bins.size());
  for (const SampleRecord& s : samples) {
    const int b = token_index(bins, s.tokens);
    if (!timed(s) || !belongs(s, key) || b < 0) continue;
    times[b].prefill.push_back(s.prefill_ms);
    times[b].attention.push_back(s.attention_ms);
    times[b].index.push_back(s.index_ms);
  }
  LatencySeries series;
  series.key = key;
  for (const Times& t : times) {
    LatencyPoint p;
    p.n = static_cast<int64_t>(t.prefill.size());
    p.prefill_ms = median(t.prefill);
    p.attention_ms = median(t.attention);
    p.index_ms = median(t.index);
    series.points.push_back(p);
  }
  return series;
}

LatencyTable latency_table(const std::vector<MethodKey>& keys,
                           const std::vector<SampleRecord>& samples) {
  LatencyTable table;
  table.bins = token_bins(samples);
  for (const MethodKey& key : keys) {
    LatencySeries series = latency_series(key, table.bins, samples);
    const bool any = std::any_of(series.points.begin(), series.points.end(),
                                 [](const LatencyPoint& p) { return p.n > 0; });
    if (any) table.series.push_back(std::move(series));
  }
  for (LatencySeries& series : table.series) {
    for (const LatencySeries& dense : table.series) {
      if (!dense.key.dense() || dense.key.model != series.key.model) continue;
      for (size_t b = 0; b < series.points.size(); ++b) {
        series.points[b].speedup = dense.points[b].prefill_ms / series.points[b].prefill_ms;
      }
      break;
    }
  }
  return table;
}

// ---------------------------------------------------------------------------------------------
// Published numbers

class PaperEntry {
 public:
  PaperEntry(const YAML::Node& node, std::string where) : node_(node), where_(std::move(where)) {}

  std::string text(const char* key, bool required = true) const {
    const YAML::Node value = node_[key];
    if (!value.IsDefined() || value.IsNull()) {
      if (required) fail(key, "is missing");
      return "";
    }
    if (!value.IsScalar()) fail(key, "must be a string");
    return value.Scalar();
  }

  double number(const char* key, bool required = true) const {
    const YAML::Node value = node_[key];
    if (!value.IsDefined() || value.IsNull()) {
      if (required) fail(key, "is missing");
      return NAN;
    }
    return to_number(value, key);
  }

  // A number, or [low, high] where the paper gives a range.
  std::pair<double, double> range(const char* key) const {
    const YAML::Node value = node_[key];
    if (value.IsDefined() && value.IsSequence() && value.size() == 2) {
      return {to_number(value[0], key), to_number(value[1], key)};
    }
    const double x = number(key);
    return {x, x};
  }

  // 360000, or 360K / 1M with K = 1024 as `mmi bench` reads lengths.
  int64_t tokens(const char* key) const {
    std::string text_value = text(key);
    int64_t unit = 1;
    const char suffix = text_value.empty() ? '\0' : text_value.back();
    if (suffix == 'K' || suffix == 'k') unit = 1024;
    if (suffix == 'M' || suffix == 'm') unit = 1024 * 1024;
    if (unit > 1) text_value.pop_back();
    char* end = nullptr;
    const double value = std::strtod(text_value.c_str(), &end);
    if (text_value.empty() || *end != '\0' || !(value > 0)) fail(key, "must be a token count");
    return static_cast<int64_t>(std::llround(value * static_cast<double>(unit)));
  }

 private:
  double to_number(const YAML::Node& value, const char* key) const {
    try {
      return value.as<double>();
    } catch (const YAML::Exception&) {
      fail(key, "must be a number");
    }
    return NAN;
  }
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw std::runtime_error(where_ + ": '" + key + "' " + what);
  }

  YAML::Node node_;
  std::string where_;
};

// Calls `parse` with every entry of the list `section` of a paper file.
template <typename Parse>
void for_each_entry(const YAML::Node& root, const std::string& file, const char* section,
                    Parse parse) {
  const YAML::Node list = root[section];
  if (!list.IsDefined() || list.IsNull()) return;
  if (!list.IsSequence()) throw std::runtime_error(file + ": '" + section + "' must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    parse(PaperEntry(list[i], file + ": " + section + "[" + std::to_string(i) + "]"));
  }
}

void load_paper_file(const std::string& file, PaperNumbers& out) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(file + ": " + e.what());
  }
  const PaperEntry top(root, file);
  const std::string hardware = top.text("hardware", false);
  out.sources.push_back(top.text("source") + (hardware.empty() ? "" : " (" + hardware + ")"));
  for_each_entry(root, file, "accuracy", [&](const PaperEntry& e) {
    out.accuracy.push_back({e.text("model"), e.text("setting", false), e.text("method"),
                            e.text("label"), e.number("average"), e.number("flops", false)});
  });
  for_each_entry(root, file, "retrieval", [&](const PaperEntry& e) {
    out.retrieval.push_back(
        {e.text("model"), e.text("task"), e.text("method"), e.text("label"), e.number("score")});
  });
  for_each_entry(root, file, "speedup", [&](const PaperEntry& e) {
    const auto [low, high] = e.range("speedup");
    out.speedups.push_back({e.tokens("tokens"), e.text("method"), e.text("baseline"),
                            e.text("scope"), e.text("note", false), low, high});
  });
}

// ---------------------------------------------------------------------------------------------
// Text tables

std::string stat_cell(const Stat& stat, int decimals) {
  const std::string failed = std::to_string(stat.failed) + " failed";
  if (stat.n == 0) return stat.failed > 0 ? "(" + failed + ")" : "";
  const std::string n = format_fixed(stat.mean, decimals) + " (" + std::to_string(stat.n);
  return n + (stat.failed > 0 ? ", " + failed + ")" : ")");
}

const HeatMap* find_map(const NiahSection& section, const MethodKey& key) {
  for (const HeatMap& map : section.maps) {
    if (map.key.model == key.model && map.key.label == key.label) return &map;
  }
  return nullptr;
}

const HeatMap* dense_map(const NiahSection& section, const std::string& model) {
  for (const HeatMap& map : section.maps) {
    if (map.key.dense() && map.key.model == model) return &map;
  }
  return nullptr;
}

// Display width of UTF-8 text: its code points (the tables use no wide characters).
size_t width(const std::string& text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

std::string pad(const std::string& text, size_t to, bool right) {
  const std::string fill(to > width(text) ? to - width(text) : 0, ' ');
  return right ? fill + text : text + fill;
}

std::string console_table(const TextTable& table, const std::string& indent = "") {
  std::vector<size_t> widths(table.header.size());
  for (size_t c = 0; c < widths.size(); ++c) {
    widths[c] = width(table.header[c]);
    for (const auto& row : table.rows) widths[c] = std::max(widths[c], width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells, const std::string& missing) {
    std::string out = indent;
    for (size_t c = 0; c < cells.size(); ++c) {
      out +=
          (c ? "  " : "") + pad(cells[c].empty() ? missing : cells[c], widths[c], table.numeric[c]);
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::string out = line(table.header, "");
  for (const auto& row : table.rows) out += line(row, "-");
  return out;
}

std::string markdown_table(const TextTable& table) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (std::string cell : cells) {
      for (size_t at = cell.find('|'); at != std::string::npos; at = cell.find('|', at + 2)) {
        cell.replace(at, 1, "\\|");
      }
      out += " " + (cell.empty() ? "—" : cell) + " |";
    }
    return out + "\n";
  };
  std::string out = line(table.header) + "|";
  for (bool numeric : table.numeric) out += numeric ? "---:|" : "---|";
  out += "\n";
  for (const auto& row : table.rows) out += line(row);
  return out;
}

std::string summary_line(const Report& report) {
  std::string runs;
  for (const std::string& id : report.run_ids) runs += (runs.empty() ? "" : ", ") + id;
  std::string line = "runs: " + (runs.empty() ? "none" : runs) +
                     "; samples: " + std::to_string(report.samples) + " (" +
                     std::to_string(report.failed) + " failed)";
  return line + (report.generated_at.empty() ? "" : "; generated " + report.generated_at);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string format_fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string format_signed(double value, int decimals) {
  std::string text = format_fixed(value, decimals);
  if (text.empty()) return text;
  const bool zero = text.find_first_not_of("-0.") == std::string::npos;
  if (zero) return text[0] == '-' ? text.substr(1) : text;  // no "-0.00"
  return text[0] == '-' ? text : "+" + text;
}

std::string format_tokens(int64_t tokens) {
  const int64_t k = 1024, m = k * k;
  if (tokens < k || (tokens < 10000 && tokens % k != 0)) return std::to_string(tokens);
  if (tokens % m == 0) return std::to_string(tokens / m) + "M";
  if (tokens < m && tokens % k == 0) return std::to_string(tokens / k) + "K";
  const double value = tokens < m ? tokens / double(k) : tokens / double(m);
  char text[32];
  std::snprintf(text, sizeof text, value >= 100 ? "%.0f%s" : "%.1f%s", value,
                tokens < m ? "K" : "M");
  return text;
}

std::string format_ms(double ms) {
  if (!std::isfinite(ms)) return "";
  return format_fixed(ms, ms < 1 ? 3 : ms < 10 ? 2 : ms < 100 ? 1 : 0);
}

std::string task_title(const std::string& task) {
  if (task == "vniah") return "V-NIAH";
  if (task == "mmniah") return "MM-NIAH";
  return task == "eventqa" ? "Video-QA (generated)" : task;
}

std::string Report::name(const MethodKey& key) const {
  return models.size() > 1 ? key.model + " · " + key.label : key.label;
}

PaperNumbers load_paper_numbers(const std::vector<std::string>& files) {
  PaperNumbers out;
  for (const std::string& file : files) load_paper_file(file, out);
  return out;
}

Report build_report(const std::vector<RunRecord>& runs, const std::vector<SampleRecord>& samples,
                    const ReportOptions& options, const std::vector<KernelBenchRecord>& kernel_bench) {
  Report report;
  report.generated_at = options.generated_at;
  std::set<std::string> sweeps, models, run_ids;
  for (const RunRecord& run : runs) {
    if (!run.sweep_name.empty() && sweeps.insert(run.sweep_name).second) {
      report.title += (report.title.empty() ? "" : ", ") + run.sweep_name;
    }
    if (run_ids.insert(run.run_id).second) report.run_ids.push_back(run.run_id);
  }
  if (!options.title.empty()) report.title = options.title;
  std::set<std::string> unlisted;  // runs that only the samples name
  for (const SampleRecord& s : samples) {
    models.insert(s.model);
    if (!run_ids.count(s.run_id)) unlisted.insert(s.run_id);
    report.failed += !is_ok(s);
  }
  report.run_ids.insert(report.run_ids.end(), unlisted.begin(), unlisted.end());
  report.models.assign(models.begin(), models.end());
  report.samples = static_cast<int64_t>(samples.size());

  const std::vector<MethodKey> keys = method_keys(samples);
  report.accuracy = accuracy_table(keys, samples);
  for (const char* task : kNiahTasks) {
    NiahSection section = niah_section(task, keys, samples);
    if (!section.maps.empty()) report.niah.push_back(std::move(section));
  }
  report.latency = latency_table(keys, samples);
  report.paper = load_paper_numbers(options.paper_files);
  for (const KernelBenchRecord& c : kernel_bench) {
    const auto run = std::find_if(runs.begin(), runs.end(), [&](const RunRecord& r) { return r.run_id == c.run_id; });
    const std::string name = run == runs.end() ? c.run_id : run->device.substr(0, run->device.find(',')) + " " + run->git_commit;
    report.kernel_bench.push_back({name, c});
  }
  return report;
}

TextTable accuracy_text(const Report& report) {
  const AccuracyTable& accuracy = report.accuracy;
  TextTable table;
  table.header = {"model", "method", "source"};
  for (const std::string& task : accuracy.tasks) table.header.push_back(task);
  for (const char* column : {"FLOPs %", "average", "failed"}) table.header.push_back(column);
  table.numeric.assign(table.header.size(), true);
  table.numeric[0] = table.numeric[1] = table.numeric[2] = false;
  for (const AccuracyRow& row : accuracy.rows) {
    std::vector<std::string> cells = {row.key.model, row.key.label, "measured"};
    for (const Stat& stat : row.tasks) cells.push_back(stat_cell(stat, 1));
    cells.push_back(format_fixed(row.flops.mean, 1));
    cells.push_back(format_fixed(row.average, 1));
    cells.push_back(std::to_string(row.failed));
    table.rows.push_back(cells);
  }
  for (const PaperAccuracy& paper : report.paper.accuracy) {
    std::vector<std::string> cells = {paper.model, paper.label, "paper"};
    if (!paper.setting.empty()) cells[0] += " (" + paper.setting + ")";
    cells.resize(table.header.size() - 3);
    cells.push_back(format_fixed(paper.flops, 1));
    cells.push_back(format_fixed(paper.average, 1));
    cells.push_back("");
    table.rows.push_back(cells);
  }
  return table;
}

TextTable niah_summary_text(const Report& report) {
  TextTable table;
  table.header = {"model", "method", "source"};
  for (const NiahSection& section : report.niah) {
    table.header.push_back(task_title(section.task));
    table.header.push_back("Δ dense");
  }
  table.numeric.assign(table.header.size(), true);
  table.numeric[0] = table.numeric[1] = table.numeric[2] = false;
  for (const AccuracyRow& row : report.accuracy.rows) {
    std::vector<std::string> cells = {row.key.model, row.key.label, "measured"};
    bool any = false;
    for (const NiahSection& section : report.niah) {
      const HeatMap* map = find_map(section, row.key);
      const HeatMap* dense = dense_map(section, row.key.model);
      any = any || map;
      cells.push_back(map ? format_fixed(100 * map->mean, 1) : "");
      cells.push_back(
          map && dense && map != dense ? format_signed(100 * (map->mean - dense->mean), 1) : "");
    }
    if (any) table.rows.push_back(cells);
  }
  // The paper's numbers: one row per model and method, its tasks in the columns they match.
  std::map<std::pair<std::string, std::string>, size_t> paper_rows;
  for (const PaperRetrieval& paper : report.paper.retrieval) {
    const auto [it, added] = paper_rows.insert({{paper.model, paper.label}, table.rows.size()});
    if (added) {
      table.rows.push_back({paper.model, paper.label, "paper"});
      table.rows.back().resize(table.header.size());
    }
    for (size_t s = 0; s < report.niah.size(); ++s) {
      if (report.niah[s].task == paper.task) {
        table.rows[it->second][3 + 2 * s] = format_fixed(paper.score, 1);
      }
    }
  }
  return table;
}

TextTable heat_map_text(const NiahSection& section, const HeatMap& map, bool diff) {
  TextTable table;
  table.header = {"depth \\ frames"};
  for (int64_t f : section.frames) table.header.push_back(std::to_string(f));
  table.numeric.assign(table.header.size(), true);
  table.numeric[0] = false;
  for (size_t r = 0; r < section.depths.size(); ++r) {
    std::vector<std::string> cells = {section.depths[r].label};
    for (size_t c = 0; c < section.frames.size(); ++c) {
      const Stat& stat = map.cells[r][c];
      if (diff) {
        cells.push_back(format_signed(map.diff[r][c], 2));
      } else {
        cells.push_back(stat.n > 0 ? format_fixed(stat.mean, 2) : stat.failed > 0 ? "fail" : "");
      }
    }
    table.rows.push_back(cells);
  }
  return table;
}

TextTable latency_text(const Report& report) {
  TextTable table;
  table.header = {"model",      "method",       "tokens",   "n",
                  "prefill ms", "attention ms", "index ms", "speedup"};
  table.numeric = {false, false, true, true, true, true, true, true};
  const LatencyTable& latency = report.latency;
  for (const LatencySeries& series : latency.series) {
    for (size_t b = 0; b < latency.bins.size(); ++b) {
      const LatencyPoint& p = series.points[b];
      if (p.n == 0) continue;
      const std::string speedup = format_fixed(p.speedup, 2);
      table.rows.push_back({series.key.model, series.key.label, latency.bins[b].label,
                            std::to_string(p.n), format_ms(p.prefill_ms), format_ms(p.attention_ms),
                            format_ms(p.index_ms), speedup.empty() ? "" : speedup + "×"});
    }
  }
  return table;
}

TextTable paper_speedup_text(const Report& report) {
  TextTable table;
  table.header = {"tokens", "method", "over", "scope", "speedup", "note"};
  table.numeric = {true, false, false, false, true, false};
  for (const PaperSpeedup& p : report.paper.speedups) {
    std::string speedup = format_fixed(p.low, 1);
    if (p.high != p.low) speedup += "–" + format_fixed(p.high, 1);
    table.rows.push_back(
        {format_tokens(p.tokens), p.method, p.baseline, p.scope, speedup + "×", p.note});
  }
  return table;
}

TextTable kernel_bench_text(const Report& report) {
  TextTable table;
  table.header = {"run", "tokens", "method", "kernel ms", "index ms", "TFLOP/s", "of cuDNN", "speedup", "with index",
                  "error"};
  table.numeric = {false, true, false, true, true, true, true, true, true, false};
  auto times = [](double x) { return std::isnan(x) ? std::string() : format_fixed(x, 2) + "×"; };
  auto percent = [](double x) { return std::isnan(x) ? std::string() : format_fixed(100 * x, 0) + "%"; };
  for (const KernelBenchEntry& entry : report.kernel_bench) {
    const KernelBenchRecord& c = entry.bench_case;
    table.rows.push_back({entry.run, format_tokens(c.tokens), method_label(c), format_ms(c.run_ms), format_ms(c.plan_ms),
                          format_fixed(c.achieved_tflops, 0), percent(share_of_cudnn(c)), times(c.speedup),
                          times(c.speedup_with_plan), c.error});
  }
  return table;
}

std::string render_console(const Report& report) {
  std::string out = "mmi report: " + (report.title.empty() ? "(untitled)" : report.title) + "\n" +
                    summary_line(report) + "\n";
  auto section = [&](const std::string& title) { out += "\n== " + title + " ==\n"; };
  if (report.samples > 0 || report.kernel_bench.empty()) {
    section("Accuracy: mean score x 100 over ok samples (n); FLOPs in % of dense (kept elements, or computed tiles on long inputs)");
    out += console_table(accuracy_text(report));
  }
  for (const NiahSection& niah : report.niah) {
    section(task_title(niah.task) + ": mean score per depth x frames");
    for (const HeatMap& map : niah.maps) {
      out += "\n" + report.name(map.key) + "  (mean " + format_fixed(map.mean, 2) + ")\n";
      out += console_table(heat_map_text(niah, map, false), "  ");
      if (map.diff.empty()) continue;
      out += "  minus dense:\n" + console_table(heat_map_text(niah, map, true), "  ");
    }
  }
  if (!report.niah.empty() || !report.paper.retrieval.empty()) {
    section("NIAH: mean over cells x 100");
    out += console_table(niah_summary_text(report));
  }
  if (!report.latency.series.empty()) {
    section("Latency: medians per context length; speedup = dense prefill / prefill");
    out += console_table(latency_text(report));
  }
  if (!report.paper.speedups.empty()) {
    section("Published speedups (paper)");
    out += console_table(paper_speedup_text(report));
  }
  if (!report.kernel_bench.empty()) {
    section("Attention kernels (mmi bench attention): one layer; speedups over cuDNN SDPA in the same run");
    out += console_table(kernel_bench_text(report));
  }
  for (const std::string& source : report.paper.sources) out += "\nPaper: " + source + "\n";
  return out;
}

std::string render_markdown(const Report& report) {
  std::string out = "# mmi report: " + (report.title.empty() ? "(untitled)" : report.title) +
                    "\n\n" + summary_line(report) + "\n";
  auto section = [&](const std::string& title, const std::string& caption) {
    out += "\n## " + title + "\n\n" + (caption.empty() ? "" : caption + "\n\n");
  };
  if (report.samples > 0 || report.kernel_bench.empty()) {
    section("Accuracy", "Mean score × 100 over ok samples (n); FLOPs in % of dense attention: the kept elements where they were counted exactly (inputs up to a few thousand tokens), else the computed tiles.");
    out += markdown_table(accuracy_text(report));
  }
  for (const NiahSection& niah : report.niah) {
    section(task_title(niah.task), "Mean score per depth × frames; differences are this − dense.");
    for (const HeatMap& map : niah.maps) {
      out += "**" + report.name(map.key) + "** (mean " + format_fixed(map.mean, 2) + ")\n\n" +
             markdown_table(heat_map_text(niah, map, false)) + "\n";
      if (map.diff.empty()) continue;
      out += "*" + report.name(map.key) + " − dense*\n\n" +
             markdown_table(heat_map_text(niah, map, true)) + "\n";
    }
  }
  if (!report.niah.empty() || !report.paper.retrieval.empty()) {
    section("NIAH summary", "Mean over cells × 100.");
    out += markdown_table(niah_summary_text(report));
  }
  if (!report.latency.series.empty()) {
    section("Latency", "Medians per context length; speedup = dense prefill / prefill.");
    out += markdown_table(latency_text(report));
  }
  if (!report.paper.speedups.empty()) {
    section("Published speedups", "");
    out += markdown_table(paper_speedup_text(report));
  }
  if (!report.kernel_bench.empty()) {
    section("Attention kernels", "`mmi bench attention`: one layer of pre-fill attention; speedups over cuDNN SDPA measured in the same run.");
    out += markdown_table(kernel_bench_text(report));
  }
  if (!report.paper.sources.empty()) out += "\n";
  for (const std::string& source : report.paper.sources) out += "Paper: " + source + "  \n";
  return out;
}

}  // namespace mmi
