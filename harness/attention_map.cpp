#include "harness/attention_map.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace mmi {
namespace {

constexpr int64_t kChunkRows = 256;

void check_inputs(const at::Tensor& q, const at::Tensor& k, int64_t head) {
  if (q.dim() != 3 || k.dim() != 3 || q.size(0) != k.size(0) || q.size(2) != k.size(2) || q.size(1) % k.size(1) != 0)
    throw std::invalid_argument("attention map: q must be [L, Hq, D] and k [L, Hkv, D] with Hkv dividing Hq");
  if (head < 0 || head >= q.size(1))
    throw std::invalid_argument("attention map: head " + std::to_string(head) + " is not in [0, " + std::to_string(q.size(1)) + ")");
}

// Probabilities of query rows [first, first + count) over all L keys: [count, L] fp32, 0 where masked.
at::Tensor probabilities(const at::Tensor& q, const at::Tensor& k, int64_t head, int64_t first, int64_t count) {
  const int64_t length = q.size(0), group = q.size(1) / k.size(1);
  const at::Tensor qh = q.select(1, head).narrow(0, first, count).to(at::kFloat);  // [count, D]
  const at::Tensor kh = k.select(1, head / group).to(at::kFloat);                     // [L, D]
  at::Tensor scores = at::matmul(qh, kh.t()) / std::sqrt(double(q.size(2)));
  const at::Tensor rows = at::arange(first, first + count, q.options().dtype(at::kLong)).unsqueeze(1);
  const at::Tensor cols = at::arange(length, q.options().dtype(at::kLong)).unsqueeze(0);
  scores.masked_fill_(cols > rows, -INFINITY);
  return at::softmax(scores, -1);
}

// [r, L] -> [r, C]: max over each cell of `cell` keys (the last cell may be shorter).
at::Tensor pool_keys(const at::Tensor& p, int64_t cell) {
  const int64_t length = p.size(1), cells = (length + cell - 1) / cell;
  const at::Tensor padded = at::constant_pad_nd(p, {0, cells * cell - length}, 0.0);
  return std::get<0>(padded.view({p.size(0), cells, cell}).max(2));
}

}  // namespace

int64_t map_cell(int64_t length, int64_t size) {
  if (size < 1) throw std::invalid_argument("attention map: the image size must be >= 1");
  return std::max<int64_t>(1, (length + size - 1) / size);
}

at::Tensor pooled_attention_map(const at::Tensor& q, const at::Tensor& k, int64_t head, int64_t size) {
  check_inputs(q, k, head);
  const int64_t length = q.size(0), cell = map_cell(length, size), cells = (length + cell - 1) / cell;
  at::Tensor out = at::empty({cells, cells}, at::kFloat);
  const int64_t chunk = std::max<int64_t>(cell, kChunkRows / cell * cell);  // whole cells per chunk
  for (int64_t first = 0; first < length; first += chunk) {
    const int64_t count = std::min(chunk, length - first);
    const at::Tensor keys = pool_keys(probabilities(q, k, head, first, count), cell).to(at::kCPU);  // [count, C]
    const int64_t row_cells = (count + cell - 1) / cell;
    const at::Tensor padded = at::constant_pad_nd(keys, {0, 0, 0, row_cells * cell - count}, 0.0);
    out.narrow(0, first / cell, row_cells).copy_(std::get<0>(padded.view({row_cells, cell, cells}).max(1)));
  }
  // Cells wholly above the diagonal: every key there comes after every query of the row cell.
  const at::Tensor i = at::arange(cells).unsqueeze(1), j = at::arange(cells).unsqueeze(0);
  out.masked_fill_(j * cell > (i + 1) * cell - 1, -1.0);
  return out;
}

at::Tensor last_queries_map(const at::Tensor& q, const at::Tensor& k, int64_t head, int64_t rows, int64_t size) {
  check_inputs(q, k, head);
  const int64_t length = q.size(0), count = std::min(rows, length), first = length - count;
  const int64_t cell = map_cell(length, size);
  at::Tensor out = pool_keys(probabilities(q, k, head, first, count), cell).to(at::kCPU).contiguous();
  const at::Tensor r = at::arange(first, length).unsqueeze(1), j = at::arange(out.size(1)).unsqueeze(0);
  out.masked_fill_(j * cell > r, -1.0);
  return out;
}

}  // namespace mmi
