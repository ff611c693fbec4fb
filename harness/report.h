// `mmi report`: the aggregates of a sweep's rows and their renderers (SPEC.md §7–9). Table 1's
// shape (methods × tasks, attention FLOPs, average), NIAH heat maps (frames × depth) with sparse −
// dense difference maps, pre-fill latency against context length with the speedup over dense, and
// the published numbers of configs/paper/ placed beside. Torch-free: it works on the store's rows
// only, and every renderer is deterministic (no clock is read), so the output can be golden-tested.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/records.h"

namespace mmi {

struct ReportOptions {
  std::string title;                     // "" = the runs' sweep names
  std::string generated_at;              // shown in the header when set (the caller's clock)
  std::vector<std::string> paper_files;  // configs/paper/*.yaml to place beside the measurements
};

// A mean over the ok samples that have the value; failed samples are counted, never averaged.
struct Stat {
  double mean = NAN;
  int64_t n = 0;
  int64_t failed = 0;
};

// One method of one model: a row of the accuracy table, a heat-map panel, a latency curve.
struct MethodKey {
  std::string model;
  std::string label;   // the full description (method_params), e.g. "a_shape(sink=128,local=4096)"
  std::string method;  // the registry name, e.g. "a_shape"
  bool dense() const { return method == "dense"; }
};

// Table 1's shape. Rows are ordered by model, dense first, then by label.
struct AccuracyRow {
  MethodKey key;
  std::vector<Stat> tasks;  // mean score × 100, one per AccuracyTable::tasks
  Stat flops;               // mean flops_ratio × 100: % of dense attention FLOPs (dense is 100)
  double average = NAN;     // plain mean of the task means; NaN when the row lacks a task
  int64_t failed = 0;
};

struct AccuracyTable {
  std::vector<std::string> tasks;  // columns: caption, videoqa, vniah, mmniah, then others by name
  std::vector<AccuracyRow> rows;
};

// A heat-map row: one depth value (lo == hi) or a bin [lo, hi) of 0.2, the top one closed at 1.0.
struct DepthBin {
  double lo = 0, hi = 0;
  std::string label;
};

struct HeatMap {
  MethodKey key;
  std::vector<std::vector<Stat>> cells;   // [depth][frames]: mean score in [0, 1]
  std::vector<std::vector<double>> diff;  // this − dense where both exist (else NaN); empty for
                                          // dense and where the model has no dense map
  double mean = NAN;                      // mean over the cells that have a value
};

struct NiahSection {
  std::string task;  // "vniah" or "mmniah"
  std::vector<int64_t> frames;
  std::vector<DepthBin> depths;  // top (depth 0) to bottom
  std::vector<HeatMap> maps;     // ordered like the accuracy rows
};

// A context length: one token count (lo == hi), or an octave [2^k, 2^(k+1)) when a sweep has many.
struct TokenBin {
  int64_t lo = 0, hi = 0;
  double center = 0;  // where it is plotted: the value, or the octave's geometric centre
  std::string label;
};

struct LatencyPoint {
  int64_t n = 0;  // ok samples with a pre-fill time in the bin
  double prefill_ms = NAN, attention_ms = NAN, index_ms = NAN;  // medians
  double speedup = NAN;  // the model's dense prefill_ms / this prefill_ms at the same bin
};

struct LatencySeries {
  MethodKey key;
  std::vector<LatencyPoint> points;  // one per LatencyTable::bins; n = 0 where none
};

struct LatencyTable {
  std::vector<TokenBin> bins;
  std::vector<LatencySeries> series;  // ordered like the accuracy rows
};

// Published numbers (configs/paper/*.yaml; the format is documented at the top of each file).
struct PaperAccuracy {
  std::string model, setting, method, label;
  double average = NAN;  // the paper's plain mean of its columns (VideoDC on 0–5, others 0–100)
  double flops = NAN;    // attention FLOPs in % of dense
};

struct PaperRetrieval {
  std::string model, task, method, label;
  double score = NAN;  // 0–100
};

struct PaperSpeedup {
  int64_t tokens = 0;
  std::string method, baseline, scope, note;  // scope: "e2e" or "kernel"
  double low = NAN, high = NAN;               // equal unless published as a range
};

struct PaperNumbers {
  std::vector<std::string> sources;  // each file's `source`, with its `hardware`
  std::vector<PaperAccuracy> accuracy;
  std::vector<PaperRetrieval> retrieval;
  std::vector<PaperSpeedup> speedups;
};

// Throws std::runtime_error naming the file and the field on bad input.
PaperNumbers load_paper_numbers(const std::vector<std::string>& files);

// A row of `mmi bench attention` with the run it came from.
struct KernelBenchEntry {
  std::string run;  // the run's device (up to its first comma) and commit
  KernelBenchRecord bench_case;
};

struct Report {
  std::string title;
  std::string generated_at;
  std::vector<std::string> run_ids;
  std::vector<std::string> models;
  int64_t samples = 0, failed = 0;
  AccuracyTable accuracy;
  std::vector<NiahSection> niah;  // vniah, then mmniah, where the samples have them
  LatencyTable latency;
  PaperNumbers paper;
  std::vector<KernelBenchEntry> kernel_bench;  // in run order

  // The label, prefixed with the model when the report has several.
  std::string name(const MethodKey& key) const;
};

// `samples` holds the latest row per case (failed rows have status "failed" and a NaN score);
// `kernel_bench`, the benchmark rows of the runs.
Report build_report(const std::vector<RunRecord>& runs, const std::vector<SampleRecord>& samples,
                    const ReportOptions& options, const std::vector<KernelBenchRecord>& kernel_bench = {});

std::string render_console(const Report& report);   // aligned plain-text tables
std::string render_markdown(const Report& report);  // GitHub tables
// One self-contained page: inline CSS and SVG, the rows as a JSON island, a few lines of JS for
// sorting and filtering (the page reads fine without it).
std::string render_html(const Report& report, const std::vector<RunRecord>& runs,
                        const std::vector<SampleRecord>& samples);

// The report's tables as text cells, built once and drawn by every renderer ("" = no value).
struct TextTable {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // right-aligned columns
  std::vector<std::vector<std::string>> rows;
};

TextTable accuracy_text(const Report& report);      // measured rows, then the paper's
TextTable niah_summary_text(const Report& report);  // mean over cells × 100, Δ dense, the paper's
TextTable heat_map_text(const NiahSection& section, const HeatMap& map, bool diff);
TextTable latency_text(const Report& report);
TextTable paper_speedup_text(const Report& report);
TextTable kernel_bench_text(const Report& report);  // one row per case, speedups over cuDNN SDPA

// Formatting shared by the renderers; NaN becomes "".
std::string format_fixed(double value, int decimals);
std::string format_signed(double value, int decimals);  // "+0.20", "-0.40", "0.00"
std::string format_tokens(int64_t tokens);              // 900, 2240, 2K, 16K, 19.5K, 1M (K = 1024)
std::string format_ms(double ms);                       // 0.512, 4.25, 12.3, 4512
std::string task_title(const std::string& task);        // V-NIAH, MM-NIAH, else the name

}  // namespace mmi
