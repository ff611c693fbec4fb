// Small building blocks shared by the language model and the vision tower.
#pragma once

#include <ATen/ATen.h>

namespace mmi {

// [..., D] -> [..., D]: (x1, x2) -> (-x2, x1) over the two halves of the last dimension (rotate-half RoPE).
inline at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// RMSNorm over the last dimension, computed in fp32 and cast back before the weight product, as the
// reference implementation does (the product then happens in the activation dtype).
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor f = x.to(at::kFloat);
  return weight * (f * at::rsqrt(f.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

}  // namespace mmi
