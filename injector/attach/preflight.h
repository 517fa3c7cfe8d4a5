// Everything `pyrewind attach` checks before touching the target with ptrace: that it exists,
// runs, is CPython of a known version, and that we may trace it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "injector/attach/proc_info.h"

namespace pyrewind::injector {

enum class PreflightStatus {
  kOk,
  kNoProcess,
  kStopped,            // SIGSTOPped, or stopped by a debugger
  kExiting,            // zombie or dying
  kNotPython,
  kUnknownVersion,     // CPython, but its version cannot be told
  kPermissionDenied,   // credentials, Yama, not dumpable, or another tracer
  kOtherNamespace,     // in another PID or mount namespace
};

struct PythonProcess {
  PreflightStatus status = PreflightStatus::kNoProcess;
  std::string message;      // for anything but kOk: the cause and the fix, one line
  std::string image;        // libpython or the interpreter executable (target's path)
  int major = 0, minor = 0;
  std::string version;      // "3.12.1", or "3.10" when only the library name tells
  uint32_t hexversion = 0;  // PY_VERSION_HEX; 0 when unknown
  uid_t uid = 0;            // effective credentials of the target
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// Never uses ptrace: /proc, the interpreter's ELF file, and process_vm_readv.
PythonProcess preflight(pid_t pid);

// Whether a process with these credentials can read `path` (and search its directories).
bool readable_by(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups);

// What the kernel weighs when we PTRACE_SEIZE a process (ptrace_may_access, then Yama).
struct PtraceCheck {
  ProcessStatus tracer;            // us
  ProcessStatus target;
  pid_t target_pid = 0;
  int yama_scope = -1;             // -1: no Yama
  bool target_dumpable = true;     // /proc/PID is owned by its user, not root
  bool tracer_is_ancestor = false; // Yama scope 1 lets a process trace its descendants
};

// Why the seize would be refused, with the fix, or "" if it is allowed.
std::string ptrace_denial(const PtraceCheck& check);

// The banner Py_GetVersion() builds at start-up ("3.9.18 (main, Jan  1 2024, ...) \n[GCC ...]"),
// found in a copy of the interpreter's .bss: how 3.9/3.10 (no Py_Version symbol) tell their
// exact version.
struct VersionBanner {
  int major = 0, minor = 0, micro = 0;
  uint32_t hexversion = 0;
  std::string version;  // "3.9.18", "3.13.0rc2"
};
std::optional<VersionBanner> find_version_banner(const char* data, size_t size);

}  // namespace pyrewind::injector
