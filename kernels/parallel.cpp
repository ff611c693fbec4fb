#include "kernels/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <vector>

namespace mmi {
namespace {

thread_local bool on_pool_thread = false;

// hardware_concurrency - 1 threads that wait for one job at a time. A job is a generation number, the
// function and how many helpers may take it; each helper takes it at most once.
class ThreadPool {
 public:
  ThreadPool() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned t = 1; t < cores; ++t) threads_.emplace_back([this] { serve(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  size_t size() const { return threads_.size(); }
  std::mutex& busy() { return busy_; }

  void run(size_t helpers, const std::function<void()>& work) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &work;
      open_ = std::min(helpers, threads_.size());
      running_ = 0;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = 0;  // helpers that have not started yet no longer take it
    done_.wait(lock, [&] { return running_ == 0; });
    job_ = nullptr;
  }

 private:
  void serve() {
    on_pool_thread = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && open_ > 0); });
      if (stopping_) return;
      seen = generation_;
      --open_;
      ++running_;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--running_ == 0) done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::mutex busy_;  // held by the one caller the pool serves at a time
  std::condition_variable wake_, done_;
  const std::function<void()>* job_ = nullptr;
  uint64_t generation_ = 0;
  size_t open_ = 0, running_ = 0;
  bool stopping_ = false;
};

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

void run_on_pool(size_t helpers, const std::function<void()>& work) {
  if (on_pool_thread || helpers == 0) return work();
  ThreadPool& threads = pool();
  std::unique_lock<std::mutex> busy(threads.busy(), std::try_to_lock);
  if (!busy.owns_lock() || threads.size() == 0) return work();
  threads.run(helpers, work);
}

}  // namespace mmi
