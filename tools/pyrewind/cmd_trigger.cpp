// `pyrewind trigger SESSION`: a flight recorder (`run`/`attach --ring`) writes its window now.
// The session is found in the status files (live_sessions.h) by the traced process's pid or
// the collector's; the collector gets SIGUSR1, writes the window and publishes the count.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/pyrewind/recording_setup.h"

namespace pyrewind::cli {

int trigger_command(const TriggerOptions& options) {
  auto find = [&](LiveSession* out) {
    for (const LiveSession& s : list_live_sessions())
      if (s.target_pid == options.session || s.collector_pid == options.session) {
        *out = s;
        return true;
      }
    return false;
  };
  LiveSession session;
  if (!find(&session)) {
    say("no live pyrewind session of process %d (see `pyrewind status`)", options.session);
    return kExitNoProcess;
  }
  if (!session.flight) {
    // SIGUSR1 would reach the program (run) or end the collector (attach): refuse.
    say("the session of process %d is not a flight recorder (started without --ring): it writes everything already",
        static_cast<int>(session.target_pid));
    return kExitUsage;
  }
  if (kill(session.collector_pid, SIGUSR1) != 0) {
    say("cannot signal the collector %d: %s", static_cast<int>(session.collector_pid), std::strerror(errno));
    return errno == ESRCH ? kExitNoProcess : kExitPermission;
  }
  const uint64_t before = session.windows;
  // The collector publishes its status about once a second.
  for (double waited = 0; waited < options.wait_seconds; waited += 0.05) {
    const timespec pause{0, 50'000'000};
    nanosleep(&pause, nullptr);
    if (!find(&session)) break;
    if (session.windows > before) {
      std::printf("%s\n", session.last_window.c_str());
      return kExitOk;
    }
  }
  if (options.wait_seconds > 0) say("asked the collector %d for a window; none was reported (nothing new recorded?)",
                                    static_cast<int>(session.collector_pid));
  return kExitOk;
}

}  // namespace pyrewind::cli
