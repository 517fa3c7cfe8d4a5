// A collecting session: drains one shared-memory segment into one recording file until the
// traced process ends. Used by `pyrewind run` (a child it spawned) and, later, `attach`
// (a process that already existed): the caller says how to wait for the target's end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector/src/packet_translator.h"
#include "collector/src/recording_writer.h"
#include "proto/ring/drainer.h"
#include "proto/ring/segment.h"

namespace pyrewind::collector {

struct SessionOptions {
  // Adaptive polling: the delay between passes halves while data flows and doubles back up to
  // the maximum while the ring is idle.
  uint64_t min_poll_interval_ns = 125'000;
  uint64_t max_poll_interval_ns = 2'000'000;
  // A file chunk is written at least this often while events arrive, so a collector that is
  // killed loses little.
  uint64_t flush_interval_ns = 1'000'000'000;
  // Upper bound on the final drain (a forked child of the target could keep writing).
  uint64_t final_drain_timeout_ns = 5'000'000'000;
};

struct SessionEnd {
  int32_t exit_status = 0;     // exit code, or -signal
  bool target_exited = true;
  std::string stop_reason;     // RecordingSummary.stop_reason
};

class Session {
 public:
  // `segment` and `writer` must outlive the session. The session refreshes the collector
  // heartbeat, and unlinks the segment's name as soon as the agent reports it attached.
  Session(ring::OwnedSegment& segment, RecordingWriter& writer, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // False when the segment's header does not validate (then nothing else works).
  bool valid() const;
  const std::string& error() const { return error_; }

  // One pass: heartbeat, drain, periodic file flush, unlink once attached. Returns the number
  // of packets drained.
  size_t poll();
  // The delay poll() suggests before the next pass.
  uint64_t next_interval_ns() const { return interval_ns_; }

  // Polls until `wait_for_target(timeout_ns)` returns true. The callback waits up to
  // `timeout_ns` for the target to end (it may return early, e.g. on a signal) and says
  // whether it has ended.
  void run(const std::function<bool(uint64_t timeout_ns)>& wait_for_target);

  // Drains everything left, committed prefixes of unfinished chunks included (so a SIGKILLed
  // target loses nothing it committed), and unlinks the segment name.
  void drain_remaining();

  // drain_remaining(), then writes the summary and footer. Returns false if the file could not
  // be completed (see writer_error()); the file then stays readable up to its last whole chunk.
  bool finish(const SessionEnd& end);

  // Agent handshake state, read from the segment header.
  uint32_t agent_state() const;
  std::string agent_message() const;
  // True once the agent was seen attached at any poll.
  bool agent_attached() const { return agent_seen_; }

  const TranslatorStats& stats() const { return translator_.stats(); }
  const ring::DrainStats& drain_stats() const;
  size_t thread_count() const { return translator_.thread_count(); }
  uint64_t events_written() const { return writer_.events_written(); }
  // Empty unless writing the file failed (disk full, I/O error).
  std::string writer_error() const;

 private:
  void check_agent();

  ring::OwnedSegment& segment_;
  RecordingWriter& writer_;
  SessionOptions options_;
  std::unique_ptr<ring::Drainer> drainer_;
  PacketTranslator translator_;
  std::string error_;
  uint64_t interval_ns_;
  uint64_t last_flush_ns_;
  bool agent_seen_ = false;
  bool finished_ = false;
};

// CLOCK_MONOTONIC in nanoseconds (the clock of every time in the segment).
uint64_t monotonic_now_ns();

}  // namespace pyrewind::collector
