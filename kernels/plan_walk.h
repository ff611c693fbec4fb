// Walking a plan chunk by chunk (included by plan.h). The CPU executor, the statistics and the
// exactness tests all see a plan through these two functions, so they cannot disagree on its meaning.
#pragma once

#include <algorithm>

namespace mmi {

// Calls chunk(pass, rows, cols, mask) for every chunk of `head`, pass by pass, tile by tile:
// rows and cols are original positions (rows: one query tile, cols: at most block_n keys).
template <typename ChunkFn>
void for_each_chunk(const SparsePlan& plan, int head, ChunkFn&& chunk) {
  std::vector<int64_t> rows, cols;
  for (const Pass& pass : plan.heads[head].passes) {
    for (int64_t t = 0; t < pass.num_tiles(); ++t) {
      rows.clear();
      pass.rows.gather(t * plan.block_m, std::min(pass.rows.size(), (t + 1) * plan.block_m), rows);
      for (int64_t r = pass.run_offsets[t]; r < pass.run_offsets[t + 1]; ++r) {
        const KeyRun& run = pass.runs[r];
        for (int64_t c = run.begin; c < run.end; c += plan.block_n) {
          cols.clear();
          pass.cols.gather(c, std::min(run.end, c + plan.block_n), cols);
          chunk(pass, rows, cols, run.mask);
        }
      }
      const int64_t c0 = pass.column_offsets[t], c1 = pass.column_offsets[t + 1];
      for (int64_t c = c0; c < c1; c += plan.block_n) {
        cols.assign(pass.columns.begin() + c, pass.columns.begin() + std::min(c1, c + plan.block_n));
        chunk(pass, rows, cols, ChunkMask::kRule);
      }
    }
  }
}

// True when the executor counts element (i, j) of a chunk with this mask.
inline bool chunk_counts(const SparsePlan& plan, const Pass& pass, ChunkMask mask, int64_t i, int64_t j) {
  switch (mask) {
    case ChunkMask::kFull: return true;
    case ChunkMask::kCausal: return j <= i;
    default: return plan.keeps(pass.rule, i, j);
  }
}

template <typename Visit>
void for_each_counted_element(const SparsePlan& plan, int head, Visit&& visit) {
  for_each_chunk(plan, head, [&](const Pass& pass, const std::vector<int64_t>& rows,
                                 const std::vector<int64_t>& cols, ChunkMask mask) {
    for (int64_t i : rows) {
      for (int64_t j : cols) {
        if (chunk_counts(plan, pass, mask, i, j)) visit(i, j);
      }
    }
  });
}

}  // namespace mmi
