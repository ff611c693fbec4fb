// `mmi search`: the offline modality-aware pattern search (SPEC §4) on one calibration sample. The
// sample is prepared as `mmi ask` prepares it, pre-filled with dense attention, and every selected
// layer's post-RoPE q, k, v is searched head by head inside the pre-fill (one layer in memory at a
// time). The result is the pattern table the `mminference` method loads.
#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/command_inputs.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/method_config.h"
#include "kernels/search/search.h"
#include "models/qwen2_5_vl/model.h"
#include "tasks/files.h"

namespace mmi {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "0,3,27" -> {0, 3, 27}; every layer when empty. UsageError for anything out of [0, layers).
std::set<int64_t> parse_layers(const std::string& text, int64_t layers) {
  std::set<int64_t> out;
  if (text.empty()) {
    for (int64_t l = 0; l < layers; ++l) out.insert(l);
    return out;
  }
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    int64_t l = 0;
    if (!parse_int64(item, l) || l < 0 || l >= layers) {
      throw UsageError("--layers: '" + item + "' is not a layer in [0, " + std::to_string(layers) +
                       ")");
    }
    out.insert(l);
  }
  return out;
}

double parse_fraction(const ArgParser& args, const std::string& name) {
  const std::string text = args.get(name);
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(x > 0 && x < 1)) {
    throw UsageError("--" + name + " must be a number in (0, 1), got '" + text + "'");
  }
  return x;
}

// "error mean 0.041 max 0.120, flops 0.30; none 20 (grid 12, a_shape 8), q 6, 2d 2"
std::string summarize(const std::vector<HeadChoice>& heads) {
  std::map<std::string, int> boundaries, single;
  double error_sum = 0, error_max = 0, flops_sum = 0;
  for (const HeadChoice& c : heads) {
    ++boundaries[boundary_name(c.config.boundary)];
    if (c.config.boundary == BoundaryKind::kNone)
      ++single[pattern_name(c.config.patterns[0][0].kind)];
    error_sum += c.error;
    error_max = std::max(error_max, c.error);
    flops_sum += c.flops_ratio;
  }
  const double n = std::max<size_t>(1, heads.size());
  char numbers[128];
  std::snprintf(numbers, sizeof numbers, "error mean %.3f max %.3f, flops %.2f;", error_sum / n,
                error_max, flops_sum / n);
  std::string out = numbers;
  for (const char* kind : {"none", "q", "2d"}) {
    if (!boundaries.count(kind)) continue;
    out += std::string(" ") + kind + " " + std::to_string(boundaries[kind]);
    if (std::string(kind) != "none") continue;
    std::string kinds;
    for (const auto& [name, count] : single) {
      kinds += (kinds.empty() ? "" : ", ") + name + " " + std::to_string(count);
    }
    out += " (" + kinds + ")";
  }
  return out;
}

SearchOptions search_options(const ArgParser& args) {
  SearchOptions options;
  options.budget_sink = args.get_int("budget-sink");
  options.budget_local = args.get_int("budget-local");
  options.tolerance = parse_fraction(args, "tolerance");
  options.max_stride = args.get_int("max-stride");
  if (options.budget_sink < 0) throw UsageError("--budget-sink must be >= 0");
  if (options.budget_local < 1) throw UsageError("--budget-local must be >= 1");
  if (options.max_stride < 0) throw UsageError("--max-stride must be >= 0");
  return options;
}

// The sample as `mmi ask` prepares it; *calibration describes it.
ModelInputs calibration_inputs(const Qwen25VLModel& model, const ArgParser& args,
                               std::string* calibration) {
  int64_t frames = 0;
  ModelInputs inputs = command_inputs(model, args, &frames);
  *calibration =
      (args.has("video") ? args.get("video") : "synthetic video " + args.get("synthetic-video")) +
      ", " + std::to_string(frames) + " frames, question \"" + args.get("question") + "\", " +
      std::to_string(inputs.length()) + " tokens, layout " + inputs.layout.describe();
  return inputs;
}

// A dense pre-fill whose every wanted layer is searched inside it, from its q, k, v, before its
// attention runs: one layer's tensors in memory at a time. layers[l] is empty for layers not
// wanted.
std::vector<std::vector<HeadChoice>> search_model(const Qwen25VLModel& model,
                                                  const ModelInputs& inputs,
                                                  const std::set<int64_t>& wanted,
                                                  SearchOptions options) {
  const int64_t num_layers = model.config().text.num_layers;
  const int64_t heads = model.config().text.num_heads;
  const bool tty = isatty(fileno(stderr));
  std::vector<std::vector<HeadChoice>> layers(num_layers);
  int64_t current = 0;
  options.on_head = [&](int64_t head, const HeadChoice&) {
    if (!tty) return;
    std::fprintf(stderr, "\rlayer %lld: head %lld/%lld", (long long)current, (long long)head + 1,
                 (long long)heads);
    if (head + 1 == heads) std::fprintf(stderr, "\r%40s\r", "");
  };
  PrefillOptions prefill;  // no method: dense attention, the reference the search scores against
  prefill.on_attention = [&](int64_t layer, const at::Tensor& q, const at::Tensor& k,
                             const at::Tensor& v) {
    if (!wanted.count(layer)) return;
    current = layer;
    const auto start = Clock::now();
    layers[layer] = search_layer(inputs.layout, q, k, v, options);
    std::printf("layer %2lld/%lld  %6.1f s  %s\n", (long long)layer, (long long)num_layers,
                seconds_since(start), summarize(layers[layer]).c_str());
    std::fflush(stdout);
  };
  model.prefill(inputs, model.embed(inputs), prefill);
  return layers;
}

}  // namespace

int search_command(int argc, char** argv) {
  ArgParser args("search",
                 "offline per-head pattern search on a calibration video (writes a pattern table)");
  add_model_options(args);
  add_prompt_options(args, "the calibration video", "Describe this video in detail.");
  args.option("out", "FILE", "the pattern table to write, e.g. configs/patterns/qwen2.5-vl-7b.yaml")
      .option("budget-sink", "N", "cost budget: computed-tile FLOPs of A-shape with N sinks ...", "1024")
      .option("budget-local", "N", "... and a local window of N", "4096")
      .option("tolerance", "X", "a candidate's cost is scaled to within X of the budget", "0.1")
      .option("max-stride", "N", "the searched grid stride is at most N", "1024")
      .option("layers", "L,L,...", "search only these layers (default: all)");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!args.has("out")) throw UsageError("--out is required");
  const SearchOptions options = search_options(args);
  at::InferenceMode inference;
  const CommandModel loaded = load_command_model(args);
  const Qwen25VLModel* model = loaded.model.get();
  const int64_t num_layers = model->config().text.num_layers;
  const std::set<int64_t> wanted = parse_layers(args.get("layers"), num_layers);
  std::string calibration;
  const ModelInputs inputs = calibration_inputs(*model, args, &calibration);
  std::printf("calibration: %s\n", calibration.c_str());
  std::printf("budget: A-shape(sink %lld, local %lld) computed-tile FLOPs, tolerance %.2f\n",
              (long long)options.budget_sink, (long long)options.budget_local, options.tolerance);

  const auto start = Clock::now();
  const auto layers = search_model(*model, inputs, wanted, options);
  std::printf("searched %zu of %lld layers in %.1f s\n", wanted.size(), (long long)num_layers,
              seconds_since(start));
  const std::string out = args.get("out");
  make_directories(parent_directory(out));
  write_pattern_table(out, model->describe(), calibration, options, layers);
  const PatternTable table = PatternTable::load(out);  // what `mminference` will read
  std::printf("wrote %s (%zu heads)\n", out.c_str(), table.num_entries());
  return 0;
}

}  // namespace mmi
