#include "tests/kernels/attention_testing.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <set>

namespace mmi::testing {

const std::vector<PatternKind> kAllPatternKinds = {
    PatternKind::kDense,     PatternKind::kAShape,        PatternKind::kTriShape, PatternKind::kSfFixed,
    PatternKind::kSfStrided, PatternKind::kVerticalSlash, PatternKind::kGrid};

RandomQKV random_qkv(int64_t n, int64_t heads, int64_t kv_heads, int64_t dim, uint64_t seed, at::ScalarType dtype) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {at::randn({n, heads, dim}, gen).to(dtype), at::randn({n, kv_heads, dim}, gen).to(dtype),
          at::randn({n, kv_heads, dim}, gen).to(dtype)};
}

at::Tensor oracle_mask(const SequenceLayout& layout, const std::vector<ResolvedHead>& heads) {
  const int64_t n = layout.length();
  at::Tensor mask = at::zeros({int64_t(heads.size()), n, n}, at::kBool);
  auto m = mask.accessor<bool, 3>();
  for (size_t h = 0; h < heads.size(); ++h) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j <= i; ++j) m[h][i][j] = head_keeps(layout, heads[h], i, j);
    }
  }
  return mask;
}

std::vector<int> count_matrix(const SparsePlan& plan, int head) {
  const int64_t n = plan.length;
  std::vector<int> counts(n * n, 0);
  for_each_counted_element(plan, head, [&](int64_t i, int64_t j) { ++counts[i * n + j]; });
  return counts;
}

namespace {

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

std::vector<int64_t> random_subset(std::mt19937_64& rng, int64_t n, int64_t count, int64_t forced) {
  std::set<int64_t> out;
  for (int64_t x = 0; x < std::min(forced, n); ++x) out.insert(x);
  while (int64_t(out.size()) < std::min(n, count + forced)) out.insert(uniform(rng, 0, n - 1));
  return {out.begin(), out.end()};
}

}  // namespace

ResolvedPattern random_pattern(PatternKind kind, const SequenceLayout& layout, std::mt19937_64& rng) {
  const int64_t n = layout.length();
  ResolvedPattern r;
  PatternParams& p = r.params;
  p.kind = kind;
  p.sink = uniform(rng, 0, n / 4);
  p.local = uniform(rng, 1, n / 3);
  p.last_rows = uniform(rng, 0, n / 5);
  p.block_head = uniform(rng, 0, 3);
  p.grid_local = uniform(rng, 1, n / 4);
  p.vline = uniform(rng, 0, 1);
  p.hline = uniform(rng, 0, 1);
  p.slash = uniform(rng, 0, 1);
  r.index.block = uniform(rng, 1, 24);
  r.index.verticals = random_subset(rng, n, uniform(rng, 0, n / 6), kForcedColumns / 10);
  r.index.slashes = random_subset(rng, n, uniform(rng, 0, n / 6), uniform(rng, 1, 12));
  r.index.stride = uniform(rng, 1, std::max<int64_t>(1, layout.frame_stride() + 3));
  r.index.phase = uniform(rng, 0, r.index.stride - 1);
  return r;
}

ResolvedHead random_head(BoundaryKind boundary, const std::vector<PatternKind>& kinds, const SequenceLayout& layout,
                         std::mt19937_64& rng) {
  ResolvedHead head;
  head.boundary = boundary;
  for (auto& row : head.patterns) {
    for (auto& p : row) p = random_pattern(kinds[uniform(rng, 0, kinds.size() - 1)], layout, rng);
  }
  return head;
}

std::vector<SequenceLayout> test_layouts() {
  return {
      SequenceLayout::parse("text:97"),
      SequenceLayout::parse("text:37,video:5x3x7,text:23"),
      SequenceLayout::parse("video:4x5x5,text:9"),
      SequenceLayout::parse("text:19,video:3x4x5,text:11,image:4x4,text:7,video:2x5x5,text:13"),
      LayoutBuilder().text(13).video(6, 3, 4, 1).text(29).build(),  // a separator token per frame
  };
}

}  // namespace mmi::testing
