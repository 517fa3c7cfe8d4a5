// Native (C) stacks of a process's threads, unwound with libunwind-ptrace while the threads are
// stopped, and merged with their Python stacks (`pyrewind dump --native`).
//
// Every thread is stopped (PTRACE_SEIZE + PTRACE_INTERRUPT) for as long as the NativeStacks
// object lives, so the Python stacks read meanwhile match the native ones; the destructor lets
// them all go exactly as they were (registers restored, held signals re-sent).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "injector/attach/remote_call.h"
#include "injector/inspect/python_stacks.h"

namespace pyrewind::inspect {

struct NativeFrame {
  uint64_t ip = 0;
  std::string symbol;   // "" when it cannot be told
  uint64_t offset = 0;  // from the symbol
  std::string module;   // the mapped file's base name ("libc.so.6"), "" when anonymous
  bool eval_loop = false;  // CPython's _PyEval_EvalFrameDefault: stands for Python frames
};

// What stays valid from one stop of a process to the next (`sample --native` stops it every
// tick): libunwind's address space with its cached unwind tables, the mapped modules, and the
// symbol of every address seen, since a symbol lookup reads the module's ELF file.
class NativeUnwinder {
 public:
  explicit NativeUnwinder(pid_t pid);
  ~NativeUnwinder();
  NativeUnwinder(const NativeUnwinder&) = delete;
  NativeUnwinder& operator=(const NativeUnwinder&) = delete;

  // The frames of thread `tid`, which must be stopped, innermost first. False with `*error`
  // when unwinding fails before its first frame.
  bool unwind(pid_t tid, std::vector<NativeFrame>* frames, std::string* error);

 private:
  struct Mapping {
    uint64_t begin = 0, end = 0;
    std::string module;
  };
  struct Symbol {
    std::string name;
    uint64_t offset = 0;
  };
  void load_mappings();
  const Mapping* mapping_of(uint64_t address);

  pid_t pid_;
  void* address_space_ = nullptr;  // unw_addr_space_t
  std::vector<Mapping> mappings_;
  bool mappings_fresh_ = false;  // loaded since the last unwind began: reloading cannot help
  std::unordered_map<uint64_t, Symbol> symbols_;
};

class NativeStacks {
 public:
  // Stops every thread of `pid`. nullptr with `*error` when a thread cannot be stopped (no
  // permission: ptrace rules, as for attach); threads that exit meanwhile are left out.
  static std::unique_ptr<NativeStacks> stop(pid_t pid, std::string* error, int* errno_out);
  ~NativeStacks();
  NativeStacks(const NativeStacks&) = delete;
  NativeStacks& operator=(const NativeStacks&) = delete;

  // The stopped thread's native frames, innermost first, with `unwinder` (one of this
  // process). False with `*error` when it is not one of the stopped threads or unwinding fails.
  bool unwind(NativeUnwinder& unwinder, pid_t tid, std::vector<NativeFrame>* frames, std::string* error) const;
  // Whether stopped thread `tid` was inside a system call; nullopt when it is not stopped.
  std::optional<bool> in_system_call(pid_t tid) const;

 private:
  NativeStacks() = default;
  std::vector<std::unique_ptr<injector::RemoteThread>> threads_;
};

// One thread's stack with native frames, innermost first: each eval-loop frame of `native`
// replaced by the Python frames that C call runs (the frames of `python` up to and including
// the next eval_entry one). Python frames left over (the native unwind stopped early) follow
// at the end; an eval-loop frame with no Python frames left stays native.
struct MergedFrame {
  bool native = false;
  Frame python;          // when !native
  NativeFrame c_frame;   // when native
};
std::vector<MergedFrame> merge_stacks(const std::vector<Frame>& python, const std::vector<NativeFrame>& native);

}  // namespace pyrewind::inspect
