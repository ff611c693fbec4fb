// What a sweep records: one row per run (how it was produced) and one row per sample (SPEC.md §8).
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

}  // namespace mmi
