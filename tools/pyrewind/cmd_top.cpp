// `pyrewind top PID [--rate HZ] [--interval S] [--once N] [--idle]`: the functions a running
// process spends its time in, like `py-spy top`, sampled from outside as `sample` does. Each
// refresh covers the samples since the previous one: per function the share of samples it was
// running in itself (own) and anywhere on the stack (total), and those as seconds. On a
// terminal the view is redrawn in place; with --once N, or when the output is not a terminal,
// N refreshes (or every refresh) are printed one after another as plain text.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "injector/attach/proc_info.h"
#include "injector/inspect/python_process.h"
#include "injector/inspect/python_stacks.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/sampling.h"

namespace pyrewind::cli {
namespace {

struct Tally {
  uint64_t own = 0, total = 0;
};

class TopView {
 public:
  TopView(const inspect::PythonTarget& target, const TopOptions& options, uint64_t period_ns)
      : target_(target), options_(options), period_ns_(period_ns) {}

  void add(const inspect::Snapshot& snapshot) {
    for (const inspect::ThreadStack& thread : snapshot.threads) {
      if (!thread.error.empty()) {
        ++dropped_;
        continue;
      }
      if (is_idle(thread) && !options_.idle) {
        ++idle_;
        continue;
      }
      ++samples_;
      seen_.clear();
      for (size_t i = 0; i < thread.frames.size(); ++i) {
        bool is_new = false;
        const uint64_t id = codes_.intern(thread.frames[i], &is_new);
        Tally& tally = tallies_[id];
        if (i == 0) ++tally.own;
        if (seen_.insert(id).second) ++tally.total;  // a recursive function counts once per sample
      }
    }
  }
  void add_dropped() { ++dropped_; }

  // The refresh as text; starts the next interval.
  std::string render(double seconds) {
    std::vector<std::pair<uint64_t, Tally>> rows(tallies_.begin(), tallies_.end());
    std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
      if (a.second.own != b.second.own) return a.second.own > b.second.own;
      if (a.second.total != b.second.total) return a.second.total > b.second.total;
      return codes_.code(a.first).function < codes_.code(b.first).function;
    });
    char line[256];
    std::snprintf(line, sizeof line,
                  "pyrewind top: process %d, Python %s, %.1f s: %llu samples (%llu idle left out, %llu dropped)\n",
                  static_cast<int>(target_.pid), target_.version.c_str(), seconds,
                  static_cast<unsigned long long>(samples_), static_cast<unsigned long long>(idle_),
                  static_cast<unsigned long long>(dropped_));
    std::string out = line;
    std::snprintf(line, sizeof line, "%7s %7s %9s %9s  %s\n", "own%", "total%", "own s", "total s", "function (file:line)");
    out += line;
    const double n = samples_ ? static_cast<double>(samples_) : 1;
    const double period_s = static_cast<double>(period_ns_) / 1e9;
    for (size_t i = 0; i < rows.size() && i < options_.rows; ++i) {
      const auto& [id, tally] = rows[i];
      const CodeTable::Code& code = codes_.code(id);
      std::snprintf(line, sizeof line, "%6.1f%% %6.1f%% %9.2f %9.2f  ", 100.0 * static_cast<double>(tally.own) / n,
                    100.0 * static_cast<double>(tally.total) / n, static_cast<double>(tally.own) * period_s,
                    static_cast<double>(tally.total) * period_s);
      out += line + code.function + " (" + code.file + ":" + std::to_string(code.first_line) + ")\n";
    }
    tallies_.clear();
    samples_ = idle_ = dropped_ = 0;
    return out;
  }

 private:
  const inspect::PythonTarget& target_;
  const TopOptions& options_;
  uint64_t period_ns_;
  CodeTable codes_;
  std::unordered_map<uint64_t, Tally> tallies_;
  std::unordered_set<uint64_t> seen_;
  uint64_t samples_ = 0, idle_ = 0, dropped_ = 0;
};

}  // namespace

int top_command(const TopOptions& options) {
  const pid_t pid = options.pid;
  inspect::ProcessMemory memory(pid);
  const inspect::LocateResult located = inspect::locate_python(pid, memory);
  if (located.status != inspect::LocateStatus::kOk) return locate_failure(located);

  catch_stop_signals();
  signal(SIGPIPE, SIG_IGN);

  const bool redraw = options.once == 0 && isatty(STDOUT_FILENO);
  inspect::StackReader reader(located.target, memory);
  Ticker ticker(options.rate_hz);
  TopView view(located.target, options, ticker.period_ns());
  const inspect::StackOptions stack_options;  // no locals
  const uint64_t interval_ns = static_cast<uint64_t>(options.interval_seconds * 1e9);
  uint64_t refresh_start = monotonic_ns();
  uint32_t refreshes = 0;
  bool exited = false;
  while (!stop_requested() && !exited) {
    inspect::Snapshot snapshot;
    std::string error;
    if (reader.read(stack_options, &snapshot, &error))
      view.add(snapshot);
    else if (injector::process_alive(pid))
      view.add_dropped();
    else
      exited = true;
    const uint64_t now = monotonic_ns();
    if (now - refresh_start >= interval_ns || exited) {
      const std::string text = view.render(static_cast<double>(now - refresh_start) / 1e9);
      refresh_start = now;
      if (redraw) std::fputs("\033[H\033[2J", stdout);
      if (std::fputs(text.c_str(), stdout) < 0 || (!redraw && std::fputs("\n", stdout) < 0) || std::fflush(stdout) != 0)
        return kExitIoError;
      if (options.once && ++refreshes >= options.once) return kExitOk;
    }
    if (!exited) ticker.wait();
  }
  if (exited) std::fprintf(stderr, "pyrewind: process %d exited\n", static_cast<int>(pid));
  return kExitOk;
}

}  // namespace pyrewind::cli
