// `mmi bench attention`'s results as data: the JSON document round-trips (and the committed benchmark
// files read back), bad files are errors naming the file, crossover lengths, and `mmi bench import`
// into the result database.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "harness/bench_results.h"
#include "harness/commands.h"
#include "tasks/files.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"
#ifdef MMI_WITH_STORE
#include "harness/store.h"
#endif

using namespace mmi;
using mmi::testing::TempDir;
using mmi::testing::write_file;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

BenchContext make_context() {
  BenchContext c;
  c.device = "NVIDIA H100 80GB HBM3, driver CUDA 13.0, runtime CUDA 13.0";
  c.kernel = "wgmma";
  c.commit = "863ad93";
  c.libtorch = "2.11.0";
  c.time = "2026-11-27T12:56:26Z";
  c.heads = 28;
  c.kv_heads = 4;
  c.head_dim = 128;
  c.tokens_per_frame = 256;
  c.repeats = 10;
  c.seed = 3;
  c.dtype = "bf16";
  c.inputs = "structured";
  return c;
}

KernelBenchRecord bench_case(const std::string& method, int64_t tokens, double speedup, double speedup_with_plan) {
  KernelBenchRecord c;
  c.method = method;
  c.configuration = method + "(defaults)";
  c.tokens = tokens;
  c.run_ms = 1.0 + tokens / 16384.0;
  c.plan_ms = 0.25;
  c.estimate_ms = 0.125;
  c.build_ms = 0.0625;
  c.upload_ms = 0.03125;
  c.flops_ratio = 0.5;
  c.achieved_tflops = 300.5;
  c.effective_tflops = 600.25;
  c.speedup = speedup;
  c.speedup_with_plan = speedup_with_plan;
  c.peak_memory_gb = 4.5;
  return c;
}

std::string source_file(const std::string& relative) { return join_path(MMI_SOURCE_DIR, relative); }

}  // namespace

TEST_CASE("a benchmark document round-trips through its JSON file", "[bench]") {
  TempDir dir;
  const BenchContext context = make_context();
  KernelBenchRecord full = bench_case("grid", 131072, 23.0, 21.4);
  full.density = 0.0257;
  KernelBenchRecord failed = failed_bench_case(1 << 20, "vertical_slash", "out of GPU memory");
  failed.configuration = "vertical_slash(n_vertical=1000,n_slash=1024)";
  const std::string path = dir.file("nested/bench.json");
  write_json_file(path, bench_document(context, {full, failed}));
  REQUIRE(!file_exists(path + ".partial"));

  const BenchDocument read = read_bench_document(path);
  REQUIRE(read.context.device == context.device);
  REQUIRE(read.context.commit == context.commit);
  REQUIRE(read.context.time == context.time);
  REQUIRE(read.context.seed == 3);
  REQUIRE(read.cases.size() == 2);
  const KernelBenchRecord& a = read.cases[0];
  REQUIRE(a.method == "grid");
  REQUIRE(a.configuration == full.configuration);
  REQUIRE(a.tokens == 131072);
  REQUIRE(a.status == "ok");
  for (auto [x, y] : std::vector<std::pair<double, double>>{{a.run_ms, full.run_ms},
                                                            {a.plan_ms, full.plan_ms},
                                                            {a.estimate_ms, full.estimate_ms},
                                                            {a.build_ms, full.build_ms},
                                                            {a.upload_ms, full.upload_ms},
                                                            {a.density, full.density},
                                                            {a.flops_ratio, full.flops_ratio},
                                                            {a.achieved_tflops, full.achieved_tflops},
                                                            {a.effective_tflops, full.effective_tflops},
                                                            {a.speedup, full.speedup},
                                                            {a.speedup_with_plan, full.speedup_with_plan},
                                                            {a.peak_memory_gb, full.peak_memory_gb}}) {
    REQUIRE(x == y);
  }
  // The geometry comes from the context.
  REQUIRE((a.heads == 28 && a.kv_heads == 4 && a.head_dim == 128 && a.dtype == "bf16" && a.inputs == "structured"));
  const KernelBenchRecord& b = read.cases[1];
  REQUIRE(b.status == "failed");
  REQUIRE(b.error == "out of GPU memory");
  REQUIRE(std::isnan(b.run_ms));
  REQUIRE(std::isnan(b.speedup));
}

TEST_CASE("the committed benchmark files read back", "[bench]") {
  const BenchDocument h100 = read_bench_document(source_file("results/bench/h100-863ad93-16K-1M.json"));
  REQUIRE(h100.context.device.find("H100") != std::string::npos);
  REQUIRE(h100.context.commit == "863ad93");
  REQUIRE(h100.cases.size() == 56);  // 7 lengths x (cuDNN SDPA + 7 methods)
  for (const KernelBenchRecord& c : h100.cases) {
    REQUIRE(c.status == "ok");
    REQUIRE(c.run_ms > 0);
  }
  const std::vector<Crossover> found = crossovers(h100.cases);
  REQUIRE(found.size() == 7);
  REQUIRE(found[0].label == "grid(strides=0,lines=v,local=1024,last_q=64)");
  REQUIRE(found[0].kernel_tokens == 16384);
  const auto vertical_slash = std::find_if(found.begin(), found.end(), [](const Crossover& x) {
    return x.label.rfind("vertical_slash(", 0) == 0;
  });
  REQUIRE(vertical_slash != found.end());
  REQUIRE(vertical_slash->kernel_tokens == 32768);
  REQUIRE(vertical_slash->with_plan_tokens == 65536);
  // An older file, before the context named the kernel.
  const BenchDocument older = read_bench_document(source_file("results/bench/h100-5423dd7deb74-16K-128K.json"));
  REQUIRE(older.context.kernel.empty());
  REQUIRE(!older.cases.empty());
}

TEST_CASE("a case's share of cuDNN's rate is the ratio of their achieved TFLOP/s in the run", "[bench]") {
  const BenchDocument run = read_bench_document(source_file("results/bench/h100-b45253a-16K-1M.json"));
  std::map<int64_t, double> cudnn;  // tokens -> cuDNN SDPA's TFLOP/s
  for (const KernelBenchRecord& c : run.cases) {
    if (c.method == "cudnn_sdpa") cudnn[c.tokens] = c.achieved_tflops;
  }
  REQUIRE(cudnn.size() == 7);
  int sparse = 0;
  for (const KernelBenchRecord& c : run.cases) {
    INFO(c.tokens << " " << c.configuration);
    REQUIRE(share_of_cudnn(c) == Approx(c.achieved_tflops / cudnn.at(c.tokens)).epsilon(1e-9));
    if (c.method == "cudnn_sdpa") {
      REQUIRE(share_of_cudnn(c) == 1.0);
      REQUIRE(std::isnan(index_share(c)));
    } else {
      REQUIRE(index_share(c) == Approx(c.plan_ms / c.run_ms));
      ++sparse;
    }
  }
  REQUIRE(sparse == 49);  // 7 lengths x 7 methods
  KernelBenchRecord alone = run.cases.back();
  alone.speedup = NAN;  // a run without a cuDNN baseline
  REQUIRE(std::isnan(share_of_cudnn(alone)));
}

TEST_CASE("a bad benchmark file is one error naming it", "[bench]") {
  TempDir dir;
  const std::string path = dir.file("bad.json");
  SECTION("missing") {
    REQUIRE_THROWS_WITH(read_bench_document(dir.file("missing.json")), Contains(dir.file("missing.json")));
  }
  SECTION("not JSON") {
    write_file(path, "{\"context\": {");
    REQUIRE_THROWS_WITH(read_bench_document(path), Contains(path) && Contains("not JSON"));
  }
  SECTION("another JSON file") {
    write_file(path, R"({"runs": [], "samples": []})");
    REQUIRE_THROWS_WITH(read_bench_document(path), Contains(path) && Contains("mmi bench attention --json"));
  }
  SECTION("a case without its length") {
    write_file(path, R"({"context": {}, "cases": [{"tokens": 16384, "method": "grid"}, {"method": "grid"}]})");
    REQUIRE_THROWS_WITH(read_bench_document(path), Contains(path + ": case 2") && Contains("\"tokens\""));
  }
  SECTION("a time that is not a number") {
    write_file(path, R"({"context": {}, "cases": [{"tokens": 16384, "method": "grid", "run_ms": "fast"}]})");
    REQUIRE_THROWS_WITH(read_bench_document(path), Contains(path + ": case 1") && Contains("\"run_ms\" is not a number"));
  }
}

TEST_CASE("crossovers: the first length each method beat cuDNN SDPA at", "[bench]") {
  std::vector<KernelBenchRecord> cases = {
      bench_case("cudnn_sdpa", 16384, 1.0, kNaN),  bench_case("grid", 16384, 2.9, 2.2),
      bench_case("vertical_slash", 16384, 0.7, 0.4), bench_case("cudnn_sdpa", 32768, 1.0, kNaN),
      bench_case("grid", 32768, 6.7, 5.8),          bench_case("vertical_slash", 32768, 1.2, 0.9),
      bench_case("a_shape", 32768, 0.5, 0.5),       bench_case("vertical_slash", 65536, 1.9, 1.7),
  };
  KernelBenchRecord failed = bench_case("a_shape", 65536, kNaN, kNaN);
  failed.status = "failed";
  cases.push_back(failed);
  const std::vector<Crossover> found = crossovers(cases);
  REQUIRE(found.size() == 3);
  REQUIRE((found[0].label == "grid(defaults)" && found[0].kernel_tokens == 16384 && found[0].with_plan_tokens == 16384));
  REQUIRE((found[1].label == "vertical_slash(defaults)" && found[1].kernel_tokens == 32768 &&
           found[1].with_plan_tokens == 65536));
  REQUIRE((found[2].label == "a_shape(defaults)" && found[2].kernel_tokens == 0 && found[2].with_plan_tokens == 0));
  KernelBenchRecord dense = bench_case("cudnn_sdpa", 16384, 1.0, kNaN);
  dense.configuration = "PyTorch SDPA, causal";
  REQUIRE(method_label(dense) == "cudnn_sdpa");

  REQUIRE(length_label(16384) == "16K");
  REQUIRE(length_label(1 << 20) == "1M");
  REQUIRE(length_label(3 << 20) == "3M");
  REQUIRE(length_label(1000) == "1000");
}

#ifdef MMI_WITH_STORE
TEST_CASE("mmi bench import records benchmark files into the result database, once", "[bench][store]") {
  TempDir dir;
  const std::string json_path = dir.file("run.json");
  const KernelBenchRecord failed = failed_bench_case(1 << 20, "vertical_slash", "out of GPU memory");
  write_json_file(json_path, bench_document(make_context(), {bench_case("grid", 131072, 23.0, 21.4), failed}));
  const std::string db = dir.file("results.sqlite");
  auto import = [&](std::vector<std::string> files) {
    std::vector<std::string> words = {"mmi", "bench", "import", "--db", db};
    words.insert(words.end(), files.begin(), files.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    return bench_command(static_cast<int>(argv.size()), argv.data());
  };
  REQUIRE(import({json_path}) == 0);
  REQUIRE(import({json_path}) == 0);  // already recorded: nothing added
  const ResultStore store = ResultStore::open(db);
  REQUIRE(store.runs().size() == 1);
  REQUIRE(store.runs()[0].sweep_name == "bench attention");
  REQUIRE(store.runs()[0].git_commit == "863ad93");
  const std::vector<KernelBenchRecord> rows = store.kernel_bench();
  REQUIRE(rows.size() == 2);
  REQUIRE((rows[0].method == "grid" && rows[0].speedup == 23.0 && rows[0].heads == 28));
  REQUIRE((rows[1].status == "failed" && rows[1].error == "out of GPU memory" && std::isnan(rows[1].run_ms)));
  REQUIRE(rows[0].run_id == store.runs()[0].run_id);

  // A file that is not a benchmark file among good ones: skipped, the others recorded, status 1.
  write_file(dir.file("bad.json"), "[]");
  write_json_file(dir.file("other.json"), bench_document(BenchContext{}, {bench_case("grid", 4096, 1.5, 1.2)}));
  REQUIRE(import({dir.file("bad.json"), dir.file("other.json")}) == 1);
  REQUIRE(ResultStore::open(db).runs().size() == 2);
  REQUIRE(ResultStore::open(db).kernel_bench().size() == 3);
}
#endif
