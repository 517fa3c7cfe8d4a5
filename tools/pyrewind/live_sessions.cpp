#include "tools/pyrewind/live_sessions.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tools/reader/json.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;

uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string to_json(const LiveSession& s) {
  std::string o = "{\"collector_pid\":";
  json::append_int(o, s.collector_pid);
  o += ",\"target_pid\":";
  json::append_int(o, s.target_pid);
  o += ",\"mode\":";
  json::append_string(o, s.mode);
  o += ",\"file\":";
  json::append_string(o, s.file);
  o += ",\"state\":";
  json::append_string(o, s.state);
  o += ",\"started_unix_ns\":";
  json::append_uint(o, s.started_unix_ns);
  o += ",\"updated_unix_ns\":";
  json::append_uint(o, s.updated_unix_ns);
  o += ",\"events\":";
  json::append_uint(o, s.events);
  o += ",\"events_per_second\":";
  json::append_float(o, s.events_per_second);
  o += ",\"dropped\":";
  json::append_uint(o, s.dropped);
  o += ",\"file_bytes\":";
  json::append_uint(o, s.file_bytes);
  o += ",\"flight\":";
  o += s.flight ? "true" : "false";
  o += ",\"windows\":";
  json::append_uint(o, s.windows);
  o += ",\"last_window\":";
  json::append_string(o, s.last_window);
  o += ",\"filter_changes\":";
  json::append_uint(o, s.filter_changes);

  o += "}\n";
  return o;
}

// The value after "key": in a file this program wrote (one flat object, no nesting).
std::string raw_field(const std::string& text, const char* key) {
  const std::string quoted = std::string("\"") + key + "\":";
  size_t at = text.find(quoted);
  if (at == std::string::npos) return {};
  at += quoted.size();
  if (at < text.size() && text[at] == '"') {
    std::string value;
    for (size_t i = at + 1; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) ++i;
      value.push_back(text[i]);
    }
    return value;
  }
  const size_t end = text.find_first_of(",}", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

bool parse(const std::string& text, LiveSession* s) {
  s->collector_pid = static_cast<pid_t>(std::strtol(raw_field(text, "collector_pid").c_str(), nullptr, 10));
  s->target_pid = static_cast<pid_t>(std::strtol(raw_field(text, "target_pid").c_str(), nullptr, 10));
  s->mode = raw_field(text, "mode");
  s->file = raw_field(text, "file");
  s->state = raw_field(text, "state");
  s->started_unix_ns = std::strtoull(raw_field(text, "started_unix_ns").c_str(), nullptr, 10);
  s->updated_unix_ns = std::strtoull(raw_field(text, "updated_unix_ns").c_str(), nullptr, 10);
  s->events = std::strtoull(raw_field(text, "events").c_str(), nullptr, 10);
  s->events_per_second = std::strtod(raw_field(text, "events_per_second").c_str(), nullptr);
  s->dropped = std::strtoull(raw_field(text, "dropped").c_str(), nullptr, 10);
  s->file_bytes = std::strtoull(raw_field(text, "file_bytes").c_str(), nullptr, 10);
  s->flight = raw_field(text, "flight") == "true";
  s->windows = std::strtoull(raw_field(text, "windows").c_str(), nullptr, 10);
  s->last_window = raw_field(text, "last_window");
  s->filter_changes = std::strtoull(raw_field(text, "filter_changes").c_str(), nullptr, 10);
  return s->collector_pid > 0 && !s->mode.empty();
}

// The request file `ctl` leaves beside a session's status file ("1234.json" -> "1234.ctl").
std::string control_path(const std::string& status_path) {
  return status_path.substr(0, status_path.size() - 5) + ".ctl";
}

bool alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH); }

}  // namespace

std::string live_session_dir(std::string* error) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  const std::string dir = runtime && runtime[0] == '/' ? std::string(runtime) + "/pyrewind"
                                                       : "/tmp/pyrewind-" + std::to_string(getuid());
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = "cannot create " + dir + ": " + std::strerror(errno);
    return {};
  }
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0) {
    *error = dir + " is not a private directory of this user";
    return {};
  }
  return dir;
}

LiveSessionFile::LiveSessionFile(pid_t target_pid, const char* mode, std::string file, bool flight) {
  session_.flight = flight;
  session_.collector_pid = getpid();
  session_.target_pid = target_pid;
  session_.mode = mode;
  session_.file = std::move(file);
  std::string error;
  const std::string dir = live_session_dir(&error);
  if (!dir.empty()) path_ = dir + "/" + std::to_string(session_.collector_pid) + ".json";
  session_.started_unix_ns = clock_ns(CLOCK_REALTIME);
  update(0, 0, 0, "starting", true);
}

LiveSessionFile::~LiveSessionFile() {
  if (path_.empty()) return;
  unlink(path_.c_str());
  unlink(control_path(path_).c_str());
}

std::string LiveSessionFile::take_control_request() {
  const uint64_t now = clock_ns(CLOCK_MONOTONIC);
  if (path_.empty() || now - last_control_check_ns_ < 50'000'000) return "";
  last_control_check_ns_ = now;
  const std::string path = control_path(path_);
  std::ifstream in(path);
  if (!in) return "";
  std::string request;
  std::getline(in, request);
  unlink(path.c_str());
  return request;
}

bool send_control_request(const LiveSession& session, const std::string& request, std::string* error) {
  const std::string dir = live_session_dir(error);
  if (dir.empty()) return false;
  const std::string path = dir + "/" + std::to_string(session.collector_pid) + ".ctl";
  const std::string temporary = path + ".tmp" + std::to_string(getpid());
  {
    std::ofstream out(temporary);
    out << request << "\n";
    if (!out.flush()) {
      *error = "cannot write " + temporary;
      return false;
    }
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {  // the collector never sees half a request
    *error = "cannot write " + path + ": " + std::strerror(errno);
    unlink(temporary.c_str());
    return false;
  }
  return true;
}

void LiveSessionFile::update(uint64_t events, uint64_t dropped, uint64_t file_bytes, const std::string& state,
                             bool force) {
  if (path_.empty()) return;
  const uint64_t now = clock_ns(CLOCK_MONOTONIC);
  if (!force && now - last_write_ns_ < 1000000000ull) return;
  if (last_write_ns_ != 0 && now > last_write_ns_ && events >= last_events_)
    session_.events_per_second = static_cast<double>(events - last_events_) * 1e9 / static_cast<double>(now - last_write_ns_);
  last_write_ns_ = now;
  last_events_ = events;
  session_.events = events;
  session_.dropped = dropped;
  session_.file_bytes = file_bytes;
  session_.state = state;
  session_.updated_unix_ns = clock_ns(CLOCK_REALTIME);
  // Written aside and renamed: a reader never sees half a file.
  const std::string temporary = path_ + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  const std::string text = to_json(session_);
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written || rename(temporary.c_str(), path_.c_str()) != 0) unlink(temporary.c_str());
}

void LiveSessionFile::set_windows(uint64_t windows, std::string last_window) {
  session_.windows = windows;
  session_.last_window = std::move(last_window);
}

std::vector<LiveSession> list_live_sessions() {
  std::vector<LiveSession> sessions;
  std::string error;
  const std::string dir = live_session_dir(&error);
  if (dir.empty()) return sessions;
  DIR* listing = opendir(dir.c_str());
  if (!listing) return sessions;
  while (dirent* entry = readdir(listing)) {
    const std::string name = entry->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    const std::string path = dir + "/" + name;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    LiveSession session;
    if (!parse(text.str(), &session)) continue;
    if (!alive(session.collector_pid)) {
      unlink(path.c_str());  // its collector died without cleaning up
      unlink(control_path(path).c_str());
      continue;
    }
    sessions.push_back(std::move(session));
  }
  closedir(listing);
  std::sort(sessions.begin(), sessions.end(),
            [](const LiveSession& a, const LiveSession& b) { return a.started_unix_ns < b.started_unix_ns; });
  return sessions;
}

}  // namespace pyrewind::cli
