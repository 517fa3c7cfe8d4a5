// Unit tests of the attach machinery against real processes: this test binary's own mappings,
// and children it forks (no Python needed; the end-to-end suite attaches to interpreters).
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "injector/attach/elf_symbols.h"
#include "injector/attach/inject.h"
#include "injector/attach/preflight.h"
#include "injector/attach/proc_info.h"
#include "injector/attach/remote_call.h"

namespace pyrewind::injector {
namespace {

using std::chrono::milliseconds;

std::string libc_path(const std::vector<Mapping>& maps) {
  for (const Mapping& m : maps)
    if (m.path.find("/libc.so.6") != std::string::npos) return m.path;
  return "";
}

// A child that computes with floating point in a loop, blocked in read() on a pipe between
// rounds; it writes its result to `out` when the parent sends a byte, then exits 0 if the
// result is right. Registers clobbered by an injection would break the sum or the read.
struct Child {
  pid_t pid = -1;
  int to_child = -1, from_child = -1;

  Child() {
    int down[2], up[2];
    EXPECT_EQ(pipe(down), 0);
    EXPECT_EQ(pipe(up), 0);
    pid = fork();
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      double sum = 0;
      for (int i = 1; i <= 2000000; ++i) sum += std::sqrt(static_cast<double>(i));
      asm volatile("" : "+x"(sum));  // keep the sum in an SSE register across the read()
      char byte;
      const ssize_t n = read(down[0], &byte, 1);  // blocked here while the parent injects
      const double expected = 1885618790.06;     // sum of sqrt(1..2e6)
      const bool ok = n == 1 && std::fabs(sum - expected) < 1.0;
      const char answer = ok ? 'y' : 'n';
      (void)!write(up[1], &answer, 1);
      _exit(ok ? 0 : 1);
    }
    close(down[0]);
    close(up[1]);
    to_child = down[1];
    from_child = up[0];
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    close(to_child);
    close(from_child);
  }
  // Releases the child and returns its verdict.
  char finish() {
    const char go = 'g';
    EXPECT_EQ(write(to_child, &go, 1), 1);
    char answer = '?';
    EXPECT_EQ(read(from_child, &answer, 1), 1);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? answer : 'x';
  }
};

TEST(ElfFile, FindsLibcSymbolsWhereTheyAreMapped) {
  int error = 0;
  auto maps = read_maps(getpid(), &error);
  ASSERT_TRUE(maps.has_value());
  const std::string libc = libc_path(*maps);
  ASSERT_FALSE(libc.empty());
  std::string message;
  auto elf = ElfFile::open(libc, &message);
  ASSERT_NE(elf, nullptr) << message;
  auto bias = load_bias(*maps, libc, *elf);
  ASSERT_TRUE(bias.has_value());
  auto dlopen_symbol = elf->symbol("dlopen");
  ASSERT_TRUE(dlopen_symbol.has_value());
  EXPECT_EQ(*bias + dlopen_symbol->value, reinterpret_cast<uint64_t>(dlsym(RTLD_DEFAULT, "dlopen")));
  EXPECT_TRUE(elf->symbol("malloc").has_value());
  EXPECT_FALSE(elf->symbol("no_such_symbol_anywhere").has_value());
}

TEST(ElfFile, RejectsWhatIsNotElf) {
  std::string message;
  EXPECT_EQ(ElfFile::open("/proc/self/status", &message), nullptr);
  EXPECT_NE(message.find("not a 64-bit"), std::string::npos) << message;
  EXPECT_EQ(ElfFile::open("/no/such/file", &message), nullptr);
}

TEST(ProcInfo, ReadsOwnStatus) {
  int error = 0;
  auto status = read_status(getpid(), &error);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->uids[0], getuid());
  EXPECT_EQ(status->gids[1], getegid());
  EXPECT_FALSE(in_other_namespace(getpid(), "pid"));
  EXPECT_FALSE(read_status(999999999, &error).has_value());
}

TEST(Preflight, RefusesWhatIsNotARunningPython) {
  EXPECT_EQ(preflight(999999999).status, PreflightStatus::kNoProcess);
  Child child;
  EXPECT_EQ(preflight(child.pid).status, PreflightStatus::kNotPython);
  kill(child.pid, SIGSTOP);
  for (int i = 0; i < 100; ++i) {
    int error = 0;
    auto status = read_status(child.pid, &error);
    if (status && status->state == 'T') break;
    usleep(10000);
  }
  const PythonProcess stopped = preflight(child.pid);
  EXPECT_EQ(stopped.status, PreflightStatus::kStopped);
  EXPECT_NE(stopped.message.find("kill -CONT"), std::string::npos) << stopped.message;
  kill(child.pid, SIGCONT);
  EXPECT_EQ(child.finish(), 'y');
}

TEST(RemoteThread, CallsIntoAChildAndLeavesItExactlyAsItWas) {
  Child child;
  usleep(50000);  // let it reach its loop or its read
  int error = 0;
  auto maps = read_maps(child.pid, &error);
  ASSERT_TRUE(maps.has_value());
  std::string message;
  auto libc = ElfFile::open(libc_path(*maps), &message);
  ASSERT_NE(libc, nullptr) << message;
  const uint64_t bias = *load_bias(*maps, libc_path(*maps), *libc);
  for (int round = 0; round < 20; ++round) {
    int errno_out = 0;
    auto thread = RemoteThread::seize(child.pid, child.pid, milliseconds(2000), &message, &errno_out);
    ASSERT_NE(thread, nullptr) << message;
    ASSERT_TRUE(thread->prepare(bias + libc->entry(), &message)) << message;
    uint64_t result = 0;
    ASSERT_TRUE(thread->call(bias + libc->symbol("getpid")->value, {}, milliseconds(2000), &result, &message))
        << message;
    EXPECT_EQ(result, static_cast<uint64_t>(child.pid));
    const char text[] = "1234";
    uint64_t address = 0;
    ASSERT_TRUE(thread->push_data(text, sizeof text, &address, &message)) << message;
    ASSERT_TRUE(libc->symbol("atoi").has_value());  // strlen & co are IFUNCs: never called directly
    ASSERT_TRUE(thread->call(bias + libc->symbol("atoi")->value, {address}, milliseconds(2000), &result, &message));
    EXPECT_EQ(result, 1234u);
  }
  int status_error = 0;
  auto status = read_status(child.pid, &status_error);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->state, 'T');
  EXPECT_NE(status->state, 't');
  EXPECT_EQ(child.finish(), 'y');  // its FP sum is right and its read() restarted
}

TEST(RemoteThread, SignalsArrivingDuringTheCallAreDeliveredAfterwards) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    static std::atomic<int> received{0};
    signal(SIGUSR1, [](int) { received.fetch_add(1); });
    (void)!write(ready[1], "r", 1);
    for (int i = 0; i < 500 && received.load() == 0; ++i) usleep(10000);
    _exit(received.load() > 0 ? 0 : 3);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  std::string message;
  int errno_out = 0;
  {
    auto thread = RemoteThread::seize(pid, pid, milliseconds(2000), &message, &errno_out);
    ASSERT_NE(thread, nullptr) << message;
    kill(pid, SIGUSR1);
    usleep(20000);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(Inject, ReportsTheLoadersMessage) {
  Child child;
  usleep(50000);
  const InjectResult result = inject_agent(child.pid, "/no/such/agent.so", "x", milliseconds(3000));
  EXPECT_EQ(result.status, InjectStatus::kLoadFailed);
  EXPECT_NE(result.detail.find("/no/such/agent.so"), std::string::npos) << result.detail;
  EXPECT_EQ(child.finish(), 'y');
}

TEST(Inject, NoSuchProcess) {
  const InjectResult result = inject_agent(999999999, "/no/such/agent.so", "x", milliseconds(1000));
  EXPECT_EQ(result.status, InjectStatus::kNoProcess) << result.detail;
}

}  // namespace
}  // namespace pyrewind::injector
