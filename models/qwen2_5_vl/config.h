// Qwen2.5-VL's config.json: the Qwen2 text decoder, the vision tower and the special token ids, plus
// the named geometries that `--random-weights` builds without a checkpoint. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/config.h"

namespace mmi {

struct Qwen25VisionConfig {
  int64_t depth = 32;
  int64_t hidden_size = 1280;
  int64_t intermediate_size = 3420;
  int64_t num_heads = 16;
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t spatial_merge_size = 2;
  int64_t window_size = 112;  // pixels; windows are window_size / merge / patch merged units wide
  int64_t out_hidden_size = 3584;
  std::vector<int64_t> fullatt_block_indexes{7, 15, 23, 31};
  double tokens_per_second = 2;  // temporal position units per second of video
  double rope_theta = 10000;

  int64_t head_dim() const { return hidden_size / num_heads; }
  int64_t patch_dim() const { return 3 * temporal_patch_size * patch_size * patch_size; }
  int64_t window_units() const { return window_size / spatial_merge_size / patch_size; }
  void validate() const;  // throws std::invalid_argument naming the problem
};

struct Qwen25VLConfig {
  Qwen2Config text;
  Qwen25VisionConfig vision;
  int64_t image_token_id = 151655;
  int64_t video_token_id = 151656;
  int64_t vision_start_token_id = 151652;
  int64_t vision_end_token_id = 151653;
};

// Reads `<folder>/config.json` (or the file itself); errors name the file and the field.
Qwen25VLConfig load_qwen2_5_vl_config(const std::string& path);

// Built-in geometries for runs without a checkpoint: "qwen2.5-vl-7b", "qwen2.5-vl-3b".
Qwen25VLConfig named_qwen2_5_vl_config(const std::string& name);
std::vector<std::string> named_qwen2_5_vl_configs();

}  // namespace mmi
