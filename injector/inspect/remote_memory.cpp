#include "injector/inspect/remote_memory.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pyrewind::inspect {

bool Memory::read_c_string(uint64_t address, size_t max_length, std::string* out) {
  // Page by page: a short string near the end of a mapping must not fail because the next
  // page is unmapped.
  constexpr uint64_t kPage = 4096;
  out->clear();
  char chunk[kPage];
  while (out->size() <= max_length) {
    const size_t size = static_cast<size_t>(kPage - address % kPage);
    if (!plausible_user_address(address, size) || !read(address, chunk, size)) return false;
    const void* end = std::memchr(chunk, '\0', size);
    if (end != nullptr) {
      out->append(chunk, static_cast<size_t>(static_cast<const char*>(end) - chunk));
      return out->size() <= max_length;
    }
    out->append(chunk, size);
    address += size;
  }
  return false;
}

ProcessMemory::~ProcessMemory() {
  if (proc_mem_fd_ >= 0) close(proc_mem_fd_);
}

bool ProcessMemory::read(uint64_t address, void* out, size_t size) {
  if (size == 0) return true;
  if (!plausible_user_address(address, size)) {
    last_error_ = EFAULT;
    return false;
  }
  if (use_proc_mem_) return read_proc_mem(address, out, size);
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  const ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (n == static_cast<ssize_t>(size)) return true;
  if (n >= 0) {  // stopped at an unmapped page
    last_error_ = EFAULT;
    return false;
  }
  last_error_ = errno;
  if (errno == ENOSYS || errno == EPERM) {
    if (read_proc_mem(address, out, size)) {
      use_proc_mem_ = true;
      return true;
    }
  }
  return false;
}

bool ProcessMemory::read_proc_mem(uint64_t address, void* out, size_t size) {
  if (proc_mem_fd_ < 0) {
    proc_mem_fd_ = open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (proc_mem_fd_ < 0) {
      last_error_ = errno == ENOENT ? ESRCH : errno;
      return false;
    }
  }
  const ssize_t n = pread(proc_mem_fd_, out, size, static_cast<off_t>(address));
  if (n == static_cast<ssize_t>(size)) return true;
  last_error_ = n < 0 ? errno : EFAULT;
  return false;
}

}  // namespace pyrewind::inspect
