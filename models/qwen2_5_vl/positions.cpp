#include "models/qwen2_5_vl/positions.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace mmi {
namespace {

void check_blocks(int64_t length, const std::vector<VisualBlock>& blocks) {
  int64_t end = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const VisualBlock& b = blocks[i];
    if (b.groups <= 0 || b.rows <= 0 || b.cols <= 0 || b.start < end || b.start + b.tokens() > length)
      throw std::invalid_argument("visual block " + std::to_string(i) + " (start " + std::to_string(b.start) +
                                  ", " + std::to_string(b.tokens()) + " tokens) is empty, overlaps the previous one "
                                  "or runs past the " + std::to_string(length) + " tokens of the input");
    end = b.start + b.tokens();
  }
}

}  // namespace

at::Tensor canonical_position_ids(int64_t length, const std::vector<VisualBlock>& blocks,
                                  double tokens_per_second) {
  check_blocks(length, blocks);
  at::Tensor positions = at::empty({3, length}, at::kLong);
  auto p = positions.accessor<int64_t, 2>();
  int64_t next = 0, i = 0;
  auto text_until = [&](int64_t end) {
    for (; i < end; ++i, ++next) p[0][i] = p[1][i] = p[2][i] = next;
  };
  for (const VisualBlock& b : blocks) {
    text_until(b.start);
    const int64_t s = next;
    int64_t block_max = s;
    for (int64_t g = 0; g < b.groups; ++g) {
      // The temporal step is in position units per second of video: tokens_per_second per second.
      const int64_t t = s + static_cast<int64_t>(std::floor(g * b.seconds_per_grid * tokens_per_second));
      for (int64_t r = 0; r < b.rows; ++r)
        for (int64_t c = 0; c < b.cols; ++c, ++i) {
          p[0][i] = t;
          p[1][i] = s + r;
          p[2][i] = s + c;
          block_max = std::max({block_max, t, s + r, s + c});
        }
    }
    next = block_max + 1;
  }
  text_until(length);
  return positions;
}

SequenceLayout sequence_layout(int64_t length, const std::vector<VisualBlock>& blocks) {
  check_blocks(length, blocks);
  LayoutBuilder builder;
  int64_t at = 0;
  for (const VisualBlock& b : blocks) {
    if (b.start > at) builder.text(b.start - at);
    if (b.is_video)
      builder.video(b.groups, b.rows, b.cols);
    else if (b.groups == 1)
      builder.image(b.rows, b.cols);
    else
      throw std::invalid_argument("an image block has exactly one temporal group");
    at = b.start + b.tokens();
  }
  if (length > at) builder.text(length - at);
  return builder.build();
}

}  // namespace mmi
