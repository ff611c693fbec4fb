#include "models/qwen2_5_vl/model.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "kernels/cuda/cuda_executor.h"
#include "models/qwen2_5_vl/vision.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "tasks/files.h"

namespace mmi {

int64_t ModelInputs::visual_tokens() const {
  int64_t n = 0;
  for (const VisualBlock& b : blocks) n += b.tokens();
  return n;
}

Qwen25VLModel::~Qwen25VLModel() = default;

std::unique_ptr<Qwen25VLModel> Qwen25VLModel::load(const std::string& folder, at::ScalarType dtype,
                                                   at::Device device) {
  std::unique_ptr<Qwen25VLModel> model(new Qwen25VLModel());
  model->config_ = load_qwen2_5_vl_config(folder);
  const std::string tokenizer_path = join_path(folder, "tokenizer.json");
  if (!file_exists(tokenizer_path))
    throw std::runtime_error(folder + ": no tokenizer.json (a model folder needs config.json, the "
                             "safetensors weights and tokenizer.json)");
  model->tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path));
  const auto weights = checkpoint_weights(folder, dtype, device);
  model->decoder_ = std::make_unique<Qwen2Decoder>(model->config_.text, *weights);
  model->vision_ = std::make_unique<Qwen25VisionTower>(model->config_.vision, *weights);
  model->source_ = weights->describe();
  return model;
}

std::unique_ptr<Qwen25VLModel> Qwen25VLModel::random(const std::string& config_name, uint64_t seed,
                                                     at::ScalarType dtype, at::Device device) {
  std::unique_ptr<Qwen25VLModel> model(new Qwen25VLModel());
  model->config_ = named_qwen2_5_vl_config(config_name);
  const auto weights = random_weights(seed, dtype, device);
  model->decoder_ = std::make_unique<Qwen2Decoder>(model->config_.text, *weights);
  model->vision_ = std::make_unique<Qwen25VisionTower>(model->config_.vision, *weights);
  model->source_ = config_name + ", " + weights->describe();
  return model;
}

std::string Qwen25VLModel::describe() const {
  return "Qwen2.5-VL (" + config_.text.describe() + "; vision " + std::to_string(config_.vision.depth) +
         " blocks x " + std::to_string(config_.vision.hidden_size) + ") from " + source_;
}

std::vector<int64_t> Qwen25VLModel::encode(const std::string& text) const {
  if (tokenizer_) {
    const std::vector<int32_t> ids = tokenizer_->encode(text);
    return {ids.begin(), ids.end()};
  }
  return {reinterpret_cast<const unsigned char*>(text.data()),
          reinterpret_cast<const unsigned char*>(text.data()) + text.size()};
}

std::string Qwen25VLModel::decode(const std::vector<int64_t>& ids) const {
  if (tokenizer_) return tokenizer_->decode({ids.begin(), ids.end()}, /*skip_special=*/true);
  std::string bytes;
  for (int64_t id : ids)
    if (id >= 0 && id < 256) bytes.push_back(static_cast<char>(id));
  return bytes;
}

at::Tensor frames_tensor(const std::vector<VideoFrame>& frames) {
  if (frames.empty()) throw std::invalid_argument("a video or image segment has no frames");
  const int64_t h = frames[0].height, w = frames[0].width;
  at::Tensor out = at::empty({static_cast<int64_t>(frames.size()), h, w, 3}, at::kByte);
  for (size_t i = 0; i < frames.size(); ++i) {
    const VideoFrame& f = frames[i];
    if (f.height != h || f.width != w || f.rgb.size() != static_cast<size_t>(h * w * 3))
      throw std::invalid_argument("frame " + std::to_string(i) + " is " + std::to_string(f.width) + "x" +
                                  std::to_string(f.height) + ", the first frame " + std::to_string(w) + "x" +
                                  std::to_string(h) + ": the frames of one segment must share a size");
    std::memcpy(out[i].data_ptr(), f.rgb.data(), f.rgb.size());
  }
  return out;
}

double seconds_per_group(const std::vector<VideoFrame>& frames, int64_t temporal_patch) {
  const double span = frames.size() > 1 ? frames.back().timestamp_s - frames.front().timestamp_s : 0;
  if (span <= 0) return 1.0;  // fps unknown: the reference processor assumes 2 fps
  const double fps = (frames.size() - 1) / span;
  return temporal_patch / fps;
}

ModelInputs Qwen25VLModel::prepare(const std::vector<PromptSegment>& prompt, const PrepareOptions& options) const {
  ModelInputs in;
  std::vector<int64_t> ids;
  auto text = [&](const std::string& s) {
    const std::vector<int64_t> t = encode(s);
    ids.insert(ids.end(), t.begin(), t.end());
  };
  text("<|im_start|>system\n" + options.system_prompt + "<|im_end|>\n<|im_start|>user\n");
  const Qwen25VisionConfig& vc = config_.vision;
  for (const PromptSegment& segment : prompt) {
    if (segment.kind == PromptSegment::Kind::kText) {
      text(segment.text);
      continue;
    }
    const bool video = segment.kind == PromptSegment::Kind::kVideo;
    if (!video && segment.frames.size() != 1) throw std::invalid_argument("an image segment holds exactly one frame");
    PatchedFrames patched =
        options.pixels ? patchify_frames(frames_tensor(segment.frames), vc, options.budget)
                       : patch_grid(static_cast<int64_t>(segment.frames.size()), segment.frames.at(0).height,
                                    segment.frames.at(0).width, vc, options.budget);
    VisualBlock block;
    block.groups = patched.groups;
    block.rows = patched.grid_h / vc.spatial_merge_size;
    block.cols = patched.grid_w / vc.spatial_merge_size;
    block.is_video = video;
    block.seconds_per_grid = video ? seconds_per_group(segment.frames, vc.temporal_patch_size) : 0.0;
    ids.push_back(config_.vision_start_token_id);
    block.start = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), block.tokens(), video ? config_.video_token_id : config_.image_token_id);
    ids.push_back(config_.vision_end_token_id);
    in.blocks.push_back(block);
    in.visuals.push_back(std::move(patched));
  }
  text("<|im_end|>\n<|im_start|>assistant\n");
  if (!options.answer.empty()) {
    in.answer_ids = encode(options.answer);
    for (size_t i = 0; i < in.answer_ids.size(); ++i) in.answer_positions.push_back(ids.size() - 1 + i);
    ids.insert(ids.end(), in.answer_ids.begin(), in.answer_ids.end());
  }
  const int64_t length = static_cast<int64_t>(ids.size());
  in.ids = at::tensor(ids, at::kLong);
  in.positions = canonical_position_ids(length, in.blocks, vc.tokens_per_second);
  in.layout = sequence_layout(length, in.blocks);
  return in;
}

at::Tensor Qwen25VLModel::embed(const ModelInputs& in, double* vision_ms) const {
  at::Tensor embeds = decoder_->embed(in.ids);
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < in.blocks.size(); ++i) {
    const VisualBlock& b = in.blocks[i];
    const PatchedFrames& p = in.visuals[i];
    const at::Tensor visual = vision_->forward(p.pixels, p.groups, p.grid_h, p.grid_w);
    embeds.narrow(0, b.start, b.tokens()).copy_(visual);
  }
  if (vision_ms != nullptr && !in.blocks.empty()) {
    if (embeds.is_cuda()) cuda_synchronize();
    *vision_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return embeds;
}

PrefillResult Qwen25VLModel::prefill(const ModelInputs& in, const at::Tensor& embeds, PrefillOptions options) const {
  if (options.layout == nullptr) options.layout = &in.layout;
  return decoder_->prefill(embeds, in.positions, options);
}

}  // namespace mmi
