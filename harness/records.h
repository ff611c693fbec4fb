// What a sweep records: one row per run (how it was produced) and one row per sample (SPEC.md §8);
// `mmi bench attention` records one row per benchmark case under its run.
// Plain data shared by the store, the runner and the reports. Torch-free.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace mmi {

struct RunRecord {
  std::string run_id;        // unique: "<UTC time>-<host>-<pid>", set by the runner
  std::string started_at;    // RFC 3339
  std::string sweep_name;    // the sweep's `name`
  std::string shard;         // "i/n" when the sweep was split, else ""
  std::string git_commit;
  std::string host;
  std::string device;        // e.g. "NVIDIA H100 80GB HBM3" or "cpu"
  std::string driver;        // GPU driver version, "" on the CPU
  std::string cuda;          // CUDA runtime version, "" on the CPU
  std::string torch_version; // LibTorch
  std::string sweep_yaml;    // the resolved sweep (every list expanded), as YAML
};

struct SampleRecord {
  std::string run_id;
  std::string case_key;       // identifies the case across runs: resume skips keys already recorded ok
  std::string model;          // model name from the sweep
  std::string method;         // method name, e.g. "vertical_slash"
  std::string method_params;  // its full description, e.g. "vertical_slash(n_vertical=1000,n_slash=2000)"
  std::string pattern_table;  // the mminference table file, "" for other methods
  std::string task;           // "vniah", "mmniah", "videoqa", "caption"
  std::string sample_id;
  int64_t frames = 0;         // frames given to the model
  int64_t tokens = 0;         // LM input tokens
  double depth = NAN;         // needle depth in [0, 1] for NIAH tasks, NaN otherwise
  std::string prediction;
  std::string target;
  double score = NAN;         // in [0, 1]; NaN when the sample failed
  double vision_ms = NAN;
  double prefill_ms = NAN;    // LM pre-fill, attention included
  double attention_ms = NAN;  // attention kernels
  double index_ms = NAN;      // online estimation + plan building
  double peak_memory_gb = NAN;
  double density = NAN;       // kept / causal attention elements (NaN when not measured)
  double flops_ratio = NAN;   // computed attention FLOPs / dense causal FLOPs
  double recall = NAN;        // mean attention recall where measured
  std::string status = "ok";  // "ok" or "failed"
  std::string error;          // the reason when failed (OOM, bad input, ...)
  std::string finished_at;    // RFC 3339
};

// One case of `mmi bench attention`: a sparse method or a dense SDPA baseline at one context length,
// one layer of pre-fill attention on a synthetic video layout.
struct KernelBenchRecord {
  std::string run_id;
  std::string method;         // method name, or a dense baseline: "cudnn_sdpa", "flash_sdpa", ...
  std::string configuration;  // its full description, e.g. "a_shape(sink=128,local=4096) ..."
  int64_t tokens = 0;
  int64_t heads = 0;          // query heads
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  std::string dtype;          // "bf16" or "fp16"
  std::string inputs;         // "structured" or "random"
  double run_ms = NAN;        // the kernel, median over the repeats (CUDA events)
  double plan_ms = NAN;       // the whole index build (wall clock), and its parts:
  double estimate_ms = NAN;   //   online estimation
  double build_ms = NAN;      //   plan building on the host
  double upload_ms = NAN;     //   the plan's upload
  double density = NAN;       // kept / causal elements (measured up to 64K tokens)
  double flops_ratio = NAN;   // computed-tile FLOPs / dense causal FLOPs
  double achieved_tflops = NAN;   // computed-tile FLOPs / run
  double effective_tflops = NAN;  // dense causal FLOPs / run
  double speedup = NAN;            // cuDNN SDPA's run / this run, measured in the same run
  double speedup_with_plan = NAN;  // cuDNN SDPA's run / (run + plan)
  double peak_memory_gb = NAN;     // peak GPU memory of the case, inputs and plan included
  std::string status = "ok";  // "ok" or "failed"
  std::string error;          // the reason when failed (out of memory, ...)
  std::string finished_at;    // RFC 3339
};

}  // namespace mmi
