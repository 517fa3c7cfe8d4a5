#include "injector/launch/python_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "injector/launch/process_util.h"

extern char** environ;

namespace pyrewind::injector {

namespace {

// Prints one fact per line; nothing is imported beyond sys (the probe must be quick).
constexpr const char* kProbeCode =
    "import sys;"
    "print(sys.implementation.name);"
    "print(sys.hexversion);"
    "print(sys.version.split()[0]);"
    "print(getattr(sys, 'abiflags', ''))";

constexpr size_t kMaxCapture = 64 * 1024;

bool executable_file(const std::string& path, int* error_number) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *error_number = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error_number = EACCES;  // what execve says about a directory
    return false;
  }
  if (access(path.c_str(), X_OK) != 0) {
    *error_number = errno;
    return false;
  }
  return true;
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool python_name(const std::string& path) { return basename_of(path).rfind("python", 0) == 0; }

std::string first_line(const std::string& text) {
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  const size_t end = text.find('\n', start);
  std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (line.size() > 120) line = line.substr(0, 120) + "...";
  return line;
}

}  // namespace

bool resolve_executable(const std::string& name, const char* path_env, std::string* path, int* error_number) {
  *error_number = ENOENT;
  if (name.empty()) return false;
  if (name.find('/') != std::string::npos) {
    std::string candidate = name[0] == '/' ? name : current_directory() + "/" + name;
    if (!executable_file(candidate, error_number)) return false;
    *path = std::move(candidate);
    return true;
  }
  std::string search = path_env != nullptr ? path_env : default_search_path();
  int last_error = ENOENT;
  size_t start = 0;
  while (true) {
    const size_t colon = search.find(':', start);
    std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";  // an empty entry means the current directory
    if (dir[0] != '/') dir = current_directory() + "/" + dir;
    std::string candidate = dir + "/" + name;
    int error = 0;
    if (executable_file(candidate, &error)) {
      *path = std::move(candidate);
      return true;
    }
    // Like execvp: a file that exists but cannot be run is remembered; missing ones are not.
    if (error == EACCES) last_error = EACCES;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  *error_number = last_error;
  return false;
}

ExecutableKind classify_executable(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ExecutableKind::kUnreadable;
  char head[256];
  ssize_t n;
  do {
    n = read(fd, head, sizeof head);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n < 0) return ExecutableKind::kUnreadable;
  const std::string text(head, static_cast<size_t>(n));
  if (text.rfind("#!", 0) != 0) return ExecutableKind::kBinary;

  // "#!interpreter [argument]"; `env` takes options, then the program's name.
  std::string line = text.substr(2, text.find('\n') == std::string::npos ? std::string::npos : text.find('\n') - 2);
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos < line.size()) {
    const size_t start = line.find_first_not_of(" \t\r", pos);
    if (start == std::string::npos) break;
    const size_t end = line.find_first_of(" \t\r", start);
    words.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    pos = end == std::string::npos ? line.size() : end;
  }
  if (words.empty()) return ExecutableKind::kWrapperScript;
  if (python_name(words[0])) return ExecutableKind::kPythonScript;
  if (basename_of(words[0]) == "env") {
    for (size_t i = 1; i < words.size(); ++i) {
      if (words[i][0] == '-' || words[i].find('=') != std::string::npos) continue;  // options, VAR=value
      return python_name(words[i]) ? ExecutableKind::kPythonScript : ExecutableKind::kWrapperScript;
    }
  }
  return ExecutableKind::kWrapperScript;
}

bool parse_probe_output(const std::string& output, PythonInfo* info) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < output.size()) {
    const size_t end = output.find('\n', start);
    if (end == std::string::npos) return false;  // every line ends with a newline
    std::string line = output.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  if (lines.size() != 4) return false;
  const std::string& hex = lines[1];
  if (hex.empty() || hex.size() > 10) return false;
  uint64_t value = 0;
  for (char c : hex) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value == 0 || value > UINT32_MAX) return false;
  if (lines[0].empty() || lines[2].empty()) return false;
  info->implementation = lines[0];
  info->hexversion = static_cast<uint32_t>(value);
  info->version = lines[2];
  info->abiflags = lines[3];
  return true;
}

ProbeResult probe_python(const std::string& executable, const std::string& argv0,
                         std::chrono::milliseconds timeout) {
  ProbeResult result;
  UniqueFd out_read, out_write, err_read, err_write;
  if (!make_pipe(&out_read, &out_write) || !make_pipe(&err_read, &err_write)) {
    result.detail = std::string("cannot create a pipe: ") + std::strerror(errno);
    return result;
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  std::vector<std::string> args = {argv0, "-I", "-S", "-c", kProbeCode};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, executable.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.detail = std::string("cannot run it: ") + std::strerror(rc);
    return result;
  }
  out_write.reset();
  err_write.reset();

  std::string out, err;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true, timed_out = false;
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_open ? out_read.get() : -1, POLLIN, 0}, {err_open ? err_read.get() : -1, POLLIN, 0}};
    const int ready = poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      std::string& sink = i == 0 ? out : err;
      if (sink.size() < kMaxCapture) sink.append(buffer, static_cast<size_t>(std::min<size_t>(n, kMaxCapture - sink.size())));
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.status = ProbeStatus::kTimeout;
    char text[64];
    std::snprintf(text, sizeof text, "it did not answer within %.1f s", static_cast<double>(timeout.count()) / 1000.0);
    result.detail = text;
    return result;
  }
  if (WIFSIGNALED(status)) {
    result.detail = std::string("it was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                    strsignal(WTERMSIG(status)) + ")";
    return result;
  }
  if (WEXITSTATUS(status) != 0) {
    result.detail = "it exited with status " + std::to_string(WEXITSTATUS(status));
    const std::string line = first_line(err);
    if (!line.empty()) result.detail += ": " + line;
    return result;
  }
  if (!parse_probe_output(out, &result.info)) {
    result.detail = "it printed something unexpected";
    const std::string line = first_line(out.empty() ? err : out);
    if (!line.empty()) result.detail += ": " + line;
    return result;
  }
  result.status = ProbeStatus::kOk;
  return result;
}

}  // namespace pyrewind::injector
