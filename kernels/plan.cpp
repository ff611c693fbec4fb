#include "kernels/plan.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "kernels/block_summary_walk.h"
#include "kernels/grid_line_walk.h"
#include "kernels/parallel.h"
#include "kernels/range_walk.h"
#include "kernels/rule_bits.h"
#include "kernels/vertical_slash_walk.h"

namespace mmi {

IndexMap IndexMap::identity(int64_t n) {
  IndexMap map;
  map.append(0, 1, n);
  return map;
}

IndexMap IndexMap::of_segments(const std::vector<std::pair<int64_t, int64_t>>& segments) {
  IndexMap map;
  for (const auto& [begin, end] : segments) map.append(begin, 1, end - begin);
  return map;
}

IndexMap IndexMap::phase_major(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t stride,
                               bool relative_to_segment) {
  if (stride <= 0) throw std::invalid_argument("phase_major: stride must be positive");
  IndexMap map;
  for (int64_t p = 0; p < stride; ++p) {
    for (const auto& [begin, end] : segments) {
      const int64_t origin = relative_to_segment ? begin : 0;
      // first x >= begin with (x - origin) % stride == p
      const int64_t first = begin + ((p - (begin - origin)) % stride + stride) % stride;
      if (first < end) map.append(first, stride, (end - first + stride - 1) / stride);
    }
  }
  return map;
}

IndexMap IndexMap::grid_line(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t stride,
                             int64_t phase) {
  if (stride <= 0 || phase < 0 || phase >= stride) throw std::invalid_argument("grid_line: needs 0 <= phase < stride");
  IndexMap map;
  for (const auto& [begin, end] : segments) {
    if (begin + phase < end) map.append(begin + phase, stride, (end - begin - phase + stride - 1) / stride);
  }
  return map;
}

IndexMap IndexMap::blocks(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t block, int64_t from,
                          int64_t to) {
  if (block <= 0) throw std::invalid_argument("blocks: block must be positive");
  if (to < 0) to = block;
  if (from < 0 || from > to || to > block) throw std::invalid_argument("blocks: needs 0 <= from <= to <= block");
  IndexMap map;
  for (const auto& [begin, end] : segments) {
    for (int64_t start = begin / block * block; start < end; start += block) {  // begin >= 0
      const int64_t lo = std::max(begin, start + from), hi = std::min(end, start + to);
      map.append(lo, 1, hi - lo, /*merge=*/false);  // nothing when lo >= hi
    }
  }
  return map;
}

IndexMap IndexMap::concat(const IndexMap& first, const IndexMap& second, bool merge) {
  IndexMap map = first;
  for (const Band& b : second.bands()) map.append(b.orig, b.step, b.count, merge);
  return map;
}

const std::vector<Band>& IndexMap::no_bands() {
  static const std::vector<Band> kNone;
  return kNone;
}

bool operator==(const IndexMap& a, const IndexMap& b) {
  if (a.bands_ == b.bands_) return true;
  const std::vector<Band>& x = a.bands();
  const std::vector<Band>& y = b.bands();
  return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](const Band& u, const Band& v) {
           return u.logical == v.logical && u.orig == v.orig && u.step == v.step && u.count == v.count;
         });
}

void IndexMap::append(int64_t orig, int64_t step, int64_t count, bool merge) {
  if (count <= 0) return;
  if (!bands_) {
    bands_ = std::make_shared<std::vector<Band>>();
  } else if (bands_.use_count() > 1) {
    bands_ = std::make_shared<std::vector<Band>>(*bands_);
  }
  std::vector<Band>& bands = *bands_;
  if (!bands.empty()) {
    Band& last = bands.back();
    // Merge a step-1 band that continues the previous one (keeps identity-like maps a single band).
    if (merge && step == 1 && last.step == 1 && last.orig + last.count == orig) {
      last.count += count;
      size_ += count;
      return;
    }
    if (step != 1 || orig < last.orig_last()) unit_steps_ = false;
  } else if (step != 1) {
    unit_steps_ = false;
  }
  bands.push_back(Band{size_, orig, step, count});
  size_ += count;
}

int IndexMap::band_at(int64_t logical) const {
  const std::vector<Band>& bands = this->bands();
  auto it = std::upper_bound(bands.begin(), bands.end(), logical,
                             [](int64_t x, const Band& b) { return x < b.logical; });
  return static_cast<int>(it - bands.begin()) - 1;
}

int64_t IndexMap::to_logical(int64_t orig) const {
  auto lookup = [orig](const Band& b) -> int64_t {
    if (orig < b.orig || (orig - b.orig) % b.step != 0) return -1;
    const int64_t k = (orig - b.orig) / b.step;
    return k < b.count ? b.logical + k : -1;
  };
  const std::vector<Band>& bands = this->bands();
  if (unit_steps_) {
    auto it = std::upper_bound(bands.begin(), bands.end(), orig, [](int64_t x, const Band& b) { return x < b.orig; });
    return it == bands.begin() ? -1 : lookup(*(it - 1));
  }
  for (const Band& b : bands) {
    const int64_t found = lookup(b);
    if (found >= 0) return found;
  }
  return -1;
}

void IndexMap::gather(int64_t begin, int64_t end, std::vector<int64_t>& out) const {
  if (begin >= end) return;
  const std::vector<Band>& bands = this->bands();
  for (int b = band_at(begin); b < static_cast<int>(bands.size()) && bands[b].logical < end; ++b) {
    const Band& band = bands[b];
    const int64_t lo = std::max(begin, band.logical);
    const int64_t hi = std::min(end, band.logical + band.count);
    for (int64_t x = lo; x < hi; ++x) out.push_back(band.orig_at(x));
  }
}

double PlanStats::flops_ratio(int64_t length) const {
  // computed elements * 4d over heads * 2 N^2 d: the d cancels, heads are folded into causal_elements.
  if (causal_elements == 0) return 0.0;
  const double heads = double(causal_elements) / (double(length) * (length + 1) / 2);
  return 4.0 * computed_elements / (heads * 2.0 * double(length) * length);
}

PlanStats& PlanStats::operator+=(const PlanStats& o) {
  causal_elements += o.causal_elements;
  kept_elements += o.kept_elements;
  computed_elements += o.computed_elements;
  tiles += o.tiles;
  return *this;
}

namespace {

// The inclusive original rows of tile t of a compact pass (one row band of step 1).
std::pair<int64_t, int64_t> compact_tile_rows(const SparsePlan& plan, const Pass& pass, int64_t t) {
  const Band& rows = pass.rows.bands().front();
  return {rows.orig + t * plan.block_m, rows.orig + std::min(rows.count, (t + 1) * plan.block_m) - 1};
}

void vertical_slash_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs,
                         std::vector<int64_t>& columns) {
  const VerticalSlashIndex& index = *pass.vertical_slash;
  const auto [row_min, row_max] = compact_tile_rows(plan, pass, t);
  const Band& cols = pass.cols.bands().front();
  const int64_t key_max = std::min(row_max, cols.orig_last());
  SlashRunWalk<int64_t> walk(row_min, row_max, cols.orig, key_max, 0,
                             static_cast<int64_t>(index.slash_groups.size()));
  int64_t begin = 0, end = 0;
  while (walk.next([&](int64_t g) { return index.slash_groups[g]; }, begin, end)) {
    runs.push_back(KeyRun{begin - cols.orig, end + 1 - cols.orig, ChunkMask::kRule});
  }
  const uint64_t* slashes = plan.words.data() + pass.rule.slash_words;
  for (int64_t j : index.verticals) {
    if (j > key_max) break;
    columns.push_back(vertical_covered(slashes, row_min, row_max, j) ? -1 : j);
  }
}

// The logical range [first, last) of a range pass's line keys (Pass::lines) that tile t visits: those
// in its runs' gap (range_line_gap); empty without lines.
std::pair<int64_t, int64_t> range_line_keys(const SparsePlan& plan, const Pass& pass, int64_t t) {
  if (pass.lines.empty()) return {0, 0};
  const auto [row_min, row_max] = compact_tile_rows(plan, pass, t);
  const Band& cols = pass.cols.bands().front();
  int64_t lo = 0, hi = -1;
  if (!range_line_gap<int64_t>(pass.rule, row_min, row_max, cols.orig, cols.orig_last(), lo, hi)) return {0, 0};
  const auto& bands = pass.lines.bands();
  auto keys_to = [&](int64_t limit) {
    return grid_line_keys<int64_t>([&](int64_t b) { return bands[b]; }, 0, static_cast<int64_t>(bands.size()), limit);
  };
  return {keys_to(lo - 1), keys_to(hi)};
}

// Each run chunk by chunk, consecutive chunks of one mask joined: the runs a listed pass would hold;
// then the line keys in the runs' gap as gathered columns.
void range_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs,
                std::vector<int64_t>& columns) {
  const auto [row_min, row_max] = compact_tile_rows(plan, pass, t);
  const Band& cols = pass.cols.bands().front();
  int64_t begin[2], end[2];
  const int count = range_tile_runs<int64_t>(pass.rule, row_min, row_max, cols.orig, cols.orig_last(), begin, end);
  for (int k = 0; k < count; ++k) {
    for (int64_t c = begin[k]; c <= end[k]; c += plan.block_n) {
      const int64_t c_last = std::min(end[k], c + plan.block_n - 1);
      const auto mask = static_cast<ChunkMask>(range_chunk_mask<int64_t>(pass.rule, row_min, row_max, c, c_last));
      if (c != begin[k] && runs.back().mask == mask) {
        runs.back().end = c_last + 1 - cols.orig;
      } else {
        runs.push_back(KeyRun{c - cols.orig, c_last + 1 - cols.orig, mask});
      }
    }
  }
  const auto [first, last] = range_line_keys(plan, pass, t);
  if (first < last) pass.lines.gather(first, last, columns);
}

// The original rows [lowest, highest] of tile t of any pass.
std::pair<int64_t, int64_t> tile_row_extent(const SparsePlan& plan, const Pass& pass, int64_t t) {
  const auto& bands = pass.rows.bands();
  int64_t lowest = 0, highest = -1;
  band_extent<int64_t>([&](int64_t b) { return bands[b]; }, static_cast<int64_t>(bands.size()), t * plan.block_m,
                       std::min(pass.rows.size(), (t + 1) * plan.block_m) - 1, lowest, highest);
  return {lowest, highest};
}

// Calls section(begin, end, keeps_all) for each grid section tile t of a compact grid line pass visits,
// in order, with the logical key columns [begin, end) of its run and whether every row of the tile
// keeps them (GridTileSections); sections the tile reaches no key of are skipped.
template <typename SectionFn>
void for_each_grid_section(const SparsePlan& plan, const Pass& pass, int64_t t, SectionFn section) {
  const MaskRule& r = pass.rule;
  const auto& rows = pass.rows.bands();
  const auto& cols = pass.cols.bands();
  auto row_start = [&](int64_t q) { return pass.phase_rows[q]; };
  const int64_t first = t * plan.block_m, last = std::min(pass.rows.size(), (t + 1) * plan.block_m) - 1;
  const int64_t phases = static_cast<int64_t>(pass.phase_rows.size()) - 1;
  const GridTileSections<int64_t> tile(r, phases, row_start, first, last);
  const int64_t row_max = tile_row_extent(plan, pass, t).second;
  for (int64_t q = tile.next(r, row_start, -1); q <= phases; q = tile.next(r, row_start, q)) {
    const int64_t band_first = pass.phase_col_bands[q];
    const int64_t band_last = q < phases ? pass.phase_col_bands[q + 1] : static_cast<int64_t>(cols.size());
    if (band_first >= band_last) continue;
    const int64_t limit = tile.limit(r, row_start, [&](int64_t b) { return rows[b]; },
                                     static_cast<int64_t>(rows.size()), row_max, q);
    const int64_t keys = grid_line_keys<int64_t>([&](int64_t b) { return cols[b]; }, band_first, band_last, limit);
    if (keys > 0) section(cols[band_first].logical, cols[band_first].logical + keys, tile.keeps_all(r, q));
  }
}

// Each section's run chunk by chunk, consecutive chunks of one mask joined: a chunk inside one band
// of a section every row keeps is classified by the distance and column limits (grid_line_chunk_mask),
// any other is rule-tested.
void grid_line_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs) {
  const int64_t row_min = tile_row_extent(plan, pass, t).first;
  const auto& bands = pass.cols.bands();
  for_each_grid_section(plan, pass, t, [&](int64_t begin, int64_t end, bool keeps_all) {
    size_t band = pass.cols.band_at(begin);
    for (int64_t c = begin; c < end; c += plan.block_n) {
      const int64_t c_end = std::min(end, c + plan.block_n);
      while (bands[band].logical + bands[band].count <= c) ++band;
      const Band& b = bands[band];
      const bool one_band = c_end <= b.logical + b.count;
      const auto mask = static_cast<ChunkMask>(
          keeps_all ? grid_line_chunk_mask<int64_t>(pass.rule, one_band, row_min, b.orig_at(c),
                                                    b.orig_at(std::min(c_end, b.logical + b.count) - 1))
                    : 2);
      if (c != begin && runs.back().mask == mask) {
        runs.back().end = c_end;
      } else {
        runs.push_back(KeyRun{c, c_end, mask});
      }
    }
  });
}

// Calls piece(run) for the run (BlockSummaryRun) of each piece of its columns that tile t of a block
// summary pass visits, in order; pieces it visits no key of are skipped.
template <typename PieceFn>
void for_each_block_summary_run(const SparsePlan& plan, const Pass& pass, int64_t t, PieceFn piece) {
  const auto [row_min, row_max] = tile_row_extent(plan, pass, t);
  const auto& bands = pass.cols.bands();
  auto band_at = [&](int64_t b) { return bands[b]; };
  const int64_t pieces = static_cast<int64_t>(pass.piece_bands.size()) - 1;
  for (int64_t k = 0; k < pieces; ++k) {
    const BlockSummaryRun<int64_t> run = block_summary_run<int64_t>(
        band_at, pass.piece_bands[k], pass.piece_bands[k + 1], k + 1 == pieces, pass.rule.block, row_min, row_max);
    if (run.begin < run.end) piece(run);
  }
}

// Each piece's run chunk by chunk, consecutive chunks of one mask joined (block_summary_chunk_mask).
void block_summary_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs) {
  for_each_block_summary_run(plan, pass, t, [&](const BlockSummaryRun<int64_t>& run) {
    for (int64_t c = run.begin; c < run.end; c += plan.block_n) {
      const int64_t c_end = std::min(run.end, c + plan.block_n);
      const auto mask = static_cast<ChunkMask>(block_summary_chunk_mask(run, c_end));
      if (c != run.begin && runs.back().mask == mask) {
        runs.back().end = c_end;
      } else {
        runs.push_back(KeyRun{c, c_end, mask});
      }
    }
  });
}

}  // namespace

void tile_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs,
               std::vector<int64_t>& columns) {
  runs.clear();
  columns.clear();
  switch (pass.form) {
    case PassForm::kListed:
      runs.assign(pass.runs.begin() + pass.run_offsets[t], pass.runs.begin() + pass.run_offsets[t + 1]);
      columns.assign(pass.columns.begin() + pass.column_offsets[t], pass.columns.begin() + pass.column_offsets[t + 1]);
      break;
    case PassForm::kVerticalSlash: vertical_slash_work(plan, pass, t, runs, columns); break;
    case PassForm::kRanges: range_work(plan, pass, t, runs, columns); break;
    case PassForm::kGridLine: grid_line_work(plan, pass, t, runs); break;
    case PassForm::kBlockSummary: block_summary_work(plan, pass, t, runs); break;
  }
}

int64_t tile_chunks(const SparsePlan& plan, const Pass& pass, int64_t t) {
  auto chunks = [&](int64_t count) { return (count + plan.block_n - 1) / plan.block_n; };
  if (pass.form == PassForm::kListed) {
    int64_t total = chunks(pass.column_offsets[t + 1] - pass.column_offsets[t]);
    for (int64_t r = pass.run_offsets[t]; r < pass.run_offsets[t + 1]; ++r) {
      total += chunks(pass.runs[r].end - pass.runs[r].begin);
    }
    return total;
  }
  if (pass.form == PassForm::kGridLine) {
    int64_t total = 0;
    for_each_grid_section(plan, pass, t, [&](int64_t begin, int64_t end, bool) { total += chunks(end - begin); });
    return total;
  }
  if (pass.form == PassForm::kBlockSummary) {
    int64_t total = 0;
    for_each_block_summary_run(plan, pass, t,
                               [&](const BlockSummaryRun<int64_t>& run) { total += chunks(run.end - run.begin); });
    return total;
  }
  const auto [row_min, row_max] = compact_tile_rows(plan, pass, t);
  const Band& cols = pass.cols.bands().front();
  int64_t total = 0;
  if (pass.form == PassForm::kRanges) {
    int64_t begin[2], end[2];
    const int count = range_tile_runs<int64_t>(pass.rule, row_min, row_max, cols.orig, cols.orig_last(), begin, end);
    for (int k = 0; k < count; ++k) total += chunks(end[k] - begin[k] + 1);
    const auto [first, last] = range_line_keys(plan, pass, t);
    return total + chunks(last - first);
  }
  const VerticalSlashIndex& index = *pass.vertical_slash;
  const int64_t key_max = std::min(row_max, cols.orig_last());
  SlashRunWalk<int64_t> walk(row_min, row_max, cols.orig, key_max, 0, static_cast<int64_t>(index.slash_groups.size()));
  int64_t begin = 0, end = 0;
  while (walk.next([&](int64_t g) { return index.slash_groups[g]; }, begin, end)) total += chunks(end - begin + 1);
  const auto& v = index.verticals;
  return total + chunks(std::upper_bound(v.begin(), v.end(), key_max) - v.begin());
}

int64_t tile_idle_halves(const SparsePlan& plan, const Pass& pass, int64_t t) {
  if (pass.form != PassForm::kVerticalSlash || pass.rule.slash_words < 0) return 0;
  const VerticalSlashIndex& index = *pass.vertical_slash;
  const auto [row_min, row_max] = compact_tile_rows(plan, pass, t);
  const Band& cols = pass.cols.bands().front();
  SlashRunWalk<int64_t> walk(row_min, row_max, cols.orig, std::min(row_max, cols.orig_last()), 0,
                             static_cast<int64_t>(index.slash_groups.size()));
  int64_t begin = 0, end = 0, idle = 0;
  while (walk.next([&](int64_t g) { return index.slash_groups[g]; }, begin, end)) {
    for (int64_t c0 = begin; c0 <= end; c0 += plan.block_n) {
      const int64_t c_last = std::min(end, c0 + plan.block_n - 1);
      const int halves =
          idle_halves<int64_t>(plan.words.data(), pass.rule, row_min, row_max, plan.block_m / 2, c0, c_last);
      idle += (halves & 1) + (halves >> 1);
    }
  }
  return idle;
}

// Counts visited chunks from the plan's structure alone, without gathering any index: fast enough to
// run after every layer of a long pre-fill.
static PlanStats tile_stats(const SparsePlan& plan, int head) {
  PlanStats s;
  s.causal_elements = plan.length * (plan.length + 1) / 2;
  for (const Pass& pass : plan.heads[head].passes) {
    for (int64_t t = 0; t < pass.num_tiles(); ++t) s.tiles += tile_chunks(plan, pass, t);
  }
  s.computed_elements = s.tiles * plan.block_m * plan.block_n;
  return s;
}

// Counts every kept element by walking the chunks.
static PlanStats exact_stats(const SparsePlan& plan, int head) {
  PlanStats s;
  s.causal_elements = plan.length * (plan.length + 1) / 2;
  for_each_chunk(plan, head, [&](const Pass& pass, const std::vector<int64_t>& rows,
                                 const std::vector<int64_t>& cols, ChunkMask mask) {
    ++s.tiles;
    s.computed_elements += plan.block_m * plan.block_n;
    if (mask == ChunkMask::kFull) {
      s.kept_elements += int64_t(rows.size()) * int64_t(cols.size());
      return;
    }
    for (int64_t i : rows) {
      for (int64_t j : cols) s.kept_elements += chunk_counts(plan, pass, mask, i, j);
    }
  });
  return s;
}

// The scores of the halves a kernel that skips idle ones does not compute (tile_idle_halves).
static int64_t idle_half_elements(const SparsePlan& plan, int head) {
  int64_t halves = 0;
  for (const Pass& pass : plan.heads[head].passes) {
    if (pass.form != PassForm::kVerticalSlash) continue;
    for (int64_t t = 0; t < pass.num_tiles(); ++t) halves += tile_idle_halves(plan, pass, t);
  }
  return halves * (plan.block_m / 2) * plan.block_n;
}

bool operator==(const MaskRule& a, const MaskRule& b) {
  auto fields = [](const MaskRule& r) {
    return std::tie(r.min_distance, r.min_col, r.all, r.sink, r.local, r.dense_rows_before, r.dense_rows_from, r.block,
                    r.block_head, r.diagonal_period, r.vertical_words, r.slash_words, r.grid_stride, r.grid_phase,
                    r.grid_vline, r.grid_hline, r.grid_slash);
  };
  return fields(a) == fields(b);
}

bool same_arrays(const Pass& a, const Pass& b) {
  return a.form == b.form && a.tiles == b.tiles && a.vertical_slash == b.vertical_slash &&
         a.rows.size() == b.rows.size() && a.cols.size() == b.cols.size() && a.runs.size() == b.runs.size() &&
         a.columns.size() == b.columns.size() && a.phase_rows == b.phase_rows &&
         a.phase_col_bands == b.phase_col_bands && a.piece_bands == b.piece_bands && a.rows == b.rows &&
         a.cols == b.cols && a.lines == b.lines && a.run_offsets == b.run_offsets &&
         a.column_offsets == b.column_offsets && a.columns == b.columns && a.runs == b.runs;
}

bool same_plan(const HeadPlan& a, const HeadPlan& b) {
  return std::equal(a.passes.begin(), a.passes.end(), b.passes.begin(), b.passes.end(),
                    [](const Pass& x, const Pass& y) { return x.rule == y.rule && same_arrays(x, y); });
}

PlanStats head_stats(const SparsePlan& plan, int head, bool exact, ChunkCompute compute) {
  PlanStats s = exact ? exact_stats(plan, head) : tile_stats(plan, head);
  if (compute == ChunkCompute::kSkipIdleHalves) s.computed_elements -= idle_half_elements(plan, head);
  return s;
}

PlanStats plan_stats(const SparsePlan& plan, bool exact, ChunkCompute compute) {
  const std::vector<size_t> first =
      first_equals(plan.heads.size(), [&](size_t a, size_t b) { return same_plan(plan.heads[a], plan.heads[b]); });
  std::vector<PlanStats> stats(plan.heads.size());  // filled for the first head of each plan
  parallel_for(plan.heads.size(), [&](size_t h) {
    if (first[h] == h) stats[h] = head_stats(plan, static_cast<int>(h), exact, compute);
  });
  PlanStats total;
  for (size_t h : first) total += stats[h];
  return total;
}

}  // namespace mmi
