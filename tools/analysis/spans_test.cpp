#include "tools/analysis/spans.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pyrewind::analysis {
namespace {

// Spans as text: "B0 f@10" (thread 0 begins f at 10, `*` when found running, not called),
// "E0 f@20", "L0@30x5" (5 records lost).
class Log : public SpanSink {
 public:
  void begin(const Span& s) override {
    lines.push_back("B" + std::to_string(s.thread) + " " + s.code->qualified_name + (s.called ? "" : "*") + "@" +
                    std::to_string(s.start_ns));
  }
  void end(const Span& s, uint64_t t) override {
    lines.push_back("E" + std::to_string(s.thread) + " " + s.code->qualified_name + "@" + std::to_string(t));
  }
  void lost(uint32_t thread, uint64_t t, uint64_t records) override {
    lines.push_back("L" + std::to_string(thread) + "@" + std::to_string(t) + "x" + std::to_string(records));
  }
  std::vector<std::string> lines;
};

reader::CodeInfo code(uint64_t id, const std::string& name) {
  reader::CodeInfo c;
  c.id = id;
  c.qualified_name = name;
  c.first_line = 1;
  c.known = c.resolved = true;
  return c;
}

const reader::CodeInfo kMain = code(1, "main"), kF = code(2, "f"), kG = code(3, "g");

class Feeder {
 public:
  explicit Feeder(const Range& range = {}) : builder(range, log) {}
  bool ev(uint32_t kind, const reader::CodeInfo& c, uint32_t depth, uint64_t t, uint32_t thread = 0) {
    SpanEvent e;
    e.seq = seq_++;
    e.time_ns = t;
    e.thread = thread;
    e.kind = kind;
    e.depth = depth;
    e.line = 1;
    e.code = &c;
    return builder.on_event(e);
  }
  Log log;
  SpanBuilder builder;

 private:
  uint64_t seq_ = 0;
};

Range range(const std::string& from, const std::string& to, int64_t thread = -1) {
  Range r;
  std::string error;
  EXPECT_TRUE(Range::parse(from, to, thread, &r, &error)) << error;
  return r;
}

constexpr uint32_t kCall = v1::EVENT_CALL, kLine = v1::EVENT_LINE, kReturn = v1::EVENT_RETURN;

TEST(Spans, NestedCallsAndRecursion) {
  Feeder f;
  f.ev(kCall, kMain, 0, 0);
  f.ev(kLine, kMain, 0, 1);
  f.ev(kCall, kF, 1, 2);
  f.ev(kLine, kF, 1, 3);
  f.ev(kCall, kF, 2, 4);
  f.ev(kReturn, kF, 2, 5);
  f.ev(kReturn, kF, 1, 6);
  f.ev(kLine, kMain, 0, 7);
  f.ev(kReturn, kMain, 0, 8);
  f.builder.finish();
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"B0 main@0", "B0 f@2", "B0 f@4", "E0 f@5", "E0 f@6",
                                                   "E0 main@8"}));
  EXPECT_EQ(f.builder.first_time_ns(), 0u);
  EXPECT_EQ(f.builder.last_time_ns(), 8u);
}

TEST(Spans, DepthIsAuthoritative) {
  Feeder f;
  f.ev(kCall, kMain, 0, 0);
  f.ev(kCall, kF, 1, 10);
  f.ev(kCall, kG, 2, 20);
  // The returns of g and f were lost: main's next line closes them.
  f.ev(kLine, kMain, 0, 30);
  // A frame first seen by a line (its call was lost) opens there, not called.
  f.ev(kLine, kG, 1, 40);
  // Another code object at an open level replaces it.
  f.ev(kLine, kF, 1, 50);
  // A call at an open level of the same code (a new activation) closes the old one first.
  f.ev(kCall, kF, 1, 60);
  f.builder.on_thread_end(0);
  EXPECT_EQ(f.log.lines,
            (std::vector<std::string>{"B0 main@0", "B0 f@10", "B0 g@20", "E0 g@30", "E0 f@30", "B0 g*@40",
                                      "E0 g@50", "B0 f*@50", "E0 f@60", "B0 f@60", "E0 f@60", "E0 main@60"}));
}

TEST(Spans, TimeNeverGoesBack) {
  Feeder f;
  f.ev(kCall, kMain, 0, 100);
  f.ev(kCall, kF, 1, 90);  // a clock that stepped back
  f.ev(kReturn, kF, 1, 95);
  f.builder.finish();
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"B0 main@100", "B0 f@100", "E0 f@100", "E0 main@100"}));
}

TEST(Spans, RangeBySeqOpensRunningFramesAtItsStart) {
  Feeder f(range("2", "3"));
  EXPECT_FALSE(f.ev(kCall, kMain, 0, 0));
  EXPECT_FALSE(f.ev(kCall, kF, 1, 10));
  EXPECT_TRUE(f.ev(kLine, kF, 1, 20));   // seq 2
  EXPECT_TRUE(f.ev(kCall, kG, 2, 30));   // seq 3
  EXPECT_FALSE(f.builder.done());
  EXPECT_FALSE(f.ev(kReturn, kG, 2, 40));  // seq 4: past the end
  EXPECT_TRUE(f.builder.done());
  f.builder.finish();
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"B0 main*@20", "B0 f*@20", "B0 g@30", "E0 g@30", "E0 f@30",
                                                   "E0 main@30"}));
}

TEST(Spans, RangeByTimePerThread) {
  Feeder f(range("15ns", "35ns"));
  f.ev(kCall, kMain, 0, 0, 0);
  f.ev(kCall, kMain, 0, 5, 1);
  f.ev(kCall, kF, 1, 10, 0);
  f.ev(kLine, kF, 1, 20, 0);  // thread 0's first event in range
  f.ev(kCall, kG, 1, 30, 1);  // thread 1's first event in range: its main shows from 15
  f.ev(kReturn, kF, 1, 36, 0);  // after the range on thread 0
  f.ev(kReturn, kG, 1, 34, 1);  // thread 1's clock is behind; still inside
  f.builder.finish();
  EXPECT_EQ(f.log.lines,
            (std::vector<std::string>{"B0 main*@15", "B0 f*@15", "B1 main*@15", "B1 g@30", "E1 g@34", "E0 f@34",
                                      "E0 main@34", "E1 main@34"}));
}

TEST(Spans, ThreadFilterAndLosses) {
  Feeder f(range("", "", 1));
  EXPECT_FALSE(f.ev(kCall, kMain, 0, 0, 0));
  EXPECT_TRUE(f.ev(kCall, kF, 0, 1, 1));
  f.builder.on_loss(0, 9);  // another thread: not shown
  f.builder.on_loss(1, 7);
  f.ev(kReturn, kF, 0, 2, 1);
  f.builder.finish();
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"B1 f@1", "L1@1x7", "E1 f@2"}));
}

TEST(Spans, IdleThreadShowsOverTheRange) {
  Feeder f(range("2", ""));
  f.ev(kCall, kMain, 0, 0, 1);  // thread 1 blocks in main
  f.ev(kCall, kMain, 0, 1, 0);
  f.ev(kCall, kF, 1, 5, 0);
  f.ev(kReturn, kF, 1, 9, 0);
  f.builder.finish();
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"B0 main*@5", "B0 f@5", "E0 f@9", "E0 main@9", "B1 main*@5",
                                                   "E1 main@9"}));
}

TEST(Spans, NothingInRange) {
  Feeder f(range("100", ""));
  f.ev(kCall, kMain, 0, 0);
  f.builder.finish();
  EXPECT_FALSE(f.builder.started());
  EXPECT_TRUE(f.log.lines.empty());
}

TEST(Spans, FunctionName) {
  EXPECT_EQ(function_name(kF), "f");
  reader::CodeInfo unknown;
  unknown.id = 77;
  EXPECT_EQ(function_name(unknown), "<unknown code 77>");
}

}  // namespace
}  // namespace pyrewind::analysis
