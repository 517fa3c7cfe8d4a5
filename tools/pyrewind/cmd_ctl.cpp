// `pyrewind ctl SESSION trace off|on`, `ctl SESSION sample on|off [--rate HZ]`, `ctl SESSION
// include|exclude GLOB`: pauses or resumes recording in a live session without detaching, has
// the collector sample the program's stacks from outside instead of tracing its lines (and
// back), or adds a file filter. The session is found in the status files (live_sessions.h) by
// the traced process's pid or the collector's; the request is a file beside the session's status file,
// which the collector hands to the agent through the ring header. The agent applies it at its
// next callback (an attached agent's own thread also every 10 ms, so an idle program answers
// at once too) and the session's state in `status` shows it.
#include <time.h>

#include <cstdio>
#include <functional>
#include <string>

#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/pyrewind/recording_setup.h"

namespace pyrewind::cli {
namespace {

bool find_session(int pid, LiveSession* out) {
  for (const LiveSession& s : list_live_sessions())
    if (s.target_pid == pid || s.collector_pid == pid) {
      *out = s;
      return true;
    }
  return false;
}

}  // namespace

int ctl_command(const CtlOptions& options) {
  const bool filter = options.what == "include" || options.what == "exclude";
  if (filter ? options.action.empty() || options.action.find('\n') != std::string::npos
             : options.action != "on" && options.action != "off") {
    say(filter ? "ctl SESSION %s GLOB: not a pattern: '%s'" : "ctl SESSION %s on|off: not on or off: '%s'",
        options.what.c_str(), options.action.c_str());
    return kExitUsage;
  }
  LiveSession session;
  if (!find_session(options.session, &session)) {
    say("no live pyrewind session of process %d (see `pyrewind status`)", options.session);
    return kExitNoProcess;
  }
  // What the collector is asked, what confirms it in the session's status, and what is said then.
  std::string request, done;
  std::function<bool(const LiveSession&)> confirmed;
  if (filter) {
    // The agent's message in the recording says what changed.
    request = options.what + " " + options.action;
    done = "--" + options.what + " " + options.action + " applied";
    confirmed = [applied = session.filter_changes](const LiveSession& s) { return s.filter_changes > applied; };
  } else {
    std::string wanted = "tracing";
    request = "resume", done = "line tracing resumed";
    if (options.what == "trace" && options.action == "off") {
      request = "pause", wanted = "paused", done = "recording paused";
    } else if (options.what == "sample" && options.action == "on") {
      request = "sample " + std::to_string(options.rate_hz), wanted = "sampling", done = "sampling instead of tracing";
    }
    confirmed = [wanted](const LiveSession& s) { return s.state == wanted; };
  }
  std::string error;
  if (!send_control_request(session, request, &error)) {
    say("%s", error.c_str());
    return kExitIoError;
  }
  const int pid = static_cast<int>(session.target_pid);
  for (double waited = 0; waited < options.wait_seconds; waited += 0.05) {
    const timespec interval{0, 50'000'000};
    nanosleep(&interval, nullptr);
    if (!find_session(options.session, &session)) {
      say("the session of process %d ended", pid);
      return kExitNoProcess;
    }
    if (confirmed(session)) {
      std::printf("process %d: %s\n", pid, done.c_str());
      return kExitOk;
    }
    if (!filter && (session.state == "stopped" || session.state == "detached")) {
      say("process %d is no longer traced (%s)", pid, session.state.c_str());
      return kExitTargetNotRunning;
    }
  }
  if (filter)
    std::printf("process %d: --%s %s asked; the agent applies it at the program's next traced event\n", pid,
                options.what.c_str(), options.action.c_str());
  else
    std::printf("process %d: asked (%s); the agent applies it at the program's next traced event\n", pid,
                done.c_str());
  return kExitOk;
}

}  // namespace pyrewind::cli
