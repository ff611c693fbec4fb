// The closed-form keep bits the CUDA kernels use for rule-tested chunks equal rule_keeps_at, element by
// element: random Vertical-Slash bitmaps and random range rules, rows before, inside and after the
// chunk, chunks of every length, at the edges of the bitmaps.
#include <algorithm>
#include <random>
#include <vector>

#include "kernels/grid_line_walk.h"
#include "kernels/rule_bits.h"
#include "tests/catch.h"

using namespace mmi;

namespace {

constexpr int64_t kLength = 300;  // positions covered by the bitmaps

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// The bits rule_keeps_at gives row i over keys c0 .. c0 + len - 1.
uint64_t expected_bits(const MaskRule& rule, const uint64_t* words, int64_t i, int64_t c0, int64_t len) {
  uint64_t bits = 0;
  for (int64_t c = 0; c < len; ++c) {
    if (i >= 0 && rule_keeps_at(rule, words, i, c0 + c, -1, -1)) bits |= uint64_t(1) << c;
  }
  return bits;
}

// Up to three visual spans, ascending, inside the bitmaps' positions; each at most max_length long.
struct RandomSpans {
  std::vector<int64_t> starts, ends;
  RandomSpans(std::mt19937_64& rng, int64_t max_length) {
    for (int64_t at = uniform(rng, 0, 40); at < kLength && starts.size() < 3; at += uniform(rng, 1, 40)) {
      starts.push_back(at);
      at = std::min(kLength, at + uniform(rng, 1, max_length));
      ends.push_back(at);
    }
  }
  VisualSpans view() const { return VisualSpans{starts.data(), ends.data(), static_cast<int64_t>(starts.size())}; }
};

}  // namespace

TEST_CASE("bit reversal and bitmap windows", "[rule_bits]") {
  REQUIRE(reverse_bits(1) == uint64_t(1) << 63);
  REQUIRE(reverse_bits(0xF0) == uint64_t(0x0F) << 56);
  const std::vector<uint64_t> words = {0x8000000000000001ull, 0x3ull, 0};
  REQUIRE(bit_window(words.data(), 0) == words[0]);
  REQUIRE(bit_window(words.data(), 63) == 0x7ull);   // bit 63 of word 0, bits 0-1 of word 1
  REQUIRE(bit_window(words.data(), -2) == words[0] << 2);  // bits below 0 read 0
  REQUIRE(bit_window(words.data(), -64) == 0);
}

TEST_CASE("Vertical-Slash keep bits equal the rule, element by element", "[rule_bits][exact]") {
  std::mt19937_64 rng(17);
  std::vector<uint64_t> words((kLength + 63) / 64 * 2 + 2, 0);  // verticals, then slashes, spare words
  MaskRule rule;
  rule.vertical_words = 0;
  rule.slash_words = (kLength + 63) / 64 + 1;
  REQUIRE(is_vertical_slash_rule(rule));
  for (int round = 0; round < 40; ++round) {
    std::fill(words.begin(), words.end(), 0);
    const int64_t density = uniform(rng, 1, 30);  // percent of positions set
    for (int64_t b = 0; b < kLength; ++b) {
      if (uniform(rng, 0, 99) < density) words[rule.vertical_words + b / 64] |= uint64_t(1) << (b % 64);
      if (uniform(rng, 0, 99) < density) words[rule.slash_words + b / 64] |= uint64_t(1) << (b % 64);
    }
    for (int probe = 0; probe < 200; ++probe) {
      const int64_t len = uniform(rng, 1, 64), c0 = uniform(rng, 0, kLength - len);
      const int64_t i = uniform(rng, -1, kLength - 1);
      INFO("row " << i << ", keys " << c0 << " + " << len);
      REQUIRE(vertical_slash_bits(words.data(), rule, int32_t(i), int32_t(c0), int32_t(len)) ==
              expected_bits(rule, words.data(), i, c0, len));
    }
  }
}

TEST_CASE("a warpgroup's rows miss a chunk through the slashes exactly when none keeps a key of it",
          "[rule_bits][exact]") {
  std::mt19937_64 rng(23);
  std::vector<uint64_t> slashes((kLength + 63) / 64 + 1, 0);  // a spare word, as plans carry
  int64_t misses = 0, hits = 0;
  for (int round = 0; round < 40; ++round) {
    std::fill(slashes.begin(), slashes.end(), 0);
    const int64_t density = uniform(rng, 0, 8);  // percent of distances kept: sparse, so misses happen
    for (int64_t d = 0; d < kLength; ++d) {
      if (uniform(rng, 0, 99) < density) slashes[d / 64] |= uint64_t(1) << (d % 64);
    }
    auto kept = [&](int64_t d) { return d >= 0 && d < kLength && (slashes[d / 64] >> (d % 64)) & 1; };
    for (int probe = 0; probe < 200; ++probe) {
      // Rows r0 .. r1 (at most 64) and keys c0 .. c_last (at most 64), rows before, over and after them.
      const int64_t rows = uniform(rng, 1, 64), len = uniform(rng, 1, 64);
      const int64_t c0 = uniform(rng, 0, kLength - len), r0 = uniform(rng, 0, kLength - rows);
      const int64_t r1 = r0 + rows - 1, c_last = c0 + len - 1;
      bool any = false;
      for (int64_t i = r0; i <= r1; ++i) {
        for (int64_t j = c0; j <= c_last && j <= i; ++j) any = any || kept(i - j);
      }
      INFO("rows " << r0 << " .. " << r1 << ", keys " << c0 << " .. " << c_last);
      REQUIRE(slashes_miss<int32_t>(slashes.data(), int32_t(r0), int32_t(r1), int32_t(c0), int32_t(c_last)) == !any);
      ++(any ? hits : misses);
    }
  }
  REQUIRE(misses > 100);  // both answers were exercised
  REQUIRE(hits > 100);
}

TEST_CASE("range-rule keep bits equal the rule, element by element", "[rule_bits][exact]") {
  std::mt19937_64 rng(23);
  for (int round = 0; round < 4000; ++round) {
    MaskRule rule;
    rule.sink = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 0, 120);
    rule.local = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 1, 150);
    rule.min_distance = uniform(rng, 0, 2) == 0 ? uniform(rng, 0, 100) : 0;
    rule.min_col = uniform(rng, 0, 2) == 0 ? uniform(rng, 0, 100) : 0;
    rule.all = uniform(rng, 0, 9) == 0;
    if (uniform(rng, 0, 4) == 0) rule.dense_rows_before = uniform(rng, 0, kLength);
    if (uniform(rng, 0, 4) == 0) rule.dense_rows_from = uniform(rng, 0, kLength);
    REQUIRE(is_range_rule(rule));
    const int64_t len = uniform(rng, 1, 64), c0 = uniform(rng, 0, kLength - len);
    const int64_t i = uniform(rng, -1, kLength - 1);
    INFO("row " << i << ", keys " << c0 << " + " << len << ", sink " << rule.sink << ", local " << rule.local
                << ", min distance " << rule.min_distance << ", min col " << rule.min_col);
    REQUIRE(range_rule_bits(rule, int32_t(i), int32_t(c0), int32_t(len)) == expected_bits(rule, nullptr, i, c0, len));
  }
}

TEST_CASE("range-rule keep bits with a grid's vertical line equal the rule, element by element",
          "[rule_bits][exact]") {
  std::mt19937_64 rng(29);
  for (int round = 0; round < 3000; ++round) {
    const RandomSpans random_spans(rng, 120);
    const VisualSpans spans = random_spans.view();
    MaskRule rule;
    rule.sink = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 0, 60);
    rule.local = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 1, 80);
    rule.min_distance = uniform(rng, 0, 2) == 0 ? uniform(rng, 0, 50) : 0;
    rule.min_col = uniform(rng, 0, 2) == 0 ? uniform(rng, 0, 50) : 0;
    rule.grid_stride = uniform(rng, 1, 70);
    rule.grid_phase = uniform(rng, 0, rule.grid_stride - 1);
    rule.grid_vline = true;
    REQUIRE(is_range_and_line_rule(rule));
    const int64_t len = uniform(rng, 1, 64), c0 = uniform(rng, 0, kLength - len);
    const int64_t i = uniform(rng, -1, kLength - 1);
    uint64_t want = 0;
    for (int64_t c = 0; c < len; ++c) {
      if (i >= 0 && rule_keeps(rule, nullptr, spans, i, c0 + c)) want |= uint64_t(1) << c;
    }
    INFO("row " << i << ", keys " << c0 << " + " << len << ", stride " << rule.grid_stride << ", phase "
                << rule.grid_phase << ", spans " << spans.count);
    const uint64_t line = grid_line_chunk_bits(spans, rule.grid_stride, rule.grid_phase, c0, len);
    REQUIRE(range_rule_bits(rule, int32_t(i), int32_t(c0), int32_t(len), line) == want);
  }
}

TEST_CASE("grid-line keep bits equal the rule, element by element, over chunks of one phase",
          "[rule_bits][exact]") {
  std::mt19937_64 rng(37);
  int one_phase = 0, mixed = 0;
  for (int round = 0; round < 6000; ++round) {
    const RandomSpans random_spans(rng, 200);
    const VisualSpans spans = random_spans.view();
    MaskRule rule;
    rule.min_distance = uniform(rng, 0, 2) == 0 ? 0 : uniform(rng, 0, 80);
    rule.min_col = uniform(rng, 0, 2) == 0 ? 0 : uniform(rng, 0, 60);
    rule.grid_stride = uniform(rng, 1, 40);
    rule.grid_phase = uniform(rng, 0, rule.grid_stride - 1);
    const int lines = static_cast<int>(uniform(rng, 1, 7));
    rule.grid_vline = lines & 1;
    rule.grid_hline = (lines >> 1) & 1;
    rule.grid_slash = (lines >> 2) & 1;
    REQUIRE(is_grid_lines_rule(rule));
    // Keys c0, c0 + step, ...: consecutive, or one grid phase's keys (step = the stride) as in a
    // phase-major band.
    const int64_t step = uniform(rng, 0, 1) == 0 ? 1 : rule.grid_stride;
    const int64_t len = uniform(rng, 1, std::min<int64_t>(64, (kLength - 1) / step + 1));
    const int64_t c0 = uniform(rng, 0, kLength - 1 - (len - 1) * step), c_last = c0 + (len - 1) * step;
    const int64_t key_phase = chunk_key_phase<int64_t>(spans, rule.grid_stride, c0, c_last, step);
    if (key_phase == kMixedPhases) {
      ++mixed;
      continue;
    }
    ++one_phase;
    const int64_t i = uniform(rng, -1, kLength - 1);
    const int64_t row_phase = i >= 0 ? rule_phase(rule, spans, i) : -1;
    uint64_t want = 0;
    for (int64_t c = 0; c < len; ++c) {
      const int64_t j = c0 + c * step;
      REQUIRE(rule_phase(rule, spans, j) == key_phase);  // the chunk's keys do share it
      if (i >= 0 && rule_keeps(rule, nullptr, spans, i, j)) want |= uint64_t(1) << c;
    }
    INFO("row " << i << ", keys " << c0 << " + " << step << " x " << len << ", stride " << rule.grid_stride
                << ", phase " << rule.grid_phase << ", lines " << lines);
    REQUIRE(grid_rule_bits<int32_t>(rule, int32_t(i), int32_t(row_phase), int32_t(key_phase), int32_t(c0),
                                    int32_t(step), int32_t(len)) == want);
  }
  REQUIRE(one_phase > 1000);
  REQUIRE(mixed > 100);
}

TEST_CASE("the closed forms serve exactly their rules", "[rule_bits]") {
  MaskRule ranges;
  ranges.sink = 4;
  ranges.local = 64;
  REQUIRE(is_range_rule(ranges));
  REQUIRE_FALSE(is_vertical_slash_rule(ranges));
  MaskRule grid = ranges;
  grid.grid_stride = 16;
  grid.grid_vline = true;
  REQUIRE_FALSE(is_range_rule(grid));
  REQUIRE(is_range_and_line_rule(grid));  // a vertical line has closed-form bits too
  grid.grid_slash = true;
  REQUIRE_FALSE(is_range_and_line_rule(grid));
  REQUIRE_FALSE(is_grid_lines_rule(grid));  // with ranges
  MaskRule lines;
  lines.grid_stride = 16;
  lines.grid_hline = true;
  lines.min_distance = 1024;
  lines.min_col = 128;
  REQUIRE(is_grid_lines_rule(lines));
  lines.grid_stride = 0;
  REQUIRE_FALSE(is_grid_lines_rule(lines));
  MaskRule vs;
  vs.slash_words = 0;
  REQUIRE(is_vertical_slash_rule(vs));
  REQUIRE_FALSE(is_range_rule(vs));
  vs.local = 8;  // a mixed rule has neither form
  REQUIRE_FALSE(is_vertical_slash_rule(vs));
}
