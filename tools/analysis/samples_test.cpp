#include "tools/analysis/samples.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pyrewind::analysis {
namespace {

reader::CodeInfo code(uint64_t id, const std::string& name) {
  reader::CodeInfo c;
  c.id = id;
  c.qualified_name = name;
  c.known = c.resolved = true;
  return c;
}

const reader::CodeInfo kMain = code(1, "main"), kF = code(2, "f"), kG = code(3, "g");

// Stack innermost first, as recorded.
reader::SampleStep sample(uint64_t index, uint64_t time, std::vector<std::pair<const reader::CodeInfo*, uint32_t>> stack,
                          uint32_t thread = 0) {
  reader::SampleStep s;
  s.index = index;
  s.time_ns = time;
  s.thread = thread;
  for (const auto& [c, line] : stack) s.frames.push_back({c, line});
  return s;
}

TEST(SampleStats, OwnIsTheInnermostFrameTotalCountsEachFunctionOncePerSample) {
  SampleStats stats;
  stats.add(sample(0, 0, {{&kF, 5}, {&kF, 6}, {&kMain, 1}}));  // recursion: f counts once in total
  stats.add(sample(1, 10, {{&kG, 9}, {&kF, 6}, {&kMain, 1}}));
  stats.add(sample(2, 20, {}));
  EXPECT_EQ(stats.samples(), 3u);
  const auto& f = stats.functions();
  EXPECT_EQ(f.at(kF.id).own, 1u);
  EXPECT_EQ(f.at(kF.id).total, 2u);
  EXPECT_EQ(f.at(kG.id).own, 1u);
  EXPECT_EQ(f.at(kMain.id).own, 0u);
  EXPECT_EQ(f.at(kMain.id).total, 2u);
  const auto& lines = stats.lines();
  EXPECT_EQ(lines.at({kF.id, 6}).own, 0u);
  EXPECT_EQ(lines.at({kF.id, 6}).total, 2u);
  EXPECT_EQ(lines.at({kF.id, 5}).own, 1u);
}

class Log : public SpanSink {
 public:
  void begin(const Span& s) override {
    lines.push_back("B" + std::to_string(s.depth) + " " + s.code->qualified_name + "@" + std::to_string(s.start_ns));
  }
  void end(const Span& s, uint64_t t) override {
    lines.push_back("E" + std::to_string(s.depth) + " " + s.code->qualified_name + "@" + std::to_string(t));
  }
  std::vector<std::string> lines;
};

TEST(SampleSpans, FramesThatStayTheSameStayOneSpan) {
  Log log;
  SpanBuilder builder(Range{}, log);
  SampleSpans spans(builder);
  spans.add(sample(0, 0, {{&kF, 5}, {&kMain, 1}}));
  spans.add(sample(1, 10, {{&kF, 6}, {&kMain, 1}}));            // same frames: nothing changes
  spans.add(sample(2, 20, {{&kG, 9}, {&kF, 6}, {&kMain, 1}}));  // g called
  spans.add(sample(3, 30, {{&kMain, 2}}));                      // back in main
  spans.add(sample(4, 40, {{&kG, 3}, {&kMain, 2}}));            // another callee at level 1
  builder.finish();
  EXPECT_EQ(log.lines, (std::vector<std::string>{"B0 main@0", "B1 f@0", "B2 g@20", "E2 g@30", "E1 f@30", "B1 g@40",
                                                 "E1 g@40", "E0 main@40"}));
}

}  // namespace
}  // namespace pyrewind::analysis
