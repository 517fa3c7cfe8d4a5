// Calls as spans: the begin and end of every function activation, per thread, built in one
// pass over a recording's events in bounded memory (one open span per stack level).
//
// Every span that begins also ends, strictly nested per thread, with non-decreasing times per
// thread, whatever the input:
//   - the event's depth is authoritative: spans deeper than an event are closed at its time
//     (their returns were lost), a CALL at a level that is still open closes that level first,
//     and an event of another code object at an open level replaces the span there;
//   - a frame first seen by a LINE or EXCEPTION (its call was lost, or happened before an
//     attach) opens its span there;
//   - with --from, the spans open at the range start are opened there (on the thread's first
//     event in range, or at the start for a thread that has none); at --to, at the end of the
//     recording, or at a thread's end, open spans are closed at the last timestamp in range;
//   - a generator or coroutine makes one span per resume (CALL .. RETURN/yield), as profilers do.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tools/analysis/range.h"
#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

struct Span {
  uint32_t thread = 0;
  uint32_t depth = 0;
  const reader::CodeInfo* code = nullptr;  // never null
  uint32_t line = 0;       // the line when the span opened (the def line for a call)
  uint64_t start_ns = 0;   // when it opened in the output (the range start for earlier calls)
  bool called = false;     // opened by its CALL event, not found running
};

class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void begin(const Span& span) = 0;
  virtual void end(const Span& span, uint64_t time_ns) = 0;
  // Records of `thread` were dropped after `time_ns` (its last event before the loss).
  virtual void lost(uint32_t thread, uint64_t time_ns, uint64_t records) {
    (void)thread, (void)time_ns, (void)records;
  }
};

// What the span builder needs of an event (reader::Step has it all; tests build them).
struct SpanEvent {
  uint64_t seq = 0;
  uint64_t time_ns = 0;
  uint32_t thread = 0;
  uint32_t kind = 0;  // pyrewind.v1.EventKind
  uint32_t depth = 0;
  uint32_t line = 0;
  const reader::CodeInfo* code = nullptr;

  static SpanEvent of(const reader::Step& step);
};

class SpanBuilder {
 public:
  SpanBuilder(const Range& range, SpanSink& sink) : range_(range), sink_(sink) {}

  // Feeds the next event in file order. Returns whether it is inside the range (and of a
  // selected thread). Once `done()`, nothing later can be inside.
  bool on_event(const SpanEvent& event);
  void on_loss(uint32_t thread, uint64_t records);
  void on_thread_end(uint32_t thread);
  // Closes every span still open at the last timestamp in range.
  void finish();

  const Range& range() const { return range_; }
  bool done() const { return done_; }
  bool started() const { return started_; }      // an event inside the range was seen
  uint64_t first_time_ns() const { return start_ns_; }  // of the range's first event
  uint64_t last_time_ns() const { return last_ns_; }    // of the range's last event

 private:
  struct ThreadState {
    std::vector<Span> open;  // by increasing depth
    bool shown = false;      // the sink has seen this thread's open spans
    bool past_end = false;   // an event after the range was seen
    uint64_t last_ns = 0;
  };

  void close_from(ThreadState& t, size_t index, uint64_t time_ns);
  void show(ThreadState& t, uint64_t time_ns);

  Range range_;
  SpanSink& sink_;
  std::unordered_map<uint32_t, ThreadState> threads_;
  bool done_ = false;
  bool started_ = false;
  uint64_t start_ns_ = 0;
  uint64_t last_ns_ = 0;
};

// How a code object is named in profiles: its qualified name, or "<unknown code N>" (a native
// function whose symbol is unknown: "?").
std::string function_name(const reader::CodeInfo& code);
// Where it is: "file:line" (`line` of the code, or its first line when 0), or a native
// function's module.
std::string code_location(const reader::CodeInfo& code, uint32_t line = 0);

}  // namespace pyrewind::analysis
