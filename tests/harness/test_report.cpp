// `mmi report`: aggregates against hand-computed values on a small synthetic sweep, the published
// numbers of configs/paper/, and the three renderers against golden files. After an intended change
// of the output, rewrite the golden files with
//   MMI_UPDATE_GOLDEN=1 ./mmi_tests "[report]"
// and review the diff. The "[chromium]" case screenshots the page with headless Chromium (it warns
// and passes where no chromium binary is installed).
#include <zlib.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "harness/bench_results.h"
#include "harness/report.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

#ifndef MMI_SOURCE_DIR
#define MMI_SOURCE_DIR "."
#endif

using namespace mmi;

namespace {

const char kModel[] = "qwen2.5-vl-7b";
const char kDense[] = "dense()";
const char kAShape[] = "a_shape(sink=128,local=4096)";
const char kMmi[] = "mminference(table=example.yaml)";

SampleRecord sample(const std::string& params, const std::string& task, int64_t frames,
                    double depth, double score, int64_t tokens, double prefill_ms) {
  SampleRecord s;
  s.run_id = "run-1";
  s.model = kModel;
  s.method = params.substr(0, params.find('('));
  s.method_params = params;
  s.task = task;
  s.frames = frames;
  s.depth = depth;
  s.tokens = tokens;
  s.score = score;
  s.prefill_ms = prefill_ms;
  s.attention_ms = prefill_ms / 2;
  s.index_ms = s.method == "dense" ? NAN : prefill_ms / 10;
  s.flops_ratio = s.method == "dense" ? 1.1 : s.method == "a_shape" ? 0.25 : 0.4;
  s.sample_id = task + "-f" + std::to_string(frames);
  if (std::isfinite(depth)) s.sample_id += "-d" + std::to_string(std::lround(depth * 100));
  s.case_key = s.method_params + "/" + s.sample_id;
  s.prediction = score > 0.5 ? "B" : "C";
  s.target = "B";
  return s;
}

// V-NIAH: frames {8, 16} x depth {0, 0.5, 1} (exact rows), at 1000 and 2000 tokens.
void add_vniah(std::vector<SampleRecord>& out) {
  const struct {
    const char* params;
    int64_t frames;
    double depth, score, prefill;
  } rows[] = {
      {kDense, 8, 0.0, 1, 10},  {kDense, 8, 0.0, 0, 14},  {kDense, 8, 0.5, 1, 12},
      {kDense, 8, 1.0, 1, 11},  {kDense, 16, 0.0, 1, 40}, {kDense, 16, 0.5, 1, 44},
      {kDense, 16, 1.0, 0, 42}, {kMmi, 8, 0.0, 1, 5},     {kMmi, 8, 0.5, 1, 6},
      {kMmi, 8, 1.0, 1, 7},     {kMmi, 16, 0.0, 1, 10},   {kMmi, 16, 0.5, 0, 12},
      {kMmi, 16, 1.0, 0, 11},   {kAShape, 8, 0.0, 1, 4},  {kAShape, 8, 0.5, 0, 4},
      {kAShape, 8, 1.0, 1, 4},  {kAShape, 16, 0.0, 0, 8}, {kAShape, 16, 0.5, 0, 8},
      {kAShape, 16, 1.0, 1, 8},
  };
  for (const auto& r : rows) {
    out.push_back(sample(r.params, "vniah", r.frames, r.depth, r.score, r.frames * 125, r.prefill));
  }
}

// MM-NIAH: seven distinct depths, so bins of 0.2 (0.6 in 60-80%, 1.0 in the top bin); not timed.
void add_mmniah(std::vector<SampleRecord>& out) {
  const double depths[] = {0.05, 0.15, 0.3, 0.5, 0.6, 0.9, 1.0};
  const double dense[] = {1, 0, 1, 1, 0, 1, 1}, mmi[] = {1, 1, 0, 1, 1, 0, 1};
  for (int k = 0; k < 7; ++k) {
    out.push_back(sample(kDense, "mmniah", 8, depths[k], dense[k], 1500, NAN));
    out.push_back(sample(kMmi, "mmniah", 8, depths[k], mmi[k], 1500, NAN));
  }
  out.push_back(sample(kDense, "mmniah", 16, 0.3, 1, 3000, NAN));
  out.push_back(sample(kDense, "mmniah", 16, 1.0, 0, 3000, NAN));
  out.push_back(sample(kMmi, "mmniah", 16, 0.3, 1, 3000, NAN));
  out.push_back(sample(kMmi, "mmniah", 16, 1.0, 1, 3000, NAN));
  for (SampleRecord& s : out) {
    if (s.task == "mmniah" && s.method == "mminference") s.flops_ratio = 0.3;
  }
}

// Video-QA at 4000 tokens; one A-shape sample failed.
void add_videoqa(std::vector<SampleRecord>& out) {
  const struct {
    const char* params;
    double score, prefill;
  } rows[] = {{kDense, 1, 80}, {kDense, 1, 90}, {kDense, 0, 100}, {kMmi, 1, 20},
              {kMmi, 0, 25},   {kMmi, 1, 30},   {kAShape, 0, 16}, {kAShape, 1, 18}};
  int k = 0;
  for (const auto& r : rows) {
    out.push_back(sample(r.params, "videoqa", 32, NAN, r.score, 4000, r.prefill));
    out.back().sample_id = "q" + std::to_string(k++);
    if (out.back().method == "mminference") out.back().flops_ratio = 0.5;
  }
  SampleRecord failed = sample(kAShape, "videoqa", 32, NAN, NAN, 4000, NAN);
  failed.sample_id = "q-oom";
  failed.status = "failed";
  failed.error = "CUDA out of memory";
  failed.prediction = "</script><b>not markup</b>";  // must stay inert in the page
  out.push_back(failed);
}

std::vector<SampleRecord> synthetic_samples() {
  std::vector<SampleRecord> samples;
  add_vniah(samples);
  add_mmniah(samples);
  add_videoqa(samples);
  return samples;
}

std::vector<RunRecord> synthetic_runs() {
  RunRecord run;
  run.run_id = "run-1";
  run.started_at = "2026-01-02T03:00:00Z";
  run.sweep_name = "synthetic";
  run.git_commit = "abc123def456";
  run.host = "gpu-box";
  run.device = "NVIDIA H100 80GB HBM3";
  run.driver = "580.65";
  run.cuda = "13.0";
  run.torch_version = "2.11.0";
  run.sweep_yaml = "name: synthetic\nmethods: [dense, a_shape, mminference]\n";
  return {run};
}

const char kPaperYaml[] =
    "source: A test paper\n"
    "hardware: A100\n"
    "accuracy:\n"
    "  - {model: Qwen2.5-VL-7B, setting: 256 frames, method: dense, label: Full, average: 59.5}\n"
    "  - {model: Qwen2.5-VL-7B, method: mminference, label: MMInference, average: 59.4, "
    "flops: 41.3}\n"
    "retrieval:\n"
    "  - {model: LongVILA, task: vniah, method: dense, label: Full, score: 98.3}\n"
    "  - {model: LongVILA, task: mmniah, method: dense, label: Full, score: 90.9}\n"
    "  - {model: LongVILA, task: vniah, method: a_shape, label: A-shape, score: 44}\n"
    "speedup:\n"
    "  - {tokens: 1M, method: mminference, baseline: dense, scope: e2e, speedup: 8.3}\n"
    "  - {tokens: 1M, method: mminference, baseline: vertical_slash, scope: e2e, "
    "speedup: [1.6, 1.7]}\n";

// The synthetic report with the test paper numbers and a fixed generation time.
struct Fixture {
  testing::TempDir dir;
  std::vector<RunRecord> runs = synthetic_runs();
  std::vector<SampleRecord> samples = synthetic_samples();
  Report report;
  Fixture() {
    testing::write_file(dir.file("paper.yaml"), kPaperYaml);
    ReportOptions options;
    options.generated_at = "2026-01-02T04:05:06Z";
    options.paper_files = {dir.file("paper.yaml")};
    report = build_report(runs, samples, options);
  }
};

const NiahSection& niah(const Report& report, const std::string& task) {
  for (const NiahSection& section : report.niah) {
    if (section.task == task) return section;
  }
  throw std::runtime_error("no section " + task);
}

void check_golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(MMI_SOURCE_DIR) + "/tests/harness/golden/" + name;
  const char* update = std::getenv("MMI_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    testing::write_file(path, actual);
    WARN("rewrote " << path);
    return;
  }
  const std::string expected = testing::read_file(path);
  if (expected == actual) return;
  size_t line = 1, at = 0;
  while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) {
    line += expected[at++] == '\n';
  }
  FAIL(path << " differs from the output at line " << line << " (MMI_UPDATE_GOLDEN=1 rewrites it)");
}

std::string island(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"mmi-data\">";
  const size_t begin = html.find(open) + open.size();
  return html.substr(begin, html.find("</script>", begin) - begin);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("Table 1's shape: task means, FLOPs, averages, failures", "[report]") {
  const Fixture f;
  const AccuracyTable& t = f.report.accuracy;
  REQUIRE(t.tasks == std::vector<std::string>{"videoqa", "vniah", "mmniah"});
  REQUIRE(t.rows.size() == 3);
  REQUIRE(t.rows[0].key.label == kDense);  // dense first, then by label
  REQUIRE(t.rows[1].key.label == kAShape);
  REQUIRE(t.rows[2].key.label == kMmi);

  const AccuracyRow& dense = t.rows[0];
  REQUIRE(dense.tasks[0].mean == Approx(200.0 / 3));
  REQUIRE(dense.tasks[1].mean == Approx(500.0 / 7));
  REQUIRE(dense.tasks[1].n == 7);
  REQUIRE(dense.tasks[2].mean == Approx(600.0 / 9));
  REQUIRE(dense.flops.mean == Approx(100.0));  // whatever the measured ratio (1.1 here)
  REQUIRE(dense.average == Approx((200.0 / 3 + 500.0 / 7 + 600.0 / 9) / 3));

  const AccuracyRow& mmi = t.rows[2];
  REQUIRE(mmi.tasks[2].mean == Approx(700.0 / 9));
  REQUIRE(mmi.flops.mean == Approx(100 * (6 * 0.4 + 9 * 0.3 + 3 * 0.5) / 18));
  REQUIRE(mmi.average == Approx((200.0 / 3 + 400.0 / 6 + 700.0 / 9) / 3));

  const AccuracyRow& a_shape = t.rows[1];
  REQUIRE(a_shape.tasks[0].mean == Approx(50.0));  // the failed sample is counted, not averaged
  REQUIRE(a_shape.tasks[0].n == 2);
  REQUIRE(a_shape.tasks[0].failed == 1);
  REQUIRE(a_shape.failed == 1);
  REQUIRE(a_shape.flops.mean == Approx(25.0));
  REQUIRE(a_shape.tasks[2].n == 0);
  REQUIRE(std::isnan(a_shape.average));  // no MM-NIAH: no average over an incomplete row
  REQUIRE(f.report.samples == static_cast<int64_t>(f.samples.size()));
  REQUIRE(f.report.failed == 1);
  REQUIRE(f.report.title == "synthetic");
}

TEST_CASE("V-NIAH heat maps keep exact depths and subtract dense per cell", "[report]") {
  const Fixture f;
  const NiahSection& v = niah(f.report, "vniah");
  REQUIRE(v.frames == std::vector<int64_t>{8, 16});
  REQUIRE(v.depths.size() == 3);
  REQUIRE(v.depths[1].label == "50%");
  REQUIRE(v.maps.size() == 3);
  const HeatMap& dense = v.maps[0];
  REQUIRE(dense.cells[0][0].mean == Approx(0.5));  // two needles, one found
  REQUIRE(dense.cells[0][0].n == 2);
  REQUIRE(dense.cells[2][1].mean == Approx(0.0));
  REQUIRE(dense.mean == Approx(4.5 / 6));  // the mean over cells, not over samples
  REQUIRE(dense.diff.empty());

  const HeatMap& a_shape = v.maps[1];
  REQUIRE(a_shape.mean == Approx(0.5));
  const std::vector<std::vector<double>> expected = {{0.5, -1}, {-1, -1}, {0, 1}};
  for (size_t r = 0; r < 3; ++r) {
    for (size_t c = 0; c < 2; ++c) REQUIRE(a_shape.diff[r][c] == Approx(expected[r][c]));
  }
  REQUIRE(v.maps[2].mean == Approx(4.0 / 6));
}

TEST_CASE("MM-NIAH depths fall into bins of 0.2 with 1.0 in the top bin", "[report]") {
  const Fixture f;
  const NiahSection& m = niah(f.report, "mmniah");
  REQUIRE(m.depths.size() == 5);
  REQUIRE(m.depths[0].label == "0–20%");
  REQUIRE(m.depths[4].label == "80–100%");
  REQUIRE(m.maps.size() == 2);  // A-shape has no MM-NIAH samples
  const HeatMap& dense = m.maps[0];
  REQUIRE(dense.cells[0][0].mean == Approx(0.5));  // 0.05 and 0.15
  REQUIRE(dense.cells[3][0].n == 1);               // 0.6 sits in 60-80%
  REQUIRE(dense.cells[3][0].mean == Approx(0.0));
  REQUIRE(dense.cells[4][0].n == 2);  // 0.9 and 1.0
  REQUIRE(dense.cells[4][1].mean == Approx(0.0));
  REQUIRE(dense.cells[0][1].n == 0);
  REQUIRE(dense.mean == Approx(4.5 / 7));

  const HeatMap& mmi = m.maps[1];
  REQUIRE(mmi.mean == Approx(5.5 / 7));
  REQUIRE(mmi.diff[0][0] == Approx(0.5));
  REQUIRE(mmi.diff[1][0] == Approx(-1.0));
  REQUIRE(mmi.diff[3][0] == Approx(1.0));
  REQUIRE(mmi.diff[4][0] == Approx(-0.5));
  REQUIRE(mmi.diff[4][1] == Approx(1.0));
  REQUIRE(std::isnan(mmi.diff[0][1]));  // neither measured
}

TEST_CASE("latency: medians per token count and the speedup over dense", "[report]") {
  const Fixture f;
  const LatencyTable& l = f.report.latency;
  REQUIRE(l.bins.size() == 3);  // MM-NIAH's untimed 1500 and 3000 tokens are left out
  REQUIRE(l.bins[0].lo == 1000);
  REQUIRE(l.bins[2].label == "4000");
  REQUIRE(l.series.size() == 3);
  const LatencySeries &dense = l.series[0], &a_shape = l.series[1], &mmi = l.series[2];
  REQUIRE(dense.points[0].prefill_ms == Approx(11.5));  // median of 10, 14, 12, 11
  REQUIRE(dense.points[0].n == 4);
  REQUIRE(dense.points[0].attention_ms == Approx(5.75));
  REQUIRE(std::isnan(dense.points[0].index_ms));
  REQUIRE(dense.points[0].speedup == Approx(1.0));
  REQUIRE(mmi.points[0].prefill_ms == Approx(6.0));
  REQUIRE(mmi.points[0].speedup == Approx(11.5 / 6));
  REQUIRE(mmi.points[1].speedup == Approx(42.0 / 11));
  REQUIRE(mmi.points[1].index_ms == Approx(1.1));
  REQUIRE(a_shape.points[2].prefill_ms == Approx(17.0));  // the failed sample has no time
  REQUIRE(a_shape.points[2].n == 2);
  REQUIRE(a_shape.points[2].speedup == Approx(90.0 / 17));
}

TEST_CASE("many token counts are binned by octave", "[report]") {
  std::vector<SampleRecord> samples;
  for (int k = 0; k < 20; ++k) {
    samples.push_back(sample(kDense, "videoqa", 32, NAN, 1, 1000 + 1500 * k, 10.0 + k));
  }
  const Report report = build_report({}, samples, {});
  const LatencyTable& l = report.latency;
  REQUIRE(l.bins.size() == 5);  // occupied octaves only: no token count in 1K-2K
  REQUIRE(l.bins[0].label == "512–1K");
  REQUIRE(l.bins[1].label == "2K–4K");
  REQUIRE(l.bins[4].label == "16K–32K");
  REQUIRE(l.bins[4].center == Approx(16384 * std::sqrt(2.0)));
  REQUIRE(l.series[0].points[0].n == 1);                         // 1000
  REQUIRE(l.series[0].points[1].prefill_ms == Approx(11.5));     // 2500 and 4000
  REQUIRE(l.series[0].points[4].n == 9);                         // 17500 ... 29500
  REQUIRE(report.run_ids == std::vector<std::string>{"run-1"});  // named only by the samples
}

TEST_CASE("an empty store and a single timed sample render", "[report]") {
  const Report empty = build_report({}, {}, {});
  REQUIRE(empty.accuracy.rows.empty());
  REQUIRE_THAT(render_console(empty), Contains("samples: 0 (0 failed)"));
  REQUIRE_THAT(render_html(empty, {}, {}), Contains("</html>"));
  const std::vector<SampleRecord> one = {sample(kMmi, "videoqa", 8, NAN, 1, 900, 3.0)};
  const std::string html = render_html(build_report({}, one, {}), {}, one);
  REQUIRE(html.find("nan") == std::string::npos);  // no NaN coordinates from a one-point axis
}

TEST_CASE("benchmark runs get their kernel table, and no empty accuracy table", "[report]") {
  RunRecord run;
  run.run_id = "bench-1";
  run.sweep_name = "bench attention";
  run.device = "NVIDIA H100 80GB HBM3, driver CUDA 13.0, runtime CUDA 13.0";
  run.git_commit = "863ad93";
  KernelBenchRecord cudnn;
  cudnn.run_id = "bench-1";
  cudnn.method = "cudnn_sdpa";
  cudnn.configuration = "PyTorch SDPA, causal";
  cudnn.tokens = 1 << 20;
  cudnn.run_ms = 16093.94;
  cudnn.speedup = 1.0;
  cudnn.flops_ratio = 1.0;
  cudnn.achieved_tflops = 489.7;
  KernelBenchRecord grid = cudnn;
  grid.method = "grid";
  grid.configuration = "grid(strides=0,lines=v,local=1024,last_q=64) grid(stride=256,phase=3)";
  grid.run_ms = 147.41;
  grid.plan_ms = 3.36;
  grid.speedup = 109.18;
  grid.speedup_with_plan = 106.74;
  grid.achieved_tflops = 355.0;
  grid.flops_ratio = 0.0066;  // 355 / 490 TFLOP/s = 0.0066 x 109.18: 72% of cuDNN's rate
  KernelBenchRecord failed = failed_bench_case(1 << 20, "vertical_slash", "out of GPU memory");
  failed.run_id = "bench-1";
  const Report report = build_report({run}, {}, {}, {cudnn, grid, failed});
  const TextTable table = kernel_bench_text(report);
  REQUIRE(table.rows.size() == 3);
  REQUIRE(table.rows[0] == std::vector<std::string>{"NVIDIA H100 80GB HBM3 863ad93", "1M", "cudnn_sdpa", "16094", "",
                                                    "490", "100%", "1.00×", "", ""});
  REQUIRE(table.rows[1][2] == "grid(strides=0,lines=v,local=1024,last_q=64)");
  REQUIRE((table.rows[1][4] == "3.36" && table.rows[1][6] == "72%" && table.rows[1][7] == "109.18×" &&
           table.rows[1][8] == "106.74×"));
  REQUIRE(table.rows[2].back() == "out of GPU memory");
  const std::string console = render_console(report);
  REQUIRE_THAT(console, Contains("== Attention kernels"));
  REQUIRE(console.find("Accuracy") == std::string::npos);
  REQUIRE_THAT(render_markdown(report), Contains("## Attention kernels"));
  REQUIRE_THAT(render_html(report, {run}, {}), Contains("id=\"kernels\""));
}

TEST_CASE("number formats", "[report]") {
  REQUIRE(format_tokens(900) == "900");
  REQUIRE(format_tokens(2240) == "2240");
  REQUIRE(format_tokens(2048) == "2K");
  REQUIRE(format_tokens(20000) == "19.5K");
  REQUIRE(format_tokens(368640) == "360K");
  REQUIRE(format_tokens(1 << 20) == "1M");
  REQUIRE(format_tokens(3 << 19) == "1.5M");
  REQUIRE(format_ms(0.5123) == "0.512");
  REQUIRE(format_ms(4.254) == "4.25");
  REQUIRE(format_ms(4512.4) == "4512");
  REQUIRE(format_ms(NAN).empty());
  REQUIRE(format_signed(-0.001, 2) == "0.00");
  REQUIRE(format_signed(0.2, 2) == "+0.20");
  REQUIRE(format_signed(-0.4, 2) == "-0.40");
}

TEST_CASE("configs/paper holds SPEC.md §9's published numbers", "[report]") {
  const std::string dir = std::string(MMI_SOURCE_DIR) + "/configs/paper/";
  const PaperNumbers paper =
      load_paper_numbers({dir + "table1.yaml", dir + "longvila_niah.yaml", dir + "speedup.yaml"});
  REQUIRE(paper.sources.size() == 3);
  REQUIRE(paper.accuracy.size() == 8);
  REQUIRE(paper.accuracy[3].model == "LongVILA-7B");
  REQUIRE(paper.accuracy[3].average == Approx(55.4));
  REQUIRE(paper.accuracy[3].flops == Approx(31.8));
  REQUIRE(std::isnan(paper.accuracy[7].flops));  // VideoChat-Flash: none published
  REQUIRE(paper.retrieval.size() == 13);
  REQUIRE(paper.retrieval[0].score == Approx(98.3));
  REQUIRE(paper.retrieval[8].score == Approx(91.3));  // MM-NIAH MMInference above dense
  REQUIRE(paper.speedups.size() == 8);
  REQUIRE(paper.speedups[2].tokens == (1 << 20));
  REQUIRE(paper.speedups[2].low == Approx(8.3));
  REQUIRE(paper.speedups[5].low == Approx(1.6));
  REQUIRE(paper.speedups[5].high == Approx(1.7));
  REQUIRE(paper.speedups[6].note == "grid kernel, 358 ms including the index build");
}

TEST_CASE("a bad paper file names the file and the field", "[report]") {
  testing::TempDir dir;
  testing::write_file(dir.file("bad.yaml"),
                      "source: x\nretrieval:\n  - {model: m, task: vniah, method: d, label: l}\n");
  REQUIRE_THROWS_WITH(load_paper_numbers({dir.file("bad.yaml")}),
                      Contains("bad.yaml: retrieval[0]: 'score' is missing"));
  testing::write_file(dir.file("worse.yaml"),
                      "source: x\nspeedup:\n  - {tokens: 12Q, speedup: 2}\n");
  REQUIRE_THROWS_WITH(load_paper_numbers({dir.file("worse.yaml")}),
                      Contains("'tokens' must be a token count"));
  REQUIRE_THROWS_WITH(load_paper_numbers({dir.file("missing.yaml")}), Contains("missing.yaml"));
}

TEST_CASE("console and Markdown rendering match the golden files", "[report]") {
  const Fixture f;
  check_golden("report.txt", render_console(f.report));
  check_golden("report.md", render_markdown(f.report));
}

TEST_CASE("the HTML page matches its golden file and is well formed", "[report]") {
  const Fixture f;
  const std::string html = render_html(f.report, f.runs, f.samples);
  check_golden("report.html", html);
  REQUIRE(count(html, "<html") == 1);
  REQUIRE(count(html, "</html>") == 1);
  REQUIRE(count(html, "<svg") == count(html, "</svg>"));
  REQUIRE(count(html, "<svg") == 5 + 3 + 2 + 2 + 1);  // panels, diff panels, legends, chart
  REQUIRE(count(html, "<table") == count(html, "</table>"));
  REQUIRE(count(html, "<script") == count(html, "</script>"));
  const std::string data = island(html);
  REQUIRE(data.find("</") == std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(data);
  REQUIRE(parsed["samples"].size() == f.samples.size());
  REQUIRE(parsed["runs"][0]["device"] == "NVIDIA H100 80GB HBM3");
  REQUIRE(parsed["samples"].back()["prediction"] == "</script><b>not markup</b>");
  REQUIRE(parsed["samples"].back()["score"].is_null());  // NaN
  REQUIRE_THAT(html, Contains("&lt;/script&gt;&lt;b&gt;not markup"));
}

// ---------------------------------------------------------------------------------------------
// The page in a real browser: a screenshot that is not blank.

namespace {

uint32_t big_endian(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (size_t k = 0; k < 4; ++k) value = value << 8 | static_cast<uint8_t>(bytes[at + k]);
  return value;
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

// Undoes PNG's per-row filters in place; `channels` bytes per pixel, 8 bits each.
void unfilter(std::vector<uint8_t>& data, size_t width, size_t height, size_t channels) {
  const size_t stride = width * channels;
  for (size_t y = 0; y < height; ++y) {
    uint8_t* row = &data[y * (stride + 1)];
    const uint8_t* up = y ? &data[(y - 1) * (stride + 1) + 1] : nullptr;
    const int filter = row[0];
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= channels ? row[1 + x - channels] : 0, b = up ? up[x] : 0,
                c = up && x >= channels ? up[x - channels] : 0;
      const int predictor = filter == 1   ? a
                            : filter == 2 ? b
                            : filter == 3 ? (a + b) / 2
                            : filter == 4 ? paeth(a, b, c)
                                          : 0;
      row[1 + x] = static_cast<uint8_t>(row[1 + x] + predictor);
    }
  }
}

// The share of pixels of an 8-bit RGB or RGBA PNG that are not (nearly) white.
double non_white_share(const std::string& png, size_t& width, size_t& height) {
  REQUIRE(png.compare(1, 3, "PNG") == 0);
  std::string idat;
  size_t channels = 0;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t length = big_endian(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      width = big_endian(png, at + 8);
      height = big_endian(png, at + 12);
      REQUIRE(static_cast<int>(png[at + 16]) == 8);  // bit depth
      REQUIRE(png[at + 20] == 0);                    // not interlaced
      channels = png[at + 17] == 6 ? 4 : png[at + 17] == 2 ? 3 : 0;
      REQUIRE(channels > 0);
    }
    if (type == "IDAT") idat += png.substr(at + 8, length);
    at += 12 + length;
  }
  std::vector<uint8_t> data(height * (width * channels + 1));
  uLongf size = data.size();
  REQUIRE(uncompress(data.data(), &size, reinterpret_cast<const Bytef*>(idat.data()),
                     idat.size()) == Z_OK);
  REQUIRE(size == data.size());
  unfilter(data, width, height, channels);
  size_t coloured = 0;
  for (size_t y = 0; y < height; ++y) {
    for (size_t x = 0; x < width; ++x) {
      const uint8_t* p = &data[y * (width * channels + 1) + 1 + x * channels];
      coloured += p[0] < 235 || p[1] < 235 || p[2] < 235;
    }
  }
  return static_cast<double>(coloured) / static_cast<double>(width * height);
}

std::string chromium_binary() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    if (std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0) {
      return name;
    }
  }
  return "";
}

}  // namespace

TEST_CASE("headless Chromium draws the page", "[report][chromium]") {
  const std::string chromium = chromium_binary();
  if (chromium.empty()) {
    WARN("no chromium or chromium-browser on PATH: the screenshot test is skipped");
    return;
  }
  const Fixture f;
  testing::write_file(f.dir.file("report.html"), render_html(f.report, f.runs, f.samples));
  const std::string png_path = f.dir.file("report.png");
  // Chromium is slow to start and chatty on stderr; a hung browser must not hang the tests.
  const std::string command = "timeout 60 " + chromium +
                              " --headless --no-sandbox --disable-gpu --hide-scrollbars"
                              " --screenshot=" +
                              png_path + " --window-size=1200,1600 file://" +
                              f.dir.file("report.html") + " >/dev/null 2>&1";
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  const std::string png = testing::read_file(png_path);
  REQUIRE(png.size() > 20 * 1024);
  size_t width = 0, height = 0;
  const double share = non_white_share(png, width, height);
  REQUIRE(width == 1200);
  REQUIRE(height == 1600);
  INFO("non-white share " << share);
  REQUIRE(share > 0.01);
}
