// The part of a recording a command looks at: `--from`, `--to` and `--thread`.
//
// A position is a time since the recording started or an event number (seq, as `export
// --format jsonl` and `info` show it):
//   1.5s  200ms  40us  900ns   a time since the start (a leading '+' is allowed: "+1.5s")
//   #1200  or  1200            the event with that seq
// Both ends are inclusive. Times are compared per event, so a range by time is exact on every
// thread even where the file interleaves threads out of time order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pyrewind::analysis {

struct Position {
  enum class Kind { kSeq, kTime };
  Kind kind = Kind::kSeq;
  uint64_t value = 0;  // seq, or nanoseconds since the start
  bool is_time() const { return kind == Kind::kTime; }
};

// False with `*error` set when `text` is neither form.
bool parse_position(std::string_view text, Position* position, std::string* error);

// Where an event stands relative to a range.
enum class Where { kBefore, kInside, kAfter };

struct Range {
  std::optional<Position> from;
  std::optional<Position> to;
  std::optional<uint32_t> thread;  // recording thread index

  // Builds a range from command-line text ("" = open end; thread < 0 = every thread).
  // False with `*error` set on a bad position or an empty range (to before from).
  static bool parse(const std::string& from, const std::string& to, int64_t thread, Range* range,
                    std::string* error);

  bool selects_thread(uint32_t index) const { return !thread || *thread == index; }
  Where locate(uint64_t seq, uint64_t time_ns) const;
  // True when no event at or after `seq` can be inside (the range ends at an earlier seq), so
  // a reader may stop. A range ending at a time has no such point: the file does not keep
  // threads in time order.
  bool over_at(uint64_t seq) const { return to && !to->is_time() && seq > to->value; }
};

}  // namespace pyrewind::analysis
