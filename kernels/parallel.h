// A parallel loop over independent items (heads of a plan, passes of an upload) on the machine's cores.
// Torch-free.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>

namespace mmi {

// Runs `work` on the calling thread and on up to `helpers` threads of a pool that lives for the whole
// process (started on first use: plans are built and uploaded once per layer, and starting threads each
// time cost more than small plans take); returns once every one of them has returned. Runs `work` on
// the caller alone when called from a pool thread or while another call holds the pool.
void run_on_pool(size_t helpers, const std::function<void()>& work);

// Runs body(i) for i in [0, count) on up to hardware_concurrency threads, items handed out one at a
// time (they may differ in cost); rethrows the first error once every thread has stopped.
template <typename Body>
void parallel_for(size_t count, Body body) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  if (count > 1) {
    run_on_pool(count - 1, work);
  } else {
    work();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mmi
