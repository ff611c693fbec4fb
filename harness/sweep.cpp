#include "harness/sweep.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace mmi {
namespace {

constexpr int64_t kMaxCombinations = 10000;
constexpr int kMaxDecimals = 9;  // decimal ranges are computed on integers scaled by 10^decimals
constexpr double kMaxScaled = 1e15;  // scaled range bounds stay exact integers in a double

const std::vector<std::string> kTopLevelKeys = {"name",   "description", "output", "context",
                                                "models", "methods",     "tasks"};
const std::vector<std::string> kModelKeys = {"name", "path", "random", "dtype", "device", "seed"};
const std::vector<std::string> kContextKeys = {"max_pixels", "min_pixels", "fps", "max_frames"};
// Method parameters that name files: never split on commas nor read as ranges.
const std::vector<std::string> kPathParams = {"table"};

// ---------------------------------------------------------------------------------------------
// Text and numbers

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  for (const auto& s : items) {
    if (s == item) return true;
  }
  return false;
}

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at = text.find(separator); at != std::string::npos;
       at = text.find(separator, start)) {
    parts.push_back(text.substr(start, at - start));
    start = at + separator.size();
  }
  parts.push_back(text.substr(start));
  return parts;
}

bool parse_int(const std::string& text, int64_t& out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return false;
  out = value;
  return true;
}

bool parse_number(const std::string& text, double& out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(value)) return false;
  out = value;
  return true;
}

// The shortest text that reads back as `value` ("0.5", "2", "0.1"), so that equal numbers written
// differently ("0.50", "5e-1") give the same labels and keys.
std::string format_number(double value) {
  char buffer[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

// A range bound: an optional minus sign, digits, and optionally a point and more digits.
bool is_plain_number(const std::string& text) {
  size_t i = text.size() > 1 && text[0] == '-' ? 1 : 0;
  const size_t digits_from = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == digits_from) return false;
  if (i == text.size()) return true;
  if (text[i] != '.' || i + 1 == text.size()) return false;
  for (++i; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

int decimals_of(const std::string& number) {
  const size_t point = number.find('.');
  return point == std::string::npos ? 0 : static_cast<int>(number.size() - point - 1);
}

// value / 10^decimals as the shortest decimal text: (25, 2) -> "0.25", (100, 2) -> "1".
std::string format_scaled(int64_t value, int decimals) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  if (digits.size() <= static_cast<size_t>(decimals)) {
    digits.insert(0, decimals + 1 - digits.size(), '0');
  }
  std::string whole = digits.substr(0, digits.size() - decimals);
  std::string fraction = digits.substr(digits.size() - decimals);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  std::string text = (value < 0 ? "-" : "") + whole;
  return fraction.empty() ? text : text + "." + fraction;
}

// "configs/quickstart.yaml" -> "quickstart".
std::string stem(const std::string& path) {
  const std::string file = split(path, "/").back();
  return file.substr(0, file.rfind('.'));
}

std::string where_in(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// A node's text: scalars as written, sequences as comma lists.
std::string node_text(const YAML::Node& node) {
  if (!node.IsSequence()) return node.Scalar();
  std::vector<std::string> items;
  for (const auto& item : node) items.push_back(item.Scalar());
  return join(items, ",");
}

std::string task_key(const TaskSpec& task) {
  std::string key = task.name;
  for (const auto& [name, value] : task.params) key += " " + name + "=" + node_text(value);
  const ContextSpec& c = task.context;
  return key + " max_pixels=" + std::to_string(c.max_pixels) +
         " min_pixels=" + std::to_string(c.min_pixels) + " fps=" + format_number(c.fps) +
         " max_frames=" + std::to_string(c.max_frames);
}

// ---------------------------------------------------------------------------------------------
// Task and context settings

enum class Kind { kInt, kNumber, kString, kBool };

struct Setting {
  std::string key;
  Kind kind = Kind::kString;
  bool grid = false;                  // a list the task expands; always stored as a sequence
  bool (*accepts)(double) = nullptr;  // numeric settings: the values allowed
  std::string expects;                // what an error says is expected
  std::vector<std::string> choices;   // string settings: the values allowed (empty: any)
  std::string fallback;               // filled in when the sweep leaves the setting out
  bool required = false;
};

Setting grid_setting(std::string key, Kind kind, bool (*accepts)(double), std::string expects,
                     bool required, std::string fallback = "") {
  Setting s;
  s.key = std::move(key);
  s.kind = kind;
  s.grid = true;
  s.accepts = accepts;
  s.expects = std::move(expects);
  s.required = required;
  s.fallback = std::move(fallback);
  return s;
}

Setting text_setting(std::string key, std::string expects, std::vector<std::string> choices,
                     std::string fallback, bool required) {
  Setting s;
  s.key = std::move(key);
  s.expects = std::move(expects);
  s.choices = std::move(choices);
  s.fallback = std::move(fallback);
  s.required = required;
  return s;
}

Setting scalar_setting(std::string key, Kind kind, bool (*accepts)(double), std::string expects) {
  Setting s;
  s.key = std::move(key);
  s.kind = kind;
  s.accepts = accepts;
  s.expects = std::move(expects);
  return s;
}

bool at_least_one(double v) { return v >= 1; }
bool at_least_eight(double v) { return v >= 8; }
bool unit_interval(double v) { return v >= 0 && v <= 1; }
bool open_unit_interval(double v) { return v > 0 && v < 1; }
bool positive(double v) { return v > 0; }
bool non_negative(double v) { return v >= 0; }

struct TaskKind {
  std::string name;
  bool per_item;  // samples come from a manifest, the grid applies to each item
  std::vector<Setting> settings;
};

std::vector<Setting> vniah_settings() {
  return {grid_setting("frames", Kind::kInt, at_least_one, "integers >= 1", true),
          grid_setting("depths", Kind::kNumber, unit_interval, "numbers in [0, 1]", true),
          text_setting("needle", "one of: choice, short", {"choice", "short"}, "choice", false),
          text_setting("haystack", "'generated' or a video file", {}, "generated", false),
          scalar_setting("first_needle", Kind::kInt, non_negative, "an integer >= 0")};
}

// As tasks/mm_niah.h names them.
std::vector<Setting> mmniah_settings() {
  const std::vector<std::string> needles = {"image_choice", "image_short", "text_choice",
                                            "text_short"};
  std::vector<Setting> settings = vniah_settings();
  settings[2] =
      text_setting("needle", "one of: " + join(needles, ", "), needles, "image_choice", false);
  settings.push_back(grid_setting("text_share", Kind::kNumber, open_unit_interval,
                                  "numbers in (0, 1)", false, "0.25"));
  settings.push_back(text_setting("prose", "a plain-text book", {}, "", false));
  return settings;
}

// As tasks/event_qa.h names them.
std::vector<Setting> eventqa_settings() {
  Setting questions = grid_setting("questions", Kind::kString, nullptr, "some of: color, count, motion", false,
                                   "color,count,motion");
  questions.choices = {"color", "count", "motion"};
  return {grid_setting("frames", Kind::kInt, at_least_eight, "integers >= 8", true),
          std::move(questions),
          grid_setting("variants", Kind::kInt, non_negative, "integers >= 0", false, "0..3"),
          text_setting("haystack", "'generated' or a video file", {}, "generated", false),
          scalar_setting("first_script", Kind::kInt, non_negative, "an integer >= 0")};
}

std::vector<Setting> manifest_settings() {
  return {text_setting("manifest", "a JSONL manifest file", {}, "", true),
          grid_setting("frames", Kind::kInt, at_least_one, "integers >= 1", false),
          scalar_setting("limit", Kind::kInt, at_least_one, "an integer >= 1")};
}

const std::vector<TaskKind>& task_kinds() {
  static const std::vector<TaskKind> kinds = [] {
    std::vector<TaskKind> out = {{"vniah", false, vniah_settings()},
                                 {"mmniah", false, mmniah_settings()},
                                 {"eventqa", false, eventqa_settings()},
                                 {"videoqa", true, manifest_settings()},
                                 {"caption", true, manifest_settings()}};
    out[3].settings.push_back(scalar_setting("subtitles", Kind::kBool, nullptr, "true or false"));
    out[4].settings.push_back(text_setting("prompt", "a caption instruction", {}, "", false));
    return out;
  }();
  return kinds;
}

const TaskKind* find_task(const std::string& name) {
  for (const auto& kind : task_kinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& kind : task_kinds()) names.push_back(kind.name);
  return names;
}

const std::vector<Setting>& context_settings() {
  static const std::vector<Setting> settings = {
      grid_setting("max_pixels", Kind::kInt, at_least_one, "integers >= 1", false),
      grid_setting("min_pixels", Kind::kInt, at_least_one, "integers >= 1", false),
      grid_setting("fps", Kind::kNumber, positive, "numbers > 0", false),
      grid_setting("max_frames", Kind::kInt, at_least_one, "integers >= 1", false)};
  return settings;
}

// The values of every context setting (several where swept), keyed in kContextKeys order.
using ContextAxes = std::map<std::string, std::vector<std::string>>;

ContextAxes default_context() {
  const ContextSpec d;
  return {{"max_pixels", {std::to_string(d.max_pixels)}},
          {"min_pixels", {std::to_string(d.min_pixels)}},
          {"fps", {format_number(d.fps)}},
          {"max_frames", {std::to_string(d.max_frames)}}};
}

// ---------------------------------------------------------------------------------------------
// Sweep files

struct Axis {
  std::string key;
  std::vector<std::string> values;
};

// Reads one sweep file; every error names the file, line and column.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Sweep read(const YAML::Node& root) const;

 private:
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    throw SweepError(where_in(source_, mark) + ": " + message);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    fail(node.Mark(), message);
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& what) const;
  std::string scalar_at(const YAML::Node& map, const std::string& key,
                        const std::string& what) const;
  YAML::Node list_at(const YAML::Node& root, const std::string& key, const std::string& form) const;

  std::vector<std::string> expand_text(const std::string& text, const YAML::Node& at,
                                       const std::string& what) const;
  std::vector<std::string> expand_range(const std::string& text, const YAML::Node& at,
                                        const std::string& what) const;

  ModelSpec read_model(const YAML::Node& entry) const;
  void read_model_options(const YAML::Node& entry, ModelSpec& model) const;
  std::vector<MethodSpec> read_method(const YAML::Node& entry) const;
  std::vector<Axis> read_method_spec(const YAML::Node& entry, std::string& name) const;
  std::vector<Axis> read_method_map(const YAML::Node& entry, std::string& name) const;
  std::vector<std::string> method_values(const std::string& key, const YAML::Node& value,
                                         const std::string& what) const;
  std::vector<MethodSpec> combine(const std::string& name, const std::vector<Axis>& axes,
                                  const YAML::Node& entry) const;

  std::vector<TaskSpec> read_task(const YAML::Node& entry, const ContextAxes& defaults) const;
  YAML::Node read_setting(const YAML::Node& value, const Setting& setting,
                          const std::string& what) const;
  std::string read_item(const std::string& text, const YAML::Node& at, const Setting& setting,
                        const std::string& what) const;
  ContextAxes read_context(const YAML::Node& node, ContextAxes axes, const std::string& what) const;
  std::vector<ContextSpec> expand_context(const ContextAxes& axes, const YAML::Node& at,
                                          const std::string& what) const;

  void read_models(const YAML::Node& root, Sweep& sweep) const;
  void read_methods(const YAML::Node& root, Sweep& sweep) const;
  void read_tasks(const YAML::Node& root, Sweep& sweep) const;

  std::string source_;
};

void Reader::check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                        const std::string& what) const {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) fail(entry.first, what + ": keys must be plain words");
    const std::string key = entry.first.Scalar();
    if (!contains(known, key)) {
      fail(entry.first, what + ": unknown key '" + key + "' (known: " + join(known, ", ") + ")");
    }
    if (!seen.insert(key).second) fail(entry.first, what + ": '" + key + "' is given twice");
    // A key without a value: the value's own mark would point at the next line.
    if (entry.second.IsNull()) fail(entry.first, what + ": '" + key + "' has no value");
  }
}

std::string Reader::scalar_at(const YAML::Node& map, const std::string& key,
                              const std::string& what) const {
  const YAML::Node node = map[key];
  if (!node) return "";
  if (!node.IsScalar()) fail(node, what + ": '" + key + "' must be a single value");
  return node.Scalar();
}

YAML::Node Reader::list_at(const YAML::Node& root, const std::string& key,
                           const std::string& form) const {
  const YAML::Node node = root[key];
  if (!node) fail(root, "missing '" + key + ":' (a list of " + form + ")");
  if (node.IsSequence() && node.size() == 0) {
    fail(node, "'" + key + "' is empty (a list of " + form + ")");
  }
  if (!node.IsSequence()) fail(node, "'" + key + "' must be a list of " + form);
  return node;
}

// "256", "256,512", "256..1024..256" or a mix ("8..16,32") to its values.
std::vector<std::string> Reader::expand_text(const std::string& text, const YAML::Node& at,
                                             const std::string& what) const {
  std::vector<std::string> out;
  for (const std::string& part : split(text, ",")) {
    const std::string item = trim(part);
    if (item.empty()) fail(at, what + ": empty item in '" + text + "'");
    if (item.find("..") == std::string::npos) {
      out.push_back(item);
    } else {
      const std::vector<std::string> range = expand_range(item, at, what);
      out.insert(out.end(), range.begin(), range.end());
    }
    if (static_cast<int64_t>(out.size()) > kMaxCombinations) {
      fail(at,
           what + ": '" + text + "' has more than " + std::to_string(kMaxCombinations) + " values");
    }
  }
  return out;
}

// "start..end" or "start..end..step" (step 1 by default): start, start + step, ... up to end,
// which is included when it lands on a step. Decimal ranges are stepped exactly, on integers
// scaled by 10^decimals, so that 0..1..0.1 ends at 1.
std::vector<std::string> Reader::expand_range(const std::string& text, const YAML::Node& at,
                                              const std::string& what) const {
  const auto malformed = [&](const std::string& why) {
    return what + ": malformed range '" + text + "': " + why;
  };
  std::vector<std::string> parts = split(text, "..");
  if (parts.size() < 2 || parts.size() > 3) {
    fail(at, malformed("expected start..end or start..end..step"));
  }
  int decimals = 0;
  for (auto& part : parts) {
    part = trim(part);
    if (!is_plain_number(part)) fail(at, malformed("'" + part + "' is not a number"));
    decimals = std::max(decimals, decimals_of(part));
  }
  if (decimals > kMaxDecimals) {
    fail(at, malformed("more than " + std::to_string(kMaxDecimals) + " decimals"));
  }
  const double scale = std::pow(10.0, decimals);
  std::vector<int64_t> scaled;
  for (const auto& part : parts) {
    const double value = std::strtod(part.c_str(), nullptr) * scale;
    if (std::fabs(value) > kMaxScaled) fail(at, malformed("'" + part + "' is too large"));
    scaled.push_back(std::llround(value));
  }
  const int64_t start = scaled[0], end = scaled[1];
  const int64_t step = parts.size() == 3 ? scaled[2] : static_cast<int64_t>(scale);
  if (step <= 0) fail(at, malformed("the step must be positive"));
  if (end < start) {
    fail(at, malformed("descending ranges are not supported (write the smaller bound first)"));
  }
  if ((end - start) / step + 1 > kMaxCombinations) {
    fail(at, malformed("more than " + std::to_string(kMaxCombinations) + " values"));
  }
  std::vector<std::string> values;
  for (int64_t v = start; v <= end; v += step) values.push_back(format_scaled(v, decimals));
  return values;
}

// ---------------------------------------------------------------------------------------------
// Models

// A model's name when the sweep gives none: the checkpoint folder's name, or the geometry's.
std::string default_model_name(const ModelSpec& model) {
  if (model.path.empty()) return model.random;
  const std::string path = model.path.substr(0, model.path.find_last_not_of('/') + 1);
  return split(path, "/").back();
}

ModelSpec Reader::read_model(const YAML::Node& entry) const {
  if (!entry.IsMap()) {
    fail(entry,
         "models: each entry is a map with 'path:' (a Hugging Face folder) or 'random:' "
         "(a geometry such as qwen2.5-vl-7b), and optionally name, dtype, device, seed");
  }
  check_keys(entry, kModelKeys, "model");
  ModelSpec model;
  model.mark = entry.Mark();
  model.path = scalar_at(entry, "path", "model");
  model.random = scalar_at(entry, "random", "model");
  model.name = scalar_at(entry, "name", "model");
  if (model.name.empty()) model.name = default_model_name(model);
  if (model.path.empty() == model.random.empty()) {
    fail(entry, "model '" + model.name + "': give exactly one of 'path' (a Hugging Face folder) " +
                    "and 'random' (a geometry with random weights)");
  }
  read_model_options(entry, model);
  return model;
}

// dtype (normalised to fp32, bf16, fp16 or auto), device and seed.
void Reader::read_model_options(const YAML::Node& entry, ModelSpec& model) const {
  const std::string what = "model '" + model.name + "'";
  static const std::map<std::string, std::string> dtypes = {
      {"auto", "auto"},     {"fp32", "fp32"}, {"float32", "fp32"}, {"bf16", "bf16"},
      {"bfloat16", "bf16"}, {"fp16", "fp16"}, {"float16", "fp16"}};
  if (entry["dtype"]) {
    const auto it = dtypes.find(scalar_at(entry, "dtype", what));
    if (it == dtypes.end()) {
      fail(entry["dtype"], what + ": 'dtype' must be auto, fp32, bf16 or fp16");
    }
    model.dtype = it->second;
  }
  if (entry["device"]) {
    model.device = scalar_at(entry, "device", what);
    int64_t ordinal = 0;
    const bool cuda_n = model.device.rfind("cuda:", 0) == 0 &&
                        parse_int(model.device.substr(5), ordinal) && ordinal >= 0;
    if (model.device != "auto" && model.device != "cpu" && model.device != "cuda" && !cuda_n) {
      fail(entry["device"], what + ": 'device' must be auto, cpu, cuda or cuda:N");
    }
  }
  int64_t seed = 0;
  if (entry["seed"] && (!parse_int(scalar_at(entry, "seed", what), seed) || seed < 0)) {
    fail(entry["seed"], what + ": 'seed' must be an integer >= 0");
  }
  model.seed = static_cast<uint64_t>(seed);
}

void Reader::read_models(const YAML::Node& root, Sweep& sweep) const {
  for (const auto& entry : list_at(root, "models", "models")) {
    ModelSpec model = read_model(entry);
    for (const auto& other : sweep.models) {
      if (other.name == model.name) {
        fail(entry, "model name '" + model.name + "' is used twice (first at line " +
                        std::to_string(other.mark.line + 1) + ")");
      }
    }
    sweep.models.push_back(std::move(model));
  }
}

// ---------------------------------------------------------------------------------------------
// Methods

// One parameter's values: a scalar (comma list, range), a sequence of them, or a nested sequence
// for one list value ("a|b").
std::vector<std::string> Reader::method_values(const std::string& key, const YAML::Node& value,
                                               const std::string& what) const {
  if (value.IsMap()) {
    fail(value,
         what + ": a map is not a parameter value (pattern tables go in a file: table: FILE)");
  }
  if (contains(kPathParams, key)) {
    if (!value.IsScalar()) fail(value, what + " is one file path");
    return {value.Scalar()};
  }
  if (value.IsScalar()) return expand_text(value.Scalar(), value, what);
  std::vector<std::string> out;
  for (const auto& item : value) {
    if (item.IsScalar()) {
      const std::vector<std::string> values = expand_text(item.Scalar(), item, what);
      out.insert(out.end(), values.begin(), values.end());
      continue;
    }
    if (!item.IsSequence()) fail(item, what + ": list items must be values or lists of values");
    std::vector<std::string> parts;
    for (const auto& part : item) {
      if (!part.IsScalar()) fail(part, what + ": a list value holds plain values");
      parts.push_back(part.Scalar());
    }
    out.push_back(join(parts, "|"));
  }
  if (out.empty()) fail(value, what + " is an empty list");
  return out;
}

// "name" or "name:key=value,key=value". Commas separate parameters, but an item without '='
// continues the previous value's list: "a_shape:sink=64,local=256,512" sweeps local.
std::vector<Axis> Reader::read_method_spec(const YAML::Node& entry, std::string& name) const {
  const std::string spec = entry.Scalar();
  const size_t colon = spec.find(':');
  name = trim(spec.substr(0, colon));
  if (name.empty()) fail(entry, "methods: '" + spec + "' has no method name");
  std::vector<std::pair<std::string, std::string>> raw;
  if (colon != std::string::npos) {
    for (const std::string& part : split(spec.substr(colon + 1), ",")) {
      const size_t eq = part.find('=');
      if (eq != std::string::npos) {
        raw.emplace_back(trim(part.substr(0, eq)), trim(part.substr(eq + 1)));
      } else if (!raw.empty()) {
        raw.back().second += "," + part;
      } else {
        fail(entry, "method '" + spec + "': expected NAME:key=value,key=value");
      }
    }
  }
  std::vector<Axis> axes;
  std::set<std::string> seen;
  for (const auto& [key, text] : raw) {
    const std::string what = "method " + name + ": parameter '" + key + "'";
    if (key.empty()) fail(entry, "method '" + spec + "': a parameter has no name");
    if (!seen.insert(key).second) fail(entry, what + " is given twice");
    if (text.empty()) fail(entry, what + " has no value");
    axes.push_back({key, contains(kPathParams, key) ? std::vector<std::string>{text}
                                                    : expand_text(text, entry, what)});
  }
  return axes;
}

std::vector<Axis> Reader::read_method_map(const YAML::Node& entry, std::string& name) const {
  name = scalar_at(entry, "name", "method");
  if (name.empty()) fail(entry, "method: missing 'name:' (e.g. {name: a_shape, sink: 64})");
  if (name.find_first_of(":,= ") != std::string::npos) {
    fail(entry["name"], "method: 'name: " + name + "' must be a bare name (parameters are keys)");
  }
  std::vector<Axis> axes;
  std::set<std::string> seen;
  for (const auto& entry_item : entry) {
    if (!entry_item.first.IsScalar()) fail(entry_item.first, "method " + name + ": keys are words");
    const std::string key = entry_item.first.Scalar();
    if (key == "name") continue;
    const std::string what = "method " + name + ": parameter '" + key + "'";
    if (!seen.insert(key).second) fail(entry_item.first, what + " is given twice");
    if (entry_item.second.IsNull()) fail(entry_item.first, what + " has no value");
    axes.push_back({key, method_values(key, entry_item.second, what)});
  }
  return axes;
}

// The cartesian product of the parameters' values; the first parameter varies slowest.
std::vector<MethodSpec> Reader::combine(const std::string& name, const std::vector<Axis>& axes,
                                        const YAML::Node& entry) const {
  int64_t total = 1;
  for (const auto& axis : axes) {
    total *= static_cast<int64_t>(axis.values.size());
    if (total > kMaxCombinations) {
      fail(entry, "method " + name + " expands to more than " + std::to_string(kMaxCombinations) +
                      " combinations");
    }
  }
  std::vector<MethodSpec> out;
  std::vector<size_t> at(axes.size(), 0);
  for (int64_t n = 0; n < total; ++n) {
    MethodSpec method{name, YAML::Node(YAML::NodeType::Map), entry.Mark()};
    for (size_t a = 0; a < axes.size(); ++a) method.params[axes[a].key] = axes[a].values[at[a]];
    out.push_back(method);
    for (size_t a = axes.size(); a-- > 0;) {  // odometer: the last parameter turns fastest
      if (++at[a] < axes[a].values.size()) break;
      at[a] = 0;
    }
  }
  return out;
}

std::vector<MethodSpec> Reader::read_method(const YAML::Node& entry) const {
  std::string name;
  std::vector<Axis> axes;
  if (entry.IsScalar()) {
    axes = read_method_spec(entry, name);
  } else if (entry.IsMap()) {
    axes = read_method_map(entry, name);
  } else {
    fail(entry, "methods: each entry is NAME, NAME:key=value,... or a map with 'name:'");
  }
  return combine(name, axes, entry);
}

void Reader::read_methods(const YAML::Node& root, Sweep& sweep) const {
  std::map<std::string, YAML::Mark> first_at;
  for (const auto& entry : list_at(root, "methods", "methods")) {
    for (MethodSpec& method : read_method(entry)) {
      const auto [it, added] = first_at.emplace(method.label(), method.mark);
      if (!added) {
        fail(entry, "method " + method.label() + " is listed twice (first at line " +
                        std::to_string(it->second.line + 1) + ")");
      }
      sweep.methods.push_back(std::move(method));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tasks and context

std::string Reader::read_item(const std::string& text, const YAML::Node& at, const Setting& setting,
                              const std::string& what) const {
  int64_t integer = 0;
  double number = 0;
  std::string value = text;
  bool ok = false;
  switch (setting.kind) {
    case Kind::kInt:
      ok = parse_int(text, integer) && setting.accepts(static_cast<double>(integer));
      value = std::to_string(integer);
      break;
    case Kind::kNumber:
      ok = parse_number(text, number) && setting.accepts(number);
      value = format_number(number);
      break;
    case Kind::kBool:
      ok = text == "true" || text == "false";
      break;
    case Kind::kString:
      ok = !text.empty() && (setting.choices.empty() || contains(setting.choices, text));
      break;
  }
  if (!ok) fail(at, what + " expects " + setting.expects + ", got '" + text + "'");
  return value;
}

// A setting's value, normalised: a sequence for grid settings (written as a scalar, a comma
// list, a range or a sequence), else a scalar.
YAML::Node Reader::read_setting(const YAML::Node& value, const Setting& setting,
                                const std::string& what) const {
  if (!setting.grid) {
    if (!value.IsScalar()) fail(value, what + " expects " + setting.expects + " (one value)");
    return YAML::Node(read_item(value.Scalar(), value, setting, what));
  }
  YAML::Node out(YAML::NodeType::Sequence);
  const auto add = [&](const YAML::Node& item) {
    if (!item.IsScalar()) fail(item, what + " expects " + setting.expects);
    for (const auto& text : expand_text(item.Scalar(), item, what)) {
      out.push_back(read_item(text, item, setting, what));
    }
  };
  if (value.IsSequence()) {
    for (const auto& item : value) add(item);
  } else {
    add(value);
  }
  if (out.size() == 0) fail(value, what + " is an empty list");
  return out;
}

ContextAxes Reader::read_context(const YAML::Node& node, ContextAxes axes,
                                 const std::string& what) const {
  if (!node) return axes;
  if (!node.IsMap()) fail(node, what + " must be a map of " + join(kContextKeys, ", "));
  check_keys(node, kContextKeys, what);
  for (const Setting& setting : context_settings()) {
    const YAML::Node value = node[setting.key];
    if (!value) continue;
    axes[setting.key].clear();
    for (const auto& item : read_setting(value, setting, what + " '" + setting.key + "'")) {
      axes[setting.key].push_back(item.Scalar());
    }
  }
  return axes;
}

// Every combination of the context settings; the last setting (max_frames) varies fastest.
std::vector<ContextSpec> Reader::expand_context(const ContextAxes& axes, const YAML::Node& at,
                                                const std::string& what) const {
  std::vector<ContextSpec> out;
  for (const auto& max_pixels : axes.at("max_pixels")) {
    for (const auto& min_pixels : axes.at("min_pixels")) {
      for (const auto& fps : axes.at("fps")) {
        for (const auto& max_frames : axes.at("max_frames")) {
          ContextSpec c;
          c.max_pixels = std::stoll(max_pixels);
          c.min_pixels = std::stoll(min_pixels);
          c.fps = std::stod(fps);
          c.max_frames = std::stoll(max_frames);
          if (c.min_pixels > c.max_pixels) {
            fail(at, what + ": min_pixels " + min_pixels + " is above max_pixels " + max_pixels);
          }
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

std::vector<TaskSpec> Reader::read_task(const YAML::Node& entry,
                                        const ContextAxes& defaults) const {
  const std::string known = " (one of " + join(task_names(), ", ") + ")";
  if (!entry.IsMap() || !entry["name"]) {
    fail(entry, "tasks: each entry is a map with 'name:'" + known);
  }
  TaskSpec task;
  task.name = scalar_at(entry, "name", "task");
  task.mark = entry.Mark();
  const TaskKind* kind = find_task(task.name);
  if (!kind) fail(entry["name"], "unknown task '" + task.name + "'" + known);
  const std::string what = "task " + task.name;
  std::vector<std::string> keys = {"name", "context"};
  for (const auto& setting : kind->settings) keys.push_back(setting.key);
  check_keys(entry, keys, what);
  for (const Setting& setting : kind->settings) {
    const YAML::Node value = entry[setting.key];
    if (value) {
      task.params[setting.key] = read_setting(value, setting, what + ": '" + setting.key + "'");
    } else if (setting.required) {
      fail(entry, what + ": missing '" + setting.key + "' (" + setting.expects + ")");
    } else if (!setting.fallback.empty()) {
      task.params[setting.key] =
          read_setting(YAML::Node(setting.fallback), setting, what + ": '" + setting.key + "'");
    }
  }
  const ContextAxes axes = read_context(entry["context"], defaults, what + ": context");
  std::vector<TaskSpec> out;
  for (const ContextSpec& context : expand_context(axes, entry, what)) {
    out.push_back(task);
    out.back().context = context;
  }
  return out;
}

void Reader::read_tasks(const YAML::Node& root, Sweep& sweep) const {
  const ContextAxes defaults = read_context(root["context"], default_context(), "context");
  if (root["context"]) expand_context(defaults, root["context"], "context");  // checks min <= max
  const YAML::Node tasks = list_at(root, "tasks", "tasks");
  std::map<std::string, YAML::Mark> first_at;
  for (const auto& entry : tasks) {
    for (TaskSpec& task : read_task(entry, defaults)) {
      const auto [it, added] = first_at.emplace(task_key(task), task.mark);
      if (!added) {
        fail(entry, "task " + task.name + " with these settings is listed twice (first at line " +
                        std::to_string(it->second.line + 1) + ")");
      }
      sweep.tasks.push_back(std::move(task));
    }
  }
}

Sweep Reader::read(const YAML::Node& root) const {
  if (!root.IsMap()) fail(root, "a sweep is a map with models:, methods: and tasks:");
  check_keys(root, kTopLevelKeys, "sweep");
  Sweep sweep;
  sweep.source_path = source_;
  sweep.name = scalar_at(root, "name", "sweep");
  if (sweep.name.empty()) sweep.name = stem(source_);
  sweep.description = scalar_at(root, "description", "sweep");
  if (root["output"]) sweep.output = scalar_at(root, "output", "sweep");
  if (sweep.output.empty()) fail(root["output"], "sweep: 'output' must name a database file");
  read_models(root, sweep);
  read_methods(root, sweep);
  read_tasks(root, sweep);
  return sweep;
}

// ---------------------------------------------------------------------------------------------
// Output

void emit_model(YAML::Emitter& out, const ModelSpec& model) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << model.name;
  if (!model.path.empty()) out << YAML::Key << "path" << YAML::Value << model.path;
  if (!model.random.empty()) out << YAML::Key << "random" << YAML::Value << model.random;
  out << YAML::Key << "dtype" << YAML::Value << model.dtype << YAML::Key << "device" << YAML::Value
      << model.device << YAML::Key << "seed" << YAML::Value << model.seed << YAML::EndMap;
}

void emit_method(YAML::Emitter& out, const MethodSpec& method) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << method.name;
  for (const auto& param : method.params) {
    out << YAML::Key << param.first.Scalar() << YAML::Value << param.second.Scalar();
  }
  out << YAML::EndMap;
}

void emit_task(YAML::Emitter& out, const TaskSpec& task) {
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << task.name;
  for (const auto& [key, value] : task.params) {
    out << YAML::Key << key << YAML::Value;
    if (value.IsSequence()) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : value) out << item.Scalar();
      out << YAML::EndSeq;
    } else {
      out << value.Scalar();
    }
  }
  const ContextSpec& c = task.context;
  out << YAML::Key << "context" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
      << "max_pixels" << YAML::Value << c.max_pixels << YAML::Key << "min_pixels" << YAML::Value
      << c.min_pixels << YAML::Key << "fps" << YAML::Value << format_number(c.fps) << YAML::Key
      << "max_frames" << YAML::Value << c.max_frames << YAML::EndMap;
  out << YAML::EndMap;
}

// "1 case", "3 cases".
std::string count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// Left-aligned columns two spaces apart, without trailing spaces.
std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c] + (c + 1 < row.size() ? std::string(widths[c] - row[c].size() + 2, ' ') : "");
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

std::string MethodSpec::label() const {
  std::vector<std::string> args;
  if (params) {
    for (const auto& param : params) {
      args.push_back(param.first.Scalar() + "=" + param.second.Scalar());
    }
  }
  return args.empty() ? name : name + ":" + join(args, ",");
}

std::string ContextSpec::describe() const {
  return "pixels " + std::to_string(min_pixels) + "-" + std::to_string(max_pixels) + ", " +
         format_number(fps) + " fps, <= " + std::to_string(max_frames) + " frames";
}

std::string TaskSpec::grid_summary() const {
  const TaskKind* kind = find_task(name);
  std::vector<std::string> parts;
  for (const Setting& setting : kind ? kind->settings : std::vector<Setting>{}) {
    const auto it = params.find(setting.key);
    if (setting.grid && it != params.end()) {
      parts.push_back(setting.key + " " + node_text(it->second));
    }
  }
  const std::string grid = join(parts, " x ");
  if (kind && kind->per_item) {
    return grid.empty() ? "per manifest item" : grid + " per manifest item";
  }
  const int64_t n = grid_size();
  return grid + " = " + std::to_string(n) + (n == 1 ? " sample" : " samples");
}

int64_t TaskSpec::grid_size() const {
  int64_t n = 1;
  for (const auto& [key, value] : params) {
    if (value.IsSequence()) n *= static_cast<int64_t>(value.size());
  }
  return n;
}

std::string SweepCase::key() const {
  std::string model_part = model.name + " " + model.dtype;
  if (!model.random.empty()) model_part += " seed=" + std::to_string(model.seed);
  return model_part + " | " + method.label() + " | " + task_key(task);
}

std::vector<SweepCase> Sweep::cases() const {
  std::vector<SweepCase> out;
  for (const ModelSpec& model : models) {
    for (const TaskSpec& task : tasks) {
      for (const MethodSpec& method : methods) {
        out.push_back({static_cast<int>(out.size()), model, method, task});
      }
    }
  }
  return out;
}

std::vector<SweepCase> Sweep::shard(int i, int n) const {
  if (n < 1 || i < 0 || i >= n) {
    throw std::invalid_argument("shard " + std::to_string(i) + "/" + std::to_string(n) +
                                ": expected i/n with 0 <= i < n");
  }
  std::vector<SweepCase> out;
  for (SweepCase& c : cases()) {
    if (c.index % n == i) out.push_back(std::move(c));
  }
  return out;
}

std::string Sweep::resolved_yaml() const {
  YAML::Emitter out;
  out << YAML::Comment("sweep " + name + " from " + source_path +
                       ", every list and range expanded");
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << name;
  if (!description.empty()) out << YAML::Key << "description" << YAML::Value << description;
  out << YAML::Key << "output" << YAML::Value << output;
  out << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  for (const auto& model : models) emit_model(out, model);
  out << YAML::EndSeq << YAML::Key << "methods" << YAML::Value << YAML::BeginSeq;
  for (const auto& method : methods) emit_method(out, method);
  out << YAML::EndSeq << YAML::Key << "tasks" << YAML::Value << YAML::BeginSeq;
  for (const auto& task : tasks) emit_task(out, task);
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void Sweep::validate_methods(const std::function<void(const MethodSpec&)>& check) const {
  for (const MethodSpec& method : methods) {
    try {
      check(method);
    } catch (const std::exception& e) {
      throw SweepError(where(method.mark) + ": method " + method.label() + ": " + e.what());
    }
  }
}

std::string Sweep::where(const YAML::Mark& mark) const { return where_in(source_path, mark); }

Sweep load_sweep(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw SweepError(path + ": cannot open the sweep file");
  std::stringstream text;
  text << file.rdbuf();
  return parse_sweep(text.str(), path);
}

Sweep parse_sweep(const std::string& yaml_text, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw SweepError(where_in(source_name, e.mark) + ": malformed YAML: " + e.msg);
  }
  return Reader(source_name).read(root);
}

std::string describe_cases(const std::vector<SweepCase>& cases,
                           const std::vector<CaseColumn>& extra) {
  std::vector<std::vector<std::string>> rows = {
      {"#", "model", "method", "task", "grid", "context"}};
  for (const auto& column : extra) rows[0].push_back(column.header);
  for (const SweepCase& c : cases) {
    rows.push_back({std::to_string(c.index), c.model.name, c.method.label(), c.task.name,
                    c.task.grid_summary(), c.task.context.describe()});
    for (const auto& column : extra) rows.back().push_back(column.cell(c));
  }
  return render_table(rows) + count(cases.size(), "case") + "\n";
}

std::string describe_cases(const Sweep& sweep) {
  return describe_cases(sweep.cases()) + "(" + count(sweep.models.size(), "model") + " x " +
         count(sweep.methods.size(), "method") + " x " + count(sweep.tasks.size(), "task") + ")\n";
}

}  // namespace mmi
