// Finding the interpreter in a live process from outside: the image that holds _PyRuntime
// (libpython or a static interpreter), its version and the matching layout table, and the
// addresses of the type objects values are recognised by.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "injector/inspect/layouts.h"
#include "injector/inspect/remote_memory.h"

namespace pyrewind::inspect {

enum class LocateStatus {
  kOk,
  kNoProcess,
  kPermissionDenied,  // its memory (or /proc/PID/maps) may not be read by us
  kNotPython,         // no CPython interpreter in it
  kUnsupported,       // CPython, but a version (or build) this pyrewind has no layout for
};

// Addresses of the objects whose identity tells a value's type.
struct TypeAddresses {
  uint64_t code = 0, frame = 0, cell = 0;
  uint64_t str = 0, bytes = 0, int_ = 0, bool_ = 0, float_ = 0;
  uint64_t list = 0, tuple = 0, dict = 0, set = 0, frozenset = 0;
  uint64_t none = 0, true_ = 0, false_ = 0;
  uint64_t coroutine = 0, generator = 0, weakref = 0, module = 0;  // what asyncio tasks are reached by
};

struct PythonTarget {
  pid_t pid = 0;
  std::string image;    // libpython or the interpreter executable, as the target sees it
  std::string version;  // "3.12.1", or "3.10" when only the library name tells
  int major = 0, minor = 0;
  uint64_t runtime = 0;  // address of _PyRuntime
  const PythonLayout* layout = nullptr;
  TypeAddresses types;
};

struct LocateResult {
  LocateStatus status = LocateStatus::kNoProcess;
  std::string message;  // for anything but kOk: what and why, one line
  PythonTarget target;
};

// Reads /proc, the interpreter's ELF file and (through `memory`) the target's memory; never
// stops the process.
LocateResult locate_python(pid_t pid, ProcessMemory& memory);

}  // namespace pyrewind::inspect
