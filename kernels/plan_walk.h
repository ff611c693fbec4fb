// Walking a plan chunk by chunk (included by plan.h). The CPU executor, the statistics and the
// exactness tests all see a plan through these two functions, so they cannot disagree on its meaning.
#pragma once

#include <algorithm>

namespace mmi {

// Calls chunk(pass, rows, cols, mask) for every chunk of `head`, pass by pass, tile by tile:
// rows and cols are original positions (rows: one query tile, cols: at most block_n keys).
template <typename ChunkFn>
void for_each_chunk(const SparsePlan& plan, int head, ChunkFn&& chunk) {
  std::vector<int64_t> rows, cols, columns;
  std::vector<KeyRun> runs;
  for (const Pass& pass : plan.heads[head].passes) {
    for (int64_t t = 0; t < pass.num_tiles(); ++t) {
      rows.clear();
      pass.rows.gather(t * plan.block_m, std::min(pass.rows.size(), (t + 1) * plan.block_m), rows);
      tile_work(plan, pass, t, runs, columns);
      for (const KeyRun& run : runs) {
        for (int64_t c = run.begin; c < run.end; c += plan.block_n) {
          cols.clear();
          pass.cols.gather(c, std::min(run.end, c + plan.block_n), cols);
          chunk(pass, rows, cols, run.mask);
        }
      }
      const int64_t count = static_cast<int64_t>(columns.size());
      for (int64_t c = 0; c < count; c += plan.block_n) {
        cols.clear();
        for (int64_t x = c; x < std::min(count, c + plan.block_n); ++x) {
          if (columns[x] >= 0) cols.push_back(columns[x]);
        }
        // A compact Vertical-Slash pass gathers only verticals (covered ones dropped), whose every
        // causal element counts.
        chunk(pass, rows, cols, pass.form == PassForm::kVerticalSlash ? ChunkMask::kCausal : ChunkMask::kRule);
      }
    }
  }
}

// True when the executor counts element (i, j) of a chunk with this mask.
inline bool chunk_counts(const SparsePlan& plan, const Pass& pass, ChunkMask mask, int64_t i, int64_t j) {
  switch (mask) {
    case ChunkMask::kFull: return true;
    case ChunkMask::kCausal: return j <= i - pass.rule.min_distance;
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
