// The exactness contract (SPEC §3): for every pattern and boundary kind and any index, the plan counts
// exactly the oracle mask, each element once, and the CPU executor equals softmax attention over that
// mask. Random indices, odd sizes, interleaved spans, several tile shapes, GQA.
#include <algorithm>
#include <functional>
#include <random>

#include "kernels/block_summary_walk.h"
#include "kernels/cpu/executor.h"
#include "kernels/grid_line_walk.h"
#include "kernels/metrics.h"
#include "kernels/plan_builder.h"
#include "tests/catch.h"
#include "tests/kernels/attention_testing.h"

using namespace mmi;
using namespace mmi::testing;

namespace {

const std::vector<PatternKind>& kKinds = kAllPatternKinds;
const std::vector<BoundaryKind> kBoundaries = {BoundaryKind::kNone, BoundaryKind::kK, BoundaryKind::kQ,
                                               BoundaryKind::k2D};
// The last one lists every tile's runs and columns, compact passes' included, instead of deriving them.
const std::vector<PlanOptions> kTiles = {{16, 16}, {64, 64}, {8, 24}, {32, 16, false}};

// The first element where the plan's count differs from the oracle, or an empty string.
std::string first_mismatch(const SequenceLayout& layout, const ResolvedHead& head, const SparsePlan& plan,
                           int plan_head = 0) {
  const int64_t n = layout.length();
  const std::vector<int> counts = count_matrix(plan, plan_head);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int expected = head_keeps(layout, head, i, j) ? 1 : 0;
      if (counts[i * n + j] != expected) {
        return "(" + std::to_string(i) + ", " + std::to_string(j) + ") counted " + std::to_string(counts[i * n + j]) +
               " times, oracle says " + std::to_string(expected);
      }
    }
  }
  return "";
}

int64_t chunks_of(int64_t count, int64_t block_n) { return (count + block_n - 1) / block_n; }

// A compact pass's chunks by brute force: per tile, the keys some row reaches (along a kept distance for
// Vertical-Slash, by the rule for ranges), as maximal runs, plus the verticals up to the tile's last row.
int64_t compact_chunks(const SparsePlan& plan, const Pass& pass) {
  const Band& rows = pass.rows.bands().front();
  const Band& cols = pass.cols.bands().front();
  const bool vertical_slash = pass.form == PassForm::kVerticalSlash;
  MaskRule ranges = pass.rule;  // a grid head's range pass: its runs follow the ranges alone
  ranges.grid_stride = 0;
  auto reaches = [&](int64_t i, int64_t j) {
    return vertical_slash ? test_bit(plan.words.data() + pass.rule.slash_words, i - j) : plan.keeps(ranges, i, j);
  };
  std::vector<int64_t> line_keys;
  pass.lines.gather(0, pass.lines.size(), line_keys);
  int64_t chunks = 0;
  for (int64_t t = 0; t < pass.num_tiles(); ++t) {
    const int64_t first = rows.orig + t * plan.block_m;
    const int64_t last = rows.orig + std::min(rows.count, (t + 1) * plan.block_m) - 1;
    int64_t run = 0;
    for (int64_t j = cols.orig; j <= cols.orig_last() + 1; ++j) {
      bool reached = false;
      for (int64_t i = std::max(first, j); i <= last && j <= cols.orig_last() && !reached; ++i) reached = reaches(i, j);
      if (reached) {
        ++run;
      } else {
        chunks += chunks_of(run, plan.block_n);
        run = 0;
      }
    }
    // The line keys that some row keeps and no row reaches by the ranges.
    const int64_t lines = std::count_if(line_keys.begin(), line_keys.end(), [&](int64_t j) {
      bool kept = false, by_ranges = false;
      for (int64_t i = std::max(first, j); i <= last; ++i) {
        kept = kept || plan.keeps(pass.rule, i, j);
        by_ranges = by_ranges || reaches(i, j);
      }
      return kept && !by_ranges;
    });
    chunks += chunks_of(lines, plan.block_n);
    if (!vertical_slash) continue;
    const auto& v = pass.vertical_slash->verticals;
    chunks += chunks_of(std::upper_bound(v.begin(), v.end(), last) - v.begin(), plan.block_n);
  }
  return chunks;
}

// A compact grid line pass's chunks by brute force: per tile and grid section (the keys of one phase,
// or the text keys after them), the keys some row of the tile keeps.
// A block summary pass's chunks, from its pieces' keys: each summary piece's up to the tile's last row,
// the last piece's (the blocks' other keys) from its first row's block on.
int64_t block_summary_chunks(const SparsePlan& plan, const Pass& pass) {
  const int64_t pieces = static_cast<int64_t>(pass.piece_bands.size()) - 1;
  std::vector<int64_t> rows;
  int64_t chunks = 0;
  for (int64_t t = 0; t < pass.num_tiles(); ++t) {
    rows.clear();
    pass.rows.gather(t * plan.block_m, std::min(pass.rows.size(), (t + 1) * plan.block_m), rows);
    const int64_t first = *std::min_element(rows.begin(), rows.end());
    const int64_t last = *std::max_element(rows.begin(), rows.end());
    for (int64_t k = 0; k < pieces; ++k) {
      const int64_t from = k + 1 == pieces ? first / pass.rule.block * pass.rule.block : 0;
      int64_t keys = 0;
      for (int64_t b = pass.piece_bands[k]; b < pass.piece_bands[k + 1]; ++b) {
        const Band& band = pass.cols.bands()[b];
        for (int64_t x = band.logical; x < band.logical + band.count; ++x) {
          keys += band.orig_at(x) >= from && band.orig_at(x) <= last;
        }
      }
      chunks += (keys + plan.block_n - 1) / plan.block_n;
    }
  }
  return chunks;
}

int64_t grid_line_chunks(const SparsePlan& plan, const Pass& pass) {
  const int64_t stride = static_cast<int64_t>(pass.phase_col_bands.size()) - 1;  // the pass's phases
  std::vector<std::vector<int64_t>> sections(stride + 1);
  for (int64_t q = 0; q <= stride; ++q) {
    const int64_t first = pass.phase_col_bands[q];
    const int64_t last = q < stride ? pass.phase_col_bands[q + 1] : static_cast<int64_t>(pass.cols.bands().size());
    for (int64_t b = first; b < last; ++b) {
      const Band& band = pass.cols.bands()[b];
      for (int64_t x = 0; x < band.count; ++x) sections[q].push_back(band.orig_at(band.logical + x));
    }
  }
  int64_t chunks = 0;
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < pass.num_tiles(); ++t) {
    rows.clear();
    pass.rows.gather(t * plan.block_m, std::min(pass.rows.size(), (t + 1) * plan.block_m), rows);
    for (const std::vector<int64_t>& keys : sections) {
      int64_t reached = 0;
      for (int64_t j : keys) {
        reached += std::any_of(rows.begin(), rows.end(), [&](int64_t i) { return plan.keeps(pass.rule, i, j); });
      }
      chunks += chunks_of(reached, plan.block_n);
    }
  }
  return chunks;
}

// Computed elements from the plan's runs and columns, counted independently of the plan walker.
int64_t expected_computed(const SparsePlan& plan, int head) {
  int64_t chunks = 0;
  for (const Pass& pass : plan.heads[head].passes) {
    if (pass.form != PassForm::kListed) {
      chunks += pass.form == PassForm::kGridLine       ? grid_line_chunks(plan, pass)
                : pass.form == PassForm::kBlockSummary ? block_summary_chunks(plan, pass)
                                                       : compact_chunks(plan, pass);
      continue;
    }
    for (const KeyRun& run : pass.runs) chunks += (run.end - run.begin + plan.block_n - 1) / plan.block_n;
    for (int64_t t = 0; t < pass.num_tiles(); ++t) {
      const int64_t cols = pass.column_offsets[t + 1] - pass.column_offsets[t];
      chunks += (cols + plan.block_n - 1) / plan.block_n;
    }
  }
  return chunks * plan.block_m * plan.block_n;
}

}  // namespace

TEST_CASE("plans count exactly the oracle mask, each element once", "[plan][exact]") {
  std::mt19937_64 rng(20250416);
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      for (PatternKind kind : kKinds) {
        for (int seed = 0; seed < 2; ++seed) {
          const ResolvedHead head = boundary == BoundaryKind::kNone || boundary == BoundaryKind::kK
                                        ? random_head(boundary, {kind}, layout, rng)
                                        : random_head(boundary, {kind, kKinds[rng() % kKinds.size()]}, layout, rng);
          for (const PlanOptions& tiles : kTiles) {
            const SparsePlan plan = build_plan(layout, {head}, tiles);
            INFO("layout " << layout.describe() << ", " << describe_resolved(head, layout) << ", tiles "
                           << tiles.block_m << "x" << tiles.block_n);
            REQUIRE(first_mismatch(layout, head, plan) == "");
            const PlanStats stats = head_stats(plan, 0);
            const int64_t kept = oracle_mask(layout, {head}).sum().item<int64_t>();
            REQUIRE(stats.kept_elements == kept);
            REQUIRE(stats.causal_elements == layout.length() * (layout.length() + 1) / 2);
            REQUIRE(stats.computed_elements == expected_computed(plan, 0));
            const PlanStats quick = head_stats(plan, 0, /*exact=*/false);  // counted from the structure
            REQUIRE(quick.tiles == stats.tiles);
            REQUIRE(quick.computed_elements == stats.computed_elements);
          }
        }
      }
    }
  }
}

TEST_CASE("heads resolved alike are built once and share their maps and bitmaps", "[plan][exact]") {
  std::mt19937_64 rng(77);
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      const ResolvedHead a = random_head(boundary, kKinds, layout, rng), b = random_head(boundary, kKinds, layout, rng);
      const std::vector<ResolvedHead> heads = {a, b, a, b, a};
      const SparsePlan plan = build_plan(layout, heads);
      INFO("layout " << layout.describe() << ", " << describe_resolved(a, layout) << " / "
                     << describe_resolved(b, layout));
      REQUIRE(plan.words.size() == build_plan(layout, {a, b}).words.size());  // no bitmap twice
      for (int h = 0; h < static_cast<int>(heads.size()); ++h) {
        REQUIRE(first_mismatch(layout, heads[h], plan, h) == "");
        const HeadPlan& mine = plan.heads[h];
        const HeadPlan& first = plan.heads[h % 2];
        REQUIRE(mine.passes.size() == first.passes.size());
        for (size_t x = 0; x < mine.passes.size(); ++x) {
          REQUIRE(&mine.passes[x].rows.bands() == &first.passes[x].rows.bands());
          REQUIRE(&mine.passes[x].cols.bands() == &first.passes[x].cols.bands());
          REQUIRE(mine.passes[x].rule.vertical_words == first.passes[x].rule.vertical_words);
          REQUIRE(mine.passes[x].rule.slash_words == first.passes[x].rule.slash_words);
        }
      }
    }
  }
}

TEST_CASE("plan statistics count heads with the same plan once, and equal the sum over heads", "[plan][exact]") {
  auto require_equal = [](const PlanStats& a, const PlanStats& b) {
    REQUIRE(a.causal_elements == b.causal_elements);
    REQUIRE(a.kept_elements == b.kept_elements);
    REQUIRE(a.computed_elements == b.computed_elements);
    REQUIRE(a.tiles == b.tiles);
  };
  std::mt19937_64 rng(78);
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      const ResolvedHead a = random_head(boundary, kKinds, layout, rng), b = random_head(boundary, kKinds, layout, rng);
      const SparsePlan plan = build_plan(layout, {a, b, a, b, a});
      INFO("layout " << layout.describe() << ", " << describe_resolved(a, layout) << " / "
                     << describe_resolved(b, layout));
      REQUIRE(same_plan(plan.heads[4], plan.heads[0]));
      REQUIRE(same_plan(plan.heads[3], plan.heads[1]));
      for (bool exact : {false, true}) {
        for (ChunkCompute compute : {ChunkCompute::kWhole, ChunkCompute::kSkipIdleHalves}) {
          PlanStats sum;
          for (int h = 0; h < 5; ++h) sum += head_stats(plan, h, exact, compute);
          require_equal(plan_stats(plan, exact, compute), sum);
        }
      }
    }
  }
  // Grid heads whose phase alone differs hold the same arrays, but not the same plan.
  const SequenceLayout layout = SequenceLayout::parse("text:41,video:12x8x8,text:37");
  std::vector<ResolvedHead> grids(2);
  for (int h : {0, 1}) {
    ResolvedPattern& grid = grids[h].patterns[0][0] = random_pattern(PatternKind::kGrid, layout, rng);
    grid.params.vline = grid.params.hline = grid.params.slash = true;
    grid.index.stride = 16;
    grid.index.phase = h == 0 ? 3 : 11;
  }
  const SparsePlan plan = build_plan(layout, grids);
  REQUIRE(plan.heads[0].passes.size() == plan.heads[1].passes.size());
  for (size_t x = 0; x < plan.heads[0].passes.size(); ++x) {
    REQUIRE(same_arrays(plan.heads[0].passes[x], plan.heads[1].passes[x]));
  }
  REQUIRE_FALSE(same_plan(plan.heads[0], plan.heads[1]));
  require_equal(plan_stats(plan), head_stats(plan, 0) += head_stats(plan, 1));
}

TEST_CASE("mask rules compare equal only when every field is", "[plan]") {
  const MaskRule base;
  REQUIRE(base == MaskRule(base));
  const std::vector<std::function<void(MaskRule&)>> changes = {
      [](MaskRule& r) { r.min_distance += 1; },     [](MaskRule& r) { r.min_col += 1; },
      [](MaskRule& r) { r.all = !r.all; },          [](MaskRule& r) { r.sink += 1; },
      [](MaskRule& r) { r.local += 1; },            [](MaskRule& r) { r.dense_rows_before += 1; },
      [](MaskRule& r) { r.dense_rows_from -= 1; },  [](MaskRule& r) { r.block += 1; },
      [](MaskRule& r) { r.block_head += 1; },       [](MaskRule& r) { r.diagonal_period += 1; },
      [](MaskRule& r) { r.vertical_words += 1; },   [](MaskRule& r) { r.slash_words += 1; },
      [](MaskRule& r) { r.grid_stride += 1; },      [](MaskRule& r) { r.grid_phase += 1; },
      [](MaskRule& r) { r.grid_vline = !r.grid_vline; }, [](MaskRule& r) { r.grid_hline = !r.grid_hline; },
      [](MaskRule& r) { r.grid_slash = !r.grid_slash; },
  };
  for (size_t c = 0; c < changes.size(); ++c) {
    MaskRule changed = base;
    changes[c](changed);
    INFO("change " << c);
    REQUIRE_FALSE(changed == base);
  }
}

TEST_CASE("resolved heads compare equal only when every parameter and index field is", "[plan]") {
  const SequenceLayout layout = test_layouts().front();
  std::mt19937_64 rng(5);
  const ResolvedHead base = random_head(BoundaryKind::kNone, {PatternKind::kGrid}, layout, rng);
  REQUIRE(base == ResolvedHead(base));
  const std::vector<std::function<void(ResolvedPattern&)>> changes = {
      [](ResolvedPattern& p) { p.params.kind = PatternKind::kAShape; },
      [](ResolvedPattern& p) { p.params.sink += 1; },
      [](ResolvedPattern& p) { p.params.local += 1; },
      [](ResolvedPattern& p) { p.params.last_rows += 1; },
      [](ResolvedPattern& p) { p.params.block += 1; },
      [](ResolvedPattern& p) { p.params.block_head += 1; },
      [](ResolvedPattern& p) { p.params.n_vertical += 1; },
      [](ResolvedPattern& p) { p.params.n_slash += 1; },
      [](ResolvedPattern& p) { p.params.last_q += 1; },
      [](ResolvedPattern& p) { p.params.strides.push_back(7); },
      [](ResolvedPattern& p) { p.params.vline = !p.params.vline; },
      [](ResolvedPattern& p) { p.params.hline = !p.params.hline; },
      [](ResolvedPattern& p) { p.params.slash = !p.params.slash; },
      [](ResolvedPattern& p) { p.params.grid_local += 1; },
      [](ResolvedPattern& p) { p.index.verticals.push_back(3); },
      [](ResolvedPattern& p) { p.index.slashes.push_back(3); },
      [](ResolvedPattern& p) { p.index.stride += 1; },
      [](ResolvedPattern& p) { p.index.phase += 1; },
      [](ResolvedPattern& p) { p.index.block += 1; },
  };
  for (size_t c = 0; c < changes.size(); ++c) {
    ResolvedHead changed = base;
    changes[c](changed.patterns[0][0]);
    INFO("change " << c);
    REQUIRE_FALSE(changed == base);
  }
  ResolvedHead other_boundary = base;
  other_boundary.boundary = BoundaryKind::kK;
  REQUIRE_FALSE(other_boundary == base);
  ResolvedHead other_pair = base;
  other_pair.patterns[1][2].params.sink += 1;  // unused under kNone, yet a different head
  REQUIRE_FALSE(other_pair == base);
}

TEST_CASE("compact Vertical-Slash plans hold no per-tile lists and count what explicit ones count", "[plan][exact]") {
  std::mt19937_64 rng(31);
  const SequenceLayout layout = SequenceLayout::parse("text:131,video:6x7x9,text:45");
  for (int seed = 0; seed < 4; ++seed) {
    const ResolvedHead head = random_head(BoundaryKind::kNone, {PatternKind::kVerticalSlash}, layout, rng);
    const SparsePlan compact = build_plan(layout, {head}, {64, 64, true});
    const SparsePlan listed = build_plan(layout, {head}, {64, 64, false});
    const Pass& pass = compact.heads[0].passes.at(0);
    REQUIRE(pass.form == PassForm::kVerticalSlash);
    REQUIRE((pass.runs.empty() && pass.columns.empty() && pass.run_offsets.empty()));
    REQUIRE(listed.heads[0].passes.at(0).form == PassForm::kListed);
    REQUIRE(count_matrix(compact, 0) == count_matrix(listed, 0));
    // Same runs, so the same chunks, except where a gathered chunk keeps a covered vertical's place.
    REQUIRE(head_stats(compact, 0).tiles >= head_stats(listed, 0).tiles);
  }
}

// The halves of 64 rows the wgmma kernel skips in a compact Vertical-Slash tile (tile_idle_halves), by
// brute force: chunks of a slash run with no vertical among the 64 keys from their start, whose half
// keeps none of the chunk's keys. Plan statistics then count the rest as computed.
TEST_CASE("the idle halves of compact Vertical-Slash chunks are those that keep nothing", "[plan][exact]") {
  std::mt19937_64 rng(77);
  const SequenceLayout layout = SequenceLayout::parse("text:70,video:12x9x21,text:33");
  int64_t idle_total = 0, checked_total = 0;
  for (int seed = 0; seed < 4; ++seed) {
    const ResolvedHead head = random_head(BoundaryKind::kNone, {PatternKind::kVerticalSlash}, layout, rng);
    const SparsePlan plan = build_plan(layout, {head}, {128, 64, true});
    const Pass& pass = plan.heads[0].passes.at(0);
    REQUIRE(pass.form == PassForm::kVerticalSlash);
    const std::vector<int64_t>& verticals = pass.vertical_slash->verticals;
    const Band& cols = pass.cols.bands().front();
    int64_t idle_plan = 0;
    std::vector<KeyRun> runs;
    std::vector<int64_t> columns;
    for (int64_t t = 0; t < pass.num_tiles(); ++t) {
      runs.clear();
      columns.clear();
      tile_work(plan, pass, t, runs, columns);
      const int64_t row_min = pass.rows.to_orig(t * 128);
      const int64_t row_max = pass.rows.to_orig(std::min(pass.rows.size(), (t + 1) * 128) - 1);
      int64_t idle = 0;
      for (const KeyRun& run : runs) {
        for (int64_t c = run.begin; c < run.end; c += 64) {
          const int64_t c0 = cols.orig + c, c_last = cols.orig + std::min(run.end, c + 64) - 1;
          const auto v = std::lower_bound(verticals.begin(), verticals.end(), c0);
          if (v != verticals.end() && *v < c0 + 64) continue;
          for (int64_t r0 = row_min; r0 < row_min + 128; r0 += 64) {
            bool keeps = false;
            for (int64_t i = r0; i <= std::min(row_max, r0 + 63) && !keeps; ++i) {
              for (int64_t j = c0; j <= c_last && !keeps; ++j) keeps = plan.keeps(pass.rule, i, j);
            }
            idle += !keeps;
            ++checked_total;
          }
        }
      }
      INFO("seed " << seed << ", tile " << t);
      REQUIRE(tile_idle_halves(plan, pass, t) == idle);
      idle_plan += idle;
    }
    idle_total += idle_plan;
    const PlanStats whole = head_stats(plan, 0);
    for (bool exact : {true, false}) {
      const PlanStats skipping = head_stats(plan, 0, exact, ChunkCompute::kSkipIdleHalves);
      REQUIRE(skipping.tiles == whole.tiles);
      REQUIRE(skipping.computed_elements == whole.computed_elements - idle_plan * 64 * 64);
    }
  }
  INFO("idle " << idle_total << " of " << checked_total << " halves tested");
  REQUIRE(idle_total > 0);
  REQUIRE(idle_total < checked_total);
}

// The closed-form keep bits the CUDA kernels use for a grid line pass's rule-tested chunks inside one
// band (grid_rule_bits, with the keys' phase) equal the rule, element by element, for every row of tile t
// (SF-strided's diagonal passes have no closed form: the kernels test their rule element by element).
void check_grid_line_bits(const SparsePlan& plan, const Pass& pass, int64_t t, const std::vector<KeyRun>& runs) {
  if (!is_grid_lines_rule(pass.rule)) return;
  const VisualSpans spans = plan.visual_spans();
  for (const KeyRun& run : runs) {
    for (int64_t c = run.begin; c < run.end; c += plan.block_n) {
      const int64_t len = std::min(plan.block_n, run.end - c);
      const Band& band = pass.cols.bands()[pass.cols.band_at(c)];
      if (c + len > band.logical + band.count) continue;  // across bands: the rule is evaluated per element
      const int64_t c0 = band.orig_at(c);
      const int64_t key_phase = chunk_key_phase<int64_t>(spans, pass.rule.grid_stride, c0, band.orig_at(c + len - 1), band.step);
      REQUIRE(key_phase != kMixedPhases);
      for (int64_t r = t * plan.block_m; r < std::min(pass.rows.size(), (t + 1) * plan.block_m); ++r) {
        const int64_t i = pass.rows.to_orig(r);
        const uint64_t bits =
            grid_rule_bits<int64_t>(pass.rule, i, rule_phase(pass.rule, spans, i), key_phase, c0, band.step, len);
        for (int64_t x = 0; x < len; ++x) {
          const int64_t j = band.orig_at(c + x);
          INFO("pass " << pass.label << ", tile " << t << ", row " << i << ", key " << j);
          REQUIRE(((bits >> x) & 1u) == rule_keeps(pass.rule, plan.words.data(), spans, i, j));
        }
      }
    }
  }
}

// The line keys tile t of a range pass visits after its runs: those at most its last row that no run
// holds, by brute force.
std::vector<int64_t> line_columns(const SparsePlan& plan, const Pass& pass, int64_t t, const std::vector<KeyRun>& runs) {
  const Band& rows = pass.rows.bands().front();
  const Band& cols = pass.cols.bands().front();
  const int64_t last = rows.orig + std::min(rows.count, (t + 1) * plan.block_m) - 1;
  std::vector<int64_t> keys, out;
  pass.lines.gather(0, pass.lines.size(), keys);
  for (int64_t j : keys) {
    const bool in_run = std::any_of(runs.begin(), runs.end(), [&](const KeyRun& r) {
      return j >= cols.orig + r.begin && j < cols.orig + r.end;
    });
    if (j <= last && j >= cols.orig && j <= cols.orig_last() && !in_run) out.push_back(j);
  }
  return out;
}

// Compact and listed plans of one head, pass by pass: every compact range pass's tiles, and every grid
// line pass's of a grid's vertical lines only, derive exactly the runs and chunk masks the listed pass
// holds (other grid line passes split their runs at the grid sections, which the listed one may join,
// and classify chunks by their minimum distance, which the listed one may rule-test: SF-strided's);
// a grid line pass's closed-form keep bits equal its rule, and both plans count the same
// elements. Returns how many passes were compared.
int compare_compact_passes(const SequenceLayout& layout, const ResolvedHead& head, const PlanOptions& tiles,
                           PassForm form) {
  PlanOptions listed_tiles = tiles;
  listed_tiles.compact_passes = false;
  const SparsePlan compact = build_plan(layout, {head}, tiles);
  const SparsePlan listed = build_plan(layout, {head}, listed_tiles);
  INFO("layout " << layout.describe() << ", " << describe_resolved(head, layout) << ", tiles " << tiles.block_m << "x"
                 << tiles.block_n);
  // A grid of vertical lines only is one compact range pass with a line; listed, it is the ranges and
  // then a line pass.
  const auto& passes = compact.heads[0].passes;
  const auto with_line = std::count_if(passes.begin(), passes.end(), [](const Pass& p) { return !p.lines.empty(); });
  REQUIRE(passes.size() + with_line == listed.heads[0].passes.size());
  const bool sectioned = std::any_of(passes.begin(), passes.end(), [](const Pass& p) {
    const bool vertical_lines = p.rule.grid_stride > 0 && !p.rule.grid_hline && !p.rule.grid_slash;
    return p.form == PassForm::kGridLine && !vertical_lines;
  });
  int compared = 0;
  for (size_t p = 0, q = 0; p < passes.size(); q += passes[p].lines.empty() ? 1 : 2, ++p) {
    const Pass& derived = passes[p];
    const Pass& explicit_pass = listed.heads[0].passes[q];
    REQUIRE(explicit_pass.form == PassForm::kListed);
    if (derived.form != form) continue;
    ++compared;
    REQUIRE((derived.runs.empty() && derived.run_offsets.empty()));
    std::vector<KeyRun> got, want;
    std::vector<int64_t> got_columns, want_columns;
    for (int64_t t = 0; t < derived.num_tiles(); ++t) {
      tile_work(compact, derived, t, got, got_columns);
      if (form == PassForm::kGridLine) check_grid_line_bits(compact, derived, t, got);
      if (form == PassForm::kGridLine && sectioned) continue;
      tile_work(listed, explicit_pass, t, want, want_columns);
      REQUIRE(got.size() == want.size());
      for (size_t r = 0; r < got.size(); ++r) {
        INFO("pass " << derived.label << ", tile " << t << ", run " << r);
        REQUIRE((got[r].begin == want[r].begin && got[r].end == want[r].end && got[r].mask == want[r].mask));
      }
      REQUIRE(want_columns.empty());
      REQUIRE(got_columns == line_columns(compact, derived, t, got));
    }
  }
  REQUIRE(count_matrix(compact, 0) == count_matrix(listed, 0));
  // With the line in the range pass, tiles of consecutive rows reach fewer line chunks than tiles of
  // phase-major rows do.
  if (sectioned) {  // each section visits exactly the keys some row keeps
    REQUIRE(head_stats(compact, 0, false).computed_elements == expected_computed(compact, 0));
  } else if (with_line > 0) {
    REQUIRE(head_stats(compact, 0, false).tiles <= head_stats(listed, 0, false).tiles);
  } else {
    REQUIRE(head_stats(compact, 0, false).tiles == head_stats(listed, 0, false).tiles);
  }
  return compared;
}

const std::vector<PlanOptions> kCompactTiles = {PlanOptions{16, 16}, PlanOptions{64, 64}, PlanOptions{8, 24}};

TEST_CASE("compact range passes derive exactly the runs and masks a listed plan holds", "[plan][exact]") {
  std::mt19937_64 rng(47);
  const std::vector<PatternKind> kinds = {PatternKind::kDense, PatternKind::kAShape, PatternKind::kTriShape,
                                          PatternKind::kGrid, PatternKind::kSfStrided};
  for (const SequenceLayout& layout : test_layouts()) {
    for (PatternKind kind : kinds) {
      for (const PlanOptions& tiles : kCompactTiles) {
        // Every one of these heads has a pass of ranges over the whole sequence (the grid's sinks, local
        // window and dense text rows; strided's local window).
        REQUIRE(compare_compact_passes(layout, random_head(BoundaryKind::kNone, {kind}, layout, rng), tiles,
                                       PassForm::kRanges) >= 1);
      }
    }
  }
}

TEST_CASE("compact grid line passes derive exactly the runs and masks a listed plan holds", "[plan][exact]") {
  std::mt19937_64 rng(53);
  int compared = 0;
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      for (const PlanOptions& tiles : kCompactTiles) {
        for (int seed = 0; seed < 3; ++seed) {
          ResolvedHead head = random_head(boundary, {PatternKind::kGrid}, layout, rng);
          for (auto& row : head.patterns) {
            for (ResolvedPattern& p : row) p.params.vline = true, p.params.hline = p.params.slash = false;
          }
          compared += compare_compact_passes(layout, head, tiles, PassForm::kGridLine);
        }
      }
    }
  }
  REQUIRE(compared > 50);
}

TEST_CASE("compact grid line passes with horizontal and slash lines count what listed ones count", "[plan][exact]") {
  std::mt19937_64 rng(67);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  int compared = 0;
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      for (const PlanOptions& tiles : kCompactTiles) {
        for (int lines = 2; lines < 8; ++lines) {  // v, h, s as bits, with h or s
          ResolvedHead head = random_head(boundary, {PatternKind::kGrid}, layout, rng);
          for (auto& row : head.patterns) {
            for (ResolvedPattern& p : row) {
              p.params.vline = lines & 1;
              p.params.hline = (lines >> 1) & 1;
              p.params.slash = (lines >> 2) & 1;
              p.index.stride = uniform(1, 40);  // short strides: tiles of several phases
              p.index.phase = uniform(0, p.index.stride - 1);
            }
          }
          compared += compare_compact_passes(layout, head, tiles, PassForm::kGridLine);
        }
      }
    }
  }
  REQUIRE(compared > 100);
}

// SF-fixed's pass: a block summary pass whose pieces are a band per summary phase or one of every
// block's summary keys, then the blocks' other keys; its tiles visit no gathered column, and a run or
// two (fully kept, then causal) per piece. Listed (compact passes off), it holds exactly those runs.
void check_fixed_pass(const SparsePlan& plan, const SparsePlan& listed, int64_t block, int64_t summary_keys) {
  REQUIRE(plan.heads[0].passes.size() == 1);
  REQUIRE(listed.heads[0].passes.size() == 1);
  const Pass& pass = plan.heads[0].passes[0];
  REQUIRE(pass.form == PassForm::kBlockSummary);
  REQUIRE(listed.heads[0].passes[0].form == PassForm::kListed);
  const int64_t summary_pieces = summary_keys < block && summary_keys <= 8 ? summary_keys : 1;  // kMaxSummaryPhases
  REQUIRE(pass.piece_bands.size() == static_cast<size_t>(summary_pieces + 2));
  std::vector<KeyRun> runs, listed_runs;
  std::vector<int64_t> columns;
  for (int64_t t = 0; t < pass.num_tiles(); ++t) {
    tile_work(plan, pass, t, runs, columns);
    REQUIRE(columns.empty());
    REQUIRE(runs.size() <= 2 * (pass.piece_bands.size() - 1));
    tile_work(listed, listed.heads[0].passes[0], t, listed_runs, columns);
    REQUIRE(listed_runs.size() == runs.size());
    for (size_t r = 0; r < runs.size(); ++r) {
      REQUIRE((listed_runs[r].begin == runs[r].begin && listed_runs[r].end == runs[r].end &&
               listed_runs[r].mask == runs[r].mask));
    }
  }
}

TEST_CASE("a block summary piece's key counts: exact, and two lookups past the ends where bands are evenly spaced",
          "[plan][exact]") {
  std::mt19937_64 rng(79);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 200; ++trial) {
    // Bands ascending in position: evenly spaced (a block's other keys, a phase's keys over one segment)
    // or with random gaps, lengths and steps (pieces over several segments).
    const bool even = trial % 2 == 0;
    const int64_t spacing = uniform(2, 300), count = even ? uniform(1, spacing) : 0;
    std::vector<Band> bands;
    int64_t logical = uniform(0, 50), orig = uniform(0, 100);
    for (int64_t b = 0, n = uniform(1, 40); b < n; ++b) {
      const int64_t step = even ? 1 : uniform(1, 5), keys = even ? count : uniform(1, 30);
      bands.push_back(Band{logical, orig, step, keys});
      logical += keys;
      orig += even ? spacing : step * (keys - 1) + uniform(1, 200);
    }
    const int64_t first = 0, last = static_cast<int64_t>(bands.size());
    int lookups = 0;
    auto band_at = [&](int64_t b) {
      ++lookups;
      return bands[b];
    };
    for (int probe = 0; probe < 50; ++probe) {
      const int64_t x = uniform(-5, bands.back().orig_last() + 5);
      int64_t want = bands.front().logical, want_next = last;
      for (int64_t b = last - 1; b >= 0; --b) {  // the brute-force count and the band of the next key
        for (int64_t k = bands[b].count - 1; k >= 0; --k) {
          if (bands[b].orig_at(bands[b].logical + k) > x) want_next = b, want = bands[b].logical + k;
        }
      }
      if (x >= bands.back().orig_last()) want = bands.back().logical + bands.back().count;
      CAPTURE(trial, x);
      lookups = 0;
      int64_t next = -1;
      REQUIRE(ordered_keys_end<int64_t>(band_at, first, last, x, next) == want);
      REQUIRE(next == want_next);
      if (even) REQUIRE(lookups <= 4);  // the ends, then the guess and the band after it
    }
  }
}

TEST_CASE("SF-fixed is one block summary pass that counts exactly the oracle mask", "[plan][exact]") {
  std::mt19937_64 rng(73);
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      for (const PlanOptions& tiles : kTiles) {
        // Summary keys per block 0 to 3 (random_head's range), blocks of frames or random lengths.
        ResolvedHead head = random_head(boundary, {PatternKind::kSfFixed}, layout, rng);
        const SparsePlan plan = build_plan(layout, {head}, tiles);
        REQUIRE(first_mismatch(layout, head, plan) == "");
        if (boundary == BoundaryKind::kNone) REQUIRE(plan.heads[0].passes.size() == 1);
      }
    }
  }
  // Blocks of a frame, of a tile, shorter than a tile (a tile's rows in several blocks, whose other keys
  // are then rule-tested); summary keys of a phase each, in position order, or filling whole blocks.
  const SequenceLayout frames = LayoutBuilder().text(129).video(7, 16, 16).text(61).build();
  ResolvedHead head;
  head.patterns[0][0].params.kind = PatternKind::kSfFixed;
  for (const int64_t block : {int64_t(256), int64_t(128), int64_t(100), int64_t(7)}) {
    for (const int64_t summary : {int64_t(0), int64_t(1), int64_t(3), int64_t(8), int64_t(9), int64_t(16),
                                  int64_t(41), block, block + 3}) {
      CAPTURE(block, summary);
      head.patterns[0][0].index.block = block;
      head.patterns[0][0].params.block_head = summary;
      const SparsePlan plan = build_plan(frames, {head}, {128, 64});
      const SparsePlan listed = build_plan(frames, {head}, {128, 64, /*compact_passes=*/false});
      REQUIRE(first_mismatch(frames, head, plan) == "");
      REQUIRE(first_mismatch(frames, head, listed) == "");
      check_fixed_pass(plan, listed, block, std::min(summary, block));
    }
  }
  // Query and key modalities apart (2-D boundaries): column segments of several pieces.
  ResolvedHead two_d;
  two_d.boundary = BoundaryKind::k2D;
  for (const int64_t summary : {int64_t(2), int64_t(9), int64_t(30), int64_t(100)}) {
    for (auto& row : two_d.patterns) {
      for (ResolvedPattern& p : row) p = head.patterns[0][0], p.index.block = 100, p.params.block_head = summary;
    }
    REQUIRE(first_mismatch(frames, two_d, build_plan(frames, {two_d}, {128, 64})) == "");
  }
}

TEST_CASE("grids with horizontal and slash lines count exactly the oracle mask", "[plan][exact]") {
  // Frames long enough that a phase's band spans many chunks, so the builder emits whole bands at once
  // (their chunks split into rule-tested, fully kept and causal runs) as well as chunk by chunk.
  std::mt19937_64 rng(71);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const SequenceLayout layout = SequenceLayout::parse("text:37,video:12x8x8,text:29");
  int checked = 0;
  for (const PlanOptions& tiles : kTiles) {
    for (int lines = 1; lines < 8; ++lines) {  // v, h, s as bits
      ResolvedHead head = random_head(BoundaryKind::kNone, {PatternKind::kGrid}, layout, rng);
      for (auto& row : head.patterns) {
        for (ResolvedPattern& p : row) {
          p.params.vline = lines & 1;
          p.params.hline = (lines >> 1) & 1;
          p.params.slash = (lines >> 2) & 1;
          p.params.grid_local = uniform(1, 96);
          p.index.stride = uniform(1, 70);
          p.index.phase = uniform(0, p.index.stride - 1);
        }
      }
      const SparsePlan plan = build_plan(layout, {head}, tiles);
      INFO(describe_resolved(head, layout) << ", tiles " << tiles.block_m << "x" << tiles.block_n);
      REQUIRE(first_mismatch(layout, head, plan) == "");
      REQUIRE(head_stats(plan, 0).computed_elements == expected_computed(plan, 0));
      ++checked;
    }
  }
  REQUIRE(checked == 28);
}

TEST_CASE("the CPU executor equals masked dense attention", "[executor][exact]") {
  std::mt19937_64 rng(7);
  const int64_t heads = 4, kv_heads = 2, dim = 24;
  uint64_t seed = 100;
  for (const SequenceLayout& layout : test_layouts()) {
    for (BoundaryKind boundary : kBoundaries) {
      for (size_t k = 0; k < kKinds.size(); ++k) {
        std::vector<ResolvedHead> resolved;
        for (int64_t h = 0; h < heads; ++h) {
          resolved.push_back(random_head(boundary, {kKinds[(k + h) % kKinds.size()]}, layout, rng));
        }
        const SparsePlan plan = build_plan(layout, resolved, kTiles[k % kTiles.size()]);
        const RandomQKV x = random_qkv(layout.length(), heads, kv_heads, dim, ++seed);
        const AttentionOutput got = execute_plan_cpu(plan, x.q, x.k, x.v);
        const AttentionOutput want = masked_attention_reference(x.q, x.k, x.v, oracle_mask(layout, resolved));
        INFO("layout " << layout.describe() << ", boundary " << boundary_name(boundary) << ", first head "
                       << describe_resolved(resolved[0], layout));
        REQUIRE(relative_error(got.out, want.out) <= 1e-5);
        REQUIRE(at::allclose(got.lse, want.lse, 1e-5, 1e-5));
      }
    }
  }
}

TEST_CASE("the CPU executor accepts bf16 and fp16 inputs", "[executor]") {
  std::mt19937_64 rng(11);
  const SequenceLayout layout = SequenceLayout::parse("text:21,video:4x3x6,text:17");
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    std::vector<ResolvedHead> resolved;
    for (int h = 0; h < 4; ++h) resolved.push_back(random_head(BoundaryKind::kQ, kKinds, layout, rng));
    const SparsePlan plan = build_plan(layout, resolved);
    const RandomQKV x = random_qkv(layout.length(), 4, 1, 32, 5, dtype);
    const AttentionOutput got = execute_plan_cpu(plan, x.q, x.k, x.v);
    const AttentionOutput want = masked_attention_reference(x.q, x.k, x.v, oracle_mask(layout, resolved));
    REQUIRE(got.out.scalar_type() == dtype);
    // Both compute from the same rounded inputs; only the final rounding to 16 bits differs.
    REQUIRE(relative_error(got.out, want.out) <= 1e-2);
  }
}

TEST_CASE("dense attention: plan, executor and chunked reference agree", "[executor][exact]") {
  for (int64_t n : {1, 63, 64, 65, 300}) {
    const SequenceLayout layout = SequenceLayout::parse("text:" + std::to_string(n));
    ResolvedHead dense;
    const SparsePlan plan = build_plan(layout, {dense, dense, dense});
    const RandomQKV x = random_qkv(n, 3, 1, 16, uint64_t(n));
    const AttentionOutput reference = masked_attention_reference(x.q, x.k, x.v, oracle_mask(layout, {dense, dense, dense}));
    REQUIRE(relative_error(execute_plan_cpu(plan, x.q, x.k, x.v).out, reference.out) <= 1e-5);
    const AttentionOutput chunked = dense_attention_cpu(x.q, x.k, x.v);
    REQUIRE(relative_error(chunked.out, reference.out) <= 1e-5);
    REQUIRE(attention_recall(chunked.lse, reference.lse) == Approx(1.0).epsilon(1e-6));
    REQUIRE(plan_stats(plan).density() == Approx(1.0));
  }
}

TEST_CASE("a permuted grid plan visits dense bands", "[plan]") {
  // One video of 64 frames x 64 tokens: vertical lines of one phase form a contiguous key band after
  // the phase-major permutation, so the lines pass needs no gathered columns.
  const SequenceLayout layout = LayoutBuilder().text(64).video(64, 8, 8).text(64).build();
  ResolvedHead head;
  head.patterns[0][0].params.kind = PatternKind::kGrid;
  head.patterns[0][0].params.grid_local = 256;
  head.patterns[0][0].index.stride = 64;
  head.patterns[0][0].index.phase = 5;
  PlanOptions listed_tiles;
  listed_tiles.compact_passes = false;
  const SparsePlan plan = build_plan(layout, {head}, listed_tiles);
  REQUIRE(plan.heads[0].passes.size() == 2);
  const Pass& lines = plan.heads[0].passes[1];
  REQUIRE(lines.columns.empty());
  REQUIRE(lines.cols.bands().size() == 64);
  const PlanStats stats = head_stats(plan, 0);
  REQUIRE(stats.flops_ratio(layout.length()) < 0.35);
  // Compact, the same head is one range pass whose tiles take the line's keys below their window (one
  // band: one video), computing less.
  const SparsePlan compact = build_plan(layout, {head});
  REQUIRE(compact.heads[0].passes.size() == 1);
  REQUIRE(compact.heads[0].passes[0].lines.bands().size() == 1);
  REQUIRE(head_stats(compact, 0).computed_elements < stats.computed_elements);
  REQUIRE(count_matrix(compact, 0) == count_matrix(plan, 0));
}
