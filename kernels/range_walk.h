// How a compact range pass (a rule made of ranges only — sinks, a local window, dense rows, distance and
// column limits — over one consecutive row range and one consecutive column range) expands into the work
// of one query tile. The host plan walker and the CUDA kernels both call these functions, so they visit
// exactly the same chunks with the same masks. Torch-free, CUDA-includable.
//
// A tile with rows [row_min, row_max] needs at most two key runs: a prefix from the first key (the sinks,
// and every key up to its last dense row) and its local window [row_min - local + 1, row_max -
// min_distance]. Together they are exactly the keys some row of the tile keeps, which is what the
// explicit plan builder lists for such a tile.
#pragma once

#include <cstdint>

#include "kernels/mask_rule.h"

namespace mmi {

// The tile's key runs, as inclusive original positions [begin[k], end[k]], ascending and disjoint.
// Keys are limited to [key_min, key_max]. Returns how many runs there are (0, 1 or 2).
template <typename Int>
MMI_HD int range_tile_runs(const MaskRule& r, Int row_min, Int row_max, Int key_min, Int key_max, Int (&begin)[2],
                           Int (&end)[2]) {
  const Int first = key_min > r.min_col ? key_min : Int(r.min_col);
  const Int limit = row_max - Int(r.min_distance);  // the last key any row of the tile may keep
  const Int last = limit < key_max ? limit : key_max;
  if (first > last) return 0;
  Int prefix_end = first - 1;  // the prefix run [first, prefix_end]; empty while below first
  if (r.all || row_max >= r.dense_rows_from) {
    prefix_end = last;
  } else if (row_min < r.dense_rows_before) {
    const Int dense_row = row_max < r.dense_rows_before ? row_max : Int(r.dense_rows_before - 1);
    prefix_end = dense_row - Int(r.min_distance) < last ? dense_row - Int(r.min_distance) : last;
  }
  if (r.sink > 0) {
    const Int sink_end = Int(r.sink - 1) < last ? Int(r.sink - 1) : last;
    if (sink_end > prefix_end) prefix_end = sink_end;
  }
  Int local_begin = last + 1;  // the local run [local_begin, last]; empty while above last
  if (r.local > r.min_distance) {
    const Int reach = row_min - Int(r.local) + 1;
    local_begin = reach > first ? reach : first;
  }
  int count = 0;
  if (prefix_end >= first && local_begin <= prefix_end + 1) {  // one run: the window continues the prefix
    begin[0] = first;
    end[0] = local_begin <= last ? last : prefix_end;
    return 1;
  }
  if (prefix_end >= first) {
    begin[count] = first;
    end[count++] = prefix_end;
  }
  if (local_begin <= last) {
    begin[count] = local_begin;
    end[count++] = last;
  }
  return count;
}

// The keys [lo, hi] of the tile's reach that its runs leave out (at most one gap: between the prefix
// and the local window, or before or after the one run); returns false when there is none. A grid
// head's vertical line (Pass::lines) is visited there: below the window, so every row keeps those keys.
template <typename Int>
MMI_HD bool range_line_gap(const MaskRule& r, Int row_min, Int row_max, Int key_min, Int key_max, Int& lo, Int& hi) {
  Int begin[2], end[2];
  const int count = range_tile_runs<Int>(r, row_min, row_max, key_min, key_max, begin, end);
  const Int limit = row_max - Int(r.min_distance);
  lo = key_min > r.min_col ? key_min : Int(r.min_col);
  hi = limit < key_max ? limit : key_max;
  if (count == 2) {
    lo = end[0] + 1;
    hi = begin[1] - 1;
  } else if (count == 1 && begin[0] > lo) {
    hi = begin[0] - 1;
  } else if (count == 1) {
    lo = end[0] + 1;
  }
  return lo <= hi;
}

// How an executor treats the chunk of keys [col_min, col_max] of such a tile (the ChunkMask values:
// 0 every element kept, 1 distance test only, 2 rule test): fully kept when one component keeps all of
// it, the same classification the explicit plan builder makes.
template <typename Int>
MMI_HD int range_chunk_mask(const MaskRule& r, Int row_min, Int row_max, Int col_min, Int col_max) {
  const bool keeps_all = r.all || col_max < r.sink || row_max - col_min < r.local ||
                         row_max < r.dense_rows_before || row_min >= r.dense_rows_from;
  if (!keeps_all || col_min < r.min_col) return 2;
  return col_max <= row_min - r.min_distance ? 0 : 1;
}

}  // namespace mmi
