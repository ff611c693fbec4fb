// `mmi bench attention`: pre-fill attention of one layer, methods x context lengths, on a paper-like
// video layout (text, frames x tokens per frame, question) with Qwen2-7B geometry by default. Times the
// index build (plan) and the kernel (run) separately, and the dense baselines (cuDNN and flash SDPA) in
// the same process; prints a table and writes JSON.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/run_info.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/method.h"
#include "kernels/synthetic.h"

namespace mmi {
namespace {

struct Case {
  int64_t tokens = 0;
  std::string method;  // method name or a dense baseline
  std::string configuration;
  std::string error;
  double plan_ms = NAN, run_ms = NAN, density = NAN, flops_ratio = NAN;
  double estimate_ms = NAN, build_ms = NAN, upload_ms = NAN;
  double peak_gb = NAN;  // peak GPU memory of the case, inputs included
  double achieved_tflops = NAN, effective_tflops = NAN, speedup = NAN, speedup_with_plan = NAN;
};

int64_t parse_length(const std::string& text) {
  std::string digits = text;
  int64_t unit = 1;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) unit = 1024, digits.pop_back();
  else if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) unit = 1024 * 1024, digits.pop_back();
  int64_t value = 0;
  if (!parse_int64(digits, value) || value <= 0) throw UsageError("bad length '" + text + "' (e.g. 4096, 16K, 1M)");
  return value * unit;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// text 128 | frames x tokens_per_frame | question (at least 64 tokens, absorbing the remainder).
SequenceLayout video_layout(int64_t tokens, int64_t tokens_per_frame) {
  const int64_t frames = (tokens - 192) / tokens_per_frame;
  if (frames < 1) throw UsageError("length " + std::to_string(tokens) + " is too short for one frame");
  const int64_t side = static_cast<int64_t>(std::sqrt(double(tokens_per_frame)));
  LayoutBuilder builder;
  builder.text(128);
  if (side * side == tokens_per_frame) builder.video(frames, side, side); else builder.video(frames, 1, tokens_per_frame);
  return builder.text(tokens - 128 - frames * tokens_per_frame).build();
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format(double x, const char* fmt) {
  if (std::isnan(x)) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), fmt, x);
  return text;
}

void print_row(const Case& c) {
  if (!c.error.empty()) {
    std::printf("%8lld %-16s error: %s\n", (long long)c.tokens, c.method.c_str(), c.error.c_str());
  } else {
    std::printf("%8lld %-16s %9s %9s %8s %8s %9s %9s %8s %8s %7s\n", (long long)c.tokens, c.method.c_str(),
                format(c.plan_ms, "%.2f").c_str(), format(c.run_ms, "%.2f").c_str(),
                format(100 * c.density, "%.2f%%").c_str(), format(100 * c.flops_ratio, "%.2f%%").c_str(),
                format(c.achieved_tflops, "%.1f").c_str(), format(c.effective_tflops, "%.1f").c_str(),
                format(c.speedup, "%.2fx").c_str(), format(c.speedup_with_plan, "%.2fx").c_str(),
                format(c.peak_gb, "%.1f").c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int bench_command(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) != "attention") {
    throw UsageError("usage: mmi bench attention [options] (see mmi bench attention --help)");
  }
  ArgParser args("bench attention",
                 "One layer of pre-fill attention on a video layout: every method's index build and kernel\n"
                 "time against cuDNN SDPA (the fastest dense kernel) measured in the same run.");
  args.option("lengths", "LIST", "context lengths", "16K,32K,64K,128K")
      .option("methods", "LIST", "methods as NAME or NAME:key=value;... separated by commas between methods "
              "(use ';' between a method's parameters)", "grid,vertical_slash,a_shape,tri_shape,dense")
      .option("heads", "N", "query heads", "28")
      .option("kv-heads", "N", "KV heads", "4")
      .option("head-dim", "D", "head dimension", "128")
      .option("tokens-per-frame", "T", "tokens per video frame", "256")
      .option("dtype", "T", "bf16 or fp16", "bf16")
      .option("inputs", "KIND", "structured (sinks, local, grid columns, as in synthetic.h) or random", "structured")
      .option("seed", "N", "random seed", "0")
      .option("warmup", "N", "untimed runs before timing (and at least 0.2 s of them)", "2")
      .option("repeats", "N", "timed runs (median reported)", "10")
      .option("json", "FILE", "write the results as JSON", "")
      .option("baselines", "LIST", "dense SDPA baselines to time: cudnn, flash, efficient, or none", "cudnn,flash");
  if (!args.parse(argc, argv, 3)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!cuda_available()) throw std::runtime_error("mmi bench attention needs a CUDA GPU and the CUDA build");
  const int64_t heads = args.get_int("heads"), kv_heads = args.get_int("kv-heads"), dim = args.get_int("head-dim");
  const int warmup = static_cast<int>(args.get_int("warmup")), repeats = static_cast<int>(args.get_int("repeats"));
  const at::ScalarType dtype = args.get("dtype") == "fp16" ? at::kHalf : at::kBFloat16;
  std::vector<DenseBackend> baselines;
  for (const std::string& name : split(args.get("baselines"), ',')) {
    if (name == "cudnn") baselines.push_back(DenseBackend::kCudnn);
    else if (name == "flash") baselines.push_back(DenseBackend::kFlash);
    else if (name == "efficient") baselines.push_back(DenseBackend::kEfficient);
    else if (name != "none") throw UsageError("--baselines takes cudnn, flash, efficient or none, got '" + name + "'");
  }
  std::vector<std::unique_ptr<AttentionMethod>> methods;
  for (std::string spec : split(args.get("methods"), ',')) {
    for (char& c : spec) c = c == ';' ? ',' : c;
    methods.push_back(make_method_from_spec(spec));
  }
  const std::string device = cuda_device_description();
  const std::string kernel = sparse_kernel_name(auto_sparse_kernel(dim));
  std::printf("mmi bench attention: %s, commit %s, LibTorch %s; sparse kernel %s\n", device.c_str(),
              git_commit().c_str(), libtorch_version().c_str(), kernel.c_str());
  std::printf("%lld query heads, %lld KV heads, head_dim %lld, %s, %s inputs; median of %d runs after %d warm-up\n",
              (long long)heads, (long long)kv_heads, (long long)dim, args.get("dtype").c_str(),
              args.get("inputs").c_str(), repeats, warmup);
  std::printf("%8s %-16s %9s %9s %8s %8s %9s %9s %8s %8s %7s\n", "tokens", "method", "plan ms", "run ms", "density",
              "FLOPs", "TF/s ach", "TF/s eff", "speedup", "w/ plan", "peak GB");

  // Median of `repeats` timed runs; cases slower than a quarter second get one warm-up and 3 runs. The
  // others warm up for at least `warmup` runs and kSettleMs: right after a long dense baseline the GPU's
  // clocks take a while to recover, and a kernel of a few milliseconds timed then ran up to 25% slower
  // than on its own.
  constexpr double kSettleMs = 200.0;
  auto timed = [&](const std::function<void()>& fn) {
    const double first = time_cuda_ms(fn, 0, 1);
    if (first > 250.0) return time_cuda_ms(fn, 0, std::min(repeats, 3));
    const int settle = static_cast<int>(std::min(1000.0, std::ceil(kSettleMs / std::max(first, 0.01))));
    return time_cuda_ms(fn, std::max(warmup, settle), repeats);
  };
  std::vector<Case> cases;
  for (const std::string& length : split(args.get("lengths"), ',')) {
    const int64_t n = parse_length(length);
    const SequenceLayout layout = video_layout(n, args.get_int("tokens-per-frame"));
    const double dense_flops = 2.0 * double(n) * double(n) * dim * heads;  // causal: 2 N^2 d per head
    at::Tensor q, k, v;
    try {
      SyntheticOptions o;
      o.heads = heads;
      o.kv_heads = kv_heads;
      o.head_dim = dim;
      o.dtype = dtype;
      o.structured = args.get("inputs") != "random";
      o.seed = static_cast<uint64_t>(args.get_int("seed"));
      o.device = at::Device(at::kCUDA);
      QKV x = make_qkv(layout, o);
      q = std::move(x.q);
      k = std::move(x.k);
      v = std::move(x.v);
    } catch (const c10::OutOfMemoryError& e) {
      Case c;
      c.tokens = n;
      c.method = "inputs";
      c.error = "out of GPU memory allocating q, k, v";
      print_row(c);
      cases.push_back(c);
      continue;
    }
    double baseline_ms = NAN;
    {
      for (DenseBackend backend : baselines) {
        Case c;
        c.tokens = n;
        c.method = dense_backend_name(backend);
        c.configuration = "PyTorch SDPA, causal";
        try {
          cuda_reset_peak_memory();
          const DenseInputs dense = prepare_dense_inputs(q, k, v);
          c.run_ms = timed([&] { run_dense_cuda(dense, backend); });
          c.density = 1.0;
          c.flops_ratio = 1.0;
          c.achieved_tflops = c.effective_tflops = dense_flops / (c.run_ms * 1e9);
          if (backend == DenseBackend::kCudnn) baseline_ms = c.run_ms;
          c.peak_gb = cuda_peak_memory_bytes() / 1e9;
        } catch (const std::exception& e) {
          c.error = e.what();
        }
        c.speedup = baseline_ms / c.run_ms;
        print_row(c);
        cases.push_back(c);
        cuda_release_cached_memory();
      }
    }
    for (const auto& method : methods) {
      Case c;
      c.tokens = n;
      c.method = method->name();
      c.configuration = method->describe();
      try {
        const AttentionContext ctx{&layout, 0};
        cuda_reset_peak_memory();
        // The first build is a warm-up (first-call library and allocator costs are not the method's).
        const SparsePlan plan = method->plan(ctx, q, k);
        cuda_synchronize();
        const PlanStats stats = plan_stats(plan, /*exact=*/n <= 65536);
        c.run_ms = timed([&] { method->run(plan, q, k, v); });
        // The index build, timed after the kernel (so after its settling warm-up too): the median of
        // kIndexBuilds builds (more with more repeats), with that build's split into estimation, plan and
        // upload. A build of a millisecond is a wall-clock time with host work in it, and its spread
        // from build to build is wider than a kernel's.
        constexpr int kIndexBuilds = 5;
        std::vector<std::pair<double, std::array<double, 3>>> builds;
        for (int r = 0; r < std::clamp(repeats, kIndexBuilds, 2 * kIndexBuilds - 1); ++r) {
          const double t0 = now_ms();
          const SparsePlan rebuilt = method->plan(ctx, q, k);
          cuda_synchronize();
          builds.push_back({now_ms() - t0, {rebuilt.estimate_ms, rebuilt.build_ms, rebuilt.upload_ms}});
        }
        std::sort(builds.begin(), builds.end());
        const auto& median = builds[builds.size() / 2];
        c.plan_ms = median.first;
        c.estimate_ms = median.second[0];
        c.build_ms = median.second[1];
        c.upload_ms = median.second[2];
        if (n <= 65536) c.density = stats.density();
        c.flops_ratio = stats.flops_ratio(n);
        c.achieved_tflops = computed_flops(stats, dim) / (c.run_ms * 1e9);
        c.effective_tflops = dense_flops / (c.run_ms * 1e9);
        c.speedup = baseline_ms / c.run_ms;
        c.speedup_with_plan = baseline_ms / (c.run_ms + c.plan_ms);
        c.peak_gb = cuda_peak_memory_bytes() / 1e9;
        if (!plan.heads.empty()) c.configuration += " " + plan.heads[0].description;
      } catch (const c10::OutOfMemoryError&) {
        c.error = "out of GPU memory";
      } catch (const std::exception& e) {
        c.error = e.what();
      }
      print_row(c);
      cases.push_back(c);
      cuda_release_cached_memory();
    }
  }
  std::printf("plan ms: index build (estimation + plan + upload, wall clock, median of 5 to 9 builds;\n"
              "         the JSON splits it);\n"
              "run ms: the kernel (CUDA events);\n"
              "TF/s ach: computed-tile FLOPs / run; TF/s eff: dense causal FLOPs (2*N^2*d*heads) / run;\n"
              "speedup: cuDNN SDPA time / run time; w/ plan: / (run + plan);\n"
              "peak GB: peak GPU memory allocated during the case, q/k/v and the plan included.\n");
  if (!args.get("json").empty()) {
    nlohmann::json j;
    j["context"] = {{"command", "mmi bench attention"}, {"device", device}, {"kernel", kernel},
                    {"commit", git_commit()}, {"libtorch", libtorch_version()}, {"time", utc_timestamp()},
                    {"heads", heads}, {"kv_heads", kv_heads}, {"head_dim", dim}, {"dtype", args.get("dtype")},
                    {"tokens_per_frame", args.get_int("tokens-per-frame")}, {"repeats", repeats},
                    {"inputs", args.get("inputs")}, {"seed", args.get_int("seed")}};
    for (const Case& c : cases) {
      nlohmann::json row = {{"tokens", c.tokens}, {"method", c.method}, {"configuration", c.configuration}};
      auto put = [&](const char* key, double x) { if (!std::isnan(x)) row[key] = x; };
      put("plan_ms", c.plan_ms);
      put("plan_estimate_ms", c.estimate_ms);
      put("plan_build_ms", c.build_ms);
      put("plan_upload_ms", c.upload_ms);
      put("peak_gpu_gb", c.peak_gb);
      put("run_ms", c.run_ms);
      put("density", c.density);
      put("flops_ratio", c.flops_ratio);
      put("achieved_tflops", c.achieved_tflops);
      put("effective_tflops", c.effective_tflops);
      put("speedup_vs_cudnn", c.speedup);
      put("speedup_with_plan_vs_cudnn", c.speedup_with_plan);
      if (!c.error.empty()) row["error"] = c.error;
      j["cases"].push_back(row);
    }
    std::ofstream file(args.get("json"));
    if (!file) throw std::runtime_error("cannot write " + args.get("json"));
    file << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace mmi
