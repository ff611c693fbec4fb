// Catch2 v2 (Debian 12) and v3 (the GPU machine) behind one include, with the few names that differ.
#pragma once
#include <string>
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;
namespace mmi_catch {
inline Catch::Matchers::StringContainsMatcher Contains(const std::string& s) {
  return Catch::Matchers::ContainsSubstring(s);
}
}  // namespace mmi_catch
#else
#include <catch2/catch.hpp>
namespace mmi_catch {
inline Catch::Matchers::StdString::ContainsMatcher Contains(const std::string& s) {
  return Catch::Matchers::Contains(s);
}
}  // namespace mmi_catch
#endif
// A substring matcher for REQUIRE_THROWS_WITH, e.g. Contains("unknown method") && Contains("a_shape").
using mmi_catch::Contains;
