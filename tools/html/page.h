// `pyrewind html`: one self-contained page (no network) to step through a range of a recording:
// source with the current line, stack with locals, calls per thread, memory diagram.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tools/analysis/range.h"
#include "tools/reader/output.h"
#include "tools/reader/recording.h"

namespace pyrewind::html {

// A place in a recording given on the command line: an event's seq ("1200") or a time since
// the recording started ("1.5s", "250ms", "40us", "900ns").
struct PageOptions {
  std::optional<analysis::Position> from;  // first step shown (inclusive)
  std::optional<analysis::Position> to;    // last step shown (inclusive)
  std::optional<uint32_t> thread;  // only this recording thread
  uint64_t max_steps = 20000;    // a bigger range is cut, and the page says so
};

struct PageResult {
  uint64_t steps = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  // The range held more than max_steps events: the page stops at last_seq, and the next event
  // of the range is next_seq.
  bool limited = false;
  uint64_t next_seq = 0;
  std::string read_error;  // the recording is damaged here; the steps before it are shown
  uint64_t skipped_packets = 0;
};

// What to tell when the range was cut at max_steps: what is shown and how to choose another part.
std::string limit_message(const std::string& recording_path, const PageOptions& options, const PageResult& result);

// Streams the recording's range into `out` as the page. False when writing failed (out.error()).
bool write_page(const reader::Recording& recording, const PageOptions& options, reader::OutputFile& out,
                PageResult* result);

}  // namespace pyrewind::html
