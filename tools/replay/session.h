// What the two debuggers of `pyrewind replay` share: the trace debugger (debugger.h, steps are
// recorded events) and the sample debugger (sample_debugger.h, steps are sampled stacks). One
// command language (names, aliases, argument forms), breakpoints and their listing, source
// listing, and the output buffer the terminal front end drains.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"
#include "tools/replay/expr.h"

namespace pyrewind::replay {

std::string trim(const std::string& s);
// Splits "word rest" into the word and the rest.
std::pair<std::string, std::string> split_word(const std::string& s);
bool parse_uint(const std::string& s, uint64_t* out);
// "Ledger.add" matches "Ledger.add" and "add"; "/app/app.py" matches "app.py" and "/app/app.py".
bool matches_function(const std::string& qualified, const std::string& wanted);
bool matches_file(const std::string& file, const std::string& wanted);
// "+1.234567s": a time since the recording's start.
std::string time_text(uint64_t time_ns);
// "thread 0 \"MainThread\"": the name from the reader's thread state, else from the summary.
std::string thread_title(uint32_t thread, const reader::ThreadInfo* info, const v1::RecordingSummary& summary);
// The command a word names, its aliases resolved ("s" -> "step", "bt" -> "where"); "" when none.
std::string command_name(const std::string& word);

// goto's argument: a position as the other commands take it (analysis::parse_position: N or
// #N, a step or sample number; 1.5s, a time since the start), or +T / -T, a time from `here_ns`.
struct GotoTarget {
  bool is_time = false;
  uint64_t value = 0;  // a step (sample) number, or nanoseconds since the start
};
bool parse_goto(const std::string& args, uint64_t here_ns, GotoTarget* target, std::string* error);

class Session {
 public:
  virtual ~Session() = default;
  // Moves to the first step and describes it. False (and the reason in the output) when the
  // recording has none.
  virtual bool start() = 0;
  // Runs one command line. False when it asked to quit.
  virtual bool execute(const std::string& line) = 0;
  // What the commands printed since the last take_output().
  std::string take_output();

 protected:
  struct Breakpoint {
    int number = 0;
    std::string file;      // "" for a function breakpoint
    uint32_t line = 0;
    std::string function;  // qualified name, or its last part
    std::unique_ptr<Expression> condition;
    uint64_t hits = 0;
  };
  struct Watch {
    int number = 0;
    std::string name;
    uint64_t code_id = 0;
    std::string function;
  };

  // `break ...`: `current_file` is the file of `break LINE`; `conditions_apply` false refuses
  // `if EXPR` (with `no_condition_reason`).
  void cmd_break(const std::string& args, const std::string& current_file, bool conditions_apply,
                 const char* no_condition_reason = "");
  void cmd_delete(const std::string& args);
  void cmd_info_break();
  // Whether `info ARGS` asks for the breakpoints ("break", "b", "watch").
  static bool names_breakpoints(const std::string& args);
  // `list [N|A,B]` of `file`, marking `line` (0: none) and the breakpoints.
  void cmd_list(const std::string& args, const std::string& file, uint32_t line);
  // After a move: `list` starts again around the new line.
  void reset_listing() { list_next_ = 0; }
  const std::string* source_line(const std::string& file, uint32_t line);

  std::string out_;
  const char* function_breakpoint_kind_ = "calls of ";  // what a function breakpoint stops at
  std::vector<std::unique_ptr<Breakpoint>> breakpoints_;
  std::vector<Watch> watches_;
  int next_number_ = 1;

 private:
  const std::vector<std::string>* source(const std::string& file);

  std::unordered_map<std::string, std::unique_ptr<std::vector<std::string>>> sources_;  // null: unreadable
  uint32_t list_next_ = 0;  // `list` again goes on from here
};

}  // namespace pyrewind::replay
