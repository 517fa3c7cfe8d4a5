// `pyrewind status [--json]`: the user's live recording sessions (tools/pyrewind/live_sessions.h).
#include <cinttypes>
#include <cstdio>
#include <string>

#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/live_sessions.h"
#include "tools/reader/json.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;

std::string human_bytes(uint64_t bytes) {
  char text[32];
  if (bytes >= (1ull << 30))
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  else
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024);
  return text;
}

}  // namespace

int status_command(const StatusOptions& options) {
  const std::vector<LiveSession> sessions = list_live_sessions();
  if (options.json) {
    std::string o = "[";
    for (size_t i = 0; i < sessions.size(); ++i) {
      const LiveSession& s = sessions[i];
      if (i) o += ",";
      o += "{\"pid\":";
      json::append_int(o, s.target_pid);
      o += ",\"collector_pid\":";
      json::append_int(o, s.collector_pid);
      o += ",\"mode\":";
      json::append_string(o, s.mode);
      o += ",\"state\":";
      json::append_string(o, s.state);
      o += ",\"file\":";
      json::append_string(o, s.file);
      o += ",\"events\":";
      json::append_uint(o, s.events);
      o += ",\"events_per_second\":";
      json::append_float(o, s.events_per_second);
      o += ",\"dropped\":";
      json::append_uint(o, s.dropped);
      o += ",\"file_bytes\":";
      json::append_uint(o, s.file_bytes);
      o += ",\"started_unix_ns\":";
      json::append_uint(o, s.started_unix_ns);
      o += ",\"flight_recorder\":";
      o += s.flight ? "true" : "false";
      o += ",\"windows\":";
      json::append_uint(o, s.windows);
      o += "}";
    }
    o += "]\n";
    std::fputs(o.c_str(), stdout);
    return kExitOk;
  }
  if (sessions.empty()) {
    std::printf("no live pyrewind sessions\n");
    return kExitOk;
  }
  std::printf("%8s  %-6s  %-8s  %12s  %10s  %8s  %10s  %s\n", "PID", "MODE", "STATE", "EVENTS", "EVENTS/S",
              "DROPPED", "WRITTEN", "FILE");
  for (const LiveSession& s : sessions) {
    // A flight recorder writes only on triggers: its windows so far follow the file.
    const std::string windows = s.flight ? "  (flight recorder, " + std::to_string(s.windows) +
                                               (s.windows == 1 ? " window)" : " windows)")
                                         : "";
    std::printf("%8d  %-6s  %-8s  %12" PRIu64 "  %10.0f  %8" PRIu64 "  %10s  %s%s\n", static_cast<int>(s.target_pid),
                s.mode.c_str(), s.state.c_str(), s.events, s.events_per_second, s.dropped,
                human_bytes(s.file_bytes).c_str(), s.file.c_str(), windows.c_str());
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
