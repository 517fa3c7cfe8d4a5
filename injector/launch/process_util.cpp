#include "injector/launch/process_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace pyrewind::injector {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);  // never retried on EINTR: on Linux the descriptor is gone anyway
  fd_ = fd;
}

bool make_pipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return true;
}

std::string current_directory() {
  std::vector<char> buffer(4096);
  while (getcwd(buffer.data(), buffer.size()) == nullptr) {
    if (errno != ERANGE || buffer.size() >= (1u << 20)) return ".";
    buffer.resize(buffer.size() * 2);
  }
  return buffer.data();
}

std::string default_search_path() {
  const size_t n = confstr(_CS_PATH, nullptr, 0);
  if (n == 0) return "/bin:/usr/bin";
  std::string path(n, '\0');
  confstr(_CS_PATH, path.data(), n);
  path.resize(n - 1);
  return path;
}

}  // namespace pyrewind::injector
