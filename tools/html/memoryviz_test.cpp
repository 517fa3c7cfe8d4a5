// MemoryViz documents: frames map names to numbers, aliases share one, nested containers refer
// to their items' boxes, values without an id are drawn once per distinct value.
#include <gtest/gtest.h>

#include "tools/html/memoryviz.h"
#include "tools/reader/test_util.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;

TEST(MemoryViz, AliasesShareOneObject) {
  const v1::Value inner = list(200, {text("a")});
  const v1::Value outer = list(100, {integer(1), inner, integer(1)});
  const v1::Value seven = integer(7);
  const v1::Value flag = boolean(true);
  html::VizFrame main{"<module>", {{"xs", &outer}, {"ys", &outer}}};
  html::VizFrame f{"f", {{"a", &inner}, {"n", &seven}, {"ok", &flag}}};
  // Numbered as met, innermost frame first, a container before its items.
  EXPECT_EQ(html::memoryviz_json({main, f}),
            "[{\"type\":\".frame\",\"name\":\"<module>\",\"id\":null,\"value\":{\"xs\":5,\"ys\":5}},\n"
            "{\"type\":\".frame\",\"name\":\"f\",\"id\":null,\"value\":{\"a\":1,\"n\":3,\"ok\":4}},\n"
            "{\"type\":\"str\",\"id\":2,\"value\":\"a\"},\n"
            "{\"type\":\"list\",\"id\":1,\"value\":[2]},\n"
            "{\"type\":\"int\",\"id\":3,\"value\":7},\n"
            "{\"type\":\"bool\",\"id\":4,\"value\":true},\n"
            "{\"type\":\"int\",\"id\":6,\"value\":1},\n"
            "{\"type\":\"list\",\"id\":5,\"value\":[6,1,6]}]\n");
}

TEST(MemoryViz, DictsAndOtherObjects) {
  const v1::Value d = dict(2, {{text("k"), none()}});
  const v1::Value obj = object("Ledger", 1);
  html::VizFrame main{"<module>", {{"d", &d}, {"ledger", &obj}}};
  EXPECT_EQ(html::memoryviz_json({main}),
            "[{\"type\":\".frame\",\"name\":\"<module>\",\"id\":null,\"value\":{\"d\":1,\"ledger\":4}},\n"
            "{\"type\":\"str\",\"id\":2,\"value\":\"k\"},\n"
            "{\"type\":\"None\",\"id\":3,\"value\":\"None\"},\n"
            "{\"type\":\"dict\",\"id\":1,\"value\":{\"2\":3}},\n"
            "{\"type\":\".class\",\"name\":\"Ledger\",\"id\":4,\"value\":{}}]\n");
}

TEST(MemoryViz, StateAtAStepOfARecording) {
  TempDir dir;
  const std::string path = dir.file("m.rwd");
  {
    RecordingBuilder b(path);
    b.thread(0, 11, "MainThread");
    const uint64_t main = b.code("/src/app.py", "<module>", 1, {}, true);
    const uint64_t f = b.code("/src/app.py", "f", 3, {"a"});
    const v1::Value shared = list(100, {});
    b.call(0, 10, main, 1, 0, {});
    b.line(0, 20, main, 2, 0, {named("xs", shared)});
    b.call(0, 30, f, 3, 1, {slot(0, shared)});
    const v1::Value none_value = none();
    b.ret(0, 40, f, 3, 1, &none_value);
    b.line(0, 50, main, 3, 0, {});
    ASSERT_TRUE(b.finish());
  }
  std::string error;
  auto rec = reader::Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  std::string doc;
  ASSERT_EQ(html::memoryviz_at(*rec, 3, &doc, &error), html::StepLookup::kFound) << error;  // the RETURN: f still shown
  EXPECT_EQ(doc,
            "[{\"type\":\".frame\",\"name\":\"<module>\",\"id\":null,\"value\":{\"xs\":1}},\n"
            "{\"type\":\".frame\",\"name\":\"f\",\"id\":null,\"value\":{\"a\":1}},\n"
            "{\"type\":\"list\",\"id\":1,\"value\":[]}]\n");
  ASSERT_EQ(html::memoryviz_at(*rec, 4, &doc, &error), html::StepLookup::kFound) << error;
  EXPECT_EQ(doc.find("\"f\""), std::string::npos);
  EXPECT_EQ(html::memoryviz_at(*rec, 5, &doc, &error), html::StepLookup::kNoSuchStep);
  EXPECT_EQ(error, "the recording has no step 5 (it has 5 steps, numbered from 0)");
}

}  // namespace
}  // namespace pyrewind
