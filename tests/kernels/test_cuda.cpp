// The CUDA executor against the CPU executor on identical plans (and against cuDNN for dense).
// Tagged [cuda]; each case passes with a warning where no GPU is present.
#include <ATen/ATen.h>

#include <algorithm>
#include <random>
#include <set>

#include "kernels/cpu/executor.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/estimate.h"
#include "kernels/metrics.h"
#include "kernels/plan_builder.h"
#include "tests/catch.h"
#include "tests/kernels/attention_testing.h"

using namespace mmi;
using namespace mmi::testing;

namespace {

const std::vector<PatternKind>& kKinds = kAllPatternKinds;

bool have_gpu() {
  if (cuda_available()) return true;
  WARN("no GPU in this build or machine: CUDA test skipped");
  return false;
}

// Runs the plan on both executors from the same 16-bit inputs; output written everywhere, finite, close.
void compare_executors(const SparsePlan& plan, const RandomQKV& x, double tolerance,
                       SparseKernel kernel = SparseKernel::kAuto) {
  const at::Tensor q = x.q.cuda(), k = x.k.cuda(), v = x.v.cuda();
  // Poison: free a NaN-filled block of the output's size, so the caching allocator hands it back to the
  // executor (which must neither read a row's earlier result before one is written nor leave a row
  // unwritten).
  { const at::Tensor out = at::full(x.q.sizes(), NAN, q.options()); }
  const AttentionOutput gpu = execute_plan_cuda(plan, q, k, v, kernel);
  const AttentionOutput cpu = execute_plan_cpu(plan, x.q, x.k, x.v);
  const at::Tensor got = gpu.out.cpu();
  REQUIRE(got.scalar_type() == x.q.scalar_type());
  REQUIRE(at::isfinite(got.to(at::kFloat)).all().item<bool>());
  REQUIRE(relative_error(got, cpu.out) <= tolerance);
  const at::Tensor lse_gpu = gpu.lse.cpu(), lse_cpu = cpu.lse;
  REQUIRE(at::equal(at::isinf(lse_gpu), at::isinf(lse_cpu)));
  const at::Tensor finite = at::isfinite(lse_cpu);
  REQUIRE(at::allclose(lse_gpu.masked_select(finite), lse_cpu.masked_select(finite), 2e-2, 2e-2));
}

// Heads whose plans use every compact pass form: A-shape (ranges), a grid of vertical lines only (one
// range pass with the line), Vertical-Slash, and the same grid per query modality (Q-boundary): where a
// modality's rows are several spans, a grid line pass beside listed ranges.
std::vector<ResolvedHead> compact_heads(const SequenceLayout& layout, std::mt19937_64& rng) {
  std::vector<ResolvedHead> heads(3);
  heads[0].patterns[0][0] = random_pattern(PatternKind::kAShape, layout, rng);
  ResolvedPattern& grid = heads[1].patterns[0][0] = random_pattern(PatternKind::kGrid, layout, rng);
  grid.params.vline = true;
  grid.params.hline = grid.params.slash = false;
  heads[2].patterns[0][0] = random_pattern(PatternKind::kVerticalSlash, layout, rng);
  heads.push_back(random_head(BoundaryKind::kQ, {PatternKind::kGrid}, layout, rng));
  for (auto& row : heads.back().patterns) {
    for (ResolvedPattern& p : row) p.params.vline = true, p.params.hline = p.params.slash = false;
  }
  return heads;
}

void require_forms(const SparsePlan& plan, std::initializer_list<PassForm> forms) {
  for (PassForm form : forms) {
    bool found = false;
    for (const HeadPlan& head : plan.heads) {
      for (const Pass& pass : head.passes) found = found || pass.form == form;
    }
    INFO("pass form " << static_cast<int>(form));
    REQUIRE(found);
  }
}

}  // namespace

TEST_CASE("CUDA executor equals the CPU executor on every pattern and boundary kind", "[cuda]") {
  if (!have_gpu()) return;
  std::mt19937_64 rng(31);
  uint64_t seed = 1000;
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : {BoundaryKind::kNone, BoundaryKind::kQ, BoundaryKind::k2D}) {
      for (int64_t dim : {64, 80, 128}) {
        std::vector<ResolvedHead> heads;
        for (int h = 0; h < 4; ++h) heads.push_back(random_head(boundary, kKinds, layout, rng));
        const SparsePlan plan = build_plan(layout, heads);
        INFO("layout " << layout.describe() << ", boundary " << boundary_name(boundary) << ", d " << dim);
        compare_executors(plan, random_qkv(layout.length(), 4, 2, dim, ++seed, at::kBFloat16), 1e-2);
      }
    }
  }
  // fp16 too.
  const SequenceLayout layout = SequenceLayout::parse("text:33,video:7x4x9,text:40");
  std::vector<ResolvedHead> heads;
  for (int h = 0; h < 4; ++h) heads.push_back(random_head(BoundaryKind::kQ, kKinds, layout, rng));
  compare_executors(build_plan(layout, heads), random_qkv(layout.length(), 4, 1, 128, 77, at::kHalf), 1e-2);
}

TEST_CASE("both tensor-core kernels equal the CPU executor at d = 128", "[cuda]") {
  if (!have_gpu()) return;
  std::mt19937_64 rng(47);
  uint64_t seed = 3000;
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : {BoundaryKind::kNone, BoundaryKind::k2D}) {
      std::vector<ResolvedHead> heads;
      for (int h = 0; h < 4; ++h) heads.push_back(random_head(boundary, kKinds, layout, rng));
      for (const ResolvedHead& head : compact_heads(layout, rng)) heads.push_back(head);
      const SparsePlan plan = build_plan(layout, heads);
      for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
        const RandomQKV x = random_qkv(layout.length(), 8, 2, 128, ++seed, dtype);
        for (SparseKernel kernel : {SparseKernel::kMmaSync, SparseKernel::kWgmma}) {
          INFO("layout " << layout.describe() << ", boundary " << boundary_name(boundary) << ", "
                         << sparse_kernel_name(kernel));
          compare_executors(plan, x, 1e-2, kernel);
        }
      }
    }
  }
}

TEST_CASE("grids with every combination of lines: both kernels equal the CPU executor", "[cuda]") {
  if (!have_gpu()) return;
  // Long frames, so that a phase's band spans several chunks and the line pass's rule-tested chunks
  // take the closed-form bits of a rule of grid lines; short strides, so that tiles mix phases.
  std::mt19937_64 rng(59);
  const SequenceLayout layout = SequenceLayout::parse("text:41,video:24x8x8,text:37");
  std::vector<ResolvedHead> heads(7);
  for (int lines = 1; lines <= 7; ++lines) {
    ResolvedPattern& grid = heads[lines - 1].patterns[0][0];
    grid.params.kind = PatternKind::kGrid;
    grid.params.vline = lines & 1;
    grid.params.hline = (lines >> 1) & 1;
    grid.params.slash = (lines >> 2) & 1;
    grid.params.grid_local = std::uniform_int_distribution<int64_t>(1, 200)(rng);
    grid.index.stride = lines % 2 ? 64 : std::uniform_int_distribution<int64_t>(2, 90)(rng);
    grid.index.phase = std::uniform_int_distribution<int64_t>(0, grid.index.stride - 1)(rng);
  }
  heads.push_back(heads[6]);  // 8 heads, 2 per KV head
  const SparsePlan plan = build_plan(layout, heads);
  for (const HeadPlan& head : plan.heads) {  // the line passes derive their runs (GridTileSections)
    REQUIRE(std::any_of(head.passes.begin(), head.passes.end(), [](const Pass& pass) {
      return pass.form == PassForm::kGridLine || !pass.lines.empty();
    }));
  }
  const RandomQKV x = random_qkv(layout.length(), 8, 4, 128, 4242, at::kBFloat16);
  for (SparseKernel kernel : {SparseKernel::kMmaSync, SparseKernel::kWgmma}) {
    INFO(sparse_kernel_name(kernel));
    compare_executors(plan, x, 1e-2, kernel);
  }
}

TEST_CASE("heads that share uploaded arrays: both kernels equal the CPU executor", "[cuda]") {
  if (!have_gpu()) return;
  // Alike heads (build_plan copies them, the upload shares their arrays) in different KV heads, beside
  // grid heads whose phase alone differs (same arrays, different rules), two-pass SF-strided heads, and
  // Q- and 2D-boundary heads (listed passes: tile lists, runs and columns shared too).
  std::mt19937_64 rng(61);
  const SequenceLayout layout = SequenceLayout::parse("text:41,video:12x8x8,text:37");
  std::vector<ResolvedHead> heads(4);
  heads[0].patterns[0][0] = random_pattern(PatternKind::kSfFixed, layout, rng);
  heads[1].patterns[0][0] = random_pattern(PatternKind::kSfStrided, layout, rng);
  for (int h : {2, 3}) {
    ResolvedPattern& grid = heads[h].patterns[0][0] = random_pattern(PatternKind::kGrid, layout, rng);
    grid.params.vline = grid.params.hline = grid.params.slash = true;
    grid.index.stride = 16;
    grid.index.phase = h == 2 ? 3 : 11;
  }
  heads.push_back(random_head(BoundaryKind::kQ, kKinds, layout, rng));
  heads.push_back(random_head(BoundaryKind::k2D, kKinds, layout, rng));
  for (int h = 0; h < 6; ++h) heads.push_back(heads[h]);  // 12 heads, 6 per KV head
  const SparsePlan plan = build_plan(layout, heads);
  require_forms(plan, {PassForm::kListed, PassForm::kGridLine, PassForm::kBlockSummary});
  const RandomQKV x = random_qkv(layout.length(), 12, 2, 128, 5151, at::kBFloat16);
  for (SparseKernel kernel : {SparseKernel::kMmaSync, SparseKernel::kWgmma}) {
    INFO(sparse_kernel_name(kernel));
    compare_executors(plan, x, 1e-2, kernel);
  }
}

TEST_CASE("CUDA executor at long, odd lengths", "[cuda][long]") {
  if (!have_gpu()) return;
  for (int64_t frames : {7, 63, 255}) {  // 1,000 to 65,5xx tokens with 256-token frames
    const SequenceLayout layout = LayoutBuilder().text(129).video(frames, 16, 16).text(61).build();
    std::mt19937_64 rng(frames);
    std::vector<ResolvedHead> heads(3);
    heads[0].patterns[0][0].params.kind = PatternKind::kAShape;  // a_shape sink 128, local 256
    heads[0].patterns[0][0].params.local = 256;
    heads[1].patterns[0][0].params.kind = PatternKind::kGrid;    // permuted grid, stride 256
    heads[1].patterns[0][0].params.grid_local = 256;
    heads[1].patterns[0][0].params.slash = true;
    heads[1].patterns[0][0].index.stride = 256;
    heads[1].patterns[0][0].index.phase = 3;
    // A compact Vertical-Slash head: a local band of slashes, scattered ones and groups of them up to 64
    // wide (runs whose chunks each warpgroup skips in turn), scattered verticals.
    ResolvedPattern& vs = heads[2].patterns[0][0];
    vs.params.kind = PatternKind::kVerticalSlash;
    const int64_t n = layout.length();
    std::set<int64_t> verticals = {0, 1, 2, 3}, slashes;
    for (int64_t d = 0; d < 100; ++d) slashes.insert(d);
    for (int x = 0; x < 60; ++x) verticals.insert(int64_t(rng() % n));
    for (int x = 0; x < 20; ++x) slashes.insert(int64_t(rng() % n));
    for (int x = 0; x < 12; ++x) {
      const int64_t first = int64_t(rng() % n), width = 2 + int64_t(rng() % 63);
      for (int64_t d = first; d < std::min(n, first + width); d += 1 + int64_t(rng() % 3)) slashes.insert(d);
    }
    vs.index.verticals.assign(verticals.begin(), verticals.end());
    vs.index.slashes.assign(slashes.begin(), slashes.end());
    heads.push_back(heads[1]);  // the same grid with vertical lines only: a compact grid line pass
    heads[3].patterns[0][0].params.slash = false;
    heads.emplace_back();  // SF-strided over frames: its diagonals are a compact grid line pass too
    heads[4].patterns[0][0].params.kind = PatternKind::kSfStrided;
    heads[4].patterns[0][0].index.block = 256;
    heads.push_back(heads[4]);  // SF-fixed over frames: one block summary pass, its summary keys a band of step 256
    heads[5].patterns[0][0].params.kind = PatternKind::kSfFixed;
    heads.push_back(heads[5]);  // with three summary keys per block: a band per summary phase
    heads[6].patterns[0][0].params.block_head = 3;
    heads.push_back(heads[5]);  // with twenty: the summary keys in position order, a band per block
    heads[7].patterns[0][0].params.block_head = 20;
    INFO(layout.length() << " tokens");
    const SparsePlan plan = build_plan(layout, heads);
    REQUIRE(plan.heads[0].passes.at(0).form == PassForm::kRanges);
    REQUIRE(plan.heads[1].passes.at(1).form == PassForm::kGridLine);
    REQUIRE(plan.heads[2].passes.at(0).form == PassForm::kVerticalSlash);
    REQUIRE(plan.heads[3].passes.size() == 1);  // vertical lines only: one range pass with the line
    REQUIRE(!plan.heads[3].passes[0].lines.empty());
    REQUIRE(plan.heads[4].passes.at(1).form == PassForm::kGridLine);
    for (int h = 5; h < 8; ++h) {
      REQUIRE(plan.heads[h].passes.size() == 1);
      REQUIRE(plan.heads[h].passes[0].form == PassForm::kBlockSummary);
    }
    compare_executors(plan, random_qkv(n, static_cast<int64_t>(heads.size()), 1, 128, frames, at::kBFloat16), 1e-2);
  }
}

TEST_CASE("CUDA dense plan matches cuDNN SDPA", "[cuda]") {
  if (!have_gpu()) return;
  for (int64_t n : {1, 100, 4097, 16384}) {
    const SequenceLayout layout = SequenceLayout::parse("text:" + std::to_string(n));
    const std::vector<ResolvedHead> heads(4);
    const SparsePlan plan = build_plan(layout, heads);
    const RandomQKV x = random_qkv(n, 4, 2, 128, uint64_t(n), at::kBFloat16);
    const at::Tensor q = x.q.cuda(), k = x.k.cuda(), v = x.v.cuda();
    const at::Tensor ours = execute_plan_cuda(plan, q, k, v).out;
    for (DenseBackend backend : {DenseBackend::kCudnn, DenseBackend::kFlash}) {
      INFO(dense_backend_name(backend) << " at " << n);
      const at::Tensor reference = run_dense_cuda(prepare_dense_inputs(q, k, v), backend);
      REQUIRE(relative_error(ours, reference) <= 1e-2);
    }
  }
}

TEST_CASE("CUDA executor: a small case for compute-sanitizer", "[cuda][sanitizer]") {
  const SequenceLayout layout = SequenceLayout::parse("text:21,video:3x4x5,text:11,video:2x4x4,text:9");
  std::mt19937_64 rng(5);
  std::vector<ResolvedHead> heads = compact_heads(layout, rng);
  for (int h = 0; h < 2; ++h) heads.push_back(random_head(BoundaryKind::k2D, kKinds, layout, rng));
  heads.emplace_back();  // SF-fixed with its summary keys in position order, a band per block
  heads.back().patterns[0][0].params.kind = PatternKind::kSfFixed;
  heads.back().patterns[0][0].params.block_head = 10;
  heads.back().patterns[0][0].index.block = 23;
  const SparsePlan plan = build_plan(layout, heads);
  require_forms(plan, {PassForm::kListed, PassForm::kVerticalSlash, PassForm::kRanges, PassForm::kGridLine,
                       PassForm::kBlockSummary});
  if (!have_gpu()) return;
  for (int64_t dim : {64, 128}) {  // mma.sync, and wgmma where the GPU has it
    compare_executors(plan, random_qkv(layout.length(), static_cast<int64_t>(heads.size()), 1, dim, 3, at::kBFloat16), 1e-2);
  }
  // The estimation's fused profile kernels, two 64-row steps of three heads, likewise.
  for (int64_t dim : {64, 128}) {
    const RandomQKV x = random_qkv(layout.length(), 6, 1, dim, 4, at::kBFloat16);
    const AttentionProfile p = last_query_profiles(x.q.cuda(), x.k.cuda(), {0, 3, 5}, QueryWindow{layout.length(), 70});
    REQUIRE(at::isfinite(p.column).all().item<bool>());
    REQUIRE(at::isfinite(p.distance).all().item<bool>());
  }
}

TEST_CASE("CUDA executor rejects what it cannot run", "[cuda]") {
  const SequenceLayout layout = SequenceLayout::parse("text:40");
  const SparsePlan plan = build_plan(layout, std::vector<ResolvedHead>(2));
  const RandomQKV x = random_qkv(40, 2, 1, 32, 1, at::kBFloat16);
  if (!cuda_available()) {
    REQUIRE_THROWS_WITH(execute_plan_cuda(plan, x.q, x.k, x.v), Contains("CUDA"));
    return;
  }
  REQUIRE_THROWS_WITH(execute_plan_cuda(plan, x.q.cuda(), x.k.cuda(), x.v.cuda()),
                      Contains("head_dim must be 64, 80 or 128"));
  const RandomQKV y = random_qkv(40, 2, 1, 64, 1, at::kFloat);
  REQUIRE_THROWS_WITH(execute_plan_cuda(plan, y.q.cuda(), y.k.cuda(), y.v.cuda()),
                      Contains("bf16 or fp16"));
  const RandomQKV z = random_qkv(40, 2, 1, 64, 1, at::kBFloat16);
  REQUIRE_THROWS_WITH(execute_plan_cuda(plan, z.q.cuda(), z.k.cuda(), z.v.cuda(), SparseKernel::kWgmma),
                      Contains("wgmma kernel needs head_dim 128"));
}

TEST_CASE("CUDA executor takes inputs that start mid-row", "[cuda]") {
  if (!have_gpu()) return;
  const SequenceLayout layout = SequenceLayout::parse("text:21,video:3x4x5,text:11");
  std::mt19937_64 rng(9);
  const SparsePlan plan = build_plan(layout, compact_heads(layout, rng));
  const RandomQKV x = random_qkv(layout.length(), 4, 2, 128, 11, at::kBFloat16);
  // Each input one element into a larger buffer: contiguous, but not 16-byte aligned.
  auto shifted = [](const at::Tensor& t) {
    const at::Tensor buffer = at::empty({t.numel() + 1}, t.options().device(at::kCUDA));
    at::Tensor view = buffer.narrow(0, 1, t.numel()).view(t.sizes());
    view.copy_(t);
    return view;
  };
  const at::Tensor q = shifted(x.q), k = shifted(x.k), v = shifted(x.v);
  REQUIRE(reinterpret_cast<uintptr_t>(k.data_ptr()) % 16 != 0);
  for (SparseKernel kernel : {SparseKernel::kMmaSync, SparseKernel::kWgmma}) {
    INFO(sparse_kernel_name(kernel));
    const at::Tensor want = execute_plan_cuda(plan, x.q.cuda(), x.k.cuda(), x.v.cuda(), kernel).out;
    REQUIRE(at::equal(execute_plan_cuda(plan, q, k, v, kernel).out, want));
  }
}

TEST_CASE("fused window profile equals the ATen profile on the GPU and the CPU", "[cuda]") {
  if (!have_gpu()) return;
  struct Case {
    int64_t n, end, count, dim;
    at::ScalarType dtype;
    bool filter;
  };
  // Odd lengths, windows shorter and longer than one 64-row step, key counts off the 256-key blocks.
  // bf16 and fp16 with D a multiple of 16 take the tensor-core kernels (wgmma for D = 128 on Hopper),
  // fp32 and D = 40 the others.
  const Case cases[] = {{300, 300, 64, 128, at::kBFloat16, false}, {1000, 777, 100, 80, at::kBFloat16, true},
                        {129, 129, 5, 64, at::kHalf, false},        {4099, 4099, 64, 128, at::kFloat, true},
                        {20000, 19999, 64, 128, at::kBFloat16, false}, {64, 64, 64, 64, at::kFloat, false},
                        {700, 650, 130, 40, at::kBFloat16, true},   {3000, 2999, 64, 128, at::kHalf, true},
                        {5000, 4900, 130, 128, at::kBFloat16, true}, {777, 700, 5, 128, at::kHalf, false}};
  uint64_t seed = 500;
  for (const Case& c : cases) {
    const RandomQKV x = random_qkv(c.n, 4, 2, c.dim, ++seed, c.dtype);
    std::vector<uint8_t> filter(c.n);
    for (int64_t t = 0; t < c.n; ++t) filter[t] = (t / 7) % 3 != 0;
    for (int64_t head : {0, 3}) {
      INFO("n " << c.n << " window [" << c.end - c.count << ", " << c.end << ") d " << c.dim << " head " << head);
      const QueryWindow w{c.end, c.count};
      const std::vector<uint8_t>* f = c.filter ? &filter : nullptr;
      const AttentionProfile cpu = last_query_profile(x.q, x.k, head, w, f);
      const AttentionProfile aten = last_query_profile_aten(x.q.cuda(), x.k.cuda(), head, w, f);
      const AttentionProfile gpu = last_query_profile(x.q.cuda(), x.k.cuda(), head, w, f);
      for (const auto& [got, want] : {std::make_pair(gpu.column.cpu(), cpu.column), std::make_pair(gpu.distance.cpu(), cpu.distance),
                                      std::make_pair(gpu.column.cpu(), aten.column.cpu()),
                                      std::make_pair(gpu.distance.cpu(), aten.distance.cpu())}) {
        REQUIRE(got.sizes() == want.sizes());
        REQUIRE(at::isfinite(got).all().item<bool>());
        // Sums of probabilities: absolute error against the total mass (count rows, each summing to 1).
        REQUIRE((got - want).abs().max().item<double>() <= 1e-5 * c.count);
      }
      REQUIRE(gpu.column.sum().item<double>() == Approx(cpu.column.sum().item<double>()).epsilon(1e-5));
    }
    REQUIRE_FALSE(last_query_profile(x.q.cuda(), x.k.cuda(), 1, QueryWindow{c.end, c.count}, nullptr, false).distance.defined());
    // Several heads in one launch, in any order and repeated, past the heads one launch holds: each
    // row equals that head's own profile.
    std::vector<int64_t> heads;
    for (int64_t s = 0; s < 131; ++s) heads.push_back((3 * s + 2) % 4);
    const std::vector<uint8_t>* f = c.filter ? &filter : nullptr;
    const QueryWindow w{c.end, c.count};
    const AttentionProfile all = last_query_profiles(x.q.cuda(), x.k.cuda(), heads, w, f);
    REQUIRE(all.column.sizes() == at::IntArrayRef({131, c.end}));
    for (int64_t r : {0, 1, 2, 3, 127, 128, 130}) {
      INFO("n " << c.n << " d " << c.dim << " batched row " << r << " (head " << heads[r] << ")");
      const AttentionProfile one = last_query_profile(x.q.cuda(), x.k.cuda(), heads[r], w, f);
      // The same kernels; the row statistics are reduced over [H, blocks, count] rather than [1, ...].
      REQUIRE((all.column[r] - one.column).abs().max().item<double>() <= 1e-6 * c.count);
      REQUIRE((all.distance[r] - one.distance).abs().max().item<double>() <= 1e-6 * c.count);
    }
  }
}
