// Everything `pyrewind attach` checks before touching the target with ptrace: that it exists,
// runs, is CPython of a version we have an agent for, and that we may trace it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pyrewind::injector {

enum class PreflightStatus {
  kOk,
  kNoProcess,
  kStopped,            // SIGSTOPped or traced by someone else
  kExiting,            // zombie or dying
  kNotPython,
  kUnknownVersion,     // CPython, but its version cannot be told
  kPermissionDenied,
  kOtherNamespace,     // in another PID or mount namespace
};

struct PythonProcess {
  PreflightStatus status = PreflightStatus::kNoProcess;
  std::string message;      // for anything but kOk: the cause and the fix, one line
  std::string image;        // libpython or the interpreter executable (target's path)
  int major = 0, minor = 0;
  uint32_t hexversion = 0;  // 0 if only the minor version is known (3.9/3.10 libpython)
  uid_t uid = 0;            // effective credentials of the target
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

PythonProcess preflight(pid_t pid);

// Whether a process with these credentials can read `path` (and search its directories).
bool readable_by(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups);

}  // namespace pyrewind::injector
