// Helpers for the attach tests: child processes with piped stdio, the interpreters present on
// this machine, temporary directories.
#pragma once

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "injector/attach/proc_info.h"

namespace pyrewind::injector::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/pyrewind-attach-test-XXXXXX";
    path_ = mkdtemp(pattern);
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process with its stdin, stdout and stderr on pipes; killed when destroyed.
class Child {
 public:
  struct Options {
    std::vector<std::pair<std::string, std::string>> env;  // added to ours
    uid_t uid = static_cast<uid_t>(-1);                   // run as this user (we must be root)
  };

  explicit Child(const std::vector<std::string>& argv) : Child(argv, Options{}) {}
  Child(const std::vector<std::string>& argv, const Options& options) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (const auto& [name, value] : options.env) setenv(name.c_str(), value.c_str(), 1);
      if (options.uid != static_cast<uid_t>(-1)) {
        // Every id changed drops all capabilities, as for a login of that user.
        if (setgroups(0, nullptr) != 0 || setresgid(options.uid, options.uid, options.uid) != 0 ||
            setresuid(options.uid, options.uid, options.uid) != 0)
          _exit(126);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {stdin_, stdout_, stderr_})
      if (fd >= 0) close(fd);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of stdout ("" on timeout or end of file).
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[512];
      const ssize_t n = read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // Everything on stderr up to now, waiting up to `timeout` for `until` to appear in it.
  const std::string& read_stderr(const std::string& until = "", std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (!until.empty() && errors_.find(until) != std::string::npos) return errors_;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stderr_, POLLIN, 0};
      if (poll(&p, 1, std::max<int>(0, static_cast<int>(left.count()))) <= 0) return errors_;
      char chunk[512];
      const ssize_t n = read(stderr_, chunk, sizeof chunk);
      if (n <= 0) return errors_;
      errors_.append(chunk, static_cast<size_t>(n));
    }
  }
  bool send(const std::string& text) { return write(stdin_, text.data(), text.size()) == static_cast<ssize_t>(text.size()); }

  // The exit status (waitpid's), or -1 if it did not end in time (then it is killed).
  int wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      read_stderr();
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      usleep(2000);
    }
    reaped_ = true;
    read_stderr();
    return status;
  }
  // Exit code 0-255, or -1 for a signal or a timeout.
  int exit_code(std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
    const int status = wait(timeout);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
  std::string buffer_, errors_;
};

// True while the process is neither stopped nor traced: how an attach must leave it.
inline bool running_untraced(pid_t pid) {
  int error = 0;
  auto status = read_status(pid, &error);
  return status && status->state != 'T' && status->state != 't' && status->tracer == 0;
}

struct Interpreter {
  std::string path;
  int major = 0, minor = 0;  // from the path: /root/.pyenv/versions/3.12.1/... or python3.11
};

// The interpreters the attach tests know about that exist here: pyenv's (3.8 and 2.7 among
// them, for the unsupported-version errors) and Debian's static /usr/bin/python3.11.
inline std::vector<Interpreter> installed_interpreters() {
  std::vector<Interpreter> found;
  glob_t matches{};
  if (glob("/root/.pyenv/versions/*/bin/python", 0, nullptr, &matches) == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) found.push_back({matches.gl_pathv[i]});
  }
  globfree(&matches);
  if (access("/usr/bin/python3.11", X_OK) == 0) found.push_back({"/usr/bin/python3.11"});
  static const std::regex version(R"((\d+)\.(\d+)(\.\d+)?/bin/python$|python(\d+)\.(\d+)$)");
  std::vector<Interpreter> usable;
  for (Interpreter& interpreter : found) {
    std::smatch m;
    if (!std::regex_search(interpreter.path, m, version) || access(interpreter.path.c_str(), X_OK) != 0) continue;
    interpreter.major = std::stoi(m[1].matched ? m[1].str() : m[4].str());
    interpreter.minor = std::stoi(m[2].matched ? m[2].str() : m[5].str());
    usable.push_back(interpreter);
  }
  return usable;
}

// An interpreter of a version with an agent (3.9+), preferring one every user may run.
inline std::string supported_python() {
  std::string best;
  for (const Interpreter& interpreter : installed_interpreters()) {
    if (interpreter.major != 3 || interpreter.minor < 9) continue;
    if (interpreter.path.rfind("/usr/", 0) == 0) return interpreter.path;
    if (best.empty()) best = interpreter.path;
  }
  return best;
}

// A Python that prints "ready" and sleeps (in time.sleep) for `seconds`.
inline std::vector<std::string> sleeping_python(const std::string& python, int seconds = 30) {
  return {python, "-c",
          "import sys, time\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\ntime.sleep(" + std::to_string(seconds) + ")"};
}

}  // namespace pyrewind::injector::testing
