// Keep bits of one query row over up to 64 consecutive keys in closed form, for the rules that have
// one: Vertical-Slash bitmaps, rules made of ranges, and rules of grid lines (whose bits are in
// kernels/grid_line_walk.h). The CUDA kernels evaluate rule-tested chunks with these (one word per
// row instead of one rule test per element); the CPU tests check them against rule_keeps_at.
// Torch-free, CUDA-includable.
#pragma once

#include <cstdint>

#include "kernels/mask_rule.h"

namespace mmi {

// A rule with only vertical and slash bitmaps (Vertical-Slash passes): vertical_slash_bits serves it.
inline bool is_vertical_slash_rule(const MaskRule& r) {
  const MaskRule none;
  return (r.vertical_words >= 0 || r.slash_words >= 0) && r.min_distance == none.min_distance &&
         r.min_col == none.min_col && !r.all && r.sink == none.sink && r.local == none.local &&
         r.dense_rows_before == none.dense_rows_before && r.dense_rows_from == none.dense_rows_from &&
         r.block == none.block && r.diagonal_period == none.diagonal_period && r.grid_stride == none.grid_stride;
}

// A rule made of ranges only (sinks, a local window, dense rows, distance and column limits):
// range_rule_bits serves it.
inline bool is_range_rule(const MaskRule& r) {
  const MaskRule none;
  return r.vertical_words < 0 && r.slash_words < 0 && r.block == none.block &&
         r.diagonal_period == none.diagonal_period && r.grid_stride == none.grid_stride;
}

// A rule of ranges plus a grid's vertical line and no other grid line (a compact range pass with
// Pass::lines): range_rule_bits with the chunk's line bits serves it.
inline bool is_range_and_line_rule(const MaskRule& r) {
  MaskRule ranges = r;
  ranges.grid_stride = 0;
  return is_range_rule(ranges) && (r.grid_stride == 0 || (!r.grid_hline && !r.grid_slash));
}

// A rule of grid lines only, with their distance and column limits (a grid head's phase-major line
// pass): grid_rule_bits serves it over chunks whose keys share one grid phase.
inline bool is_grid_lines_rule(const MaskRule& r) {
  MaskRule lines = r;
  lines.grid_stride = 0;
  lines.min_distance = 0;
  lines.min_col = 0;
  return r.grid_stride > 0 && is_range_rule(lines) && !lines.all && lines.sink == 0 && lines.local == 0 &&
         lines.dense_rows_before == 0 && lines.dense_rows_from == kNoLimit;
}

// The bits c of keys c0 + c (len of them, consecutive) on a grid's vertical line: (j - start of j's
// visual span) % stride == phase.
MMI_HD uint64_t grid_line_chunk_bits(const VisualSpans& spans, int64_t stride, int64_t phase, int64_t c0, int64_t len) {
  int64_t lo = 0, hi = spans.count;  // the first span ending after c0
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (spans.ends[mid] <= c0) lo = mid + 1; else hi = mid;
  }
  uint64_t bits = 0;
  for (int64_t k = lo; k < spans.count && spans.starts[k] < c0 + len; ++k) {
    int64_t j = spans.starts[k] + phase;  // the span's first key on the line
    if (j < c0) j += (c0 - j + stride - 1) / stride * stride;
    const int64_t stop = spans.ends[k] < c0 + len ? spans.ends[k] : c0 + len;
    for (; j < stop; j += stride) bits |= uint64_t(1) << (j - c0);
  }
  return bits;
}

// x with its 64 bits in reverse order.
MMI_HD uint64_t reverse_bits(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __brevll(x);
#else
  x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
  x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
  x = ((x >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((x & 0x0F0F0F0F0F0F0F0Full) << 4);
  x = ((x >> 8) & 0x00FF00FF00FF00FFull) | ((x & 0x00FF00FF00FF00FFull) << 8);
  x = ((x >> 16) & 0x0000FFFF0000FFFFull) | ((x & 0x0000FFFF0000FFFFull) << 16);
  return (x >> 32) | (x << 32);
#endif
}

// Bits [start, start + 64) of a bitmap as one word (bit t = bitmap bit start + t); bits below 0 read 0.
// Bitmaps carry one spare word at the end, so reading the word after the last is safe. Int: int32_t in
// the CUDA kernels (positions fit, and 64-bit index arithmetic costs twice the instructions), int64_t
// elsewhere.
template <typename Int>
MMI_HD uint64_t bit_window(const uint64_t* words, Int start) {
  if (start <= -64) return 0;
  const int shift = start < 0 ? static_cast<int>(-start) : 0;  // bits below 0
  const Int from = start < 0 ? 0 : start;
  const Int q = from >> 6;
  const int r = static_cast<int>(from & 63);
  const uint64_t window = r == 0 ? words[q] : (words[q] >> r) | (words[q + 1] << (64 - r));
  return window << shift;
}

// Keep bits of row i (-1: none) over `len` consecutive keys from c0 under a rule with only vertical and
// slash bitmaps, given the chunk's vertical keys (`verticals`, bit c = key c0 + c: a window of the
// vertical bitmap, the same for every row) and the slash bitmap over distances i - j (nullptr: none),
// whose reversed window gives the row's slash keys. Bit c is key c0 + c.
template <typename Int>
MMI_HD uint64_t vertical_slash_row_bits(const uint64_t* slashes, uint64_t verticals, Int i, Int c0, Int len) {
  const Int reach = i - c0;  // key c0 + c is causal iff c <= reach
  if (i < 0 || reach < 0) return 0;
  uint64_t bits = verticals;
  if (slashes != nullptr) bits |= reverse_bits(bit_window<Int>(slashes, reach - 63));
  if (reach < 63) bits &= (uint64_t(2) << reach) - 1;
  if (len < 64) bits &= (uint64_t(1) << len) - 1;
  return bits;
}

// Whether rows [r0, r1] keep no key of [c0, c_last] through a slash bitmap over distances i - j (at most
// 128 distances apart: two windows). A slash line crosses a tile of 128 rows in a band of 128 keys, so
// each of its chunks of 64 keys holds the kept keys of half the rows only.
template <typename Int>
MMI_HD bool slashes_miss(const uint64_t* slashes, Int r0, Int r1, Int c0, Int c_last) {
  const Int hi = r1 - c0;
  for (Int start = r0 - c_last > 0 ? r0 - c_last : Int(0); start <= hi; start += 64) {
    const Int n = hi - start + 1;
    const uint64_t window = bit_window<Int>(slashes, start);
    if (n >= 64 ? window != 0 : (window & ((uint64_t(1) << n) - 1)) != 0) return false;
  }
  return true;
}

// The keys from c0 on the vertical bitmap of a Vertical-Slash rule (0 without one).
template <typename Int>
MMI_HD uint64_t vertical_window(const uint64_t* words, const MaskRule& rule, Int c0) {
  return rule.vertical_words >= 0 ? bit_window<Int>(words + rule.vertical_words, c0) : 0;
}

// The halves of a tile, rows [row_min, row_max] (bit h: rows row_min + h * half onwards, half of them),
// that keep none of a chunk's keys [c0, c_last] under a Vertical-Slash rule with a slash bitmap: those
// past the rows, or that the slashes miss (slashes_miss), unless the chunk's 64-key window holds a
// vertical, which every row keeps. The wgmma kernel skips such halves' work (find_idle_warpgroups), and
// the plan statistics leave them out (tile_idle_halves).
template <typename Int>
MMI_HD int idle_halves(const uint64_t* words, const MaskRule& rule, Int row_min, Int row_max, Int half, Int c0,
                       Int c_last) {
  if (vertical_window<Int>(words, rule, c0) != 0) return 0;
  int idle = 0;
  for (int h = 0; h < 2; ++h) {
    const Int r0 = row_min + half * h, r1 = r0 + half - 1 < row_max ? r0 + half - 1 : row_max;
    if (r0 > row_max || slashes_miss<Int>(words + rule.slash_words, r0, r1, c0, c_last)) idle |= 1 << h;
  }
  return idle;
}

// The Vertical-Slash rule's slash bitmap, or nullptr.
MMI_HD const uint64_t* slash_bitmap(const uint64_t* words, const MaskRule& rule) {
  return rule.slash_words >= 0 ? words + rule.slash_words : nullptr;
}

// Keep bits of row i (-1: none) over `len` consecutive keys from c0 under a rule with only vertical and
// slash bitmaps, 64 elements at a time. Bit c is key c0 + c.
MMI_HD uint64_t vertical_slash_bits(const uint64_t* words, const MaskRule& rule, int32_t i, int32_t c0,
                                   int32_t len) {
  return vertical_slash_row_bits<int32_t>(slash_bitmap(words, rule), vertical_window<int32_t>(words, rule, c0), i,
                                          c0, len);
}

// Bits c < n (n clamped to [0, 64]).
MMI_HD uint64_t low_bits(int64_t n) {
  return n <= 0 ? 0 : n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
}

// Keep bits of row i (-1: none) over `len` consecutive keys from c0 under a rule made of ranges (sinks,
// a local window, dense rows, distance and column limits) and at most a grid's vertical line (rule kind
// 2). `line`: the chunk's keys of the line's phase (grid_line_chunk_bits; 0 without a line). Bit c is
// key c0 + c.
MMI_HD uint64_t range_rule_bits(const MaskRule& r, int32_t i, int32_t c0, int32_t len, uint64_t line = 0) {
  if (i < 0) return 0;
  const int64_t last = int64_t(i) - r.min_distance - c0;  // the last kept c: j <= i - min_distance
  const uint64_t allowed = low_bits(last + 1 < len ? last + 1 : len) & ~low_bits(r.min_col - c0);
  uint64_t kept = line | low_bits(r.sink - c0);                         // the line, j < sink
  if (r.local > 0) kept |= ~low_bits(int64_t(i) - r.local + 1 - c0);  // i - j < local
  if (r.all || i < r.dense_rows_before || i >= r.dense_rows_from) kept = ~uint64_t(0);
  return kept & allowed;
}

}  // namespace mmi
