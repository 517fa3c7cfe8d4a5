#include "src/overhead.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "src/agent.h"
#include "src/backend.h"
#include "src/code_registry.h"

namespace pyrewind::agent::overhead {
namespace {

// A timed interval longer than this was interrupted (preemption, a GIL wait): not a sample.
constexpr uint64_t kMaxIntervalNs = 1'000'000;
constexpr int kFunctionsNamed = 5;
// Windows over the budget with nothing left to switch off before tracing stops: one window
// can still hold the cost of lines switched off in the previous one.
constexpr int kFutileWindowsBeforeStop = 2;

int g_futile_windows = 0;

std::string function_name(const CodeMeta& meta) {
  const char* name = PyUnicode_Check(meta.code->co_name) ? PyUnicode_AsUTF8(meta.code->co_name) : nullptr;
  if (!name) {
    PyErr_Clear();
    return "?";
  }
  return std::string(name) + " (line " + std::to_string(meta.first_line) + ")";
}

// Switches off the line events of the busiest code objects, most first, so that about
// budget/percent of the window's line events would remain.
void thin(double percent, double budget) {
  Agent* agent = Agent::instance();
  std::vector<CodeMeta*> busy;
  uint64_t lines = 0;
  for_each_code_meta([&](CodeMeta& meta) {
    if (meta.window_lines && !meta.lines_thinned && meta.traced) busy.push_back(&meta);
    lines += meta.window_lines;
  });
  char figures[96];
  std::snprintf(figures, sizeof figures, "over the --max-overhead budget (about %.0f%% > %.0f%%)", percent, budget);
  if (busy.empty()) {
    if (++g_futile_windows < kFutileWindowsBeforeStop) return;
    g_futile_windows = 0;
    if (agent->sampling_refused())
      agent->stop((std::string(figures) + " with every line event already off, and no sampling: tracing stopped").c_str());
    else if (agent->request_sampling())
      agent->warn((std::string(figures) + " with every line event already off: sampling instead").c_str());
    return;
  }
  g_futile_windows = 0;
  std::sort(busy.begin(), busy.end(), [](const CodeMeta* a, const CodeMeta* b) { return a->window_lines > b->window_lines; });
  const double remove = static_cast<double>(lines) * (1.0 - budget / percent);
  double removed = 0;
  std::string named;
  size_t count = 0;
  for (CodeMeta* meta : busy) {
    if (count > 0 && removed >= remove) break;
    thin_lines(*meta);
    removed += meta->window_lines;
    if (count < kFunctionsNamed) named += (count ? ", " : "") + function_name(*meta);
    ++count;
  }
  if (count > kFunctionsNamed) named += ", ...";
  agent->warn((std::string(figures) + ": line events switched off for " + std::to_string(count) +
               (count == 1 ? " function: " : " functions: ") + named + "; their calls and returns are still recorded")
                  .c_str());
}

uint32_t median(uint32_t* values, uint32_t count) {
  std::nth_element(values, values + count / 2, values + count);
  return values[count / 2];
}

// Compares a full window of samples with the budget.
void check(OverheadWindow& w) {
  // Per event: the agent's time plus the interpreter's delivery, against what the program did
  // between two events (a gap that also holds the delivery; never more than half of it).
  const double agent = median(w.agent_ns, w.samples);
  const double between = median(w.program_ns, w.samples);
  w.samples = 0;
  const double cost = agent + compat::kEventDispatchNs;
  const double own = std::max({between - compat::kEventDispatchNs, between / 2, 1.0});
  const double percent = 100.0 * cost / own;
  const double budget = Agent::instance()->limits().max_overhead_percent;
  if (percent <= budget) {
    g_futile_windows = 0;
  } else {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);  // nothing of ours may reach the program
    thin(percent, budget);
    PyErr_Restore(type, value, traceback);
  }
  for_each_code_meta([](CodeMeta& meta) { meta.window_lines = 0; });
}

}  // namespace

void CallbackTimer::start() {
  thread_ = ThreadState::existing();  // a thread that never recorded has nothing to measure
  if (!thread_) return;
  OverheadWindow& w = thread_->overhead;
  const bool sample = --w.until_sample == 0;
  if (!sample && !w.pending_end) return;
  const uint64_t now = Agent::instance()->now_ns(thread_->clock_calls);
  if (w.pending_end) {
    if (now > w.pending_end && now - w.pending_end < kMaxIntervalNs && w.samples < OverheadWindow::kSamples) {
      w.agent_ns[w.samples] = w.pending_agent;
      w.program_ns[w.samples] = static_cast<uint32_t>(now - w.pending_end);
      ++w.samples;
    }
    w.pending_end = 0;
  }
  if (sample) {
    w.until_sample = kEventsPerSample;
    start_ns_ = std::max<uint64_t>(now, 1);
  }
}

void CallbackTimer::stop() {
  OverheadWindow& w = thread_->overhead;
  if (start_ns_) {
    const uint64_t end = Agent::instance()->now_ns(thread_->clock_calls);
    if (end > start_ns_ && end - start_ns_ < kMaxIntervalNs) {
      w.pending_end = end;
      w.pending_agent = static_cast<uint32_t>(end - start_ns_);
    }
  }
  if (w.samples == OverheadWindow::kSamples) {
    if (Agent::instance()->tracing())
      check(w);
    else
      w.samples = 0;
  }
}

void reset() { g_futile_windows = 0; }

}  // namespace pyrewind::agent::overhead
