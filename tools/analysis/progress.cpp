#include "tools/analysis/progress.h"

#include <unistd.h>

#include <cstdio>

namespace pyrewind::analysis {
namespace {

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

}  // namespace

Progress::Progress(std::string what, uint64_t total_bytes)
    : what_(std::move(what)),
      total_(total_bytes),
      enabled_(total_bytes > 0 && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      next_(start_ + std::chrono::seconds(1)) {}

void Progress::done() {
  if (shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = false;
  enabled_ = false;
}

void Progress::redraw(uint64_t bytes_done) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  next_ = now + std::chrono::milliseconds(250);
  const uint64_t done = bytes_done < total_ ? bytes_done : total_;
  std::fprintf(stderr, "\rpyrewind: %s: %3u%% (%s of %s)\033[K", what_.c_str(),
               static_cast<unsigned>(done * 100 / total_), megabytes(done).c_str(), megabytes(total_).c_str());
  std::fflush(stderr);
  shown_ = true;
}

}  // namespace pyrewind::analysis
