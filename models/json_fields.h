// Typed access to the fields of a JSON object, with errors that name the file and the key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string source)
      : object_(object), source_(std::move(source)) {
    if (!object_.is_object()) throw std::runtime_error(source_ + ": expected a JSON object");
  }

  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  int64_t integer(const char* key) const {
    return get<int64_t>(key, "an integer", &nlohmann::json::is_number_integer);
  }
  int64_t integer(const char* key, int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  double number(const char* key) const {
    return get<double>(key, "a number", &nlohmann::json::is_number);
  }
  double number(const char* key, double fallback) const {
    return has(key) ? number(key) : fallback;
  }
  bool boolean(const char* key, bool fallback) const {
    return has(key) ? get<bool>(key, "true or false", &nlohmann::json::is_boolean) : fallback;
  }
  std::string string(const char* key, const std::string& fallback) const {
    return has(key) ? get<std::string>(key, "a string", &nlohmann::json::is_string) : fallback;
  }
  std::vector<int64_t> integers(const char* key) const {
    const nlohmann::json& v = at(key);
    bool ok = v.is_array();
    for (const auto& x : v) ok = ok && x.is_number_integer();
    if (!ok) throw std::runtime_error(source_ + ": '" + key + "' must be a list of integers");
    return v.get<std::vector<int64_t>>();
  }

 private:
  const nlohmann::json& at(const char* key) const {
    if (!has(key)) throw std::runtime_error(source_ + ": missing '" + key + "'");
    return object_.at(key);
  }
  template <typename T>
  T get(const char* key, const char* what, bool (nlohmann::json::*check)() const noexcept) const {
    const nlohmann::json& v = at(key);
    if (!(v.*check)()) throw std::runtime_error(source_ + ": '" + key + "' must be " + what);
    return v.get<T>();
  }

  const nlohmann::json& object_;
  std::string source_;
};

}  // namespace mmi
