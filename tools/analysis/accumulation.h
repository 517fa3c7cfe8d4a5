// The accumulation table of a loop (PyTA's AccumulationTable, offline): one row per iteration
// with the values of the loop variables and accumulators, row 0 being the state before the
// first iteration.
//
// A loop is named by its header line (the `for` or `while` line). Every time a frame executes
// that line the previous iteration is over, so the frame's locals there are a row: the first
// time, the state before the loop; then after iteration 1, 2, ... (the loop variable still
// holds that iteration's value, as PyTA shows it). A run of the loop ends when its frame
// leaves the loop: a step at a line outside the loop's body (known from the source's
// indentation; without the source, only when the frame returns), its return, or a new call at
// its depth. A loop left by `break` gets a last row there, marked "break". Each run of the loop
// (each call, or each pass of an enclosing loop) is its own table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

struct LoopSpec {
  std::string file;                // a path or its end ("loops.py")
  uint32_t line = 0;               // the loop's header line
  std::vector<std::string> names;  // columns; empty: every local that changes in the loop
  size_t max_rows = 1000;          // per run; more are counted, not kept
  size_t max_runs = 100;           // more are counted, not kept
};

struct LoopRow {
  uint64_t seq = 0;
  bool at_break = false;
  std::map<std::string, v1::Value> values;  // bound locals at that step
};

struct LoopRun {
  uint32_t thread = 0;
  std::string function;
  std::string file;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::vector<std::string> columns;  // in slot order; the same for every run of the loop
  std::vector<LoopRow> rows;
  uint64_t rows_dropped = 0;         // beyond max_rows
};

class AccumulationTable {
 public:
  // `body_last_line`: the last line of the loop's body when the source is known.
  AccumulationTable(LoopSpec spec, std::optional<uint32_t> body_last_line);

  // Feeds every event of the timeline, in order.
  void on_step(const reader::Timeline& timeline);
  // Closes the runs still open and returns them all.
  std::vector<LoopRun> finish();
  uint64_t runs_dropped() const { return runs_dropped_; }

 private:
  struct Open {
    LoopRun run;
    uint32_t depth = 0;
    uint64_t code_id = 0;
    bool last_was_header = false;
    std::vector<std::string> order;  // local names in slot order, as first seen
  };
  bool in_body(uint32_t line) const;
  void close(Open& open);
  void add_row(Open& open, const reader::Step& step, bool at_break);

  LoopSpec spec_;
  std::optional<uint32_t> body_last_line_;
  std::map<std::pair<uint32_t, uint32_t>, Open> open_;  // by (thread, depth)
  std::vector<LoopRun> done_;
  std::vector<std::string> order_;  // local names of all runs, in slot order as first seen
  uint64_t runs_dropped_ = 0;
};

// The last line of the block that the header at `line` opens, from the source's indentation:
// the last non-blank, non-comment line indented deeper than the header before one that is not.
// The header line itself for a one-line loop. Nothing when the line does not exist.
std::optional<uint32_t> block_last_line(const std::vector<std::string>& source, uint32_t line);

}  // namespace pyrewind::analysis
