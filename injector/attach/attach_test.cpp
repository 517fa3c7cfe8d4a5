// The attach machinery against real processes: /proc and ELF reading on this test binary,
// preflight on children and on every installed interpreter, and injections of a stand-in
// agent (attach/testing/test_agent.c) into the small C program attach/testing/target.c in each
// of its modes (busy, allocating, sleeping, blocked in read or epoll, threaded, signalled).
#include <dlfcn.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "injector/attach/attach_lock.h"
#include "injector/attach/elf_symbols.h"
#include "injector/attach/inject.h"
#include "injector/attach/preflight.h"
#include "injector/attach/proc_info.h"
#include "injector/attach/remote_call.h"
#include "injector/attach/testing/test_util.h"

// Only in this executable's .symtab: found through the .symtab fallback.
extern "C" __attribute__((noinline)) int pyrewind_test_symtab_probe(int x) { return x + 1; }

namespace pyrewind::injector {
namespace {

using std::chrono::milliseconds;
using testing::Child;
using testing::running_untraced;
using testing::TempDir;

constexpr milliseconds kTimeout{3000};

std::string libc_path(const std::vector<Mapping>& maps) {
  for (const Mapping& m : maps)
    if (m.path.find("/libc.so.6") != std::string::npos) return m.path;
  return "";
}

// The C test program in `mode`, once it said "ready".
std::unique_ptr<Child> start_target(const std::string& mode) {
  auto child = std::make_unique<Child>(std::vector<std::string>{PYREWIND_TEST_TARGET, mode});
  EXPECT_EQ(child->read_line(), "ready");
  return child;
}

// Injects the stand-in agent, which appends a line to `log`, and checks the target is left
// running and untraced.
InjectResult inject(pid_t pid, const std::string& argument, const char* agent = PYREWIND_TEST_AGENT,
                    milliseconds timeout = kTimeout) {
  InjectResult result = inject_agent(pid, agent, argument, timeout);
  EXPECT_TRUE(running_untraced(pid)) << "left stopped or traced";
  return result;
}

// --- /proc and ELF ---------------------------------------------------------------------------

TEST(ElfFile, FindsLibcSymbolsWhereTheyAreMapped) {
  int error = 0;
  auto maps = read_maps(getpid(), &error);
  ASSERT_TRUE(maps.has_value());
  std::string message;
  auto libc = open_mapped_image(getpid(), *maps, libc_path(*maps), &message);
  ASSERT_TRUE(libc.has_value()) << message;
  auto dlopen_symbol = libc->elf->symbol("dlopen");
  ASSERT_TRUE(dlopen_symbol.has_value());
  EXPECT_EQ(libc->bias + dlopen_symbol->value, reinterpret_cast<uint64_t>(dlsym(RTLD_DEFAULT, "dlopen")));
  EXPECT_TRUE(libc->elf->symbol("malloc").has_value());
  EXPECT_FALSE(libc->elf->symbol("no_such_symbol_anywhere").has_value());
}

TEST(ElfFile, ChecksTheFileIsTheOneMapped) {
  int error = 0;
  auto maps = read_maps(getpid(), &error);
  ASSERT_TRUE(maps.has_value());
  const std::string libc = libc_path(*maps);
  const auto mapping = std::find_if(maps->begin(), maps->end(), [&](const Mapping& m) { return m.path == libc; });
  ASSERT_NE(mapping, maps->end());
  std::string message;
  EXPECT_NE(ElfFile::open(path_in_process(getpid(), libc), &message, &*mapping), nullptr) << message;
  Mapping other = *mapping;
  other.inode += 1;  // as if libc had been upgraded on disk since
  EXPECT_EQ(ElfFile::open(path_in_process(getpid(), libc), &message, &other), nullptr);
  EXPECT_NE(message.find("not the file the process mapped"), std::string::npos) << message;
}

TEST(ElfFile, FallsBackToSymtab) {
  int error = 0;
  auto maps = read_maps(getpid(), &error);
  ASSERT_TRUE(maps.has_value());
  char exe[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof exe - 1), 0);
  std::string message;
  auto self = open_mapped_image(getpid(), *maps, exe, &message);
  ASSERT_TRUE(self.has_value()) << message;
  auto probe = self->elf->symbol("pyrewind_test_symtab_probe");
  ASSERT_TRUE(probe.has_value()) << "not found in .symtab";
  EXPECT_FALSE(self->elf->exported("pyrewind_test_symtab_probe").has_value());
  EXPECT_EQ(self->bias + probe->value, reinterpret_cast<uint64_t>(&pyrewind_test_symtab_probe));
}

TEST(ElfFile, RejectsWhatIsNotElf) {
  std::string message;
  EXPECT_EQ(ElfFile::open("/proc/self/status", &message), nullptr);
  EXPECT_NE(message.find("not a 64-bit"), std::string::npos) << message;
  EXPECT_EQ(ElfFile::open("/no/such/file", &message), nullptr);
}

TEST(ProcInfo, ReadsOwnStatusThreadsAndAncestry) {
  int error = 0;
  auto status = read_status(getpid(), &error);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->uids[0], getuid());
  EXPECT_EQ(status->gids[1], getegid());
  EXPECT_EQ(status->parent, getppid());
  EXPECT_EQ(status->tracer, 0);
  EXPECT_EQ(thread_state(getpid(), getpid()), 'R');
  std::thread helper([] { usleep(100000); });
  const std::vector<pid_t> threads = thread_ids(getpid());
  helper.join();
  ASSERT_GE(threads.size(), 2u);
  EXPECT_EQ(threads[0], getpid());
  EXPECT_TRUE(is_descendant(getpid(), getppid()));
  EXPECT_FALSE(is_descendant(getppid(), getpid()));
  EXPECT_FALSE(in_other_namespace(getpid(), "pid"));
  EXPECT_FALSE(read_status(999999999, &error).has_value());
}

// --- preflight -----------------------------------------------------------------------------

TEST(Preflight, NoSuchProcess) {
  const PythonProcess result = preflight(999999999);
  EXPECT_EQ(result.status, PreflightStatus::kNoProcess);
  EXPECT_NE(result.message.find("no such process"), std::string::npos) << result.message;
}

TEST(Preflight, NotAPythonProcess) {
  Child sleeper({"/bin/sleep", "30"});
  usleep(50000);
  const PythonProcess result = preflight(sleeper.pid());
  EXPECT_EQ(result.status, PreflightStatus::kNotPython);
  EXPECT_NE(result.message.find("not a Python process"), std::string::npos) << result.message;
}

TEST(Preflight, StoppedProcess) {
  auto target = start_target("read");
  kill(target->pid(), SIGSTOP);
  for (int i = 0; i < 200 && thread_state(target->pid(), target->pid()) != 'T'; ++i) usleep(5000);
  const PythonProcess stopped = preflight(target->pid());
  EXPECT_EQ(stopped.status, PreflightStatus::kStopped);
  EXPECT_NE(stopped.message.find("kill -CONT"), std::string::npos) << stopped.message;
  kill(target->pid(), SIGCONT);
}

TEST(Preflight, AnotherUsersProcessWithoutCapabilities) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to run the target as nobody and the attacher as daemon";
  Child::Options as_nobody;
  as_nobody.uid = 65534;
  Child target({PYREWIND_TEST_TARGET, "read"}, as_nobody);
  ASSERT_EQ(target.read_line(), "ready");
  // The attacher: a forked child that becomes uid 1 (losing every capability) and reports
  // what preflight and a forced injection say.
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t attacher = fork();
  if (attacher == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(1, 1, 1) != 0 || setresuid(1, 1, 1) != 0) _exit(1);
    const PythonProcess checked = preflight(target.pid());
    const InjectResult forced = inject_agent(target.pid(), PYREWIND_TEST_AGENT, "/dev/null", kTimeout);
    const std::string text = std::to_string(static_cast<int>(checked.status)) + " " +
                             std::to_string(static_cast<int>(forced.status)) + " " + checked.message;
    (void)!write(report[1], text.data(), text.size());
    _exit(0);
  }
  close(report[1]);
  std::string text;
  char chunk[512];
  for (ssize_t n; (n = read(report[0], chunk, sizeof chunk)) > 0;) text.append(chunk, static_cast<size_t>(n));
  close(report[0]);
  waitpid(attacher, nullptr, 0);
  EXPECT_EQ(text.substr(0, 3), std::to_string(static_cast<int>(PreflightStatus::kPermissionDenied)) + " " +
                                    std::to_string(static_cast<int>(InjectStatus::kPermissionDenied)))
      << text;
  EXPECT_NE(text.find("uid 65534"), std::string::npos) << text;
  EXPECT_NE(text.find("CAP_SYS_PTRACE"), std::string::npos) << text;
  EXPECT_TRUE(running_untraced(target.pid()));
  target.send("still here\n");
  EXPECT_EQ(target.read_line(), "read 1 still here");
}

TEST(Preflight, PtraceRules) {
  PtraceCheck check;
  check.target_pid = 42;
  for (int i = 0; i < 4; ++i) {
    check.tracer.uids[i] = check.target.uids[i] = 1000;
    check.tracer.gids[i] = check.target.gids[i] = 1000;
  }
  EXPECT_EQ(ptrace_denial(check), "");  // same user, no Yama
  check.target.uids[2] = 0;             // a saved set-user-id of root
  EXPECT_NE(ptrace_denial(check).find("uid 1000"), std::string::npos);
  check.tracer.cap_effective = 1ull << 19;  // CAP_SYS_PTRACE
  EXPECT_EQ(ptrace_denial(check), "");
  check.tracer.cap_effective = 0;
  check.target.uids[2] = 1000;
  check.target_dumpable = false;
  EXPECT_NE(ptrace_denial(check).find("not dumpable"), std::string::npos);
  check.target_dumpable = true;
  check.yama_scope = 1;
  EXPECT_NE(ptrace_denial(check).find("ptrace_scope is 1"), std::string::npos);
  check.tracer_is_ancestor = true;
  EXPECT_EQ(ptrace_denial(check), "");
  check.yama_scope = 2;
  EXPECT_NE(ptrace_denial(check).find("ptrace_scope is 2"), std::string::npos);
  check.tracer.cap_effective = 1ull << 19;
  EXPECT_EQ(ptrace_denial(check), "");
  check.yama_scope = 3;
  EXPECT_NE(ptrace_denial(check).find("ptrace_scope is 3"), std::string::npos);  // even for root
}

TEST(Preflight, ReadableByTheTargetsUser) {
  TempDir dir;
  const std::string file = dir.file("agent.so");
  std::ofstream(file) << "x";
  chmod(file.c_str(), 0644);
  EXPECT_TRUE(readable_by(file, 65534, 65534, {}));
  chmod(file.c_str(), 0600);
  EXPECT_FALSE(readable_by(file, 65534, 65534, {}));
  EXPECT_TRUE(readable_by(file, 0, 0, {}));
  chmod(file.c_str(), 0640);
  EXPECT_TRUE(readable_by(file, 65534, 65534, {getegid()}));
  chmod(file.c_str(), 0644);
  chmod(dir.path().c_str(), 0700);
  EXPECT_FALSE(readable_by(file, 65534, 65534, {}));
}

TEST(Preflight, VersionBanner) {
  const char bss[] = "\x01\x02junk 3.1 (no)\0\0003.9.18 (main, Jan  1 2024, 00:00:00) \n[GCC 12.2.0]\0\0";
  auto banner = find_version_banner(bss, sizeof bss);
  ASSERT_TRUE(banner.has_value());
  EXPECT_EQ(banner->version, "3.9.18");
  EXPECT_EQ(banner->hexversion, 0x030912f0u);
  const char candidate[] = "3.13.0rc2 (main, Oct  1 2024, 00:00:00) [Clang 17.0.0]";
  banner = find_version_banner(candidate, sizeof candidate);
  ASSERT_TRUE(banner.has_value());
  EXPECT_EQ(banner->version, "3.13.0rc2");
  EXPECT_EQ(banner->hexversion, 0x030d00c2u);
  const char none[] = "3.9.18 is not followed by a build string";
  EXPECT_FALSE(find_version_banner(none, sizeof none).has_value());
}

TEST(Preflight, DetectsTheVersionOfEveryInstalledInterpreter) {
  const std::vector<testing::Interpreter> interpreters = testing::installed_interpreters();
  for (const char* expected : {"/root/.pyenv/versions/3.9", "/root/.pyenv/versions/3.10", "/root/.pyenv/versions/3.11",
                               "/root/.pyenv/versions/3.12", "/root/.pyenv/versions/3.13", "/usr/bin/python3.11"}) {
    if (std::none_of(interpreters.begin(), interpreters.end(),
                     [&](const testing::Interpreter& i) { return i.path.rfind(expected, 0) == 0; }))
      std::printf("skipped: no interpreter %s* on this machine\n", expected);
  }
  if (interpreters.empty()) GTEST_SKIP() << "no Python interpreter installed";
  std::vector<std::unique_ptr<Child>> children;
  for (const testing::Interpreter& interpreter : interpreters)
    children.push_back(std::make_unique<Child>(testing::sleeping_python(interpreter.path)));
  for (size_t i = 0; i < interpreters.size(); ++i) {
    const testing::Interpreter& interpreter = interpreters[i];
    ASSERT_EQ(children[i]->read_line(), "ready") << interpreter.path;
    const PythonProcess found = preflight(children[i]->pid());
    ASSERT_EQ(found.status, PreflightStatus::kOk) << interpreter.path << ": " << found.message;
    EXPECT_EQ(found.major, interpreter.major) << interpreter.path;
    EXPECT_EQ(found.minor, interpreter.minor) << interpreter.path;
    EXPECT_NE(found.hexversion, 0u) << interpreter.path;
    EXPECT_EQ(found.version.rfind(std::to_string(interpreter.major) + "." + std::to_string(interpreter.minor) + ".", 0), 0u)
        << found.version;
    std::printf("%s: Python %s (0x%08x) in %s\n", interpreter.path.c_str(), found.version.c_str(), found.hexversion,
                found.image.c_str());
  }
}

// --- the ptrace call engine ----------------------------------------------------------------

TEST(RemoteThread, CallsLibcFunctionsAndLeavesABusyTargetExactlyAsItWas) {
  auto target = start_target("busy");
  int error = 0;
  auto maps = read_maps(target->pid(), &error);
  ASSERT_TRUE(maps.has_value());
  std::string message;
  auto libc = open_mapped_image(target->pid(), *maps, libc_path(*maps), &message);
  ASSERT_TRUE(libc.has_value()) << message;
  uint8_t code[64];
  iovec local{code, sizeof code}, remote{reinterpret_cast<void*>(libc->bias + libc->elf->symbol("syscall")->value), sizeof code};
  ASSERT_EQ(process_vm_readv(target->pid(), &local, 1, &remote, 1, 0), static_cast<ssize_t>(sizeof code));
  const uint8_t* instruction = static_cast<const uint8_t*>(memmem(code, sizeof code, "\x0f\x05", 2));
  ASSERT_NE(instruction, nullptr);
  const uint64_t syscall_address = reinterpret_cast<uint64_t>(remote.iov_base) + (instruction - code);
  for (int round = 0; round < 20; ++round) {
    int errno_out = 0;
    auto thread = RemoteThread::seize(target->pid(), target->pid(), kTimeout, &message, &errno_out);
    ASSERT_NE(thread, nullptr) << message;
    ASSERT_TRUE(thread->prepare(syscall_address, &message)) << message;
    uint64_t result = 0;
    ASSERT_TRUE(thread->call(libc->bias + libc->elf->symbol("getpid")->value, {}, kTimeout, &result, &message))
        << message;
    EXPECT_EQ(result, static_cast<uint64_t>(target->pid()));
    const char text[] = "1234";
    uint64_t address = 0;
    ASSERT_TRUE(thread->push_data(text, sizeof text, &address, &message)) << message;
    // strlen & co are IFUNCs: never called directly.
    ASSERT_TRUE(thread->call(libc->bias + libc->elf->symbol("atoi")->value, {address}, kTimeout, &result, &message));
    EXPECT_EQ(result, 1234u);
    thread.reset();
    EXPECT_TRUE(running_untraced(target->pid()));
  }
  kill(target->pid(), SIGUSR2);
  EXPECT_EQ(target->read_line().substr(0, 7), "busy 1 ");  // both checksums agree
  EXPECT_EQ(target->exit_code(), 0);
}

TEST(RemoteThread, SignalsArrivingWhileTheThreadIsHeldAreDeliveredAfterwards) {
  auto target = start_target("signals");
  std::string message;
  int errno_out = 0;
  {
    auto thread = RemoteThread::seize(target->pid(), target->pid(), kTimeout, &message, &errno_out);
    ASSERT_NE(thread, nullptr) << message;
    kill(target->pid(), SIGUSR1);
    kill(target->pid(), SIGUSR2);
    usleep(20000);
  }
  target->send("go\n");
  EXPECT_EQ(target->read_line(), "signals 1 usr1=1 usr2=1");
}

// --- injection -----------------------------------------------------------------------------

class Inject : public ::testing::Test {
 protected:
  TempDir dir_;
  const std::string log_ = dir_.file("agent.log");
  std::vector<std::string> log_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(testing::read_file(log_));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
};

TEST_F(Inject, IntoABusyTargetWithoutChangingItsResults) {
  auto target = start_target("busy");
  for (int i = 0; i < 5; ++i) {
    const InjectResult result = inject(target->pid(), log_);
    ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
    usleep(10000);
  }
  kill(target->pid(), SIGUSR2);
  EXPECT_EQ(target->read_line().substr(0, 7), "busy 1 ");
  EXPECT_EQ(log_lines().size(), 5u);
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, IntoATargetBusyInMallocWaitsForASafeMoment) {
  auto target = start_target("malloc");
  for (int i = 0; i < 10; ++i) {
    const InjectResult result = inject(target->pid(), log_);
    ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  }
  kill(target->pid(), SIGUSR2);
  EXPECT_EQ(target->read_line().substr(0, 9), "malloc 1 ");
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, IntoASleepingTargetWhoseSleepRestarts) {
  auto target = start_target("sleep");
  usleep(100000);
  const InjectResult result = inject(target->pid(), log_);
  ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  EXPECT_EQ(target->read_line().substr(0, 8), "sleep 1 ");  // slept the whole second
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, IntoATargetBlockedInReadWhichStillGetsItsData) {
  auto target = start_target("read");
  usleep(20000);
  const InjectResult result = inject(target->pid(), log_);
  ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  target->send("hello\n");
  EXPECT_EQ(target->read_line(), "read 1 hello");  // no EINTR: read() restarted
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, IntoATargetBlockedInEpollWait) {
  auto target = start_target("epoll");
  usleep(20000);
  const InjectResult result = inject(target->pid(), log_);
  ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  target->send("hello\n");
  // epoll_wait may return EINTR once per attach (ptrace(2), BUGS): the target retries.
  EXPECT_EQ(target->read_line().substr(0, 20), "epoll 1 hello eintr=");
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, IntoAMultiThreadedTargetThroughItsMainThread) {
  auto target = start_target("threads");
  usleep(20000);
  const InjectResult result = inject(target->pid(), log_);
  ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  EXPECT_EQ(result.tid, target->pid());
  ASSERT_EQ(log_lines().size(), 1u);
  EXPECT_EQ(log_lines()[0], "start 1 tid " + std::to_string(target->pid()));
  target->send("stop\n");
  EXPECT_EQ(target->read_line(), "threads 1");
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, SignalsSentDuringTheInjectionAreDeliveredAfterIt) {
  auto target = start_target("signals");
  std::thread sender([&] {
    usleep(60000);  // while the agent's start function holds the thread (200 ms)
    kill(target->pid(), SIGUSR1);
    kill(target->pid(), SIGUSR2);
  });
  const InjectResult result = inject(target->pid(), "slow:" + log_);
  sender.join();
  ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
  target->send("go\n");
  EXPECT_EQ(target->read_line(), "signals 1 usr1=1 usr2=1");
}

TEST_F(Inject, FiftyTimesInARowReusingTheLoadedAgent) {
  auto target = start_target("read");
  std::vector<double> held_ms;
  uint64_t handle = 0;
  for (int i = 0; i < 50; ++i) {
    const InjectResult result = inject(target->pid(), log_);
    ASSERT_EQ(result.status, InjectStatus::kOk) << "injection " << i << ": " << result.detail;
    if (i == 0) handle = result.handle;
    EXPECT_EQ(result.handle, handle);
    held_ms.push_back(std::chrono::duration<double, std::milli>(result.elapsed).count());
  }
  const std::vector<std::string> lines = log_lines();
  ASSERT_EQ(lines.size(), 50u);
  EXPECT_EQ(lines.back().substr(0, 9), "start 50 ");  // one loaded copy, called 50 times
  std::sort(held_ms.begin(), held_ms.end());
  std::printf("thread held per injection: median %.2f ms, max %.2f ms\n", held_ms[held_ms.size() / 2], held_ms.back());
  target->send("done\n");
  EXPECT_EQ(target->read_line(), "read 1 done");
}

TEST_F(Inject, ReportsTheLoadersMessageForAMissingFile) {
  auto target = start_target("read");
  const InjectResult result = inject(target->pid(), log_, "/no/such/agent.so");
  EXPECT_EQ(result.status, InjectStatus::kLoadFailed);
  EXPECT_NE(result.detail.find("/no/such/agent.so: cannot open shared object file"), std::string::npos)
      << result.detail;
  target->send("x\n");
  EXPECT_EQ(target->read_line(), "read 1 x");
}

TEST_F(Inject, ReportsTheLoadersMessageForAnUndefinedSymbol) {
  auto target = start_target("read");
  const InjectResult result = inject(target->pid(), log_, PYREWIND_TEST_UNDEFINED_AGENT);
  EXPECT_EQ(result.status, InjectStatus::kLoadFailed);
  EXPECT_NE(result.detail.find("undefined symbol: pyrewind_test_no_such_function"), std::string::npos)
      << result.detail;
  target->send("x\n");
  EXPECT_EQ(target->read_line(), "read 1 x");
}

TEST_F(Inject, ReportsTheStartFunctionsError) {
  auto target = start_target("read");
  const InjectResult result = inject(target->pid(), "fail:" + log_);
  EXPECT_EQ(result.status, InjectStatus::kStartFailed);
  EXPECT_EQ(result.start_result, 42);
}

TEST_F(Inject, ACallThatHangsIsAbandonedAndTheTargetRunsOn) {
  auto target = start_target("read");
  const InjectResult result = inject(target->pid(), "hang:" + log_, PYREWIND_TEST_AGENT, milliseconds(300));
  EXPECT_EQ(result.status, InjectStatus::kFailed);
  EXPECT_NE(result.detail.find("did not return"), std::string::npos) << result.detail;
  target->send("after\n");
  EXPECT_EQ(target->read_line(), "read 1 after");
  EXPECT_EQ(target->exit_code(), 0);
}

TEST_F(Inject, NoSuchProcess) {
  const InjectResult result = inject_agent(999999999, PYREWIND_TEST_AGENT, log_, kTimeout);
  EXPECT_EQ(result.status, InjectStatus::kNoProcess) << result.detail;
}

// The latency the README and the attach summary talk about: how long one thread of a
// sleeping Python stays stopped, the dlopen of a small library included.
TEST_F(Inject, LatencyIntoASleepingPython) {
  const std::string python = testing::supported_python();
  if (python.empty()) GTEST_SKIP() << "no Python 3.9+ installed";
  Child target(testing::sleeping_python(python));
  ASSERT_EQ(target.read_line(), "ready");
  std::vector<double> held_ms;
  for (int i = 0; i < 20; ++i) {
    const InjectResult result = inject(target.pid(), log_);
    ASSERT_EQ(result.status, InjectStatus::kOk) << result.detail;
    held_ms.push_back(std::chrono::duration<double, std::milli>(result.elapsed).count());
  }
  const double first = held_ms.front();
  std::sort(held_ms.begin(), held_ms.end());
  std::printf("%s: thread held per injection over 20: first %.2f ms, median %.2f ms, max %.2f ms\n", python.c_str(),
              first, held_ms[held_ms.size() / 2], held_ms.back());
}

// --- one attach at a time ------------------------------------------------------------------

TEST(AttachLock, SecondHolderIsRefusedUntilTheFirstLetsGo) {
  TempDir dir;
  std::unique_ptr<AttachLock> first, second;
  std::string error;
  ASSERT_EQ(AttachLock::acquire(4242, &first, &error, dir.path()), AttachLock::Outcome::kAcquired) << error;
  EXPECT_EQ(AttachLock::acquire(4242, &second, &error, dir.path()), AttachLock::Outcome::kBusy);
  EXPECT_EQ(AttachLock::acquire(4243, &second, &error, dir.path()), AttachLock::Outcome::kAcquired) << error;
  const std::string path = first->path();
  first.reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the lock file is removed";
  EXPECT_EQ(AttachLock::acquire(4242, &first, &error, dir.path()), AttachLock::Outcome::kAcquired) << error;
  EXPECT_EQ(AttachLock::acquire(1, &second, &error, "/no/such/dir"), AttachLock::Outcome::kUnavailable);
}

}  // namespace
}  // namespace pyrewind::injector
