#include "tools/analysis/range.h"

#include <gtest/gtest.h>

namespace pyrewind::analysis {
namespace {

Position parse_ok(const std::string& text) {
  Position p;
  std::string error;
  EXPECT_TRUE(parse_position(text, &p, &error)) << text << ": " << error;
  return p;
}

TEST(Range, ParsesSeqsAndTimes) {
  EXPECT_FALSE(parse_ok("1200").is_time());
  EXPECT_EQ(parse_ok("1200").value, 1200u);
  EXPECT_EQ(parse_ok("#7").value, 7u);
  EXPECT_FALSE(parse_ok("#7").is_time());
  EXPECT_TRUE(parse_ok("1.5s").is_time());
  EXPECT_EQ(parse_ok("1.5s").value, 1500000000u);
  EXPECT_EQ(parse_ok("+200ms").value, 200000000u);
  EXPECT_EQ(parse_ok("40us").value, 40000u);
  EXPECT_EQ(parse_ok("900ns").value, 900u);
  EXPECT_EQ(parse_ok("0s").value, 0u);
}

TEST(Range, RejectsMalformedPositions) {
  for (const char* bad : {"", "#", "1.5", "s", "ms", "1..2s", ".s", "1.5m", "-3", "#x", "+12", "1e3s",
                          "99999999999999999999999", "20000000000s"}) {
    Position p;
    std::string error;
    EXPECT_FALSE(parse_position(bad, &p, &error)) << bad;
    EXPECT_NE(error.find("neither"), std::string::npos) << bad;
  }
}

TEST(Range, ParseChecksOrderAndThread) {
  Range r;
  std::string error;
  EXPECT_FALSE(Range::parse("20", "10", -1, &r, &error));
  EXPECT_NE(error.find("empty"), std::string::npos);
  EXPECT_FALSE(Range::parse("2s", "1s", -1, &r, &error));
  // Different kinds cannot be compared before reading: accepted.
  EXPECT_TRUE(Range::parse("2s", "10", -1, &r, &error));
  EXPECT_FALSE(Range::parse("", "", int64_t{1} << 40, &r, &error));
  ASSERT_TRUE(Range::parse("", "", 3, &r, &error));
  EXPECT_FALSE(r.from || r.to);
  EXPECT_TRUE(r.selects_thread(3));
  EXPECT_FALSE(r.selects_thread(0));
  ASSERT_TRUE(Range::parse("", "", -1, &r, &error));
  EXPECT_TRUE(r.selects_thread(0));
}

TEST(Range, LocatesInclusiveEnds) {
  Range r;
  std::string error;
  ASSERT_TRUE(Range::parse("10", "20", -1, &r, &error));
  EXPECT_EQ(r.locate(9, 999), Where::kBefore);
  EXPECT_EQ(r.locate(10, 0), Where::kInside);
  EXPECT_EQ(r.locate(20, 0), Where::kInside);
  EXPECT_EQ(r.locate(21, 0), Where::kAfter);
  EXPECT_FALSE(r.over_at(20));
  EXPECT_TRUE(r.over_at(21));

  ASSERT_TRUE(Range::parse("1us", "2us", -1, &r, &error));
  EXPECT_EQ(r.locate(0, 999), Where::kBefore);
  EXPECT_EQ(r.locate(0, 1000), Where::kInside);
  EXPECT_EQ(r.locate(0, 2000), Where::kInside);
  EXPECT_EQ(r.locate(0, 2001), Where::kAfter);
  EXPECT_FALSE(r.over_at(1u << 30));  // threads are not in time order in the file
}

}  // namespace
}  // namespace pyrewind::analysis
