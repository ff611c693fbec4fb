// Reading pattern parameters and per-head pattern tables from YAML.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>

#include "kernels/pattern.h"

namespace mmi {

// Reads a pattern's parameters from a YAML map. `kind` fixes the pattern (or, when unset, the map's
// `pattern:` key chooses it). Keys in `ignored` are skipped (e.g. "boundary", "score"); any other key
// the pattern does not take is an error. `where` prefixes messages ("method a_shape", "file:line").
PatternParams parse_pattern_params(const YAML::Node& node, std::optional<PatternKind> kind,
                                   const std::string& where, const std::vector<std::string>& ignored = {});

// A per-layer, per-head table of head configurations (the `mminference` method's input), as written by
// `mmi search` under configs/patterns/:
//
//   model: NAME            # provenance, free-form
//   default: {pattern: a_shape, sink: 128, local: 4096}      # optional: heads not listed
//   layers:
//     0:
//       0: {pattern: grid, strides: [0, 16], lines: v, local: 1024, boundary: none,
//           score: {error: 0.04, flops: 0.31}}   # score: what the search reached (ignored here)
//       1: {pattern: vertical_slash, n_vertical: 1000, n_slash: 2048, boundary: q}
//       2: {boundary: q, patterns: {text: {pattern: vertical_slash}, video: {pattern: grid}}}
//       3: {boundary: 2d, patterns: {video->video: {pattern: grid}, text->video: {...}, ...}}
class PatternTable {
 public:
  static PatternTable load(const std::string& path);
  static PatternTable parse(const YAML::Node& root, const std::string& where);

  // The configuration of (layer, head); throws naming both when it is absent and there is no default.
  HeadConfig head(int layer, int head) const;
  const std::string& source() const { return source_; }
  std::size_t num_entries() const { return entries_.size(); }

 private:
  std::map<std::pair<int, int>, HeadConfig> entries_;
  std::optional<HeadConfig> default_;
  std::string source_;
};

// One table entry (a head's map) to a HeadConfig.
HeadConfig parse_head_config(const YAML::Node& node, const std::string& where);

}  // namespace mmi
