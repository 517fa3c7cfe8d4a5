// `pyrewind replay`: a time-travel debugger over a recording, with pdb's commands and their
// reverse forms. The position is one recorded event (a step); its thread is the current
// thread. Moving forward reads on from the position; moving backward, `goto` and `thread`
// restart from the replay index's checkpoint of the right chunk, so every command reads at most
// the chunks it must search, never the recording from its start.
//
// Commands (`help` lists them): step/s, next/n, return/r, continue/c, back/rs, rnext, rreturn,
// rcontinue, break/b [FILE:LINE|LINE|FUNCTION] [if EXPR], watch NAME, delete N, goto SEQ|[+-]Ts,
// where/bt, locals, print/p EXPR, list/l, threads, thread N, history NAME, info, help, quit/q.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"
#include "tools/replay/index.h"
#include "tools/replay/session.h"

namespace pyrewind::replay {

class Debugger : public Session {
 public:
  Debugger(const reader::Recording& recording, const ReplayIndex& index);
  ~Debugger() override;

  bool start() override;
  bool execute(const std::string& line) override;

 private:
  // What stopped a forward or backward search (for the message).
  struct Stop {
    const Breakpoint* breakpoint = nullptr;
    const Watch* watch = nullptr;
    std::string condition_error;
  };
  using Predicate = std::function<bool(const reader::Timeline&)>;
  // Whether a search may stop in a chunk (from the index's chunk contents, without reading it).
  using ChunkFilter = std::function<bool(size_t chunk)>;

  // --- moving
  // The first and last seq of the recording: a flight-recorder window, or a series whose
  // oldest files were deleted, starts after 0 (seq numbers count from the recording's start).
  uint64_t first_seq() const;
  uint64_t last_seq() const;
  bool seek(uint64_t seq);
  bool forward(const Predicate& pred, const ChunkFilter& may_stop = {});
  std::optional<uint64_t> backward(const Predicate& pred, const ChunkFilter& may_stop = {});
  void move_forward(const Predicate& pred, const char* end_message);
  void move_backward(const Predicate& pred, const char* start_message);
  void continue_forward();
  void continue_backward();
  // Whether a breakpoint or watch stops at the timeline's step (and which, when `stop`).
  bool hits_stop(const reader::Timeline& timeline, Stop* stop);
  // Calls f for each step of one chunk, from its checkpoint, until f returns false.
  void for_each_step_in_chunk(size_t chunk, const std::function<bool(const reader::Timeline&)>& f) const;
  bool chunk_may_stop(size_t chunk) const;
  // The step of `thread` that was current at time `time_ns`: its latest event at or before
  // then (seq order is the order records reached the collector, not time order across
  // threads), else its first one after.
  std::optional<uint64_t> step_of_thread_at(uint32_t thread, uint64_t time_ns) const;

  // --- commands
  void cmd_watch(const std::string& args);
  void cmd_goto(const std::string& args);
  void cmd_where();
  void cmd_locals();
  void cmd_print(const std::string& args);
  void cmd_threads();
  void cmd_thread(const std::string& args);
  void cmd_history(const std::string& args);
  void cmd_info(const std::string& args);
  void cmd_help();

  // --- showing
  void show_position(const Stop& stop);
  void show_frame_locals(const reader::Frame& frame, const std::string& indent);
  std::string frame_title(const reader::Frame& frame, uint32_t line) const;
  std::string thread_title(uint32_t thread) const;
  const reader::Step& step() const { return timeline_->step(); }
  const reader::Frame* current_frame() const { return step().frame; }

  const reader::Recording& recording_;
  const ReplayIndex& index_;
  std::unique_ptr<reader::Timeline> timeline_;  // positioned at the current event
};

}  // namespace pyrewind::replay
