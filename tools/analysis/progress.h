// A progress line on stderr for long commands, only when stderr is a terminal: "pyrewind:
// exporting: 42% (1.2 GB of 2.9 GB)", shown after the first second, redrawn a few times a
// second, erased at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pyrewind::analysis {

class Progress {
 public:
  Progress(std::string what, uint64_t total_bytes);
  ~Progress() { done(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Cheap enough to call for every item: the clock is read every few hundred calls.
  void update(uint64_t bytes_done) {
    if (enabled_ && ++calls_ % 512 == 0) redraw(bytes_done);
  }
  // Erases the line (no more updates), before the command prints anything else.
  void done();

 private:
  void redraw(uint64_t bytes_done);

  std::string what_;
  uint64_t total_;
  bool enabled_;
  bool shown_ = false;
  uint64_t calls_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point next_;
};

}  // namespace pyrewind::analysis
