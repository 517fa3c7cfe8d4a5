// The page's step encoding: stacks kept, pushed and changed as the page's script expects
// (tools/html/page_data.h), and values in the page's own form.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/html/page.h"
#include "tools/html/page_data.h"
#include "tools/reader/test_util.h"
#include "tools/reader/timeline.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;

std::string page_value(const v1::Value& v) {
  std::string out;
  html::append_page_value(out, v);
  return out;
}

TEST(PageValue, KeepsPythonTypesApart) {
  EXPECT_EQ(page_value(none()), "null");
  EXPECT_EQ(page_value(integer(7)), "7");
  EXPECT_EQ(page_value(integer(int64_t{1} << 60)), "{\"t\":\"int\",\"v\":\"1152921504606846976\"}");
  EXPECT_EQ(page_value(real(1.0)), "{\"t\":\"float\",\"v\":\"1.0\"}");
  EXPECT_EQ(page_value(text("a</script>")), "\"a</script>\"");
  EXPECT_EQ(page_value(list(100, {integer(1), text("x")})), "{\"t\":\"list\",\"id\":100,\"n\":2,\"v\":[1,\"x\"]}");
  EXPECT_EQ(page_value(list(100, {integer(1)}, 5)), "{\"t\":\"list\",\"id\":100,\"n\":5,\"v\":[1],\"x\":1}");
  EXPECT_EQ(page_value(dict(7, {{text("k"), none()}})), "{\"t\":\"dict\",\"id\":7,\"n\":1,\"v\":[\"k\",null]}");
  EXPECT_EQ(page_value(object("Ledger", 9)), "{\"t\":\"Ledger\",\"id\":9,\"o\":1}");
  EXPECT_EQ(page_value(redacted()), "{\"t\":\"redacted\"}");
}

struct Encoded {
  std::vector<std::string> steps;
  std::string tables;
  std::vector<std::string> files;
};

Encoded encode(const std::string& path) {
  std::string error;
  auto rec = reader::Recording::open(path, &error);
  EXPECT_TRUE(rec) << error;
  Encoded e;
  if (!rec) return e;
  reader::Timeline timeline(*rec);
  html::PageEncoder encoder;
  while (timeline.next()) {
    if (timeline.type() != reader::ItemType::kEvent) continue;
    std::string row;
    encoder.append_step(row, timeline, timeline.step());
    e.steps.push_back(row);
  }
  encoder.finish(timeline);
  encoder.append_tables(e.tables);
  e.files = encoder.file_paths();
  return e;
}

TEST(PageEncoder, StacksAndLocalsAsDeltas) {
  TempDir dir;
  const std::string path = dir.file("a.rwd");
  {
    RecordingBuilder b(path);
    b.thread(0, 11, "MainThread");
    const uint64_t main = b.code("/src/app.py", "<module>", 1, {}, true);
    const uint64_t f = b.code("/src/app.py", "f", 3, {"a", "b"});
    const v1::Value shared = list(100, {integer(1), integer(2)});
    b.call(0, 10, main, 1, 0, {});
    b.line(0, 20, main, 6, 0, {named("xs", shared)});
    b.call(0, 30, f, 3, 1, {slot(0, shared), slot(1, shared)});
    b.line(0, 40, f, 4, 1, {slot(1, integer(7))});
    const v1::Value three = integer(3);
    b.ret(0, 50, f, 4, 1, &three);
    b.line(0, 60, main, 7, 0, {named("y", three)});
    b.call(0, 70, f, 3, 1, {slot(0, shared)});  // the same function again: a new frame
    ASSERT_TRUE(b.finish());
  }
  Encoded e = encode(path);
  ASSERT_EQ(e.steps.size(), 7u);
  // [seq, t, thread, kind, code, line, keep, push, set(, extra)]; values: 0 = the list, 1 = 7,
  // 2 = 3; names: 0 xs, 1 a, 2 b, 3 y.
  EXPECT_EQ(e.steps[0], "[0,10,0,1,0,1,0,[[0,0,1,[],[]]],0]");
  EXPECT_EQ(e.steps[1], "[1,20,0,2,0,6,1,0,[[0,1,[0],[0]]]]");
  EXPECT_EQ(e.steps[2], "[2,30,0,1,1,3,1,[[1,1,1,[1,2],[0,0]]],0]");
  EXPECT_EQ(e.steps[3], "[3,40,0,2,1,4,2,0,[[1,1,[[1,1]]]]]");
  EXPECT_EQ(e.steps[4], "[4,50,0,3,1,4,2,0,0,2]");  // the frame being left is still shown
  EXPECT_EQ(e.steps[5], "[5,60,0,2,0,7,1,0,[[0,1,[0,3],[0,2]]]]");
  EXPECT_EQ(e.steps[6], "[6,70,0,1,1,3,1,[[1,1,1,[1],[0]]],0]");
  EXPECT_EQ(e.files, std::vector<std::string>{"/src/app.py"});
  EXPECT_EQ(e.tables,
            "\"names\":[\"xs\",\"a\",\"b\",\"y\"],"
            "\"values\":[{\"t\":\"list\",\"id\":100,\"n\":2,\"v\":[1,2]},7,3],"
            "\"codes\":[[0,\"<module>\",1],[0,\"f\",3]],\"threads\":[[0,\"MainThread\"]]");
}

TEST(PageEncoder, ThreadsKeepTheirOwnStacks) {
  TempDir dir;
  const std::string path = dir.file("t.rwd");
  {
    RecordingBuilder b(path);
    b.thread(0, 11, "MainThread");
    b.thread(1, 12, "worker");
    const uint64_t f = b.code("/src/app.py", "f", 3, {"i"});
    b.call(0, 10, f, 3, 0, {slot(0, integer(0))});
    b.call(1, 11, f, 3, 0, {slot(0, integer(5))});
    b.line(0, 12, f, 4, 0, {slot(0, integer(1))});
    b.line(1, 13, f, 4, 0, {});
    ASSERT_TRUE(b.finish());
  }
  Encoded e = encode(path);
  ASSERT_EQ(e.steps.size(), 4u);
  EXPECT_EQ(e.steps[2], "[2,12,0,2,0,4,1,0,[[0,1,[[0,2]]]]]");
  EXPECT_EQ(e.steps[3], "[3,13,1,2,0,4,1,0,0]");
}

}  // namespace
}  // namespace pyrewind
