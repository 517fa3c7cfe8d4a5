// Finding the interpreter `pyrewind run` is asked to start, and asking it what it is before
// the program runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pyrewind::injector {

// Resolves `name` the way execvp() does: a name containing '/' is used as it is; otherwise
// each directory of `path_env` (the PATH value; nullptr = unset, then the libc default
// search path) is tried in order, skipping entries that are missing, not regular files or not
// executable. On success `*path` is absolute (relative directories and names are joined to the
// current directory, symlinks are kept). On failure `*error_number` is ENOENT or the error of
// the last candidate that existed (EACCES), as execvp reports.
bool resolve_executable(const std::string& name, const char* path_env, std::string* path, int* error_number);

enum class ExecutableKind {
  kBinary,         // ELF or anything else the kernel may run
  kWrapperScript,  // "#!" script for a non-Python interpreter (pyenv shims, venv wrappers)
  kPythonScript,   // "#!" script run by Python: a program, not an interpreter
  kUnreadable,
};

// Looks at the first bytes of `path`. A Python script must not be probed: running it with the
// probe's arguments would run the user's program once, untraced.
ExecutableKind classify_executable(const std::string& path);

struct PythonInfo {
  std::string implementation;  // sys.implementation.name, "cpython"
  uint32_t hexversion = 0;     // sys.hexversion
  std::string version;         // "3.12.1", "3.13.0rc2"
  std::string abiflags;        // sys.abiflags ("t" marks a free-threaded build)
  int major() const { return static_cast<int>(hexversion >> 24); }
  int minor() const { return static_cast<int>((hexversion >> 16) & 0xff); }
  bool free_threaded() const { return abiflags.find('t') != std::string::npos; }
};

enum class ProbeStatus {
  kOk,
  kFailed,      // did not run, crashed, exited non-zero, or printed something unexpected
  kTimeout,
};

struct ProbeResult {
  ProbeStatus status = ProbeStatus::kFailed;
  PythonInfo info;
  std::string detail;  // for kFailed/kTimeout: what happened, one line
};

// Runs `executable -I -S -c <code>` (isolated mode, no site import: fast, and independent of
// the user's PYTHON* variables and site-packages) with stdin from /dev/null, reading its output
// with a timeout; kills it if it takes longer. `argv0` is what the program sees as argv[0].
// The environment is inherited unchanged, so wrappers resolve the same interpreter the traced
// run will get.
ProbeResult probe_python(const std::string& executable, const std::string& argv0,
                         std::chrono::milliseconds timeout);

// Parses the probe's output (exposed for tests).
bool parse_probe_output(const std::string& output, PythonInfo* info);

}  // namespace pyrewind::injector
