// The element rule a plan pass applies inside the tiles it visits: an AND of constraints and an OR of
// components, evaluated on ORIGINAL positions (i = query, j = key). Plain data and inline functions so
// that the CPU and CUDA executors evaluate exactly the same thing. Torch-free, CUDA-includable.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MMI_HD __host__ __device__ __forceinline__
#else
#define MMI_HD inline
#endif

namespace mmi {

constexpr int64_t kNoLimit = INT64_MAX;

struct MaskRule {
  // Constraints every kept element satisfies, besides causality (j <= i):
  int64_t min_distance = 0;  // i - j >= min_distance
  int64_t min_col = 0;       // j >= min_col
  // Components: an element is kept when any one holds.
  bool all = false;                     // every key
  int64_t sink = 0;                     // j < sink
  int64_t local = 0;                    // i - j < local
  int64_t dense_rows_before = 0;        // i < dense_rows_before: every key
  int64_t dense_rows_from = kNoLimit;   // i >= dense_rows_from: every key
  int64_t block = 0;                    // SF-fixed: i / block == j / block ...
  int64_t block_head = 0;               // ... or j % block < block_head
  int64_t diagonal_period = 0;          // (i - j) % diagonal_period == 0
  int64_t vertical_words = -1;          // offset of a bitmap over j in the plan's words, or -1
  int64_t slash_words = -1;             // offset of a bitmap over i - j in the plan's words, or -1
  int64_t grid_stride = 0;              // grid lines by phase (position - span start) % grid_stride
  int64_t grid_phase = 0;
  bool grid_vline = false;              // keys with phase == grid_phase
  bool grid_hline = false;              // queries with phase == grid_phase: every key
  bool grid_slash = false;              // query and key visual with the same phase
};

// The visual spans of the layout, [starts[k], ends[k]) ascending, for grid phases.
struct VisualSpans {
  const int64_t* starts = nullptr;
  const int64_t* ends = nullptr;
  int64_t count = 0;
};

// Phase of `pos` relative to the start of its visual span, modulo `stride`; -1 outside visual spans.
MMI_HD int64_t visual_phase_of(const VisualSpans& spans, int64_t pos, int64_t stride) {
  int64_t lo = 0, hi = spans.count;  // find the last span with start <= pos
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (spans.starts[mid] <= pos) lo = mid + 1; else hi = mid;
  }
  if (lo == 0 || pos >= spans.ends[lo - 1]) return -1;
  return (pos - spans.starts[lo - 1]) % stride;
}

MMI_HD bool test_bit(const uint64_t* words, int64_t bit) {
  return (words[bit >> 6] >> (bit & 63)) & 1u;
}

// The rule with the grid phases of i and j already known (each -1 when not visual or no grid):
// executors compute them once per row and per key instead of once per element.
MMI_HD bool rule_keeps_at(const MaskRule& r, const uint64_t* words, int64_t i, int64_t j, int64_t phase_i,
                          int64_t phase_j) {
  const int64_t d = i - j;
  if (d < 0 || d < r.min_distance || j < r.min_col) return false;
  if (r.all || j < r.sink || d < r.local) return true;
  if (i < r.dense_rows_before || i >= r.dense_rows_from) return true;
  if (r.block > 0 && (i / r.block == j / r.block || j % r.block < r.block_head)) return true;
  if (r.diagonal_period > 0 && d % r.diagonal_period == 0) return true;
  if (r.vertical_words >= 0 && test_bit(words + r.vertical_words, j)) return true;
  if (r.slash_words >= 0 && test_bit(words + r.slash_words, d)) return true;
  if (r.grid_stride > 0) {
    if (r.grid_vline && phase_j == r.grid_phase) return true;
    if (r.grid_hline && phase_i == r.grid_phase) return true;
    if (r.grid_slash && phase_i >= 0 && phase_i == phase_j) return true;
  }
  return false;
}

MMI_HD int64_t rule_phase(const MaskRule& r, const VisualSpans& spans, int64_t pos) {
  return r.grid_stride > 0 ? visual_phase_of(spans, pos, r.grid_stride) : -1;
}

MMI_HD bool rule_keeps(const MaskRule& r, const uint64_t* words, const VisualSpans& spans, int64_t i,
                       int64_t j) {
  return rule_keeps_at(r, words, i, j, rule_phase(r, spans, i), rule_phase(r, spans, j));
}

}  // namespace mmi
