#include "injector/launch/agents.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

namespace pyrewind::injector {

namespace {

constexpr std::string_view kAgentPrefix = "pyrewind-agent-cpython-3.";
constexpr std::string_view kAgentSuffix = ".so";

std::string canonical(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  return path;
}

}  // namespace

std::string agent_dir() {
  if (const char* dir = getenv(kAgentDirEnv); dir != nullptr && dir[0] != '\0') return canonical(dir);
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return canonical("../lib/pyrewind");
  std::string path(exe, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/'));
  return canonical(path + "/../lib/pyrewind");
}

std::string agent_file_name(int minor) {
  return std::string(kAgentPrefix) + std::to_string(minor) + std::string(kAgentSuffix);
}

std::vector<int> available_agent_minors(const std::string& dir) {
  std::vector<int> minors;
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return minors;
  while (dirent* entry = readdir(handle)) {
    std::string_view name = entry->d_name;
    if (name.size() <= kAgentPrefix.size() + kAgentSuffix.size() || name.substr(0, kAgentPrefix.size()) != kAgentPrefix ||
        name.substr(name.size() - kAgentSuffix.size()) != kAgentSuffix) {
      continue;
    }
    std::string_view digits = name.substr(kAgentPrefix.size(), name.size() - kAgentPrefix.size() - kAgentSuffix.size());
    if (digits.size() > 2 || (digits.size() > 1 && digits[0] == '0')) continue;
    int minor = 0;
    bool ok = true;
    for (char c : digits) {
      if (c < '0' || c > '9') ok = false;
      minor = minor * 10 + (c - '0');
    }
    if (ok) minors.push_back(minor);
  }
  closedir(handle);
  std::sort(minors.begin(), minors.end());
  minors.erase(std::unique(minors.begin(), minors.end()), minors.end());
  return minors;
}

std::string describe_versions(const std::vector<int>& minors) {
  if (minors.empty()) return "none";
  std::string text;
  for (size_t i = 0; i < minors.size(); ++i) {
    if (i > 0) text += i + 1 == minors.size() ? " and " : ", ";
    text += "3." + std::to_string(minors[i]);
  }
  return text;
}

}  // namespace pyrewind::injector
