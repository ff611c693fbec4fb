// CPU microbenchmarks: plan building and plan execution per method, and the dense reference, on a
// synthetic video layout. The CPU path is the exactness reference; these numbers track its cost.
//   build/<preset>/kernels/mmi_kernel_bench --benchmark_filter=Run
#include <benchmark/benchmark.h>

#include "kernels/cpu/executor.h"
#include "kernels/method.h"
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

constexpr int kNumSpecs = sizeof(kSpecs) / sizeof(kSpecs[0]);
BENCHMARK(BM_Plan)->ArgsProduct({benchmark::CreateDenseRange(0, kNumSpecs - 1, 1), {32}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Run)->ArgsProduct({benchmark::CreateDenseRange(0, kNumSpecs - 1, 1), {32}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dense)->Arg(32)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
