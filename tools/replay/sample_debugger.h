// `pyrewind replay` over a sampled recording (mode "sample", `pyrewind sample`): each sample is
// one step, all threads interleaved in time order, numbered by its sample index (as `export
// --format jsonl` shows it).
//
// Samples are small and wanted in time order, so they are read once, at start, into memory
// (a stack shared by the samples that have the same one); the replay index (FILE.rwdi), whose
// checkpoints hold traced stacks and locals, is not used.
//
// Moving: step/back, the next/previous sample of any thread; next/rnext, of the current thread
// (as the trace debugger's `next` stays in its frame); return/rreturn, to the thread's first
// sample after / the first of the run of samples in which the innermost function is running;
// continue/rcontinue, to a sample whose stack holds a breakpoint's location in any frame (the
// line or function is running, or waiting for what it called); goto N | #N | T | +T | -T;
// thread N. A sample records no locals: print, locals, watch, history and breakpoint
// conditions say so.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"
#include "tools/replay/session.h"

namespace pyrewind::replay {

class SampleDebugger : public Session {
 public:
  explicit SampleDebugger(const reader::Recording& recording);
  ~SampleDebugger() override;

  bool start() override;
  bool execute(const std::string& line) override;

 private:
  struct Sample {
    uint64_t index = 0;    // as `export` numbers it: file order
    uint64_t time_ns = 0;
    uint32_t thread = 0;
    uint32_t stack = 0;    // into stacks_
    bool gil = false;
    bool idle = false;
  };
  using Stack = std::vector<reader::SampleFrame>;  // innermost first
  using Predicate = std::function<bool(const Sample&)>;

  void load();
  const Sample& here() const { return samples_[position_]; }
  const Stack& stack_of(const Sample& s) const { return stacks_[s.stack]; }
  // Whether `s` still runs `code` in the frame `depth` levels above its outermost one (samples
  // cannot tell two calls in a row apart).
  bool runs(const Sample& s, size_t depth, const reader::CodeInfo* code) const {
    const Stack& st = stack_of(s);
    return st.size() > depth && st[st.size() - 1 - depth].code == code;
  }
  // The innermost frame with Python source (not a C function), or nullptr.
  const reader::SampleFrame* python_frame(const Sample& s) const;
  const Breakpoint* breakpoint_hit(const Sample& s) const;
  std::string thread_title(uint32_t thread) const;

  // --- moving (positions index samples_, in time order)
  // The first position after (before) the current one where `pred` holds.
  std::optional<size_t> search_forward(const Predicate& pred) const;
  std::optional<size_t> search_backward(const Predicate& pred) const;
  // The next (previous) sample of the current thread.
  std::optional<size_t> thread_neighbour(bool forward) const;
  void move_to(size_t position);
  void cmd_return();
  void cmd_rreturn();
  void cmd_continue(bool forward);
  void cmd_goto(const std::string& args);
  // Thread `thread`'s latest sample at or before `time_ns`, else its first.
  std::optional<size_t> sample_of_thread_at(uint32_t thread, uint64_t time_ns) const;

  // --- looking
  void show_position();
  void cmd_where();
  void cmd_threads();
  void cmd_thread(const std::string& args);
  void cmd_info(const std::string& args);

  const reader::Recording& recording_;
  // Read to the end: owns the code objects the stacks point to, and the thread names.
  std::unique_ptr<reader::Timeline> timeline_;
  std::vector<Sample> samples_;                        // in time order
  std::vector<Stack> stacks_;                          // distinct stacks
  std::vector<size_t> position_of_index_;              // sample index -> position
  std::map<uint32_t, std::vector<size_t>> by_thread_;  // each thread's positions, in time order
  size_t position_ = 0;
};

}  // namespace pyrewind::replay
