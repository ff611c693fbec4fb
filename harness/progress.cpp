#include "harness/progress.h"

#include <unistd.h>

#include <algorithm>

namespace mmi {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string clock_time(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
  return text;
}

}  // namespace

Progress::Progress(std::string what, int64_t total, std::FILE* out)
    : what_(std::move(what)), total_(total), out_(out), tty_(isatty(fileno(out))), start_(Clock::now()),
      last_draw_(start_) {}

std::string Progress::eta() const {
  const double elapsed = seconds_between(start_, Clock::now());
  if (done_ == 0 || total_ <= done_) return clock_time(elapsed);
  return clock_time(elapsed / done_ * (total_ - done_)) + " left";
}

void Progress::step(const std::string& note) {
  ++done_;
  draw(note, done_ == total_);
}

void Progress::draw(const std::string& note, bool force) {
  const auto now = Clock::now();
  // A terminal redraws often; a log gets a line every 5 s at most, so long sweeps stay readable.
  const double interval = tty_ ? 0.1 : 5.0;
  if (!force && seconds_between(last_draw_, now) < interval) return;
  last_draw_ = now;
  const double rate = done_ / std::max(seconds_between(start_, now), 1e-9);
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min<int64_t>(done_, total_) / total_) : 0;
    const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    std::fprintf(out_, "\r\033[K%s [%s] %lld/%lld  %.2f/s  %s  %s", what_.c_str(), bar.c_str(), (long long)done_,
                 (long long)total_, rate, eta().c_str(), note.substr(0, 60).c_str());
  } else {
    std::fprintf(out_, "%s: %lld/%lld (%.2f/s, %s) %s\n", what_.c_str(), (long long)done_, (long long)total_, rate,
                 eta().c_str(), note.c_str());
  }
  std::fflush(out_);
}

void Progress::finish() {
  if (tty_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s: %lld done in %s\n", what_.c_str(), (long long)done_,
               clock_time(seconds_between(start_, Clock::now())).c_str());
  std::fflush(out_);
}

}  // namespace mmi
