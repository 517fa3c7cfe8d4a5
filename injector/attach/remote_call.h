// Calling functions inside another process with ptrace (x86-64).
//
// One thread of the target is stopped (PTRACE_SEIZE + PTRACE_INTERRUPT; the others run on),
// its registers (general and FP/vector state) saved; each call points it at a two-instruction
// stub (`call *%rax; int3`) in a page mapped for the purpose, on a stack mapped for the
// purpose, and waits for the trap. Destruction restores the registers exactly (orig_rax
// included, so an interrupted system call restarts), unmaps the pages, re-delivers signals
// that arrived meanwhile, and detaches: the target is never left stopped.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyrewind::injector {

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
  pid_t tid() const { return tid_; }

  // Lets the thread run for `pause` and stops it again (to leave an unsafe spot).
  bool run_briefly(std::chrono::milliseconds pause, std::string* error);

  // Maps the stub and stack pages (a remote mmap through a `syscall` stub written over, and
  // restored at, `scratch_code`: an address no thread executes, e.g. libc's ELF entry point).
  bool prepare(uint64_t scratch_code, std::string* error);

  // Calls `function(args...)` (up to 6 integer arguments) and returns its rax.
  bool call(uint64_t function, const std::vector<uint64_t>& args, std::chrono::milliseconds timeout,
            uint64_t* result, std::string* error);

  // Copies bytes into the data area; returns their address in the target.
  bool push_data(const void* data, size_t size, uint64_t* address, std::string* error);
  bool read_memory(uint64_t address, void* out, size_t size) const;

 private:
  RemoteThread(pid_t pid, pid_t tid) : pid_(pid), tid_(tid) {}
  bool wait_stop(std::chrono::milliseconds timeout, bool want_trap, std::string* error);
  bool run_until_trap(const user_regs_struct& regs, std::chrono::milliseconds timeout, user_regs_struct* out,
                      std::string* error);
  bool remote_syscall(uint64_t code_address, long number, const std::vector<uint64_t>& args, uint64_t* result,
                      std::string* error);
  bool poke(uint64_t address, const void* data, size_t size);
  bool peek(uint64_t address, void* out, size_t size) const;

  pid_t pid_;
  pid_t tid_;
  bool stopped_ = false;
  user_regs_struct saved_{};
  std::vector<uint8_t> saved_xstate_;  // NT_X86_XSTATE (or NT_PRFPREG) as the kernel gave it
  int xstate_note_ = 0;
  uint64_t pages_ = 0;  // stub + data + stack, mapped by prepare()
  uint64_t data_used_ = 0;
  std::vector<int> pending_signals_;  // arrived while we held the thread
};

}  // namespace pyrewind::injector
