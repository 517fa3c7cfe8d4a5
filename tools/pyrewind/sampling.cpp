#include "tools/pyrewind/sampling.h"

#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <fstream>
#include <iterator>

#include "injector/attach/proc_info.h"
#include "tools/pyrewind/commands.h"

namespace pyrewind::cli {

int locate_failure(const inspect::LocateResult& located) {
  std::fprintf(stderr, "pyrewind: %s\n", located.message.c_str());
  switch (located.status) {
    case inspect::LocateStatus::kNoProcess:
      return kExitNoProcess;
    case inspect::LocateStatus::kPermissionDenied:
      return kExitPermission;
    case inspect::LocateStatus::kNotPython:
      return kExitNotPython;
    case inspect::LocateStatus::kUnsupported:
    case inspect::LocateStatus::kOk:
      break;
  }
  return kExitUnsupportedTarget;
}

namespace {
volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }
}  // namespace

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

bool stop_requested() { return g_stop != 0; }

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::vector<std::string> process_arguments(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    args.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

Ticker::Ticker(uint32_t hz) : period_ns_(1000000000ull / (hz ? hz : 1)), next_ns_(monotonic_ns()) {}

void Ticker::wait() {
  next_ns_ += period_ns_;
  // A tick a little late is taken at once; whole periods missed are skipped.
  const uint64_t now = monotonic_ns();
  if (next_ns_ + period_ns_ <= now) next_ns_ = now - (now - next_ns_) % period_ns_;
  timespec at{static_cast<time_t>(next_ns_ / 1000000000ull), static_cast<long>(next_ns_ % 1000000000ull)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
}

bool process_alive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const char state = injector::thread_state(pid, pid);
  return state != 'Z' && state != 'X';
}

std::vector<pid_t> descendant_pids(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // parent -> child
  if (DIR* proc = opendir("/proc")) {
    while (const dirent* entry = readdir(proc)) {
      char* end = nullptr;
      const long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      std::ifstream stat_file(std::string("/proc/") + entry->d_name + "/stat");
      std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so after the last ')'.
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      char state = 0;
      long parent = 0;
      if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &parent) == 2 && parent > 0)
        children.emplace(static_cast<pid_t>(parent), static_cast<pid_t>(pid));
    }
    closedir(proc);
  }
  std::vector<pid_t> found;
  std::vector<pid_t> pending{root};
  while (!pending.empty()) {
    const pid_t parent = pending.back();
    pending.pop_back();
    auto [begin, end] = children.equal_range(parent);
    for (auto it = begin; it != end; ++it) {
      found.push_back(it->second);
      pending.push_back(it->second);
    }
  }
  return found;
}

uint64_t CodeTable::intern(const inspect::Frame& frame, bool* is_new) {
  *is_new = false;
  if (auto it = by_address_.find(frame.code); it != by_address_.end()) {
    const Code& known = codes_[it->second - 1];
    if (known.first_line == frame.first_line && known.function == frame.function && known.file == frame.file)
      return it->second;
  }
  auto [it, inserted] = by_key_.try_emplace({frame.file, frame.function, frame.first_line}, codes_.size() + 1);
  if (inserted) {
    codes_.push_back({frame.function, frame.file, frame.first_line});
    *is_new = true;
  }
  by_address_[frame.code] = it->second;
  return it->second;
}

uint64_t CodeTable::intern_native(const std::string& module, const std::string& symbol, bool* is_new) {
  auto [it, inserted] = by_key_.try_emplace({module, symbol, -1}, codes_.size() + 1);
  *is_new = inserted;
  if (inserted) codes_.push_back({symbol, module, -1});
  return it->second;
}

}  // namespace pyrewind::cli
