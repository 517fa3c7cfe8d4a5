// Calling functions inside another process with ptrace (x86-64 only).
//
// One thread of the target is stopped (PTRACE_SEIZE + PTRACE_INTERRUPT; the others run on) and
// its registers, general and FP/vector (XSTATE), saved. System calls are made by single-stepping
// the thread over a `syscall` instruction that already exists in the process; function calls
// run a two-instruction stub (`call *%rax; int3`) in a page mapped for the purpose, on a stack
// mapped for the purpose. Nothing of the program's own memory is ever written. Destruction
// unmaps the pages, restores the registers exactly (orig_rax included, so an interrupted system
// call restarts), re-delivers signals that arrived meanwhile and detaches, whatever state the
// calls left: the target is never left stopped or traced.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyrewind::injector {

#if !defined(__x86_64__)
#error "the ptrace call engine supports x86-64 only"
#endif

class RemoteThread {
 public:
  // Seizes and stops thread `tid` of process `pid`. `error` says why not (errno in `errno_out`).
  static std::unique_ptr<RemoteThread> seize(pid_t pid, pid_t tid, std::chrono::milliseconds timeout,
                                             std::string* error, int* errno_out);
  ~RemoteThread();
  RemoteThread(const RemoteThread&) = delete;
  RemoteThread& operator=(const RemoteThread&) = delete;

  uint64_t instruction_pointer() const { return saved_.rip; }
  uint64_t stack_pointer() const { return saved_.rsp; }
  // Stopped inside a system call (blocked in it, or about to restart it), not in user code.
  bool in_system_call() const { return static_cast<int64_t>(saved_.orig_rax) >= 0; }
  pid_t tid() const { return tid_; }
  // Signals that arrived while we held the thread (re-delivered at detach).
  const std::vector<int>& held_signals() const { return held_signals_; }

  // Lets the thread run for `pause` and stops it again (to leave an unsafe spot).
  bool run_briefly(std::chrono::milliseconds pause, std::string* error);

  // Maps the stub page and the data + stack pages, with system calls made at
  // `syscall_instruction` (the address of a `syscall`, 0f 05, in executable memory).
  bool prepare(uint64_t syscall_instruction, std::string* error);

  // Calls `function(args...)` (up to 6 integer arguments) and returns its rax. On a timeout
  // the thread is stopped wherever it is; the destructor still restores it.
  bool call(uint64_t function, const std::vector<uint64_t>& args, std::chrono::milliseconds timeout,
            uint64_t* result, std::string* error);

  // Copies bytes into the data area; returns their address in the target.
  bool push_data(const void* data, size_t size, uint64_t* address, std::string* error);

 private:
  enum class Resume { kContinue, kStep };
  RemoteThread(pid_t pid, pid_t tid) : pid_(pid), tid_(tid) {}
  bool resume(Resume how, std::string* error);
  bool wait_stop(std::chrono::milliseconds timeout, std::string* error);
  bool wait_trap(Resume how, std::chrono::milliseconds timeout, std::string* error);
  bool run_until_trap(const user_regs_struct& regs, Resume how, std::chrono::milliseconds timeout,
                      user_regs_struct* out, std::string* error);
  bool remote_syscall(long number, const std::vector<uint64_t>& args, uint64_t* result, std::string* error);
  bool save_registers(std::string* error);
  void restore_and_detach();

  pid_t pid_;
  pid_t tid_;
  bool stopped_ = false;
  bool seized_ = false;
  user_regs_struct saved_{};
  std::vector<uint8_t> saved_xstate_;  // NT_X86_XSTATE (or NT_PRFPREG) as the kernel gave it
  int xstate_note_ = 0;
  uint64_t syscall_instruction_ = 0;
  uint64_t code_page_ = 0;  // R-X: the call stub
  uint64_t data_pages_ = 0; // RW: arguments, then the stack
  uint64_t data_used_ = 0;
  std::vector<int> held_signals_;
};

}  // namespace pyrewind::injector
