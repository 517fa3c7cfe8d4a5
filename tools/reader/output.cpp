#include "tools/reader/output.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace pyrewind::reader {

OutputFile::~OutputFile() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

bool OutputFile::open(const std::string& path) {
  if (path == "-") {
    fd_ = STDOUT_FILENO;
    owned_ = false;
    name_ = "standard output";
    return true;
  }
  name_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) return fail(errno);
  owned_ = true;
  return true;
}

bool OutputFile::fail(int err) {
  failed_ = true;
  if (err == ENOSPC || err == EDQUOT)
    error_ = "disk full while writing " + name_ + ": " + std::strerror(err);
  else if (err == EPIPE)
    error_ = "cannot write " + name_ + ": the reader closed the pipe (" + std::strerror(err) + ")";
  else
    error_ = "cannot write " + name_ + ": " + std::strerror(err);
  buffer_.clear();
  return false;
}

bool OutputFile::write(std::string_view bytes) {
  if (failed_) return false;
  buffer_.append(bytes);
  return commit();
}

bool OutputFile::flush() {
  if (failed_) {
    buffer_.clear();
    return false;
  }
  if (fd_ < 0) return fail(EBADF);
  const char* p = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    if (n == 0) return fail(ENOSPC);
    p += n;
    left -= static_cast<size_t>(n);
  }
  buffer_.clear();
  return true;
}

bool OutputFile::close() {
  bool ok = flush();
  if (owned_ && fd_ >= 0) {
    int fd = fd_;
    fd_ = -1;
    owned_ = false;
    if (::close(fd) != 0 && errno != EINTR && ok) ok = fail(errno);
  }
  return ok && !failed_;
}

}  // namespace pyrewind::reader
