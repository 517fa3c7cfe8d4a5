// `pyrewind attach PID [options] -o FILE [--duration SECONDS]`
//
// 1. Preflight without ptrace (injector/attach/preflight.h): the process exists and runs, is
//    CPython of a version with an agent build, we may ptrace it, the agent file is readable by
//    its user. Each refusal is one line naming the cause and the fix, with its own exit status.
// 2. Creates the ring (readable by the target's user) and the recording file, so nothing is
//    injected when the output cannot be written.
// 3. Injects: the target's main thread, stopped alone for a moment, calls dlopen(agent) and
//    pyrewind_agent_start(ring), which only starts the agent's own thread.
// 4. Collects until Ctrl-C / SIGTERM, --duration, the target's exit, or the agent stopping;
//    then asks the agent to detach, waits (bounded) for it to confirm, drains, and finishes
//    the file. The target runs on as it was.
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
#include "injector/attach/inject.h"
#include "injector/attach/preflight.h"
#include "injector/launch/agents.h"
#include "proto/recording/format.h"
#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_setup.h"

#ifndef PYREWIND_VERSION
#define PYREWIND_VERSION "unknown"
#endif

namespace pyrewind::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kInjectTimeout{5000};
constexpr milliseconds kAgentStartTimeout{10000};  // injection to the agent tracing
constexpr milliseconds kDetachTimeout{5000};

volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool process_alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

std::string read_link(const std::string& path) {
  char buffer[4096] = {};
  const ssize_t n = readlink(path.c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

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

std::string version_text(const injector::PythonProcess& target) {
  if (target.hexversion == 0) return std::to_string(target.major) + "." + std::to_string(target.minor);
  return std::to_string(target.hexversion >> 24) + "." + std::to_string((target.hexversion >> 16) & 0xff) + "." +
         std::to_string((target.hexversion >> 8) & 0xff);
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
      say("process %d could not load the agent: %s", pid, result.detail.c_str());
      return kExitAttachFailed;
    case injector::InjectStatus::kStartFailed:
      if (result.start_result == 1) {
        say("process %d is already being recorded (by another `pyrewind attach`, or it runs under `pyrewind run`)",
            pid);
        return kExitAlreadyAttached;
      }
      say("the agent in process %d could not start (%s)", pid,
          result.start_result == 2 ? "it cannot open the shared-memory ring" : "it cannot start its thread");
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
  const injector::PythonProcess target = injector::preflight(pid);
  if (target.status != injector::PreflightStatus::kOk) {
    say("%s", target.message.c_str());
    return preflight_exit_code(target.status);
  }
  const std::string agent_dir = injector::agent_dir();
  const std::vector<int> minors = injector::available_agent_minors(agent_dir);
  if (target.major != 3 || std::find(minors.begin(), minors.end(), target.minor) == minors.end()) {
    say("no pyrewind agent for Python %s (process %d runs %s); agents built: %s (in %s). To build more, "
        "reconfigure with -DPYREWIND_PYTHONS=\"/path/to/python3.X;...\" and rebuild",
        version_text(target).c_str(), pid, target.image.c_str(), injector::describe_versions(minors).c_str(),
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

  ring::SegmentOptions segment_options;
  segment_options.segment_bytes = options.trace.buffer_bytes;
  segment_options.chunk_bytes = kChunkBytes;
  segment_options.target_pid = static_cast<uint32_t>(pid);
  std::string error;
  if (!build_agent_config(options.trace, &segment_options.config, &error)) {
    say("%s", error.c_str());
    return kExitUsage;
  }
  ring::OwnedSegment::sweep_stale();
  std::unique_ptr<ring::OwnedSegment> segment = ring::OwnedSegment::create(segment_options, &error);
  if (segment == nullptr) {
    say("cannot create the shared-memory ring: %s (try a smaller --buffer-size)", error.c_str());
    return kExitInternal;
  }
  // The agent maps the ring as the target's user.
  if (target.uid != geteuid() &&
      chown(("/dev/shm" + segment->name()).c_str(), target.uid, target.gid) != 0) {
    say("cannot hand the shared-memory ring to uid %u: %s", static_cast<unsigned>(target.uid), std::strerror(errno));
    return kExitPermission;
  }

  v1::RecordingHeader header;
  header.set_format_version(recording::kFormatVersion);
  header.set_python_implementation("cpython");
  header.set_python_version(version_text(target));
  header.set_python_hexversion(target.hexversion);
  header.set_pid(static_cast<uint64_t>(pid));
  for (const std::string& arg : command_line(pid)) header.add_argv(collector::to_valid_utf8(arg));
  header.set_cwd(collector::to_valid_utf8(read_link("/proc/" + std::to_string(pid) + "/cwd")));
  header.set_start_monotonic_ns(segment->header()->start_monotonic_ns);
  header.set_start_wall_time_ns(wall_time_at(segment->header()->start_monotonic_ns));
  header.set_host(collector::to_valid_utf8(host_name()));
  header.set_executable(collector::to_valid_utf8(read_link("/proc/" + std::to_string(pid) + "/exe")));
  header.set_mode("attach");
  header.set_pyrewind_version(PYREWIND_VERSION);
  header.set_locals_omitted(!options.trace.capture_locals);
  std::unique_ptr<collector::RecordingWriter> writer = collector::RecordingWriter::create(options.output, header, &error);
  if (writer == nullptr) {
    say("%s", error.c_str());
    return kExitIoError;
  }
  collector::Session session(*segment, *writer);
  if (!session.valid()) {
    say("internal error: %s", session.error().c_str());
    return kExitInternal;
  }

  catch_stop_signals();
  const injector::InjectResult injected = injector::inject_agent(pid, agent_path, segment->name(), kInjectTimeout);
  if (injected.status != injector::InjectStatus::kOk) {
    const int code = report_injection(injected, pid);
    session.finish({});
    writer.reset();
    unlink(options.output.c_str());  // nothing was recorded: leave no empty file behind
    return code;
  }

  const auto injected_at = Clock::now();
  const auto until = options.duration_seconds > 0
                         ? injected_at + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options.duration_seconds))
                         : Clock::time_point::max();
  bool tracing_reported = false, stopping = false, target_exited = false, agent_never_started = false;
  Clock::time_point detach_deadline{};
  ring::SegmentHeader* ring_header = segment->header();
  session.run([&](uint64_t timeout_ns) {
    timespec pause{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    nanosleep(&pause, nullptr);
    const auto now = Clock::now();
    const uint32_t state = ring_header->agent_state.load(std::memory_order_acquire);
    if (!tracing_reported && state == ring::kAgentTracing) {
      tracing_reported = true;
      if (!options.quiet)
        say("attached to process %d (Python %s) in %.1f ms; recording to %s%s", pid, version_text(target).c_str(),
            std::chrono::duration<double, std::milli>(now - command_start).count(), options.output.c_str(),
            options.duration_seconds > 0 ? "" : " until Ctrl-C");
    }
    if (!process_alive(pid)) {
      target_exited = true;
      return true;
    }
    if (stopping) return state == ring::kAgentDetached || now > detach_deadline;
    const bool never_started = state == ring::kAgentNone && now - injected_at > kAgentStartTimeout;
    if (g_stop_signal != 0 || now >= until || state == ring::kAgentStopped || state == ring::kAgentDetached ||
        never_started) {
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
  const bool finished = session.finish(end);

  int code = kExitOk;
  if (agent_never_started) {
    const std::string message = session.agent_message();
    say("the agent did not start tracing in process %d within %lld s%s%s", pid,
        static_cast<long long>(kAgentStartTimeout.count() / 1000), message.empty() ? "" : ": ", message.c_str());
    code = kExitAttachFailed;
  } else if (!target_exited && final_state != ring::kAgentDetached) {
    say("warning: the agent in process %d did not confirm the detach within %lld s", pid,
        static_cast<long long>(kDetachTimeout.count() / 1000));
  }
  const std::string message = session.agent_message();
  if (!message.empty() && !agent_never_started) say("tracing stopped early: %s", message.c_str());
  const std::string writer_error = session.writer_error();
  if (!writer_error.empty()) {
    say("error: %s; %s is readable up to its last whole chunk", writer_error.c_str(), options.output.c_str());
    code = kExitIoError;
  } else if (!finished) {
    say("error: could not complete %s", options.output.c_str());
    code = kExitIoError;
  } else if (!options.quiet) {
    say("%s; recorded %llu events (%zu threads, %llu dropped) to %s",
        target_exited ? "the process exited" : "detached", static_cast<unsigned long long>(session.events_written()),
        session.thread_count(), static_cast<unsigned long long>(session.stats().dropped_records),
        options.output.c_str());
  }
  return code;
}

}  // namespace pyrewind::cli
