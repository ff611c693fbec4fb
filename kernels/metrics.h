// Accuracy metrics of a sparse attention output against dense attention.
#pragma once

#include <ATen/core/Tensor.h>

namespace mmi {

// ||out - reference||_F / ||reference||_F, computed in fp64.
double relative_error(const at::Tensor& out, const at::Tensor& reference);

// Attention recall: the share of each row's dense softmax mass that the sparse mask keeps, averaged
// over heads and rows. With lse_* the [Hq, N] log-sum-exps of kept scores, a row's recall is
// exp(lse_sparse - lse_dense). No N×N matrix is needed.
double attention_recall(const at::Tensor& lse_sparse, const at::Tensor& lse_dense);

}  // namespace mmi
