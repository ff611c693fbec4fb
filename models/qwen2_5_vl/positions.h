// Qwen2.5-VL's canonical 3-axis position ids (SPEC.md §6, the behaviour the model was released with)
// and the SequenceLayout the attention methods see. Torch-free apart from the returned tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "kernels/layout.h"

namespace mmi {

// One run of visual placeholder tokens in the LM input.
struct VisualBlock {
  int64_t start = 0;   // index of the first placeholder token
  int64_t groups = 0;  // temporal groups (temporal_patch frames each; 1 for an image)
  int64_t rows = 0;    // merged-grid rows and columns: tokens per group = rows x cols
  int64_t cols = 0;
  double seconds_per_grid = 0;  // temporal_patch / sampling fps for videos; 0 for images
  bool is_video = true;

  int64_t tokens() const { return groups * rows * cols; }
};

// [3, length] int64 (time, height, width). Text advances by one on all axes; a block starts at the
// previous maximum + 1 (s): token (g, r, c) gets (s + floor(g * seconds_per_grid * tokens_per_second),
// s + r, s + c); text after a block resumes at the block's maximum + 1. Blocks must be ordered and
// must not overlap or run past `length` (std::invalid_argument otherwise).
at::Tensor canonical_position_ids(int64_t length, const std::vector<VisualBlock>& blocks,
                                  double tokens_per_second);

// Text spans between the blocks; each block a video span (groups x rows x cols) or an image span.
SequenceLayout sequence_layout(int64_t length, const std::vector<VisualBlock>& blocks);

}  // namespace mmi
