// The loop body as the accumulation table sees it: from the source's indentation.
#include <gtest/gtest.h>

#include "tools/analysis/accumulation.h"

namespace pyrewind::analysis {
namespace {

TEST(BlockLastLine, FollowsIndentationSkippingBlankLinesAndComments) {
  const std::vector<std::string> source = {
      "def f(rows):",                    // 1
      "    total = 0",                   // 2
      "    for row in rows:",            // 3
      "        if row:",                 // 4
      "",                                // 5
      "            total += row",        // 6
      "# a comment at column 0",         // 7
      "        total -= 1",              // 8
      "    else:",                       // 9
      "        pass",                    // 10
      "    return total",                // 11
      "    for i in range(3): total += i",  // 12
      "if x:",                           // 13
      "\tfor x in y:",                   // 14: a tab is 8 columns
      "\t\tz = x",                       // 15
      "        w = 1",                   // 16: 8 spaces, as deep as one tab
  };
  EXPECT_EQ(block_last_line(source, 3), 8u);
  EXPECT_EQ(block_last_line(source, 4), 6u);
  EXPECT_EQ(block_last_line(source, 12), 12u);  // a one-line loop
  EXPECT_EQ(block_last_line(source, 14), 15u);
  EXPECT_EQ(block_last_line(source, 1), 12u);
  EXPECT_EQ(block_last_line(source, 0), std::nullopt);
  EXPECT_EQ(block_last_line(source, 17), std::nullopt);
}

}  // namespace
}  // namespace pyrewind::analysis
