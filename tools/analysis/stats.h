// Profile of a recording, accumulated in one pass: per function calls, inclusive and self
// time; per line hits and time (line_profiler's way); which lines ran; and the types seen of
// arguments and return values (MonkeyType's way). Memory grows with the number of code
// objects and lines, never with the recording's length.
//
// Definitions:
//   calls       CALL events (a generator or coroutine counts each resume, as cProfile does)
//   self        time in the function's own spans minus the spans of the calls it made
//   total       time in its spans, each moment once: a recursive call inside an activation of
//               the same function adds nothing
//   line time   from a LINE event to the next event of the same frame (the line's own work and
//               the calls it made); line self: from an event of the thread to its next event,
//               for the line the innermost frame was on
//   arguments   the locals bound at a call's CALL event (the entry, not a resume): Python binds
//               only the parameters before the first line, and a closure's free variables
//               (the recording does not say how many parameters a code object has)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tools/analysis/spans.h"
#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

// Distinct type names in order of first sight, at most kMax (then `more` is set).
struct TypeSet {
  static constexpr size_t kMax = 8;
  std::vector<std::string> names;
  bool more = false;
  void add(const std::string& name);
  std::string join() const;  // "int | str" (+ " | ..." when more)
};

// A Python-like annotation of a recorded value: "int", "list[int | str]", "dict[str, int]",
// "tuple[int, str]", "Ledger". Empty for a redacted value.
std::string type_name(const v1::Value& value);

struct FunctionStats {
  uint64_t code_id = 0;
  uint64_t calls = 0;
  uint64_t total_ns = 0;
  uint64_t self_ns = 0;
  std::vector<std::pair<std::string, TypeSet>> arguments;  // in slot order
  TypeSet returns;
  bool resumed = false;  // a generator or coroutine (a CALL that was not the entry)
};

struct LineStats {
  uint64_t hits = 0;
  uint64_t time_ns = 0;
  uint64_t self_ns = 0;
};

class StatsCollector : public SpanSink {
 public:
  void begin(const Span& span) override;
  void end(const Span& span, uint64_t time_ns) override;
  // Every event inside the range, in file order, after the span builder has seen it.
  void on_step(const reader::Step& step);

  const std::unordered_map<uint64_t, FunctionStats>& functions() const { return functions_; }
  // By (code id, line).
  const std::map<std::pair<uint64_t, uint32_t>, LineStats>& lines() const { return lines_; }
  uint64_t events() const { return events_; }

 private:
  struct Active {
    uint64_t code_id;
    uint64_t start_ns;
    uint64_t children_ns;
  };
  struct LineMark {
    uint32_t depth;
    uint64_t code_id;
    uint32_t line;
    uint64_t since_ns;
  };
  struct ThreadState {
    std::vector<Active> stack;
    std::unordered_map<uint64_t, uint32_t> activations;  // per code id on `stack`
    std::vector<LineMark> marks;                         // current line per frame, by depth
    uint64_t last_ns = 0;
    bool seen = false;
  };

  FunctionStats& function(uint64_t code_id);
  void record_types(const reader::Step& step);

  std::unordered_map<uint32_t, ThreadState> threads_;
  std::unordered_map<uint64_t, FunctionStats> functions_;
  std::map<std::pair<uint64_t, uint32_t>, LineStats> lines_;
  uint64_t events_ = 0;
};

}  // namespace pyrewind::analysis
