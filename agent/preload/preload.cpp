// Preload shim for `pyrewind run`.
//
// LD_PRELOADed into the program pyrewind starts (and into anything that program execs until a
// Python interpreter is reached, e.g. pyenv's shell shims). It references no Python symbol, so
// it loads anywhere. In a process that is CPython it:
//   1. restores the user's environment (LD_PRELOAD, PYREWIND_*) before Python copies environ,
//      so the program and its children see exactly what they would have seen without pyrewind;
//   2. dlopen()s the agent built for this interpreter's minor version and hands it the
//      segment name; the agent arranges to start tracing right before the main module runs.
// In any other process it does nothing and leaves the environment for the next exec.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr const char* kSegmentVar = "PYREWIND_SEGMENT";
constexpr const char* kAgentDirVar = "PYREWIND_AGENT_DIR";
constexpr const char* kSavedPreloadVar = "PYREWIND_SAVED_LD_PRELOAD";

using VersionFn = const char* (*)();
using PreloadFn = int (*)(const char* segment_name);

void restore_environment() {
  const char* saved = std::getenv(kSavedPreloadVar);
  if (saved)
    setenv("LD_PRELOAD", saved, 1);
  else
    unsetenv("LD_PRELOAD");
  unsetenv(kSavedPreloadVar);
  unsetenv(kSegmentVar);
  unsetenv(kAgentDirVar);
}

// "3.12.1 (main, ...)" -> 12; -1 if not a 3.x version string.
int minor_version(const char* version) {
  if (!version || version[0] != '3' || version[1] != '.') return -1;
  char* end = nullptr;
  long minor = std::strtol(version + 2, &end, 10);
  if (end == version + 2 || minor < 0 || minor > 99) return -1;
  return static_cast<int>(minor);
}

__attribute__((constructor)) void pyrewind_preload_init() {
  const char* segment = std::getenv(kSegmentVar);
  const char* agent_dir = std::getenv(kAgentDirVar);
  if (!segment || !agent_dir) return;
  // Py_GetVersion is exported by every CPython (static binary or libpython) and is safe to call
  // before initialisation. Its absence means this process is not Python (yet): stay inert.
  auto py_get_version = reinterpret_cast<VersionFn>(dlsym(RTLD_DEFAULT, "Py_GetVersion"));
  if (!py_get_version) return;

  const std::string segment_name = segment;
  const std::string dir = agent_dir;
  restore_environment();

  int minor = minor_version(py_get_version());
  if (minor < 0) {
    std::fprintf(stderr, "pyrewind: unrecognised Python version \"%.40s\"; not tracing\n", py_get_version());
    return;
  }
  std::string agent = dir + "/pyrewind-agent-cpython-3." + std::to_string(minor) + ".so";
  // RTLD_LOCAL: the agent's own symbols stay private; never dlclose it (thread-local
  // destructors and Python callbacks point into it for the life of the process).
  void* handle = dlopen(agent.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    std::fprintf(stderr, "pyrewind: cannot load the agent for Python 3.%d: %s; not tracing\n", minor, dlerror());
    return;
  }
  auto preload = reinterpret_cast<PreloadFn>(dlsym(handle, "pyrewind_agent_preload"));
  if (!preload) {
    std::fprintf(stderr, "pyrewind: %s has no entry point; not tracing\n", agent.c_str());
    return;
  }
  preload(segment_name.c_str());
}

}  // namespace
