// Qwen2.5-VL end to end: a prompt of segments (text, video frames, images) becomes ChatML token ids
// with vision placeholders, patchified pixels, canonical 3-axis positions and the SequenceLayout; the
// vision tower's embeddings are spliced over the placeholders and the Qwen2 decoder pre-fills with any
// attention method.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/layout.h"
#include "models/qwen2_5_vl/config.h"
#include "models/qwen2_5_vl/positions.h"
#include "models/qwen2_5_vl/processor.h"
#include "models/qwen2_decoder.h"
#include "tasks/sample.h"

namespace mmi {

class Tokenizer;
class Qwen25VisionTower;

struct PrepareOptions {
  PixelBudget budget;
  std::string system_prompt = "You are a helpful assistant.";
  // Appended after "<|im_start|>assistant\n" for teacher-forced scoring: its tokens are predicted by
  // the rows listed in ModelInputs::answer_positions.
  std::string answer;
  // false: ids, positions, layout and blocks only; visuals carry their grids with undefined pixels
  // (for exporting samples or counting tokens without the cost of normalising every frame).
  bool pixels = true;
};

struct ModelInputs {
  at::Tensor ids;        // [L] int64
  at::Tensor positions;  // [3, L] int64
  SequenceLayout layout;
  std::vector<VisualBlock> blocks;     // one per video or image segment, in order
  std::vector<PatchedFrames> visuals;  // the pixels of each block
  std::vector<int64_t> answer_ids;        // tokens of PrepareOptions::answer
  std::vector<int64_t> answer_positions;  // row whose logits predict each answer token

  int64_t length() const { return ids.size(0); }
  int64_t visual_tokens() const;
};

class Qwen25VLModel {
 public:
  // A Hugging Face folder: config.json, model.safetensors (or shards with their index), tokenizer.json.
  static std::unique_ptr<Qwen25VLModel> load(const std::string& folder, at::ScalarType dtype, at::Device device);
  // A named geometry (named_qwen2_5_vl_configs) with seeded random weights, for latency runs. Without
  // a tokenizer, text is encoded one id per UTF-8 byte: token counts stay realistic, answers do not.
  static std::unique_ptr<Qwen25VLModel> random(const std::string& config_name, uint64_t seed,
                                               at::ScalarType dtype, at::Device device);
  ~Qwen25VLModel();

  const Qwen25VLConfig& config() const { return config_; }
  const Qwen2Decoder& decoder() const { return *decoder_; }
  std::string describe() const;  // geometry and where the weights came from

  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;  // special tokens dropped

  ModelInputs prepare(const std::vector<PromptSegment>& prompt, const PrepareOptions& options = {}) const;
  // [L, hidden] token embeddings with the vision tower's output over the placeholders. Adds the
  // vision tower's time to *vision_ms when given.
  at::Tensor embed(const ModelInputs& inputs, double* vision_ms = nullptr) const;
  // Pre-fill; options.layout defaults to inputs.layout.
  PrefillResult prefill(const ModelInputs& inputs, const at::Tensor& embeds, PrefillOptions options) const;

 private:
  Qwen25VLModel() = default;

  Qwen25VLConfig config_;
  std::string source_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Qwen2Decoder> decoder_;
  std::unique_ptr<Qwen25VisionTower> vision_;
};

// Frames of a video or image segment as [F, H, W, 3] uint8 (all frames must share one size), and the
// seconds per temporal group they imply: temporal_patch / sampling fps, 1.0 when the fps is unknown.
at::Tensor frames_tensor(const std::vector<VideoFrame>& frames);
double seconds_per_group(const std::vector<VideoFrame>& frames, int64_t temporal_patch);

}  // namespace mmi
