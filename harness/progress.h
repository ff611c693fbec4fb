// Progress of long work: a bar with rate and ETA redrawn in place on a terminal, plain log lines
// (at most every few seconds, and at the end) when the output is a file or a pipe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mmi {

class Progress {
 public:
  // `total` may grow later (add_total) when work is discovered on the way, e.g. manifest items.
  Progress(std::string what, int64_t total, std::FILE* out = stderr);
  void add_total(int64_t more) { total_ += more; }
  // One unit done; `note` says what it was (shown beside the bar or in the log line).
  void step(const std::string& note);
  void finish();  // ends the bar's line; prints the summary

 private:
  void draw(const std::string& note, bool force);
  std::string eta() const;

  std::string what_;
  int64_t total_, done_ = 0;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mmi
