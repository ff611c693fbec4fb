// `mmi run SWEEP.yaml`: a sweep is models x methods x tasks x context settings, read from YAML and
// validated up front. configs/quickstart.yaml documents the format for users; in short:
//
//   name: quickstart                  # optional (default: the file's stem)
//   output: results/mmi.sqlite        # optional
//   context: {max_pixels: 100352, min_pixels: 12544, fps: 2, max_frames: 768}   # optional defaults
//   models:
//     - {name: tiny, path: tests/fixtures/qwen2_5_vl_tiny, dtype: fp32, device: cpu}
//     - {name: 7b, random: qwen2.5-vl-7b, seed: 1}            # random weights of a named geometry
//   methods:
//     - dense
//     - a_shape:sink=64,local=256..1024..256                 # a string spec
//     - {name: vertical_slash, n_vertical: [500, 1000], n_slash: "1024,2048"}
//   tasks:
//     - {name: vniah, frames: [8, 16, 32], depths: "0..1..0.5", context: {max_pixels: 50176}}
//
// Method parameters and context settings sweep: a comma list ("256,512"), a YAML sequence, or a
// range
// ("start..end[..step]", integers or decimals) expands to every combination, as llama-bench does.
// A list-valued parameter is written with '|' ("strides: 0|16", or a nested sequence [[0, 16]]).
// Task grids (frames, depths, ...) are kept as lists for the task to expand.
//
// Every error is a SweepError "FILE:LINE:COL: message naming the key", raised before anything runs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

struct SweepError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ModelSpec {
  std::string name;
  std::string path;    // a Hugging Face folder, or empty
  std::string random;  // a named geometry with random weights (e.g. qwen2.5-vl-7b), or empty
  std::string dtype = "auto";   // auto | fp32 | bf16 | fp16
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  uint64_t seed = 0;            // of the random weights
  YAML::Mark mark;              // the entry in the sweep file
};

// One concrete method: every parameter a scalar (list values joined with '|').
struct MethodSpec {
  std::string name;
  // A map of strings in the order written (make_method(name, params) takes it as it is). Copies
  // share it, as YAML nodes do: treat it as read-only.
  YAML::Node params;
  YAML::Mark mark;  // the entry it was expanded from, for the method registry's errors
  // "vertical_slash:n_vertical=1000,n_slash=2000", the form make_method_from_spec parses (unless a
  // table path holds a comma).
  std::string label() const;
};

// How videos become tokens: per-sweep defaults, overridden per task (values as in Qwen2.5-VL's
// processor and qwen-vl-utils: pixels per frame, and the sampling rate and cap of Video-QA videos).
struct ContextSpec {
  int64_t max_pixels = 768 * 28 * 28;
  int64_t min_pixels = 128 * 28 * 28;
  double fps = 2.0;
  int64_t max_frames = 768;
  std::string describe() const;  // "pixels 100352-602112, 2 fps, <= 768 frames"
};

struct TaskSpec {
  std::string name;  // vniah | mmniah | videoqa | caption
  // Settings with normalised values: grid settings (frames, depths, text_share) are always
  // sequences, the others scalars. Defaults the sweep file left out are filled in (needle,
  // haystack).
  std::map<std::string, YAML::Node> params;
  ContextSpec context;
  YAML::Mark mark;
  // "frames 8,16,32 x depths 0,0.5,1 = 9 samples" (Video-QA and captioning: per manifest item).
  std::string grid_summary() const;
  // The product of the grid sizes: samples for V-NIAH and MM-NIAH, samples per item otherwise.
  int64_t grid_size() const;
};

struct SweepCase {
  int index = 0;  // position in Sweep::cases()
  ModelSpec model;
  MethodSpec method;
  TaskSpec task;
  // Stable text naming model (name, dtype, seed of random weights), method label, task settings and
  // context, for --resume. The model's path and device are not part of it.
  std::string key() const;
};

struct Sweep {
  std::string name, description, source_path;
  std::string output = "results/mmi.sqlite";
  std::vector<ModelSpec> models;
  std::vector<MethodSpec> methods;  // expanded
  std::vector<TaskSpec> tasks;      // expanded over context settings

  // models x tasks x methods, model-major, then task, then method: a model loads once and a task's
  // samples are built once per model.
  std::vector<SweepCase> cases() const;
  // Every n-th case starting at i (0 <= i < n), for `mmi run --shard i/n`.
  std::vector<SweepCase> shard(int i, int n) const;
  // The sweep with every list and range expanded (it parses back to the same cases).
  std::string resolved_yaml() const;
  // Calls `check` on every method (e.g. building it through the registry); an exception it throws
  // comes back as a SweepError naming the line of the method's entry.
  void validate_methods(const std::function<void(const MethodSpec&)>& check) const;
  // "FILE:LINE:COL" of a mark from this sweep's file, for the runner's own errors.
  std::string where(const YAML::Mark& mark) const;
};

Sweep load_sweep(const std::string& path);
Sweep parse_sweep(const std::string& yaml_text, const std::string& source_name);

// The dry-run table: index, model, method label, task, grid summary and context, then any extra
// columns (the runner's token and time estimates), and a closing count.
struct CaseColumn {
  std::string header;
  std::function<std::string(const SweepCase&)> cell;
};
std::string describe_cases(const std::vector<SweepCase>& cases,
                           const std::vector<CaseColumn>& extra = {});
std::string describe_cases(const Sweep& sweep);

}  // namespace mmi
