// Loading the agent into a running process and starting it: ptrace one thread, make it call
// dlopen(agent) and the agent's start function, give the thread back.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace pyrewind::injector {

enum class InjectStatus {
  kOk,
  kNoProcess,          // gone before or during the injection
  kPermissionDenied,   // ptrace refused (another tracer, Yama, credentials)
  kUnsafe,             // never found the thread outside malloc / the dynamic loader in time
  kLoadFailed,         // dlopen failed in the target (`detail`: dlerror()), or no start function
  kStartFailed,        // the start function returned non-zero: `start_result`
  kFailed,             // anything else (`detail`)
};

struct InjectResult {
  InjectStatus status = InjectStatus::kFailed;
  std::string detail;
  int start_result = 0;                  // the start function's return value
  uint64_t handle = 0;                   // dlopen's handle in the target (the same on a re-attach)
  pid_t tid = 0;                         // the thread that made the calls
  std::chrono::microseconds elapsed{0};  // from seizing the thread to letting it go
};

constexpr const char* kAgentStartSymbol = "pyrewind_agent_start";

// Loads `agent_path` (a path valid in the target's mount namespace) into `pid` with
// dlopen(RTLD_NOW) and calls its `int pyrewind_agent_start(const char* argument)`. Stops only
// one thread (the main thread unless it is gone or stopped), at a moment it is not inside
// malloc or the dynamic loader (waiting up to 2 s for one). Each call is bounded by what is
// left of `timeout`. The target is never left stopped or traced, whatever happens.
InjectResult inject_agent(pid_t pid, const std::string& agent_path, const std::string& argument,
                          std::chrono::milliseconds timeout);

}  // namespace pyrewind::injector
