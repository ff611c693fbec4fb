// The attention maps `mmi inspect` draws, against an explicit softmax over the full causal matrix.
#include <ATen/ATen.h>

#include "harness/attention_map.h"
#include "tests/catch.h"

using namespace mmi;

namespace {

// [L, L] probabilities of query head `head` (KV head head / group), causal, from the whole matrix.
at::Tensor explicit_probabilities(const at::Tensor& q, const at::Tensor& k, int64_t head) {
  const int64_t length = q.size(0), group = q.size(1) / k.size(1);
  at::Tensor s = at::matmul(q.select(1, head), k.select(1, head / group).t()) / std::sqrt(double(q.size(2)));
  s.masked_fill_(at::ones({length, length}, at::kBool).triu(1), -INFINITY);
  return at::softmax(s, -1);
}

}  // namespace

TEST_CASE("pooled and last-query maps equal max-pooled explicit softmax", "[inspect]") {
  for (const auto& [length, size, seed] : {std::tuple<int64_t, int64_t, int>{37, 8, 1}, {300, 16, 2}, {513, 600, 3}, {1, 4, 4}}) {
    at::manual_seed(seed);
    const at::Tensor q = at::randn({length, 4, 16}), k = at::randn({length, 2, 16});
    for (int64_t head : {0, 3}) {
      const at::Tensor p = explicit_probabilities(q, k, head);
      const int64_t cell = map_cell(length, size), cells = (length + cell - 1) / cell;
      const at::Tensor map = pooled_attention_map(q, k, head, size);
      REQUIRE(map.sizes() == at::IntArrayRef({cells, cells}));
      for (int64_t i = 0; i < cells; ++i) {
        for (int64_t j = 0; j < cells; ++j) {
          const at::Tensor block = p.slice(0, i * cell, std::min(length, (i + 1) * cell)).slice(1, j * cell, std::min(length, (j + 1) * cell));
          const bool masked = j * cell > std::min(length, (i + 1) * cell) - 1;
          if (masked) {
            REQUIRE(map[i][j].item<float>() == -1.0f);
          } else {
            REQUIRE(map[i][j].item<float>() == Approx(block.max().item<float>()).margin(1e-6));
          }
        }
      }
      const int64_t rows = std::min<int64_t>(5, length);
      const at::Tensor last = last_queries_map(q, k, head, 5, size);
      REQUIRE(last.sizes() == at::IntArrayRef({rows, cells}));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t query = length - rows + r;
        for (int64_t j = 0; j < cells; ++j) {
          if (j * cell > query) {
            REQUIRE(last[r][j].item<float>() == -1.0f);
          } else {
            const float expected = p[query].slice(0, j * cell, std::min(length, (j + 1) * cell)).max().item<float>();
            REQUIRE(last[r][j].item<float>() == Approx(expected).margin(1e-6));
          }
        }
      }
    }
  }
  REQUIRE_THROWS_WITH(pooled_attention_map(at::randn({4, 4, 8}), at::randn({4, 3, 8}), 0, 4), Contains("Hkv dividing Hq"));
  REQUIRE_THROWS_WITH(last_queries_map(at::randn({4, 4, 8}), at::randn({4, 2, 8}), 4, 1, 4), Contains("head 4 is not in [0, 4)"));
}
