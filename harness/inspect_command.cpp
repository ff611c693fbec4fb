// `mmi inspect`: one head's attention (or a grid of heads) on one sample as a PNG, to see the structures the sparse
// patterns assume (grid, vertical and slash lines, modality boundaries), as in the paper's Figure 3.
// The sample is a sweep's (by id) or a video and a question as `mmi ask` takes them; the model runs a
// dense pre-fill and the head's q and k are read from inside it at the wanted layer.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "harness/attention_map.h"
#include "harness/cli.h"
#include "harness/command_inputs.h"
#include "harness/commands.h"
#include "harness/evaluate.h"
#include "harness/sweep.h"
#include "harness/sweep_tasks.h"
#include "models/qwen2_5_vl/model.h"
#include "tasks/files.h"

namespace mmi {
namespace {

// A sweep's sample by id, prepared with its task's pixel budget (the answer is not appended).
ModelInputs sweep_sample_inputs(const Qwen25VLModel& model, const std::string& sweep_path, const std::string& id,
                                const std::string& cache) {
  const Sweep sweep = load_sweep(sweep_path);
  std::string known;
  for (const TaskSpec& task : sweep.tasks) {
    for (const TaskSample& sample : build_task_samples(sweep, task, task_context(model, task, cache)).samples) {
      if (sample.id == id) {
        PrepareOptions options;
        options.budget = {task.context.min_pixels, task.context.max_pixels};
        return model.prepare(sample.prompt, options);
      }
      if (known.size() < 400) known += (known.empty() ? "" : ", ") + sample.id;
    }
  }
  throw std::runtime_error(sweep_path + ": no sample '" + id + "' (its samples: " + known + ", ...)");
}

// Magma-like: black, purple, red, orange, pale yellow; t in [0, 1]. Returns BGR.
cv::Vec3b colour(double t) {
  static const double kStops[5][3] = {{0, 0, 4}, {81, 18, 124}, {183, 55, 121}, {252, 137, 97}, {252, 253, 191}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  cv::Vec3b out;
  for (int c = 0; c < 3; ++c) out[2 - c] = static_cast<uint8_t>(kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c]));
  return out;
}

cv::Vec3b modality_colour(Modality m) {
  switch (m) {
    case Modality::kVideo: return {220, 120, 70};  // blue (BGR)
    case Modality::kImage: return {90, 170, 60};   // green
    default: return {120, 200, 250};               // amber: text
  }
}

// Probabilities on a log scale over the 4 decades below the map's largest value; masked cells grey.
cv::Mat render(const at::Tensor& map, int row_px, int col_px) {
  const int rows = static_cast<int>(map.size(0)), cols = static_cast<int>(map.size(1));
  const float* v = map.data_ptr<float>();
  const double top = std::log10(std::max(1e-12, map.max().item<double>()));
  cv::Mat image(rows * row_px, cols * col_px, CV_8UC3);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      const float p = v[i * cols + j];
      const cv::Vec3b c = p < 0 ? cv::Vec3b(235, 235, 235) : colour((std::log10(std::max(1e-12, double(p))) - top + 4) / 4);
      image(cv::Rect(j * col_px, i * row_px, col_px, row_px)).setTo(cv::Scalar(c[0], c[1], c[2]));
    }
  return image;
}

// A band of `thickness` pixels showing each position's modality: `cells` cells of `cell` tokens, each
// `px` pixels long, horizontal or vertical.
cv::Mat modality_band(const SequenceLayout& layout, int64_t cells, int64_t cell, int px, int thickness, bool vertical) {
  cv::Mat band = vertical ? cv::Mat(static_cast<int>(cells) * px, thickness, CV_8UC3)
                          : cv::Mat(thickness, static_cast<int>(cells) * px, CV_8UC3);
  for (int64_t c = 0; c < cells; ++c) {
    const int64_t token = std::min(c * cell + cell / 2, layout.length() - 1);
    const cv::Vec3b m = modality_colour(layout.modality_at(token));
    const cv::Rect r = vertical ? cv::Rect(0, static_cast<int>(c) * px, thickness, px) : cv::Rect(static_cast<int>(c) * px, 0, px, thickness);
    band(r).setTo(cv::Scalar(m[0], m[1], m[2]));
  }
  return band;
}

// One head's map with the modality bands along its key axis (and query axis for the full view).
// `width`: pixels across the map (whole cells, at least one pixel each).
cv::Mat panel(const at::Tensor& map, const SequenceLayout& layout, bool full, int64_t size, int64_t width) {
  const int64_t cell = map_cell(layout.length(), size);
  const int col_px = static_cast<int>(std::max<int64_t>(1, width / map.size(1)));
  const int row_px = full ? col_px : static_cast<int>(std::max<int64_t>(1, width / 2 / map.size(0)));
  cv::Mat image = render(map, row_px, col_px);
  constexpr int kBand = 8;
  cv::Mat keys = modality_band(layout, map.size(1), cell, col_px, kBand, false);
  if (!full) {
    cv::vconcat(keys, image, image);
    return image;
  }
  cv::Mat query_band = modality_band(layout, map.size(0), cell, row_px, kBand, true);
  cv::Mat corner(kBand, kBand, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::Mat top, bottom;
  cv::hconcat(corner, keys, top);
  cv::hconcat(query_band, image, bottom);
  cv::vconcat(top, bottom, image);
  return image;
}

// Panels in a grid, one row per layer and one column per head, with white gaps between them.
cv::Mat tile(const std::vector<std::vector<cv::Mat>>& panels) {
  constexpr int kGap = 6;
  std::vector<cv::Mat> rows;
  for (const auto& row : panels) {
    std::vector<cv::Mat> cells;
    for (const cv::Mat& p : row) {
      if (!cells.empty()) cells.push_back(cv::Mat(p.rows, kGap, CV_8UC3, cv::Scalar(255, 255, 255)));
      cells.push_back(p);
    }
    cv::Mat joined;
    cv::hconcat(cells, joined);
    if (!rows.empty()) rows.push_back(cv::Mat(kGap, joined.cols, CV_8UC3, cv::Scalar(255, 255, 255)));
    rows.push_back(joined);
  }
  cv::Mat out;
  cv::vconcat(rows, out);
  return out;
}

// "all" or one index in [0, count).
std::vector<int64_t> selection(const ArgParser& args, const std::string& key, int64_t count) {
  std::vector<int64_t> out;
  if (args.get(key) == "all") {
    for (int64_t i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  const int64_t i = args.get_int(key);
  if (i < 0 || i >= count) throw UsageError("--" + key + " must be 'all' or in [0, " + std::to_string(count) + ")");
  return {i};
}

// What the last query attends to: its probability mass per modality and its five largest keys.
void print_last_query(const at::Tensor& q, const at::Tensor& k, int64_t head, const SequenceLayout& layout) {
  const at::Tensor p = last_queries_map(q, k, head, 1, q.size(0)).squeeze(0).clamp_min(0);  // [L], one key a cell
  double mass[kNumModalities] = {0, 0, 0};
  const float* v = p.data_ptr<float>();
  for (int64_t t = 0; t < p.size(0); ++t) mass[static_cast<int>(layout.modality_at(t))] += v[t];
  std::printf("last query: text %.1f%%, video %.1f%%, image %.1f%% of its attention; largest keys:", 100 * mass[0],
              100 * mass[1], 100 * mass[2]);
  const auto top = p.topk(std::min<int64_t>(5, p.size(0)));
  for (int64_t i = 0; i < std::get<0>(top).size(0); ++i) {
    const int64_t t = std::get<1>(top)[i].item<int64_t>();
    std::printf(" %lld (%s, %.3f)", (long long)t, modality_name(layout.modality_at(t)),
                std::get<0>(top)[i].item<double>());
  }
  std::printf("\n");
}

}  // namespace

int inspect_command(int argc, char** argv) {
  ArgParser args("inspect", "render attention heads on one sample as a PNG (full map or last queries)");
  add_model_options(args);
  add_prompt_options(args, "a video file (or --synthetic-video, or --sweep with --sample)", "Describe this video in detail.");
  args.option("sweep", "FILE", "take the sample from this sweep's tasks (with --sample)")
      .option("sample", "ID", "the sample id, e.g. vniah_f1000_d50 (`mmi run` prints them)")
      .option("layer", "L", "the decoder layer, or 'all' (one row of panels per layer)", "0")
      .option("head", "H", "the query head, or 'all' (one column of panels per head)", "0")
      .option("png", "FILE", "the image to write")
      .option("view", "full|last", "the whole causal map pooled into cells, or the last queries' rows", "full")
      .option("queries", "N", "--view last: how many of the last queries", "64")
      .option("size", "N", "cells a side (keys per cell = ceil(tokens / N))", "1024")
      .option("width", "PX", "pixels across one head's map", "512")
      .option("cache", "DIR", "generated haystacks and decoded frames (--sweep)", "results/cache");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!args.has("png")) throw UsageError("--png FILE is required");
  if (args.has("sweep") != args.has("sample")) throw UsageError("--sweep and --sample go together");
  const std::string view = args.get("view");
  if (view != "full" && view != "last") throw UsageError("--view must be full or last, got '" + view + "'");
  const int64_t size = args.get_int("size"), queries = args.get_int("queries"), width = args.get_int("width");
  if (size < 1 || queries < 1 || width < 1) throw UsageError("--size, --queries and --width must be >= 1");
  at::InferenceMode inference;
  const CommandModel loaded = load_command_model(args);
  const Qwen25VLModel& model = *loaded.model;
  const Qwen2Config& text = model.config().text;
  const std::vector<int64_t> layers = selection(args, "layer", text.num_layers);
  const std::vector<int64_t> heads = selection(args, "head", text.num_heads);
  int64_t frames = 0;
  const ModelInputs inputs = args.has("sweep") ? sweep_sample_inputs(model, args.get("sweep"), args.get("sample"), args.get("cache"))
                                               : command_inputs(model, args, &frames);
  std::printf("sample: %lld tokens, layout %s\n", (long long)inputs.length(), inputs.layout.describe().c_str());

  std::vector<std::vector<cv::Mat>> panels(layers.size());
  at::Tensor map;
  PrefillOptions prefill;
  prefill.logit_positions = {inputs.length() - 1};
  prefill.on_attention = [&](int64_t l, const at::Tensor& q, const at::Tensor& k, const at::Tensor&) {
    const auto row = std::find(layers.begin(), layers.end(), l);
    if (row == layers.end()) return;
    for (int64_t head : heads) {
      map = view == "full" ? pooled_attention_map(q, k, head, size) : last_queries_map(q, k, head, queries, size);
      std::printf("layer %lld head %lld: ", (long long)l, (long long)head);
      print_last_query(q, k, head, inputs.layout);
      panels[row - layers.begin()].push_back(panel(map, inputs.layout, view == "full", size, width));
    }
  };
  model.prefill(inputs, model.embed(inputs), prefill);

  const cv::Mat image = tile(panels);
  const std::string png = args.get("png");
  make_directories(parent_directory(png));
  if (!cv::imwrite(png, image)) throw std::runtime_error(png + ": cannot write the PNG");
  std::printf("wrote %s: %zu layer(s) x %zu head(s), %s view, %lld x %lld cells of %lld tokens (%dx%d px); "
              "log scale over 4 decades, masked grey; band: text amber, video blue, image green\n",
              png.c_str(), layers.size(), heads.size(), view.c_str(), (long long)map.size(0), (long long)map.size(1),
              (long long)map_cell(inputs.length(), size), image.cols, image.rows);
  return 0;
}

}  // namespace mmi
