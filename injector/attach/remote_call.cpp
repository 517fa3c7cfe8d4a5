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

#include <cerrno>
#include <cstring>

namespace pyrewind::injector {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kCodeBytes = 4096;
constexpr uint64_t kDataBytes = 16384;
constexpr uint64_t kStackBytes = 256 * 1024;
constexpr uint64_t kPagesBytes = kCodeBytes + kDataBytes + kStackBytes;
// Page layout of the stub page: `call *%rax; int3` at 0, `syscall; int3` at 8.
constexpr uint8_t kCallStub[] = {0xFF, 0xD0, 0xCC};
constexpr uint8_t kSyscallStub[] = {0x0F, 0x05, 0xCC};
constexpr uint64_t kSyscallStubOffset = 8;

void sleep_ms(long ms) {
  timespec interval{ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&interval, nullptr);
}

bool is_fault(int sig) { return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE; }

}  // namespace

std::unique_ptr<RemoteThread> RemoteThread::seize(pid_t pid, pid_t tid, std::chrono::milliseconds timeout,
                                                  std::string* error, int* errno_out) {
  *errno_out = 0;
  if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
    *errno_out = errno;
    *error = std::string("ptrace(PTRACE_SEIZE): ") + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<RemoteThread> thread(new RemoteThread(pid, tid));
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    *errno_out = errno;
    *error = std::string("ptrace(PTRACE_INTERRUPT): ") + std::strerror(errno);
    return nullptr;  // the destructor detaches
  }
  if (!thread->wait_stop(timeout, false, error)) return nullptr;
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &thread->saved_) != 0) {
    *errno_out = errno;
    *error = std::string("ptrace(PTRACE_GETREGS): ") + std::strerror(errno);
    return nullptr;
  }
  thread->saved_xstate_.assign(64 * 1024, 0);
  iovec vector{thread->saved_xstate_.data(), thread->saved_xstate_.size()};
  if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &vector) == 0) {
    thread->xstate_note_ = NT_X86_XSTATE;
  } else {
    vector = {thread->saved_xstate_.data(), sizeof(user_fpregs_struct)};
    if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRFPREG), &vector) != 0) {
      *errno_out = errno;
      *error = std::string("cannot save the FP registers: ") + std::strerror(errno);
      return nullptr;
    }
    thread->xstate_note_ = NT_PRFPREG;
  }
  thread->saved_xstate_.resize(vector.iov_len);
  return thread;
}

RemoteThread::~RemoteThread() {
  if (stopped_) {
    if (pages_ != 0) {
      uint64_t ignored;
      std::string error;
      remote_syscall(pages_ + kSyscallStubOffset, SYS_munmap, {pages_, kPagesBytes}, &ignored, &error);
    }
    ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);
    if (xstate_note_ != 0) {
      iovec vector{saved_xstate_.data(), saved_xstate_.size()};
      ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(static_cast<long>(xstate_note_)), &vector);
    }
  }
  // Detaching delivers the first signal that arrived while we held the thread; the others are
  // queued again for it.
  const int first = pending_signals_.empty() ? 0 : pending_signals_.front();
  ptrace(PTRACE_DETACH, tid_, nullptr, reinterpret_cast<void*>(static_cast<long>(first)));
  for (size_t i = 1; i < pending_signals_.size(); ++i) syscall(SYS_tgkill, pid_, tid_, pending_signals_[i]);
}

bool RemoteThread::wait_stop(std::chrono::milliseconds timeout, bool want_trap, std::string* error) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t got = waitpid(tid_, &status, __WALL | WNOHANG);
    if (got < 0) {
      *error = std::string("waitpid: ") + std::strerror(errno);
      return false;
    }
    if (got == 0) {
      if (Clock::now() > deadline) {
        *error = want_trap ? "the injected call did not return in time" : "the thread did not stop in time";
        if (want_trap) {
          // Stop it wherever it is, so the destructor can restore it.
          ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
          std::string ignored;
          wait_stop(std::chrono::milliseconds(1000), false, &ignored);
        }
        return false;
      }
      sleep_ms(1);
      continue;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      stopped_ = false;
      *error = "the process exited";
      return false;
    }
    if (!WIFSTOPPED(status)) continue;
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    if (event == PTRACE_EVENT_STOP) {  // our PTRACE_INTERRUPT (or a group stop)
      stopped_ = true;
      if (!want_trap) return true;
      ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
      continue;
    }
    if (want_trap && sig == SIGTRAP) {
      stopped_ = true;
      return true;
    }
    stopped_ = true;
    if (want_trap && is_fault(sig)) {
      *error = std::string("the injected call crashed with signal ") + strsignal(sig);
      return false;  // not re-delivered: the fault was ours
    }
    // A signal for the program: hold it until we detach, let the thread go on.
    pending_signals_.push_back(sig);
    ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
    if (!want_trap) ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
  }
}

bool RemoteThread::run_briefly(std::chrono::milliseconds pause, std::string* error) {
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_) != 0 || ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) {
    *error = std::string("ptrace(PTRACE_CONT): ") + std::strerror(errno);
    return false;
  }
  stopped_ = false;
  sleep_ms(pause.count());
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
    *error = std::string("ptrace(PTRACE_INTERRUPT): ") + std::strerror(errno);
    return false;
  }
  if (!wait_stop(std::chrono::milliseconds(2000), false, error)) return false;
  iovec vector{saved_xstate_.data(), saved_xstate_.size()};
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, &saved_) != 0 ||
      ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(static_cast<long>(xstate_note_)), &vector) != 0) {
    *error = std::string("cannot save the registers: ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool RemoteThread::run_until_trap(const user_regs_struct& regs, std::chrono::milliseconds timeout,
                                  user_regs_struct* out, std::string* error) {
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) {
    *error = std::string("ptrace(PTRACE_SETREGS): ") + std::strerror(errno);
    return false;
  }
  if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) {
    *error = std::string("ptrace(PTRACE_CONT): ") + std::strerror(errno);
    return false;
  }
  stopped_ = false;
  if (!wait_stop(timeout, true, error)) return false;
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, out) != 0) {
    *error = std::string("ptrace(PTRACE_GETREGS): ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool RemoteThread::remote_syscall(uint64_t code_address, long number, const std::vector<uint64_t>& args,
                                  uint64_t* result, std::string* error) {
  user_regs_struct regs = saved_;
  regs.rip = code_address;
  regs.rax = static_cast<uint64_t>(number);
  regs.orig_rax = ~0ull;  // not inside a system call: no restart logic on resume
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.r10, &regs.r8, &regs.r9};
  for (size_t i = 0; i < args.size() && i < 6; ++i) *slots[i] = args[i];
  user_regs_struct out{};
  if (!run_until_trap(regs, std::chrono::milliseconds(2000), &out, error)) return false;
  *result = out.rax;
  return true;
}

bool RemoteThread::poke(uint64_t address, const void* data, size_t size) {
  // Word by word with PTRACE_POKEDATA: it writes through read-only text mappings too.
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t done = 0; done < size; done += sizeof(long)) {
    long word = 0;
    const size_t n = std::min(sizeof(long), size - done);
    if (n < sizeof(long)) {
      errno = 0;
      word = ptrace(PTRACE_PEEKDATA, tid_, reinterpret_cast<void*>(address + done), nullptr);
      if (errno != 0) return false;
    }
    std::memcpy(&word, bytes + done, n);
    if (ptrace(PTRACE_POKEDATA, tid_, reinterpret_cast<void*>(address + done), reinterpret_cast<void*>(word)) != 0)
      return false;
  }
  return true;
}

bool RemoteThread::peek(uint64_t address, void* out, size_t size) const {
  auto* bytes = static_cast<uint8_t*>(out);
  for (size_t done = 0; done < size; done += sizeof(long)) {
    errno = 0;
    const long word = ptrace(PTRACE_PEEKDATA, tid_, reinterpret_cast<void*>(address + done), nullptr);
    if (errno != 0) return false;
    std::memcpy(bytes + done, &word, std::min(sizeof(long), size - done));
  }
  return true;
}

bool RemoteThread::prepare(uint64_t scratch_code, std::string* error) {
  uint8_t original[sizeof(long)];
  if (!peek(scratch_code, original, sizeof original) || !poke(scratch_code, kSyscallStub, sizeof kSyscallStub)) {
    *error = "cannot write the system-call stub into the target";
    return false;
  }
  uint64_t address = 0;
  bool ok = remote_syscall(scratch_code, SYS_mmap,
                           {0, kPagesBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}, &address,
                           error);
  if (ok && address > ~uint64_t{4095}) {  // -errno
    *error = std::string("mmap in the target failed: ") + std::strerror(static_cast<int>(-static_cast<int64_t>(address)));
    ok = false;
  }
  if (ok) {
    pages_ = address;
    uint8_t code[16] = {};
    std::memcpy(code, kCallStub, sizeof kCallStub);
    std::memcpy(code + kSyscallStubOffset, kSyscallStub, sizeof kSyscallStub);
    uint64_t protect_result = 0;
    ok = poke(pages_, code, sizeof code) &&
         remote_syscall(scratch_code, SYS_mprotect, {pages_, kCodeBytes, PROT_READ | PROT_EXEC}, &protect_result,
                        error) &&
         protect_result == 0;
    if (!ok && error->empty()) *error = "cannot prepare the call stub in the target";
  }
  if (!poke(scratch_code, original, sizeof original)) {
    *error = "cannot restore the target's code at the stub address";
    return false;
  }
  return ok;
}

bool RemoteThread::push_data(const void* data, size_t size, uint64_t* address, std::string* error) {
  if (pages_ == 0 || size > kDataBytes - data_used_) {
    *error = "no room for call arguments in the target";
    return false;
  }
  *address = pages_ + kCodeBytes + data_used_;
  if (!poke(*address, data, size)) {
    *error = "cannot write call arguments into the target";
    return false;
  }
  data_used_ += (size + 15) & ~size_t{15};
  return true;
}

bool RemoteThread::read_memory(uint64_t address, void* out, size_t size) const {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

bool RemoteThread::call(uint64_t function, const std::vector<uint64_t>& args, std::chrono::milliseconds timeout,
                        uint64_t* result, std::string* error) {
  if (pages_ == 0) {
    *error = "call stub not prepared";
    return false;
  }
  user_regs_struct regs = saved_;
  regs.rip = pages_;
  regs.rax = function;
  regs.orig_rax = ~0ull;
  regs.rsp = (pages_ + kPagesBytes - 256) & ~uint64_t{15};  // the call pushes the return address
  regs.eflags &= ~(1ull << 10);                              // DF clear, as the ABI requires
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9};
  for (size_t i = 0; i < args.size() && i < 6; ++i) *slots[i] = args[i];
  user_regs_struct out{};
  if (!run_until_trap(regs, timeout, &out, error)) return false;
  if (out.rip != pages_ + sizeof kCallStub) {
    *error = "the injected call stopped at an unexpected place";
    return false;
  }
  *result = out.rax;
  return true;
}

}  // namespace pyrewind::injector
