// Process-wide agent state: the mapped segment, the configuration, interning, and the switch
// that stops tracing (with a reason the user sees) on any internal failure.
//
// Everything here except `tracing()` and `now_ns()` is used with the GIL held; the GIL is what
// serialises the agent (free-threaded builds are refused at build time).
#pragma once

#include <x86intrin.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "src/filters.h"

namespace pyrewind::agent {

struct CaptureLimits {
  bool capture_locals = true;
  bool call_repr = false;
  uint32_t max_string = 256;
  uint32_t max_items = 25;
  uint32_t max_depth = 3;
  uint32_t max_event_bytes = 32768;
  uint32_t max_overhead_percent = 0;  // --max-overhead (src/overhead.h); 0: no budget
};

// One recording session at a time: `pyrewind run` opens one before Python starts and keeps it
// to the end; each `pyrewind attach` opens one and closes it at detach, and the next attach
// opens a new one in the same (never unloaded) agent.
class Agent {
 public:
  // Creates the process-wide agent if needed and opens a session on the segment: maps it and
  // reads its configuration. Safe before Python is initialised. Fails if a session is open.
  static Agent* open_session(const char* segment_name, std::string* error);
  static Agent* instance() { return instance_; }

  bool session_open() const { return segment_ != nullptr; }
  // Ends the session (GIL held): tracing removed from every thread, every thread's last chunk
  // completed, per-code and per-value state dropped, the segment marked detached and unmapped.
  void close_session();
  // The same for a session whose tracing was never installed (Python never became ready):
  // no callback can be writing, so only the ring needs letting go.
  void close_session_without_python();

  ring::SegmentHeader* segment() const { return segment_->header(); }
  const CaptureLimits& limits() const { return limits_; }
  Filters& filters() { return filters_; }

  bool tracing() const { return tracing_.load(std::memory_order_relaxed); }
  void set_tracing(bool on);
  // Nanoseconds since the segment's monotonic origin. Reads the TSC (about 10 ns) when the
  // kernel itself keeps time with it, calibrated against CLOCK_MONOTONIC; otherwise
  // clock_gettime. Not monotonic across threads to the nanosecond: callers clamp per thread.
  // `calls_since_calibration` is the caller's per-thread counter.
  uint64_t now_ns(uint32_t& calls_since_calibration) {
    const uint64_t scale = tsc_scale_.load(std::memory_order_relaxed);
    if (use_tsc_ && scale != 0 && ++calls_since_calibration < kCallsPerCalibration) {
      const uint64_t ticks = __rdtsc() - tsc_origin_;
      const uint64_t now = tsc_origin_ns_ + static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * scale) >> 32);
      return now > origin_ns_ ? now - origin_ns_ : 0;
    }
    return now_ns_calibrating(calls_since_calibration);
  }

  uint32_t next_writer_id();
  uint64_t next_code_id() { return ++last_code_id_; }
  // Interned string ids (0 is "none"); the text of an id never changes.
  uint64_t intern(std::string_view text);
  const std::string& string_text(uint64_t id) const { return strings_[id]; }

  // Stops tracing for good and tells the collector why. Requires the GIL.
  void stop(const char* reason);
  // Records a non-fatal notice (e.g. a thread left untraced because a debugger owns it).
  void warn(const char* message);

  // threading.main_thread()'s ident, known once tracing is installed.
  unsigned long main_thread_ident() const { return main_thread_ident_; }
  void set_main_thread_ident(unsigned long ident) { main_thread_ident_ = ident; }

  // The collector set the ring's stop request, or its process is gone (or silent for 10 s).
  bool session_end_requested() const;
  // Over the --max-overhead budget with no line events left to switch off: asks the collector
  // to sample the stacks from outside instead (it then pauses line tracing). True when this
  // call asked (not when a request is pending). Requires the GIL.
  bool request_sampling();
  // The collector said it cannot sample this process: tracing must stop instead.
  bool sampling_refused() const;
  // `pyrewind run`: the program's own threads check session_end_requested() every so many
  // events (the agent keeps no thread of its own there: a native thread would make Python
  // 3.12+ warn at every os.fork()).
  bool checks_session_in_callbacks() const { return checks_session_in_callbacks_; }
  void set_checks_session_in_callbacks(bool on) { checks_session_in_callbacks_ = on; }

  // `pyrewind ctl` requests in the ring header (GIL held; at every callback, so two loads).
  // `trace off|on`: pauses or resumes recording when the pause request differs from the
  // current state. While paused the hooks stay installed but record nothing (3.12+: no line or
  // return events at all; before: line events off per frame); at resume every thread starts
  // afresh, as at an attach: each frame's first event is a full state. `include|exclude GLOB`:
  // applies the changed file filters.
  void apply_control_requests() {
    const bool wanted = segment()->pause_request.load(std::memory_order_relaxed) != 0;
    if (wanted != paused()) set_paused(wanted);
    if (filters_changed()) apply_filter_change();
  }
  bool filters_changed() const {
    return segment()->filters_generation.load(std::memory_order_relaxed) != filters_generation_;
  }
  // Also read without the GIL, by the attach thread (a hint it re-checks with the GIL).
  bool paused() const { return paused_.load(std::memory_order_relaxed); }

  // Set in a forked child: it must never write into the parent's ring.
  bool in_forked_child() const { return forked_child_.load(std::memory_order_relaxed); }

 private:
  Agent() = default;
  bool begin(const char* segment_name, std::string* error);
  void set_paused(bool paused);
  // Reads the new patterns (sequence lock: a torn copy waits for the next call) and applies
  // them to every code object seen so far.
  void apply_filter_change();
  uint32_t filters_generation_ = 0;
  static Agent* instance_;
  std::atomic<bool> paused_{false};

  std::unique_ptr<ring::AttachedSegment> segment_;
  CaptureLimits limits_;
  Filters filters_;
  std::atomic<bool> tracing_{false};
  std::atomic<bool> forked_child_{false};
  bool checks_session_in_callbacks_ = false;
  uint64_t origin_ns_ = 0;
  // TSC clock: origin pair and ns-per-tick in 32.32 fixed point (0 until calibrated).
  bool use_tsc_ = false;
  uint64_t tsc_origin_ = 0;
  uint64_t tsc_origin_ns_ = 0;  // CLOCK_MONOTONIC at tsc_origin_
  std::atomic<uint64_t> tsc_scale_{0};
  void calibrate_tsc();
  static constexpr uint32_t kCallsPerCalibration = 4096;
  uint64_t now_ns_calibrating(uint32_t& calls_since_calibration);
  unsigned long main_thread_ident_ = 0;
  uint64_t last_code_id_ = 0;
  std::vector<std::string> strings_{std::string()};
  std::unordered_map<std::string, uint64_t> string_ids_;
};

// CLOCK_MONOTONIC in nanoseconds.
uint64_t monotonic_ns();

}  // namespace pyrewind::agent
