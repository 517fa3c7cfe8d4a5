#include "injector/attach/proc_info.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pyrewind::injector {
namespace {

std::string proc_dir(pid_t pid) { return "/proc/" + std::to_string(pid); }

// The state letter of a /proc/.../stat line. The command name may contain spaces and
// parentheses: the state follows the last ')'.
char state_of(const std::string& stat_path) {
  std::ifstream stat(stat_path);
  std::string text;
  if (!stat || !std::getline(stat, text)) return '?';
  const size_t close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? '?' : text[close + 2];
}

}  // namespace

std::optional<std::vector<Mapping>> read_maps(pid_t pid, int* error) {
  std::ifstream file(proc_dir(pid) + "/maps");
  if (!file) {
    *error = errno ? errno : ESRCH;
    return std::nullopt;
  }
  std::vector<Mapping> maps;
  std::string line;
  while (std::getline(file, line)) {
    Mapping m;
    char perms[8] = {};
    unsigned major = 0, minor = 0;
    int path_at = 0;
    // start-end perms offset major:minor inode path
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n", &m.start, &m.end,
                    perms, &m.offset, &major, &minor, &m.inode, &path_at) < 7)
      continue;
    m.perms = perms;
    m.device = makedev(major, minor);
    if (path_at > 0 && static_cast<size_t>(path_at) < line.size()) m.path = line.substr(static_cast<size_t>(path_at));
    maps.push_back(std::move(m));
  }
  return maps;
}

std::optional<ProcessStatus> read_status(pid_t pid, int* error) {
  ProcessStatus status;
  status.state = state_of(proc_dir(pid) + "/stat");
  std::ifstream file(proc_dir(pid) + "/status");
  if (status.state == '?' || !file) {
    *error = ESRCH;
    return std::nullopt;
  }
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "PPid:") {
      fields >> status.parent;
    } else if (key == "TracerPid:") {
      fields >> status.tracer;
    } else if (key == "Uid:") {
      for (uid_t& uid : status.uids) fields >> uid;
    } else if (key == "Gid:") {
      for (gid_t& gid : status.gids) fields >> gid;
    } else if (key == "Groups:") {
      gid_t gid;
      while (fields >> gid) status.groups.push_back(gid);
    } else if (key == "CapEff:") {
      std::string hex;
      fields >> hex;
      status.cap_effective = std::strtoull(hex.c_str(), nullptr, 16);
    }
  }
  return status;
}

double process_age_seconds(pid_t pid) {
  std::ifstream stat(proc_dir(pid) + "/stat");
  std::string text;
  if (!stat || !std::getline(stat, text)) return -1;
  // Field 22, starttime in clock ticks since boot; fields are counted from the state (3rd).
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index < 22) continue;
    double uptime = 0;
    std::ifstream uptime_file("/proc/uptime");
    if (!(uptime_file >> uptime)) return -1;
    const double started = std::strtod(field.c_str(), nullptr) / static_cast<double>(sysconf(_SC_CLK_TCK));
    return std::max(0.0, uptime - started);
  }
  return -1;
}

bool is_libc_path(const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  return name == "libc.so.6" || (name.rfind("libc-", 0) == 0 && name.find(".so") != std::string::npos);
}

bool libc_code_mapped(const std::vector<Mapping>& maps) {
  return std::any_of(maps.begin(), maps.end(), [](const Mapping& m) {
    return m.perms.find('x') != std::string::npos && !m.path.empty() && is_libc_path(m.path);
  });
}

char thread_state(pid_t pid, pid_t tid) {
  return state_of(proc_dir(pid) + "/task/" + std::to_string(tid) + "/stat");
}

bool process_alive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const char state = thread_state(pid, pid);
  return state != 'Z' && state != 'X';
}

std::vector<pid_t> thread_ids(pid_t pid) {
  std::vector<pid_t> tids;
  DIR* dir = opendir((proc_dir(pid) + "/task").c_str());
  if (dir == nullptr) return tids;
  while (const dirent* entry = readdir(dir)) {
    const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (tid > 0) tids.push_back(tid);
  }
  closedir(dir);
  std::sort(tids.begin(), tids.end(), [pid](pid_t a, pid_t b) { return (a == pid) != (b == pid) ? a == pid : a < b; });
  return tids;
}

bool is_descendant(pid_t pid, pid_t ancestor) {
  int error = 0;
  for (int depth = 0; pid > 1 && depth < 4096; ++depth) {
    auto status = read_status(pid, &error);
    if (!status) return false;
    pid = status->parent;
    if (pid == ancestor) return true;
  }
  return false;
}

bool in_other_namespace(pid_t pid, const char* kind) {
  struct stat ours {}, theirs {};
  const std::string self = std::string("/proc/self/ns/") + kind;
  const std::string other = proc_dir(pid) + "/ns/" + kind;
  if (stat(self.c_str(), &ours) != 0 || stat(other.c_str(), &theirs) != 0) return false;
  return ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev;
}

int yama_ptrace_scope() {
  std::ifstream file("/proc/sys/kernel/yama/ptrace_scope");
  int scope = -1;
  if (file) file >> scope;
  return file ? scope : -1;
}

std::string proc_link(pid_t pid, const char* entry) {
  char target[4096];
  const ssize_t n = readlink((proc_dir(pid) + "/" + entry).c_str(), target, sizeof target);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

std::string path_in_process(pid_t pid, const std::string& path) { return proc_dir(pid) + "/root" + path; }

std::string mapped_file(pid_t pid, const Mapping& mapping) {
  char range[64];
  std::snprintf(range, sizeof range, "%" PRIx64 "-%" PRIx64, mapping.start, mapping.end);
  return proc_dir(pid) + "/map_files/" + range;
}

}  // namespace pyrewind::injector
