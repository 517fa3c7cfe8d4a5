// What `dump`, `sample` and `top` share: the exit status for a process whose interpreter
// cannot be found, a fixed-rate clock, and the code objects of sampled frames as dense ids.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "injector/inspect/python_process.h"
#include "injector/inspect/python_stacks.h"

namespace pyrewind::cli {

// Prints why `located` failed and returns pyrewind's exit status for it (commands.h).
int locate_failure(const inspect::LocateResult& located);

uint64_t monotonic_ns();

// Ctrl-C, SIGTERM and SIGHUP end sampling (the loop checks stop_requested() every tick).
void catch_stop_signals();
bool stop_requested();

// The process's argv, from /proc/PID/cmdline (empty when it cannot be read).
std::vector<std::string> process_arguments(pid_t pid);

// Ticks at a fixed rate on absolute deadlines (CLOCK_MONOTONIC): a late tick comes at once,
// but whole periods missed are skipped rather than caught up in a burst.
class Ticker {
 public:
  explicit Ticker(uint32_t hz);
  uint64_t period_ns() const { return period_ns_; }
  // Sleeps until the next tick; returns early when a signal arrives.
  void wait();

 private:
  uint64_t period_ns_;
  uint64_t next_ns_;
};

// Idle: the OS thread was not running (asleep, blocked in a system call); unknown counts as
// running.
inline bool is_idle(const inspect::ThreadStack& thread) {
  return thread.os_state != 'R' && thread.os_state != '?';
}

// False when the process is gone or a zombie: reading it can only fail from now on.
bool process_alive(pid_t pid);

// The processes descended from `root` (its children, theirs, ...), from /proc.
std::vector<pid_t> descendant_pids(pid_t root);

// Code objects of sampled frames: one id (from 1) per (file, function, first line), found on
// later samples by the code object's address, revalidated against the frame, since the address
// of a freed code object may be reused by another.
class CodeTable {
 public:
  struct Code {
    std::string function, file;
    int first_line = 0;  // -1: a native (C) function, `file` its module
  };
  // The frame's id; `*is_new` is set when the code was never seen before.
  uint64_t intern(const inspect::Frame& frame, bool* is_new);
  // A native function's id, by module and symbol.
  uint64_t intern_native(const std::string& module, const std::string& symbol, bool* is_new);
  const Code& code(uint64_t id) const { return codes_[id - 1]; }

 private:
  std::unordered_map<uint64_t, uint64_t> by_address_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> by_key_;
  std::vector<Code> codes_;
};

}  // namespace pyrewind::cli
