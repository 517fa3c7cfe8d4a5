#include "tools/analysis/stats.h"

#include <gtest/gtest.h>

#include "tools/analysis/scan.h"
#include "tools/reader/test_util.h"

namespace pyrewind::analysis {
namespace {

using namespace pyrewind::testing;

v1::Value tuple(std::vector<v1::Value> items) {
  v1::Value v = list(9, std::move(items));
  v.mutable_container()->set_kind(v1::CONTAINER_TUPLE);
  return v;
}

TEST(Stats, TypeNames) {
  EXPECT_EQ(type_name(none()), "None");
  EXPECT_EQ(type_name(boolean(true)), "bool");
  EXPECT_EQ(type_name(integer(3)), "int");
  EXPECT_EQ(type_name(real(1.5)), "float");
  EXPECT_EQ(type_name(text("a")), "str");
  EXPECT_EQ(type_name(object("Ledger", 5)), "Ledger");
  EXPECT_EQ(type_name(redacted()), "");
  EXPECT_EQ(type_name(list(1, {})), "list");
  EXPECT_EQ(type_name(list(1, {integer(1), text("a"), integer(2)})), "list[int | str]");
  EXPECT_EQ(type_name(dict(2, {{text("a"), integer(1)}, {text("b"), none()}})), "dict[str, int | None]");
  EXPECT_EQ(type_name(tuple({integer(1), text("a")})), "tuple[int, str]");
  EXPECT_EQ(type_name(tuple(std::vector<v1::Value>(9, integer(1)))), "tuple[int, ...]");
  // Nesting is named down to three levels, then by the container's kind.
  EXPECT_EQ(type_name(list(1, {list(2, {list(3, {list(4, {integer(1)})})})})), "list[list[list[list]]]");
}

TEST(Stats, TypeSetIsBounded) {
  TypeSet set;
  for (int i = 0; i < 10; ++i) set.add("T" + std::to_string(i % 9));
  EXPECT_EQ(set.names.size(), TypeSet::kMax);
  EXPECT_TRUE(set.more);
  EXPECT_EQ(set.join(), "T0 | T1 | T2 | T3 | T4 | T5 | T6 | T7 | ...");
}

class StatsOfRecording : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("r.rwd");
    RecordingBuilder b(path_);
    b.thread(0, 100, "MainThread");
    main_ = b.code("/src/a.py", "<module>", 1, {}, true);
    fib_ = b.code("/src/a.py", "fib", 3, {"n"});
    gen_ = b.code("/src/a.py", "gen", 7, {"xs"});
    const v1::Value one = integer(1), word = text("x");
    b.call(0, 0, main_, 1, 0, {});
    b.line(0, 1, main_, 1, 0, {});
    b.call(0, 2, fib_, 3, 1, {slot(0, integer(2))});
    b.line(0, 3, fib_, 4, 1, {});
    b.call(0, 4, fib_, 3, 2, {slot(0, integer(1))});
    b.line(0, 5, fib_, 4, 2, {});
    b.ret(0, 6, fib_, 4, 2, &one);
    b.line(0, 8, fib_, 5, 1, {});
    b.ret(0, 9, fib_, 5, 1, &word);
    b.line(0, 10, main_, 2, 0, {});
    b.call(0, 11, gen_, 7, 1, {slot(0, list(5, {real(1.0)}))});
    b.ret(0, 12, gen_, 8, 1, &one);
    b.call(0, 13, gen_, 8, 1, {slot(0, list(5, {real(1.0)}))});  // a resume, at its yield
    b.ret(0, 14, gen_, 8, 1, nullptr);                             // left by an exception
    b.ret(0, 16, main_, 2, 0, nullptr);
    ASSERT_TRUE(b.finish());
  }

  // Runs the collector over the recording in `range`.
  void collect(const Range& range = {}) {
    std::string error;
    recording_ = reader::Recording::open(path_, &error);
    ASSERT_TRUE(recording_) << error;
    timeline_ = std::make_unique<reader::Timeline>(*recording_);
    SpanBuilder builder(range, stats_);
    Progress progress("test", 0);
    scan(*recording_, *timeline_, builder, progress, [&](const reader::Step& s) {
      stats_.on_step(s);
      return true;
    });
    ASSERT_TRUE(timeline_->error().empty()) << timeline_->error();
  }

  const LineStats& line(uint64_t code, uint32_t number) { return stats_.lines().at({code, number}); }

  TempDir dir_;
  std::string path_;
  uint64_t main_ = 0, fib_ = 0, gen_ = 0;
  std::unique_ptr<reader::Recording> recording_;
  std::unique_ptr<reader::Timeline> timeline_;
  StatsCollector stats_;
};

TEST_F(StatsOfRecording, Functions) {
  collect();
  EXPECT_EQ(stats_.events(), 15u);
  const FunctionStats& fib = stats_.functions().at(fib_);
  EXPECT_EQ(fib.calls, 2u);
  EXPECT_EQ(fib.total_ns, 7u);  // the recursive call adds nothing to the outer one
  EXPECT_EQ(fib.self_ns, 7u);   // 2 (inner) + 7 - 2 (outer)
  ASSERT_EQ(fib.arguments.size(), 1u);
  EXPECT_EQ(fib.arguments[0].first, "n");
  EXPECT_EQ(fib.arguments[0].second.join(), "int");
  EXPECT_EQ(fib.returns.join(), "int | str");
  EXPECT_FALSE(fib.resumed);

  const FunctionStats& main = stats_.functions().at(main_);
  EXPECT_EQ(main.calls, 1u);
  EXPECT_EQ(main.total_ns, 16u);
  EXPECT_EQ(main.self_ns, 16u - 7u - 1u - 1u);
  EXPECT_TRUE(main.arguments.empty());
  EXPECT_TRUE(main.returns.names.empty());  // a module's "return" is not a function's

  const FunctionStats& gen = stats_.functions().at(gen_);
  EXPECT_EQ(gen.calls, 2u);  // each resume, as cProfile counts them
  EXPECT_TRUE(gen.resumed);
  ASSERT_EQ(gen.arguments.size(), 1u);
  EXPECT_EQ(gen.arguments[0].second.join(), "list[float]");  // from the entry only
  EXPECT_EQ(gen.returns.join(), "int");
}

TEST_F(StatsOfRecording, Lines) {
  collect();
  EXPECT_EQ(line(fib_, 4).hits, 2u);
  EXPECT_EQ(line(fib_, 4).time_ns, 1u + 5u);  // inner 5..6, outer 3..8 (with its call)
  EXPECT_EQ(line(fib_, 4).self_ns, 5u);
  EXPECT_EQ(line(fib_, 5).hits, 1u);
  EXPECT_EQ(line(fib_, 5).time_ns, 1u);
  EXPECT_EQ(line(main_, 1).hits, 1u);
  EXPECT_EQ(line(main_, 1).time_ns, 9u);
  EXPECT_EQ(line(main_, 1).self_ns, 3u);  // 1..2, the call to fib's first line 2..3, 9..10
  EXPECT_EQ(line(main_, 2).time_ns, 6u);
  EXPECT_EQ(line(main_, 2).self_ns, 6u);
  EXPECT_EQ(stats_.lines().size(), 4u);  // gen ran no line
}

TEST_F(StatsOfRecording, Range) {
  Range range;
  std::string error;
  ASSERT_TRUE(Range::parse("5", "8", -1, &range, &error)) << error;  // inner fib's line .. outer's return
  collect(range);
  EXPECT_EQ(stats_.events(), 4u);
  const FunctionStats& fib = stats_.functions().at(fib_);
  EXPECT_EQ(fib.calls, 0u);  // both activations began before the range
  EXPECT_EQ(fib.total_ns, 4u);  // from the range start (5) to the outer return (9)
  EXPECT_EQ(line(fib_, 5).hits, 1u);
  EXPECT_EQ(stats_.lines().count({main_, 2}), 0u);
}

}  // namespace
}  // namespace pyrewind::analysis
