// The page as written: the viewer around the data, script text that no recorded string can
// end early, ranges by seq and by time, and the cut at max_steps.
#include <gtest/gtest.h>

#include <string>

#include "tools/html/page.h"
#include "tools/reader/output.h"
#include "tools/reader/test_util.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;

// Ten line events of one frame, 100 ns apart, the last binding a string that tries to end the
// data's <script> element.
std::string sample(const TempDir& dir) {
  const std::string path = dir.file("p.rwd");
  RecordingBuilder b(path);
  b.thread(0, 11, "MainThread");
  const uint64_t main = b.code("/nonexistent/app.py", "<module>", 1, {}, true);
  b.call(0, 100, main, 1, 0, {});
  for (uint32_t i = 1; i < 9; ++i) b.line(0, 100 + 100 * i, main, i, 0, {named("i", integer(i))});
  b.line(0, 1000, main, 9, 0, {named("s", text("</script><!--<script>"))});
  EXPECT_TRUE(b.finish());
  return path;
}

struct Written {
  std::string page;
  html::PageResult result;
};

Written write(const std::string& recording_path, const html::PageOptions& options, const TempDir& dir) {
  std::string error;
  auto rec = reader::Recording::open(recording_path, &error);
  EXPECT_TRUE(rec) << error;
  Written w;
  reader::OutputFile out;
  EXPECT_TRUE(out.open(dir.file("p.html")));
  EXPECT_TRUE(html::write_page(*rec, options, out, &w.result));
  EXPECT_TRUE(out.close());
  w.page = read_file(dir.file("p.html"));
  return w;
}

std::string steps_of(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"pyrewind-steps\">";
  const size_t begin = page.find(open) + open.size();
  return page.substr(begin, page.find("</script>", begin) - begin);
}

TEST(Page, WholeRecording) {
  TempDir dir;
  Written w = write(sample(dir), {}, dir);
  EXPECT_EQ(w.result.steps, 10u);
  EXPECT_EQ(w.result.first_seq, 0u);
  EXPECT_EQ(w.result.last_seq, 9u);
  EXPECT_FALSE(w.result.limited);
  EXPECT_EQ(w.page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(w.page.find("id=\"pyrewind-tables\""), std::string::npos);
  EXPECT_EQ(w.page.substr(w.page.size() - 8), "</html>\n");
  // Only the page's three script elements (steps, tables, viewer) end; the string arrives escaped.
  size_t ends = 0;
  for (size_t at = w.page.find("</script>"); at != std::string::npos; at = w.page.find("</script>", at + 1)) ++ends;
  EXPECT_EQ(ends, 3u);
  EXPECT_EQ(w.page.find("<!--<script>"), std::string::npos);
  EXPECT_NE(w.page.find("\\u003c/script>\\u003c!--\\u003cscript>"), std::string::npos);
  EXPECT_NE(w.page.find("\"unavailable\":\"No such file or directory\""), std::string::npos);
}

TEST(Page, RangesBySeqAndTime) {
  TempDir dir;
  const std::string path = sample(dir);
  html::PageOptions by_seq;
  by_seq.from = analysis::Position{analysis::Position::Kind::kSeq, 3};
  by_seq.to = analysis::Position{analysis::Position::Kind::kSeq, 5};
  Written w = write(path, by_seq, dir);
  EXPECT_EQ(w.result.steps, 3u);
  EXPECT_EQ(steps_of(w.page).rfind("[[3,400,", 0), 0u);

  html::PageOptions by_time;
  by_time.from = analysis::Position{analysis::Position::Kind::kTime, 650};
  by_time.to = analysis::Position{analysis::Position::Kind::kTime, 900};
  w = write(path, by_time, dir);
  EXPECT_EQ(w.result.first_seq, 6u);
  EXPECT_EQ(w.result.last_seq, 8u);
}

TEST(Page, CutAtMaxSteps) {
  TempDir dir;
  const std::string path = sample(dir);
  html::PageOptions options;
  options.max_steps = 4;
  options.from = analysis::Position{analysis::Position::Kind::kSeq, 2};
  Written w = write(path, options, dir);
  EXPECT_EQ(w.result.steps, 4u);
  EXPECT_TRUE(w.result.limited);
  EXPECT_EQ(w.result.last_seq, 5u);
  EXPECT_EQ(w.result.next_seq, 6u);
  const std::string message = html::limit_message("p.rwd", options, w.result);
  EXPECT_NE(message.find("more than 4 steps"), std::string::npos) << message;
  EXPECT_NE(message.find("seq 2 to 5"), std::string::npos) << message;
  EXPECT_NE(message.find("pyrewind html p.rwd --from 6 -o next.html"), std::string::npos) << message;
  EXPECT_NE(w.page.find("more than 4 steps"), std::string::npos);  // the page says it too
}

}  // namespace
}  // namespace pyrewind
