// Bytes of another process's address space, read without stopping it. Everything read is
// untrusted: the target keeps running, so pointers may be stale and structures half-written;
// a read of an unmapped or unreadable address fails cleanly (false), it never faults.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyrewind::inspect {

class Memory {
 public:
  virtual ~Memory() = default;
  // True only if all `size` bytes at `address` were read into `out`.
  virtual bool read(uint64_t address, void* out, size_t size) = 0;

  template <class T>
  bool read_value(uint64_t address, T* out) {
    return read(address, out, sizeof(T));
  }
  // A NUL-terminated string of at most `max_length` bytes (false if unreadable or longer).
  bool read_c_string(uint64_t address, size_t max_length, std::string* out);
};

// x86-64 user-space addresses: anything else (null, kernel, non-canonical) is garbage.
inline bool plausible_user_address(uint64_t address, size_t size = 1) {
  constexpr uint64_t kUserEnd = uint64_t{1} << 47;
  return address >= 4096 && address < kUserEnd && size <= kUserEnd - address;
}

// Another process's memory: process_vm_readv, else /proc/PID/mem (kernels without cross-memory
// attach, or a seccomp policy that forbids the system call but not the file).
class ProcessMemory : public Memory {
 public:
  explicit ProcessMemory(pid_t pid) : pid_(pid) {}
  ~ProcessMemory() override;
  ProcessMemory(const ProcessMemory&) = delete;
  ProcessMemory& operator=(const ProcessMemory&) = delete;

  bool read(uint64_t address, void* out, size_t size) override;
  // errno of the last failed read: EPERM/EACCES (not allowed), ESRCH (process gone), EFAULT/EIO
  // (address not mapped).
  int last_error() const { return last_error_; }

 private:
  bool read_proc_mem(uint64_t address, void* out, size_t size);

  pid_t pid_;
  bool use_proc_mem_ = false;
  int proc_mem_fd_ = -1;
  int last_error_ = 0;
};

}  // namespace pyrewind::inspect
