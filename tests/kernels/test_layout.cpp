#include <numeric>

#include "kernels/layout.h"
#include "kernels/plan.h"
#include "tests/catch.h"

using namespace mmi;

TEST_CASE("layouts parse, describe and locate positions", "[layout]") {
  const SequenceLayout layout = SequenceLayout::parse("text:10,video:3x2x4,image:2x3,text:5");
  REQUIRE(layout.length() == 10 + 24 + 6 + 5);
  REQUIRE(layout.num_spans() == 4);
  REQUIRE(layout.describe() == "text:10,video:3x2x4,image:2x3,text:5");
  REQUIRE(layout.visual_begin() == 10);
  REQUIRE(layout.visual_end() == 40);
  REQUIRE(layout.frame_stride() == 8);
  REQUIRE(layout.modality_at(9) == Modality::kText);
  REQUIRE(layout.modality_at(10) == Modality::kVideo);
  REQUIRE(layout.modality_at(34) == Modality::kImage);
  REQUIRE(layout.span_index_at(44) == 3);
  REQUIRE(layout.count(Modality::kText) == 15);
  REQUIRE(layout.modalities().size() == 3);
  REQUIRE(SequenceLayout::parse("video:4x16").span(0).tokens_per_frame == 16);
  REQUIRE_THROWS_WITH(layout.span_index_at(45), Contains("outside [0, 45)"));
}

TEST_CASE("bad layouts are rejected with the offending span named", "[layout]") {
  
  REQUIRE_THROWS_WITH(SequenceLayout(std::vector<Span>{}), Contains("no spans"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{0, 10}, Span{12, 5}}), Contains("span 1") && Contains("gap"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{0, 10}, Span{8, 5}}), Contains("overlaps"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{2, 10}}), Contains("gap"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{0, 0}}), Contains("empty"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{0, 10, Modality::kVideo, 2, 2, 2, 4}}), Contains("not its length"));
  REQUIRE_THROWS_WITH(SequenceLayout({Span{0, 8, Modality::kVideo, 2, 2, 2, 3}}), Contains("tokens_per_frame"));
  REQUIRE_THROWS_WITH(SequenceLayout::parse("text:10,audio:5"), Contains("unknown modality 'audio'"));
  REQUIRE_THROWS_WITH(SequenceLayout::parse("text:-3"), Contains("positive integer"));
  REQUIRE_THROWS_WITH(SequenceLayout::parse("video:3"), Contains("video:FxHxW"));
  REQUIRE_THROWS_WITH(SequenceLayout::parse("text"), Contains("KIND:SIZE"));
}

TEST_CASE("index maps round-trip", "[plan][permutation]") {
  auto check_bijection = [](const IndexMap& map, std::vector<int64_t> expected_positions) {
    std::vector<int64_t> all;
    map.gather(0, map.size(), all);
    REQUIRE(int64_t(all.size()) == map.size());
    for (int64_t x = 0; x < map.size(); ++x) {
      REQUIRE(map.to_orig(x) == all[x]);
      REQUIRE(map.to_logical(all[x]) == x);
    }
    std::sort(all.begin(), all.end());
    REQUIRE(all == expected_positions);
  };
  std::vector<int64_t> range(50);
  std::iota(range.begin(), range.end(), 0);
  check_bijection(IndexMap::identity(50), range);
  REQUIRE(IndexMap::identity(50).bands().size() == 1);
  check_bijection(IndexMap::phase_major({{0, 50}}, 7, false), range);
  const IndexMap pm = IndexMap::phase_major({{3, 20}, {25, 31}}, 4, true);
  std::vector<int64_t> subset;
  for (int64_t x = 3; x < 20; ++x) subset.push_back(x);
  for (int64_t x = 25; x < 31; ++x) subset.push_back(x);
  check_bijection(pm, subset);
  REQUIRE(pm.to_orig(0) == 3);   // phase 0 of the first segment
  REQUIRE(pm.to_orig(5) == 25);  // then phase 0 of the second (origin 25)
  REQUIRE(pm.to_logical(2) == -1);
  REQUIRE(pm.to_logical(22) == -1);
  const IndexMap joined = IndexMap::concat(IndexMap::of_segments({{0, 3}}), IndexMap::of_segments({{40, 45}}));
  check_bijection(joined, {0, 1, 2, 40, 41, 42, 43, 44});
  REQUIRE(joined.bands().size() == 2);
  REQUIRE(joined.to_logical(10) == -1);
  // Blocks of 10 over [3, 27) and [31, 45): every piece of a block its own band, or only offsets [2, 5)
  // of each block, or the rest.
  const std::vector<std::pair<int64_t, int64_t>> segments = {{3, 27}, {31, 45}};
  auto positions = [&](int64_t from, int64_t to) {
    std::vector<int64_t> kept;
    for (const auto& [begin, end] : segments) {
      for (int64_t x = begin; x < end; ++x) {
        if (x % 10 >= from && x % 10 < to) kept.push_back(x);
      }
    }
    return kept;
  };
  const IndexMap blocks = IndexMap::blocks(segments, 10);
  check_bijection(blocks, positions(0, 10));
  REQUIRE(blocks.bands().size() == 5);  // [3, 10), [10, 20), [20, 27), [31, 40), [40, 45)
  check_bijection(IndexMap::blocks(segments, 10, 2, 5), positions(2, 5));
  const IndexMap rest = IndexMap::blocks(segments, 10, 5);
  check_bijection(rest, positions(5, 10));
  REQUIRE(rest.unit_steps());
  REQUIRE(!pm.unit_steps());
  REQUIRE(IndexMap::blocks(segments, 10, 4, 4).empty());
  REQUIRE_THROWS_WITH(IndexMap::blocks(segments, 10, 6, 3), Contains("0 <= from <= to <= block"));
  REQUIRE_THROWS_WITH(IndexMap::blocks(segments, 10, 0, 11), Contains("0 <= from <= to <= block"));
}
