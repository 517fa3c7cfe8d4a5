// Small POSIX helpers shared by the launcher and the interpreter probe.
#pragma once

#include <string>

namespace pyrewind::injector {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A close-on-exec pipe.
bool make_pipe(UniqueFd* read_end, UniqueFd* write_end);

// getcwd() as a string ("." if it cannot be determined).
std::string current_directory();

// The search path execvp uses when PATH is unset.
std::string default_search_path();

}  // namespace pyrewind::injector
