// --max-overhead PCT: keeps what tracing costs the program within PCT% of the program's own
// time, and says so whenever it has to give something up.
//
// Every 32nd callback of a thread is timed (TSC reads): the agent's time in it, and the time
// until the thread's next callback, which is the program's own work plus the interpreter's
// delivery of the events (compat::kEventDispatchNs, an estimate from the bare-callback floors
// tools/bench measures). The medians of 256 such pairs are compared with the budget: short
// intervals measured side by side, so a loaded machine (preemption, a hypervisor's steal)
// skews neither. Over the budget, the line events of the code objects that produced most of
// the window's lines are switched off (their calls, returns and exceptions are still
// recorded), most first, until what is left would fit; an AgentStatus warning names them.
// When the budget is still exceeded with no line events left to switch off, tracing stops with
// the reason.
#pragma once

#include "src/agent.h"
#include "src/thread_state.h"

namespace pyrewind::agent::overhead {

constexpr uint32_t kEventsPerSample = 32;

// Times one backend callback when a budget is set (GIL held); nothing otherwise.
class CallbackTimer {
 public:
  CallbackTimer() {
    if (Agent::instance()->limits().max_overhead_percent != 0) start();
  }
  ~CallbackTimer() {
    if (thread_) stop();
  }
  CallbackTimer(const CallbackTimer&) = delete;
  CallbackTimer& operator=(const CallbackTimer&) = delete;

 private:
  void start();
  void stop();
  ThreadState* thread_ = nullptr;
  uint64_t start_ns_ = 0;  // 0: this callback is not timed
};

// Ends the session's budget state (GIL held): the next session starts from nothing.
void reset();

}  // namespace pyrewind::agent::overhead
