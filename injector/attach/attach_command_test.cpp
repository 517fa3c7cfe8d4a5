// `pyrewind attach` itself (the built binary), against real interpreters but with the fake
// agent (attach/testing/fake_agent.cpp) in place of the real one: the command's flow, its
// refusals and their exit statuses. Recording real programs is the end-to-end suite's job.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "injector/attach/testing/test_util.h"
#include "injector/launch/agents.h"

namespace pyrewind::injector {
namespace {

using std::chrono::milliseconds;
using testing::Child;
using testing::running_untraced;
using testing::TempDir;

// Exit statuses of tools/pyrewind/commands.h.
constexpr int kUsage = 2, kIoError = 4, kNotPython = 5, kNoAgent = 6, kNoProcess = 7, kPermission = 8,
              kNotRunning = 9, kAttachFailed = 11, kAlreadyAttached = 12;

class AttachCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = testing::supported_python();
    if (python_.empty()) GTEST_SKIP() << "no Python 3.9+ installed";
    use_agent(PYREWIND_TEST_FAKE_AGENT);
  }
  // Every version's agent is `library` in the directory the command is pointed at.
  void use_agent(const std::string& library) {
    for (int minor = 9; minor <= 13; ++minor) {
      const std::string link = agents_.file(agent_file_name(minor));
      unlink(link.c_str());
      ASSERT_EQ(symlink(library.c_str(), link.c_str()), 0);
    }
  }
  std::unique_ptr<Child> attach(const std::vector<std::string>& arguments, uid_t uid = static_cast<uid_t>(-1)) {
    std::vector<std::string> argv{PYREWIND_BINARY, "attach"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    Child::Options options;
    options.env.emplace_back(kAgentDirEnv, agents_.path());
    options.uid = uid;
    return std::make_unique<Child>(argv, options);
  }
  std::unique_ptr<Child> start_python(const std::string& python = "") {
    auto child = std::make_unique<Child>(testing::sleeping_python(python.empty() ? python_ : python));
    EXPECT_EQ(child->read_line(), "ready");
    return child;
  }
  bool agent_loaded(pid_t pid) const {
    return testing::read_file("/proc/" + std::to_string(pid) + "/maps").find("attach_test_") != std::string::npos;
  }

  std::string python_;
  TempDir agents_, work_;
};

TEST_F(AttachCommand, RecordsDetachesAndAttachesAgain) {
  auto target = start_python();
  const std::string pid = std::to_string(target->pid());
  for (int round = 0; round < 2; ++round) {
    const std::string output = work_.file("run" + std::to_string(round) + ".rwd");
    auto command = attach({pid, "-o", output, "--duration", "0.2"});
    EXPECT_EQ(command->exit_code(), 0) << command->read_stderr();
    const std::string errors = command->read_stderr();
    EXPECT_NE(errors.find("attached to process " + pid), std::string::npos) << errors;
    EXPECT_NE(errors.find("detached; recorded 0 events"), std::string::npos) << errors;
    EXPECT_TRUE(running_untraced(target->pid()));
    Child info({PYREWIND_BINARY, "info", output});
    EXPECT_EQ(info.exit_code(), 0) << info.read_stderr();
    std::string text;
    for (std::string line; !(line = info.read_line(milliseconds(100))).empty();) text += line + "\n";
    EXPECT_NE(text.find("mode attach"), std::string::npos) << text;
    EXPECT_NE(text.find("PID:           " + pid), std::string::npos) << text;
  }
  EXPECT_EQ(access(("/dev/shm/pyrewind-attach-" + pid + ".lock").c_str(), F_OK), -1) << "lock file left behind";
}

TEST_F(AttachCommand, SecondConcurrentAttachIsRefused) {
  auto target = start_python();
  const std::string pid = std::to_string(target->pid());
  auto first = attach({pid, "-o", work_.file("first.rwd"), "--duration", "1.5"});
  ASSERT_NE(first->read_stderr("attached", milliseconds(10000)).find("attached"), std::string::npos)
      << first->read_stderr();
  auto second = attach({pid, "-o", work_.file("second.rwd")});
  EXPECT_EQ(second->exit_code(), kAlreadyAttached) << second->read_stderr();
  EXPECT_NE(second->read_stderr().find("already being recorded"), std::string::npos) << second->read_stderr();
  EXPECT_NE(access(work_.file("second.rwd").c_str(), F_OK), 0) << "the refused attach created its output";
  EXPECT_EQ(first->exit_code(), 0) << first->read_stderr();
}

TEST_F(AttachCommand, RefusalsHaveTheirOwnExitStatus) {
  auto gone = attach({"999999999", "-o", work_.file("x.rwd")});
  EXPECT_EQ(gone->exit_code(), kNoProcess);
  EXPECT_NE(gone->read_stderr().find("no such process"), std::string::npos) << gone->read_stderr();

  Child sleeper({"/bin/sleep", "30"});
  usleep(50000);
  auto not_python = attach({std::to_string(sleeper.pid()), "-o", work_.file("x.rwd")});
  EXPECT_EQ(not_python->exit_code(), kNotPython);
  EXPECT_NE(not_python->read_stderr().find("not a Python process"), std::string::npos) << not_python->read_stderr();

  EXPECT_EQ(attach({"0", "-o", work_.file("x.rwd")})->exit_code(), kUsage);

  auto target = start_python();
  const std::string pid = std::to_string(target->pid());
  kill(target->pid(), SIGSTOP);
  for (int i = 0; i < 200 && thread_state(target->pid(), target->pid()) != 'T'; ++i) usleep(5000);
  auto stopped = attach({pid, "-o", work_.file("x.rwd")});
  EXPECT_EQ(stopped->exit_code(), kNotRunning);
  EXPECT_NE(stopped->read_stderr().find("kill -CONT " + pid), std::string::npos) << stopped->read_stderr();
  EXPECT_EQ(thread_state(target->pid(), target->pid()), 'T') << "a stopped target stays stopped";
  kill(target->pid(), SIGCONT);

  // An output that cannot be written is found before the target is touched.
  auto unwritable = attach({pid, "-o", "/no/such/dir/x.rwd"});
  EXPECT_EQ(unwritable->exit_code(), kIoError);
  EXPECT_FALSE(agent_loaded(target->pid()));

  // An agent that cannot load: the loader's message is shown.
  use_agent(PYREWIND_TEST_UNDEFINED_AGENT);
  auto broken = attach({pid, "-o", work_.file("broken.rwd")});
  EXPECT_EQ(broken->exit_code(), kAttachFailed);
  EXPECT_NE(broken->read_stderr().find("undefined symbol"), std::string::npos) << broken->read_stderr();
  EXPECT_NE(access(work_.file("broken.rwd").c_str(), F_OK), 0) << "no empty recording is left behind";
  EXPECT_TRUE(running_untraced(target->pid()));
}

TEST_F(AttachCommand, UnsupportedVersionNamesTheBuiltOnesAndHowToBuildMore) {
  std::string old;
  for (const testing::Interpreter& interpreter : testing::installed_interpreters())
    if (interpreter.major == 3 && interpreter.minor == 8) old = interpreter.path;
  if (old.empty()) GTEST_SKIP() << "no Python 3.8 installed";
  unlink(agents_.file(agent_file_name(13)).c_str());
  auto target = start_python(old);
  auto command = attach({std::to_string(target->pid()), "-o", work_.file("x.rwd")});
  EXPECT_EQ(command->exit_code(), kNoAgent);
  const std::string errors = command->read_stderr();
  EXPECT_NE(errors.find("no pyrewind agent for Python 3.8."), std::string::npos) << errors;
  EXPECT_NE(errors.find("3.9, 3.10, 3.11 and 3.12"), std::string::npos) << errors;
  EXPECT_NE(errors.find("-DPYREWIND_PYTHONS="), std::string::npos) << errors;
}

TEST_F(AttachCommand, AnotherUsersProcessIsRefusedWithTheFix) {
  if (geteuid() != 0 || python_.rfind("/usr/", 0) != 0)
    GTEST_SKIP() << "needs root and a Python every user may run";
  Child::Options as_nobody;
  as_nobody.uid = 65534;
  Child target(testing::sleeping_python(python_), as_nobody);
  ASSERT_EQ(target.read_line(), "ready");
  chmod(work_.path().c_str(), 0777);
  auto command = attach({std::to_string(target.pid()), "-o", work_.file("x.rwd")}, 1);
  EXPECT_EQ(command->exit_code(), kPermission) << command->read_stderr();
  EXPECT_NE(command->read_stderr().find("permission denied"), std::string::npos) << command->read_stderr();
  EXPECT_NE(command->read_stderr().find("CAP_SYS_PTRACE"), std::string::npos) << command->read_stderr();
  EXPECT_TRUE(running_untraced(target.pid()));
}

}  // namespace
}  // namespace pyrewind::injector
