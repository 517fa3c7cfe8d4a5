#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "injector/launch/agents.h"
#include "injector/launch/launcher.h"
#include "injector/launch/process_util.h"
#include "injector/launch/python_probe.h"

namespace pyrewind::injector {
namespace {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/pyrewind-launch-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content, mode_t mode) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    chmod(p.c_str(), mode);
    return p;
  }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- resolve_executable ------------------------------------------------------------------

TEST(ResolveExecutable, SearchesPathInOrderSkippingNonExecutables) {
  TempDir a, b;
  a.file("tool", "#!/bin/sh\n", 0644);  // not executable: skipped
  const std::string expected = b.file("tool", "#!/bin/sh\n", 0755);
  std::string path;
  int err = 0;
  ASSERT_TRUE(resolve_executable("tool", (a.path() + ":" + b.path()).c_str(), &path, &err));
  EXPECT_EQ(path, expected);
}

TEST(ResolveExecutable, NotFoundAndPermissionDeniedLikeExecvp) {
  TempDir a;
  a.file("tool", "#!/bin/sh\n", 0644);
  std::string path;
  int err = 0;
  EXPECT_FALSE(resolve_executable("missing-tool", a.path().c_str(), &path, &err));
  EXPECT_EQ(err, ENOENT);
  if (geteuid() != 0) {  // root may execute nothing without x bits, but access() says otherwise
    EXPECT_FALSE(resolve_executable("tool", a.path().c_str(), &path, &err));
    EXPECT_EQ(err, EACCES);
  }
  EXPECT_FALSE(resolve_executable("", a.path().c_str(), &path, &err));
}

TEST(ResolveExecutable, DirectoryIsNotAProgram) {
  TempDir a;
  mkdir((a.path() + "/tool").c_str(), 0755);
  std::string path;
  int err = 0;
  EXPECT_FALSE(resolve_executable("tool", a.path().c_str(), &path, &err));
  EXPECT_EQ(err, EACCES);
}

TEST(ResolveExecutable, NamesWithSlashAreNotSearchedAndBecomeAbsolute) {
  TempDir a;
  const std::string tool = a.file("tool", "#!/bin/sh\n", 0755);
  std::string path;
  int err = 0;
  ASSERT_TRUE(resolve_executable(tool, "/nonexistent", &path, &err));
  EXPECT_EQ(path, tool);
  const std::string old_cwd = current_directory();
  ASSERT_EQ(chdir(a.path().c_str()), 0);
  EXPECT_TRUE(resolve_executable("./tool", "/nonexistent", &path, &err));
  EXPECT_EQ(path, current_directory() + "/./tool");
  // An empty PATH entry is the current directory.
  EXPECT_TRUE(resolve_executable("tool", "/nonexistent:", &path, &err));
  EXPECT_EQ(path, current_directory() + "/./tool");
  ASSERT_EQ(chdir(old_cwd.c_str()), 0);
}

TEST(ResolveExecutable, UnsetPathUsesTheDefaultSearchPath) {
  std::string path;
  int err = 0;
  ASSERT_TRUE(resolve_executable("sh", nullptr, &path, &err));
  EXPECT_EQ(path.substr(path.size() - 3), "/sh");
}

// --- classify_executable -----------------------------------------------------------------

TEST(ClassifyExecutable, TellsPythonScriptsFromInterpretersAndWrappers) {
  TempDir d;
  EXPECT_EQ(classify_executable(d.file("a", "#!/usr/bin/python3\nprint(1)\n", 0755)), ExecutableKind::kPythonScript);
  EXPECT_EQ(classify_executable(d.file("b", "#!/usr/bin/env python3.12\n", 0755)), ExecutableKind::kPythonScript);
  EXPECT_EQ(classify_executable(d.file("c", "#! /usr/bin/env -S python3 -u\n", 0755)), ExecutableKind::kPythonScript);
  EXPECT_EQ(classify_executable(d.file("d", "#!/usr/bin/env bash\nexec python3 \"$@\"\n", 0755)),
            ExecutableKind::kWrapperScript);
  EXPECT_EQ(classify_executable(d.file("e", "#!/bin/sh\n", 0755)), ExecutableKind::kWrapperScript);
  EXPECT_EQ(classify_executable(d.file("f", "\x7f" "ELF\x02\x01\x01", 0755)), ExecutableKind::kBinary);
  EXPECT_EQ(classify_executable(d.path() + "/missing"), ExecutableKind::kUnreadable);
  EXPECT_EQ(classify_executable("/bin/sh"), ExecutableKind::kBinary);
}

// --- probe -------------------------------------------------------------------------------

TEST(ProbeOutput, Parses) {
  PythonInfo info;
  ASSERT_TRUE(parse_probe_output("cpython\n51118576\n3.12.1\n\n", &info));
  EXPECT_EQ(info.implementation, "cpython");
  EXPECT_EQ(info.hexversion, 0x030C01F0u);
  EXPECT_EQ(info.major(), 3);
  EXPECT_EQ(info.minor(), 12);
  EXPECT_EQ(info.version, "3.12.1");
  EXPECT_FALSE(info.free_threaded());
  ASSERT_TRUE(parse_probe_output("cpython\n51183856\n3.13.0\nt\n", &info));
  EXPECT_TRUE(info.free_threaded());

  EXPECT_FALSE(parse_probe_output("", &info));
  EXPECT_FALSE(parse_probe_output("cpython\n51118576\n3.12.1\n", &info));         // a line short
  EXPECT_FALSE(parse_probe_output("cpython\n51118576\n3.12.1\n\nextra\n", &info));  // a line more
  EXPECT_FALSE(parse_probe_output("cpython\n0x30c\n3.12.1\n\n", &info));
  EXPECT_FALSE(parse_probe_output("cpython\n99999999999\n3.12.1\n\n", &info));
  EXPECT_FALSE(parse_probe_output("cpython\n51118576\n3.12.1\n", &info));
  EXPECT_FALSE(parse_probe_output("cpython\n51118576\n3.12.1\nno newline", &info));
}

TEST(Probe, RealInterpreter) {
  std::string path;
  int err = 0;
  if (!resolve_executable("python3", "/usr/bin", &path, &err)) GTEST_SKIP() << "no /usr/bin/python3";
  const ProbeResult result = probe_python(path, "python3", std::chrono::milliseconds(20000));
  ASSERT_EQ(result.status, ProbeStatus::kOk) << result.detail;
  EXPECT_EQ(result.info.implementation, "cpython");
  EXPECT_EQ(result.info.major(), 3);
  EXPECT_EQ(result.info.version.rfind("3." + std::to_string(result.info.minor()), 0), 0u) << result.info.version;
}

TEST(Probe, NotPython) {
  const ProbeResult result = probe_python("/bin/false", "false", std::chrono::milliseconds(5000));
  EXPECT_EQ(result.status, ProbeStatus::kFailed);
  EXPECT_NE(result.detail.find("status 1"), std::string::npos) << result.detail;

  TempDir d;
  const std::string liar = d.file("liar", "#!/bin/sh\necho 'not python' >&2\nexit 2\n", 0755);
  const ProbeResult r2 = probe_python(liar, "liar", std::chrono::milliseconds(5000));
  EXPECT_EQ(r2.status, ProbeStatus::kFailed);
  EXPECT_NE(r2.detail.find("not python"), std::string::npos) << r2.detail;

  const std::string chatty = d.file("chatty", "#!/bin/sh\necho hello\n", 0755);
  const ProbeResult r3 = probe_python(chatty, "chatty", std::chrono::milliseconds(5000));
  EXPECT_EQ(r3.status, ProbeStatus::kFailed);
  EXPECT_NE(r3.detail.find("unexpected: hello"), std::string::npos) << r3.detail;
}

TEST(Probe, TimesOutAndKills) {
  TempDir d;
  const std::string slow = d.file("slow", "#!/bin/sh\nexec sleep 30\n", 0755);
  const auto start = std::chrono::steady_clock::now();
  const ProbeResult result = probe_python(slow, "slow", std::chrono::milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.status, ProbeStatus::kTimeout);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// --- agents ------------------------------------------------------------------------------

TEST(Agents, ListsInstalledVersions) {
  TempDir d;
  d.file("pyrewind-agent-cpython-3.12.so", "", 0644);
  d.file("pyrewind-agent-cpython-3.9.so", "", 0644);
  d.file("pyrewind-agent-cpython-3.10.so", "", 0644);
  d.file("pyrewind-agent-cpython-3.x.so", "", 0644);
  d.file("pyrewind-agent-cpython-3.11.so.bak", "", 0644);
  d.file("libpyrewind-preload.so", "", 0644);
  EXPECT_EQ(available_agent_minors(d.path()), (std::vector<int>{9, 10, 12}));
  EXPECT_EQ(describe_versions({9, 10, 12}), "3.9, 3.10 and 3.12");
  EXPECT_EQ(describe_versions({11}), "3.11");
  EXPECT_EQ(describe_versions({}), "none");
  EXPECT_TRUE(available_agent_minors(d.path() + "/missing").empty());
  EXPECT_EQ(agent_file_name(13), "pyrewind-agent-cpython-3.13.so");
}

TEST(Agents, DirectoryFromEnvironmentOrNextToTheExecutable) {
  TempDir d;
  setenv(kAgentDirEnv, d.path().c_str(), 1);
  EXPECT_EQ(agent_dir(), d.path());
  unsetenv(kAgentDirEnv);
  const std::string dir = agent_dir();
  EXPECT_EQ(dir.substr(dir.size() - 12), "lib/pyrewind") << dir;
}

// --- environment -------------------------------------------------------------------------

LaunchSpec test_spec() {
  LaunchSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh"};
  spec.preload_library = "/opt/pw/lib/pyrewind/libpyrewind-preload.so";
  spec.agent_dir = "/opt/pw/lib/pyrewind";
  spec.segment_name = "/pyrewind-1-abc";
  return spec;
}

TEST(Environment, WithoutUserPreload) {
  const char* env[] = {"A=1", "PYREWIND_SEGMENT=/stale", "B=2", "PYREWIND_SAVED_LD_PRELOAD=x", nullptr};
  EXPECT_EQ(build_environment(env, test_spec()),
            (std::vector<std::string>{"A=1", "B=2", "LD_PRELOAD=/opt/pw/lib/pyrewind/libpyrewind-preload.so",
                                      "PYREWIND_SEGMENT=/pyrewind-1-abc", "PYREWIND_AGENT_DIR=/opt/pw/lib/pyrewind"}));
}

TEST(Environment, UserPreloadKeepsItsPlaceAndIsSaved) {
  const char* env[] = {"A=1", "LD_PRELOAD=/lib/x.so /lib/y.so", "B=2", "LD_PRELOAD=/ignored.so", nullptr};
  EXPECT_EQ(build_environment(env, test_spec()),
            (std::vector<std::string>{"A=1",
                                      "LD_PRELOAD=/opt/pw/lib/pyrewind/libpyrewind-preload.so:/lib/x.so /lib/y.so",
                                      "B=2", "PYREWIND_SAVED_LD_PRELOAD=/lib/x.so /lib/y.so",
                                      "PYREWIND_SEGMENT=/pyrewind-1-abc", "PYREWIND_AGENT_DIR=/opt/pw/lib/pyrewind"}));
}

TEST(Environment, EmptyUserPreloadIsStillSaved) {
  const char* env[] = {"LD_PRELOAD=", nullptr};
  EXPECT_EQ(build_environment(env, test_spec()),
            (std::vector<std::string>{"LD_PRELOAD=/opt/pw/lib/pyrewind/libpyrewind-preload.so",
                                      "PYREWIND_SAVED_LD_PRELOAD=", "PYREWIND_SEGMENT=/pyrewind-1-abc",
                                      "PYREWIND_AGENT_DIR=/opt/pw/lib/pyrewind"}));
}

// --- the traced child --------------------------------------------------------------------

LaunchSpec shell(const std::string& script) {
  LaunchSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh", "-c", script};
  spec.preload_library = "libc.so.6";  // loads anywhere, does nothing
  spec.agent_dir = "/nonexistent";
  spec.segment_name = "/pyrewind-test";
  return spec;
}

int run_to_end(TracedChild& child) {
  while (!child.wait_exit(50'000'000)) {
  }
  return child.reap();
}

TEST(TracedChild, RunsWithTheContractEnvironmentAndPassesTheExitCode) {
  TempDir d;
  const std::string out = d.path() + "/env";
  std::string error;
  auto child = TracedChild::prepare(shell("env > " + out + "; exit 7"), &error);
  ASSERT_NE(child, nullptr) << error;
  EXPECT_GT(child->pid(), 0);
  int exec_errno = -1;
  ASSERT_TRUE(child->start(&error, &exec_errno)) << error;
  EXPECT_EQ(exec_errno, 0);
  const int status = run_to_end(*child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(exit_status_of(status), 7);
  const std::string env = read_file(out);
  EXPECT_NE(env.find("PYREWIND_SEGMENT=/pyrewind-test\n"), std::string::npos) << env;
  EXPECT_NE(env.find("PYREWIND_AGENT_DIR=/nonexistent\n"), std::string::npos);
  EXPECT_NE(env.find("LD_PRELOAD=libc.so.6"), std::string::npos);
}

TEST(TracedChild, NothingRunsBeforeStartAndCancelRunsNothing) {
  TempDir d;
  const std::string marker = d.path() + "/ran";
  std::string error;
  auto child = TracedChild::prepare(shell("touch " + marker), &error);
  ASSERT_NE(child, nullptr) << error;
  usleep(100'000);
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
  child->cancel();
  EXPECT_TRUE(child->wait_exit(0));
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
  child.reset();

  // Destroying a prepared child also never runs it.
  auto second = TracedChild::prepare(shell("touch " + marker), &error);
  ASSERT_NE(second, nullptr) << error;
  second.reset();
  usleep(100'000);
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
}

TEST(TracedChild, ExecFailureIsReported) {
  LaunchSpec spec = shell("true");
  spec.executable = "/nonexistent/python3";
  std::string error;
  auto child = TracedChild::prepare(spec, &error);
  ASSERT_NE(child, nullptr) << error;
  int exec_errno = 0;
  EXPECT_FALSE(child->start(&error, &exec_errno));
  EXPECT_EQ(exec_errno, ENOENT);
  EXPECT_FALSE(error.empty());
}

TEST(TracedChild, DeathBySignalIsReported) {
  std::string error;
  auto child = TracedChild::prepare(shell("kill -TERM $$"), &error);
  ASSERT_NE(child, nullptr) << error;
  int exec_errno = 0;
  ASSERT_TRUE(child->start(&error, &exec_errno)) << error;
  const int status = run_to_end(*child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(exit_status_of(status), -SIGTERM);
}

TEST(TracedChild, ForwardsSignalsIgnoresInterruptAndRestoresDispositions) {
  struct sigaction before {};
  sigaction(SIGINT, nullptr, &before);
  std::string error;
  TempDir d;
  const std::string ready = d.path() + "/ready";
  // The child's SIGINT disposition is pyrewind's original one (default), not the ignore.
  auto child = TracedChild::prepare(
      shell("trap 'exit 42' USR1; touch " + ready + "; while :; do sleep 0.01; done"), &error);
  ASSERT_NE(child, nullptr) << error;
  int exec_errno = 0;
  ASSERT_TRUE(child->start(&error, &exec_errno)) << error;
  struct sigaction during {};
  sigaction(SIGINT, nullptr, &during);
  EXPECT_EQ(during.sa_handler, SIG_IGN);
  for (int i = 0; i < 500 && access(ready.c_str(), F_OK) != 0; ++i) usleep(10'000);
  ASSERT_EQ(access(ready.c_str(), F_OK), 0);
  kill(getpid(), SIGINT);   // ignored by us
  kill(getpid(), SIGUSR1);  // forwarded
  const int status = run_to_end(*child);
  EXPECT_EQ(exit_status_of(status), 42);
  child.reset();
  struct sigaction after {};
  sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(TracedChild, SignalsIgnoredAtStartStayIgnored) {
  signal(SIGHUP, SIG_IGN);
  std::string error;
  auto child = TracedChild::prepare(shell("exit 0"), &error);
  ASSERT_NE(child, nullptr) << error;
  struct sigaction during {};
  sigaction(SIGHUP, nullptr, &during);
  EXPECT_EQ(during.sa_handler, SIG_IGN);
  sigaction(SIGTERM, nullptr, &during);
  EXPECT_NE(during.sa_handler, SIG_IGN);
  EXPECT_NE(during.sa_handler, SIG_DFL);
  child.reset();
  signal(SIGHUP, SIG_DFL);
}

TEST(TracedChild, SignalsBeforeStartAreForwardedOnceItRuns) {
  std::string error;
  TempDir d;
  const std::string ready = d.path() + "/ready";
  auto child = TracedChild::prepare(shell("sleep 5"), &error);
  ASSERT_NE(child, nullptr) << error;
  kill(getpid(), SIGTERM);  // blocked until start(): must not kill the test process
  int exec_errno = 0;
  ASSERT_TRUE(child->start(&error, &exec_errno)) << error;
  const auto begin = std::chrono::steady_clock::now();
  const int status = run_to_end(*child);
  EXPECT_EQ(exit_status_of(status), -SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(3));
}

TEST(TracedChild, OneAtATimeAndRejectsUnpreloadablePaths) {
  std::string error;
  LaunchSpec spec = shell("true");
  spec.preload_library = "/opt/my pyrewind/libpyrewind-preload.so";
  EXPECT_EQ(TracedChild::prepare(spec, &error), nullptr);
  EXPECT_NE(error.find("LD_PRELOAD"), std::string::npos);

  auto first = TracedChild::prepare(shell("true"), &error);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(TracedChild::prepare(shell("true"), &error), nullptr);
}

}  // namespace
}  // namespace pyrewind::injector
