// Live recording sessions, for `pyrewind status`: each collector (`run`, `attach`) keeps a
// small JSON file describing its session in the user's session directory, rewritten about
// once a second and removed at its end. A file whose collector is gone is stale: `status`
// skips and removes it.
//
// Directory: $XDG_RUNTIME_DIR/pyrewind, else /tmp/pyrewind-UID; created mode 0700 and used
// only when it is a real directory owned by the user and private to them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyrewind::cli {

struct LiveSession {
  pid_t collector_pid = 0;
  pid_t target_pid = 0;
  std::string mode;         // "run" or "attach"
  std::string file;         // the recording, absolute
  std::string state;        // "starting", "tracing", "stopped", "detached"
  uint64_t started_unix_ns = 0;
  uint64_t updated_unix_ns = 0;
  uint64_t events = 0;
  double events_per_second = 0;
  uint64_t dropped = 0;     // records the ring dropped
  uint64_t file_bytes = 0;
  bool flight = false;      // a flight recorder (--ring): `trigger` may signal it
  uint64_t windows = 0;     // windows it has written
  std::string last_window;  // the file of the newest
  uint64_t filter_changes = 0;  // `ctl ... include|exclude` the agent has applied
};

// The directory (created if needed), or "" after setting `error`.
std::string live_session_dir(std::string* error);

// The session file of this collector: published by update(), removed by the destructor.
class LiveSessionFile {
 public:
  // This process collects the recording `file` of process `target_pid` in `mode`.
  LiveSessionFile(pid_t target_pid, const char* mode, std::string file, bool flight = false);
  ~LiveSessionFile();
  LiveSessionFile(const LiveSessionFile&) = delete;
  LiveSessionFile& operator=(const LiveSessionFile&) = delete;

  // Rewrites the file with these counters, at most once a second (`force`: now). Failures are
  // ignored: `status` is a convenience, never a reason to disturb a recording.
  void update(uint64_t events, uint64_t dropped, uint64_t file_bytes, const std::string& state, bool force = false);
  // A flight recorder wrote a window (published at the next update).
  void set_windows(uint64_t windows, std::string last_window);
  void set_filter_changes(uint64_t changes) { session_.filter_changes = changes; }
  // A request `pyrewind ctl` left for this collector ("pause", "resume"), taken (the file is
  // removed) at most every 50 ms; "" when there is none.
  std::string take_control_request();

 private:
  LiveSession session_;
  std::string path_;
  uint64_t last_write_ns_ = 0;
  uint64_t last_events_ = 0;
  uint64_t last_control_check_ns_ = 0;
};

// Leaves `request` for the collector of `session` (LiveSessionFile::take_control_request).
bool send_control_request(const LiveSession& session, const std::string& request, std::string* error);

// Every live session of this user, oldest first; stale files are removed.
std::vector<LiveSession> list_live_sessions();

}  // namespace pyrewind::cli
