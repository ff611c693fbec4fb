// The results of `mmi bench attention` as data: the JSON document it writes (and `mmi bench import`
// reads back into the result database), and the crossover lengths it prints. Torch-free.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/records.h"

namespace mmi {

// How a benchmark run was made: the document's "context".
struct BenchContext {
  std::string device;  // e.g. "NVIDIA H100 80GB HBM3, driver CUDA 13.0, runtime CUDA 13.0"
  std::string kernel;  // the sparse kernel, "wgmma" or "mma.sync"
  std::string commit;
  std::string libtorch;
  std::string time;    // RFC 3339, when the run started
  int64_t heads = 0, kv_heads = 0, head_dim = 0, tokens_per_frame = 0, repeats = 0, seed = 0;
  std::string dtype, inputs;
};

// {"context": {...}, "cases": [{"tokens", "method", "configuration", "run_ms", ...}, ...]}: NaN
// fields are left out, a failed case carries "error". The cases' run_id, geometry, dtype and inputs
// come from the context, not from each case.
nlohmann::json bench_document(const BenchContext& context, const std::vector<KernelBenchRecord>& cases);

struct BenchDocument {
  BenchContext context;
  std::vector<KernelBenchRecord> cases;  // geometry, dtype and inputs filled in from the context
};
// Reads what bench_document wrote (the files under results/bench/ too). Errors name `path` and what is
// wrong with it.
BenchDocument read_bench_document(const std::string& path);

// Writes `document` to `path` whole or not at all (a temporary file renamed over it), so a benchmark
// killed mid-way leaves the cases written after the last finished one.
void write_json_file(const std::string& path, const nlohmann::json& document);

// A case that could not be measured, with the reason (out of GPU memory, an error in a method).
KernelBenchRecord failed_bench_case(int64_t tokens, const std::string& method, const std::string& error);

// What tells a case's method apart from its variants: a sparse method's configuration up to its
// resolved part ("grid(strides=0,lines=vhs,local=1024,last_q=64)"), else the method ("cudnn_sdpa").
std::string method_label(const KernelBenchRecord& c);

// Per method label, in the order first seen: the first length at which it beat cuDNN SDPA, by its
// kernel alone and with its index build (0: at no measured length).
struct Crossover {
  std::string label;
  int64_t kernel_tokens = 0, with_plan_tokens = 0;
};
std::vector<Crossover> crossovers(const std::vector<KernelBenchRecord>& cases);

// A case's rate on the tiles it computes as a share of cuDNN SDPA's dense rate at its length in the
// same run (its achieved TFLOP/s over cuDNN's): its FLOPs ratio times its speedup. NaN without a cuDNN
// baseline.
inline double share_of_cudnn(const KernelBenchRecord& c) { return c.flops_ratio * c.speedup; }
// Its index build as a share of its kernel time (NaN for the dense baselines, which build none).
inline double index_share(const KernelBenchRecord& c) { return c.plan_ms / c.run_ms; }

// A length as `mmi bench --lengths` takes it: "16K", "1M" (K = 1024), else the number.
std::string length_label(int64_t tokens);

}  // namespace mmi
