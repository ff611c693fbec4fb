// The offline pattern search recovers planted heads, stays within its budget, is deterministic, and
// writes a table that PatternTable loads back. Planted heads are low-rank: a shared direction added
// to some queries and some keys raises exactly those scores; cosine features of the position make a
// local window.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "kernels/cpu/executor.h"
#include "kernels/estimate.h"
#include "kernels/method_config.h"
#include "kernels/plan_builder.h"
#include "kernels/search/search.h"
#include "kernels/synthetic.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;

namespace {

constexpr int64_t kDim = 32;
constexpr int64_t kLocalDims = 8;    // [0, 8): the local window
constexpr int64_t kDirection = 8;    // [8, 16): planted directions
constexpr int64_t kGridStride = 16;  // [16, 32): one-hot phase of visual tokens, for slash lines

// One head: q, k, v [N, 1, kDim].
struct Head {
  at::Tensor q, k, v;
};

Head noise_head(int64_t n, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {at::randn({n, 1, kDim}, gen) * 0.3, at::randn({n, 1, kDim}, gen) * 0.3,
          at::randn({n, 1, kDim}, gen)};
}

// Adds `logit` x mean over k in [1, 4] of cos(k w (i - j)), w = pi / (4 width): a window that
// decays to zero at distance ~width and only rises again after 8 x width (beyond the input).
void add_local(Head& h, double logit, double width) {
  const int64_t n = h.q.size(0), freqs = kLocalDims / 2;
  REQUIRE(8 * width > n);
  const at::Tensor w = at::arange(1, freqs + 1, at::kFloat) * (M_PI / (freqs * width));
  const at::Tensor angle = at::arange(n, at::kFloat).unsqueeze(1) * w.unsqueeze(0);  // [N, F]
  const double c = std::sqrt(logit * std::sqrt(double(kDim)) / freqs);
  const at::Tensor features = at::cat({at::cos(angle), at::sin(angle)}, 1) * c;  // [N, 2F]
  h.q.narrow(2, 0, kLocalDims).add_(features.unsqueeze(1));
  h.k.narrow(2, 0, kLocalDims).add_(features.unsqueeze(1));
}

// Raises the score of every (row, col) pair by `logit` through direction `dim`.
void plant(Head& h, const std::vector<int64_t>& rows, const std::vector<int64_t>& cols,
           double logit, int64_t dim) {
  const double a = std::sqrt(logit * std::sqrt(double(kDim)));
  for (int64_t i : rows) h.q[i][0][dim] += a;
  for (int64_t j : cols) h.k[j][0][dim] += a;
}

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

// Positions of the visual spans with (pos - span start) % stride == phase.
std::vector<int64_t> grid_positions(const SequenceLayout& layout, int64_t stride, int64_t phase) {
  std::vector<int64_t> out;
  for (const Span& s : layout.spans()) {
    if (!is_visual(s.modality)) continue;
    for (int64_t x = s.start + phase; x < s.end(); x += stride) out.push_back(x);
  }
  return out;
}

// A grid head of stride 16 over the visual spans: `rows` attend to the vertical lines (keys of
// phase `phase`), and their visual rows to the slash lines (visual keys of their own phase, through
// one-hot phase features). No window or top-k list holds the slash lines at the budget; the
// permuted grid does.
void plant_grid(Head& h, const SequenceLayout& layout, const std::vector<int64_t>& rows,
                int64_t phase) {
  plant(h, rows, grid_positions(layout, kGridStride, phase), 3.0, kDirection);
  const double a = std::sqrt(4.0 * std::sqrt(double(kDim)));
  for (int64_t i : rows) {
    const int64_t p = visual_phase(layout, i, kGridStride);
    if (p >= 0) h.q[i][0][kDim - kGridStride + p] += a;
  }
  for (int64_t j : grid_positions(layout, 1, 0)) {
    h.k[j][0][kDim - kGridStride + visual_phase(layout, j, kGridStride)] += a;
  }
}

SearchOptions small_budget() {
  SearchOptions o;
  o.budget_sink = 64;
  o.budget_local = 512;
  o.max_stride = 128;
  return o;
}

HeadChoice search_one(const SequenceLayout& layout, const Head& h, const SearchOptions& options) {
  const std::vector<HeadChoice> choices = search_layer(layout, h.q, h.k, h.v, options);
  REQUIRE(choices.size() == 1);
  return choices[0];
}

const PatternParams& cell(const HeadConfig& c, Modality rows, Modality keys = Modality::kText) {
  return c.for_pair(rows, keys);
}

ResolvedPattern resolved_cell(const SequenceLayout& layout, const HeadChoice& choice, const Head& h,
                              Modality rows) {
  const ResolvedHead r = resolve_head(layout, choice.config, h.q, h.k, 0);
  return r.for_pair(rows, rows);
}

// The computed-tile FLOPs of the budget's A-shape over the whole head (or dense, if cheaper).
double budget_flops(const SequenceLayout& layout, const SearchOptions& o) {
  PatternParams a;
  a.kind = PatternKind::kAShape;
  a.sink = o.budget_sink;
  a.local = o.budget_local;
  ResolvedHead head;
  head.patterns[0][0] = ResolvedPattern{a, {}};
  ResolvedHead full;
  return std::min(plan_stats(build_plan(layout, {head}), false).flops_ratio(layout.length()),
                  plan_stats(build_plan(layout, {full}), false).flops_ratio(layout.length()));
}

// The error the `mminference` runtime reaches with the chosen config: resolve_head, build_plan,
// the CPU executor, against dense.
double runtime_error(const SequenceLayout& layout, const HeadChoice& choice, const Head& h) {
  const SparsePlan plan = build_plan(layout, {resolve_head(layout, choice.config, h.q, h.k, 0)});
  const at::Tensor out = execute_plan_cpu(plan, h.q, h.k, h.v).out;
  const at::Tensor ref = dense_attention_cpu(h.q, h.k, h.v).out;
  return ((out - ref).norm() / ref.norm()).item<double>();
}

void check_budget(const SequenceLayout& layout, const HeadChoice& choice, const SearchOptions& o) {
  const double budget = budget_flops(layout, o);
  INFO(choice.describe << ": flops " << choice.flops_ratio << ", budget " << budget);
  REQUIRE(choice.flops_ratio <= budget * (1 + o.tolerance) + 1e-12);
  REQUIRE(choice.flops_ratio >= budget * (1 - o.tolerance) - 1e-12);
}

// Writes `choice` as layer 0, head 0 of a table, loads it and checks the cells its layout reads.
void check_round_trip(const SequenceLayout& layout, const HeadChoice& choice) {
  const testing::TempDir dir;
  write_pattern_table(dir.file("t.yaml"), "m", "c", SearchOptions{}, {{choice}});
  const HeadConfig got = PatternTable::load(dir.file("t.yaml")).head(0, 0);
  REQUIRE(got.boundary == choice.config.boundary);
  for (Modality m : layout.modalities()) {
    for (Modality n : layout.modalities()) {
      REQUIRE(got.for_pair(m, n).describe() == choice.config.for_pair(m, n).describe());
    }
  }
}

// text 64 | video 40 frames of 8x8 | text 64: 2,688 tokens.
SequenceLayout video_layout() { return LayoutBuilder().text(64).video(40, 8, 8).text(64).build(); }

}  // namespace

TEST_CASE("search recovers a planted grid head: its stride, phase and lines", "[search]") {
  // text 64 | video 40 frames of 4 x 16: lines every 16 tokens (a column of every merged row), not
  // the frame stride (64).
  const SequenceLayout layout = LayoutBuilder().text(64).video(40, 4, 16).build();
  const int64_t n = layout.length(), phase = 7;
  Head h = noise_head(n, 1);
  add_local(h, 2.0, 400);
  plant_grid(h, layout, all_rows(n), phase);
  const SearchOptions options = small_budget();
  const HeadChoice choice = search_one(layout, h, options);
  INFO(choice.describe << " error " << choice.error);
  const PatternParams& p = cell(choice.config, Modality::kVideo, Modality::kVideo);
  REQUIRE(p.kind == PatternKind::kGrid);
  REQUIRE(p.vline);
  REQUIRE(p.slash);
  const ResolvedPattern r = resolved_cell(layout, choice, h, Modality::kVideo);
  REQUIRE(r.index.stride == kGridStride);
  REQUIRE(r.index.phase == phase);
  check_budget(layout, choice, options);
  REQUIRE(runtime_error(layout, choice, h) == Approx(choice.error).epsilon(1e-3));
}

TEST_CASE("search recovers a planted Vertical-Slash head", "[search]") {
  const SequenceLayout layout = video_layout();
  const int64_t n = layout.length();
  Head h = noise_head(n, 2);
  add_local(h, 2.0, 400);
  // Hot columns at irregular positions: no stride lines them up, no window reaches them.
  plant(h, all_rows(n), {97, 410, 733, 1021, 1290, 1517, 1888, 2050, 2301, 2467}, 6.0, kDirection);
  const SearchOptions options = small_budget();
  const HeadChoice choice = search_one(layout, h, options);
  INFO(choice.describe << " error " << choice.error);
  REQUIRE(cell(choice.config, Modality::kVideo, Modality::kVideo).kind ==
          PatternKind::kVerticalSlash);
  check_budget(layout, choice, options);
  REQUIRE(runtime_error(layout, choice, h) == Approx(choice.error).epsilon(1e-3));
}

TEST_CASE("search recovers a planted A-shape head, deterministically", "[search]") {
  // Sinks and a window for every row but the question (the last 64 rows), which attends almost only
  // to the sinks: what the last queries show is not what the other rows do, so the static pattern
  // wins.
  const SequenceLayout layout = video_layout();
  const int64_t n = layout.length();
  Head h = noise_head(n, 3);
  add_local(h, 3.0, 400);
  h.q.narrow(0, n - 64, 64).narrow(2, 0, kLocalDims).zero_();
  std::vector<int64_t> body = all_rows(n - 64), question;
  for (int64_t i = n - 64; i < n; ++i) question.push_back(i);
  plant(h, body, {0, 1, 2, 3}, 5.0, kDirection);
  plant(h, question, {0, 1, 2, 3}, 10.0, kDirection + 1);
  const SearchOptions options = small_budget();
  const HeadChoice choice = search_one(layout, h, options);
  INFO(choice.describe << " error " << choice.error);
  REQUIRE(choice.config.boundary == BoundaryKind::kNone);
  REQUIRE(choice.config.patterns[0][0].kind == PatternKind::kAShape);
  check_budget(layout, choice, options);
  const HeadChoice again = search_one(layout, h, options);
  REQUIRE(again.describe == choice.describe);
  REQUIRE(again.error == choice.error);
  REQUIRE(again.flops_ratio == choice.flops_ratio);
}

TEST_CASE("search finds a Q-boundary head over interleaved text and video", "[search]") {
  // text 96 | video 8x4x16 | text 96 | video 8x4x16 | text 96 | video 8x4x16 | text 96: 1,920
  // tokens.
  LayoutBuilder builder;
  for (int s = 0; s < 3; ++s) builder.text(96).video(8, 4, 16);
  const SequenceLayout layout = builder.text(96).build();
  const int64_t n = layout.length(), phase = 5;
  Head h = noise_head(n, 4);
  add_local(h, 2.0, 400);
  std::vector<int64_t> video_rows, text_rows;
  for (int64_t i = 0; i < n; ++i) {
    (is_visual(layout.modality_at(i)) ? video_rows : text_rows).push_back(i);
  }
  // Video rows are a grid head; text rows attend to a few text columns inside the visual region.
  plant_grid(h, layout, video_rows, phase);
  plant(h, text_rows, {620, 650, 1240, 1270}, 7.0, kDirection + 2);
  const SearchOptions options = small_budget();
  const HeadChoice choice = search_one(layout, h, options);
  INFO(choice.describe << " error " << choice.error);
  REQUIRE(choice.config.boundary == BoundaryKind::kQ);
  REQUIRE(cell(choice.config, Modality::kVideo).kind == PatternKind::kGrid);
  REQUIRE(cell(choice.config, Modality::kText).kind == PatternKind::kVerticalSlash);
  const ResolvedPattern video = resolved_cell(layout, choice, h, Modality::kVideo);
  REQUIRE(video.index.stride == kGridStride);
  REQUIRE(video.index.phase == phase);
  check_budget(layout, choice, options);
  REQUIRE(runtime_error(layout, choice, h) == Approx(choice.error).epsilon(1e-3));
  check_round_trip(layout, choice);
}

TEST_CASE("search_layer reads KV head h / (Hq / Hkv) for query head h", "[search]") {
  const SequenceLayout layout = LayoutBuilder().text(128).video(8, 4, 16).text(64).build();
  SyntheticOptions synthetic;
  synthetic.heads = 4;
  synthetic.kv_heads = 2;
  synthetic.head_dim = kDim;
  const QKV x = make_qkv(layout, synthetic);  // a different grid phase per KV head
  const SearchOptions options = small_budget();
  const std::vector<HeadChoice> all = search_layer(layout, x.q, x.k, x.v, options);
  REQUIRE(all.size() == 4);
  for (int64_t h : {1, 2}) {
    const HeadChoice one = search_one(
        layout, Head{x.q.narrow(1, h, 1), x.k.narrow(1, h / 2, 1), x.v.narrow(1, h / 2, 1)},
        options);
    REQUIRE(all[h].describe == one.describe);
    REQUIRE(all[h].error == one.error);
  }
}

TEST_CASE("the written pattern table loads back as the same head configurations", "[search]") {
  PatternParams grid;
  grid.kind = PatternKind::kGrid;
  grid.strides = {0, 24};
  grid.vline = grid.slash = true;
  grid.grid_local = 777;
  PatternParams vs;
  vs.kind = PatternKind::kVerticalSlash;
  vs.n_vertical = 123;
  vs.n_slash = 456;
  PatternParams a;
  a.kind = PatternKind::kAShape;
  a.sink = 5;
  a.local = 99;
  HeadConfig q = uniform_head(vs, BoundaryKind::kQ);
  q.patterns[int(Modality::kVideo)][0] = grid;
  HeadConfig two_d = uniform_head(a, BoundaryKind::k2D);
  two_d.patterns[int(Modality::kVideo)][int(Modality::kVideo)] = grid;
  two_d.patterns[int(Modality::kText)][int(Modality::kVideo)] = vs;
  const std::vector<std::vector<HeadChoice>> layers = {
      {{uniform_head(grid), 0.01, 0.3, ""}, {q, 0.02, 0.31, ""}},
      {},
      {{two_d, 0.5, 0.29, ""}, {uniform_head(a), 0.125, 0.33, ""}}};
  const testing::TempDir dir;
  const std::string path = dir.file("searched.yaml");
  write_pattern_table(path, "tiny: model", "synthetic 8x56x56 # not a comment", small_budget(),
                      layers);
  const PatternTable table = PatternTable::load(path);
  REQUIRE(table.num_entries() == 4);
  for (int l : {0, 2}) {
    for (int h = 0; h < 2; ++h) {
      const HeadConfig& want = layers[l][h].config;
      const HeadConfig got = table.head(l, h);
      REQUIRE(got.boundary == want.boundary);
      for (int m = 0; m < kNumModalities; ++m) {
        for (int k = 0; k < kNumModalities; ++k) {
          REQUIRE(got.patterns[m][k].describe() == want.patterns[m][k].describe());
        }
      }
    }
  }
  REQUIRE(table.head(1, 0).patterns[0][0].describe() == "a_shape(sink=64,local=512)");  // default
}
