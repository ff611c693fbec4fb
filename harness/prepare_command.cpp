// `mmi prepare`: the model inputs of every sample a sweep's tasks build, written as one safetensors
// file, for training or checking a model outside mmi (scripts/train_niah_model.py reads it). The
// tokens, the visual blocks and the teacher-forced answers are exactly what `mmi run` feeds the
// model; the frames are stored once each, resized as the model's processor resizes them, as uint8.
//
// File layout (S samples, B visual blocks, P distinct frames of h x w, T tokens, A answer tokens):
//   frames        U8  [P, h, w, 3]  the resized frames, each distinct decoded frame once
//   ids           I32 [T]           every sample's token ids, concatenated
//   sample_starts I64 [S + 1]       sample s is ids[sample_starts[s] : sample_starts[s + 1]]
//   blocks        I64 [B, 7]        sample, first placeholder token (within the sample), temporal
//                                   groups, merged rows, merged cols, is_video, first entry in
//                                   block_frames
//   block_seconds F64 [B]           seconds per temporal group (0 for images)
//   block_frames  I32 [F]           per block, groups x temporal_patch indices into frames (an odd
//                                   tail repeats the last frame, as the processor pads)
//   answers       I64 [A, 3]        sample, row whose logits predict the token, token id
// Metadata: format, sweep, model, tokens_per_second, temporal_patch, and "samples", a JSON list of
// {id, task, grid} in sample order.
#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/evaluate.h"
#include "harness/progress.h"
#include "harness/sweep.h"
#include "harness/sweep_tasks.h"
#include "models/qwen2_5_vl/model.h"
#include "models/safetensors.h"
#include "tasks/files.h"

namespace mmi {
namespace {

// The answer a training target teaches: the teacher-forced target, or the first reference caption.
std::string answer_text(const AnswerSpec& answer) {
  if (answer.kind == AnswerSpec::Kind::kCaption) return answer.references.empty() ? "" : answer.references.front();
  return answer.target;
}

class PreparedSamples {
 public:
  PreparedSamples(const Qwen25VLModel& model, std::string out_path) : model_(model), path_(std::move(out_path)) {}

  void add(const TaskSample& sample, const std::string& task, const PixelBudget& budget) {
    PrepareOptions options;
    options.budget = budget;
    options.answer = answer_text(sample.answer);
    options.pixels = false;
    const ModelInputs in = model_.prepare(sample.prompt, options);
    const int64_t index = static_cast<int64_t>(sample_starts_.size());
    const int64_t* ids = in.ids.data_ptr<int64_t>();
    ids_.insert(ids_.end(), ids, ids + in.length());
    sample_starts_.push_back(static_cast<int64_t>(ids_.size()));
    size_t visual = 0;
    for (const PromptSegment& segment : sample.prompt) {
      if (segment.kind == PromptSegment::Kind::kText) continue;
      add_block(index, in.blocks.at(visual), segment.frames, budget);
      ++visual;
    }
    for (size_t i = 0; i < in.answer_ids.size(); ++i)
      answers_.insert(answers_.end(), {index, in.answer_positions[i], in.answer_ids[i]});
    samples_.push_back({{"id", sample.id}, {"task", task}, {"grid", sample.grid}, {"tokens", in.length()}});
  }

  // After a task's samples are freed: their bytes' addresses may be reused by the next task's frames,
  // so identities are forgotten (content hashes stay valid: the frames they point to are kept).
  void end_task() { by_identity_.clear(); }

  int64_t count() const { return static_cast<int64_t>(samples_.size()); }
  int64_t tokens() const { return static_cast<int64_t>(ids_.size()); }
  int64_t distinct_frames() const { return static_cast<int64_t>(frame_count_); }

  void write(const std::string& sweep) const {
    const int64_t blocks = static_cast<int64_t>(block_seconds_.size());
    std::vector<int32_t> ids(ids_.begin(), ids_.end());
    std::vector<int64_t> starts = {0};
    starts.insert(starts.end(), sample_starts_.begin(), sample_starts_.end());
    const std::vector<TensorView> tensors = {
        tensor_view("frames", DType::U8, {static_cast<int64_t>(frame_count_), height_, width_, 3}, frames_.data(), frames_.size()),
        tensor_view("ids", DType::I32, {static_cast<int64_t>(ids.size())}, ids.data(), ids.size() * 4),
        tensor_view("sample_starts", DType::I64, {static_cast<int64_t>(starts.size())}, starts.data(), starts.size() * 8),
        tensor_view("blocks", DType::I64, {blocks, 7}, blocks_.data(), blocks_.size() * 8),
        tensor_view("block_seconds", DType::F64, {blocks}, block_seconds_.data(), block_seconds_.size() * 8),
        tensor_view("block_frames", DType::I32, {static_cast<int64_t>(block_frames_.size())}, block_frames_.data(),
             block_frames_.size() * 4),
        tensor_view("answers", DType::I64, {static_cast<int64_t>(answers_.size() / 3), 3}, answers_.data(), answers_.size() * 8)};
    const Qwen25VisionConfig& vision = model_.config().vision;
    write_safetensors(path_, tensors,
                      {{"format", "mmi-prepared-samples/1"},
                       {"sweep", sweep},
                       {"tokens_per_second", std::to_string(vision.tokens_per_second)},
                       {"temporal_patch", std::to_string(vision.temporal_patch_size)},
                       {"samples", nlohmann::json(samples_).dump()}});
  }

 private:
  void add_block(int64_t sample, const VisualBlock& block, const std::vector<VideoFrame>& frames, const PixelBudget& budget) {
    blocks_.insert(blocks_.end(), {sample, block.start, block.groups,
                                   block.rows, block.cols, block.is_video ? 1 : 0,
                                   static_cast<int64_t>(block_frames_.size())});
    block_seconds_.push_back(block.seconds_per_grid);
    const int64_t padded = block.groups * model_.config().vision.temporal_patch_size;
    for (int64_t f = 0; f < padded; ++f)
      block_frames_.push_back(frame_index(frames[std::min<size_t>(f, frames.size() - 1)], budget));
  }


  // The pool index of a decoded frame, resizing it the first time it is seen. Frames shared between
  // samples of a task (a haystack) are the same bytes in memory, so identity finds most; equal content
  // decoded again (the same haystack in another task, a needle drawn again) is found by hash.
  int32_t frame_index(const VideoFrame& frame, const PixelBudget& budget) {
    const auto same = by_identity_.find(frame.rgb.identity());
    if (same != by_identity_.end()) return same->second;
    const std::string_view bytes(reinterpret_cast<const char*>(frame.rgb.data()), frame.rgb.size());
    const size_t hash = std::hash<std::string_view>()(bytes) ^ (size_t(frame.width) << 32 | size_t(frame.height));
    for (auto [it, end] = by_content_.equal_range(hash); it != end; ++it) {
      const VideoFrame& seen = *it->second.first;
      if (seen.width == frame.width && seen.height == frame.height && seen.rgb == frame.rgb)
        return by_identity_[frame.rgb.identity()] = it->second.second;
    }
    const int32_t index = add_frame(frame, budget);
    by_identity_[frame.rgb.identity()] = index;
    kept_.push_back(std::make_unique<VideoFrame>(frame));  // keeps the bytes (and their identity) alive
    by_content_.emplace(hash, std::make_pair(kept_.back().get(), index));
    return index;
  }

  int32_t add_frame(const VideoFrame& frame, const PixelBudget& budget) {
    const at::Tensor source = at::from_blob(const_cast<uint8_t*>(frame.rgb.data()), {1, frame.height, frame.width, 3}, at::kByte);
    const at::Tensor resized = resize_frames(source, model_.config().vision, budget).contiguous();
    if (frame_count_ == 0) {
      height_ = resized.size(1);
      width_ = resized.size(2);
    } else if (resized.size(1) != height_ || resized.size(2) != width_) {
      throw std::runtime_error(path_ + ": frames resize to " + std::to_string(resized.size(2)) + "x" +
                               std::to_string(resized.size(1)) + " and " + std::to_string(width_) + "x" +
                               std::to_string(height_) + "; one file holds one frame size (one haystack size and pixel budget)");
    }
    const uint8_t* bytes = resized.data_ptr<uint8_t>();
    frames_.insert(frames_.end(), bytes, bytes + resized.numel());
    return static_cast<int32_t>(frame_count_++);
  }

  const Qwen25VLModel& model_;
  std::string path_;
  std::vector<int64_t> ids_, sample_starts_, blocks_, answers_;
  std::vector<double> block_seconds_;
  std::vector<int32_t> block_frames_;
  std::vector<uint8_t> frames_;
  size_t frame_count_ = 0;
  int64_t height_ = 0, width_ = 0;
  std::unordered_map<const void*, int32_t> by_identity_;
  std::unordered_multimap<size_t, std::pair<const VideoFrame*, int32_t>> by_content_;
  std::vector<std::unique_ptr<VideoFrame>> kept_;
  std::vector<nlohmann::json> samples_;
};

// The text of a sample (prompt text, options and answer), for training a tokenizer on the tasks.
void append_text(std::ofstream& out, const TaskSample& sample) {
  for (const PromptSegment& segment : sample.prompt)
    if (segment.kind == PromptSegment::Kind::kText) out << segment.text << "\n";
  out << answer_text(sample.answer) << "\n\n";
}

}  // namespace

int prepare_command(int argc, char** argv) {
  ArgParser args("prepare", "write the model inputs of a sweep's samples (tokens, frames, answers) to one file");
  args.option("out", "FILE", "the samples as safetensors (the layout is described in harness/prepare_command.cpp)")
      .option("text", "FILE", "also write every sample's text (prompts and answers), e.g. to train a tokenizer")
      .option("model", "DIR", "use this checkpoint's tokenizer and processor instead of the sweep's first model's")
      .option("cache", "DIR", "generated haystacks and decoded frames", "results/cache")
      .positionals("SWEEP.yaml", "the sweep whose tasks build the samples");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("give exactly one sweep file");
  if (args.get("out").empty() && args.get("text").empty()) throw UsageError("give --out FILE, --text FILE or both");
  const Sweep sweep = load_sweep(args.positional()[0]);
  std::string folder = args.get("model");
  if (folder.empty()) {
    const ModelSpec& spec = sweep.models.at(0);
    if (spec.path.empty()) throw std::runtime_error(sweep.where(spec.mark) + ": prepare needs a checkpoint folder (its tokenizer), not random weights");
    if (!file_exists(spec.path)) throw std::runtime_error(sweep.where(spec.mark) + ": model folder " + spec.path + " does not exist");
    folder = spec.path;
  }
  const std::unique_ptr<Qwen25VLModel> model = Qwen25VLModel::load(folder, at::kFloat, at::Device(at::kCPU));
  at::InferenceMode inference;
  PreparedSamples prepared(*model, args.get("out"));
  std::ofstream text;
  if (!args.get("text").empty()) {
    text.open(args.get("text"), std::ios::trunc);
    if (!text) throw std::runtime_error(args.get("text") + ": cannot create");
  }
  int64_t total = 0;
  for (const TaskSpec& task : sweep.tasks) total += task.grid_size();
  Progress progress("prepare " + sweep.name, total, stdout);
  for (const TaskSpec& task : sweep.tasks) {
    const TaskSamples built = build_task_samples(sweep, task, task_context(*model, task, args.get("cache")));
    for (const TaskFailure& f : built.failures) std::fprintf(stderr, "skipped %s: %s\n", f.sample_id.c_str(), f.error.c_str());
    const PixelBudget budget{task.context.min_pixels, task.context.max_pixels};
    for (const TaskSample& sample : built.samples) {
      if (!args.get("out").empty()) prepared.add(sample, task.name, budget);
      if (text.is_open()) append_text(text, sample);
      progress.step(task.name + " " + sample.id);
    }
    prepared.end_task();
  }
  progress.finish();
  if (!args.get("out").empty()) {
    prepared.write(sweep.name);
    std::printf("%s: %lld samples, %lld tokens, %lld distinct frames\n", args.get("out").c_str(),
                (long long)prepared.count(), (long long)prepared.tokens(), (long long)prepared.distinct_frames());
  }
  if (text.is_open()) std::printf("%s: the samples' text\n", args.get("text").c_str());
  return 0;
}

}  // namespace mmi
