// Qwen2.5-VL's pixel processor: frames resized to multiples of 28 within a pixel budget (bicubic,
// antialiased, aspect kept), CLIP-normalised, padded to whole temporal patches, and patchified into
// the rows the vision tower takes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

#include "models/qwen2_5_vl/config.h"

namespace mmi {

struct PixelBudget {
  int64_t min_pixels = 128 * 28 * 28;  // per frame, as qwen-vl-utils sets for video
  int64_t max_pixels = 768 * 28 * 28;
};

// The (height, width) a frame is resized to: multiples of `factor`, within [min_pixels, max_pixels],
// aspect ratio as close as possible. Throws std::invalid_argument for empty frames or aspect > 200.
std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor,
                                         int64_t min_pixels, int64_t max_pixels);

// Patchified pixels of one video or image and its grid in patches.
struct PatchedFrames {
  at::Tensor pixels;  // [groups * grid_h * grid_w, 3 * temporal_patch * patch * patch] fp32
  int64_t groups = 0, grid_h = 0, grid_w = 0;  // temporal groups; patch rows and columns
};

// frames: [F, H, W, 3] uint8 RGB (one frame for an image). An odd tail is padded by repeating the last
// frame. Rows are ordered (group, block row, block col, 2x2 patch in the block): the 4 patches of one
// merged token are consecutive.
PatchedFrames patchify_frames(const at::Tensor& frames, const Qwen25VisionConfig& config,
                              const PixelBudget& budget);

// The grid patchify_frames gives `count` frames of height x width, without their pixels (pixels is
// left undefined): for token counts and layouts.
PatchedFrames patch_grid(int64_t count, int64_t height, int64_t width, const Qwen25VisionConfig& config,
                         const PixelBudget& budget);

// frames: [F, H, W, 3] uint8 -> [F, h, w, 3] uint8, the frames resized exactly as patchify_frames
// resizes them before normalising (no temporal padding). For exporting what the vision tower sees.
at::Tensor resize_frames(const at::Tensor& frames, const Qwen25VisionConfig& config, const PixelBudget& budget);

}  // namespace mmi
