#include "kernels/pattern.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace mmi {
namespace {

struct PatternName {
  PatternKind kind;
  const char* name;
};
constexpr PatternName kPatternNames[] = {
    {PatternKind::kDense, "dense"},         {PatternKind::kAShape, "a_shape"},
    {PatternKind::kTriShape, "tri_shape"},  {PatternKind::kSfFixed, "sf_fixed"},
    {PatternKind::kSfStrided, "sf_strided"}, {PatternKind::kVerticalSlash, "vertical_slash"},
    {PatternKind::kGrid, "grid"},
};

void require(bool ok, const PatternParams& p, const char* field, const char* rule) {
  if (!ok) {
    throw std::invalid_argument(std::string("pattern ") + pattern_name(p.kind) + ": parameter '" + field +
                                "' " + rule);
  }
}

bool sorted_contains(const std::vector<int64_t>& values, int64_t x) {
  return std::binary_search(values.begin(), values.end(), x);
}

bool grid_keeps(const SequenceLayout& layout, const ResolvedPattern& p, int64_t i, int64_t j) {
  if (!layout.has_visual()) return true;  // no visual region: every row is outside it, so dense
  const int64_t begin = layout.visual_begin();
  const int64_t end = layout.visual_end();
  if (i < begin || i >= end) return true;  // text before and after the visual region: dense rows
  if (j < begin) return true;              // everything before the region is a sink
  if (i - j < p.params.grid_local) return true;
  const int64_t stride = p.index.stride;
  const int64_t phase_i = visual_phase(layout, i, stride);
  const int64_t phase_j = visual_phase(layout, j, stride);
  if (p.params.vline && phase_j == p.index.phase) return true;
  if (p.params.hline && phase_i == p.index.phase) return true;
  if (p.params.slash && phase_i >= 0 && phase_i == phase_j) return true;
  return false;
}

}  // namespace

const char* pattern_name(PatternKind kind) {
  for (const auto& entry : kPatternNames) {
    if (entry.kind == kind) return entry.name;
  }
  return "unknown";
}

PatternKind parse_pattern(const std::string& name) {
  std::string known;
  for (const auto& entry : kPatternNames) {
    if (name == entry.name) return entry.kind;
    known += known.empty() ? "" : ", ";
    known += entry.name;
  }
  throw std::invalid_argument("unknown pattern '" + name + "' (known: " + known + ")");
}

const char* boundary_name(BoundaryKind kind) {
  switch (kind) {
    case BoundaryKind::kNone: return "none";
    case BoundaryKind::kK: return "k";
    case BoundaryKind::kQ: return "q";
    case BoundaryKind::k2D: return "2d";
  }
  return "unknown";
}

BoundaryKind parse_boundary(const std::string& name) {
  if (name == "none" || name == "no") return BoundaryKind::kNone;
  if (name == "k") return BoundaryKind::kK;
  if (name == "q") return BoundaryKind::kQ;
  if (name == "2d") return BoundaryKind::k2D;
  throw std::invalid_argument("unknown boundary kind '" + name + "' (known: none, k, q, 2d)");
}

std::string PatternParams::describe() const {
  auto kv = [](const char* k, int64_t v) { return std::string(k) + "=" + std::to_string(v); };
  std::string args;
  switch (kind) {
    case PatternKind::kDense: break;
    case PatternKind::kAShape: args = kv("sink", sink) + "," + kv("local", local); break;
    case PatternKind::kTriShape:
      args = kv("sink", sink) + "," + kv("local", local) + "," + kv("last_rows", last_rows);
      break;
    case PatternKind::kSfFixed: args = kv("block", block) + "," + kv("block_head", block_head); break;
    case PatternKind::kSfStrided: args = kv("block", block); break;
    case PatternKind::kVerticalSlash:
      args = kv("n_vertical", n_vertical) + "," + kv("n_slash", n_slash) + "," + kv("last_q", last_q);
      break;
    case PatternKind::kGrid: {
      std::string list;
      for (int64_t s : strides) list += (list.empty() ? "" : "|") + std::to_string(s);
      args = "strides=" + list + ",lines=" + (vline ? "v" : "") + (hline ? "h" : "") + (slash ? "s" : "") +
             "," + kv("local", grid_local) + "," + kv("last_q", last_q);
      break;
    }
  }
  return std::string(pattern_name(kind)) + "(" + args + ")";
}

bool operator==(const PatternParams& a, const PatternParams& b) {
  auto fields = [](const PatternParams& p) {
    return std::tie(p.kind, p.sink, p.local, p.last_rows, p.block, p.block_head, p.n_vertical, p.n_slash, p.last_q,
                    p.strides, p.vline, p.hline, p.slash, p.grid_local);
  };
  return fields(a) == fields(b);
}

bool operator==(const PatternIndex& a, const PatternIndex& b) {
  auto fields = [](const PatternIndex& x) { return std::tie(x.verticals, x.slashes, x.stride, x.phase, x.block); };
  return fields(a) == fields(b);
}

void PatternParams::validate() const {
  switch (kind) {
    case PatternKind::kDense: break;
    case PatternKind::kTriShape:
      require(last_rows >= 0, *this, "last_rows", "must be >= 0");
      [[fallthrough]];
    case PatternKind::kAShape:
      require(sink >= 0, *this, "sink", "must be >= 0");
      require(local >= 1, *this, "local", "must be >= 1 (the diagonal is always kept)");
      break;
    case PatternKind::kSfFixed:
      require(block_head >= 0, *this, "block_head", "must be >= 0");
      [[fallthrough]];
    case PatternKind::kSfStrided:
      require(block >= 0, *this, "block", "must be >= 0 (0 = tokens per frame)");
      break;
    case PatternKind::kVerticalSlash:
      require(n_vertical >= 0, *this, "n_vertical", "must be >= 0");
      require(n_slash >= 0, *this, "n_slash", "must be >= 0");
      require(last_q >= 1, *this, "last_q", "must be >= 1");
      break;
    case PatternKind::kGrid:
      require(!strides.empty(), *this, "strides", "must list at least one stride");
      for (int64_t s : strides) require(s >= 0, *this, "strides", "must be >= 0 (0 = tokens per frame)");
      require(grid_local >= 1, *this, "local", "must be >= 1 (the diagonal is always kept)");
      require(last_q >= 1, *this, "last_q", "must be >= 1");
      break;
  }
}

HeadConfig uniform_head(const PatternParams& params, BoundaryKind boundary) {
  HeadConfig head;
  head.boundary = boundary;
  for (auto& row : head.patterns) row.fill(params);
  return head;
}

int64_t visual_phase(const SequenceLayout& layout, int64_t pos, int64_t stride) {
  const Span& s = layout.span(layout.span_index_at(pos));
  if (!is_visual(s.modality) || stride <= 0) return -1;
  return (pos - s.start) % stride;
}

bool pattern_keeps(const SequenceLayout& layout, const ResolvedPattern& p, int64_t i, int64_t j) {
  if (j > i || j < 0) return false;
  const PatternParams& c = p.params;
  switch (c.kind) {
    case PatternKind::kDense: return true;
    case PatternKind::kAShape: return j < c.sink || i - j < c.local;
    case PatternKind::kTriShape:
      return j < c.sink || i - j < c.local || i >= layout.length() - c.last_rows;
    case PatternKind::kSfFixed: {
      const int64_t l = p.index.block;
      return i / l == j / l || j % l < c.block_head;
    }
    case PatternKind::kSfStrided: {
      const int64_t l = p.index.block;
      return i - j < l || (i - j) % l == 0;
    }
    case PatternKind::kVerticalSlash:
      return sorted_contains(p.index.verticals, j) || sorted_contains(p.index.slashes, i - j);
    case PatternKind::kGrid: return grid_keeps(layout, p, i, j);
  }
  return false;
}

bool head_keeps(const SequenceLayout& layout, const ResolvedHead& head, int64_t i, int64_t j) {
  if (j > i || j < 0) return false;
  return pattern_keeps(layout, head.for_pair(layout.modality_at(i), layout.modality_at(j)), i, j);
}

}  // namespace mmi
