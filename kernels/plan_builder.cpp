#include "kernels/plan_builder.h"

#include <algorithm>
#include <stdexcept>

#include "kernels/grid_line_walk.h"
#include "kernels/parallel.h"
#include "kernels/rule_bits.h"

namespace mmi {
namespace {

// SF-fixed with up to this many summary keys per block lists them phase-major, with more in position
// order (add_fixed); a piece each, and the CUDA kernels take at most this many pieces plus one.
constexpr int64_t kMaxSummaryPhases = 8;

using Segments = std::vector<std::pair<int64_t, int64_t>>;  // half-open [begin, end), ascending

// Sorts ascending. The requirements of a tile mostly arrive already in order (rows and verticals
// ascending) or reversed (slashes, whose key ranges descend as distances ascend): those cost one pass.
template <typename T>
void sort_mostly_ordered(std::vector<T>& v) {
  if (std::is_sorted(v.begin(), v.end())) return;
  if (std::is_sorted(v.rbegin(), v.rend())) {
    std::reverse(v.begin(), v.end());
    return;
  }
  std::sort(v.begin(), v.end());
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

Segments segments_of(const SequenceLayout& layout, Modality m) {
  Segments out;
  for (int s : layout.spans_of(m)) out.emplace_back(layout.span(s).start, layout.span(s).end());
  return out;
}

Segments visual_segments(const SequenceLayout& layout) {
  Segments out;
  for (const Span& s : layout.spans()) {
    if (is_visual(s.modality)) out.emplace_back(s.start, s.end());
  }
  return out;
}

// Pieces of `a` inside `b`, in order; adjacent pieces stay separate (visual spans keep their origin).
Segments intersect(const Segments& a, const Segments& b) {
  Segments out;
  for (const auto& [a0, a1] : a) {
    for (const auto& [b0, b1] : b) {
      const int64_t lo = std::max(a0, b0), hi = std::min(a1, b1);
      if (lo < hi) out.emplace_back(lo, hi);
    }
  }
  return out;
}

Segments subtract(const Segments& a, const Segments& b) {
  Segments out;
  for (const auto& [a0, a1] : a) {
    int64_t cursor = a0;
    for (const auto& [b0, b1] : b) {
      if (b1 <= cursor || b0 >= a1) continue;
      if (b0 > cursor) out.emplace_back(cursor, b0);
      cursor = std::max(cursor, b1);
    }
    if (cursor < a1) out.emplace_back(cursor, a1);
  }
  return out;
}

// What the rule needs beyond MaskRule itself: the sorted index lists behind its bitmaps.
struct PassSpec {
  IndexMap rows;
  IndexMap cols;
  MaskRule rule;
  std::string label;
  const std::vector<int64_t>* verticals = nullptr;
  const std::vector<int64_t>* slashes = nullptr;
};

// The rows of one query tile, ascending, with the summaries the classifier needs.
struct TileRows {
  int64_t index = 0;          // the tile
  size_t first_band = 0;      // the row band holding its first row
  std::vector<int64_t> pos;   // in the pass's order, ascending only when runs are wanted; only when
                              // the rule needs them (PassBuilder::needs_row_positions_)
  Segments runs;              // maximal runs of consecutive positions, as [first, last] (inclusive)
  int64_t min = 0, max = 0;
  int64_t grid_phase = -1;    // the common grid phase of all rows, or -1
  int64_t residue = -1;       // the common residue modulo the rule's diagonal period, or -1
};

struct ChunkCols {
  int64_t min = 0, max = 0;
  const Band* band = nullptr;  // the single band holding the chunk, or null when it straddles bands
};

class PassBuilder {
 public:
  // `plan` supplies the tile sizes and visual spans; `words` the bitmaps the rule's offsets refer to.
  PassBuilder(const SparsePlan& plan, const std::vector<uint64_t>& words, const PassSpec& spec)
      : plan_(plan), words_(words), spec_(spec), r_(spec.rule),
        needs_row_runs_(r_.local > r_.min_distance || r_.block > 0 || spec.slashes || r_.slash_words >= 0),
        needs_row_positions_(needs_row_runs_ || r_.diagonal_period > 0 || r_.dense_rows_before > 0 ||
                             r_.dense_rows_from != kNoLimit),
        band_decides_keep_(r_.sink <= 0 && r_.local <= 0 && r_.block <= 0 && r_.slash_words < 0) {
    // Column bands by what need_phase does with them, sorted once for every tile of a grid pass: the
    // bands of stride steps by the grid phase of their first key, the others apart.
    if (r_.grid_stride > 0) {
      stride_bands_by_phase_.resize(r_.grid_stride);
      const auto& bands = spec_.cols.bands();
      for (size_t index = 0; index < bands.size(); ++index) {
        const int64_t ph = phase(bands[index].orig);
        col_band_phase_.push_back(ph);
        if (bands[index].step == r_.grid_stride && ph >= 0) stride_bands_by_phase_[ph].push_back(index);
        if (bands[index].step != r_.grid_stride) other_bands_.push_back(index);
      }
    }
  }

  Pass build() {
    Pass pass;
    pass.rows = spec_.rows;
    pass.cols = spec_.cols;
    pass.rule = r_;
    pass.label = spec_.label;
    const int64_t tiles = (spec_.rows.size() + plan_.block_m - 1) / plan_.block_m;
    pass.tiles = tiles;
    pass.run_offsets.assign(1, 0);
    pass.column_offsets.assign(1, 0);
    for (int64_t t = 0; t < tiles; ++t) {
      load_tile(t);
      intervals_.clear();
      gathered_.clear();
      collect_requirements();
      emit_runs(pass);
      emit_columns(pass);
      pass.run_offsets.push_back(static_cast<int64_t>(pass.runs.size()));
      pass.column_offsets.push_back(static_cast<int64_t>(pass.columns.size()));
    }
    return pass;
  }

 private:
  int64_t limit(int64_t row) const { return row - r_.min_distance; }  // the last key a row may keep

  void load_tile(int64_t t) {
    TileRows& T = tile_;
    T.index = t;
    T.first_band = static_cast<size_t>(spec_.rows.band_at(t * plan_.block_m));
    T.pos.clear();
    T.runs.clear();
    if (needs_row_positions_) {
      load_row_positions();
    } else {
      load_row_extremes();
    }
    T.grid_phase = common_phase();
    T.residue = r_.diagonal_period > 0 ? common_value([&](int64_t p) { return p % r_.diagonal_period; }) : -1;
  }

  // The tile's row positions, their extremes and (needs_row_runs_) their maximal runs.
  void load_row_positions() {
    TileRows& T = tile_;
    const int64_t first = T.index * plan_.block_m, end = std::min(spec_.rows.size(), first + plan_.block_m);
    spec_.rows.gather(first, end, T.pos);
    const auto [lowest, highest] = std::minmax_element(T.pos.begin(), T.pos.end());
    T.min = *lowest;
    T.max = *highest;
    if (!needs_row_runs_) return;  // the permuted rows of a grid pass need neither order nor runs
    sort_mostly_ordered(T.pos);
    for (int64_t p : T.pos) {
      if (!T.runs.empty() && T.runs.back().second + 1 == p) T.runs.back().second = p;
      else T.runs.emplace_back(p, p);
    }
  }

  // The extremes of the tile's rows alone, band by band (a grid pass's tile holds a few bands).
  void load_row_extremes() {
    TileRows& T = tile_;
    const int64_t first = T.index * plan_.block_m, end = std::min(spec_.rows.size(), first + plan_.block_m);
    const auto& bands = spec_.rows.bands();
    T.min = INT64_MAX;
    T.max = INT64_MIN;
    for (size_t b = T.first_band; b < bands.size() && bands[b].logical < end; ++b) {
      const int64_t lo = bands[b].orig_at(std::max(first, bands[b].logical));
      const int64_t hi = bands[b].orig_at(std::min(end, bands[b].logical + bands[b].count) - 1);
      T.min = std::min({T.min, lo, hi});
      T.max = std::max({T.max, lo, hi});
    }
  }

  template <typename F>
  int64_t common_value(F f) const {
    const int64_t first = f(tile_.pos.front());
    for (int64_t p : tile_.pos) {
      if (f(p) != first) return -1;
    }
    return first;
  }

  // body(phase, last) over the current tile's rows in groups of one grid phase (-1 for rows outside the
  // visual spans), `last` the group's largest position. A band whose step is a multiple of the stride
  // and which stays inside one visual span is one group (phase-major rows are such bands), so a tile
  // costs a lookup per band instead of one per row; other bands go row by row.
  template <typename Body>
  void for_each_row_phase(Body&& body) const {
    const auto& bands = spec_.rows.bands();
    const int64_t first = tile_.index * plan_.block_m;
    const int64_t last = std::min(spec_.rows.size(), first + plan_.block_m) - 1;
    for (size_t b = tile_.first_band; b < bands.size() && bands[b].logical <= last; ++b) {
      const Band& band = bands[b];
      const int64_t lo = band.orig_at(std::max(first, band.logical));
      const int64_t hi = band.orig_at(std::min(last, band.logical + band.count - 1));
      const int64_t span = span_of(lo);
      if (band.step % r_.grid_stride == 0 && span >= 0 && span == span_of(hi)) {
        body(phase(lo), std::max(lo, hi));
        continue;
      }
      for (int64_t pos = lo;; pos += band.step) {
        body(phase(pos), pos);
        if (pos == hi) break;
      }
    }
  }

  // The common grid phase of the current tile's rows, or -1.
  int64_t common_phase() const {
    if (r_.grid_stride <= 0) return -1;
    int64_t common = -2;  // nothing seen yet
    for_each_row_phase([&](int64_t ph, int64_t) { common = common == -2 || common == ph ? ph : -1; });
    return common;
  }

  // Index of the visual span holding `pos`, or -1.
  int64_t span_of(int64_t pos) const {
    const auto& starts = plan_.visual_starts;
    const int64_t k = std::upper_bound(starts.begin(), starts.end(), pos) - starts.begin() - 1;
    return k >= 0 && pos < plan_.visual_ends[k] ? k : -1;
  }

  int64_t phase(int64_t pos) const {
    return r_.grid_stride > 0 ? visual_phase_of(plan_.visual_spans(), pos, r_.grid_stride) : -1;
  }

  // ---- requirements: which key columns some row of the tile may keep -------------------------------

  void need_on_band(const Band& b, int64_t lo, int64_t hi) {
    lo = std::max(lo, r_.min_col);
    if (lo > hi) return;
    const int64_t k_lo = std::max<int64_t>(0, ceil_div(lo - b.orig, b.step));
    const int64_t k_hi = std::min<int64_t>(b.count - 1, floor_div(hi - b.orig, b.step));
    if (k_lo <= k_hi) intervals_.emplace_back(b.logical + k_lo, b.logical + k_hi + 1);
  }

  void need_range(int64_t lo, int64_t hi) {
    const auto& bands = spec_.cols.bands();
    if (!spec_.cols.unit_steps()) {
      for (const Band& b : bands) need_on_band(b, lo, hi);
      return;
    }
    // Bands in position order: the keys in [lo, hi] are one logical range, found by bisection (a map
    // of a band per block has thousands of bands, and tiles ask for ranges of each).
    lo = std::max(lo, r_.min_col);
    const auto first = std::partition_point(bands.begin(), bands.end(), [&](const Band& b) { return b.orig_last() < lo; });
    const auto stop = std::partition_point(first, bands.end(), [&](const Band& b) { return b.orig <= hi; });
    if (first >= stop) return;
    const Band& last = *(stop - 1);
    const int64_t begin = first->logical + std::max<int64_t>(0, lo - first->orig);
    const int64_t end = last.logical + std::min(last.count, hi - last.orig + 1);
    if (begin < end) intervals_.emplace_back(begin, end);
  }

  void need_column(int64_t j) {
    if (j >= r_.min_col) gathered_.push_back(j);
  }

  // Keys of grid phase `p` up to `hi`: a band prefix in phase-major maps, gathered columns otherwise.
  void need_phase(int64_t p, int64_t hi) {
    const int64_t s = r_.grid_stride;
    const VisualSpans spans = plan_.visual_spans();
    const auto& bands = spec_.cols.bands();
    if (p >= 0 && p < s) {
      for (size_t index : stride_bands_by_phase_[p]) need_on_band(bands[index], bands[index].orig, hi);
    }
    for (size_t index : other_bands_) {
      const Band& b = bands[index];
      if (b.step == 1) {
        const int64_t b_end = std::min(b.orig + b.count - 1, hi);
        for (int64_t k = 0; k < spans.count; ++k) {
          const int64_t lo = std::max(b.orig, spans.starts[k]);
          const int64_t end = std::min(b_end + 1, spans.ends[k]);
          const int64_t first = spans.starts[k] + p + ceil_div(lo - spans.starts[k] - p, s) * s;
          for (int64_t j = first; j < end; j += s) need_column(j);
        }
      } else {
        need_on_band(b, b.orig, hi);  // an unrelated permutation: cover it, the rule decides
      }
    }
  }

  void collect_requirements() {
    const TileRows& T = tile_;
    if (r_.all) need_range(0, limit(T.max));
    int64_t dense_row = -1;  // the last row that keeps every key
    if (r_.dense_rows_before > 0 || r_.dense_rows_from != kNoLimit) {
      for (int64_t p : T.pos) {
        if (p < r_.dense_rows_before || p >= r_.dense_rows_from) dense_row = std::max(dense_row, p);
      }
    }
    if (r_.grid_hline) {
      for_each_row_phase([&](int64_t ph, int64_t last) {
        if (ph == r_.grid_phase) dense_row = std::max(dense_row, last);
      });
    }
    if (dense_row >= 0) need_range(0, limit(dense_row));
    if (r_.sink > 0) need_range(0, std::min(r_.sink - 1, limit(T.max)));
    if (r_.local > r_.min_distance) {
      for (const auto& [a, z] : T.runs) need_range(a - r_.local + 1, limit(z));
    }
    if (r_.block > 0) collect_block();
    if (r_.diagonal_period > 0) collect_diagonals();
    if (spec_.verticals) {
      for (int64_t j : *spec_.verticals) {
        if (j > limit(T.max)) break;
        need_column(j);
      }
    }
    if (spec_.slashes) collect_slashes();
    if (r_.grid_stride > 0 && (r_.grid_vline || r_.grid_slash)) collect_grid_lines();
  }

  void collect_block() {
    const int64_t l = r_.block;
    for (const auto& [a, z] : tile_.runs) need_range(a / l * l, limit(z));
    if (r_.block_head <= 0) return;
    const int64_t last = limit(tile_.max);
    for (int64_t start = 0; start <= last; start += l) {
      const int64_t head_end = std::min(start + std::min(r_.block_head, l) - 1, last);
      if (r_.block_head >= 16) {
        need_range(start, head_end);
      } else {
        for (int64_t j = start; j <= head_end; ++j) need_column(j);
      }
    }
  }

  void collect_diagonals() {
    const int64_t period = r_.diagonal_period;
    std::vector<int64_t> last_row(period, -1);  // per residue, the last row of the tile
    for (int64_t p : tile_.pos) last_row[p % period] = std::max(last_row[p % period], p);
    for (const Band& b : spec_.cols.bands()) {
      if (b.step % period == 0) {
        const int64_t row = last_row[b.orig % period];
        if (row >= 0) need_on_band(b, b.orig, limit(row));
      } else {
        need_on_band(b, b.orig, limit(tile_.max));
      }
    }
  }

  void collect_slashes() {
    const std::vector<int64_t>& d = *spec_.slashes;
    for (size_t k = 0; k < d.size();) {
      size_t e = k;  // group consecutive distances [d[k], d[e]]
      while (e + 1 < d.size() && d[e + 1] == d[e] + 1) ++e;
      const int64_t d_lo = std::max(d[k], r_.min_distance), d_hi = d[e];
      if (d_lo <= d_hi) {
        for (const auto& [a, z] : tile_.runs) need_range(a - d_hi, z - d_lo);
      }
      k = e + 1;
    }
  }

  void collect_grid_lines() {
    if (r_.grid_vline) need_phase(r_.grid_phase, limit(tile_.max));
    if (r_.grid_slash) {
      // Per phase of the tile's visual rows, the last of them; the phases met, ascending.
      last_row_.resize(r_.grid_stride, -1);
      phases_met_.clear();
      for_each_row_phase([&](int64_t ph, int64_t last) {
        if (ph < 0) return;
        if (last_row_[ph] < 0) phases_met_.push_back(ph);
        last_row_[ph] = std::max(last_row_[ph], last);
      });
      std::sort(phases_met_.begin(), phases_met_.end());
      for (int64_t ph : phases_met_) {
        need_phase(ph, limit(last_row_[ph]));
        last_row_[ph] = -1;
      }
    }
  }

  // ---- emission ------------------------------------------------------------------------------------

  void emit_runs(Pass& pass) {
    sort_mostly_ordered(intervals_);
    std::vector<std::pair<int64_t, int64_t>>& merged = merged_;
    merged.clear();
    for (const auto& iv : intervals_) {
      if (!merged.empty() && iv.first <= merged.back().second) {
        merged.back().second = std::max(merged.back().second, iv.second);
      } else {
        merged.push_back(iv);
      }
    }
    intervals_.swap(merged);  // the merged intervals, which covered() searches
    first_run_ = pass.runs.size();
    for (const auto& [begin, end] : intervals_) {
      if (r_.all && spec_.cols.unit_steps()) {
        emit_ordered_chunks(pass, begin, end);
        continue;
      }
      int band = spec_.cols.band_at(begin);  // the band holding the chunk's first column
      for (int64_t c = begin; c < end;) {
        const int64_t chunks = band_decides_keep_ ? chunks_in_band(c, end, band) : 0;
        if (chunks > 1) {
          c = emit_band_chunks(pass, c, end, chunks, spec_.cols.bands()[band]);
          continue;
        }
        const int64_t c_end = std::min(end, c + plan_.block_n);
        append_run(pass, c, c_end, classify(chunk_cols(c, c_end, band)));
        c = c_end;
      }
    }
  }

  // Adds chunk [begin, end) to the tile's runs, extending the previous run when this chunk continues it
  // with the same mask; chunk boundaries stay block_n apart because only whole chunks are ever followed
  // by another in one interval.
  void append_run(Pass& pass, int64_t begin, int64_t end, ChunkMask mask) const {
    if (pass.runs.size() > first_run_ && pass.runs.back().end == begin && pass.runs.back().mask == mask) {
      pass.runs.back().end = end;
    } else {
      pass.runs.push_back(KeyRun{begin, end, mask});
    }
  }

  // The chunks from column c (up to `end`) that lie inside one band of step >= 1, `band` advanced to
  // the band holding c.
  int64_t chunks_in_band(int64_t c, int64_t end, int& band) const {
    const auto& bands = spec_.cols.bands();
    while (bands[band].logical + bands[band].count <= c) ++band;
    const Band& b = bands[band];
    if (b.step < 1) return 0;
    const int64_t stop = std::min(end, b.logical + b.count);
    const int64_t whole = (stop - c) / plan_.block_n;
    return stop == end && (stop - c) % plan_.block_n != 0 ? whole + 1 : whole;  // a short last chunk
  }

  // Emits `chunks` chunks from column c inside band b at once and returns where they end. Without
  // rule components that depend on where a chunk lies (band_decides_keep_), whether some component keeps
  // every element is the band's alone, and the masks then follow from the chunks' extremes, which ascend
  // with the chunk: kFull needs the chunk to end early enough (a prefix of chunks) and to start at
  // min_col or later (a suffix), so the chunks split into at most three runs, found by bisection.
  int64_t emit_band_chunks(Pass& pass, int64_t c, int64_t end, int64_t chunks, const Band& b) const {
    const int64_t n = plan_.block_n;
    auto chunk_end = [&](int64_t k) { return std::min(end, c + (k + 1) * n); };
    auto chunk_of = [&](int64_t k) {
      ChunkCols cols;
      cols.min = b.orig_at(c + k * n);
      cols.max = b.orig_at(chunk_end(k) - 1);
      cols.band = &b;
      return cols;
    };
    const int64_t stop = chunk_end(chunks - 1);
    if (!keeps_all(chunk_of(0))) {
      append_run(pass, c, stop, ChunkMask::kRule);
      return stop;
    }
    // The first chunk k in [0, chunks] for which pred(k) holds, pred false then true.
    auto first_true = [&](auto pred) {
      int64_t lo = 0, hi = chunks;
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (pred(mid)) hi = mid; else lo = mid + 1;
      }
      return lo;
    };
    const TileRows& T = tile_;
    const int64_t from_min_col = first_true([&](int64_t k) { return chunk_of(k).min >= r_.min_col; });
    const int64_t past_full = first_true([&](int64_t k) {
      const ChunkCols cols = chunk_of(k);
      return !(cols.max <= T.min && T.min - cols.max >= r_.min_distance);
    });
    emit_split_runs(pass, c, end, chunks, from_min_col, past_full);
    return stop;
  }

  // The same for a rule that keeps every key (up to causality and its limits) over columns in position
  // order (IndexMap::unit_steps): a dense pass over a subset of the keys, such as SF-fixed's summary
  // keys. Both splits are then column counts, a bisection of the bands each, however many bands the
  // chunks cross.
  void emit_ordered_chunks(Pass& pass, int64_t c, int64_t end) const {
    const int64_t n = plan_.block_n, chunks = ceil_div(end - c, n);
    const int64_t below_min_col = columns_up_to(r_.min_col - 1);
    const int64_t fully_kept = columns_up_to(tile_.min - r_.min_distance);  // every row keeps these
    const int64_t from_min_col = std::clamp<int64_t>(ceil_div(below_min_col - c, n), 0, chunks);
    const int64_t past_full = fully_kept >= end ? chunks : std::max<int64_t>(0, floor_div(fully_kept - c, n));
    emit_split_runs(pass, c, end, chunks, from_min_col, past_full);
  }

  // How many columns (logical ones from 0) lie at position p or before, for columns in position order.
  int64_t columns_up_to(int64_t p) const {
    const auto& bands = spec_.cols.bands();
    const auto after = std::partition_point(bands.begin(), bands.end(), [&](const Band& b) { return b.orig <= p; });
    if (after == bands.begin()) return 0;
    const Band& b = *(after - 1);
    return b.logical + std::min(b.count, p - b.orig + 1);
  }

  // Chunks from column c: rule-tested below from_min_col, fully kept up to past_full, causal after.
  void emit_split_runs(Pass& pass, int64_t c, int64_t end, int64_t chunks, int64_t from_min_col,
                       int64_t past_full) const {
    const int64_t n = plan_.block_n;
    const int64_t full_end = std::max(from_min_col, past_full);
    auto emit = [&](int64_t k0, int64_t k1, ChunkMask mask) {
      if (k0 < k1) append_run(pass, c + k0 * n, std::min(end, c + k1 * n), mask);
    };
    emit(0, from_min_col, ChunkMask::kRule);
    emit(from_min_col, full_end, ChunkMask::kFull);
    emit(full_end, chunks, ChunkMask::kCausal);
  }

  void emit_columns(Pass& pass) {
    sort_mostly_ordered(gathered_);
    gathered_.erase(std::unique(gathered_.begin(), gathered_.end()), gathered_.end());
    for (int64_t j : gathered_) {
      const int64_t logical = spec_.cols.to_logical(j);
      if (logical < 0 || covered(logical)) continue;
      pass.columns.push_back(j);
    }
  }

  bool covered(int64_t logical) const {
    auto it = std::upper_bound(intervals_.begin(), intervals_.end(), logical,
                               [](int64_t x, const std::pair<int64_t, int64_t>& iv) { return x < iv.first; });
    return it != intervals_.begin() && logical < (it - 1)->second;
  }

  // Columns [begin, end) of the pass's column map; `band` is a band at or before the one holding
  // `begin`, advanced to it (chunks come in ascending order, so no search is needed).
  ChunkCols chunk_cols(int64_t begin, int64_t end, int& band) const {
    const auto& bands = spec_.cols.bands();
    auto past = [&](int b, int64_t x) { return bands[b].logical + bands[b].count <= x; };
    while (past(band, begin)) ++band;
    int last = band;
    while (past(last, end - 1)) ++last;
    const int first = band;
    ChunkCols c;
    c.min = INT64_MAX;
    c.max = INT64_MIN;
    for (int b = first; b <= last; ++b) {
      const int64_t lo = std::max(begin, bands[b].logical);
      const int64_t hi = std::min(end, bands[b].logical + bands[b].count) - 1;
      c.min = std::min(c.min, bands[b].orig_at(lo));
      c.max = std::max(c.max, bands[b].orig_at(hi));
    }
    if (first == last) c.band = &bands[first];
    return c;
  }

  // kFull / kCausal when one component provably keeps every element (conservative: kRule otherwise).
  ChunkMask classify(const ChunkCols& c) const {
    if (!keeps_all(c)) return ChunkMask::kRule;
    const TileRows& T = tile_;
    if (c.max <= T.min && T.min - c.max >= r_.min_distance && c.min >= r_.min_col) return ChunkMask::kFull;
    if (c.min >= r_.min_col) return ChunkMask::kCausal;
    return ChunkMask::kRule;
  }

  // Whether one component of the rule provably keeps every element of the chunk for the tile's rows
  // (causality and the rule's constraints aside).
  bool keeps_all(const ChunkCols& c) const {
    const TileRows& T = tile_;
    bool keeps_all = r_.all || c.max < r_.sink || T.max - c.min < r_.local ||
                     T.max < r_.dense_rows_before || T.min >= r_.dense_rows_from;
    if (!keeps_all && r_.block > 0) {
      const int64_t blk = T.min / r_.block;
      keeps_all = T.max / r_.block == blk && c.min / r_.block == blk && c.max / r_.block == blk;
    }
    if (!keeps_all && r_.slash_words >= 0 && T.runs.size() == 1 && c.band && c.band->step == 1) {
      keeps_all = all_bits(r_.slash_words, std::max<int64_t>(0, T.min - c.max), T.max - c.min);
    }
    if (!keeps_all && r_.grid_stride > 0 && c.band && c.band->step == r_.grid_stride) {
      const int64_t col_phase = col_band_phase_[c.band - spec_.cols.bands().data()];
      keeps_all = (r_.grid_vline && col_phase == r_.grid_phase) ||
                  (r_.grid_hline && T.grid_phase == r_.grid_phase && T.grid_phase >= 0) ||
                  (r_.grid_slash && T.grid_phase >= 0 && T.grid_phase == col_phase);
    }
    if (!keeps_all && r_.diagonal_period > 0 && T.residue >= 0 && c.band &&
        c.band->step % r_.diagonal_period == 0) {
      keeps_all = c.band->orig % r_.diagonal_period == T.residue;
    }
    return keeps_all;
  }

  bool all_bits(int64_t offset, int64_t lo, int64_t hi) const {
    const uint64_t* words = words_.data() + offset;
    for (int64_t b = lo; b <= hi; ++b) {
      if (!test_bit(words, b)) return false;
    }
    return true;
  }

  const SparsePlan& plan_;
  const std::vector<uint64_t>& words_;
  const PassSpec& spec_;
  const MaskRule& r_;
  const bool needs_row_runs_;  // whether the rule's requirements or classification use TileRows::runs
  const bool needs_row_positions_;  // whether they use TileRows::pos (otherwise it stays empty)
  // Whether keeps_all() depends on a chunk's band alone (no sink, window, block or slash bitmap).
  const bool band_decides_keep_;
  size_t first_run_ = 0;  // emit_runs: the tile's first run
  TileRows tile_;
  std::vector<int64_t> last_row_, phases_met_;  // grid passes with slash lines: collect_grid_lines' scratch
  std::vector<int64_t> col_band_phase_;  // grid passes: phase of each column band's first key
  std::vector<std::vector<size_t>> stride_bands_by_phase_;  // grid passes: bands of step grid_stride
  std::vector<size_t> other_bands_;                         // grid passes: the other column bands
  std::vector<std::pair<int64_t, int64_t>> intervals_;
  std::vector<std::pair<int64_t, int64_t>> merged_;  // emit_runs' scratch
  std::vector<int64_t> gathered_;
};

// Builds one head's passes. Bitmaps go to the assembler's own word list (offsets relative to it), so
// heads can be built in parallel and their words concatenated afterwards.
class PlanAssembler {
 public:
  PlanAssembler(const SequenceLayout& layout, const SparsePlan& plan, bool compact_passes)
      : layout_(layout), plan_(plan), compact_passes_(compact_passes) {}
  std::vector<uint64_t>& words() { return words_; }

  HeadPlan head(const ResolvedHead& head) {
    HeadPlan out;
    const Segments all = {{0, layout_.length()}};
    switch (head.boundary) {
      case BoundaryKind::kNone:
      case BoundaryKind::kK: add_pattern(out, head.patterns[0][0], all, all, "all"); break;
      case BoundaryKind::kQ:
        for (Modality m : layout_.modalities()) {
          add_pattern(out, head.patterns[int(m)][0], segments_of(layout_, m), all,
                      std::string(modality_name(m)) + " rows");
        }
        break;
      case BoundaryKind::k2D:
        for (Modality m : layout_.modalities()) {
          for (Modality n : layout_.modalities()) {
            add_pattern(out, head.patterns[int(m)][int(n)], segments_of(layout_, m), segments_of(layout_, n),
                        std::string(modality_name(m)) + "->" + modality_name(n));
          }
        }
        break;
    }
    out.description = describe_resolved(head, layout_);
    return out;
  }

 private:
  void add_pattern(HeadPlan& out, const ResolvedPattern& p, const Segments& rows, const Segments& cols,
                   const std::string& scope) {
    const PatternParams& c = p.params;
    MaskRule rule;
    switch (c.kind) {
      case PatternKind::kDense: rule.all = true; break;
      case PatternKind::kTriShape: rule.dense_rows_from = layout_.length() - c.last_rows; [[fallthrough]];
      case PatternKind::kAShape:
        rule.sink = c.sink;
        rule.local = c.local;
        break;
      case PatternKind::kSfFixed: return add_fixed(out, p, rows, cols, scope);
      case PatternKind::kSfStrided: return add_strided(out, p, rows, cols, scope);
      case PatternKind::kVerticalSlash: return add_vertical_slash(out, p, rows, cols, scope);
      case PatternKind::kGrid: return add_grid(out, p, rows, cols, scope);
    }
    add(out, PassSpec{IndexMap::of_segments(rows), IndexMap::of_segments(cols), rule,
                      scope + ": " + pattern_name(c.kind)});
  }

  // SF-fixed as one pass (PassForm::kBlockSummary), so that each row's softmax is complete in one tile,
  // with no partial state written and merged again. Its columns are pieces ascending in position: the
  // summary keys (the first c of every block), phase-major while there are few (a band of step
  // `block` per phase, which a chunk's loads index without a search) or in position order (a band per
  // block, which a chunk crosses at most 64 / 9 + 1 of), then the blocks' other keys.
  void add_fixed(HeadPlan& out, const ResolvedPattern& p, const Segments& rows, const Segments& cols,
                 const std::string& scope) {
    const int64_t l = p.index.block, c = std::min(p.params.block_head, l);
    IndexMap summary;
    std::vector<int64_t> piece_bands;
    const bool phase_major = c < l && c <= kMaxSummaryPhases;
    if (!phase_major) {
      summary = c >= l ? IndexMap::of_segments(cols) : IndexMap::blocks(cols, l, 0, c);
      piece_bands.push_back(0);
    }
    for (int64_t phase = 0; phase_major && phase < c; ++phase) {
      Segments from_phase;  // each column segment from its first key of this phase
      for (const auto& [begin, end] : cols) {
        const int64_t first = begin + (phase - begin % l + l) % l;  // begin >= 0
        if (first < end) from_phase.emplace_back(first, end);
      }
      piece_bands.push_back(static_cast<int64_t>(summary.bands().size()));
      summary = IndexMap::concat(summary, IndexMap::grid_line(from_phase, l, 0), /*merge=*/false);
    }
    piece_bands.push_back(static_cast<int64_t>(summary.bands().size()));  // the other keys
    const IndexMap others = c < l ? IndexMap::blocks(cols, l, c) : IndexMap();
    MaskRule rule;
    rule.block = l;
    rule.block_head = c;
    const PassSpec spec{IndexMap::of_segments(rows), IndexMap::concat(summary, others, /*merge=*/false), rule,
                        scope + ": sf_fixed"};
    if (spec.rows.empty() || spec.cols.empty()) return;
    piece_bands.push_back(static_cast<int64_t>(spec.cols.bands().size()));
    Pass pass = compact_pass(spec, PassForm::kBlockSummary);
    pass.piece_bands = std::move(piece_bands);
    out.passes.push_back(compact_passes_ ? std::move(pass) : listed(pass));
  }

  void add_strided(HeadPlan& out, const ResolvedPattern& p, const Segments& rows, const Segments& cols,
                   const std::string& scope) {
    const int64_t l = p.index.block;
    MaskRule local;
    local.local = l;
    add(out, PassSpec{IndexMap::of_segments(rows), IndexMap::of_segments(cols), local, scope + ": local window"});
    MaskRule diagonals;
    diagonals.diagonal_period = l;
    diagonals.min_distance = l;
    const PassSpec spec{IndexMap::phase_major(rows, l, false), IndexMap::phase_major(cols, l, false), diagonals,
                        scope + ": strided diagonals (phase-major)"};
    if (!add_grid_lines(out, spec, PhaseOrigin::kPosition, l)) add(out, spec);
  }

  void add_vertical_slash(HeadPlan& out, const ResolvedPattern& p, const Segments& rows,
                          const Segments& cols, const std::string& scope) {
    MaskRule rule;
    rule.vertical_words = add_bitmap(p.index.verticals);
    rule.slash_words = add_bitmap(p.index.slashes);
    PassSpec spec{IndexMap::of_segments(rows), IndexMap::of_segments(cols), rule, scope + ": vertical-slash"};
    spec.verticals = &p.index.verticals;
    spec.slashes = &p.index.slashes;
    if (compact_passes_ && rows.size() == 1 && cols.size() == 1) return add_compact_vertical_slash(out, spec);
    add(out, spec);
  }

  // A Vertical-Slash pass whose tiles derive their work from the two lists (tile_work).
  void add_compact_vertical_slash(HeadPlan& out, const PassSpec& spec) {
    if (spec.rows.empty() || spec.cols.empty()) return;
    const Band& cols = spec.cols.bands().front();
    auto index = std::make_shared<VerticalSlashIndex>();
    for (int64_t j : *spec.verticals) {
      if (j >= cols.orig && j <= cols.orig_last()) index->verticals.push_back(j);
    }
    sort_mostly_ordered(index->verticals);
    index->verticals.erase(std::unique(index->verticals.begin(), index->verticals.end()), index->verticals.end());
    std::vector<int64_t> distances;
    for (int64_t d : *spec.slashes) {
      if (d >= 0 && d < layout_.length()) distances.push_back(d);
    }
    sort_mostly_ordered(distances);
    for (int64_t d : distances) {
      if (!index->slash_groups.empty() && d <= index->slash_groups.back().hi + 1) {
        index->slash_groups.back().hi = std::max(index->slash_groups.back().hi, d);
      } else {
        index->slash_groups.push_back({d, d});
      }
    }
    Pass pass = compact_pass(spec, PassForm::kVerticalSlash);
    pass.vertical_slash = std::move(index);
    out.passes.push_back(std::move(pass));
  }

  // A compact pass with its tiles' work listed (what PlanOptions::compact_passes off asks for).
  Pass listed(const Pass& compact) const {
    Pass pass;
    pass.rows = compact.rows;
    pass.cols = compact.cols;
    pass.rule = compact.rule;
    pass.label = compact.label;
    pass.tiles = compact.tiles;
    pass.run_offsets.assign(1, 0);
    pass.column_offsets.assign(1, 0);
    std::vector<KeyRun> runs;
    std::vector<int64_t> columns;
    for (int64_t t = 0; t < pass.tiles; ++t) {
      tile_work(plan_, compact, t, runs, columns);
      pass.runs.insert(pass.runs.end(), runs.begin(), runs.end());
      pass.columns.insert(pass.columns.end(), columns.begin(), columns.end());
      pass.run_offsets.push_back(static_cast<int64_t>(pass.runs.size()));
      pass.column_offsets.push_back(static_cast<int64_t>(pass.columns.size()));
    }
    return pass;
  }

  // A pass whose tiles derive their work (Pass::form): only its maps, rule and tile count.
  Pass compact_pass(const PassSpec& spec, PassForm form) const {
    Pass pass;
    pass.rows = spec.rows;
    pass.cols = spec.cols;
    pass.rule = spec.rule;
    pass.label = spec.label;
    pass.tiles = (spec.rows.size() + plan_.block_m - 1) / plan_.block_m;
    pass.form = form;
    return pass;
  }

  // One consecutive range of positions (a single band of step 1).
  static bool consecutive(const IndexMap& map) { return map.bands().size() == 1 && map.bands().front().step == 1; }

  void add_grid(HeadPlan& out, const ResolvedPattern& p, const Segments& rows, const Segments& cols,
                const std::string& scope) {
    const PatternParams& c = p.params;
    MaskRule base;
    if (!layout_.has_visual()) {
      base.all = true;  // no visual region: every row lies outside it
      add(out, PassSpec{IndexMap::of_segments(rows), IndexMap::of_segments(cols), base, scope + ": grid (dense)"});
      return;
    }
    const int64_t begin = layout_.visual_begin(), end = layout_.visual_end();
    base.sink = begin;
    base.local = c.grid_local;
    base.dense_rows_before = begin;
    base.dense_rows_from = end;
    const PassSpec ranges{IndexMap::of_segments(rows), IndexMap::of_segments(cols), base,
                          scope + ": grid sinks, local window, dense text rows"};
    const Segments visual = visual_segments(layout_);
    const Segments region = {{begin, end}};
    if (compact_passes_ && c.vline && !c.hline && !c.slash && consecutive(ranges.rows) && consecutive(ranges.cols) &&
        !intersect(rows, region).empty()) {
      IndexMap line = IndexMap::grid_line(intersect(cols, visual), p.index.stride, p.index.phase);
      if (!line.empty()) return add_grid_with_line(out, p, ranges, std::move(line));
    }
    add(out, ranges);
    if (!(c.vline || c.hline || c.slash)) return;
    // Visual rows and keys go phase-major so lines become dense bands. Text inside the region is
    // appended in order: its rows meet vertical lines, and horizontal lines reach its keys.
    const int64_t s = p.index.stride;
    IndexMap row_map = IndexMap::phase_major(intersect(rows, visual), s, true);
    if (c.vline) row_map = IndexMap::concat(row_map, IndexMap::of_segments(subtract(intersect(rows, region), visual)));
    IndexMap col_map = IndexMap::phase_major(intersect(cols, visual), s, true);
    if (c.hline) col_map = IndexMap::concat(col_map, IndexMap::of_segments(subtract(intersect(cols, region), visual)));
    if (row_map.empty() || col_map.empty()) return;
    MaskRule lines;
    lines.min_distance = c.grid_local;
    lines.min_col = begin;
    lines.grid_stride = s;
    lines.grid_phase = p.index.phase;
    lines.grid_vline = c.vline;
    lines.grid_hline = c.hline;
    lines.grid_slash = c.slash;
    const PassSpec spec{row_map, col_map, lines, scope + ": grid lines (phase-major)"};
    if (!add_grid_lines(out, spec, PhaseOrigin::kVisualSpan, p.index.stride)) add(out, spec);
  }

  // How a compact grid line pass counts the phase of a position x, for a period l: (x - start of x's
  // visual span) % l, with none for text (a grid); or x % l (SF-strided).
  enum class PhaseOrigin { kVisualSpan, kPosition };

  // A pass of grid lines (or SF-strided's diagonals) over phase-major rows and keys as a compact grid
  // line pass, when compact passes are on and its maps have the structure one needs (phase_starts);
  // false otherwise.
  bool add_grid_lines(HeadPlan& out, const PassSpec& spec, PhaseOrigin origin, int64_t period) {
    if (!compact_passes_ || spec.rows.empty() || spec.cols.empty()) return false;
    // The phase tables take O(period): with more phases than positions (a period longer than the
    // sequence), listing the few runs costs less.
    if (period > layout_.length()) return false;
    Pass pass = compact_pass(spec, PassForm::kGridLine);
    pass.phase_rows = phase_starts(spec.rows, origin, period, /*logical=*/true);
    pass.phase_col_bands = phase_starts(spec.cols, origin, period, /*logical=*/false);
    if (pass.phase_rows.empty() || pass.phase_col_bands.empty()) return false;
    out.passes.push_back(std::move(pass));
    return true;
  }

  // A grid of vertical lines only over consecutive rows and keys, as one compact range pass: the rule
  // adds the line to the sinks, window and dense rows (within the window the line adds nothing, so no
  // minimum distance is needed), and each tile visits the line's keys below its window (Pass::lines).
  void add_grid_with_line(HeadPlan& out, const ResolvedPattern& p, PassSpec spec, IndexMap line) {
    spec.rule.grid_stride = p.index.stride;
    spec.rule.grid_phase = p.index.phase;
    spec.rule.grid_vline = true;
    spec.label += ", vertical line";
    Pass pass = compact_pass(spec, PassForm::kRanges);
    pass.lines = std::move(line);
    out.passes.push_back(std::move(pass));
  }

  // Where each phase q in [0, period) starts in a phase-major map, and at [period] where the text after
  // its phased positions starts: as a logical index when `logical`, else as a band index (what a
  // compact grid line pass holds, GridTileSections). Empty unless each band lies at one phase (and in
  // one visual span), the phases ascend, text bands come last, and within a phase, and among the text,
  // the bands ascend in original order (as the line walk reads them).
  std::vector<int64_t> phase_starts(const IndexMap& map, PhaseOrigin origin, int64_t period, bool logical) const {
    const int64_t phases = period;
    std::vector<int64_t> starts(phases + 1, -1);
    const auto& bands = map.bands();
    int64_t phase = 0;  // the phase whose start comes next; `phases` once in the text
    for (size_t b = 0; b < bands.size(); ++b) {
      const Band& band = bands[b];
      const int64_t p = band_phase_of(band, origin, period);
      const int64_t band_phase = p == -1 ? phases : p;
      if (p == kMixedPhases || band_phase + 1 < phase) return {};
      const bool same_section = b > 0 && band_phase + 1 == phase;
      if (same_section && band.orig <= bands[b - 1].orig_last()) return {};
      for (; phase <= band_phase; ++phase) starts[phase] = logical ? band.logical : static_cast<int64_t>(b);
    }
    for (; phase <= phases; ++phase) starts[phase] = logical ? map.size() : static_cast<int64_t>(bands.size());
    return starts;
  }

  // The phase every position of a band has (PhaseOrigin); -1 when none has one, kMixedPhases when they
  // differ.
  int64_t band_phase_of(const Band& band, PhaseOrigin origin, int64_t period) const {
    switch (origin) {
      case PhaseOrigin::kVisualSpan:
        return chunk_key_phase<int64_t>(plan_.visual_spans(), period, band.orig, band.orig_last(), band.step);
      case PhaseOrigin::kPosition:
        return band.step % period == 0 || band.count == 1 ? band.orig % period : kMixedPhases;
    }
    return kMixedPhases;
  }

  int64_t add_bitmap(const std::vector<int64_t>& bits) {
    const int64_t offset = static_cast<int64_t>(words_.size());
    words_.resize(offset + (layout_.length() + 63) / 64 + 1, 0);
    for (int64_t b : bits) {
      if (b >= 0 && b < layout_.length()) words_[offset + (b >> 6)] |= uint64_t(1) << (b & 63);
    }
    return offset;
  }

  void add(HeadPlan& out, const PassSpec& spec) {
    if (spec.rows.empty() || spec.cols.empty()) return;
    if (compact_passes_ && is_range_rule(spec.rule) && consecutive(spec.rows) && consecutive(spec.cols)) {
      out.passes.push_back(compact_pass(spec, PassForm::kRanges));
      return;
    }
    out.passes.push_back(PassBuilder(plan_, words_, spec).build());
  }

  const SequenceLayout& layout_;
  const SparsePlan& plan_;
  const bool compact_passes_;
  std::vector<uint64_t> words_;
};

}  // namespace

SparsePlan build_plan(const SequenceLayout& layout, const std::vector<ResolvedHead>& heads,
                      const PlanOptions& options) {
  if (options.block_m <= 0 || options.block_n <= 0) throw std::invalid_argument("plan: tile sizes must be positive");
  SparsePlan plan;
  plan.length = layout.length();
  plan.block_m = options.block_m;
  plan.block_n = options.block_n;
  for (const Span& s : layout.spans()) {
    if (!is_visual(s.modality)) continue;
    plan.visual_starts.push_back(s.start);
    plan.visual_ends.push_back(s.end());
  }
  // Heads resolved alike (every head of a static pattern, often) are built once; the others copy that
  // head's plan, whose maps and lists they then share (IndexMap), and its bitmaps.
  const std::vector<size_t> first_alike =
      first_equals(heads.size(), [&](size_t a, size_t b) { return heads[a] == heads[b]; });
  std::vector<size_t> distinct;
  for (size_t h = 0; h < heads.size(); ++h) {
    if (first_alike[h] == h) distinct.push_back(h);
  }
  plan.heads.resize(heads.size());
  std::vector<std::vector<uint64_t>> words(heads.size());
  parallel_for(distinct.size(), [&](size_t x) {
    const size_t h = distinct[x];
    PlanAssembler assembler(layout, plan, options.compact_passes);
    plan.heads[h] = assembler.head(heads[h]);
    words[h] = std::move(assembler.words());
  });
  for (size_t h : distinct) {  // concatenate the bitmaps, rebasing the offsets
    const int64_t base = static_cast<int64_t>(plan.words.size());
    plan.words.insert(plan.words.end(), words[h].begin(), words[h].end());
    for (Pass& pass : plan.heads[h].passes) {
      if (pass.rule.vertical_words >= 0) pass.rule.vertical_words += base;
      if (pass.rule.slash_words >= 0) pass.rule.slash_words += base;
    }
  }
  for (size_t h = 0; h < heads.size(); ++h) {
    if (first_alike[h] != h) plan.heads[h] = plan.heads[first_alike[h]];
  }
  return plan;
}

std::string describe_resolved(const ResolvedPattern& p) {
  const PatternParams& c = p.params;
  switch (c.kind) {
    case PatternKind::kSfFixed:
      return "sf_fixed(block=" + std::to_string(p.index.block) + ",block_head=" + std::to_string(c.block_head) + ")";
    case PatternKind::kSfStrided: return "sf_strided(block=" + std::to_string(p.index.block) + ")";
    case PatternKind::kVerticalSlash:
      return "vertical_slash(verticals=" + std::to_string(p.index.verticals.size()) +
             ",slashes=" + std::to_string(p.index.slashes.size()) + ")";
    case PatternKind::kGrid:
      return "grid(stride=" + std::to_string(p.index.stride) + ",phase=" + std::to_string(p.index.phase) +
             ",lines=" + (c.vline ? "v" : "") + (c.hline ? "h" : "") + (c.slash ? "s" : "") +
             ",local=" + std::to_string(c.grid_local) + ")";
    default: return c.describe();
  }
}

std::string describe_resolved(const ResolvedHead& head, const SequenceLayout& layout) {
  switch (head.boundary) {
    case BoundaryKind::kNone: return describe_resolved(head.patterns[0][0]);
    case BoundaryKind::kK: return describe_resolved(head.patterns[0][0]) + " [k-boundary]";
    case BoundaryKind::kQ: {
      std::string out = "q-boundary{";
      for (Modality m : layout.modalities()) {
        out += std::string(modality_name(m)) + ": " + describe_resolved(head.patterns[int(m)][0]) + "; ";
      }
      return out + "}";
    }
    case BoundaryKind::k2D: {
      std::string out = "2d-boundary{";
      for (Modality m : layout.modalities()) {
        for (Modality n : layout.modalities()) {
          out += std::string(modality_name(m)) + "->" + modality_name(n) + ": " +
                 describe_resolved(head.patterns[int(m)][int(n)]) + "; ";
        }
      }
      return out + "}";
    }
  }
  return "";
}

}  // namespace mmi
