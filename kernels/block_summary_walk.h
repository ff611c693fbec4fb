// How SF-fixed's compact pass (PassForm::kBlockSummary) expands into the work of one query tile. Its
// rule keeps a key of the row's own block, or one of the first c keys (summary keys) of any block. Its
// rows are positions in order; its key columns are pieces of bands, each piece ascending in position:
// the summary keys (a piece per summary phase, or one piece of every block's summary keys) and last
// the blocks' other keys. A tile visits each summary piece up to its last row, and the other keys of
// its rows' blocks up to its last row: one run per piece. A chunk is fully kept when its last key is at
// most the tile's first row, and causal otherwise (the rule keeps every summary key, and every key of a
// row's own block); other keys of a tile whose rows lie in two blocks are rule-tested. The host plan
// walker and the CUDA kernels both call these functions, so they visit exactly the same chunks with the
// same masks. Torch-free, CUDA-includable.
#pragma once

#include <cstdint>

#include "kernels/grid_line_walk.h"

namespace mmi {

// Where the keys at position x or before end among bands [first, last) (first < last) of a band list
// whose bands ascend in position: the logical index past them (band first's start when there are
// none), and in `next_band` the band holding the next key (`last` when there is none). A piece's bands
// start at about equal distances (a phase's, one per segment; the blocks'), so the band x would fall in
// if they all did, and the one after it, are loaded together, with a bisection only when they do not
// settle it: on the GPU each load is a round trip to memory (launch_block_summary_runs).
template <typename Int, typename BandAt>
MMI_HD Int ordered_keys_end(BandAt band_at, Int first, Int last, Int x, Int& next_band) {
  const auto head = band_at(first);
  const auto tail = band_at(last - 1);
  if (Int(head.orig) > x) {
    next_band = first;
    return Int(head.logical);
  }
  const int64_t starts_span = int64_t(tail.orig) - int64_t(head.orig);  // first band's start to the last's
  Int guess = starts_span > 0 ? first + Int((int64_t(x) - int64_t(head.orig)) * int64_t(last - 1 - first) / starts_span)
                              : first;
  guess = guess < last - 1 ? guess : last - 1;
  const auto at = band_at(guess);
  const auto after = band_at(guess + 1 < last ? guess + 1 : guess);
  auto band = at;
  Int b = guess;
  if (!(Int(at.orig) <= x && (guess + 1 == last || Int(after.orig) > x))) {
    b = last_at_most<Int>([&](Int k) { return Int(band_at(k).orig); }, first, last - 1, x, guess);
    band = band_at(b);
  }
  const Int reach = (x - Int(band.orig)) / Int(band.step) + 1;
  next_band = reach < Int(band.count) ? b : b + 1;
  return Int(band.logical) + (reach < Int(band.count) ? reach : Int(band.count));
}

// The run of a tile of rows [row_min, row_max] over the piece of bands [first, last): logical key
// columns [begin, end), starting in band `band`; the keys before full_end are at most row_min, so kept by
// every row (up to causality the rule keeps every summary key, and every key of a row's own block);
// the blocks' other keys (`others`), which the tile visits from its first row's block on, are
// rule-tested when its rows lie in two blocks.
template <typename Int>
struct BlockSummaryRun {
  Int begin, end, full_end, band;
  bool rule_tested;
};
// Its fields are three independent searches; the CUDA executor finds every tile's at upload, a thread
// per tile and piece.
template <typename Int, typename BandAt>
MMI_HD BlockSummaryRun<Int> block_summary_run(BandAt band_at, Int first, Int last, bool others, Int block, Int row_min,
                                              Int row_max) {
  BlockSummaryRun<Int> run{0, 0, 0, first, others && row_min / block != row_max / block};
  if (first >= last) return run;
  Int unused;
  run.begin = others ? ordered_keys_end<Int>(band_at, first, last, row_min / block * block - 1, run.band)
                     : Int(band_at(first).logical);
  run.end = ordered_keys_end<Int>(band_at, first, last, row_max, unused);
  run.full_end = ordered_keys_end<Int>(band_at, first, last, row_min, unused);
  return run;
}

// The mask (ChunkMask) of the chunk of such a run that ends before logical column chunk_end.
template <typename Int>
MMI_HD int block_summary_chunk_mask(const BlockSummaryRun<Int>& run, Int chunk_end) {
  return run.rule_tested ? 2 : chunk_end <= run.full_end ? 0 : 1;
}

}  // namespace mmi
