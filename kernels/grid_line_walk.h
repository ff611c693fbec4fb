// How a compact grid line pass expands into the work of one query tile. Its rows and key columns are in
// phase-major order, so the keys of one grid phase — a line — are one consecutive section of columns
// (the bands of that phase, one per visual span, ascending), and a tile needs one run per section it
// visits: the section's keys up to the highest row that keeps them minus the minimum distance
// (GridTileSections). The host plan walker and the CUDA kernels both call these functions, so they visit
// exactly the same chunks with the same masks. The closed-form keep bits of grid line rules
// (grid_line_bits, grid_rule_bits) live here too. Torch-free, CUDA-includable.
#pragma once

#include <cstdint>

#include "kernels/mask_rule.h"
#include "kernels/rule_bits.h"

namespace mmi {

// The last k in [lo, hi] with key(k) <= x, for key ascending and key(lo) <= x, looked up first at
// `guess`: tables of equal steps (phases of a grid, blocks, their bands) take two loads instead of a
// bisection's dependent chain, which the kernels pay at every tile's start.
template <typename Int, typename Key>
MMI_HD Int last_at_most(Key key, Int lo, Int hi, Int x, Int guess) {
  guess = guess < lo ? lo : guess > hi ? hi : guess;
  if (key(guess) <= x) {
    if (guess == hi || key(guess + 1) > x) return guess;
    lo = guess + 1;
  } else {
    hi = guess - 1;
  }
  while (lo < hi) {
    const Int mid = (lo + hi + 1) / 2;
    if (key(mid) <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Index of the band holding logical index x, among bands [0, count) ascending in `logical`;
// band_at(b) returns band b (any type with logical, orig, step, count).
template <typename Int, typename BandAt>
MMI_HD Int band_holding(BandAt band_at, Int count, Int x) {
  Int lo = 0, hi = count - 1;
  while (lo < hi) {
    const Int mid = (lo + hi + 1) / 2;
    if (band_at(mid).logical <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The same, looked up first where x would be if the bands were equally long (the bands of a grid line
// pass's phases or blocks are; band_orig, per row of every pass, keeps the plain bisection, whose code
// the kernels' main loop holds fewer registers around).
template <typename Int, typename BandAt>
MMI_HD Int band_holding_guessed(BandAt band_at, Int count, Int x) {
  if (count <= 1) return 0;
  const auto tail = band_at(count - 1);
  const int64_t size = int64_t(tail.logical) + int64_t(tail.count);
  const Int guess = size > 0 ? Int(int64_t(x) * int64_t(count) / size) : Int(0);
  return last_at_most<Int>([&](Int b) { return Int(band_at(b).logical); }, Int(0), count - 1, x, guess);
}

// The smallest and largest original position of logical indices [first, last] of a band list, from
// band b_first (the band holding first) on.
template <typename Int, typename BandAt>
MMI_HD void band_extent_from(BandAt band_at, Int count, Int b_first, Int first, Int last, Int& lowest,
                             Int& highest) {
  bool any = false;
  for (Int b = b_first; b < count; ++b) {
    const auto band = band_at(b);
    if (band.logical > last) break;
    const Int lo = first > Int(band.logical) ? first : Int(band.logical);
    const Int hi = last < Int(band.logical + band.count - 1) ? last : Int(band.logical + band.count - 1);
    const Int a = Int(band.orig) + Int(band.step) * (lo - Int(band.logical));
    const Int z = Int(band.orig) + Int(band.step) * (hi - Int(band.logical));
    const Int low = a < z ? a : z, high = a < z ? z : a;
    if (!any || low < lowest) lowest = low;
    if (!any || high > highest) highest = high;
    any = true;
  }
}
template <typename Int, typename BandAt>
MMI_HD void band_extent(BandAt band_at, Int count, Int first, Int last, Int& lowest, Int& highest) {
  band_extent_from(band_at, count, band_holding(band_at, count, first), first, last, lowest, highest);
}

// How many keys of the line's section (bands [first, last), each ascending, one after another in
// original order) are at most `limit`: the length of the tile's run from the section's start.
template <typename Int, typename BandAt>
MMI_HD Int grid_line_keys(BandAt band_at, Int first, Int last, Int limit) {
  Int keys = 0;
  for (Int b = first; b < last; ++b) {
    const auto band = band_at(b);
    if (Int(band.orig) > limit) break;
    const Int reach = (limit - Int(band.orig)) / Int(band.step) + 1;
    keys += reach < Int(band.count) ? reach : Int(band.count);
    if (reach < Int(band.count)) break;
  }
  return keys;
}

// The lines a compact grid line pass walks (its phases, and how many there are, come from its tables):
// a grid head's (phases relative to each visual span's start), or SF-strided's diagonals, slash lines
// of its period (phases relative to position 0).
struct GridLines {
  int64_t phase;  // of the vertical or horizontal line
  bool vline, hline, slash;
};
MMI_HD GridLines grid_lines_of(const MaskRule& r) {
  if (r.grid_stride > 0) return {r.grid_phase, r.grid_vline, r.grid_hline, r.grid_slash};
  return {0, false, false, true};
}

// The sections of a compact grid line pass (PassForm::kGridLine) that one of its query tiles visits
// (its lines: grid_lines_of; `phases` of them, the size of its tables less one). The pass's rows and keys
// are phase-major: the rows of phase q are logical rows [row_start(q), row_start(q + 1)) for q < phases,
// followed by text rows (which only a vertical line reaches); the keys of phase q are column bands
// [col_band(q), col_band(q + 1)), followed from col_band(phases) by the bands of text keys (which only a
// horizontal line reaches). Section q < phases holds the keys of phase q, section `phases` the text keys. A tile visits the vertical line's section; with slash lines, the
// section of every phase its rows have; with a horizontal line, every section once it has rows of the
// line's phase. In each, it visits the keys up to the highest row that keeps them, less the minimum
// distance (limit), so every key it visits is kept by some row. row_start(q) is any callable.
template <typename Int>
struct GridTileSections {
  Int phases;                    // the pass's
  Int first, last;               // the tile's logical rows
  Int first_phase, last_phase;   // the grid phases of its rows (none when first_phase > last_phase)
  bool text_rows;                // whether it has text rows
  bool every_section;            // whether a horizontal line reaches every key for some row

  GridTileSections() = default;  // trivial, so that it can live in CUDA shared memory
  template <typename RowStart>
  MMI_HD GridTileSections(const MaskRule& r, Int phases_, RowStart row_start, Int first_, Int last_)
      : phases(phases_), first(first_), last(last_), first_phase(0), last_phase(-1) {
    const GridLines lines = grid_lines_of(r);
    const Int visual_rows = row_start(phases);
    text_rows = last >= visual_rows;
    if (first < visual_rows) {
      first_phase = phase_of(row_start, first);
      last_phase = phase_of(row_start, last < visual_rows ? last : visual_rows - 1);
    }
    every_section = lines.hline && has_phase(row_start, Int(lines.phase));
  }

  // Whether the tile has rows of phase q.
  template <typename RowStart>
  MMI_HD bool has_phase(RowStart row_start, Int q) const {
    return q >= first_phase && q <= last_phase && row_start(q) < row_start(q + 1);
  }
  // Every row of the tile keeps every key of section q (up to the distance and column limits).
  MMI_HD bool keeps_all(const MaskRule& r, Int q) const {
    const bool one_phase = first_phase == last_phase && !text_rows;
    const GridLines lines = grid_lines_of(r);
    return (lines.vline && q == Int(lines.phase)) || (one_phase && (every_section || (lines.slash && q == first_phase)));
  }
  // The first section after q that the tile visits; phases + 1 when none is left (q = -1: the first).
  template <typename RowStart>
  MMI_HD Int next(const MaskRule& r, RowStart row_start, Int q) const {
    if (every_section) return q + 1;
    const GridLines lines = grid_lines_of(r);
    Int next = phases + 1;
    if (lines.vline && Int(lines.phase) > q) next = Int(lines.phase);
    if (lines.slash) {
      for (Int x = q + 1 > first_phase ? q + 1 : first_phase; x <= last_phase && x < next; ++x) {
        if (row_start(x) < row_start(x + 1)) return x;
      }
    }
    return next;
  }
  // The last key position section q's run reaches: the highest row that keeps the section (row_max
  // when every row does), less the minimum distance. row_band_at(b) returns row band b of count.
  template <typename RowStart, typename RowBandAt>
  MMI_HD Int limit(const MaskRule& r, RowStart row_start, RowBandAt row_band_at, Int row_bands, Int row_max,
                   Int q) const {
    Int highest = row_max;
    if (!keeps_all(r, q)) {
      highest = -1;
      const GridLines lines = grid_lines_of(r);
      if (every_section) highest = highest_of_phase(row_start, row_band_at, row_bands, Int(lines.phase));
      if (lines.slash && q < phases && has_phase(row_start, q)) {
        const Int h = highest_of_phase(row_start, row_band_at, row_bands, q);
        if (h > highest) highest = h;
      }
      if (highest < 0) return -1;
    }
    return highest - Int(r.min_distance);
  }

 private:
  // The phase of visual logical row x: the last q whose rows start at or before x.
  template <typename RowStart>
  MMI_HD Int phase_of(RowStart row_start, Int x) const {
    const int64_t rows = int64_t(row_start(phases));  // > x
    return last_at_most<Int>(row_start, Int(0), phases - 1, x, Int(int64_t(x) * int64_t(phases) / rows));
  }
  // The highest original position among the tile's rows of phase q.
  template <typename RowStart, typename RowBandAt>
  MMI_HD Int highest_of_phase(RowStart row_start, RowBandAt row_band_at, Int row_bands, Int q) const {
    const Int a = first > row_start(q) ? first : row_start(q);
    const Int z = last < row_start(q + 1) - 1 ? last : row_start(q + 1) - 1;
    Int lowest = 0, highest = -1;
    band_extent<Int>(row_band_at, row_bands, a, z, lowest, highest);
    return highest;
  }
};

// How an executor treats a chunk of the line's keys [col_min, col_max] (the ChunkMask values: 0 every
// element kept, 1 distance test only, 2 rule test) for a tile whose rows start at row_min: the line keeps
// every element of a chunk inside one band (every band of the section has the line's phase), and the
// minimum distance decides the rest — the classification the explicit plan builder makes.
template <typename Int>
MMI_HD int grid_line_chunk_mask(const MaskRule& r, bool one_band, Int row_min, Int col_min, Int col_max) {
  if (!one_band || col_min < r.min_col) return 2;
  return col_max <= row_min - r.min_distance ? 0 : 1;
}

// Keep bits of row i (-1: none) over a chunk of the line's keys inside one band: c0, c0 + step, ...
// (len of them). The line keeps every key of its bands, so the pass's constraints decide: bit c is set
// when key c0 + c * step is at most i - min_distance and at least min_col (the closed form the kernels
// use for the chunks grid_line_chunk_mask rule-tests).
template <typename Int>
MMI_HD uint64_t grid_line_bits(const MaskRule& r, Int i, Int c0, Int step, Int len) {
  if (i < 0 || int64_t(i) - r.min_distance < c0) return 0;
  // In Int: the kernels' positions fit 32 bits, and a 64-bit division would cost them a subroutine.
  const Int reach = Int(int64_t(i) - r.min_distance) - c0;  // key c0 + c * step is kept iff c * step <= reach
  const Int kept = reach / step + 1;
  const Int below = r.min_col > c0 ? (Int(r.min_col) - c0 + step - 1) / step : Int(0);  // keys under min_col
  return low_bits(kept < len ? kept : len) & ~low_bits(below);
}

// The grid phase every key c_first, c_first + step, ..., c_last of a chunk shares: -1 when none of
// them is visual, kMixedPhases when they differ (or some are visual and some not).
constexpr int64_t kMixedPhases = -2;
template <typename Int>
MMI_HD Int chunk_key_phase(const VisualSpans& spans, int64_t stride, Int c_first, Int c_last, Int step) {
  int64_t lo = 0, hi = spans.count;  // the first span ending after c_first
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (spans.ends[mid] <= c_first) lo = mid + 1; else hi = mid;
  }
  if (lo == spans.count || spans.starts[lo] > c_last) return -1;  // no visual key
  if (spans.starts[lo] > c_first || spans.ends[lo] <= c_last || step % stride != 0) return Int(kMixedPhases);
  return Int((c_first - spans.starts[lo]) % stride);
}

// Keep bits of row i (-1: none; row_phase its grid phase) under a rule of grid lines only
// (is_grid_lines_rule) over a chunk of keys c0, c0 + step, ... (len of them) that share the grid phase
// key_phase (chunk_key_phase, not kMixedPhases): each element is kept by the lines or by none, and the
// distance and column limits pick the prefix grid_line_bits gives.
template <typename Int>
MMI_HD uint64_t grid_rule_bits(const MaskRule& r, Int i, Int row_phase, Int key_phase, Int c0, Int step, Int len) {
  const Int phase = Int(r.grid_phase);
  const bool kept = (r.grid_vline && key_phase == phase) || (r.grid_hline && row_phase == phase) ||
                    (r.grid_slash && row_phase >= 0 && row_phase == key_phase);
  return kept ? grid_line_bits<Int>(r, i, c0, step, len) : 0;
}

}  // namespace mmi
