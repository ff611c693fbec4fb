// Online estimation recovers what is planted. With one-hot keys (k_j = e_j, D >= N) a query's scores
// are chosen directly: q_i = beta * sum of e_j over the keys it should attend to.
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <random>

#include "kernels/estimate.h"
#include "tests/catch.h"
#include "tests/kernels/attention_testing.h"

using namespace mmi;

namespace {

struct Planted {
  at::Tensor q, k;  // [N, 1, D], [N, 1, D]
};

// q_i attends (score beta) to every key j <= i with wanted(i, j).
template <typename Wanted>
Planted plant(int64_t n, double beta, Wanted wanted) {
  const int64_t d = n;
  Planted p{at::zeros({n, 1, d}), at::eye(n).reshape({n, 1, d})};
  auto q = p.q.accessor<float, 3>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      if (wanted(i, j)) q[i][0][j] = float(beta * std::sqrt(double(d)));  // undo the 1/sqrt(d) scale
    }
  }
  return p;
}

}  // namespace

TEST_CASE("last-query profile matches a brute-force softmax", "[estimate]") {
  const testing::RandomQKV x = testing::random_qkv(150, 4, 2, 16, 3);
  const QueryWindow w{120, 20};
  const AttentionProfile profile = last_query_profile(x.q, x.k, 3, w);
  const at::Tensor q = x.q.select(1, 3).narrow(0, 100, 20).to(at::kDouble);
  const at::Tensor k = x.k.select(1, 1).narrow(0, 0, 120).to(at::kDouble);
  at::Tensor s = at::matmul(q, k.t()) / 4.0;
  for (int64_t r = 0; r < 20; ++r) s[r].narrow(0, 100 + r + 1, 19 - r).fill_(-INFINITY);
  const at::Tensor a = at::softmax(s, 1);
  auto acc = a.accessor<double, 2>();
  std::vector<double> column(120, 0.0), distance(120, 0.0);
  for (int64_t r = 0; r < 20; ++r) {
    for (int64_t j = 0; j <= 100 + r; ++j) {
      column[j] += acc[r][j];
      distance[100 + r - j] += acc[r][j];
    }
  }
  const auto got_column = profile.column.accessor<double, 1>();
  const auto got_distance = profile.distance.accessor<double, 1>();
  for (int64_t j = 0; j < 120; ++j) {
    REQUIRE(got_column[j] == Approx(column[j]).margin(1e-6));
    REQUIRE(got_distance[j] == Approx(distance[j]).margin(1e-6));
  }
  std::vector<uint8_t> filter(150, 0);
  std::fill(filter.begin(), filter.begin() + 50, 1);
  const AttentionProfile filtered = last_query_profile(x.q, x.k, 3, w, &filter);
  REQUIRE(filtered.column[49].item<double>() == Approx(column[49]).margin(1e-6));
  REQUIRE(filtered.column[50].item<double>() == 0.0);
  REQUIRE_FALSE(last_query_profile(x.q, x.k, 3, w, nullptr, false).distance.defined());
}

TEST_CASE("top-k keeps the forced prefix and breaks ties deterministically", "[estimate]") {
  const at::Tensor scores = at::tensor(std::vector<double>{0, 0, 0.5, 0.1, 0.9, 0.1, 0.0, 0.3});
  REQUIRE(top_k_forced(scores, 4, 2) == std::vector<int64_t>{0, 1, 2, 4});
  REQUIRE(top_k_forced(scores, 5, 2) == std::vector<int64_t>{0, 1, 2, 4, 7});
  REQUIRE(top_k_forced(scores, 6, 2) == std::vector<int64_t>{0, 1, 2, 3, 4, 7});  // 0.1 tie: lower index
  REQUIRE(top_k_forced(scores, 1, 2) == std::vector<int64_t>{0, 1});             // forced beats k
  REQUIRE(top_k_forced(scores, 100, 0).size() == 5);                             // zero scores are never picked
}

TEST_CASE("batched selections equal one-by-one ones (top-k against brute force)", "[estimate]") {
  std::mt19937_64 rng(9);
  // Brute force: positive scores (the forced prefix counts as infinite) by score descending, then index.
  auto expected = [](std::vector<double> s, int64_t k, int64_t forced) {
    std::vector<int64_t> order;
    for (int64_t j = 0; j < int64_t(s.size()); ++j) {
      if (j < forced) s[j] = std::numeric_limits<double>::infinity();
      if (s[j] > 0) order.push_back(j);
    }
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    order.resize(std::min<size_t>(order.size(), std::max(k, std::min<int64_t>(forced, s.size()))));
    std::sort(order.begin(), order.end());
    return order;
  };
  std::vector<std::vector<double>> scores;
  std::vector<std::pair<int64_t, int64_t>> params;  // (k, forced)
  for (int r = 0; r < 24; ++r) {
    const int64_t n = r % 3 == 0 ? 1 + rng() % 40 : 37;  // some share a shape, some do not
    std::vector<double> s(n);
    for (double& x : s) x = double(rng() % 6) * 0.25 - 0.25;  // many ties, some negative, some zero
    scores.push_back(s);
    params.emplace_back(rng() % 12, rng() % 3 == 0 ? 0 : rng() % 5);
  }
  std::vector<std::vector<int64_t>> got(scores.size());
  EstimateBatch batch;
  for (size_t r = 0; r < scores.size(); ++r) {
    batch.add_top_k(at::tensor(scores[r]), params[r].first, params[r].second, &got[r]);
  }
  // Grid selections in the same batch equal estimate_grid one by one.
  const SequenceLayout layout = SequenceLayout::parse("text:13,video:6x4x5,text:7,video:3x4x5,text:5");
  std::vector<at::Tensor> masses;
  std::vector<PatternIndex> grids(6);
  const std::vector<int64_t> candidates = {0, 4, 5, 7};
  for (PatternIndex& g : grids) {
    masses.push_back(at::rand({layout.length()}, at::kDouble));
    batch.add_grid(layout, masses.back(), candidates, &g);
  }
  batch.run();
  for (size_t x = 0; x < grids.size(); ++x) {
    const GridEstimate one = estimate_grid(layout, masses[x], candidates);
    REQUIRE((grids[x].stride == one.stride && grids[x].phase == one.phase));
  }
  for (size_t r = 0; r < scores.size(); ++r) {
    INFO("request " << r << ": k " << params[r].first << ", forced " << params[r].second);
    REQUIRE(got[r] == expected(scores[r], params[r].first, params[r].second));
  }
}

TEST_CASE("Vertical-Slash estimation recovers planted verticals and slashes", "[estimate]") {
  const SequenceLayout layout = SequenceLayout::parse("text:200");
  const std::vector<int64_t> verticals = {41, 77, 150}, slashes = {0, 3, 17, 60};
  auto wanted = [&](int64_t i, int64_t j) {
    return std::count(verticals.begin(), verticals.end(), j) || std::count(slashes.begin(), slashes.end(), i - j);
  };
  const Planted p = plant(200, 12.0, wanted);
  PatternParams vs;
  vs.kind = PatternKind::kVerticalSlash;
  vs.n_vertical = kForcedColumns + 3;
  vs.n_slash = kForcedDistances + 2;  // the distances below 100 are forced; 0, 3, 17, 60 are among them
  vs.last_q = 32;
  const ResolvedHead r = resolve_head(layout, uniform_head(vs), p.q, p.k, 0);
  const PatternIndex& index = r.patterns[0][0].index;
  for (int64_t v : verticals) REQUIRE(std::count(index.verticals.begin(), index.verticals.end(), v));
  REQUIRE(index.verticals.size() == size_t(kForcedColumns + 3));
  for (int64_t s : slashes) REQUIRE(std::count(index.slashes.begin(), index.slashes.end(), s));

  // Slashes beyond the forced band: plant 120 and 140, ask for exactly two more than forced.
  const Planted far = plant(200, 12.0, [](int64_t i, int64_t j) { return i - j == 120 || i - j == 140; });
  const ResolvedHead rf = resolve_head(layout, uniform_head(vs), far.q, far.k, 0);
  const auto& sl = rf.patterns[0][0].index.slashes;
  REQUIRE(std::count(sl.begin(), sl.end(), 120));
  REQUIRE(std::count(sl.begin(), sl.end(), 140));
}

TEST_CASE("grid estimation recovers planted stride and phase", "[estimate]") {
  // text 8, video 6 frames x 16 tokens, text 8: frame stride 16.
  const SequenceLayout layout = LayoutBuilder().text(8).video(6, 4, 4).text(8).build();
  PatternParams grid;
  grid.kind = PatternKind::kGrid;
  grid.last_q = 8;
  SECTION("a frame-periodic column, phase 5, against candidate strides 16 and 4") {
    const Planted p = plant(112, 8.0, [&](int64_t i, int64_t j) { return visual_phase(layout, j, 16) == 5; });
    grid.strides = {0, 4};
    const ResolvedHead r = resolve_head(layout, uniform_head(grid), p.q, p.k, 0);
    REQUIRE(r.patterns[0][0].index.stride == 16);
    REQUIRE(r.patterns[0][0].index.phase == 5);
  }
  SECTION("a stride-4 column, phase 3: the finer stride wins the tie in lift") {
    const Planted p = plant(112, 8.0, [&](int64_t i, int64_t j) { return visual_phase(layout, j, 4) == 3; });
    grid.strides = {0, 4};
    const ResolvedHead r = resolve_head(layout, uniform_head(grid), p.q, p.k, 0);
    REQUIRE(r.patterns[0][0].index.stride == 4);
    REQUIRE(r.patterns[0][0].index.phase == 3);
  }
}

TEST_CASE("Q-boundary heads estimate each modality from its own last span", "[estimate]") {
  // text 40 | video 4 frames x 16 | text 36. The video rows look at column 50, the text rows at 120.
  const SequenceLayout layout = LayoutBuilder().text(40).video(4, 4, 4).text(36).build();
  const Planted p = plant(140, 12.0, [&](int64_t i, int64_t j) {
    return layout.modality_at(i) == Modality::kVideo ? j == 50 : j == 120;
  });
  PatternParams vs;
  vs.kind = PatternKind::kVerticalSlash;
  vs.n_vertical = kForcedColumns + 1;
  vs.n_slash = 0;
  vs.last_q = 16;
  const ResolvedHead r = resolve_head(layout, uniform_head(vs, BoundaryKind::kQ), p.q, p.k, 0);
  const auto& video = r.patterns[int(Modality::kVideo)][0].index.verticals;
  const auto& text = r.patterns[int(Modality::kText)][0].index.verticals;
  REQUIRE(std::count(video.begin(), video.end(), 50));
  REQUIRE(std::count(text.begin(), text.end(), 120));
  REQUIRE_FALSE(std::count(text.begin(), text.end(), 50));
}

TEST_CASE("a layer's batched estimation equals resolving its heads one by one", "[estimate]") {
  // 6 query heads on 2 KV heads; Vertical-Slash and grid heads, plain and with Q- and 2D-boundaries,
  // so that launches group heads by window and key set, and some heads share a profile.
  const SequenceLayout layout = LayoutBuilder().text(9).video(5, 4, 4).text(7).video(3, 4, 4).text(11).build();
  const testing::RandomQKV x = testing::random_qkv(layout.length(), 6, 2, 16, 21);
  PatternParams vs;
  vs.kind = PatternKind::kVerticalSlash;
  vs.n_vertical = kForcedColumns + 5;
  vs.n_slash = kForcedDistances + 3;
  vs.last_q = 12;
  PatternParams grid;
  grid.kind = PatternKind::kGrid;
  grid.last_q = 12;
  grid.strides = {0, 4, 8};
  const std::vector<HeadConfig> configs = {uniform_head(vs),       uniform_head(grid),
                                           uniform_head(vs, BoundaryKind::k2D), uniform_head(grid, BoundaryKind::kQ),
                                           uniform_head(vs),       uniform_head(grid, BoundaryKind::k2D)};
  std::vector<ResolvedHead> batched(configs.size());
  EstimateBatch batch;
  for (size_t h = 0; h < configs.size(); ++h) resolve_head(layout, configs[h], x.q, x.k, int64_t(h), batch, batched[h]);
  batch.run();
  for (size_t h = 0; h < configs.size(); ++h) {
    const ResolvedHead one = resolve_head(layout, configs[h], x.q, x.k, int64_t(h));
    for (Modality m : layout.modalities()) {
      for (Modality n : layout.modalities()) {
        INFO("head " << h << ", rows " << int(m) << ", keys " << int(n));
        const PatternIndex& a = batched[h].patterns[int(m)][int(n)].index;
        const PatternIndex& b = one.patterns[int(m)][int(n)].index;
        REQUIRE(a.verticals == b.verticals);
        REQUIRE(a.slashes == b.slashes);
        REQUIRE((a.stride == b.stride && a.phase == b.phase));
      }
    }
  }
  // The profiles themselves: rows of the batched call equal the single-head ones, heads in any order.
  const QueryWindow w{layout.length() - 3, 17};
  const AttentionProfile rows = last_query_profiles(x.q, x.k, {4, 1, 4}, w);
  for (int64_t r = 0; r < 3; ++r) {
    const AttentionProfile one = last_query_profile(x.q, x.k, r == 1 ? 1 : 4, w);
    REQUIRE(at::equal(rows.column[r], one.column));
    REQUIRE(at::equal(rows.distance[r], one.distance));
  }
  REQUIRE_THROWS_WITH(last_query_profiles(x.q, x.k, {}, w), mmi_catch::Contains("no heads"));
}
