// Qwen2.5-VL's vision tower: patch embedding, 2D RoPE, blocks with windowed attention (full attention
// inside a temporal group at the configured blocks), and the 2x2 patch merger into LM embeddings.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "models/qwen2_5_vl/config.h"

namespace mmi {

class WeightSource;

class Qwen25VisionTower {
 public:
  // Loads "visual.patch_embed", "visual.blocks.*" and "visual.merger".
  Qwen25VisionTower(const Qwen25VisionConfig& config, WeightSource& weights);

  // pixels: [groups * grid_h * grid_w, patch_dim] (patchify_frames' order) -> merged embeddings
  // [groups * grid_h/2 * grid_w/2, out_hidden] in the weights' dtype, in LM token order (group-major,
  // then row, then column). Temporal groups never attend to each other, so they are processed
  // `groups_per_chunk` at a time to bound memory.
  at::Tensor forward(const at::Tensor& pixels, int64_t groups, int64_t grid_h, int64_t grid_w,
                     int64_t groups_per_chunk = 16) const;

 private:
  struct Block {
    at::Tensor norm1, norm2, qkv_w, qkv_b, proj_w, proj_b, gate_w, gate_b, up_w, up_b, down_w, down_b;
  };

  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  // x: [P, hidden]; segments: lengths of consecutive runs that attend only within themselves.
  at::Tensor attention(const Block& block, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                       const std::vector<int64_t>& segments) const;

  Qwen25VisionConfig config_;
  at::Tensor patch_w_;  // [hidden, patch_dim]
  std::vector<Block> blocks_;
  at::Tensor merger_norm_, merger_w1_, merger_b1_, merger_w2_, merger_b2_;
};

}  // namespace mmi
