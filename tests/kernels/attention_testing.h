// Shared helpers for the attention tests: random inputs, oracle masks, random resolved patterns.
#pragma once

#include <ATen/ATen.h>

#include <random>
#include <vector>

#include "kernels/layout.h"
#include "kernels/pattern.h"
#include "kernels/plan.h"

namespace mmi::testing {

// i.i.d. normal q: [N, heads, dim], k, v: [N, kv_heads, dim] from a fixed seed.
struct RandomQKV {
  at::Tensor q, k, v;
};
RandomQKV random_qkv(int64_t n, int64_t heads, int64_t kv_heads, int64_t dim, uint64_t seed,
                     at::ScalarType dtype = at::kFloat);

// The oracle mask of every head: [heads, N, N] bool, from head_keeps().
at::Tensor oracle_mask(const SequenceLayout& layout, const std::vector<ResolvedHead>& heads);

// How often the plan counts each element: [N, N] int per head.
std::vector<int> count_matrix(const SparsePlan& plan, int head);

// A resolved pattern of `kind` with parameters and index drawn at random (but valid) for `layout`.
ResolvedPattern random_pattern(PatternKind kind, const SequenceLayout& layout, std::mt19937_64& rng);

// A head with `boundary` whose patterns are drawn by random_pattern, kinds drawn from `kinds`.
ResolvedHead random_head(BoundaryKind boundary, const std::vector<PatternKind>& kinds,
                         const SequenceLayout& layout, std::mt19937_64& rng);

// Every pattern kind.
extern const std::vector<PatternKind> kAllPatternKinds;

// Layouts with odd sizes, interleaved spans and every modality.
std::vector<SequenceLayout> test_layouts();

}  // namespace mmi::testing
