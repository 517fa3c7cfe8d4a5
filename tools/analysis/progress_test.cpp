#include "tools/analysis/progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace pyrewind::analysis {
namespace {

// Points stderr at `fd` for the object's lifetime.
class StderrTo {
 public:
  explicit StderrTo(int fd) : saved_(::dup(STDERR_FILENO)) { ::dup2(fd, STDERR_FILENO); }
  ~StderrTo() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }

 private:
  int saved_;
};

std::string drain(int fd) {
  std::string out;
  char block[512];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 100) > 0 && (p.revents & POLLIN)) {
    const ssize_t n = ::read(fd, block, sizeof block);
    if (n <= 0) break;
    out.append(block, static_cast<size_t>(n));
  }
  return out;
}

// Shows after the first second, 512 updates at a time.
void run_progress() {
  Progress progress("exporting", 4'000'000);
  for (int i = 0; i < 512; ++i) progress.update(1'000'000);  // too early: nothing
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 512; ++i) progress.update(2'000'000);
}

TEST(Progress, ShownOnATerminalOnly) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int terminal = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(terminal, 0);
  {
    StderrTo redirect(terminal);
    run_progress();
  }
  EXPECT_EQ(drain(master), "\rpyrewind: exporting:  50% (2.0 MB of 4.0 MB)\033[K\r\033[K");
  ::close(terminal);
  ::close(master);

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  {
    StderrTo redirect(pipe_fds[1]);
    run_progress();
  }
  ::close(pipe_fds[1]);
  EXPECT_EQ(drain(pipe_fds[0]), "");
  ::close(pipe_fds[0]);
}

}  // namespace
}  // namespace pyrewind::analysis
