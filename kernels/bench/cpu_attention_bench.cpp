// CPU microbenchmarks: plan building and plan execution per method, and the dense reference, on a
// synthetic video layout. The CPU path is the exactness reference; these numbers track its cost.
//   build/<preset>/kernels/mmi_kernel_bench --benchmark_filter=Run
#include <benchmark/benchmark.h>

#include <random>

#include "kernels/cpu/executor.h"
#include "kernels/method.h"
#include "kernels/plan_builder.h"
#include "kernels/synthetic.h"

namespace {

const char* const kSpecs[] = {
    "a_shape:sink=64,local=512", "tri_shape:sink=64,local=512,last_rows=64", "sf_fixed", "sf_strided",
    "vertical_slash:n_vertical=256,n_slash=256", "grid:lines=vs,local=512",
};

mmi::SequenceLayout layout_for(int64_t frames) {
  return mmi::LayoutBuilder().text(128).video(frames, 8, 16).text(64).build();
}

struct Inputs {
  mmi::SequenceLayout layout;
  mmi::QKV qkv;
};

Inputs make_inputs(int64_t frames) {
  Inputs in{layout_for(frames), {}};
  mmi::SyntheticOptions o;
  o.heads = 4;
  o.kv_heads = 2;
  in.qkv = mmi::make_qkv(in.layout, o);
  return in;
}

void BM_Plan(benchmark::State& state) {
  const Inputs in = make_inputs(state.range(1));
  const auto method = mmi::make_method_from_spec(kSpecs[state.range(0)]);
  const mmi::AttentionContext ctx{&in.layout, 0};
  for (auto _ : state) benchmark::DoNotOptimize(method->plan(ctx, in.qkv.q, in.qkv.k));
  state.SetLabel(kSpecs[state.range(0)]);
}

void BM_Run(benchmark::State& state) {
  const Inputs in = make_inputs(state.range(1));
  const auto method = mmi::make_method_from_spec(kSpecs[state.range(0)]);
  const mmi::AttentionContext ctx{&in.layout, 0};
  const mmi::SparsePlan plan = method->plan(ctx, in.qkv.q, in.qkv.k);
  for (auto _ : state) benchmark::DoNotOptimize(method->run(plan, in.qkv.q, in.qkv.k, in.qkv.v));
  state.SetLabel(kSpecs[state.range(0)]);
}

void BM_Dense(benchmark::State& state) {
  const Inputs in = make_inputs(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(mmi::dense_attention_cpu(in.qkv.q, in.qkv.k, in.qkv.v));
}

// Plan building alone at long lengths, from indices as online estimation resolves them (grid:
// frame-stride vertical lines; Vertical-Slash: 1000 columns and 1024 distances, forced ones included)
// for 28 query heads: the host part of the index build that `mmi bench attention` reports. Kinds: 0
// grid, 1 Vertical-Slash, 2 A-shape, 3 grid with vertical, horizontal and slash lines, 4 SF-fixed and 5
// SF-strided (blocks of one frame, 256 tokens), 6 and 7 SF-fixed with 3 and 20 summary keys per block; the second
// argument 0 lists every tile's runs and columns (PlanOptions::compact_passes off).
mmi::ResolvedHead resolved_head(int kind, int64_t length, int head) {
  mmi::ResolvedPattern p;
  std::mt19937_64 rng(head);
  if (kind == 0 || kind == 3) {
    p.params.kind = mmi::PatternKind::kGrid;
    p.params.hline = kind == 3;
    p.params.slash = kind == 3;
    p.index.stride = 256;
    p.index.phase = (head * 37) % 256;
  } else if (kind == 2) {
    p.params.kind = mmi::PatternKind::kAShape;  // the defaults: 128 sinks, a 4096 window
  } else if (kind == 4 || kind == 5 || kind == 6 || kind == 7) {
    p.params.kind = kind == 5 ? mmi::PatternKind::kSfStrided : mmi::PatternKind::kSfFixed;
    p.params.block_head = kind == 6 ? 3 : kind == 7 ? 20 : 1;
    p.index.block = 256;
  } else {
    p.params.kind = mmi::PatternKind::kVerticalSlash;
    auto pick = [&](int64_t count, int64_t forced, std::vector<int64_t>& out) {
      std::vector<bool> taken(length, false);
      for (int64_t x = 0; x < forced; ++x) taken[x] = true;
      for (int64_t n = forced; n < count;) {
        const int64_t x = static_cast<int64_t>(rng() % length);
        if (!taken[x]) taken[x] = true, ++n;
      }
      for (int64_t x = 0; x < length; ++x) if (taken[x]) out.push_back(x);
    };
    pick(p.params.n_vertical, mmi::kForcedColumns, p.index.verticals);
    pick(p.params.n_slash, mmi::kForcedDistances, p.index.slashes);
  }
  mmi::ResolvedHead h;
  h.patterns[0][0] = p;
  return h;
}

// 28 heads of one kind (resolved_head) over `length` tokens: text, 256-token frames, text.
struct PlanInputs {
  mmi::SequenceLayout layout;
  std::vector<mmi::ResolvedHead> heads;
};
PlanInputs plan_inputs(int kind, int64_t length) {
  const int64_t frames = (length - 192) / 256;
  PlanInputs in{mmi::LayoutBuilder().text(128).video(frames, 16, 16).text(length - 128 - frames * 256).build(), {}};
  for (int h = 0; h < 28; ++h) in.heads.push_back(resolved_head(kind, length, h));
  return in;
}

void BM_BuildPlan(benchmark::State& state) {
  const PlanInputs in = plan_inputs(static_cast<int>(state.range(0)), state.range(2) * 1024);
  mmi::PlanOptions options;
  options.compact_passes = state.range(1) != 0;
  mmi::SparsePlan plan;
  for (auto _ : state) benchmark::DoNotOptimize(plan = mmi::build_plan(in.layout, in.heads, options));
  double runs = 0, columns = 0, tiles = 0;  // the plan's size: what an executor's upload converts
  for (const mmi::HeadPlan& head : plan.heads) {
    for (const mmi::Pass& pass : head.passes) {
      runs += pass.runs.size();
      columns += pass.columns.size();
      tiles += pass.num_tiles();
    }
  }
  state.counters["tiles"] = tiles;
  state.counters["runs"] = runs;
  state.counters["columns"] = columns;
  const char* const labels[] = {"grid", "vertical_slash", "a_shape", "grid_vhs", "sf_fixed", "sf_strided", "sf_fixed_3", "sf_fixed_20"};
  state.SetLabel(std::string(labels[state.range(0)]) + (options.compact_passes ? "" : " listed"));
}

// Chunk counts of every tile from the plan's structure alone (plan_stats without exact counts): what the
// statistics of a long pre-fill cost per layer, and the CUDA upload per listed pass to order its tiles.
// Same kinds and heads as BM_BuildPlan, compact plans.
void BM_TileChunks(benchmark::State& state) {
  const PlanInputs in = plan_inputs(static_cast<int>(state.range(0)), state.range(1) * 1024);
  const mmi::SparsePlan plan = mmi::build_plan(in.layout, in.heads);
  mmi::PlanStats stats;
  for (auto _ : state) benchmark::DoNotOptimize(stats = mmi::plan_stats(plan, /*exact=*/false));
  state.counters["chunks"] = static_cast<double>(stats.tiles);
}

constexpr int kNumSpecs = sizeof(kSpecs) / sizeof(kSpecs[0]);
BENCHMARK(BM_Plan)->ArgsProduct({benchmark::CreateDenseRange(0, kNumSpecs - 1, 1), {32}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Run)->ArgsProduct({benchmark::CreateDenseRange(0, kNumSpecs - 1, 1), {32}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dense)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BuildPlan)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 0}, {128, 1024}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TileChunks)->ArgsProduct({{0, 3, 4, 5}, {128, 1024}})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
