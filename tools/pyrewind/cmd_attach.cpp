// `pyrewind attach PID [options] -o FILE [--duration SECONDS]`
//
// 1. Preflight without ptrace (injector/attach/preflight.h): the process exists and runs, is
//    CPython of a version with an agent build, we may ptrace it, the agent file is readable by
//    its user, and no other `pyrewind attach` holds its lock (injector/attach/attach_lock.h).
//    Each refusal is one line naming the cause and the fix, with its own exit status.
// 2. Creates the ring (readable by the target's user) and the recording file, so nothing is
//    injected when the output cannot be written.
// 3. Injects: the target's main thread, stopped alone for a moment, calls dlopen(agent) and
//    pyrewind_agent_start(ring), which only starts the agent's own thread. Our own stop
//    signals wait until the target's thread is given back.
// 4. Collects until Ctrl-C / SIGTERM, --duration (counted from the agent tracing), the
//    target's exit, or the agent stopping; then asks the agent to detach, waits (bounded) for
//    it to confirm, drains, and finishes the file. The target runs on as it was.
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "collector/src/packet_validator.h"
#include "collector/src/recording_writer.h"
#include "collector/src/session.h"
#include "injector/attach/attach_lock.h"
#include "injector/attach/proc_info.h"
#include "injector/attach/inject.h"
#include "injector/attach/preflight.h"
#include "injector/launch/agents.h"
#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/pyrewind/recording_setup.h"

namespace pyrewind::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kInjectTimeout{5000};
constexpr milliseconds kAgentStartTimeout{10000};  // injection to the agent tracing
constexpr milliseconds kDetachTimeout{5000};

volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

// Ctrl-C, SIGTERM and a closed terminal end the recording (detach, finish the file) instead
// of killing pyrewind.
void catch_detach_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

// Holds back, for its lifetime, the signals that would stop or kill pyrewind while it has a
// thread of the target in its hands (a job-control stop would leave the target's thread
// stopped with it; a kill, the thread inside the injected call).
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t held;
    sigemptyset(&held);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2})
      sigaddset(&held, sig);
    sigprocmask(SIG_BLOCK, &held, &previous_);
  }
  ~SignalsHeld() { sigprocmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t previous_;
};

std::vector<std::string> command_line(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\0', start);
    argv.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return argv;
}

int preflight_exit_code(injector::PreflightStatus status) {
  switch (status) {
    case injector::PreflightStatus::kOk: return kExitOk;
    case injector::PreflightStatus::kNoProcess: return kExitNoProcess;
    case injector::PreflightStatus::kStopped:
    case injector::PreflightStatus::kExiting: return kExitTargetNotRunning;
    case injector::PreflightStatus::kNotPython: return kExitNotPython;
    case injector::PreflightStatus::kUnknownVersion:
    case injector::PreflightStatus::kOtherNamespace: return kExitUnsupportedTarget;
    case injector::PreflightStatus::kPermissionDenied: return kExitPermission;
  }
  return kExitInternal;
}

// One line for a failed injection, and its exit status.
int report_injection(const injector::InjectResult& result, pid_t pid) {
  switch (result.status) {
    case injector::InjectStatus::kOk: return kExitOk;
    case injector::InjectStatus::kNoProcess:
      say("process %d exited during the attach", pid);
      return kExitNoProcess;
    case injector::InjectStatus::kPermissionDenied:
      say("permission denied by ptrace (%s): another debugger may be attached, or run pyrewind as the "
          "target's user, or as root / with CAP_SYS_PTRACE",
          result.detail.c_str());
      return kExitPermission;
    case injector::InjectStatus::kUnsafe:
      say("could not attach to process %d safely: %s; try again", pid, result.detail.c_str());
      return kExitAttachFailed;
    case injector::InjectStatus::kLoadFailed:
      say("process %d could not load the agent: %s; rebuild pyrewind for this system, or check the file", pid,
          result.detail.c_str());
      return kExitAttachFailed;
    case injector::InjectStatus::kStartFailed:
      // pyrewind_agent_start's codes (agent/src/entry.cpp).
      if (result.start_result == 1) {
        say("process %d is already being recorded (by another `pyrewind attach`, or it runs under `pyrewind run`); "
            "stop that recording first",
            pid);
        return kExitAlreadyAttached;
      }
      if (result.start_result == 2)
        say("the agent in process %d cannot map the shared-memory ring (is /dev/shm full, or different for the "
            "target?); free space in /dev/shm and attach again",
            pid);
      else if (result.start_result == 3)
        say("the agent in process %d cannot start its thread (process out of memory or at its thread limit)", pid);
      else
        say("the agent in process %d failed to start (error %d)", pid, result.start_result);
      return kExitAttachFailed;
    case injector::InjectStatus::kFailed:
      break;
  }
  say("could not attach to process %d: %s", pid, result.detail.c_str());
  return kExitAttachFailed;
}

}  // namespace

int attach_command(const AttachOptions& options) {
  const auto command_start = Clock::now();
  const pid_t pid = options.pid;
  if (pid <= 0) {
    say("not a process id: %d", pid);
    return kExitUsage;
  }
  RecordingLimits limits_options = options.limits;
  collector::OutputOptions output;
  std::string error;
  if (!series_output(options.series, &limits_options, &output, &error)) {
    say("%s", error.c_str());
    return kExitUsage;
  }
  const bool flight_recorder = !options.series.ring.empty();
  catch_detach_signals();
  FlightTrigger flight(flight_recorder);
  const injector::PythonProcess target = injector::preflight(pid);
  if (target.status != injector::PreflightStatus::kOk) {
    say("%s", target.message.c_str());
    return preflight_exit_code(target.status);
  }
  const std::string agent_dir = injector::agent_dir();
  const std::vector<int> minors = injector::available_agent_minors(agent_dir);
  if (target.major != 3 || std::find(minors.begin(), minors.end(), target.minor) == minors.end()) {
    say("no pyrewind agent for Python %s (process %d runs %s); agents built: %s (in %s). To build one, "
        "reconfigure on a machine with that Python: cmake -B build -DPYREWIND_PYTHONS=\"/path/to/python3.X;...\" "
        "and rebuild",
        target.version.c_str(), pid, target.image.c_str(), injector::describe_versions(minors).c_str(),
        agent_dir.c_str());
    return kExitNoAgent;
  }
  const std::string agent_path = agent_dir + "/" + injector::agent_file_name(target.minor);
  if (!injector::readable_by(agent_path, target.uid, target.gid, target.groups)) {
    say("the agent %s is not readable by uid %u, the user process %d runs as; install pyrewind where that "
        "user can read it (every directory o+x, the file o+r), or set PYREWIND_AGENT_DIR to such a copy",
        agent_path.c_str(), static_cast<unsigned>(target.uid), pid);
    return kExitPermission;
  }
  // One attach per process. Without a usable lock file the agent's own refusal still holds.
  std::unique_ptr<injector::AttachLock> lock;
  if (injector::AttachLock::acquire(pid, &lock, &error) == injector::AttachLock::Outcome::kBusy) {
    say("process %d is already being recorded by another `pyrewind attach`; stop that one first (Ctrl-C, or wait "
        "for its --duration)",
        pid);
    return kExitAlreadyAttached;
  }

  int code = kExitOk;
  std::unique_ptr<ring::OwnedSegment> segment = create_ring(options.trace, static_cast<uint32_t>(pid), &code);
  if (segment == nullptr) return code;
  // The agent maps the ring as the target's user.
  if (target.uid != geteuid() &&
      chown(("/dev/shm" + segment->name()).c_str(), target.uid, target.gid) != 0) {
    say("cannot hand the shared-memory ring to uid %u: %s", static_cast<unsigned>(target.uid), std::strerror(errno));
    return kExitPermission;
  }

  v1::RecordingHeader header = base_header(*segment, options.trace, "attach");
  header.set_python_implementation("cpython");
  header.set_python_version(target.version);
  header.set_python_hexversion(target.hexversion);
  header.set_pid(static_cast<uint64_t>(pid));
  for (const std::string& arg : command_line(pid)) header.add_argv(collector::to_valid_utf8(arg));
  header.set_cwd(collector::to_valid_utf8(injector::proc_link(pid, "cwd")));
  header.set_executable(collector::to_valid_utf8(injector::proc_link(pid, "exe")));
  std::unique_ptr<collector::RecordingWriter> writer =
      collector::RecordingWriter::create(options.output, header, &error, output);
  if (writer == nullptr) {
    say("%s", error.c_str());
    return kExitIoError;
  }
  writer->set_triggers(options.series.trigger_on, true);  // uncaught exceptions always trigger
  collector::Session session(*segment, *writer);
  if (!session.valid()) {
    say("internal error: %s", session.error().c_str());
    return kExitInternal;
  }
  auto abandon = [&](int exit_code) {  // nothing was recorded: leave no empty file behind
    session.finish({});
    writer.reset();
    unlink(options.output.c_str());
    return exit_code;
  };
  if (g_stop_signal != 0) return abandon(128 + g_stop_signal);

  injector::InjectResult injected;
  {
    SignalsHeld held;
    injected = injector::inject_agent(pid, agent_path, segment->name(), kInjectTimeout);
  }
  if (injected.status != injector::InjectStatus::kOk) return abandon(report_injection(injected, pid));

  // --duration counts from the moment the agent traces.
  const auto injected_at = Clock::now();
  const auto duration = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_seconds));
  auto until = Clock::time_point::max();
  bool tracing_reported = false, stopping = false, target_exited = false, agent_never_started = false;
  Clock::time_point detach_deadline{};
  ring::SegmentHeader* ring_header = segment->header();
  LimitWatch limits(limits_options, *writer, *ring_header, options.quiet);
  LiveSessionFile live(pid, "attach", absolute_path(options.output), flight_recorder);
  LiveSampler sampler(pid, *writer, *segment->header(), options.quiet);
  LiveFilters filters(options.trace, *segment->header());
  session.run([&](uint64_t timeout_ns) {
    flight.check(session, *writer, live, options.quiet);
    apply_control_request(live, sampler, filters, options.quiet);
    sampler.poll();
    live.update(session.events_written(), session.stats().dropped_records, writer->bytes_written(),
                session_state_name(*segment->header(), sampler));
    timespec pause{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    nanosleep(&pause, nullptr);
    const auto now = Clock::now();
    const uint32_t state = ring_header->agent_state.load(std::memory_order_acquire);
    if (!tracing_reported && state == ring::kAgentTracing) {
      tracing_reported = true;
      if (options.duration_seconds > 0) until = now + duration;
      if (!options.quiet)
        say("attached to process %d (Python %s) in %.1f ms (its thread held %.1f ms); recording to %s%s", pid,
            target.version.c_str(), std::chrono::duration<double, std::milli>(now - command_start).count(),
            std::chrono::duration<double, std::milli>(injected.elapsed).count(), options.output.c_str(),
            options.duration_seconds > 0 ? "" : " until Ctrl-C");
    }
    if (!injector::process_alive(pid)) {
      target_exited = true;
      return true;
    }
    if (stopping) return state == ring::kAgentDetached || now > detach_deadline;
    const bool never_started = state == ring::kAgentNone && now - injected_at > kAgentStartTimeout;
    if (g_stop_signal != 0 || now >= until || limits.check() || state == ring::kAgentStopped ||
        state == ring::kAgentDetached || never_started) {
      agent_never_started = never_started;
      stopping = true;
      ring_header->stop_request.store(1, std::memory_order_release);
      detach_deadline = now + kDetachTimeout;
      return state == ring::kAgentDetached;
    }
    return false;
  });
  const uint32_t final_state = ring_header->agent_state.load(std::memory_order_acquire);
  collector::SessionEnd end;
  end.target_exited = target_exited;
  end.stop_reason = limits.reason();
  const bool finished = session.finish(end);
  flight.check(session, *writer, live, options.quiet);

  code = kExitOk;
  const std::string message = session.agent_message();
  // Not seen tracing and nothing recorded, without being asked to stop: the agent failed.
  const bool never_traced = !tracing_reported && session.events_written() == 0 && !target_exited && g_stop_signal == 0;
  if (never_traced) {
    say("the agent did not start tracing in process %d%s%s%s", pid,
        agent_never_started ? (" within " + std::to_string(kAgentStartTimeout.count() / 1000) + " s").c_str() : "",
        message.empty() ? "" : ": ", message.c_str());
    code = kExitAttachFailed;
  } else if (!target_exited && final_state != ring::kAgentDetached) {
    say("warning: the agent in process %d did not confirm the detach within %lld s", pid,
        static_cast<long long>(kDetachTimeout.count() / 1000));
  }
  if (!message.empty() && !never_traced) say("tracing stopped early: %s", message.c_str());
  const std::string writer_error = session.writer_error();
  if (!writer_error.empty()) {
    say("error: %s; %s is readable up to its last whole chunk", writer_error.c_str(), options.output.c_str());
    code = kExitIoError;
  } else if (!finished) {
    say("error: could not complete %s", options.output.c_str());
    code = kExitIoError;
  } else if (!options.quiet && flight_recorder) {
    say("%s; flight recorder: saw %llu events, wrote %llu windows", target_exited ? "the process exited" : "detached",
        static_cast<unsigned long long>(session.events_written()),
        static_cast<unsigned long long>(writer->windows_written()));
  } else if (!options.quiet) {
    say("%s; recorded %llu events (%zu threads, %llu dropped) to %s",
        target_exited ? "the process exited" : "detached", static_cast<unsigned long long>(session.events_written()),
        session.thread_count(), static_cast<unsigned long long>(session.stats().dropped_records),
        options.output.c_str());
  }
  return code;
}

}  // namespace pyrewind::cli
