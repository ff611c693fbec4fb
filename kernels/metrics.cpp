#include "kernels/metrics.h"

#include <ATen/ATen.h>

namespace mmi {

double relative_error(const at::Tensor& out, const at::Tensor& reference) {
  const at::Tensor ref = reference.to(at::kDouble);
  const double norm = ref.norm().item<double>();
  const double diff = (out.to(at::kDouble) - ref).norm().item<double>();
  return norm > 0 ? diff / norm : diff;
}

double attention_recall(const at::Tensor& lse_sparse, const at::Tensor& lse_dense) {
  const at::Tensor ratio = at::exp(lse_sparse.to(at::kDouble) - lse_dense.to(at::kDouble));
  return ratio.nan_to_num(0.0).mean().item<double>();
}

}  // namespace mmi
