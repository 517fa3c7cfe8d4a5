#include "injector/launch/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "injector/launch/agents.h"
#include "injector/launch/process_util.h"

namespace pyrewind::injector {

namespace {

// Signals pyrewind passes on to the child while it runs.
constexpr int kForwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
// Signals the terminal sends the whole foreground group: the child gets them directly.
constexpr int kIgnored[] = {SIGINT, SIGQUIT};
// Every signal whose disposition pyrewind changes, restored in the child before exec. Starts
// with kForwarded, in the same order.
constexpr int kTouched[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD};
static_assert(kTouched[0] == kForwarded[0] && kTouched[1] == kForwarded[1] && kTouched[2] == kForwarded[2] &&
              kTouched[3] == kForwarded[3]);

std::atomic<pid_t> g_forward_pid{0};
std::atomic<bool> g_child_active{false};
static_assert(std::atomic<pid_t>::is_always_lock_free);

void forward_signal(int sig) {
  const int saved_errno = errno;
  const pid_t pid = g_forward_pid.load(std::memory_order_relaxed);
  if (pid > 0) kill(pid, sig);
  errno = saved_errno;
}

std::string_view key_of(const char* entry) {
  const char* eq = std::strchr(entry, '=');
  return eq == nullptr ? std::string_view(entry) : std::string_view(entry, static_cast<size_t>(eq - entry));
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  (void)pid;
  return -1;  // older kernel: wait_exit() polls instead
}

bool exited_unreaped(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // nothing left to wait for
  }
  return info.si_pid == pid;
}

}  // namespace

struct TracedChild::SavedSignals {
  struct sigaction actions[std::size(kTouched)];
  sigset_t mask;
};

std::vector<std::string> build_environment(const char* const* environment, const LaunchSpec& spec) {
  std::vector<std::string> result;
  if (spec.preload_library.empty()) {
    for (const char* const* entry = environment; entry != nullptr && *entry != nullptr; ++entry)
      result.emplace_back(*entry);
    return result;
  }
  bool have_user_preload = false;
  std::string user_preload;
  size_t preload_position = 0;
  for (const char* const* entry = environment; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view key = key_of(*entry);
    if (key == "LD_PRELOAD") {
      if (!have_user_preload) {  // like getenv(): the first one counts
        have_user_preload = true;
        user_preload = *entry + key.size() + (std::strchr(*entry, '=') != nullptr ? 1 : 0);
        preload_position = result.size();
        result.emplace_back();  // placeholder, keeps the user's order
      }
      continue;
    }
    if (key == kSegmentEnv || key == kAgentDirEnv || key == kSavedPreloadEnv) continue;
    result.emplace_back(*entry);
  }
  std::string preload = "LD_PRELOAD=" + spec.preload_library;
  if (have_user_preload && !user_preload.empty()) preload += ":" + user_preload;
  if (have_user_preload) {
    result[preload_position] = std::move(preload);
    result.push_back(std::string(kSavedPreloadEnv) + "=" + user_preload);
  } else {
    result.push_back(std::move(preload));
  }
  result.push_back(std::string(kSegmentEnv) + "=" + spec.segment_name);
  result.push_back(std::string(kAgentDirEnv) + "=" + spec.agent_dir);
  return result;
}

std::unique_ptr<TracedChild> TracedChild::prepare(const LaunchSpec& spec, std::string* error) {
  // LD_PRELOAD separates entries by ':' and blanks: a path containing one cannot be preloaded.
  if (spec.preload_library.find_first_of(": \t\n") != std::string::npos) {
    *error = "the preload library path \"" + spec.preload_library +
             "\" contains ':' or a blank, which LD_PRELOAD cannot express; install pyrewind elsewhere";
    return nullptr;
  }
  if (spec.argv.empty()) {
    *error = "no program to run";
    return nullptr;
  }
  if (g_child_active.exchange(true)) {
    *error = "a traced child is already running in this process";
    return nullptr;
  }
  std::unique_ptr<TracedChild> child(new TracedChild());
  child->saved_ = std::make_unique<SavedSignals>();

  // Everything the child needs after fork is built now: between fork and exec it only makes
  // async-signal-safe calls.
  std::vector<std::string> env = build_environment(environ, spec);
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  UniqueFd gate_read, gate_write, status_read, status_write;
  if (!make_pipe(&gate_read, &gate_write) || !make_pipe(&status_read, &status_write)) {
    *error = std::string("cannot create a pipe: ") + std::strerror(errno);
    g_child_active = false;
    return nullptr;
  }

  // Signal handling: forwarded signals are blocked until the child runs (then whatever came
  // meanwhile is forwarded), SIGINT/SIGQUIT are ignored, SIGPIPE too (a closed stderr must
  // not kill pyrewind before the recording is complete), and SIGCHLD must not be ignored
  // (or the child would be reaped behind waitpid's back).
  SavedSignals& saved = *child->saved_;
  sigset_t block;
  sigemptyset(&block);
  for (int sig : kForwarded) sigaddset(&block, sig);
  sigprocmask(SIG_BLOCK, &block, &saved.mask);
  for (size_t i = 0; i < std::size(kTouched); ++i) sigaction(kTouched[i], nullptr, &saved.actions[i]);
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  action.sa_handler = forward_signal;
  for (size_t i = 0; i < std::size(kForwarded); ++i) {
    // A signal pyrewind was told to ignore (nohup) stays ignored: the child ignores it too.
    if (saved.actions[i].sa_handler == SIG_IGN) continue;
    sigaction(kForwarded[i], &action, nullptr);
  }
  action.sa_handler = SIG_IGN;
  for (int sig : kIgnored) sigaction(sig, &action, nullptr);
  sigaction(SIGPIPE, &action, nullptr);
  action.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &action, nullptr);

  const char* executable = spec.executable.c_str();
  const pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("cannot fork: ") + std::strerror(errno);
    child.reset();  // restores the signal handling
    return nullptr;
  }
  if (pid == 0) {
    // The child: wait at the gate, restore what pyrewind inherited, exec.
    close(gate_write.get());
    close(status_read.get());
    char go = 0;
    ssize_t n;
    do {
      n = read(gate_read.get(), &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(127);  // pyrewind gave up (or died): never run the program untraced
    for (size_t i = 0; i < std::size(kTouched); ++i) sigaction(kTouched[i], &saved.actions[i], nullptr);
    sigprocmask(SIG_SETMASK, &saved.mask, nullptr);
    execve(executable, argv.data(), envp.data());
    const int exec_errno = errno;
    ssize_t ignored = write(status_write.get(), &exec_errno, sizeof exec_errno);
    (void)ignored;
    _exit(127);
  }

  child->pid_ = pid;
  child->gate_fd_ = gate_write.release();
  child->status_fd_ = status_read.release();
  child->pidfd_ = open_pidfd(pid);
  return child;
}

TracedChild::~TracedChild() {
  if (pid_ > 0 && !started_ && !reaped_) cancel();
  g_forward_pid = 0;
  if (gate_fd_ >= 0) close(gate_fd_);
  if (status_fd_ >= 0) close(status_fd_);
  if (pidfd_ >= 0) close(pidfd_);
  if (saved_ != nullptr) {
    for (size_t i = 0; i < std::size(kTouched); ++i) sigaction(kTouched[i], &saved_->actions[i], nullptr);
    sigprocmask(SIG_SETMASK, &saved_->mask, nullptr);
  }
  g_child_active = false;
}

bool TracedChild::start(std::string* error, int* exec_errno) {
  *exec_errno = 0;
  if (pid_ <= 0 || started_ || reaped_) {
    *error = "the child is not waiting to start";
    return false;
  }
  started_ = true;
  g_forward_pid = pid_;
  const char go = 1;
  ssize_t n;
  do {
    n = write(gate_fd_, &go, 1);
  } while (n < 0 && errno == EINTR);
  close(gate_fd_);
  gate_fd_ = -1;
  if (n != 1) {
    *error = std::string("cannot start the program: ") + std::strerror(errno);
    reap();
    return false;
  }
  // The status pipe closes on a successful exec; before that the child writes errno.
  int child_errno = 0;
  size_t got = 0;
  while (got < sizeof child_errno) {
    n = read(status_fd_, reinterpret_cast<char*>(&child_errno) + got, sizeof child_errno - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(status_fd_);
  status_fd_ = -1;
  if (got == sizeof child_errno) {
    *exec_errno = child_errno;
    *error = std::strerror(child_errno);
    reap();
    return false;
  }
  // Signals that arrived while the child was being set up are forwarded now.
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : kForwarded) {
    if (!sigismember(&saved_->mask, sig)) sigaddset(&unblock, sig);
  }
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  return true;
}

void TracedChild::cancel() {
  if (pid_ <= 0 || reaped_) return;
  if (gate_fd_ >= 0) {
    close(gate_fd_);  // the child sees EOF at the gate and exits without running anything
    gate_fd_ = -1;
  }
  if (!started_) kill(pid_, SIGKILL);
  reap();
}

bool TracedChild::wait_exit(uint64_t timeout_ns) {
  if (reaped_) return true;
  if (exited_unreaped(pid_)) return true;
  timespec timeout{static_cast<time_t>(timeout_ns / 1000000000ull), static_cast<long>(timeout_ns % 1000000000ull)};
  if (pidfd_ >= 0) {
    pollfd fd{pidfd_, POLLIN, 0};
    const int ready = ppoll(&fd, 1, &timeout, nullptr);
    if (ready <= 0) return false;  // timeout, or a signal (forwarded): the caller polls again
  } else {
    nanosleep(&timeout, nullptr);
  }
  return exited_unreaped(pid_);
}

int TracedChild::reap() {
  g_forward_pid = 0;
  if (reaped_ || pid_ <= 0) return wait_status_;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      status = 0;
      break;
    }
  }
  reaped_ = true;
  wait_status_ = status;
  return status;
}

int32_t exit_status_of(int wait_status) {
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  return 0;
}

}  // namespace pyrewind::injector
