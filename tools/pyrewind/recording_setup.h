// What `run` and `attach` share: the agent configuration built from the trace options, the
// shared-memory ring, the recording header's common fields, and pyrewind's messages.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>

#include "collector/src/recording_writer.h"
#include "collector/src/session.h"
#include "pyrewind/v1/recording.pb.h"
#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/pyrewind/sampling.h"

namespace pyrewind::cli {

// The agent bounds one encoded event (locals included) to this; a ring chunk must hold it
// with its framing, hence the chunk size.
constexpr uint32_t kMaxEventBytes = 32768;
constexpr uint32_t kChunkBytes = 65536;
static_assert(ring::chunk_payload_bytes(kChunkBytes) >= kMaxEventBytes + 16);

// Watches a recording's limits while its session runs. Once one is reached, or writing the
// file failed (disk full), asks the agent to stop tracing (it removes tracing; the program runs
// on) and, for a limit, says so, once.
class LimitWatch {
 public:
  LimitWatch(const RecordingLimits& limits, collector::RecordingWriter& writer, ring::SegmentHeader& ring_header,
             bool quiet);
  // Call at each poll. True once a limit was reached.
  bool check();
  // For RecordingSummary.stop_reason; empty while no limit was reached.
  const std::string& reason() const { return reason_; }

 private:
  RecordingLimits limits_;
  collector::RecordingWriter& writer_;
  ring::SegmentHeader& ring_header_;
  bool quiet_;
  uint64_t start_ns_;
  std::string reason_;
};

// --rotate, --ring and --trigger-on as the writer's output options. With a series or a flight
// recorder, --max-size bounds the files together (the oldest are deleted): `limits->max_bytes`
// is then moved to `out->max_total_bytes`. False after setting `*error` (a usage error).
bool series_output(const SeriesOptions& series, RecordingLimits* limits, collector::OutputOptions* out,
                   std::string* error);

// A flight recorder's trigger from outside: SIGUSR1 (what `pyrewind trigger` sends), caught
// while this object lives (when `active`) instead of its usual action.
class FlightTrigger {
 public:
  explicit FlightTrigger(bool active);
  ~FlightTrigger();
  FlightTrigger(const FlightTrigger&) = delete;
  FlightTrigger& operator=(const FlightTrigger&) = delete;
  // Call at each poll: writes a window if SIGUSR1 came, after one more poll of `session` so
  // that it holds everything the program did up to the signal even when the collector is behind;
  // reports each new window (also those an exception triggered) on stderr unless `quiet`, and
  // in the session's status file.
  void check(collector::Session& session, collector::RecordingWriter& writer, LiveSessionFile& live, bool quiet);

 private:
  bool active_;
  struct sigaction previous_ {};
  uint64_t reported_ = 0;
};

// Samples the stacks of a traced session's program from outside while its line tracing is
// paused for that: asked by `pyrewind ctl SESSION sample on`, or by the agent over its
// --max-overhead budget (SegmentHeader.sampling). The samples go into the session's recording
// on its timeline, with ids of their own (from 2^40, never the agent's) and the agent's
// thread indices for threads it announced.
class LiveSampler {
 public:
  LiveSampler(pid_t pid, collector::RecordingWriter& writer, ring::SegmentHeader& header, bool quiet);
  ~LiveSampler();
  LiveSampler(const LiveSampler&) = delete;
  LiveSampler& operator=(const LiveSampler&) = delete;

  // Call at each poll: answers the agent's request, and takes a sample when one is due.
  void poll();
  // Line tracing off, sampling at `rate_hz` on. False (and a message) when the process cannot
  // be read from outside; tracing then goes on.
  bool start(uint32_t rate_hz, const char* why);
  // Back to line tracing (`resume`) or to nothing recorded.
  void stop(bool resume);
  bool active() const { return reader_ != nullptr; }
  uint64_t samples() const { return counts_.samples; }

 private:
  struct Target;
  pid_t pid_;
  collector::RecordingWriter& writer_;
  ring::SegmentHeader& header_;
  bool quiet_;
  std::unique_ptr<Target> target_;
  std::unique_ptr<inspect::StackReader> reader_;
  std::unique_ptr<SampleRecorder> recorder_;
  SampleCounts counts_;
  uint64_t period_ns_ = 0;
  uint64_t next_sample_ns_ = 0;
};

// The file filters of a live session, changed by `pyrewind ctl SESSION include|exclude GLOB`:
// the patterns are rewritten in the ring header's config under its sequence lock, and the
// agent applies them at its next callback.
class LiveFilters {
 public:
  LiveFilters(const TraceOptions& trace, ring::SegmentHeader& header) : trace_(trace), header_(header) {}
  // `kind` "include" or "exclude": one more pattern of that kind. False with `*error` when the
  // patterns no longer fit the config.
  bool add(const std::string& kind, const std::string& glob, std::string* error);
  // How many changes the agent has applied (or refused with a message).
  uint64_t applied() const;

 private:
  TraceOptions trace_;
  ring::SegmentHeader& header_;
};

// Hands a `pyrewind ctl` request left for this collector to the sampler or the filters, which
// tell the agent (ring header), and publishes the filter changes the agent applied; call at
// each poll.
void apply_control_request(LiveSessionFile& live, LiveSampler& sampler, LiveFilters& filters, bool quiet);

// The state `status` shows for the session: the agent's, or "sampling".
std::string session_state_name(const ring::SegmentHeader& header, const LiveSampler& sampler);

// The state `status` shows for an agent state of the ring header.
const char* agent_state_name(uint32_t agent_state);

// An absolute form of `path` (for `status`), or `path` itself.
std::string absolute_path(const std::string& path);

// Ends pyrewind the way a program it ran ended: by the same signal, without a core dump of
// its own.
int die_by_signal(int sig);

// "pyrewind: <message>" on stderr.
void say(const char* format, ...) __attribute__((format(printf, 1, 2)));

// The ring, with the AgentConfig built from these trace options, which only `target_pid` may
// map (0: any process), after sweeping rings left by dead collectors. nullptr after saying
// why; `*exit_code` then holds pyrewind's exit status.
std::unique_ptr<ring::OwnedSegment> create_ring(const TraceOptions& trace, uint32_t target_pid, int* exit_code);

// The header fields every recording fills the same way: format, times, host, mode.
v1::RecordingHeader base_header(uint64_t start_monotonic_ns, const char* mode);
// The same for `run` and `attach`, with the trace options.
v1::RecordingHeader base_header(const ring::OwnedSegment& segment, const TraceOptions& trace, const char* mode);

}  // namespace pyrewind::cli
