// `pyrewind run [options] -o FILE -- python3 [interpreter options] script.py|-m mod|-c code [args]`
//
// 1. Finds the interpreter (like execvp) and probes it (`-I -S -c`): CPython? which version?
//    Is there an agent for it? All of this before the program runs, with one-line errors.
// 2. Creates the shared-memory ring, with the trace options in its AgentConfig.
// 3. Forks the child (held at a gate), creates the recording file (so an unwritable output
//    fails before the program starts), then lets the child exec the program with the preload
//    shim, which loads the agent.
// 4. Collects (collector/src/session.h) until the child exits, drains what is left, finishes
//    the file, and exits with the program's status: its exit code, or death by the same
//    signal.
//
// Disk full (or any write error) while recording: the program is not disturbed. The ring
// keeps being drained and the data discarded, so the agent never has to drop on the
// program's side nor stall; the file stays readable up to its last whole chunk (no summary);
// the error is printed at the end; and pyrewind still exits with the program's status, since
// scripts that wrap `pyrewind run` depend on the program's result more than on the recording.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "collector/src/packet_validator.h"
#include "collector/src/recording_writer.h"
#include "collector/src/session.h"
#include "injector/launch/agents.h"
#include "injector/launch/launcher.h"
#include "injector/launch/process_util.h"
#include "injector/launch/python_probe.h"
#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/pyrewind/recording_setup.h"

namespace pyrewind::cli {

namespace {

constexpr std::chrono::milliseconds kProbeTimeout{20000};

struct Interpreter {
  std::string path;  // resolved, absolute
  injector::PythonInfo info;
  std::string agent_dir;
  std::string preload;
};

// Step 1: every check that can refuse before anything runs for real. A command that is not
// found is reported with kExitNotPython too (commands.h has no separate code for it).
int find_interpreter(const std::string& name, Interpreter* out) {
  int error_number = 0;
  if (!injector::resolve_executable(name, std::getenv("PATH"), &out->path, &error_number)) {
    if (error_number == ENOENT) {
      say("%s: command not found", name.c_str());
    } else {
      say("%s: %s", name.c_str(), std::strerror(error_number));
    }
    return kExitNotPython;
  }
  if (injector::classify_executable(out->path) == injector::ExecutableKind::kPythonScript) {
    say("%s is a Python script, not an interpreter; run it as: pyrewind run -- python3 %s", name.c_str(),
        name.c_str());
    return kExitNotPython;
  }
  const injector::ProbeResult probe = injector::probe_python(out->path, name, kProbeTimeout);
  if (probe.status == injector::ProbeStatus::kTimeout) {
    say("%s did not answer the Python version check: %s", name.c_str(), probe.detail.c_str());
    return kExitNotPython;
  }
  if (probe.status != injector::ProbeStatus::kOk) {
    say("%s is not a Python 3 interpreter pyrewind can use (%s -I -S -c ...: %s)", name.c_str(),
        out->path.c_str(), probe.detail.c_str());
    return kExitNotPython;
  }
  out->info = probe.info;
  const injector::PythonInfo& info = out->info;
  if (info.implementation != "cpython") {
    say("%s is %s %s; pyrewind records CPython only", name.c_str(), info.implementation.c_str(),
        info.version.c_str());
    return kExitNotPython;
  }

  out->agent_dir = injector::agent_dir();
  const std::vector<int> minors = injector::available_agent_minors(out->agent_dir);
  if (info.free_threaded()) {
    say("%s is a free-threaded build of CPython %s, which pyrewind does not support", name.c_str(),
        info.version.c_str());
    return kExitNoAgent;
  }
  if (info.major() != 3 || std::find(minors.begin(), minors.end(), info.minor()) == minors.end()) {
    say("no pyrewind agent for Python %d.%d (%s is CPython %s); agents built: %s (in %s). To build more, "
        "reconfigure with -DPYREWIND_PYTHONS=\"/path/to/python3.X;...\" and rebuild",
        info.major(), info.minor(), name.c_str(), info.version.c_str(), injector::describe_versions(minors).c_str(),
        out->agent_dir.c_str());
    return kExitNoAgent;
  }
  out->preload = out->agent_dir + "/" + injector::kPreloadFileName;
  if (access(out->preload.c_str(), R_OK) != 0) {
    say("the preload library %s is missing (%s); rebuild pyrewind", out->preload.c_str(), std::strerror(errno));
    return kExitNoAgent;
  }
  return kExitOk;
}

void report_end(const RunOptions& options, const collector::Session& session, bool finished, uint64_t windows) {
  const collector::TranslatorStats& stats = session.stats();
  const uint32_t state = session.agent_state();
  if (!session.agent_attached()) {
    say("the program was not traced: no pyrewind agent attached to it (did it run a different Python, "
        "or exit before Python started?)");
  } else if (state == ring::kAgentStopped) {
    const std::string message = session.agent_message();
    say("tracing stopped early: %s", message.empty() ? "(no reason given)" : message.c_str());
  }
  if (!options.quiet && (stats.malformed_packets > 0 || stats.corrupt_chunks > 0)) {
    say("warning: skipped %llu malformed packets and %llu corrupt ring chunks",
        static_cast<unsigned long long>(stats.malformed_packets),
        static_cast<unsigned long long>(stats.corrupt_chunks));
  }
  const std::string writer_error = session.writer_error();
  if (!writer_error.empty()) {
    say("error: %s", writer_error.c_str());
    say("%s is readable up to its last whole chunk; %llu later packets were discarded; the program itself "
        "ran unaffected",
        options.output.c_str(), static_cast<unsigned long long>(stats.discarded_packets));
  } else if (!finished) {
    say("error: could not complete %s", options.output.c_str());
  }
  if (!options.quiet && writer_error.empty() && finished && !options.series.ring.empty()) {
    say("flight recorder: saw %llu events, wrote %llu windows%s",
        static_cast<unsigned long long>(session.events_written()), static_cast<unsigned long long>(windows),
        windows == 0 ? " (no trigger came: nothing was written)" : "");
  } else if (!options.quiet && writer_error.empty() && finished) {
    say("recorded %llu events (%zu threads, %llu dropped) to %s",
        static_cast<unsigned long long>(session.events_written()), session.thread_count(),
        static_cast<unsigned long long>(stats.dropped_records), options.output.c_str());
  }
}

// Everything but the final exit; `*kill_signal` is set when pyrewind must die by a signal.
int run_traced(const RunOptions& options, int* kill_signal) {
  if (options.command.empty()) {
    say("no program given: pyrewind run -o FILE -- python3 script.py [args]");
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
  Interpreter interpreter;
  if (int rc = find_interpreter(options.command[0], &interpreter); rc != kExitOk) return rc;

  int code = kExitOk;
  std::unique_ptr<ring::OwnedSegment> segment = create_ring(options.trace, 0, &code);
  if (segment == nullptr) return code;

  injector::LaunchSpec spec;
  spec.executable = interpreter.path;
  spec.argv = options.command;
  spec.preload_library = interpreter.preload;
  spec.agent_dir = interpreter.agent_dir;
  spec.segment_name = segment->name();
  std::unique_ptr<injector::TracedChild> child = injector::TracedChild::prepare(spec, &error);
  if (child == nullptr) {
    say("cannot start %s: %s", options.command[0].c_str(), error.c_str());
    return kExitInternal;
  }

  v1::RecordingHeader header = base_header(*segment, options.trace, "trace");
  header.set_python_implementation(interpreter.info.implementation);
  header.set_python_version(collector::to_valid_utf8(interpreter.info.version));
  header.set_python_hexversion(interpreter.info.hexversion);
  header.set_pid(static_cast<uint64_t>(child->pid()));
  for (const std::string& arg : options.command) header.add_argv(collector::to_valid_utf8(arg));
  header.set_cwd(collector::to_valid_utf8(injector::current_directory()));
  header.set_executable(collector::to_valid_utf8(interpreter.path));

  std::unique_ptr<collector::RecordingWriter> writer =
      collector::RecordingWriter::create(options.output, header, &error, output);
  if (writer == nullptr) {
    child->cancel();
    say("%s", error.c_str());
    return kExitIoError;
  }
  // Uncaught exceptions always trigger a flight recorder's window.
  writer->set_triggers(options.series.trigger_on, true);
  // Installed before the child starts: SIGUSR1 then triggers the flight recorder instead of
  // being passed on to the program.
  FlightTrigger flight(flight_recorder);
  collector::Session session(*segment, *writer);
  if (!session.valid()) {
    child->cancel();
    say("internal error: %s", session.error().c_str());
    return kExitInternal;
  }

  int exec_errno = 0;
  if (!child->start(&error, &exec_errno)) {
    say("cannot execute %s: %s", interpreter.path.c_str(), error.c_str());
    writer.reset();
    unlink(options.output.c_str());  // nothing ran: leave no empty recording behind
    return kExitNotPython;
  }

  LimitWatch limits(limits_options, *writer, *segment->header(), options.quiet);
  LiveSessionFile live(child->pid(), "run", absolute_path(options.output), flight_recorder);
  LiveSampler sampler(child->pid(), *writer, *segment->header(), options.quiet);
  LiveFilters filters(options.trace, *segment->header());
  session.run([&](uint64_t timeout_ns) {
    limits.check();
    flight.check(session, *writer, live, options.quiet);
    apply_control_request(live, sampler, filters, options.quiet);
    sampler.poll();
    live.update(session.events_written(), session.stats().dropped_records, writer->bytes_written(),
                session_state_name(*segment->header(), sampler));
    return child->wait_exit(timeout_ns);
  });
  const int wait_status = child->reap();
  collector::SessionEnd end;
  end.stop_reason = limits.reason();
  end.exit_status = injector::exit_status_of(wait_status);
  end.target_exited = true;
  const bool finished = session.finish(end);
  flight.check(session, *writer, live, options.quiet);  // a window the last events triggered
  report_end(options, session, finished, writer->windows_written());

  if (WIFSIGNALED(wait_status)) {
    *kill_signal = WTERMSIG(wait_status);
    return 128 + WTERMSIG(wait_status);
  }
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : kExitInternal;
}

}  // namespace

int run_command(const RunOptions& options) {
  int kill_signal = 0;
  // Every resource (child, segment, file) is released inside run_traced, before a signal
  // death that would skip destructors.
  const int code = run_traced(options, &kill_signal);
  if (kill_signal > 0) return die_by_signal(kill_signal);
  return code;
}

}  // namespace pyrewind::cli
