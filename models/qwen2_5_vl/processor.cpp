#include "models/qwen2_5_vl/processor.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace mmi {
namespace {

// OpenAI CLIP statistics, which Qwen2.5-VL was trained with.
constexpr double kMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kStd[3] = {0.26862954, 0.26130258, 0.27577711};

}  // namespace

std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor,
                                         int64_t min_pixels, int64_t max_pixels) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("frame has no pixels");
  if (double(std::max(height, width)) / std::min(height, width) > 200)
    throw std::invalid_argument("frame aspect ratio " + std::to_string(width) + "x" + std::to_string(height) +
                                " exceeds 200");
  // Python's round() rounds halves to even; std::nearbyint does the same in the default mode.
  auto round_to = [&](double x) { return static_cast<int64_t>(std::nearbyint(x / factor)) * factor; };
  int64_t h = round_to(height), w = round_to(width);
  if (h * w > max_pixels) {
    const double beta = std::sqrt(double(height) * width / max_pixels);
    h = std::max(factor, static_cast<int64_t>(std::floor(height / beta / factor)) * factor);
    w = std::max(factor, static_cast<int64_t>(std::floor(width / beta / factor)) * factor);
  } else if (h * w < min_pixels) {
    const double beta = std::sqrt(double(min_pixels) / (double(height) * width));
    h = static_cast<int64_t>(std::ceil(height * beta / factor)) * factor;
    w = static_cast<int64_t>(std::ceil(width * beta / factor)) * factor;
  }
  return {h, w};
}

namespace {

// frames [F, H, W, 3] uint8 -> [F, 3, height, width] uint8.
at::Tensor resize_chunk(const at::Tensor& frames, int64_t height, int64_t width) {
  at::Tensor x = frames.permute({0, 3, 1, 2}).contiguous();  // [F, 3, H, W] uint8
  if (height == frames.size(1) && width == frames.size(2)) return x;
  // Antialiased bicubic on the 8-bit frames themselves, as the reference processor resizes them
  // (resizing in float instead differs by up to ~15 levels at sharp edges).
  return at::_upsample_bicubic2d_aa(x, {height, width}, false);
}

void check_frames(const at::Tensor& frames) {
  if (frames.dim() != 4 || frames.size(3) != 3 || frames.scalar_type() != at::kByte || frames.size(0) == 0)
    throw std::invalid_argument("frames must be [F, H, W, 3] uint8 with F > 0");
}

// frames [F, H, W, 3] uint8 (F a multiple of the temporal patch) -> rows of patchify_frames.
at::Tensor patchify_chunk(const at::Tensor& frames, const Qwen25VisionConfig& c, int64_t height, int64_t width) {
  at::Tensor x = resize_chunk(frames, height, width).to(at::kFloat);
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  x = (x / 255.0 - at::tensor({kMean[0], kMean[1], kMean[2]}, opts).view({1, 3, 1, 1})) /
      at::tensor({kStd[0], kStd[1], kStd[2]}, opts).view({1, 3, 1, 1});
  const int64_t tp = c.temporal_patch_size, m = c.spatial_merge_size, p = c.patch_size;
  const int64_t groups = x.size(0) / tp, gh = height / p, gw = width / p;
  // [groups, tp, 3, h/m, m, p, w/m, m, p] -> [groups, h/m, w/m, m, m, 3, tp, p, p]
  return x.reshape({groups, tp, 3, gh / m, m, p, gw / m, m, p})
      .permute({0, 3, 6, 4, 7, 2, 1, 5, 8})
      .reshape({groups * gh * gw, c.patch_dim()});
}

}  // namespace

PatchedFrames patch_grid(int64_t count, int64_t height, int64_t width, const Qwen25VisionConfig& c,
                         const PixelBudget& budget) {
  const auto [h, w] = smart_resize(height, width, c.patch_size * c.spatial_merge_size, budget.min_pixels,
                                   budget.max_pixels);
  PatchedFrames out;
  out.groups = (count + c.temporal_patch_size - 1) / c.temporal_patch_size;
  out.grid_h = h / c.patch_size;
  out.grid_w = w / c.patch_size;
  return out;
}

at::Tensor resize_frames(const at::Tensor& frames, const Qwen25VisionConfig& c, const PixelBudget& budget) {
  check_frames(frames);
  const PatchedFrames grid = patch_grid(frames.size(0), frames.size(1), frames.size(2), c, budget);
  return resize_chunk(frames, grid.grid_h * c.patch_size, grid.grid_w * c.patch_size).permute({0, 2, 3, 1}).contiguous();
}

PatchedFrames patchify_frames(const at::Tensor& frames_in, const Qwen25VisionConfig& c,
                              const PixelBudget& budget) {
  check_frames(frames_in);
  const int64_t tp = c.temporal_patch_size;
  PatchedFrames out = patch_grid(frames_in.size(0), frames_in.size(1), frames_in.size(2), c, budget);
  const int64_t height = out.grid_h * c.patch_size, width = out.grid_w * c.patch_size;
  at::Tensor frames = frames_in;
  if (frames.size(0) % tp != 0) {  // whole temporal patches: repeat the last frame
    const int64_t missing = tp - frames.size(0) % tp;
    frames = at::cat({frames, frames.narrow(0, frames.size(0) - 1, 1).expand({missing, -1, -1, -1})}, 0);
  }
  const int64_t per_group = out.grid_h * out.grid_w;
  out.pixels = at::empty({out.groups * per_group, c.patch_dim()}, at::kFloat);
  // Groups in chunks: long videos would otherwise hold several fp32 copies of every frame at once.
  constexpr int64_t kChunkGroups = 64;
  for (int64_t g = 0; g < out.groups; g += kChunkGroups) {
    const int64_t n = std::min(kChunkGroups, out.groups - g);
    out.pixels.narrow(0, g * per_group, n * per_group)
        .copy_(patchify_chunk(frames.narrow(0, g * tp, n * tp), c, height, width));
  }
  return out;
}

}  // namespace mmi
