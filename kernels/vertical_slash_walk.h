// How a compact Vertical-Slash pass (one consecutive row range, one consecutive column range) expands
// into the work of one query tile. The host plan walker and the CUDA kernel both call these functions,
// so they visit exactly the same chunks. Torch-free, CUDA-includable.
//
// A tile with rows [row_min, row_max] first walks key runs: slash group [lo, hi] (consecutive kept
// distances) reaches keys [row_min - hi, row_max - lo]; the union of these intervals, as maximal runs in
// descending order, is exactly what the explicit plan builder would list for the tile. Then it gathers
// the verticals up to row_max in chunks of block_n list entries; a vertical some run already covers
// stays in its chunk position but is skipped, so no element is counted twice.
#pragma once

#include <cstdint>

#include "kernels/mask_rule.h"

namespace mmi {

// True when `words` has a bit set in [lo, hi] (inclusive, 0 <= lo).
MMI_HD bool any_bit_in(const uint64_t* words, int64_t lo, int64_t hi) {
  for (int64_t w = lo >> 6; w <= hi >> 6; ++w) {
    uint64_t bits = words[w];
    if (w == lo >> 6) bits &= ~uint64_t(0) << (lo & 63);
    if (w == hi >> 6 && (hi & 63) != 63) bits &= (uint64_t(2) << (hi & 63)) - 1;
    if (bits) return true;
  }
  return false;
}

// A vertical at key j is covered by the tile's runs when some kept distance lies in
// [row_min - j, row_max - j] (j <= row_max).
MMI_HD bool vertical_covered(const uint64_t* slash_words, int64_t row_min, int64_t row_max, int64_t j) {
  return any_bit_in(slash_words, row_min - j > 0 ? row_min - j : 0, row_max - j);
}

// The tile's key runs, one maximal run per next() call, in descending order. Groups are read through
// `group_at(g)` (an object with .lo and .hi), ascending in distance; as distances ascend the intervals
// descend, so everything at or above `frontier` is covered already and each group is read at most twice.
template <typename Int>
struct SlashRunWalk {
  Int row_min, row_max;  // the tile's rows (original positions)
  Int key_min, key_max;  // the pass's key columns, key_max <= row_max
  Int group, group_end;  // groups still to walk
  Int frontier;          // the lowest key covered so far

  SlashRunWalk() = default;
  MMI_HD SlashRunWalk(Int row_min_, Int row_max_, Int key_min_, Int key_max_, Int group_begin, Int group_end_)
      : row_min(row_min_), row_max(row_max_), key_min(key_min_), key_max(key_max_), group(group_begin),
        group_end(group_end_), frontier(key_max_ + 1) {}

  // The next run [begin, end] (inclusive original positions); false when there is none.
  template <typename GroupAt>
  MMI_HD bool next(GroupAt group_at, Int& begin, Int& end) {
    bool found = false;
    for (; group < group_end; ++group) {
      const auto g = group_at(group);
      if (row_max - Int(g.lo) < key_min) {  // this group and every later one end before the first key
        group = group_end;
        break;
      }
      const Int a = row_min - Int(g.hi) > key_min ? row_min - Int(g.hi) : key_min;
      const Int b = row_max - Int(g.lo) < frontier - 1 ? row_max - Int(g.lo) : frontier - 1;
      if (a > b) continue;                 // inside what earlier groups covered
      if (found && b < begin - 1) break;   // a gap: this run is complete, the group starts the next
      if (!found) end = b;
      found = true;
      begin = a;
      frontier = a;
    }
    return found;
  }
};

}  // namespace mmi
