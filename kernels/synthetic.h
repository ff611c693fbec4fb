// Synthetic q, k, v over a layout, for `mmi attention`, benchmarks and tests.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "kernels/layout.h"

namespace mmi {

struct SyntheticOptions {
  int64_t heads = 4;      // query heads
  int64_t kv_heads = 2;   // KV heads (heads % kv_heads == 0)
  int64_t head_dim = 64;
  at::ScalarType dtype = at::kFloat;
  // Structured inputs plant what video VLM heads show: attention sinks at the start, a local
  // diagonal, frame-periodic grid columns (a different phase per KV head) and a few hot columns.
  // Otherwise q, k, v are i.i.d. normal.
  bool structured = true;
  uint64_t seed = 0;
  // Where the tensors are made. On a GPU the bulk noise comes from the device generator (seeded from
  // `seed`), so million-token inputs need no host round trip.
  at::Device device = at::kCPU;
};

struct QKV {
  at::Tensor q;  // [N, heads, head_dim]
  at::Tensor k;  // [N, kv_heads, head_dim]
  at::Tensor v;  // [N, kv_heads, head_dim]
};

QKV make_qkv(const SequenceLayout& layout, const SyntheticOptions& options);

}  // namespace mmi
