// Exact CPU attention: the reference executor for any SparsePlan, the chunked dense reference, and an
// explicit masked reference for tests. All accumulate in fp32 and accept fp32, bf16 or fp16 inputs.
#pragma once

#include <ATen/core/Tensor.h>

#include "kernels/plan.h"

namespace mmi {

struct AttentionOutput {
  at::Tensor out;  // [N, Hq, D], the dtype of q
  at::Tensor lse;  // [Hq, N] fp32: log-sum-exp of each row's kept scaled scores (-inf if none)
};

// Throws std::invalid_argument unless q: [N, Hq, D], k and v: [N, Hkv, D] with Hq % Hkv == 0, one float
// dtype, one device. `who` prefixes the message.
void check_attention_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const char* who);

// Executes `plan` (one HeadPlan per query head) with tiled online softmax; query head h reads KV head
// h / (Hq / Hkv) without copying KV per query head. Parallel over heads; memory O(N·D) per worker.
// Rows that keep no key produce zeros.
AttentionOutput execute_plan_cpu(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                                 const at::Tensor& v);

// Causal softmax attention over every key, in row and key chunks (no N×N buffer).
AttentionOutput dense_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Softmax attention restricted to an explicit mask [Hq, N, N] (bool, true = kept). O(N²): tests only.
AttentionOutput masked_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& mask);

}  // namespace mmi
