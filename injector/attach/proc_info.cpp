#include "injector/attach/proc_info.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pyrewind::injector {

std::optional<std::vector<Mapping>> read_maps(pid_t pid, int* error) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/maps");
  if (!file) {
    *error = errno ? errno : ESRCH;
    return std::nullopt;
  }
  std::vector<Mapping> maps;
  std::string line;
  while (std::getline(file, line)) {
    Mapping m;
    unsigned long long start = 0, end = 0, offset = 0;
    char perms[8] = {};
    int path_at = 0;
    // start-end perms offset dev inode path
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset, &path_at) < 4)
      continue;
    m.start = start;
    m.end = end;
    m.offset = offset;
    m.perms = perms;
    if (path_at > 0 && static_cast<size_t>(path_at) < line.size()) m.path = line.substr(static_cast<size_t>(path_at));
    maps.push_back(std::move(m));
  }
  return maps;
}

std::optional<ProcessStatus> read_status(pid_t pid, int* error) {
  const std::string dir = "/proc/" + std::to_string(pid);
  ProcessStatus status;
  {
    std::ifstream stat(dir + "/stat");
    std::string text;
    if (!stat || !std::getline(stat, text)) {
      *error = ESRCH;
      return std::nullopt;
    }
    // The command name may contain spaces and parentheses: the state follows the last ')'.
    const size_t close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) {
      *error = EIO;
      return std::nullopt;
    }
    status.state = text[close + 2];
  }
  std::ifstream file(dir + "/status");
  if (!file) {
    *error = ESRCH;
    return std::nullopt;
  }
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "Uid:") {
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

bool in_other_namespace(pid_t pid, const char* kind) {
  struct stat ours {}, theirs {};
  const std::string self = std::string("/proc/self/ns/") + kind;
  const std::string other = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  if (stat(self.c_str(), &ours) != 0 || stat(other.c_str(), &theirs) != 0) return false;
  return ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev;
}

int yama_ptrace_scope() {
  std::ifstream file("/proc/sys/kernel/yama/ptrace_scope");
  int scope = -1;
  if (file) file >> scope;
  return file ? scope : -1;
}

std::string path_in_process(pid_t pid, const std::string& path) {
  return "/proc/" + std::to_string(pid) + "/root" + path;
}

}  // namespace pyrewind::injector
