// What `dump`, `sample` and `top` share: the exit status for a process whose interpreter
// cannot be found, a fixed-rate clock, and the code objects of sampled frames as dense ids.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/src/recording_writer.h"
#include "injector/inspect/native_stacks.h"
#include "injector/inspect/python_process.h"
#include "injector/inspect/python_stacks.h"
#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::cli {

// Prints why `located` failed and returns pyrewind's exit status for it (commands.h).
int locate_failure(const inspect::LocateResult& located);

uint64_t monotonic_ns();

// Ctrl-C, SIGTERM and SIGHUP end sampling (the loop checks stop_requested() every tick).
void catch_stop_signals();
bool stop_requested();

// The process's argv, from /proc/PID/cmdline (empty when it cannot be read).
std::vector<std::string> process_arguments(pid_t pid);

// Ticks at a fixed rate on absolute deadlines (CLOCK_MONOTONIC): a late tick comes at once,
// but whole periods missed are skipped rather than caught up in a burst.
class Ticker {
 public:
  explicit Ticker(uint32_t hz);
  uint64_t period_ns() const { return period_ns_; }
  // Sleeps until the next tick; returns early when a signal arrives.
  void wait();

 private:
  uint64_t period_ns_;
  uint64_t next_ns_;
};

// Idle: the OS thread was not running (asleep, blocked in a system call); unknown counts as
// running.
inline bool is_idle(const inspect::ThreadStack& thread) {
  return thread.os_state != 'R' && thread.os_state != '?';
}

// The processes descended from `root` (its children, theirs, ...), from /proc.
std::vector<pid_t> descendant_pids(pid_t root);

// Code objects of sampled frames: one id (from 1) per (file, function, first line), found on
// later samples by the code object's address, revalidated against the frame, since the address
// of a freed code object may be reused by another.
class CodeTable {
 public:
  explicit CodeTable(uint64_t first_id = 1) : first_id_(first_id) {}
  struct Code {
    std::string function, file;
    int first_line = 0;  // -1: a native (C) function, `file` its module
  };
  // The frame's id; `*is_new` is set when the code was never seen before.
  uint64_t intern(const inspect::Frame& frame, bool* is_new);
  // A native function's id, by module and symbol.
  uint64_t intern_native(const std::string& module, const std::string& symbol, bool* is_new);
  const Code& code(uint64_t id) const { return codes_[id - first_id_]; }

 private:
  std::unordered_map<uint64_t, uint64_t> by_address_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> by_key_;
  std::vector<Code> codes_;
  uint64_t first_id_;
};

// Where a SampleRecorder's ids come from. A sample recording has them to itself; samples taken
// during a traced session share the recording with the agent's own ids and thread indices.
struct SampleIds {
  uint64_t first_id = 1;  // of its strings and code objects
  // The index for an OS thread the recorder has not seen: {index, whether the recording
  // already announced that thread}. Empty: 0, 1, 2, ...
  std::function<std::pair<uint32_t, bool>(pid_t native_id)> new_thread_index;
};

// Turns snapshots into the recording's packets: strings, code objects and threads defined once
// (the writer re-states them per chunk), then one Sample per thread.
class SampleRecorder {
 public:
  explicit SampleRecorder(collector::RecordingWriter& writer, SampleIds ids = {});

  // `pid`: the thread's process, 0 for the recording's own; `merged`: the thread's stack with
  // native frames (--native), else nullptr.
  void add(const inspect::ThreadStack& thread, pid_t pid, const std::vector<inspect::MergedFrame>* merged,
           bool gil_known, uint64_t time_ns);
  void flush() { writer_.flush_chunk(); }

 private:
  struct Thread {
    uint32_t index = 0;
    pid_t native_id = 0;
    std::string name;
    bool announced_elsewhere = false;  // the agent named it: never renamed from here
  };
  uint64_t string_id(const std::string& text);
  uint64_t code_id(const inspect::Frame& frame);
  uint64_t native_code_id(const inspect::NativeFrame& frame);
  // Announces code object `id` (its CodeDef, and the StringDefs it names).
  void define_code(uint64_t id, const std::string& file, const std::string& name, int first_line, bool native);
  // A thread is known by its process and threading.get_ident(); a new OS thread behind the
  // same ident (one ended, another started) gets a new index, and a renamed thread is announced
  // again.
  uint32_t thread_index(const inspect::ThreadStack& stack, pid_t pid);

  collector::RecordingWriter& writer_;
  SampleIds ids_;
  CodeTable codes_;
  std::unordered_map<std::string, uint64_t> strings_;
  std::map<std::pair<pid_t, uint64_t>, Thread> threads_;
  uint32_t next_thread_ = 0;
  v1::Packet packet_;
  std::string bytes_;
};

// As the collector of `run` does, the chunk being filled is written every second, so a
// sampler that is killed loses at most that much.
constexpr uint64_t kSampleFlushIntervalNs = 1000000000;

struct SampleCounts {
  uint64_t samples = 0;
  uint64_t dropped = 0;
  uint64_t flushed_ns = 0;  // when the chunk was last written
};

// --native: every thread is stopped while both its stacks are read, so they agree (as py-spy
// --native does); what libunwind learns about the process is kept from tick to tick.
struct NativeSampling {
  explicit NativeSampling(pid_t target) : pid(target), unwinder(target) {}
  pid_t pid;
  inspect::NativeUnwinder unwinder;
};

// Stops every thread of `pid` for --native, or says why not (and sets pyrewind's exit status
// for it).
std::unique_ptr<inspect::NativeStacks> stop_threads(pid_t pid, int* exit_code, std::string* error);

// One tick: every thread's stack into the recording (times from `start_ns`, threads of
// `recorded_pid`: 0 for the recording's own process); torn threads counted as dropped. False
// when the interpreter could not be read at all.
bool sample_once(inspect::StackReader& reader, SampleRecorder& recorder, NativeSampling* native, pid_t recorded_pid,
                 uint64_t start_ns, SampleCounts* counts);

}  // namespace pyrewind::cli
