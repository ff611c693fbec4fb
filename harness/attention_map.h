// One head's attention probabilities reduced to an image-sized map, for `mmi inspect` (the paper's
// Figure 3 views): the whole causal map pooled into cells, or the last queries' rows over pooled keys.
// Rows are computed a chunk at a time, so there is never an L x L buffer.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mmi {

// q: [L, Hq, D], k: [L, Hkv, D], one layer after RoPE; query head `head` reads KV head
// head / (Hq / Hkv). Softmax(q k^T / sqrt(D)) with causal masking, in fp32.
//
// The full map: [C, C] fp32 with C = ceil(L / cell) cells a side, cell = ceil(L / size); cell (i, j)
// holds the largest probability of a query row in i's range for a key in j's range (max pooling keeps
// thin vertical and slash lines visible). Cells wholly above the diagonal hold -1 (masked).
at::Tensor pooled_attention_map(const at::Tensor& q, const at::Tensor& k, int64_t head, int64_t size);

// The last `rows` queries, one row each: [min(rows, L), C] fp32 over keys pooled (max) into cells as
// above; keys after a query (masked) hold -1.
at::Tensor last_queries_map(const at::Tensor& q, const at::Tensor& k, int64_t head, int64_t rows, int64_t size);

// The cell width both maps use for L tokens and an image of `size` cells a side.
int64_t map_cell(int64_t length, int64_t size);

}  // namespace mmi
