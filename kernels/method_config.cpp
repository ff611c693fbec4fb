#include "kernels/method_config.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace mmi {
namespace {

std::string at_line(const YAML::Node& node) {
  return node.Mark().line >= 0 ? " (line " + std::to_string(node.Mark().line + 1) + ")" : "";
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

int64_t read_int(const YAML::Node& node, const std::string& key, const std::string& where) {
  try {
    return node.as<int64_t>();
  } catch (const YAML::Exception&) {
    fail(where, "parameter '" + key + "' must be an integer, got '" + (node.IsScalar() ? node.Scalar() : "a non-scalar") +
                    "'" + at_line(node));
  }
}

std::vector<int64_t> read_int_list(const YAML::Node& node, const std::string& key, const std::string& where) {
  std::vector<int64_t> out;
  if (node.IsSequence()) {
    for (const auto& item : node) out.push_back(read_int(item, key, where));
  } else if (node.IsScalar() && node.Scalar().find('|') != std::string::npos) {
    std::stringstream stream(node.Scalar());
    std::string part;
    while (std::getline(stream, part, '|')) out.push_back(read_int(YAML::Node(part), key, where));
  } else {
    out.push_back(read_int(node, key, where));
  }
  return out;
}

std::vector<std::string> keys_for(PatternKind kind) {
  switch (kind) {
    case PatternKind::kDense: return {};
    case PatternKind::kAShape: return {"sink", "local"};
    case PatternKind::kTriShape: return {"sink", "local", "last_rows"};
    case PatternKind::kSfFixed: return {"block", "block_head"};
    case PatternKind::kSfStrided: return {"block"};
    case PatternKind::kVerticalSlash: return {"n_vertical", "n_slash", "last_q"};
    case PatternKind::kGrid: return {"strides", "stride", "lines", "local", "last_q"};
  }
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

void read_lines(const YAML::Node& node, PatternParams& p, const std::string& where) {
  const std::string lines = node.as<std::string>();
  p.vline = p.hline = p.slash = false;
  for (char c : lines) {
    if (c == 'v') p.vline = true;
    else if (c == 'h') p.hline = true;
    else if (c == 's') p.slash = true;
    else fail(where, "parameter 'lines' takes the letters v, h, s (vertical, horizontal, slash), got '" + lines + "'" + at_line(node));
  }
}

}  // namespace

PatternParams parse_pattern_params(const YAML::Node& node, std::optional<PatternKind> kind,
                                   const std::string& where, const std::vector<std::string>& ignored) {
  if (node && !node.IsNull() && !node.IsMap()) fail(where, "expected a map of parameters" + at_line(node));
  PatternParams p;
  if (kind) {
    p.kind = *kind;
  } else if (node && node["pattern"]) {
    try {
      p.kind = parse_pattern(node["pattern"].as<std::string>());
    } catch (const std::invalid_argument& e) {
      fail(where, e.what() + at_line(node["pattern"]));
    }
  } else {
    fail(where, "missing 'pattern:' (one of dense, a_shape, tri_shape, sf_fixed, sf_strided, vertical_slash, grid)" +
                    (node ? at_line(node) : std::string()));
  }
  if (!node || node.IsNull()) return p;
  const std::vector<std::string> known = keys_for(p.kind);
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (key == "pattern" || std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      fail(where, "unknown parameter '" + key + "' for " + pattern_name(p.kind) + " (known: " + join(known) + ")" +
                      at_line(entry.first));
    }
    if (key == "sink") p.sink = read_int(value, key, where);
    else if (key == "local" && p.kind == PatternKind::kGrid) p.grid_local = read_int(value, key, where);
    else if (key == "local") p.local = read_int(value, key, where);
    else if (key == "last_rows") p.last_rows = read_int(value, key, where);
    else if (key == "block") p.block = read_int(value, key, where);
    else if (key == "block_head") p.block_head = read_int(value, key, where);
    else if (key == "n_vertical") p.n_vertical = read_int(value, key, where);
    else if (key == "n_slash") p.n_slash = read_int(value, key, where);
    else if (key == "last_q") p.last_q = read_int(value, key, where);
    else if (key == "strides" || key == "stride") p.strides = read_int_list(value, key, where);
    else if (key == "lines") read_lines(value, p, where);
  }
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    fail(where, e.what() + at_line(node));
  }
  return p;
}

HeadConfig parse_head_config(const YAML::Node& node, const std::string& where) {
  if (!node.IsMap()) fail(where, "expected a map with 'pattern:' or 'patterns:'" + at_line(node));
  const std::vector<std::string> ignored = {"boundary", "score", "patterns", "scores"};
  HeadConfig head;
  if (node["boundary"]) {
    try {
      head.boundary = parse_boundary(node["boundary"].as<std::string>());
    } catch (const std::invalid_argument& e) {
      fail(where, e.what() + at_line(node["boundary"]));
    }
  }
  // The entry's own pattern is the default for every modality (pair) the `patterns` map leaves out.
  PatternParams base;
  if (node["pattern"]) base = parse_pattern_params(node, std::nullopt, where, ignored);
  for (auto& row : head.patterns) row.fill(base);
  const YAML::Node patterns = node["patterns"];
  if (!patterns) {
    if (!node["pattern"]) fail(where, "missing 'pattern:'" + at_line(node));
    return head;
  }
  if (head.boundary != BoundaryKind::kQ && head.boundary != BoundaryKind::k2D) {
    fail(where, "'patterns:' needs boundary q or 2d" + at_line(patterns));
  }
  for (const auto& entry : patterns) {
    const std::string key = entry.first.as<std::string>();
    const std::string here = where + " [" + key + "]";
    const PatternParams params = parse_pattern_params(entry.second, std::nullopt, here);
    try {
      if (head.boundary == BoundaryKind::kQ) {
        head.patterns[int(parse_modality(key))][0] = params;
      } else {
        const size_t arrow = key.find("->");
        if (arrow == std::string::npos) fail(here, "2d patterns are keyed ROWS->KEYS, e.g. text->video");
        head.patterns[int(parse_modality(key.substr(0, arrow)))][int(parse_modality(key.substr(arrow + 2)))] = params;
      }
    } catch (const std::invalid_argument& e) {
      if (std::string(e.what()).rfind(here, 0) == 0) throw;
      fail(here, e.what() + at_line(entry.first));
    }
  }
  return head;
}

PatternTable PatternTable::load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::invalid_argument("pattern table " + path + ": cannot open the file");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument("pattern table " + path + ": malformed YAML: " + e.what());
  }
  PatternTable table = parse(root, path);
  table.source_ = path;
  return table;
}

PatternTable PatternTable::parse(const YAML::Node& root, const std::string& where) {
  if (!root.IsMap()) fail(where, "expected a map with 'layers:' and/or 'default:'");
  PatternTable table;
  table.source_ = where;
  if (root["default"]) table.default_ = parse_head_config(root["default"], where + ": default");
  const YAML::Node layers = root["layers"];
  if (layers && !layers.IsMap()) fail(where, "'layers:' must map layer numbers to heads" + at_line(layers));
  if (layers) {
    for (const auto& layer : layers) {
      const int l = static_cast<int>(read_int(layer.first, "layer", where));
      if (!layer.second.IsMap()) fail(where, "layer " + std::to_string(l) + " must map head numbers to patterns" + at_line(layer.second));
      for (const auto& head : layer.second) {
        const int h = static_cast<int>(read_int(head.first, "head", where));
        const std::string here = where + ": layer " + std::to_string(l) + " head " + std::to_string(h);
        table.entries_[{l, h}] = parse_head_config(head.second, here);
      }
    }
  }
  if (table.entries_.empty() && !table.default_) fail(where, "no 'layers:' entries and no 'default:'");
  return table;
}

HeadConfig PatternTable::head(int layer, int head) const {
  auto it = entries_.find({layer, head});
  if (it != entries_.end()) return it->second;
  if (default_) return *default_;
  throw std::invalid_argument("pattern table " + source_ + ": no entry for layer " + std::to_string(layer) +
                              " head " + std::to_string(head) + " and no 'default:'");
}

}  // namespace mmi
