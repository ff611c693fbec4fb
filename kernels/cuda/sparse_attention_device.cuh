// Device code both sparse-attention kernels share (sparse_attention.cu: mma.sync for every head
// dimension; sparse_attention_sm90.cu: wgmma for d = 128): the chunk cursor that walks a tile's runs and
// gathered columns, rule evaluation into keep bits, and the log-sum-exp merge into the output.
// Included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/sparse_attention.cuh"
#include "kernels/cuda/tma.cuh"
#include "kernels/block_summary_walk.h"
#include "kernels/grid_line_walk.h"
#include "kernels/range_walk.h"
#include "kernels/rule_bits.h"
#include "kernels/vertical_slash_walk.h"

namespace mmi::cuda::detail {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Original position of logical index `x` in a band list (bands ascend in `logical`).
__device__ __forceinline__ int32_t band_orig(const DeviceBand* bands, int32_t count, int32_t x) {
  const DeviceBand b = bands[band_holding<int32_t>([&](int32_t i) { return bands[i]; }, count, x)];
  return b.orig + b.step * (x - b.logical);
}

static_assert(kBlockN == 64, "one 64-bit word of keep bits per row (kernels/rule_bits.h)");

// Whether a rule-tested chunk's keep bits have a closed form: consecutive keys under a rule of vertical
// and slash bitmaps (rule kind 1) or of ranges (2), or keys of one band and one grid phase under a rule
// of grid lines (3). `step`, `line`: TileMeta::step and TileMeta::line of the chunk (for rule kind 3,
// line is the keys' phase + 2, 0 when they differ).
__device__ __forceinline__ bool closed_form_rule(int rule_kind, int32_t step, uint64_t line) {
  return (step == 1 && (rule_kind == 1 || rule_kind == 2)) || (rule_kind == 3 && step > 0 && line != 0);
}

// Keep bits of row i (grid phase row_phase) over such a chunk (kernels/rule_bits.h,
// kernels/grid_line_walk.h).
__device__ __forceinline__ uint64_t closed_form_bits(const uint64_t* words, const MaskRule& rule, int rule_kind,
                                                     int32_t i, int32_t row_phase, int32_t c0, int32_t step,
                                                     int32_t len, uint64_t line) {
  if (rule_kind == 3) {
    return grid_rule_bits<int32_t>(rule, i, row_phase, static_cast<int32_t>(line) - 2, c0, step, len);
  }
  return rule_kind == 1 ? vertical_slash_row_bits<int32_t>(slash_bitmap(words, rule), line, i, c0, len)
                        : range_rule_bits(rule, i, c0, len, line);
}

// A block summary pass's runs for one tile, one per piece of its columns (block_summary_run; empty where
// it visits none), copied at the tile's start from those found at upload (launch_block_summary_runs).
struct BlockSummaryRuns {
  int32_t count;  // the pass's pieces
  BlockSummaryRun<int32_t> runs[kMaxBlockSummaryPieces];
};

// Walks a tile's chunks in order: runs first (in chunks of kBlockN logical keys), then gathered columns.
// The cursor holds the current run and the band holding the chunk start, so a chunk inside one band
// costs no global loads to locate. Compact passes derive their runs instead of reading them: a
// Vertical-Slash pass from the slash walk (its columns are the pass's vertical list), a range pass from
// its rule (at most two runs, no columns), a grid line pass from its grid sections, a block summary
// pass from the pieces of its columns (a run each, no columns).
struct ChunkCursor {
  int32_t run, run_end, pos, column, column_end;
  DeviceRun current;
  int32_t band_index;
  DeviceBand band;
  int32_t form, rule_kind, kv_head;  // the pass's
  SlashRunWalk<int32_t> walk;  // compact passes: the tile's row range; Vertical-Slash: yields its runs
  int32_t next_begin, next_end;  // compact range passes: the second run (logical keys), if there are two
  int32_t line_run, line_begin, line_end;  // compact range passes: the line's run index (-1: none) and keys
  bool on_line;                  // the current run is a range pass's line
  int32_t section;               // compact grid line passes: the current run's (TileMeta::sections);
                                 // block summary passes: its piece

  __device__ void enter_run(const SparseAttentionParams& p) {
    current = p.runs[run];
    pos = current.begin;
    band_index = current.band;
    band = p.bands[band_index];
  }
  __device__ void next_compact_run(const SparseAttentionParams& p) {
    int32_t begin, end;
    if (walk.next([&](int32_t g) { return p.slash_groups[g]; }, begin, end)) {
      current = DeviceRun{begin - band.orig, end + 1 - band.orig, 2, band_index};
      pos = current.begin;
    } else {
      run = run_end;
    }
  }
  // A compact range pass's runs: the first becomes current, the second waits in next_begin/next_end,
  // and a grid head's line (bands [line_band_begin, line_band_end)) adds its keys in the runs' gap,
  // logical [line_begin, line_end) of those bands, as the last run.
  __device__ void start_range_runs(const SparseAttentionParams& p, const DevicePass& pass) {
    int32_t begin[2] = {0, 0}, end[2] = {-1, -1};
    const int32_t key_min = band.orig, key_max = band.orig + band.count - 1;
    run = 0;
    run_end = range_tile_runs<int32_t>(pass.rule, walk.row_min, walk.row_max, key_min, key_max, begin, end);
    current = DeviceRun{begin[0] - band.orig, end[0] + 1 - band.orig, 2, band_index};
    pos = current.begin;
    next_begin = begin[1] - band.orig;
    next_end = end[1] + 1 - band.orig;
    column = column_end = 0;
    line_run = -1;
    int32_t lo = 0, hi = -1;
    if (pass.line_band_end > pass.line_band_begin &&
        range_line_gap<int32_t>(pass.rule, walk.row_min, walk.row_max, key_min, key_max, lo, hi)) {
      auto band_at = [&](int32_t b) { return p.bands[b]; };
      line_begin = grid_line_keys<int32_t>(band_at, pass.line_band_begin, pass.line_band_end, lo - 1);
      line_end = grid_line_keys<int32_t>(band_at, pass.line_band_begin, pass.line_band_end, hi);
      if (line_end > line_begin) line_run = run_end++;
      if (line_run == 0) enter_line(p, pass);
    }
  }
  __device__ void enter_line(const SparseAttentionParams& p, const DevicePass& pass) {
    band_index = pass.line_band_begin;
    band = p.bands[band_index];
    current = DeviceRun{line_begin, line_end, 0, band_index};
    pos = line_begin;
    while (pos >= band.logical + band.count) band = p.bands[++band_index];
    on_line = true;
  }
  // A compact grid line pass's runs, one per grid section the tile visits, from the start of the
  // section's bands up to its limit; the walk holds the tile's row extent for the chunk masks, and a run's
  // mask is 2 where not every row keeps its section (every chunk rule-tested), else 1 (classified).
  __device__ void start_grid_line(const SparseAttentionParams& p, const DeviceTile& t, const DevicePass& pass,
                                  GridTileSections<int32_t>& sections) {
    int32_t lowest = 0, highest = -1;
    const int32_t first = t.tile * kBlockM, last = min(pass.num_rows, first + kBlockM) - 1;
    auto row_band = [&](int32_t b) { return p.bands[pass.row_bands + b]; };
    band_extent_from<int32_t>(row_band, pass.num_row_bands, band_holding_guessed(row_band, pass.num_row_bands, first),
                              first, last, lowest, highest);
    walk = SlashRunWalk<int32_t>(lowest, highest, 0, -1, 0, 0);
    const int32_t* row_start = p.phase_tables + pass.phase_table;
    sections = GridTileSections<int32_t>(pass.rule, pass.phases, [&](int32_t q) { return row_start[q]; }, first, last);
    section = -1;
    run = 0;
    run_end = 1;
    column = column_end = 0;
    next_grid_section(p, pass, sections);
  }
  __device__ void next_grid_section(const SparseAttentionParams& p, const DevicePass& pass,
                                    const GridTileSections<int32_t>& sections) {
    const int32_t phases = pass.phases;
    const int32_t* row_start = p.phase_tables + pass.phase_table;
    const int32_t* col_band = row_start + phases + 1;
    auto row_start_at = [&](int32_t q) { return row_start[q]; };
    for (section = sections.next(pass.rule, row_start_at, section); section <= phases;
         section = sections.next(pass.rule, row_start_at, section)) {
      const int32_t first = col_band[section];
      const int32_t last = section < phases ? col_band[section + 1] : pass.col_bands + pass.num_col_bands;
      if (first >= last) continue;
      const int32_t limit = sections.limit(pass.rule, row_start_at, [&](int32_t b) { return p.bands[pass.row_bands + b]; },
                                           pass.num_row_bands, walk.row_max, section);
      const int32_t keys = grid_line_keys<int32_t>([&](int32_t b) { return p.bands[b]; }, first, last, limit);
      if (keys == 0) continue;
      band_index = first;
      band = p.bands[first];
      current = DeviceRun{band.logical, band.logical + keys, sections.keeps_all(pass.rule, section) ? 1 : 2, first};
      pos = current.begin;
      return;
    }
    run = run_end;
  }
  // The grid phase of the current run's keys (-1: text keys).
  // A block summary pass's runs, from those its tile's start found (BlockSummaryRuns); `section` is the
  // current one's piece.
  __device__ void start_block_summary(const SparseAttentionParams& p, const BlockSummaryRuns& pieces) {
    section = -1;
    run = 0;
    run_end = 1;
    column = column_end = 0;
    next_piece(p, pieces);
  }
  __device__ void next_piece(const SparseAttentionParams& p, const BlockSummaryRuns& pieces) {
    while (++section < pieces.count) {
      const BlockSummaryRun<int32_t>& r = pieces.runs[section];
      if (r.begin >= r.end) continue;
      current = DeviceRun{r.begin, r.end, 1, r.band};
      pos = r.begin;
      band_index = r.band;
      band = p.bands[band_index];
      return;
    }
    run = run_end;
  }
  __device__ int32_t section_phase(const DevicePass& pass) const {
    return section < static_cast<int32_t>(pass.rule.grid_stride) ? section : -1;
  }
  // `sections`, `pieces`: where a grid line or block summary pass's tile keeps its sections or runs
  // (TileMeta::sections, TileMeta::pieces).
  __device__ void start(const SparseAttentionParams& p, const DeviceTile& t, const DevicePass& pass,
                        GridTileSections<int32_t>& sections, BlockSummaryRuns& pieces) {
    form = pass.form;
    rule_kind = pass.rule_kind;
    kv_head = pass.kv_head;
    on_line = false;
    if (form == 0) {
      run = t.run_begin;
      run_end = t.run_end;
      column = t.column_begin;
      column_end = t.column_end;
      if (run < run_end) enter_run(p);
      return;
    }
    if (form == 3) return start_grid_line(p, t, pass, sections);
    if (form == 4) return start_block_summary(p, pieces);
    const DeviceBand rows = p.bands[pass.row_bands];
    band_index = pass.col_bands;
    band = p.bands[band_index];
    const int32_t row_min = rows.orig + t.tile * kBlockM;
    const int32_t row_max = rows.orig + min(rows.count, (t.tile + 1) * kBlockM) - 1;
    const int32_t key_max = min(row_max, band.orig + band.count - 1);
    walk = SlashRunWalk<int32_t>(row_min, row_max, band.orig, key_max, pass.slash_group_begin, pass.slash_group_end);
    if (form == 2) return start_range_runs(p, pass);
    run = 0;
    run_end = 1;
    next_compact_run(p);
    int32_t lo = pass.vertical_begin, hi = pass.vertical_end;  // first vertical after key_max
    while (lo < hi) {
      const int32_t mid = (lo + hi) / 2;
      if (p.verticals[mid] <= key_max) lo = mid + 1; else hi = mid;
    }
    column = pass.vertical_begin;
    column_end = lo;
  }
  __device__ bool done() const { return run >= run_end && column >= column_end; }

  // Original position of logical column x (x at or after the chunk start).
  __device__ int32_t col_at(const SparseAttentionParams& p, int32_t x) const {
    DeviceBand b = band;
    for (int32_t k = band_index; x >= b.logical + b.count;) b = p.bands[++k];
    return b.orig + b.step * (x - b.logical);
  }

  // Moves past the chunk of up to kBlockN keys the cursor points at.
  __device__ void advance(const SparseAttentionParams& p, const DevicePass& pass,
                          const GridTileSections<int32_t>& sections, const BlockSummaryRuns& pieces) {
    if (run >= run_end) {
      column += kBlockN;
      return;
    }
    pos += kBlockN;
    if (pos < current.end) {
      while (pos >= band.logical + band.count) band = p.bands[++band_index];
    } else if (form == 1) {
      next_compact_run(p);
    } else if (form == 3) {
      next_grid_section(p, pass, sections);
    } else if (form == 4) {
      next_piece(p, pieces);
    } else if (++run >= run_end) {
      return;
    } else if (form == 2 && run == line_run) {
      enter_line(p, pass);
    } else if (form == 2) {
      current.begin = pos = next_begin;
      current.end = next_end;
    } else {
      enter_run(p);
    }
  }
};

// What a CTA's threads share about its tile besides the Q, K and V tiles: rows, the chunks in flight
// (double-buffered: columns, phases, mask, length) and the keep bits of rule-tested chunks.
struct TileMeta {
  int32_t rows[kBlockM];
  int32_t row_phase[kBlockM];
  int32_t cols[2][kBlockN];
  int32_t col_phase[2][kBlockN];
  int32_t mask[2];
  int32_t len[2];
  int32_t step[2];  // the chunk's keys are cols[0] + step * c, inside one band (0: they are not)
  int32_t tma[2];   // the chunk loads with TMA, completing on the buffer's barrier (fetch_chunk)
  // The chunk cursor[b] points at loads with TMA and its keys need no phases, so that one warp fetches it
  // (fetch_tma_chunk); set with the cursor by the wgmma kernel's advance_cursor.
  int32_t light[2];
  int32_t idle[2];  // bit g: the rows of the wgmma kernel's warpgroup g keep no key of the chunk
  // Rule-tested chunks of consecutive keys: the keys every row keeps up to causality and the row's other
  // components, the chunk's keys on a grid's vertical line (rule kind 2) or on the verticals (kind 1).
  uint64_t line[2];
  uint32_t keep[2][kBlockM][kBlockN / 32];  // rule-tested chunks: bit c of row r = element kept
  MaskRule rule;
  // The chunk walk, double-buffered like the chunks: the fetch into buffer b reads cursor[b], and one
  // thread (fetch_chunk) writes the advanced cursor to cursor[b ^ 1] (the barriers between fetches
  // publish it).
  // Keeping it in shared memory rather than in every thread's registers leaves those to the MMA loop.
  ChunkCursor cursor[2];
  // A grid line pass's sections of the tile, which its cursor walks; the same for every chunk, so kept
  // out of the cursor, which is copied per chunk.
  GridTileSections<int32_t> sections;
  BlockSummaryRuns pieces;  // the same for a block summary pass's runs
  int32_t row_start;        // the first row when the tile's rows are consecutive positions, else -1
  int32_t q_tma;            // Q loads through TMA (start_tile)
};

// For a rule-tested chunk, evaluates the rule once per element into keep bits (one row per thread),
// outside the register-heavy MMA loop. Called by the first kBlockM threads (thread r evaluates row r).
__device__ __forceinline__ void evaluate_rule(const SparseAttentionParams& p, TileMeta& s, int buf, int rule_kind) {
  const int r = threadIdx.x;
  const int32_t i = s.rows[r], len = s.len[buf];
  const MaskRule& rule = s.rule;
  uint64_t bits = 0;
  if (closed_form_rule(rule_kind, s.step[buf], s.line[buf])) {
    bits = closed_form_bits(p.words, rule, rule_kind, i, s.row_phase[r], s.cols[buf][0], s.step[buf], len,
                            s.line[buf]);
  } else if (i >= 0) {
    const int32_t phase_i = s.row_phase[r];
    for (int c = 0; c < len; ++c) {
      const int32_t j = s.cols[buf][c];
      if (j < 0) continue;  // a compact pass's covered vertical
      const bool keep = rule_kind == 1
                            ? j <= i && ((rule.vertical_words >= 0 && test_bit(p.words + rule.vertical_words, j)) ||
                                         (rule.slash_words >= 0 && test_bit(p.words + rule.slash_words, i - j)))
                            : rule_keeps_at(rule, p.words, i, j, phase_i, s.col_phase[buf][c]);
      if (keep) bits |= uint64_t(1) << c;
    }
  }
  s.keep[buf][r][0] = static_cast<uint32_t>(bits);
  s.keep[buf][r][1] = static_cast<uint32_t>(bits >> 32);
}

// Where the chunk a cursor points at lies: in a run (from_run) or the gathered columns, its length, and
// whether its keys sit in one band (step: the band's, 0 when they do not).
struct ChunkGeometry {
  bool from_run, one_band;
  int32_t len, step;
  DeviceBand band;
  __device__ explicit ChunkGeometry(const ChunkCursor& cursor) : band(cursor.band) {
    from_run = cursor.run < cursor.run_end;
    len = min(kBlockN, from_run ? cursor.current.end - cursor.pos : cursor.column_end - cursor.column);
    one_band = from_run && cursor.pos + len <= band.logical + band.count;
    step = one_band ? band.step : 0;
  }
};

// Thread 0's part of a chunk's fetch: the chunk's mask, length, key step and line bits into slot `buf` of
// the meta. Every thread reads them only after the barrier that follows, so the wgmma kernel calls it
// where the tensor cores are busy rather than inside fetch_chunk.
__device__ __forceinline__ void describe_chunk(const SparseAttentionParams& p, const DevicePass& pass, TileMeta& s,
                                               int buf) {
  const ChunkCursor& cursor = s.cursor[buf];
  const ChunkGeometry g(cursor);
  const int32_t form = cursor.form, rule_kind = cursor.rule_kind, pos = cursor.pos, len = g.len, step = g.step;
  const DeviceBand& band = g.band;
  // Gathered columns are tested by the rule, except a compact pass's verticals: the rule keeps every
  // causal element of those, and the covered ones are -1. A compact range pass classifies each chunk.
  const int32_t c0 = band.orig + band.step * (pos - band.logical), c_last = c0 + band.step * (len - 1);
  const SlashRunWalk<int32_t>& walk = cursor.walk;
  const bool classified = cursor.on_line || (form == 3 && cursor.current.mask != 2);
  const int mask = !g.from_run  ? (form == 1 ? 1 : 2)
                   : classified ? grid_line_chunk_mask<int32_t>(s.rule, g.one_band, walk.row_min, c0, c_last)
                   : form == 2  ? range_chunk_mask<int32_t>(s.rule, walk.row_min, walk.row_max, c0, c_last)
                   : form == 4  ? block_summary_chunk_mask(s.pieces.runs[cursor.section], pos + len)
                                : cursor.current.mask;
  s.mask[buf] = mask;
  s.len[buf] = len;
  s.step[buf] = step;
  const bool grid_line = mask == 2 && step == 1 && rule_kind == 2 && pass.rule.grid_vline && pass.rule.grid_stride > 0;
  const bool grid_rule = mask == 2 && step > 0 && rule_kind == 3;
  const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};
  s.line[buf] = mask == 2 && step == 1 && rule_kind == 1 ? vertical_window<int32_t>(p.words, s.rule, c0)
                : grid_line ? grid_line_chunk_bits(spans, pass.rule.grid_stride, pass.rule.grid_phase, c0, len)
                : grid_rule ? static_cast<uint64_t>(
                                  (form == 3 ? cursor.section_phase(pass)
                                             : chunk_key_phase<int32_t>(spans, pass.rule.grid_stride, c0, c_last,
                                                                        step)) + 2)
                            : 0;
}

// The warpgroups of the wgmma kernel that skip the chunk cursor[buf] points at (TileMeta::idle): in a
// compact Vertical-Slash pass, those whose 64 rows reach none of a run chunk's keys through the slashes,
// where the chunk has no verticals. On a thread of its own, beside describe_chunk and advance_cursor: as
// part of thread 0's description it held up the next chunk's barrier (Vertical-Slash 2% slower at 128K
// and 512K on an H200).
__device__ __forceinline__ void find_idle_warpgroups(const SparseAttentionParams& p, TileMeta& s, int buf) {
  const ChunkCursor& cursor = s.cursor[buf];
  const ChunkGeometry g(cursor);
  int32_t idle = 0;
  if (cursor.form == 1 && g.from_run && g.step == 1 && s.rule.slash_words >= 0) {
    const int32_t c0 = g.band.orig + (cursor.pos - g.band.logical);
    idle = idle_halves<int32_t>(p.words, s.rule, cursor.walk.row_min, cursor.walk.row_max, kBlockM / 2, c0,
                                c0 + g.len - 1);
  }
  s.idle[buf] = idle;
}

// Whether the wgmma kernel loads the chunk a cursor points at through TMA: its keys consecutive, or evenly
// spaced with a step that has descriptors (DevicePass::strided_map).
__device__ __forceinline__ bool loads_with_tma(const DevicePass& pass, const ChunkCursor& cursor, const ChunkGeometry& g) {
  const int32_t step = g.step, last = g.band.orig + step * (cursor.pos + g.len - 1 - g.band.logical);
  return step == 1 || (step > 1 && step == pass.strided_step && last < pass.strided_limit);
}

// Whether the masking step reads the chunk's key phases: only under a rule with grid lines (rule_phase),
// and only where evaluate_rule tests the rule element by element (whether the chunk has closed-form bits
// depends on the keys' phases, which describe_chunk finds: they are read then too, except in a grid line
// pass, whose chunks inside one band share their section's phase). A range pass's line chunk inside one
// band and past min_col is never rule-tested (grid_line_chunk_mask).
__device__ __forceinline__ bool needs_key_phases(const DevicePass& pass, const ChunkCursor& cursor,
                                                 const ChunkGeometry& g) {
  if (pass.rule.grid_stride <= 0) return false;
  const int32_t step = g.step;
  const bool line_kept =
      cursor.on_line && g.one_band && g.band.orig + step * (cursor.pos - g.band.logical) >= pass.rule.min_col;
  return cursor.rule_kind != 1 && !line_kept && !closed_form_rule(cursor.rule_kind, step, cursor.form == 3 ? 1 : 0);
}

// Issues the four TMA boxes (K and V, two 128-byte-wide halves each) of a chunk that loads through TMA
// into k_chunk and v_chunk, completing on `full`. Keys past the chunk's length (or past the sequence,
// zero-filled) land too; their scores are masked.
template <typename T>
__device__ __forceinline__ void issue_chunk_tma(const SparseAttentionParams& p, const DevicePass& pass,
                                                const ChunkCursor& cursor, const ChunkGeometry& g, T* k_chunk,
                                                T* v_chunk, uint64_t* full) {
  constexpr int kHalf = kBlockN * 64;  // elements of one 128-byte-wide half of the rows
  const int32_t step = g.step, key = g.band.orig + step * (cursor.pos - g.band.logical), head = cursor.kv_head;
  mbarrier_expect_bytes(full, 4 * kHalf * sizeof(T));
  for (int half = 0; half < 2; ++half) {
    if (step == 1) {
      tma_load_3d(k_chunk + half * kHalf, &p.k_map, full, half * 64, head, key);
      tma_load_3d(v_chunk + half * kHalf, &p.v_map, full, half * 64, head, key);
    } else {
      const CUtensorMap* maps = p.strided_maps + 2 * pass.strided_map;
      tma_load_4d(k_chunk + half * kHalf, maps, full, half * 64, head, key % step, key / step);
      tma_load_4d(v_chunk + half * kHalf, maps + 1, full, half * 64, head, key % step, key / step);
    }
  }
}

// The fetch of a chunk that TileMeta::light marks, by one warp: lane `lane` records the columns c and
// c + 32 (their original positions, -1 past the chunk's end), and with `issue`, it issues the TMA loads.
template <typename T>
__device__ __forceinline__ void fetch_tma_chunk(const SparseAttentionParams& p, const DevicePass& pass, TileMeta& s,
                                                T* k_chunk, T* v_chunk, int buf, uint64_t* tma_full, int lane,
                                                bool issue) {
  const ChunkCursor& cursor = s.cursor[buf];
  const ChunkGeometry g(cursor);
  const int32_t c0 = g.band.orig + g.step * (cursor.pos - g.band.logical);
  for (int c = lane; c < kBlockN; c += 32) s.cols[buf][c] = c < g.len ? c0 + g.step * c : -1;
  if (issue) {
    issue_chunk_tma(p, pass, cursor, g, k_chunk, v_chunk, tma_full + buf);
    s.tma[buf] = 1;
  }
}

// The cursor past the chunk cursor[buf] points at, into cursor[buf ^ 1] (in place: a copy in registers
// adds spills to the MMA loop).
template <bool kTma = false>
__device__ __forceinline__ void advance_cursor(const SparseAttentionParams& p, const DevicePass& pass, TileMeta& s,
                                               int buf) {
  ChunkCursor& next = s.cursor[buf ^ 1];
  next = s.cursor[buf];
  next.advance(p, pass, s.sections, s.pieces);
  if (kTma) {
    const ChunkGeometry g(next);
    s.light[buf ^ 1] = !next.done() && loads_with_tma(pass, next, g) && !needs_key_phases(pass, next, g);
  }
}

// Issues the K and V loads of the chunk that cursor[buf] points at into buffer `buf` and records its
// columns and phases for the masking step. With kWalk, thread 0 then describes the chunk
// (describe_chunk) and thread kThreads / 2 advances the cursor (advance_cursor), in parallel (each is a
// serial chain of loads that holds up its warp); without, both are the caller's to do before the next
// barrier.
// K and V rows land in k_chunk and v_chunk, piece c of row r at KvLayout::offset(r, c) elements. Each key
// row is loaded by kRowThreads consecutive threads, which locate its column once and then issue
// interleaved 16-byte pieces (a warp covers whole 32-byte sectors of 32 / kRowThreads rows at a time);
// this runs once per chunk on every thread, so it is kept to a few instructions per piece.
// With kTma (the wgmma kernel: KvLayout 128-byte swizzled, D = 128), a chunk of consecutive keys, or of
// keys with a step that has descriptors (DevicePass::strided_map), is instead loaded by thread
// kTmaThread with four TMA boxes completing on tma_full[buf] (TileMeta::tma says so to the waiting
// threads): issuing 16-byte copies took every thread some 1,700 cycles a chunk.
template <int kThreads, int D, typename KvLayout, bool kTma = false, bool kWalk = true, int kTmaThread = 0,
          typename T>
__device__ void fetch_chunk(const SparseAttentionParams& p, const DevicePass& pass, TileMeta& s, T* k_chunk,
                            T* v_chunk, int buf, const T* k_base, const T* v_base, uint64_t* tma_full = nullptr) {
  constexpr int kPieces = D / 8;  // 16-byte pieces per row
  constexpr int kRowThreads = kThreads / kBlockN;
  constexpr int kRowPieces = kPieces / kRowThreads;
  static_assert(kThreads % kBlockN == 0 && kPieces % kRowThreads == 0, "whole rows per group of threads");
  const ChunkCursor& cursor = s.cursor[buf];
  const int tid = threadIdx.x, r = tid / kRowThreads, first_piece = tid % kRowThreads;
  const int32_t form = cursor.form, pos = cursor.pos;
  const ChunkGeometry g(cursor);
  const bool from_run = g.from_run;
  int32_t j = -1;
  if (r < g.len) j = from_run ? cursor.col_at(p, pos + r) : (form == 1 ? p.verticals : p.columns)[cursor.column + r];
  // With kTma, chunks of consecutive keys, and of keys with a step that has descriptors, load with TMA.
  if (kTma && loads_with_tma(pass, cursor, g)) {
    if (tid == kTmaThread) {
      issue_chunk_tma(p, pass, cursor, g, k_chunk, v_chunk, tma_full + buf);
      s.tma[buf] = 1;
    }
  } else {
    if (kTma && tid == kTmaThread) s.tma[buf] = 0;
    // The thread's first piece of the row; the others follow at fixed offsets.
    const int64_t first = (static_cast<int64_t>(j < 0 ? 0 : j) * p.kv_heads + cursor.kv_head) * D + first_piece * 8;
    const T* k_row = k_base + first;
    const T* v_row = v_base + first;
#pragma unroll
    for (int k = 0; k < kRowPieces; ++k) {
      const int c = first_piece + k * kRowThreads;
      cp_async_16(k_chunk + KvLayout::offset(r, c), k_row + k * kRowThreads * 8, j >= 0);
      cp_async_16(v_chunk + KvLayout::offset(r, c), v_row + k * kRowThreads * 8, j >= 0);
    }
  }
  if (first_piece == 0) {
    if (form == 1 && !from_run && j >= 0 &&
        vertical_covered(p.words + pass.rule.slash_words, cursor.walk.row_min, cursor.walk.row_max, j)) {
      j = -1;  // one of the tile's runs counts this column already
    }
    s.cols[buf][r] = j;
    if (needs_key_phases(pass, cursor, g)) {
      const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};
      s.col_phase[buf][r] = j >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, j)) : -1;
    }
  }
  if (kWalk && tid == 0) describe_chunk(p, pass, s, buf);
  if (kWalk && tid == kThreads / 2) advance_cursor<kTma>(p, pass, s, buf);
}

// The keep bits of `row` for a rule-tested chunk, as evaluate_rule stored them.
__device__ __forceinline__ uint64_t stored_keep_bits(const TileMeta& s, int buf, int row) {
  return static_cast<uint64_t>(s.keep[buf][row][1]) << 32 | s.keep[buf][row][0];
}

// Both kernels hold a 64-key score chunk the same way: per 16-row block, sc[n][2h + e] is row rows[h]
// (h = 0: lane / 4, h = 1: 8 rows below), key n * 8 + (lane % 4) * 2 + e. This sets the elements its
// mask drops to -inf, on original positions; the scores stay unscaled (online_softmax applies the scale).
// `plain`: a fully kept, full chunk of valid rows, which needs nothing; bits[h]: row h's keep bits when
// mask is 2 (rule-tested). The mask is the same for the whole chunk, so each kind gets its own loop; the
// per-element work is a few integer operations, which these kernels otherwise spend a large share of
// their issue slots on.
__device__ __forceinline__ void mask_scores(float (&sc)[8][4], const TileMeta& s, int buf, int mask, bool plain,
                                            const int (&rows)[2], const uint64_t (&bits)[2], int lane) {
  if (plain) return;
  if (mask == 2) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // This thread's keys are bits n * 8 + e of the row's bits shifted by (lane % 4) * 2.
      const uint64_t mine = bits[h] >> ((lane % 4) * 2);
      const uint32_t low = static_cast<uint32_t>(mine), high = static_cast<uint32_t>(mine >> 32);
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const uint32_t word = n < 4 ? low : high;
          float& x = sc[n][2 * h + e];
          if (!((word >> ((n % 4) * 8 + e)) & 1u)) x = -INFINITY;
        }
    }
    return;
  }
  // Masks 0 and 1: the key must exist (a short chunk's tail, a covered vertical) and the row too; mask 1
  // also tests the rule's minimum distance (causality when it is 0).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int32_t i = s.rows[rows[h]];
    // The last key the row keeps: any for mask 0, the one at the rule's minimum distance for mask 1.
    const int32_t reach = mask == 0 ? INT32_MAX : i - static_cast<int32_t>(s.rule.min_distance);
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int32_t j = s.cols[buf][n * 8 + (lane % 4) * 2 + e];
        const bool keep = j >= 0 && i >= 0 && j <= reach;
        if (!keep) sc[n][2 * h + e] = -INFINITY;
      }
  }
}

// The online-softmax step for the same block of unscaled scores: each row's state (max m of the scaled
// scores in log2 units, sum l) lives in the 4 threads of its quad. Exponentiates sc in place, with the
// scale folded into one FFMA per score (scale_log2 = softmax scale * log2 e > 0, so the raw maximum
// scales to the scaled one), and rescales this thread's output o unless no row of the warp has a new
// maximum (the common case once a row has seen its largest scores; the correction is then exactly 1).
template <int kAtomsD>
__device__ __forceinline__ void online_softmax(float (&sc)[8][4], float (&o)[kAtomsD][4], float (&m)[2],
                                               float (&l)[2], float scale_log2) {
  float correction[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n) mx = fmaxf(mx, fmaxf(sc[n][2 * h], sc[n][2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
    const float m_new = fmaxf(m[h], mx * scale_log2);
    const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing kept yet stays empty
    correction[h] = exp2f(m[h] - base);
    m[h] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      sc[n][2 * h] = exp2f(fmaf(sc[n][2 * h], scale_log2, -base));
      sc[n][2 * h + 1] = exp2f(fmaf(sc[n][2 * h + 1], scale_log2, -base));
      sum += sc[n][2 * h] + sc[n][2 * h + 1];
    }
    l[h] = l[h] * correction[h] + sum;
  }
  if (!__any_sync(0xffffffff, correction[0] != 1.f || correction[1] != 1.f)) return;
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int n = 0; n < kAtomsD; ++n) {
      o[n][2 * h] *= correction[h];
      o[n][2 * h + 1] *= correction[h];
    }
}

// P's A fragment for keys 16kk .. 16kk + 15 of the block: the accumulators of n-atoms 2kk and 2kk + 1.
template <typename T>
__device__ __forceinline__ void p_fragment(const float (&sc)[8][4], int kk, uint32_t (&pa)[4]) {
  pa[0] = Mma<T>::pack(sc[2 * kk][0], sc[2 * kk][1]);
  pa[1] = Mma<T>::pack(sc[2 * kk][2], sc[2 * kk][3]);
  pa[2] = Mma<T>::pack(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
  pa[3] = Mma<T>::pack(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
}

// Gathers `kRows` rows (original positions, -1 = zero-fill) of one head into shared memory, piece c of
// row r at Layout::offset(r, c) elements.
template <int kThreads, int D, int kRows, typename Layout, typename T>
__device__ __forceinline__ void load_rows(T* dst, const T* base, const int32_t* rows, int heads, int head) {
  constexpr int kPieces = D / 8;  // 16-byte pieces per row
#pragma unroll
  for (int idx = threadIdx.x; idx < kRows * kPieces; idx += kThreads) {
    const int r = idx / kPieces, c = idx % kPieces;
    const int32_t pos = rows[r];
    const T* src = base + (static_cast<int64_t>(pos < 0 ? 0 : pos) * heads + head) * D + c * 8;
    cp_async_16(dst + Layout::offset(r, c), src, pos >= 0);
  }
}

// The tile's rows (original positions, -1 past the pass's end) and their grid phases; the first
// kBlockM threads take one row each.
__device__ __forceinline__ void load_tile_rows(const SparseAttentionParams& p, const DeviceTile& tile,
                                               const DevicePass& pass, TileMeta& s) {
  const int tid = threadIdx.x;
  if (tid < kBlockM) {
    const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};
    const int32_t logical = tile.tile * kBlockM + tid;
    const int32_t orig = logical < pass.num_rows ? band_orig(p.bands + pass.row_bands, pass.num_row_bands, logical) : -1;
    s.rows[tid] = orig;
    s.row_phase[tid] = orig >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, orig)) : -1;
  }
  if (tid == 0) s.rule = pass.rule;
}

// Merging one row's result into its earlier one by log-sum-exp: every thread of the row's quad reads
// the old lse (old_lse) before any of them writes the new one (merge_row). value(n, e) is this thread's
// unnormalised output at column n * 8 + (lane % 4) * 2 + e; m is the row max in log2 units, l its sum.
// A head's first pass has no earlier result to read (-inf without a load, which costs a round trip to memory).
__device__ __forceinline__ float old_lse(const SparseAttentionParams& p, const DevicePass& pass, int32_t i, float l) {
  if (!pass.reads_state) return -INFINITY;
  return (i >= 0 && l > 0.f) ? p.lse_state[static_cast<int64_t>(pass.head) * p.n + i] : 0.f;
}

// The log-sum-exp merge of a row's new result (natural-log lse) into an earlier one (previous; -inf:
// none): the weights of the old normalised output and of the new one, and the merged lse.
struct MergeWeights {
  float old_weight, new_weight, lse;
};
__device__ __forceinline__ MergeWeights merge_weights(float previous, float lse) {
  if (previous == -INFINITY) return {0.f, 1.f, lse};
  const float top = fmaxf(previous, lse);
  const float w_old = expf(previous - top), w_new = expf(lse - top), total = w_old + w_new;
  return {w_old / total, w_new / total, top + logf(total)};
}

// The row's earlier result (in the output, in T) is read only where an earlier pass wrote it (previous
// > -inf); the merged result replaces it.
template <int D, typename T, typename ValueFn>
__device__ __forceinline__ void merge_row(const SparseAttentionParams& p, int head, int32_t i, float m, float l,
                                          float previous, int lane, ValueFn value) {
  if (i < 0 || !(l > 0.f)) return;
  const MergeWeights w = merge_weights(previous, m * kLn2 + logf(l));
  const bool has_previous = previous != -INFINITY;
  const float scale_new = w.new_weight / l;
  T* row = static_cast<T*>(p.out) + (static_cast<int64_t>(i) * p.q_heads + head) * D;
  uint32_t* out = reinterpret_cast<uint32_t*>(row + (lane % 4) * 2);  // this thread's pairs, 8 values apart
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    float2 x = make_float2(value(n, 0) * scale_new, value(n, 1) * scale_new);
    if (has_previous) {
      const float2 prev = Mma<T>::unpack(out[n * 4]);
      x.x += prev.x * w.old_weight;
      x.y += prev.y * w.old_weight;
    }
    out[n * 4] = Mma<T>::pack(x.x, x.y);
  }
  if (lane % 4 == 0) p.lse_state[static_cast<int64_t>(head) * p.n + i] = w.lse;
}

// This CTA's tile: from the launch's list, or for a level of compact passes, from the block index:
// the last row tile of every pass first, then the one before (under causality a compact pass's later
// rows reach more keys, so this is heaviest first without weighing anything). A grid line pass with a
// horizontal line first runs the tiles with rows of the line's phase, which reach every key.
__device__ __forceinline__ DeviceTile tile_of(const SparseAttentionParams& p) {
  if (p.tiles) return p.tiles[blockIdx.x];
  const int32_t x = static_cast<int32_t>(blockIdx.x), pass = p.level_pass_begin + x % p.level_passes;
  const int32_t k = x / p.level_passes, last = p.level_tiles - 1;  // the pass's k-th tile to run
  int32_t heavy_first = 0, heavy_last = -1;  // the tiles with rows of the horizontal line's phase
  const MaskRule& rule = p.passes[pass].rule;
  if (p.passes[pass].form == 3 && rule.grid_hline) {
    const int32_t* row_start = p.phase_tables + p.passes[pass].phase_table;
    const int32_t rows_begin = row_start[rule.grid_phase], rows_end = row_start[rule.grid_phase + 1];
    if (rows_begin < rows_end) heavy_first = rows_begin / kBlockM, heavy_last = (rows_end - 1) / kBlockM;
  }
  // Then the others from the last: those after the heavy tiles, then those before them.
  const int32_t heavy = heavy_last - heavy_first + 1, after = last - heavy_last;
  const int32_t tile = k < heavy ? heavy_first + k : k - heavy < after ? last - (k - heavy) : last - k;
  return DeviceTile{pass, tile, 0, 0, 0, 0};
}

// Tile `tile`'s run over piece `piece` of a block summary pass (block_summary_run).
__device__ __forceinline__ BlockSummaryRun<int32_t> tile_block_summary_run(const DeviceBand* bands,
                                                                          const int32_t* phase_tables,
                                                                          const DevicePass& pass, int32_t tile,
                                                                          int32_t piece) {
  const int32_t* piece_band = phase_tables + pass.phase_table;  // band array indices
  int32_t lowest = 0, highest = -1;
  const int32_t first = tile * kBlockM, last = min(pass.num_rows, first + kBlockM) - 1;
  auto row_band = [&](int32_t b) { return bands[pass.row_bands + b]; };
  band_extent_from<int32_t>(row_band, pass.num_row_bands, band_holding_guessed(row_band, pass.num_row_bands, first),
                            first, last, lowest, highest);
  return block_summary_run<int32_t>([&](int32_t b) { return bands[b]; }, piece_band[piece], piece_band[piece + 1],
                                    piece + 1 == pass.phases, static_cast<int32_t>(pass.rule.block), lowest, highest);
}

// The first row of a tile whose 128 rows are consecutive positions (its pass's rows are one band of
// step 1), else -1.
__device__ __forceinline__ int32_t consecutive_rows_start(const SparseAttentionParams& p, const DeviceTile& tile,
                                                          const DevicePass& pass) {
  if (pass.num_row_bands != 1) return -1;
  const DeviceBand rows = p.bands[pass.row_bands];
  return rows.step == 1 ? rows.orig + tile.tile * kBlockM : -1;
}

// With a Q descriptor (the wgmma kernel), thread 0 loads Q of a tile of consecutive rows with two TMA
// boxes completing on q_full, before anything else of the start: Q's trip from memory then overlaps the
// start's serial chains instead of following them. Rows past the pass's end load too (past the
// sequence, zero-filled); their results are dropped. Returns whether it did.
template <typename T>
__device__ __forceinline__ bool load_q_with_tma(const SparseAttentionParams& p, const DevicePass& pass,
                                                int32_t row_start, T* q_smem, uint64_t* q_full) {
  if (p.q_map == nullptr || row_start < 0) return false;
  constexpr int kHalf = kBlockM * 64;  // elements of one 128-byte-wide half of the rows
  mbarrier_expect_bytes(q_full, 2 * kHalf * sizeof(T));
  for (int half = 0; half < 2; ++half) {
    tma_load_3d(q_smem + half * kHalf, p.q_map, q_full, half * 64, pass.head, row_start);
  }
  return true;
}

// A tile's start, the same in both kernels: the cursor (into meta.cursor[0]) and the tile's rows;
// then, unless the tile has nothing to visit (it returns false before loading any key), its Q rows
// (into q_smem, laid out by QLayout) and the first chunk's K/V loads into buffer 0 (KvLayout). With
// kTma, Q may load through TMA on q_full (meta.q_tma says so; see load_q_with_tma), initialised by thread
// 0 before the call.
template <int kThreads, int D, typename QLayout, typename KvLayout, bool kTma = false, typename T>
__device__ __forceinline__ bool start_tile(const SparseAttentionParams& p, const DeviceTile& tile,
                                           const DevicePass& pass, TileMeta& meta, T* q_smem, T* k_chunk,
                                           T* v_chunk, uint64_t* tma_full = nullptr, uint64_t* q_full = nullptr) {
  if (threadIdx.x == 0) {
    meta.row_start = consecutive_rows_start(p, tile, pass);
    meta.q_tma = kTma && load_q_with_tma(p, pass, meta.row_start, q_smem, q_full);
  }
  // The cursor's start and the rows are two serial chains of loads: where the CTA has a thread that
  // loads no row, that thread starts the cursor while the others load the rows. A block summary pass's
  // cursor starts from its tile's runs, which that thread copies first (independent loads, one trip).
  if (threadIdx.x == (kThreads > kBlockM ? kBlockM : 0)) {
    if (pass.form == 4) {
      meta.pieces.count = pass.phases;
      const BlockSummaryRun<int32_t>* runs = p.block_summary_runs + pass.tile_runs + tile.tile * pass.phases;
#pragma unroll
      for (int k = 0; k < kMaxBlockSummaryPieces; ++k) {
        if (k < pass.phases) meta.pieces.runs[k] = runs[k];
      }
    }
    ChunkCursor cursor;
    cursor.start(p, tile, pass, meta.sections, meta.pieces);
    meta.cursor[0] = cursor;
  }
  load_tile_rows(p, tile, pass, meta);
  __syncthreads();
  if (meta.cursor[0].done()) {
    if (kTma && meta.q_tma) mbarrier_wait(q_full, 0);  // no TMA may write into the CTA's memory after it exits
    return false;
  }
  if (!meta.q_tma) {
    load_rows<kThreads, D, kBlockM, QLayout>(q_smem, static_cast<const T*>(p.q), meta.rows, p.q_heads, pass.head);
  }
  cp_async_commit();
  fetch_chunk<kThreads, D, KvLayout, kTma>(p, pass, meta, k_chunk, v_chunk, 0, static_cast<const T*>(p.k),
                                           static_cast<const T*>(p.v), tma_full);
  cp_async_commit();
  return true;
}

// Merges one 16-row block of a pass's results (tile rows rows[h]; row max m, this thread's partial
// sums l and outputs o, laid out as in mask_scores) into the output by log-sum-exp.
template <int D, typename T>
__device__ __forceinline__ void merge_block(const SparseAttentionParams& p, const DevicePass& pass, const TileMeta& meta,
                                            const int (&rows)[2], const float (&m)[2], float (&l)[2],
                                            const float (&o)[D / 8][4], int lane) {
  float previous[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 2);
    previous[h] = old_lse(p, pass, meta.rows[rows[h]], l[h]);
  }
  __syncwarp();
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    merge_row<D, T>(p, pass.head, meta.rows[rows[h]], m[h], l[h], previous[h], lane,
                    [&](int n, int e) { return o[n][2 * h + e]; });
  }
}

}  // namespace mmi::cuda::detail
