// `mmi bench attention`: pre-fill attention of one layer, methods x context lengths, on a paper-like
// video layout (text, frames x tokens per frame, question) with Qwen2-7B geometry by default. Times the
// index build (plan) and the kernel (run) separately, and the dense baselines (cuDNN and flash SDPA) in
// the same process; prints a table and each method's crossover length, and writes JSON and/or rows of
// the SQLite result database as each case finishes.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <vector>

#include "harness/bench_results.h"
#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/run_info.h"
#ifdef MMI_WITH_STORE
#include "harness/store.h"
#endif
#include "kernels/cuda/cuda_executor.h"
#include "kernels/method.h"
#include "kernels/synthetic.h"

namespace mmi {
namespace {

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

void print_row(const KernelBenchRecord& c) {
  if (c.status != "ok") {
    std::printf("%8lld %-16s error: %s\n", (long long)c.tokens, c.method.c_str(), c.error.c_str());
  } else {
    std::printf("%8lld %-16s %9s %9s %8s %8s %8s %9s %9s %7s %8s %8s %7s\n", (long long)c.tokens, c.method.c_str(),
                format(c.plan_ms, "%.2f").c_str(), format(c.run_ms, "%.2f").c_str(),
                format(100 * index_share(c), "%.1f%%").c_str(), format(100 * c.density, "%.2f%%").c_str(),
                format(100 * c.flops_ratio, "%.2f%%").c_str(), format(c.achieved_tflops, "%.1f").c_str(),
                format(c.effective_tflops, "%.1f").c_str(), format(100 * share_of_cudnn(c), "%.0f%%").c_str(),
                format(c.speedup, "%.2fx").c_str(), format(c.speedup_with_plan, "%.2fx").c_str(),
                format(c.peak_memory_gb, "%.1f").c_str());
  }
  std::fflush(stdout);
}

// Where the cases go as each one finishes: the console, the JSON file (rewritten whole each time) and
// the result database, so a benchmark stopped at 1M keeps every shorter length.
class BenchOutput {
 public:
  BenchOutput(BenchContext context, std::string json_path, const std::string& db_path)
      : context_(std::move(context)), json_path_(std::move(json_path)) {
    if (db_path.empty()) return;
#ifdef MMI_WITH_STORE
    store_ = std::make_unique<ResultStore>(ResultStore::open(db_path));
    run_.run_id = new_run_id();
    run_.started_at = context_.time;
    run_.sweep_name = "bench attention";
    run_.git_commit = context_.commit;
    run_.host = host_name();
    run_.device = context_.device;
    run_.torch_version = context_.libtorch;
    run_.sweep_yaml = bench_document(context_, {})["context"].dump();  // JSON is YAML too
    store_->begin_run(run_);
#else
    throw UsageError("--db: this mmi was built without SQLite (libsqlite3-dev); write --json and record it "
                     "where SQLite is, with mmi bench import");
#endif
  }

  void add(KernelBenchRecord c) {
    c.heads = context_.heads;
    c.kv_heads = context_.kv_heads;
    c.head_dim = context_.head_dim;
    c.dtype = context_.dtype;
    c.inputs = context_.inputs;
    c.finished_at = utc_timestamp();
    print_row(c);
    cases_.push_back(c);
    if (!json_path_.empty()) write_json_file(json_path_, bench_document(context_, cases_));
#ifdef MMI_WITH_STORE
    if (store_) {
      c.run_id = run_.run_id;
      store_->record(c);
    }
#endif
  }

  const std::vector<KernelBenchRecord>& cases() const { return cases_; }
  std::string database() const {
#ifdef MMI_WITH_STORE
    if (store_) return store_->path() + " (run " + run_.run_id + ")";
#endif
    return "";
  }

 private:
  BenchContext context_;
  std::string json_path_;
  std::vector<KernelBenchRecord> cases_;
#ifdef MMI_WITH_STORE
  std::unique_ptr<ResultStore> store_;
  RunRecord run_;
#endif
};

// The first lengths at which each method beat cuDNN SDPA in this run.
void print_crossovers(const std::vector<KernelBenchRecord>& cases) {
  const std::vector<Crossover> found = crossovers(cases);
  if (found.empty()) return;
  std::printf("faster than cuDNN SDPA from (kernel / with index build):\n");
  for (const Crossover& x : found) {
    auto label = [](int64_t tokens) { return tokens > 0 ? length_label(tokens) : std::string("never"); };
    std::printf("  %-5s / %-5s  %s\n", label(x.kernel_tokens).c_str(), label(x.with_plan_tokens).c_str(),
                x.label.c_str());
  }
}

// The benchmark's inputs and timing, as the options give them.
struct BenchSettings {
  int64_t heads = 0, kv_heads = 0, dim = 0, tokens_per_frame = 0;
  int warmup = 0, repeats = 0;
  at::ScalarType dtype = at::kBFloat16;
  bool structured = true;
  uint64_t seed = 0;
  std::vector<DenseBackend> baselines;
};

// Median of `repeats` timed runs; cases slower than a quarter second get one warm-up and 3 runs. The
// others warm up for at least `warmup` runs and kSettleMs: right after a long dense baseline the GPU's
// clocks take a while to recover, and a kernel of a few milliseconds timed then ran up to 25% slower
// than on its own.
double timed_ms(const BenchSettings& s, const std::function<void()>& fn) {
  constexpr double kSettleMs = 200.0;
  const double first = time_cuda_ms(fn, 0, 1);
  if (first > 250.0) return time_cuda_ms(fn, 0, std::min(s.repeats, 3));
  const int settle = static_cast<int>(std::min(1000.0, std::ceil(kSettleMs / std::max(first, 0.01))));
  return time_cuda_ms(fn, std::max(s.warmup, settle), s.repeats);
}

// Each dense baseline at one length; returns cuDNN SDPA's time (NaN when not timed).
double time_baselines(const BenchSettings& s, const QKV& x, BenchOutput& out) {
  const int64_t n = x.q.size(0);
  const double dense_flops = 2.0 * double(n) * double(n) * s.dim * s.heads;  // causal: 2 N^2 d per head
  double baseline_ms = NAN;
  for (DenseBackend backend : s.baselines) {
    KernelBenchRecord c;
    c.tokens = n;
    c.method = dense_backend_name(backend);
    c.configuration = "PyTorch SDPA, causal";
    try {
      cuda_reset_peak_memory();
      const DenseInputs dense = prepare_dense_inputs(x.q, x.k, x.v);
      c.run_ms = timed_ms(s, [&] { run_dense_cuda(dense, backend); });
      c.density = 1.0;
      c.flops_ratio = 1.0;
      c.achieved_tflops = c.effective_tflops = dense_flops / (c.run_ms * 1e9);
      if (backend == DenseBackend::kCudnn) baseline_ms = c.run_ms;
      c.peak_memory_gb = cuda_peak_memory_bytes() / 1e9;
    } catch (const std::exception& e) {
      c.status = "failed";
      c.error = e.what();
    }
    c.speedup = baseline_ms / c.run_ms;
    out.add(c);
    cuda_release_cached_memory();
  }
  return baseline_ms;
}

// One method at one length: its kernel, then its index build (timed after the kernel, so after its
// settling warm-up too): the median of kIndexBuilds builds (more with more repeats), with that build's
// split into estimation, plan and upload. A build of a millisecond is a wall-clock time with host work
// in it, and its spread from build to build is wider than a kernel's.
KernelBenchRecord time_method(const BenchSettings& s, const AttentionMethod& method, const SequenceLayout& layout,
                              const QKV& x, double baseline_ms) {
  const int64_t n = x.q.size(0);
  KernelBenchRecord c;
  c.tokens = n;
  c.method = method.name();
  c.configuration = method.describe();
  const AttentionContext ctx{&layout, 0};
  cuda_reset_peak_memory();
  // The first build is a warm-up (first-call library and allocator costs are not the method's).
  const SparsePlan plan = method.plan(ctx, x.q, x.k);
  cuda_synchronize();
  const PlanStats stats = plan_stats(plan, /*exact=*/n <= 65536, chunk_compute(auto_sparse_kernel(s.dim)));
  c.run_ms = timed_ms(s, [&] { method.run(plan, x.q, x.k, x.v); });
  constexpr int kIndexBuilds = 5;
  std::vector<std::pair<double, std::array<double, 3>>> builds;
  for (int r = 0; r < std::clamp(s.repeats, kIndexBuilds, 2 * kIndexBuilds - 1); ++r) {
    const double t0 = now_ms();
    const SparsePlan rebuilt = method.plan(ctx, x.q, x.k);
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
  c.achieved_tflops = computed_flops(stats, s.dim) / (c.run_ms * 1e9);
  c.effective_tflops = 2.0 * double(n) * double(n) * s.dim * s.heads / (c.run_ms * 1e9);
  c.speedup = baseline_ms / c.run_ms;
  c.speedup_with_plan = baseline_ms / (c.run_ms + c.plan_ms);
  c.peak_memory_gb = cuda_peak_memory_bytes() / 1e9;
  if (!plan.heads.empty()) c.configuration += " " + plan.heads[0].description;
  return c;
}

// One length: inputs, baselines, methods. A case that fails (out of memory at 1M) is a row with its
// reason, and the others go on.
void bench_length(const BenchSettings& s, int64_t n, const std::vector<std::unique_ptr<AttentionMethod>>& methods,
                  BenchOutput& out) {
  const SequenceLayout layout = video_layout(n, s.tokens_per_frame);
  QKV x;
  try {
    SyntheticOptions o;
    o.heads = s.heads;
    o.kv_heads = s.kv_heads;
    o.head_dim = s.dim;
    o.dtype = s.dtype;
    o.structured = s.structured;
    o.seed = s.seed;
    o.device = at::Device(at::kCUDA);
    x = make_qkv(layout, o);
  } catch (const c10::OutOfMemoryError&) {
    out.add(failed_bench_case(n, "inputs", "out of GPU memory allocating q, k, v"));
    return;
  }
  const double baseline_ms = time_baselines(s, x, out);
  for (const auto& method : methods) {
    KernelBenchRecord c;
    try {
      c = time_method(s, *method, layout, x, baseline_ms);
    } catch (const c10::OutOfMemoryError&) {
      c = failed_bench_case(n, method->name(), "out of GPU memory");
      c.configuration = method->describe();
    } catch (const std::exception& e) {
      c = failed_bench_case(n, method->name(), e.what());
      c.configuration = method->describe();
    }
    out.add(c);
    cuda_release_cached_memory();
  }
}

int bench_attention(int argc, char** argv) {
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
      .option("json", "FILE", "write the results as JSON (rewritten after every case)", "")
      .option("db", "FILE", "also record every case into this SQLite result database (mmi export, mmi merge)", "")
      .option("baselines", "LIST", "dense SDPA baselines to time: cudnn, flash, efficient, or none", "cudnn,flash");
  if (!args.parse(argc, argv, 3)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!cuda_available()) throw std::runtime_error("mmi bench attention needs a CUDA GPU and the CUDA build");
  BenchSettings s;
  s.heads = args.get_int("heads");
  s.kv_heads = args.get_int("kv-heads");
  s.dim = args.get_int("head-dim");
  s.tokens_per_frame = args.get_int("tokens-per-frame");
  s.warmup = static_cast<int>(args.get_int("warmup"));
  s.repeats = static_cast<int>(args.get_int("repeats"));
  s.dtype = args.get("dtype") == "fp16" ? at::kHalf : at::kBFloat16;
  s.structured = args.get("inputs") != "random";
  s.seed = static_cast<uint64_t>(args.get_int("seed"));
  for (const std::string& name : split(args.get("baselines"), ',')) {
    if (name == "cudnn") s.baselines.push_back(DenseBackend::kCudnn);
    else if (name == "flash") s.baselines.push_back(DenseBackend::kFlash);
    else if (name == "efficient") s.baselines.push_back(DenseBackend::kEfficient);
    else if (name != "none") throw UsageError("--baselines takes cudnn, flash, efficient or none, got '" + name + "'");
  }
  std::vector<int64_t> lengths;
  for (const std::string& length : split(args.get("lengths"), ',')) lengths.push_back(parse_length(length));
  std::vector<std::unique_ptr<AttentionMethod>> methods;
  for (std::string spec : split(args.get("methods"), ',')) {
    for (char& c : spec) c = c == ';' ? ',' : c;
    methods.push_back(make_method_from_spec(spec));
  }
  BenchContext context;
  context.device = cuda_device_description();
  context.kernel = sparse_kernel_name(auto_sparse_kernel(s.dim));
  context.commit = git_commit();
  context.libtorch = libtorch_version();
  context.time = utc_timestamp();
  context.heads = s.heads;
  context.kv_heads = s.kv_heads;
  context.head_dim = s.dim;
  context.tokens_per_frame = s.tokens_per_frame;
  context.repeats = s.repeats;
  context.seed = args.get_int("seed");
  context.dtype = args.get("dtype");
  context.inputs = args.get("inputs");
  BenchOutput out(context, args.get("json"), args.get("db"));

  std::printf("mmi bench attention: %s, commit %s, LibTorch %s; sparse kernel %s\n", context.device.c_str(),
              context.commit.c_str(), context.libtorch.c_str(), context.kernel.c_str());
  std::printf("%lld query heads, %lld KV heads, head_dim %lld, %s, %s inputs; median of %d runs after %d warm-up\n",
              (long long)s.heads, (long long)s.kv_heads, (long long)s.dim, context.dtype.c_str(),
              context.inputs.c_str(), s.repeats, s.warmup);
  std::printf("%8s %-16s %9s %9s %8s %8s %8s %9s %9s %7s %8s %8s %7s\n", "tokens", "method", "plan ms", "run ms",
              "plan/run", "density", "FLOPs", "TF/s ach", "TF/s eff", "/cuDNN", "speedup", "w/ plan", "peak GB");
  for (int64_t n : lengths) bench_length(s, n, methods, out);
  std::printf("plan ms: index build (estimation + plan + upload, wall clock, median of 5 to 9 builds;\n"
              "         the JSON splits it);\n"
              "run ms: the kernel (CUDA events); plan/run: the index build as a share of it;\n"
              "TF/s ach: FLOPs of the tiles the kernel computes / run (the wgmma kernel skips the 64-row\n"
              "          halves of Vertical-Slash chunks that keep nothing, and they are not counted);\n"
              "TF/s eff: dense causal FLOPs (2*N^2*d*heads) / run;\n"
              "/cuDNN: TF/s ach as a share of cuDNN SDPA's TF/s at the same length in this run;\n"
              "speedup: cuDNN SDPA time / run time; w/ plan: / (run + plan);\n"
              "peak GB: peak GPU memory allocated during the case, q/k/v and the plan included.\n");
  print_crossovers(out.cases());
  if (!args.get("json").empty()) std::printf("JSON: %s\n", args.get("json").c_str());
  if (!out.database().empty()) std::printf("database: %s\n", out.database().c_str());
  return 0;
}

}  // namespace

int bench_command(int argc, char** argv) {
  const std::string what = argc >= 3 ? argv[2] : "";
  if (what == "--help" || what == "-h") {
    std::printf("usage: mmi bench attention [options]    benchmark attention methods against cuDNN SDPA\n"
                "       mmi bench import FILE.json...    record benchmark JSON files into a result database\n"
                "Run 'mmi bench attention --help' or 'mmi bench import --help' for the options.\n");
    return 0;
  }
  if (what == "attention") return bench_attention(argc, argv);
#ifdef MMI_WITH_STORE
  if (what == "import") return bench_import_command(argc, argv);
#else
  if (what == "import") throw std::runtime_error("this mmi was built without SQLite (libsqlite3-dev): no result database");
#endif
  throw UsageError("usage: mmi bench attention [options], or mmi bench import FILE.json... --db FILE "
                   "(see mmi bench attention --help)");
}

}  // namespace mmi
