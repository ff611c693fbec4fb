// GPU microbenchmarks (Google Benchmark, manual CUDA-event timing): one layer of Qwen2-7B-geometry
// attention (28 query heads, 4 KV heads, d=128, bf16) over a video layout, cuDNN SDPA against our
// kernel on each method's plan. The full sweep with index-build times is `mmi bench attention`.
//   build/cuda/kernels/mmi_cuda_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <string>

#include "kernels/cuda/cuda_executor.h"
#include "kernels/estimate.h"
#include "kernels/method.h"
#include "kernels/synthetic.h"

namespace {

const char* const kMethods[] = {"grid", "vertical_slash", "a_shape", "dense"};

struct Case {
  mmi::SequenceLayout layout;
  mmi::QKV qkv;
};

// One set of inputs per length, kept for the whole run (generating them is not what is measured).
const Case& inputs(int64_t tokens) {
  static std::map<int64_t, std::unique_ptr<Case>> cache;
  auto& slot = cache[tokens];
  if (!slot) {
    const int64_t frames = (tokens - 192) / 256;
    auto layout = mmi::LayoutBuilder().text(128).video(frames, 16, 16).text(tokens - 128 - frames * 256).build();
    mmi::SyntheticOptions o;
    o.heads = 28;
    o.kv_heads = 4;
    o.head_dim = 128;
    o.dtype = at::kBFloat16;
    o.device = at::Device(at::kCUDA);
    slot = std::make_unique<Case>(Case{layout, mmi::make_qkv(layout, o)});
  }
  return *slot;
}

double dense_flops(int64_t tokens) { return 2.0 * tokens * tokens * 128 * 28; }

void BM_CudnnSdpa(benchmark::State& state) {
  const Case& c = inputs(state.range(0));
  const mmi::DenseInputs dense = mmi::prepare_dense_inputs(c.qkv.q, c.qkv.k, c.qkv.v);
  for (auto _ : state) {
    state.SetIterationTime(mmi::time_cuda_ms([&] { mmi::run_dense_cuda(dense, mmi::DenseBackend::kCudnn); }, 0, 1) / 1e3);
  }
  state.counters["TFLOP/s"] = benchmark::Counter(dense_flops(state.range(0)) * state.iterations() / 1e12,
                                                 benchmark::Counter::kIsRate);
}

void BM_SparseRun(benchmark::State& state) {
  const Case& c = inputs(state.range(1));
  const auto method = mmi::make_method_from_spec(kMethods[state.range(0)]);
  const mmi::SparsePlan plan = method->plan(mmi::AttentionContext{&c.layout, 0}, c.qkv.q, c.qkv.k);
  for (auto _ : state) {
    state.SetIterationTime(mmi::time_cuda_ms([&] { method->run(plan, c.qkv.q, c.qkv.k, c.qkv.v); }, 0, 1) / 1e3);
  }
  state.SetLabel(kMethods[state.range(0)]);
  state.counters["effective TFLOP/s"] = benchmark::Counter(dense_flops(state.range(1)) * state.iterations() / 1e12,
                                                           benchmark::Counter::kIsRate);
  const mmi::ChunkCompute compute = mmi::chunk_compute(mmi::auto_sparse_kernel(128));
  state.counters["FLOPs %"] = 100.0 * mmi::plan_stats(plan, false, compute).flops_ratio(state.range(1));
}

// The two tensor-core kernels on the same plan (arg 0: method, arg 1: 1 = mma.sync, 2 = wgmma), with
// the rate on the tiles they compute.
void BM_SparseKernel(benchmark::State& state) {
  const Case& c = inputs(state.range(2));
  const auto method = mmi::make_method_from_spec(kMethods[state.range(0)]);
  const mmi::SparsePlan plan = method->plan(mmi::AttentionContext{&c.layout, 0}, c.qkv.q, c.qkv.k);
  const auto kernel = static_cast<mmi::SparseKernel>(state.range(1));
  for (auto _ : state) {
    state.SetIterationTime(
        mmi::time_cuda_ms([&] { mmi::execute_plan_cuda(plan, c.qkv.q, c.qkv.k, c.qkv.v, kernel); }, 0, 1) / 1e3);
  }
  state.SetLabel(std::string(kMethods[state.range(0)]) + " " + mmi::sparse_kernel_name(kernel));
  const double computed = mmi::computed_flops(mmi::plan_stats(plan, false, mmi::chunk_compute(kernel)), 128);
  state.counters["TFLOP/s computed"] =
      benchmark::Counter(computed * state.iterations() / 1e12, benchmark::Counter::kIsRate);
}

void BM_SparsePlan(benchmark::State& state) {
  const Case& c = inputs(state.range(1));
  const auto method = mmi::make_method_from_spec(kMethods[state.range(0)]);
  for (auto _ : state) benchmark::DoNotOptimize(method->plan(mmi::AttentionContext{&c.layout, 0}, c.qkv.q, c.qkv.k));
  state.SetLabel(kMethods[state.range(0)]);
}

// The plan's upload alone (the last part of the index build): flattening, tile ordering, one pinned
// copy, synchronised.
void BM_PlanUpload(benchmark::State& state) {
  const Case& c = inputs(state.range(1));
  const auto method = mmi::make_method_from_spec(kMethods[state.range(0)]);
  mmi::SparsePlan plan = method->plan(mmi::AttentionContext{&c.layout, 0}, c.qkv.q, c.qkv.k);
  for (auto _ : state) {
    mmi::prepare_plan_cuda(plan, c.qkv.q.size(1) / c.qkv.k.size(1), c.qkv.q.device());
    mmi::cuda_synchronize();
  }
  state.SetLabel(kMethods[state.range(0)]);
}

// The online estimation's last-query profile of all 28 heads (64 window rows, column and distance
// sums), in the same process: the ATen path head by head (arg 0 = 0), the fused kernels head by head
// (1), and the fused kernels for every head in one batch (2), as a layer's estimation runs them.
void BM_WindowProfile(benchmark::State& state) {
  const Case& c = inputs(state.range(1));
  const mmi::QueryWindow window{c.layout.length(), 64};
  std::vector<int64_t> heads(c.qkv.q.size(1));
  std::iota(heads.begin(), heads.end(), 0);
  const auto path = state.range(0);
  for (auto _ : state) {
    state.SetIterationTime(mmi::time_cuda_ms(
                               [&] {
                                 if (path == 2) {
                                   mmi::last_query_profiles(c.qkv.q, c.qkv.k, heads, window);
                                   return;
                                 }
                                 for (int64_t h : heads) {
                                   if (path == 1) mmi::last_query_profile(c.qkv.q, c.qkv.k, h, window);
                                   else mmi::last_query_profile_aten(c.qkv.q, c.qkv.k, h, window);
                                 }
                               },
                               0, 1) /
                           1e3);
  }
  state.SetLabel(path == 2 ? "fused, batched" : path == 1 ? "fused" : "aten");
}

void lengths(benchmark::internal::Benchmark* b) {
  for (int64_t n : {32768, 131072}) b->Arg(n);
}
void methods_by_lengths(benchmark::internal::Benchmark* b) {
  for (int m = 0; m < 4; ++m) {
    for (int64_t n : {32768, 131072}) b->Args({m, n});
  }
}

BENCHMARK(BM_CudnnSdpa)->Apply(lengths)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SparseRun)->Apply(methods_by_lengths)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SparseKernel)->ArgsProduct({{0, 1, 3}, {1, 2}, {131072}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WindowProfile)->ArgsProduct({{0, 1, 2}, {131072, 1048576}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SparsePlan)->Apply(methods_by_lengths)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanUpload)->ArgsProduct({{0, 1, 2}, {131072, 1048576}})->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (!mmi::cuda_available()) {
    std::fprintf(stderr, "mmi_cuda_bench: needs a CUDA GPU\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
