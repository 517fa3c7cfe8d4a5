// The sample debugger over a synthetic sampled recording: samples as steps in time order (the
// file has one out of order), per-thread moves, breakpoints anywhere on the stack, goto by
// number and time, stacks with C frames, and the messages for what samples do not record.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/replay/sample_debugger.h"

namespace pyrewind::replay {
namespace {

using namespace pyrewind::testing;

class SampleDebuggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = dir_.file("app.py");
    std::string source;
    for (int i = 1; i <= 40; ++i) source += "line " + std::to_string(i) + "\n";
    write_file(app_, source);
    v1::RecordingHeader header = test_header();
    header.set_mode("sample");
    header.set_sample_rate_hz(250);
    const std::string path = dir_.file("s.rwd");
    {
      RecordingBuilder b(path, header);
      const uint64_t mod = b.code(app_, "<module>", 1, {}, true);
      const uint64_t hot = b.code(app_, "hot", 10, {});
      const uint64_t nap = b.code("/lib/lib.py", "nap", 3, {});
      const uint64_t add = b.code("libpython3.12.so", "PyNumber_Add", 0, {}, false, /*native=*/true);
      b.thread(0, 100, "MainThread");
      b.thread(1, 101, "sleeper");
      b.sample(0, 1000, {hot, mod}, {12, 30}, true, false);       // 0
      b.sample(1, 1100, {nap, mod}, {4, 40}, false, true);        // 1
      b.sample(0, 3000, {add, hot, mod}, {0, 13, 30}, true, false);  // 2
      b.writer().flush_chunk();
      b.sample(1, 2000, {nap, mod}, {5, 40}, false, true);        // 3: earlier than 2
      b.sample(0, 5000, {mod}, {31}, false, false);               // 4
      b.sample(0, 6000, {hot, mod}, {12, 32}, true, false);       // 5
      b.sample(0, 7000, {hot, mod}, {13, 32}, true, false);       // 6
      ASSERT_TRUE(b.finish());
    }
    std::string error;
    recording_ = reader::Recording::open(path, &error);
    ASSERT_TRUE(recording_) << error;
    debugger_ = std::make_unique<SampleDebugger>(*recording_);
    ASSERT_TRUE(debugger_->start());
    start_ = debugger_->take_output();
  }

  std::string run(const std::string& command) {
    debugger_->execute(command);
    return debugger_->take_output();
  }
  // The sample number a command's output ends at ("" when it shows no position).
  std::string at(const std::string& command) {
    const std::string out = run(command);
    const size_t p = out.rfind("[sample ");
    return p == std::string::npos ? "" : out.substr(p + 8, out.find(' ', p + 8) - p - 8);
  }

  TempDir dir_;
  std::string app_;
  std::unique_ptr<reader::Recording> recording_;
  std::unique_ptr<SampleDebugger> debugger_;
  std::string start_;
};

TEST_F(SampleDebuggerTest, StartsAtTheFirstSample) {
  EXPECT_EQ(start_,
            "Sampled recording: 7 samples of 2 thread(s), 250 a second per thread. A sample has the stack only, "
            "no locals.\n"
            "> hot (" + app_ + ":12)\n"
            "-> line 12\n"
            "[sample 0 of 7, +0.000001s, thread 0 \"MainThread\", GIL, running]\n");
}

TEST_F(SampleDebuggerTest, StepsGoThroughAllThreadsInTimeOrder) {
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(at("step"));
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "3", "2", "4", "5", "6"}));
  EXPECT_EQ(run("s").substr(0, 18), "End of recording.\n");
  seen.clear();
  for (int i = 0; i < 6; ++i) seen.push_back(at("back"));
  EXPECT_EQ(seen, (std::vector<std::string>{"5", "4", "2", "3", "1", "0"}));
  EXPECT_EQ(run("rs"), "Start of recording.\n");
}

TEST_F(SampleDebuggerTest, NextStaysOnTheThread) {
  EXPECT_EQ(at("next"), "2");
  EXPECT_EQ(at("n"), "4");
  EXPECT_EQ(at("thread 1"), "3");  // sleeper's latest sample by then (5000 ns)
  EXPECT_EQ(at("next"), "3");
  EXPECT_EQ(run("next").substr(0, 37), "End of recording (for this thread).\n>");
  EXPECT_EQ(at("rnext"), "1");
  EXPECT_EQ(run("rnext"), "Start of recording (for this thread).\n");
  EXPECT_EQ(at("thread 0"), "0");  // not sampled before 1100 ns but at 1000
  EXPECT_EQ(run("thread 7"), "No samples of thread 7 were recorded (threads lists them).\n");
}

TEST_F(SampleDebuggerTest, WhereShowsTheSampledStackInnermostFirst) {
  EXPECT_EQ(at("goto 2"), "2");
  EXPECT_EQ(run("where"),
            "Stack of thread 0 \"MainThread\" at sample 2, +0.000003s, GIL, running (innermost first):\n"
            "> #0 PyNumber_Add (libpython3.12.so)\n"
            "  #1 hot (" + app_ + ":13)\n"
            "    -> line 13\n"
            "  #2 <module> (" + app_ + ":30)\n"
            "    -> line 30\n");
  EXPECT_EQ(run("list 13,14"), "  13  -> line 13\n  14     line 14\n");  // the innermost Python frame's line
}

TEST_F(SampleDebuggerTest, BreakpointsStopWhereTheStackHoldsThePlace) {
  EXPECT_EQ(run("break hot"), "Breakpoint 1 at samples in hot\n");
  EXPECT_EQ(run("c"),
            "Breakpoint 1\n"
            "> PyNumber_Add (libpython3.12.so)\n"
            "-> line 13\n"  // the innermost Python frame's line
            "[sample 2 of 7, +0.000003s, thread 0 \"MainThread\", GIL, running]\n");
  EXPECT_EQ(at("c"), "5");
  EXPECT_EQ(at("c"), "6");
  EXPECT_EQ(run("c"), "No breakpoint is hit after this sample (the recording ends at sample 6).\n");
  EXPECT_EQ(at("rc"), "5");
  EXPECT_EQ(run("delete 1"), "Deleted 1.\n");
  EXPECT_EQ(run("break lib.py:5"), "Breakpoint 2 at lib.py:5\n");
  EXPECT_EQ(at("rc"), "3");
  EXPECT_EQ(run("rc"), "No breakpoint is hit before this sample.\n");
  EXPECT_EQ(run("break PyNumber_Add"), "Breakpoint 3 at samples in PyNumber_Add\n");
  EXPECT_EQ(at("c"), "2");
  EXPECT_EQ(run("break hot if total > 3"),
            "A sample records no locals, so a breakpoint condition cannot be tested: set it without 'if'.\n");
  EXPECT_EQ(run("info break"), "  2 break lib.py:5\n  3 break PyNumber_Add\n");
}

TEST_F(SampleDebuggerTest, GotoANumberOrATime) {
  EXPECT_EQ(at("goto #3"), "3");
  EXPECT_EQ(at("goto 2500ns"), "2");      // the first sample at or after then
  EXPECT_EQ(at("goto -1500ns"), "3");     // from here (3000 ns)
  EXPECT_EQ(at("goto +3us"), "4");        // from 2000 ns
  EXPECT_EQ(at("goto -1s"), "0");
  const std::string past = run("goto 99");
  EXPECT_EQ(past.substr(0, 34), "The recording has samples 0 to 6.\n");
  EXPECT_NE(past.find("[sample 6 of 7"), std::string::npos);
  EXPECT_EQ(run("goto 1s").substr(0, 40), "The recording ends before +1.000000s.\n> ");
  EXPECT_EQ(run("goto soon").substr(0, 7), "Usage: ");
}

TEST_F(SampleDebuggerTest, ReturnLeavesTheRunOfTheFunction) {
  EXPECT_EQ(at("return"), "4");  // sample 2 still runs hot (under a C call)
  EXPECT_EQ(at("goto 6"), "6");
  EXPECT_EQ(at("rreturn"), "5");
  EXPECT_EQ(run("rreturn"), "This is the thread's first sample in this run of the function.\n");
  EXPECT_EQ(run("return"), "End of recording: the function is running at the thread's last sample.\n");
}

TEST_F(SampleDebuggerTest, SamplesHaveNoLocals) {
  for (const char* command : {"print x", "p x", "locals", "watch x", "history x"})
    EXPECT_EQ(run(command),
              "A sample records the stack only, no locals: print, locals, watch and history need a trace "
              "recording (pyrewind record).\n")
        << command;
}

TEST_F(SampleDebuggerTest, ThreadsAndInfo) {
  EXPECT_EQ(run("threads"),
            "* thread 0 \"MainThread\" (native id 100, 5 samples): this sample\n"
            "  thread 1 \"sleeper\" (native id 101, 2 samples): not sampled yet (first sample at +0.000001s)\n");
  at("goto 3");
  EXPECT_EQ(run("threads"),
            "  thread 0 \"MainThread\" (native id 100, 5 samples): sample 0 at hot (" + app_ +
                ":12), GIL, running\n"
            "* thread 1 \"sleeper\" (native id 101, 2 samples): this sample\n");
  const std::string info = run("info");
  EXPECT_NE(info.find("Mode:      sample, 250 samples a second per thread"), std::string::npos) << info;
  EXPECT_NE(info.find("Samples:   7 of 2 thread(s)"), std::string::npos) << info;
  EXPECT_NE(info.find("Position:  sample 3, +0.000002s, thread 1 \"sleeper\"\n"), std::string::npos) << info;
}

TEST(SampleDebugger, ARecordingWithoutSamplesHasNoStep) {
  TempDir dir;
  v1::RecordingHeader header = test_header();
  header.set_mode("sample");
  const std::string path = dir.file("empty.rwd");
  {
    RecordingBuilder b(path, header);
    ASSERT_TRUE(b.finish());
  }
  std::string error;
  auto recording = reader::Recording::open(path, &error);
  ASSERT_TRUE(recording) << error;
  SampleDebugger debugger(*recording);
  EXPECT_FALSE(debugger.start());
  EXPECT_EQ(debugger.take_output(), "The recording has no readable sample.\n");
}

}  // namespace
}  // namespace pyrewind::replay
