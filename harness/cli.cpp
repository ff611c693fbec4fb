#include "harness/cli.h"

#include <algorithm>

namespace mmi {

bool parse_int64(const std::string& text, int64_t& value) {
  size_t used = 0;
  long long parsed = 0;
  try {
    parsed = std::stoll(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  if (text.empty() || used != text.size()) return false;
  value = parsed;
  return true;
}

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::option(const std::string& name, const std::string& value_name, const std::string& help,
                             const std::string& default_value) {
  specs_.push_back(Spec{name, value_name, help, default_value});
  return *this;
}

ArgParser& ArgParser::repeated(const std::string& name, const std::string& value_name, const std::string& help) {
  specs_.push_back(Spec{name, value_name, help, "", false, true});
  return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  specs_.push_back(Spec{name, "", help, "", true});
  return *this;
}

ArgParser& ArgParser::positionals(const std::string& value_name, const std::string& help) {
  positional_name_ = value_name;
  positional_help_ = help;
  return *this;
}

const ArgParser::Spec& ArgParser::spec(const std::string& name) const {
  auto it = std::find_if(specs_.begin(), specs_.end(), [&](const Spec& s) { return s.name == name; });
  if (it == specs_.end()) throw UsageError("unknown option --" + name + " (see mmi " + command_ + " --help)");
  return *it;
}

bool ArgParser::parse(int argc, char** argv, int first) {
  for (int a = first; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--help" || arg == "-h") return false;
    if (arg.rfind("--", 0) != 0) {
      if (positional_name_.empty()) throw UsageError("unexpected argument '" + arg + "'");
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec& s = spec(name);
    if (s.is_flag) {
      if (inline_value) throw UsageError("--" + name + " takes no value");
      values_[name].push_back("1");
      continue;
    }
    if (!inline_value) {
      if (a + 1 >= argc) throw UsageError("--" + name + " needs a value (" + s.value_name + ")");
      value = argv[++a];
    }
    if (!s.is_repeated && values_.count(name)) throw UsageError("--" + name + " given twice");
    values_[name].push_back(value);
  }
  return true;
}

bool ArgParser::has(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

std::string ArgParser::get(const std::string& name) const {
  const Spec& s = spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? s.default_value : it->second.back();
}

int64_t ArgParser::get_int(const std::string& name) const {
  const std::string text = get(name);
  int64_t value = 0;
  if (!parse_int64(text, value)) throw UsageError("--" + name + " must be an integer, got '" + text + "'");
  return value;
}

std::vector<std::string> ArgParser::get_all(const std::string& name) const {
  spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string ArgParser::help() const {
  std::string out = "usage: mmi " + command_ + " [options]" + (positional_name_.empty() ? "" : " " + positional_name_) +
                    "\n\n" + summary_ + "\n\n";
  if (!positional_name_.empty()) out += "  " + positional_name_ + ": " + positional_help_ + "\n\n";
  out += "options:\n";
  for (const Spec& s : specs_) {
    std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    if (left.size() < 26) left.resize(26, ' ');
    else left += "\n" + std::string(26, ' ');
    out += left + s.help;
    if (!s.default_value.empty()) out += " (default: " + s.default_value + ")";
    if (s.is_repeated) out += " (repeatable)";
    out += "\n";
  }
  return out;
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16") return at::kHalf;
  throw UsageError("--dtype must be fp32, bf16 or fp16, got '" + name + "'");
}

}  // namespace mmi
