// parallel_for on the process-wide pool: every item exactly once, errors rethrown, and callers that
// find the pool busy (nested or concurrent loops) still finish their own items.
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/parallel.h"
#include "tests/catch.h"

using namespace mmi;

TEST_CASE("parallel_for runs every item exactly once", "[parallel]") {
  for (size_t count : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> seen(count);
    for (int round = 0; round < 3; ++round) parallel_for(count, [&](size_t i) { ++seen[i]; });
    for (size_t i = 0; i < count; ++i) REQUIRE(seen[i] == 3);
  }
}

TEST_CASE("parallel_for rethrows an item's error after every thread stopped", "[parallel]") {
  std::atomic<int> finished{0};
  REQUIRE_THROWS_WITH(parallel_for(64,
                                   [&](size_t i) {
                                     if (i == 13) throw std::runtime_error("item 13 failed");
                                     ++finished;
                                   }),
                      "item 13 failed");
  REQUIRE(finished == 63);
  std::atomic<int> after{0};
  parallel_for(10, [&](size_t) { ++after; });  // the pool still serves
  REQUIRE(after == 10);
}

TEST_CASE("nested and concurrent parallel_for calls complete", "[parallel]") {
  std::atomic<int> inner{0};
  parallel_for(8, [&](size_t) { parallel_for(5, [&](size_t) { ++inner; }); });
  REQUIRE(inner == 40);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 20; ++round) parallel_for(16, [&](size_t) { ++total; });
    });
  }
  for (std::thread& t : callers) t.join();
  REQUIRE(total == 4 * 20 * 16);
}
