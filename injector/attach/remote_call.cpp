#include "injector/attach/remote_call.h"

#include <elf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pyrewind::injector {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kStackBytes = 1024 * 1024;  // dlopen runs the agent's constructors here
constexpr uint64_t kDataBytes = 16384;
// [guard page][stack, growing down][data]: an overflow faults instead of writing elsewhere.
constexpr uint64_t kDataPagesBytes = kPageBytes + kStackBytes + kDataBytes;
constexpr uint8_t kCallStub[] = {0xFF, 0xD0, 0xCC};  // call *%rax; int3
constexpr uint64_t kSyscallBytes = 2;                 // 0f 05
constexpr milliseconds kSyscallTimeout{2000};
constexpr milliseconds kStopTimeout{1000};

std::string failed(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool is_fault(int sig) { return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE; }

// A trap or fault raised by the CPU for the instruction the thread ran (si_code > 0), as
// opposed to the same signal sent by kill() or tgkill() (si_code <= 0), which is the program's.
bool raised_by_kernel(pid_t tid) {
  siginfo_t info{};
  return ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) == 0 && info.si_code > 0;
}

// Polls waitpid without blocking past a deadline: starts at 20 us, since a remote system call
// takes tens of microseconds, and backs off to 1 ms.
class Poller {
 public:
  explicit Poller(milliseconds timeout) : deadline_(Clock::now() + timeout) {}
  bool expired() const { return Clock::now() > deadline_; }
  void pause() {
    timespec interval{0, pause_ns_};
    nanosleep(&interval, nullptr);
    pause_ns_ = std::min(pause_ns_ * 2, 1'000'000L);
  }

 private:
  Clock::time_point deadline_;
  long pause_ns_ = 20'000;
};

}  // namespace

std::unique_ptr<RemoteThread> RemoteThread::seize(pid_t pid, pid_t tid, milliseconds timeout, std::string* error,
                                                  int* errno_out) {
  *errno_out = 0;
  if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
    *errno_out = errno;
    *error = failed("ptrace(PTRACE_SEIZE)");
    return nullptr;
  }
  std::unique_ptr<RemoteThread> thread(new RemoteThread(pid, tid));
  thread->seized_ = true;
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    *errno_out = errno;
    *error = failed("ptrace(PTRACE_INTERRUPT)");
    return nullptr;  // the destructor detaches
  }
  if (!thread->wait_stop(timeout, error)) {
    if (!thread->seized_) *errno_out = ESRCH;
    return nullptr;
  }
  thread->saved_xstate_.resize(64 * 1024);
  if (!thread->save_registers(error)) {
    *errno_out = errno;
    return nullptr;
  }
  return thread;
}

RemoteThread::~RemoteThread() { restore_and_detach(); }

void RemoteThread::restore_and_detach() {
  if (!seized_) return;
  // A thread still running (a call that timed out and would not stop) is stopped first: a
  // running tracee cannot be detached, and would stop at its next signal with nobody to
  // resume it.
  for (int attempt = 0; attempt < 3 && !stopped_ && seized_; ++attempt) {
    std::string ignored;
    ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
    wait_stop(kStopTimeout, &ignored);
  }
  if (stopped_) {
    uint64_t ignored_result;
    std::string ignored;
    if (code_page_ != 0) remote_syscall(SYS_munmap, {code_page_, kPageBytes}, &ignored_result, &ignored);
    if (data_pages_ != 0) remote_syscall(SYS_munmap, {data_pages_, kDataPagesBytes}, &ignored_result, &ignored);
    ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);
    if (xstate_note_ != 0) {
      iovec vector{saved_xstate_.data(), saved_xstate_.size()};
      ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(static_cast<long>(xstate_note_)), &vector);
    }
    ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
  }
  // Signals that arrived while we held the thread, sent to it again now that it runs. (A
  // handler then sees pyrewind as the sender: the kernel lets no one forge kill()'s siginfo.)
  for (int sig : held_signals_) syscall(SYS_tgkill, pid_, tid_, sig);
  seized_ = false;
}

bool RemoteThread::save_registers(std::string* error) {
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, &saved_) != 0) {
    *error = failed("ptrace(PTRACE_GETREGS)");
    return false;
  }
  iovec vector{saved_xstate_.data(), saved_xstate_.size()};
  if (xstate_note_ != NT_PRFPREG && ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &vector) == 0) {
    xstate_note_ = NT_X86_XSTATE;
  } else {
    vector = {saved_xstate_.data(), sizeof(user_fpregs_struct)};
    if (ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_PRFPREG), &vector) != 0) {
      *error = failed("cannot save the FP registers: ptrace(PTRACE_GETREGSET)");
      return false;
    }
    xstate_note_ = NT_PRFPREG;
  }
  saved_xstate_.resize(vector.iov_len);  // the kernel wants the same size back
  return true;
}

bool RemoteThread::resume(Resume how, std::string* error) {
  if (ptrace(how == Resume::kStep ? PTRACE_SINGLESTEP : PTRACE_CONT, tid_, nullptr, nullptr) != 0) {
    *error = failed("ptrace(PTRACE_CONT)");
    return false;
  }
  stopped_ = false;
  return true;
}

// Waits for the stop our PTRACE_INTERRUPT asked for. A signal for the program that comes
// first is held (re-sent at detach), and the interrupt asked again.
bool RemoteThread::wait_stop(milliseconds timeout, std::string* error) {
  Poller poller(timeout);
  while (true) {
    int status = 0;
    const pid_t got = waitpid(tid_, &status, __WALL | WNOHANG);
    if (got < 0) {
      seized_ = errno != ECHILD;
      *error = failed("waitpid");
      return false;
    }
    if (got == 0) {
      if (poller.expired()) {
        *error = "the thread did not stop within " + std::to_string(timeout.count()) + " ms";
        return false;
      }
      poller.pause();
      continue;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      stopped_ = seized_ = false;
      *error = "the process exited";
      return false;
    }
    if (!WIFSTOPPED(status)) continue;
    stopped_ = true;
    if (status >> 16 == PTRACE_EVENT_STOP) return true;  // our interrupt, or a group stop
    held_signals_.push_back(WSTOPSIG(status));
    if (!resume(Resume::kContinue, error)) return false;
    ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
  }
}

// Waits for the trap that ends an injected call (int3) or system call (single step). Other
// signals are held and the thread resumed the same way; a fault in the call is an error.
bool RemoteThread::wait_trap(Resume how, milliseconds timeout, std::string* error) {
  Poller poller(timeout);
  while (true) {
    int status = 0;
    const pid_t got = waitpid(tid_, &status, __WALL | WNOHANG);
    if (got < 0) {
      seized_ = errno != ECHILD;
      *error = failed("waitpid");
      return false;
    }
    if (got == 0) {
      if (poller.expired()) {
        *error = "the injected call did not return within " + std::to_string(timeout.count()) + " ms";
        // Stop it wherever it is, so that the destructor can restore it.
        ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
        std::string ignored;
        wait_stop(kStopTimeout, &ignored);
        return false;
      }
      poller.pause();
      continue;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      stopped_ = seized_ = false;
      *error = "the process exited during the injected call";
      return false;
    }
    if (!WIFSTOPPED(status)) continue;
    stopped_ = true;
    const int sig = WSTOPSIG(status);
    if (status >> 16 == PTRACE_EVENT_STOP) {  // a late interrupt or a group stop: go on
      if (!resume(how, error)) return false;
      continue;
    }
    if ((sig == SIGTRAP || is_fault(sig)) && raised_by_kernel(tid_)) {
      if (sig == SIGTRAP) return true;
      *error = std::string("the injected call crashed (") + strsignal(sig) + ")";
      return false;  // not re-delivered: the fault was ours, and the registers are restored
    }
    held_signals_.push_back(sig);
    if (!resume(how, error)) return false;
  }
}

bool RemoteThread::run_until_trap(const user_regs_struct& regs, Resume how, milliseconds timeout,
                                  user_regs_struct* out, std::string* error) {
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) {
    *error = failed("ptrace(PTRACE_SETREGS)");
    return false;
  }
  if (!resume(how, error) || !wait_trap(how, timeout, error)) return false;
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, out) != 0) {
    *error = failed("ptrace(PTRACE_GETREGS)");
    return false;
  }
  return true;
}

bool RemoteThread::remote_syscall(long number, const std::vector<uint64_t>& args, uint64_t* result,
                                  std::string* error) {
  user_regs_struct regs = saved_;
  regs.rip = syscall_instruction_;
  regs.rax = static_cast<uint64_t>(number);
  regs.orig_rax = ~0ull;  // not inside a system call: no restart logic on resume
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.r10, &regs.r8, &regs.r9};
  for (size_t i = 0; i < args.size() && i < 6; ++i) *slots[i] = args[i];
  user_regs_struct out{};
  if (!run_until_trap(regs, Resume::kStep, kSyscallTimeout, &out, error)) return false;
  if (out.rip != syscall_instruction_ + kSyscallBytes) {
    *error = "the system call stopped at an unexpected place";
    return false;
  }
  *result = out.rax;
  return true;
}

bool RemoteThread::run_briefly(milliseconds pause, std::string* error) {
  if (!resume(Resume::kContinue, error)) return false;
  timespec interval{0, static_cast<long>(std::chrono::nanoseconds(pause).count())};
  nanosleep(&interval, nullptr);
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
    *error = failed("ptrace(PTRACE_INTERRUPT)");
    return false;
  }
  return wait_stop(kStopTimeout, error) && save_registers(error);
}

bool RemoteThread::prepare(uint64_t syscall_instruction, std::string* error) {
  syscall_instruction_ = syscall_instruction;
  auto map = [&](uint64_t bytes, int protection, uint64_t* address) {
    uint64_t result = 0;
    if (!remote_syscall(SYS_mmap, {0, bytes, static_cast<uint64_t>(protection),
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, ~0ull, 0},
                        &result, error))
      return false;
    if (result > ~uint64_t{4095}) {  // -errno
      *error = std::string("mmap in the target failed: ") + std::strerror(static_cast<int>(-static_cast<int64_t>(result)));
      return false;
    }
    *address = result;
    return true;
  };
  // The stub page is mapped executable from the start and written through ptrace (which may
  // write read-only private pages): no writable+executable mapping, no mprotect(PROT_EXEC),
  // so W^X policies (systemd's MemoryDenyWriteExecute) do not get in the way.
  if (!map(kPageBytes, PROT_READ | PROT_EXEC, &code_page_)) return false;
  long word = 0;
  std::memcpy(&word, kCallStub, sizeof kCallStub);
  if (ptrace(PTRACE_POKEDATA, tid_, reinterpret_cast<void*>(code_page_), reinterpret_cast<void*>(word)) != 0) {
    *error = failed("cannot write the call stub: ptrace(PTRACE_POKEDATA)");
    return false;
  }
  if (!map(kDataPagesBytes, PROT_READ | PROT_WRITE, &data_pages_)) return false;
  uint64_t protect_result = 0;
  if (!remote_syscall(SYS_mprotect, {data_pages_, kPageBytes, PROT_NONE}, &protect_result, error)) return false;
  return true;
}

bool RemoteThread::push_data(const void* data, size_t size, uint64_t* address, std::string* error) {
  if (data_pages_ == 0 || size > kDataBytes - data_used_) {
    *error = "no room for call arguments in the target";
    return false;
  }
  *address = data_pages_ + kPageBytes + kStackBytes + data_used_;
  iovec local{const_cast<void*>(data), size};
  iovec remote{reinterpret_cast<void*>(*address), size};
  if (process_vm_writev(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size)) {
    *error = failed("cannot write call arguments into the target: process_vm_writev");
    return false;
  }
  data_used_ += (size + 15) & ~size_t{15};
  return true;
}

bool RemoteThread::call(uint64_t function, const std::vector<uint64_t>& args, milliseconds timeout,
                        uint64_t* result, std::string* error) {
  if (code_page_ == 0 || data_pages_ == 0) {
    *error = "call stub not prepared";
    return false;
  }
  user_regs_struct regs = saved_;
  regs.rip = code_page_;
  regs.rax = function;
  regs.orig_rax = ~0ull;
  // 16-byte aligned before the stub's call pushes the return address (SysV ABI).
  regs.rsp = (data_pages_ + kPageBytes + kStackBytes - 64) & ~uint64_t{15};
  regs.eflags &= ~(1ull << 10);  // DF clear, as the ABI requires
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9};
  for (size_t i = 0; i < args.size() && i < 6; ++i) *slots[i] = args[i];
  user_regs_struct out{};
  if (!run_until_trap(regs, Resume::kContinue, timeout, &out, error)) return false;
  if (out.rip != code_page_ + sizeof kCallStub) {
    *error = "the injected call stopped at an unexpected place";
    return false;
  }
  *result = out.rax;
  return true;
}

}  // namespace pyrewind::injector
