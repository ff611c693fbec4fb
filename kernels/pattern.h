// Attention patterns (SPEC §2–3): their parameters, the per-head index that online estimation
// resolves, and the explicit mask definition of each — the oracle that every plan and executor is
// tested against. Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/layout.h"

namespace mmi {

enum class PatternKind : uint8_t {
  kDense,
  kAShape,
  kTriShape,
  kSfFixed,
  kSfStrided,
  kVerticalSlash,
  kGrid,
};

enum class BoundaryKind : uint8_t { kNone, kK, kQ, k2D };

const char* pattern_name(PatternKind kind);
PatternKind parse_pattern(const std::string& name);  // throws listing the known names
const char* boundary_name(BoundaryKind kind);
BoundaryKind parse_boundary(const std::string& name);  // "none", "k", "q", "2d"

// Vertical-Slash always keeps the first kForcedColumns columns and the distances below
// kForcedDistances (sinks and the local diagonal band), whatever the estimate says.
constexpr int64_t kForcedColumns = 30;
constexpr int64_t kForcedDistances = 100;

// The configured parameters of one intra-modality pattern. Only the fields of `kind` matter.
struct PatternParams {
  PatternKind kind = PatternKind::kDense;
  // A-shape, Tri-shape: keys j < sink or i - j < local; Tri-shape adds the last `last_rows` rows dense.
  int64_t sink = 128;
  int64_t local = 4096;
  int64_t last_rows = 128;
  // SF-fixed / SF-strided: block length l (0 = the layout's tokens per frame) and, for SF-fixed,
  // the first `block_head` tokens of every block as summary columns.
  int64_t block = 0;
  int64_t block_head = 1;
  // Vertical-Slash: top-n columns and top-n diagonals estimated from the last `last_q` queries.
  int64_t n_vertical = 1000;
  int64_t n_slash = 1024;
  int64_t last_q = 64;
  // Grid: candidate strides (0 = the layout's tokens per frame), which lines, and the local window.
  std::vector<int64_t> strides = {0};
  bool vline = true;
  bool hline = false;
  bool slash = false;
  int64_t grid_local = 1024;

  std::string describe() const;  // "a_shape(sink=128,local=4096)"
  // Throws std::invalid_argument naming the parameter when a value is out of range.
  void validate() const;
};

// The index estimated online for one head and one pattern (empty for static patterns).
struct PatternIndex {
  std::vector<int64_t> verticals;  // Vertical-Slash: kept columns, ascending
  std::vector<int64_t> slashes;    // Vertical-Slash: kept distances i - j, ascending
  int64_t stride = 0;              // Grid: chosen stride and phase (relative to each visual span)
  int64_t phase = 0;
  int64_t block = 0;               // SF patterns: the resolved block length
};

struct ResolvedPattern {
  PatternParams params;
  PatternIndex index;
};

// One head's configuration: a boundary kind and the pattern(s) it applies.
//  - kNone / kK: `patterns[0][0]` over every row and key.
//  - kQ: `patterns[m][0]` for rows of modality m (index estimated from the last span of m).
//  - k2D: `patterns[m][n]` for rows of modality m and keys of modality n.
template <typename P>
struct BoundaryTable {
  BoundaryKind boundary = BoundaryKind::kNone;
  std::array<std::array<P, kNumModalities>, kNumModalities> patterns{};

  const P& for_pair(Modality row, Modality col) const {
    switch (boundary) {
      case BoundaryKind::kQ: return patterns[static_cast<int>(row)][0];
      case BoundaryKind::k2D: return patterns[static_cast<int>(row)][static_cast<int>(col)];
      default: return patterns[0][0];
    }
  }
};
// Equal in every field, whatever the kind (a plan builds the heads it finds equal once).
bool operator==(const PatternParams& a, const PatternParams& b);
bool operator==(const PatternIndex& a, const PatternIndex& b);
inline bool operator==(const ResolvedPattern& a, const ResolvedPattern& b) {
  return a.params == b.params && a.index == b.index;
}
template <typename P>
bool operator==(const BoundaryTable<P>& a, const BoundaryTable<P>& b) {
  return a.boundary == b.boundary && a.patterns == b.patterns;
}

using HeadConfig = BoundaryTable<PatternParams>;
using ResolvedHead = BoundaryTable<ResolvedPattern>;

HeadConfig uniform_head(const PatternParams& params, BoundaryKind boundary = BoundaryKind::kNone);

// ---- The explicit mask definitions (test oracle) --------------------------------------------------

// True when key j is kept for query i under `pattern` (SPEC §2), intersected with causality.
bool pattern_keeps(const SequenceLayout& layout, const ResolvedPattern& pattern, int64_t i, int64_t j);
// True when key j is kept for query i under a head's boundary table (SPEC §3).
bool head_keeps(const SequenceLayout& layout, const ResolvedHead& head, int64_t i, int64_t j);

// Phase of a visual position relative to the start of its span, modulo `stride`; -1 for text.
int64_t visual_phase(const SequenceLayout& layout, int64_t pos, int64_t stride);

}  // namespace mmi
