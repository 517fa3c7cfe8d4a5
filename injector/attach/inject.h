// Loading the agent into a running process and starting it: ptrace one thread, make it call
// dlopen(agent) and the agent's start function, give the thread back.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace pyrewind::injector {

enum class InjectStatus {
  kOk,
  kNoProcess,          // gone before or during the injection
  kPermissionDenied,   // ptrace refused (another tracer, Yama, credentials)
  kUnsafe,             // never found the thread outside malloc / the dynamic loader in time
  kLoadFailed,         // dlopen failed in the target: `detail` holds dlerror()
  kStartFailed,        // the agent's start function returned an error: `start_result`
  kFailed,             // anything else (`detail`)
};

struct InjectResult {
  InjectStatus status = InjectStatus::kFailed;
  std::string detail;
  int start_result = 0;                  // pyrewind_agent_start's return value
  std::chrono::microseconds elapsed{0};  // from seizing the thread to letting it go
};

// Loads `agent_path` (a path valid in the target's mount namespace) into `pid` and calls its
// `pyrewind_agent_start(argument)`. The target is never left stopped, whatever happens.
InjectResult inject_agent(pid_t pid, const std::string& agent_path, const std::string& argument,
                          std::chrono::milliseconds timeout);

}  // namespace pyrewind::injector
