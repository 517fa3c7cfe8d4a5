// Starting a program with the agent preloaded (`pyrewind run`), or as it is (`pyrewind
// sample`: a LaunchSpec without a preload library), with the same gate and signal handling.
//
// The child is forked first and held at a gate before it execs: its pid is known (for the
// recording header) while nothing of the program has run yet, so a failure to set up the
// recording can still abort cleanly. It stays in pyrewind's process group (the terminal's
// foreground group), so Ctrl-C and Ctrl-\ reach it directly; pyrewind ignores SIGINT and
// SIGQUIT meanwhile and forwards SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 to it (those of them
// pyrewind was not started with ignored, e.g. by nohup). A signal sent to the whole process
// group reaches the child twice (directly and forwarded); standard signals merge while
// pending, and a program that counts them is rare enough to accept that. Everything the
// child inherits (descriptors, directory, signal dispositions and mask, environment apart
// from the preload variables below) is what pyrewind itself was started with.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyrewind::injector {

constexpr const char* kSegmentEnv = "PYREWIND_SEGMENT";
constexpr const char* kSavedPreloadEnv = "PYREWIND_SAVED_LD_PRELOAD";

struct LaunchSpec {
  std::string executable;          // absolute path (resolve_executable)
  std::vector<std::string> argv;   // argv[0] as the user typed it, like execvp
  std::string preload_library;     // the shim: <agent dir>/libpyrewind-preload.so ("": none)
  std::string agent_dir;
  std::string segment_name;
};

// The child's environment (the env contract in /work/brief.md): `environment` with
//   LD_PRELOAD=<shim>[:<user's LD_PRELOAD>]   (in the place of the user's entry, if any)
//   PYREWIND_SAVED_LD_PRELOAD=<user's value>  (only when the user had LD_PRELOAD, even empty)
//   PYREWIND_SEGMENT, PYREWIND_AGENT_DIR
// Stale PYREWIND_* entries are dropped. The shim undoes exactly this, so the program's
// os.environ, including its order, is the user's. Without a preload library: `environment`.
std::vector<std::string> build_environment(const char* const* environment, const LaunchSpec& spec);

class TracedChild {
 public:
  // Forks the child and holds it at the gate. Installs pyrewind's signal handling (one
  // TracedChild at a time per process). nullptr + `*error` on failure.
  static std::unique_ptr<TracedChild> prepare(const LaunchSpec& spec, std::string* error);
  // Restores pyrewind's signal handling. A child still held at the gate is killed (it never
  // ran anything); a running child is left alone.
  ~TracedChild();
  TracedChild(const TracedChild&) = delete;
  TracedChild& operator=(const TracedChild&) = delete;

  pid_t pid() const { return pid_; }

  // Opens the gate: the child execs the program. Returns false if exec failed (`*error` says
  // why, `*exec_errno` is its errno; the child is reaped).
  bool start(std::string* error, int* exec_errno);
  // Kills the child held at the gate and reaps it.
  void cancel();

  // Waits up to `timeout_ns` for the child to exit, without reaping it (so its pid cannot be
  // reused while signals are still forwarded to it). True once it has exited. May return
  // early when a signal arrives.
  bool wait_exit(uint64_t timeout_ns);
  // Stops forwarding signals and reaps the exited child (waiting if need be); returns its
  // wait status (again on later calls).
  int reap();

 private:
  TracedChild() = default;
  struct SavedSignals;

  pid_t pid_ = -1;
  int gate_fd_ = -1;     // write end: one byte opens the gate; closing it without one aborts
  int status_fd_ = -1;   // read end: EOF = exec succeeded, else the child's errno
  int pidfd_ = -1;
  bool started_ = false;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::unique_ptr<SavedSignals> saved_;
};

// Decodes a wait status: the exit code, or -signal.
int32_t exit_status_of(int wait_status);

}  // namespace pyrewind::injector
