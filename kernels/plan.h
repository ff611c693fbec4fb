// SparsePlan: the one format every sparse method produces and every executor (CPU reference, CUDA)
// consumes. Torch-free.
//
// A plan holds, per query head, a list of passes. A pass visits a subset of rows and keys through
// logical orders (IndexMaps: logical index -> original position, e.g. the phase-major permutation of a
// grid head or the rows of one modality). Its query tiles are `block_m` consecutive logical rows; per
// tile it lists runs of logical key columns (walked in chunks of `block_n`) and gathered key columns
// (original positions). Inside what it visits, an element (i, j) counts when j <= i and the pass's
// MaskRule keeps it — except in chunks the builder proved fully kept (kFull, kCausal), where the rule is
// skipped. Different passes may share rows (their softmax states are merged) but never an element:
// the union of the passes' kept elements is exactly the head's mask, each element counted once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/mask_rule.h"

namespace mmi {

// logical [logical, logical + count) -> original orig + step * (index - logical)
struct Band {
  int64_t logical = 0;
  int64_t orig = 0;
  int64_t step = 1;
  int64_t count = 0;
  int64_t orig_at(int64_t index) const { return orig + step * (index - logical); }
  int64_t orig_last() const { return orig + step * (count - 1); }
};

// An ordered subset of positions, as consecutive arithmetic bands. Identity maps, modality subsets and
// phase-major permutations are all a handful of bands, so nothing of size N is stored.
class IndexMap {
 public:
  IndexMap() = default;
  static IndexMap identity(int64_t n);
  // The positions of the half-open ranges `segments` ([begin, end) pairs, ascending), in order.
  static IndexMap of_segments(const std::vector<std::pair<int64_t, int64_t>>& segments);
  // Phase-major order over `segments`: for phase p in [0, stride), for each segment in order, its
  // positions x with (x - origin) % stride == p ascending, where origin is the segment's begin when
  // `relative_to_segment`, else 0. Position offset t = k*stride + p inside a segment moves to the
  // phase-p band, so lines and strided diagonals become dense bands.
  static IndexMap phase_major(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t stride,
                              bool relative_to_segment);
  // The positions of phase `phase` only (relative to each segment's begin), ascending: one band of step
  // `stride` per segment, the keys of a grid's vertical line.
  static IndexMap grid_line(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t stride, int64_t phase);
  // The positions of `segments` in order, one band per piece of a block [k * block, (k + 1) * block)
  // (so that each block's positions are bands of their own, which identity-like maps would merge).
  // With [from, to): only the positions at offsets from .. to - 1 of their block (SF-fixed's summary
  // keys, or the other keys of each block).
  static IndexMap blocks(const std::vector<std::pair<int64_t, int64_t>>& segments, int64_t block, int64_t from = 0,
                         int64_t to = -1);
  // `first` followed by `second` (positions must not repeat). `merge`: a step-1 band that continues the
  // previous one joins it; without, both maps keep their bands as they are.
  static IndexMap concat(const IndexMap& first, const IndexMap& second, bool merge = true);

  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::vector<Band>& bands() const { return bands_ ? *bands_ : no_bands(); }
  int band_at(int64_t logical) const;  // index of the band holding `logical`
  int64_t to_orig(int64_t logical) const { return bands()[band_at(logical)].orig_at(logical); }
  int64_t to_logical(int64_t orig) const;  // -1 when `orig` is not in the map
  // Every band has step 1 and the bands ascend in position: logical order is position order, so the
  // positions of any range [lo, hi] in the map are one logical range.
  bool unit_steps() const { return unit_steps_; }
  // Appends the original positions of logical [begin, end) to `out`.
  void gather(int64_t begin, int64_t end, std::vector<int64_t>& out) const;
  // Equal bands; maps copied from one another compare by their shared storage alone.
  friend bool operator==(const IndexMap& a, const IndexMap& b);
  friend bool operator!=(const IndexMap& a, const IndexMap& b) { return !(a == b); }

 private:
  void append(int64_t orig, int64_t step, int64_t count, bool merge = true);
  static const std::vector<Band>& no_bands();
  // Copies share their bands (a plan's identical heads hold one copy of a map of a band per block);
  // append, used only while a map is built, detaches a shared one first.
  std::shared_ptr<std::vector<Band>> bands_;
  int64_t size_ = 0;
  bool unit_steps_ = true;  // every band has step 1 and bands ascend in orig: to_logical can bisect
};

// How an executor treats one chunk of a run.
enum class ChunkMask : uint8_t {
  kFull = 0,    // every element kept: no test at all
  kCausal = 1,  // the rule keeps every element at its minimum distance: test i - j >= min_distance only
                // (j <= i when, as for most rules, that distance is 0)
  kRule = 2,    // test j <= i and the pass's rule
};

struct KeyRun {
  int64_t begin = 0;  // logical key columns [begin, end) of the pass's column map
  int64_t end = 0;
  ChunkMask mask = ChunkMask::kRule;
};
inline bool operator==(const KeyRun& a, const KeyRun& b) {
  return a.begin == b.begin && a.end == b.end && a.mask == b.mask;
}

// Where a pass's tiles take their runs and columns from.
enum class PassForm : uint8_t {
  kListed = 0,         // the per-tile lists of Pass
  kVerticalSlash = 1,  // derived from Pass::vertical_slash (kernels/vertical_slash_walk.h)
  kRanges = 2,         // derived from the rule's ranges (kernels/range_walk.h), plus Pass::lines
  kGridLine = 3,       // derived from the grid phases of its rows and keys (kernels/grid_line_walk.h)
  kBlockSummary = 4,   // derived from the blocks of its rows and pieces of its keys (kernels/block_summary_walk.h)
};

// The lists a compact Vertical-Slash pass derives every tile's work from (kernels/vertical_slash_walk.h).
struct VerticalSlashIndex {
  std::vector<int64_t> verticals;  // kept key positions inside the pass's columns, ascending
  struct Group {
    int64_t lo, hi;
  };
  std::vector<Group> slash_groups;  // maximal runs [lo, hi] of consecutive kept distances, ascending
};

struct Pass {
  IndexMap rows;  // query rows, logical order; tile t is logical rows [t*block_m, (t+1)*block_m)
  IndexMap cols;  // key columns, logical order
  MaskRule rule;
  int64_t tiles = 0;                    // query tiles
  std::vector<int64_t> run_offsets;     // [tiles + 1]: tile t's runs are runs[run_offsets[t]...]
  std::vector<KeyRun> runs;
  std::vector<int64_t> column_offsets;  // [tiles + 1]: tile t's gathered columns
  std::vector<int64_t> columns;         // original key positions, ascending per tile; tested by rule
  // Compact passes keep the per-tile lists above empty and tile_work() derives them: over one
  // consecutive row range and column range, a Vertical-Slash pass from its two lists, so the plan holds
  // O(verticals + slashes) per head instead of O(tiles x (verticals + slashes)), a range pass from its
  // rule alone; a grid lines pass (phase-major rows and columns) from where each phase starts.
  PassForm form = PassForm::kListed;
  std::shared_ptr<const VerticalSlashIndex> vertical_slash;  // set when form is kVerticalSlash
  // kGridLine (kernels/grid_line_walk.h, GridTileSections): per phase q in [0, phases) (grid phases, or
  // SF-fixed's blocks), the logical row where the rows of phase q start and the column band where its
  // keys start; at [phases], where the text rows and the text keys' bands start.
  std::vector<int64_t> phase_rows, phase_col_bands;
  // kBlockSummary (SF-fixed, rows in position order): the column band where each piece of its columns
  // starts, and at the end the band count. Its pieces ascend in position each: the summary keys'
  // pieces, then last the blocks' other keys (possibly none).
  std::vector<int64_t> piece_bands;
  // kRanges of a grid head with vertical lines only: the line's keys (IndexMap::grid_line). A tile
  // visits those its ranges leave out (range_line_gap) after its ranges, as gathered columns; the rule
  // keeps them through its grid fields, so one pass holds the whole head.
  IndexMap lines;
  std::string label;                    // what this pass computes, for inspection

  int64_t num_tiles() const { return tiles; }
};

struct HeadPlan {
  std::vector<Pass> passes;
  std::string description;  // the resolved pattern(s), e.g. "grid(stride=64,phase=3,...)"
};

// Per item i of n, the first item j <= i that equal(j, i) says it equals (i itself for the first of its
// kind): how build_plan builds alike heads once and plan_stats counts them once. O(n x kinds).
template <typename Equal>
std::vector<size_t> first_equals(size_t n, Equal&& equal) {
  std::vector<size_t> first(n), kinds;
  for (size_t i = 0; i < n; ++i) {
    size_t k = 0;
    while (k < kinds.size() && !equal(kinds[k], i)) ++k;
    if (k == kinds.size()) kinds.push_back(i);
    first[i] = kinds[k];
  }
  return first;
}

// Field by field, bitmap offsets included: within one plan, equal rules keep the same elements.
bool operator==(const MaskRule& a, const MaskRule& b);
// Whether two passes hold the same arrays (maps, lists, tables, runs and columns), whatever their rules:
// the passes of a head that build_plan copied from another (their maps share bands), or of grid heads
// whose phase alone differs. Cheap fields first.
bool same_arrays(const Pass& a, const Pass& b);
// Whether two heads' plans are the same pass for pass, rules included, so that they visit the same
// chunks and keep the same elements (build_plan's copies of alike heads).
bool same_plan(const HeadPlan& a, const HeadPlan& b);

struct SparsePlan {
  int64_t length = 0;     // N
  int64_t block_m = 128;  // query tile
  int64_t block_n = 64;   // key chunk
  std::vector<HeadPlan> heads;           // one per query head
  std::vector<uint64_t> words;           // bitmaps referenced by MaskRule offsets
  std::vector<int64_t> visual_starts;    // the layout's visual spans, for grid phases
  std::vector<int64_t> visual_ends;
  // An executor's upload of this plan (the CUDA executor's device arrays), made once when the plan is
  // built for GPU inputs so that running it launches kernels and nothing else. Opaque here.
  std::shared_ptr<const void> device;
  // Where the index-build time went (filled by AttentionMethod::plan, wall clock, GPU synchronised).
  double estimate_ms = 0, build_ms = 0, upload_ms = 0;

  VisualSpans visual_spans() const {
    return VisualSpans{visual_starts.data(), visual_ends.data(), static_cast<int64_t>(visual_starts.size())};
  }
  bool keeps(const MaskRule& rule, int64_t i, int64_t j) const {
    return rule_keeps(rule, words.data(), visual_spans(), i, j);
  }
};

// Tile t's key runs and gathered columns (original positions), whichever form the pass stores them in.
// A compact Vertical-Slash pass's runs come in descending order with ChunkMask::kRule, and its columns
// keep their chunk positions: a vertical that one of the tile's runs covers is -1 (skipped, so counted
// once). Compact range passes' runs ascend, split where the chunk mask changes, as a listed pass's do;
// their columns are their line's keys in the runs' gap (Pass::lines). A compact grid line pass's runs
// ascend too, one per grid section the tile visits (GridTileSections), split where the mask changes, and
// so do a block summary pass's, one per piece of its columns.
void tile_work(const SparsePlan& plan, const Pass& pass, int64_t t, std::vector<KeyRun>& runs,
               std::vector<int64_t>& columns);

// The chunks tile t of a pass visits, counted from the pass's structure without listing anything (a
// compact Vertical-Slash tile walks its slash groups).
int64_t tile_chunks(const SparsePlan& plan, const Pass& pass, int64_t t);

// Walks every element a plan's head visits and reports the counted ones:
// visit(i, j) is called once per (pass, tile, chunk, row, column) element that the executor counts.
// Used by the statistics and by the exactness tests; O(visited elements).
template <typename Visit>
void for_each_counted_element(const SparsePlan& plan, int head, Visit&& visit);

// What a tile kernel computes of a visited chunk: every block_m x block_n score (the CPU executor's tiles,
// the mma.sync kernel), or that less the halves of block_m / 2 rows that keep none of a compact
// Vertical-Slash chunk's keys, which the wgmma kernel skips (tile_idle_halves).
enum class ChunkCompute { kWhole, kSkipIdleHalves };

// The halves of tile t's chunks that keep none of their keys, for a compact Vertical-Slash pass (0 for
// the other forms): chunks of a slash run with no vertical in their 64-key window, where the rows
// [row_min + h * block_m / 2, +block_m / 2) reach none of the keys through the slashes (slashes_miss).
int64_t tile_idle_halves(const SparsePlan& plan, const Pass& pass, int64_t t);

// Plan statistics for one head or the whole plan.
struct PlanStats {
  int64_t causal_elements = 0;    // N(N+1)/2 per head
  int64_t kept_elements = 0;      // counted elements (the mask size)
  int64_t computed_elements = 0;  // the scores a tile kernel computes (block_m x block_n per visited chunk,
                                  // less the idle halves where the kernel skips them: ChunkCompute)
  int64_t tiles = 0;              // visited chunks
  double density() const { return causal_elements ? double(kept_elements) / causal_elements : 0.0; }
  // Computed-tile FLOPs relative to dense causal attention (2*N^2*d per head, SPEC §10).
  double flops_ratio(int64_t length) const;
  PlanStats& operator+=(const PlanStats& o);
};

// `exact` counts kept elements by evaluating every rule-tested element; otherwise kept_elements is 0.
// `compute`: what the kernel that runs the plan computes of a chunk. Heads with the same plan
// (same_plan) are counted once.
PlanStats plan_stats(const SparsePlan& plan, bool exact = true, ChunkCompute compute = ChunkCompute::kWhole);
PlanStats head_stats(const SparsePlan& plan, int head, bool exact = true,
                     ChunkCompute compute = ChunkCompute::kWhole);
// 4 * d * computed elements: the FLOPs a tile kernel spends on QK^T and PV.
inline double computed_flops(const PlanStats& s, int64_t head_dim) { return 4.0 * head_dim * s.computed_elements; }

}  // namespace mmi

#include "kernels/plan_walk.h"
