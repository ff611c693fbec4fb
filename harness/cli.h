// A small command-line parser for the mmi subcommands: --name VALUE options (repeatable where
// declared), --flag switches, generated --help, and errors that name the offending argument.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

// Bad command-line usage: main prints it with the command's usage line and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses the whole of `text` as a decimal integer; false (value untouched) when it is not one.
bool parse_int64(const std::string& text, int64_t& value);
// "fp32", "bf16" or "fp16" (or the long names); UsageError naming --dtype otherwise.
at::ScalarType parse_dtype(const std::string& name);

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  ArgParser& option(const std::string& name, const std::string& value_name, const std::string& help,
                    const std::string& default_value = "");
  ArgParser& repeated(const std::string& name, const std::string& value_name, const std::string& help);
  ArgParser& flag(const std::string& name, const std::string& help);
  // Accept arguments that are not options (e.g. files), listed in help as `value_name`.
  ArgParser& positionals(const std::string& value_name, const std::string& help);

  // Parses argv[first..argc). Returns false when --help was asked for (help() then says what to print).
  bool parse(int argc, char** argv, int first);

  bool has(const std::string& name) const;  // given on the command line (or a flag set)
  std::string get(const std::string& name) const;  // the value or the default
  int64_t get_int(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string help() const;

 private:
  struct Spec {
    std::string name, value_name, help, default_value;
    bool is_flag = false, is_repeated = false;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::string positional_name_, positional_help_;
  std::vector<std::string> positional_;
};

}  // namespace mmi
