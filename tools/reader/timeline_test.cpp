// Reconstruction of stacks and locals from recorded deltas.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tools/reader/json.h"
#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/reader/timeline.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;
using reader::ItemType;
using reader::Recording;
using reader::Timeline;

std::string locals_json(const reader::Frame& f) {
  std::string out = "{";
  bool first = true;
  f.for_each_local([&](const std::string& name, const v1::Value& value) {
    if (!first) out += ",";
    first = false;
    reader::json::append_string(out, name);
    out += ":";
    reader::json::append_value(out, value);
  });
  return out + "}";
}

struct Seen {
  uint64_t seq;
  uint32_t thread;
  std::string kind;
  std::string func;
  uint32_t line;
  uint32_t depth;
  std::string locals;
  bool complete;
  std::string extra;  // return value / exception
};

std::vector<Seen> collect(const Recording& rec, size_t start_chunk = 0, std::vector<std::string>* others = nullptr) {
  Timeline t(rec, start_chunk);
  std::vector<Seen> out;
  while (t.next()) {
    if (t.type() != ItemType::kEvent) {
      if (others) {
        switch (t.type()) {
          case ItemType::kLoss: others->push_back("loss " + std::to_string(t.loss().thread())); break;
          case ItemType::kThreadStart: others->push_back("start " + t.thread_start().name()); break;
          case ItemType::kThreadEnd: others->push_back("end " + std::to_string(t.thread_end().thread())); break;
          case ItemType::kAgentStatus: others->push_back("status " + t.agent_status().message()); break;
          default: break;
        }
      }
      continue;
    }
    const reader::Step& s = t.step();
    Seen seen{s.seq, s.thread, reader::event_kind_name(s.kind), s.code->qualified_name, s.line, s.depth,
              locals_json(*s.frame), s.frame->locals_complete(), ""};
    if (s.return_value) reader::json::append_value(seen.extra, *s.return_value);
    if (s.exception) reader::json::append_exception(seen.extra, *s.exception);
    out.push_back(seen);
  }
  EXPECT_EQ(t.error(), "");
  return out;
}

std::unique_ptr<Recording> open_ok(const std::string& path) {
  std::string error;
  auto rec = Recording::open(path, &error);
  EXPECT_TRUE(rec) << error;
  return rec;
}

TEST(Timeline, ReconstructsLocalsAtEveryStep) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  std::vector<std::string> others;
  auto steps = collect(*rec, 0, &others);
  const std::string z = R"({"type":"list","id":4660,"len":2,"items":[1,2]})";
  const std::string self = R"({"type":"Ledger","id":32512})";
  const std::vector<Seen> expected = {
      {0, 0, "call", "<module>", 1, 0, "{}", true, ""},
      {1, 0, "line", "<module>", 1, 0, "{}", true, ""},
      {2, 0, "line", "<module>", 2, 0, R"({"x":1})", true, ""},
      {3, 0, "line", "<module>", 3, 0, R"({"x":2,"y":"hi"})", true, ""},
      {4, 0, "call", "Ledger.add", 10, 1, R"({"self":)" + self + R"(,"amount":5})", true, ""},
      {5, 0, "line", "Ledger.add", 11, 1, R"({"self":)" + self + R"(,"amount":5})", true, ""},
      {6, 0, "line", "Ledger.add", 12, 1, R"({"self":)" + self + R"(,"amount":5,"total":5})", true, ""},
      {7, 0, "exception", "Ledger.add", 12, 1, R"({"self":)" + self + R"(,"amount":5,"total":5})", true,
       R"({"type":"ValueError","message":"bad amount"})"},
      {8, 0, "exception_handled", "Ledger.add", 12, 1, R"({"self":)" + self + R"(,"amount":5,"total":5})", true,
       R"({"type":"ValueError","message":"bad amount"})"},
      {9, 0, "return", "Ledger.add", 13, 1, R"({"self":)" + self + R"(,"amount":5,"total":5})", true, "5"},
      {10, 1, "call", "work", 3, 0, R"({"n":3})", true, ""},
      {11, 1, "line", "work", 4, 0, R"({"n":3})", true, ""},
      {12, 0, "line", "<module>", 4, 0, R"({"x":2,"y":"hi","z":)" + z + "}", true, ""},
      {13, 1, "line", "work", 5, 0, R"({"n":3,"i":0,"acc":0})", true, ""},
      {14, 1, "line", "work", 5, 0, R"({"i":2,"acc":3})", true, ""},  // full state after the loss
      {15, 1, "return", "work", 6, 0, R"({"i":2,"acc":3})", true, ""},
      {16, 0, "line", "<module>", 5, 0, R"({"y":"hi","z":)" + z + "}", true, ""},
      {17, 0, "return", "<module>", 5, 0, R"({"y":"hi","z":)" + z + "}", true, ""},
  };
  ASSERT_EQ(steps.size(), expected.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    EXPECT_EQ(steps[i].seq, expected[i].seq);
    EXPECT_EQ(steps[i].thread, expected[i].thread);
    EXPECT_EQ(steps[i].kind, expected[i].kind);
    EXPECT_EQ(steps[i].func, expected[i].func);
    EXPECT_EQ(steps[i].line, expected[i].line);
    EXPECT_EQ(steps[i].depth, expected[i].depth);
    EXPECT_EQ(steps[i].locals, expected[i].locals);
    EXPECT_EQ(steps[i].complete, expected[i].complete);
    EXPECT_EQ(steps[i].extra, expected[i].extra);
  }
  EXPECT_EQ(others, (std::vector<std::string>{"start MainThread", "start worker", "loss 1", "end 1",
                                               "status tracing stopped: test"}));
}

TEST(Timeline, ResolvesCodeInfo) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  Timeline t(*rec);
  while (t.next()) {
    if (t.type() != ItemType::kEvent || t.step().kind != v1::EVENT_CALL || t.step().depth != 1) continue;
    const reader::CodeInfo* c = t.step().code;
    EXPECT_TRUE(c->known);
    EXPECT_TRUE(c->resolved);
    EXPECT_EQ(c->file, "/app/app.py");
    EXPECT_EQ(c->qualified_name, "Ledger.add");
    EXPECT_EQ(c->first_line, 10u);
    EXPECT_EQ(c->local_names, (std::vector<std::string>{"self", "amount", "total"}));
    EXPECT_FALSE(c->module_level);
    const reader::ThreadInfo* th = t.thread(0);
    ASSERT_TRUE(th);
    EXPECT_EQ(th->name, "MainThread");
    EXPECT_EQ(th->native_id, 1000u);
    ASSERT_EQ(th->stack.size(), 2u);
    EXPECT_EQ(th->stack[0].code()->qualified_name, "<module>");
    EXPECT_EQ(th->stack[1].code()->qualified_name, "Ledger.add");
    return;
  }
  FAIL() << "no call at depth 1";
}

// Each chunk re-states what it uses: a timeline started at the last chunk resolves names and
// threads without having seen the earlier chunks.
TEST(Timeline, ChunksDecodeAlone) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->summary().chunks_size(), 3);

  // Raw check: every code an event of a chunk uses is defined in that chunk, with its strings.
  reader::ChunkCursor cursor(*rec);
  while (cursor.next()) {
    v1::PacketBatch batch;
    ASSERT_TRUE(batch.ParseFromArray(cursor.data(), static_cast<int>(cursor.size())));
    std::set<uint64_t> strings, codes, threads;
    for (const auto& p : batch.packet()) {
      if (p.has_string_def()) strings.insert(p.string_def().id());
      if (p.has_code_def()) {
        const auto& c = p.code_def();
        EXPECT_TRUE(strings.count(c.file_name_id()));
        EXPECT_TRUE(strings.count(c.qualified_name_id()));
        for (uint64_t id : c.local_name_ids()) EXPECT_TRUE(strings.count(id));
        codes.insert(c.id());
      }
      if (p.has_thread_start()) threads.insert(p.thread_start().thread());
      if (p.has_event()) {
        EXPECT_TRUE(codes.count(p.event().code_id())) << "chunk " << cursor.info().index;
        EXPECT_TRUE(threads.count(p.event().thread())) << "chunk " << cursor.info().index;
      }
      if (p.has_loss()) {
        EXPECT_TRUE(threads.count(p.loss().thread()));
      }
    }
  }

  std::vector<std::string> others;
  auto steps = collect(*rec, 2, &others);
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].seq, 14u);
  EXPECT_EQ(steps[0].func, "work");
  EXPECT_EQ(steps[0].locals, R"({"i":2,"acc":3})");
  EXPECT_TRUE(steps[0].complete);  // a full state
  EXPECT_EQ(steps[2].seq, 16u);
  EXPECT_EQ(steps[2].func, "<module>");
  EXPECT_EQ(steps[2].locals, "{}");
  EXPECT_FALSE(steps[2].complete);  // this frame's earlier state is in other chunks
  EXPECT_EQ(others, (std::vector<std::string>{"start worker", "loss 1", "end 1", "start MainThread",
                                               "status tracing stopped: test"}));
}

TEST(Timeline, DictFramesKeepInsertionOrder) {
  TempDir dir;
  std::string path = dir.file("d.rwd");
  RecordingBuilder b(path);
  uint64_t mod = b.code("/m.py", "<module>", 1, {}, true);
  b.thread(0, 1, "MainThread");
  b.call(0, 1, mod, 1, 0, {named("a", integer(1)), named("b", integer(2)), named("c", integer(3))});
  b.line(0, 2, mod, 2, 0, {unbound_name("b")});
  b.line(0, 3, mod, 3, 0, {named("a", integer(10))});
  b.line(0, 4, mod, 4, 0, {named("b", integer(20))});
  b.line(0, 5, mod, 5, 0, {unbound_name("nonexistent")});
  // Many deletions force a compaction of the tombstones; order must survive it.
  std::vector<v1::Binding> many, gone;
  for (int i = 0; i < 40; ++i) many.push_back(named("t" + std::to_string(i), integer(i)));
  b.line(0, 6, mod, 6, 0, many);
  for (int i = 0; i < 40; ++i)
    if (i != 7) gone.push_back(unbound_name("t" + std::to_string(i)));
  b.line(0, 7, mod, 7, 0, gone);
  b.line(0, 8, mod, 8, 0, {named("a", integer(11)), named("t0", integer(0))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[0].locals, R"({"a":1,"b":2,"c":3})");
  EXPECT_EQ(steps[1].locals, R"({"a":1,"c":3})");
  EXPECT_EQ(steps[2].locals, R"({"a":10,"c":3})");
  EXPECT_EQ(steps[3].locals, R"({"a":10,"c":3,"b":20})");
  EXPECT_EQ(steps[4].locals, R"({"a":10,"c":3,"b":20})");
  EXPECT_EQ(steps[6].locals, R"({"a":10,"c":3,"b":20,"t7":7})");
  EXPECT_EQ(steps[7].locals, R"({"a":11,"c":3,"b":20,"t7":7,"t0":0})");
}

TEST(Timeline, FastLocalsFollowSlotOrderAndDeletion) {
  TempDir dir;
  std::string path = dir.file("f.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/f.py", "f", 1, {"a", "b", "c"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, integer(1))});
  b.line(0, 2, f, 2, 0, {slot(2, text("c")), slot(1, none())});
  b.line(0, 3, f, 3, 0, {unbound_slot(0)});
  b.line(0, 4, f, 4, 0, {slot(0, boolean(true)), slot(7, integer(9))});  // slot 7: not named by the code
  b.line(0, 5, f, 5, 0, {slot(1, integer(5))}, /*full_state=*/true);
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[0].locals, R"({"a":1})");
  EXPECT_EQ(steps[1].locals, R"({"a":1,"b":null,"c":"c"})");
  EXPECT_EQ(steps[2].locals, R"({"b":null,"c":"c"})");
  EXPECT_EQ(steps[3].locals, R"({"a":true,"b":null,"c":"c","<slot 7>":9})");
  EXPECT_EQ(steps[4].locals, R"({"b":5})");
}

// Before 3.11 an argument captured by a closure has two slots (co_varnames and co_cellvars);
// like frame.f_locals, the name shows once with the bound value.
TEST(Timeline, DuplicateSlotNamesShowOnce) {
  TempDir dir;
  std::string path = dir.file("c.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/c.py", "outer", 1, {"x", "y", "x"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(1, integer(2)), slot(2, integer(1))});
  b.line(0, 2, f, 2, 0, {slot(0, integer(5))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].locals, R"({"y":2,"x":1})");
  EXPECT_EQ(steps[1].locals, R"({"x":1,"y":2})");  // last bound slot wins, first position
}

TEST(Timeline, GeneratorsResumeWithAFreshFullState) {
  TempDir dir;
  std::string path = dir.file("g.rwd");
  RecordingBuilder b(path);
  uint64_t mod = b.code("/g.py", "<module>", 1, {}, true);
  uint64_t gen = b.code("/g.py", "gen", 1, {"n", "i"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, mod, 1, 0, {});
  b.call(0, 2, gen, 1, 1, {slot(0, integer(3))});
  b.line(0, 3, gen, 2, 1, {slot(1, integer(0))});
  v1::Value zero = integer(0);
  b.ret(0, 4, gen, 2, 1, &zero);  // yield
  b.line(0, 5, mod, 3, 0, {named("v", integer(0))});
  b.call(0, 6, gen, 2, 1, {slot(0, integer(3)), slot(1, integer(0))});  // resume
  b.line(0, 7, gen, 3, 1, {slot(1, integer(1))});
  b.ret(0, 8, gen, 3, 1, nullptr);  // unwinding: no value
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[3].extra, "0");
  EXPECT_EQ(steps[4].locals, R"({"v":0})");
  EXPECT_EQ(steps[5].locals, R"({"n":3,"i":0})");
  EXPECT_EQ(steps[6].locals, R"({"n":3,"i":1})");
  EXPECT_EQ(steps[7].extra, "");
}

// Lost records: the depth of later events is authoritative.
TEST(Timeline, ResyncsAfterLossAndDepthMismatch) {
  TempDir dir;
  std::string path = dir.file("l.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/l.py", "f", 1, {"a"});
  uint64_t g = b.code("/l.py", "g", 5, {"b"});
  uint64_t h = b.code("/l.py", "h", 9, {"c"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, integer(1))});
  b.call(0, 2, g, 5, 1, {slot(0, integer(2))});
  b.loss(0, 3, 300);                          // g's return and more were lost
  b.line(0, 3, f, 2, 0, {});                  // back in f: g is gone
  b.line(0, 4, h, 10, 2, {slot(0, integer(3))});  // h at depth 2 without its caller at depth 1
  b.ret(0, 5, h, 10, 2, nullptr);
  b.line(0, 6, f, 3, 0, {slot(0, integer(4))}, /*full_state=*/true);
  b.line(0, 7, g, 6, 0, {});                  // a different code at depth 0: a new frame
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  Timeline t(*rec);
  std::vector<std::pair<std::string, bool>> seen;
  std::vector<size_t> stack_sizes;
  while (t.next()) {
    if (t.type() != ItemType::kEvent) continue;
    seen.emplace_back(locals_json(*t.step().frame), t.step().frame->locals_complete());
    stack_sizes.push_back(t.thread(0)->stack.size());
  }
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[0], std::make_pair(std::string(R"({"a":1})"), true));
  EXPECT_EQ(seen[1], std::make_pair(std::string(R"({"b":2})"), true));
  EXPECT_EQ(seen[2], std::make_pair(std::string(R"({"a":1})"), false));  // maybe stale after the loss
  EXPECT_EQ(seen[3], std::make_pair(std::string(R"({"c":3})"), false));
  EXPECT_EQ(stack_sizes[3], 2u);  // f at 0, h at 2; depth 1 unknown
  EXPECT_EQ(stack_sizes[4], 1u);
  EXPECT_EQ(seen[5], std::make_pair(std::string(R"({"a":4})"), true));
  EXPECT_EQ(seen[6], std::make_pair(std::string("{}"), false));
}

// A container delta: `value` (a container) sent with its first `reused` items left out.
v1::Value delta(v1::Value value, uint64_t reused) {
  v1::Container* c = value.mutable_container();
  c->set_reused_items(reused);
  const int per_item = c->kind() == v1::CONTAINER_DICT ? 2 : 1;
  c->mutable_items()->DeleteSubrange(0, static_cast<int>(reused) * per_item);
  return value;
}

// What the agent sends for containers whose first items did not change: the reader rebuilds
// exactly the value a full encoding would have given.
TEST(Timeline, ContainerDeltasRebuildTheCompleteValue) {
  TempDir dir;
  std::string path = dir.file("delta.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/d.py", "f", 1, {"xs", "other"});
  uint64_t mod = b.code("/d.py", "<module>", 1, {}, true);
  b.thread(0, 1, "MainThread");
  b.call(0, 1, mod, 1, 0, {named("d", dict(9, {{text("a"), integer(1)}}))});
  b.call(0, 2, f, 1, 1, {slot(0, list(7, {integer(1), integer(2)}))});
  b.line(0, 3, f, 2, 1, {slot(0, delta(list(7, {integer(1), integer(2), integer(3)}), 2))});
  b.line(0, 4, f, 3, 1, {slot(0, delta(list(7, {integer(1), integer(2), integer(3)}, 5), 3))});
  b.line(0, 5, f, 4, 1, {slot(0, delta(list(7, {integer(1), integer(2), integer(3)}, 4), 3))});
  b.line(0, 6, f, 5, 1, {slot(0, delta(list(7, {integer(1), integer(9)}, 2), 1))});  // fewer than held
  b.line(0, 7, f, 6, 1, {slot(0, list(8, {integer(0)})), slot(1, integer(5))});    // rebound: full value
  b.ret(0, 8, f, 6, 1, nullptr);
  b.line(0, 9, mod, 2, 0, {named("d", delta(dict(9, {{text("a"), integer(1)}, {text("b"), none()}}), 1))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 9u);
  EXPECT_EQ(steps[1].locals, R"({"xs":{"type":"list","id":7,"len":2,"items":[1,2]}})");
  EXPECT_EQ(steps[2].locals, R"({"xs":{"type":"list","id":7,"len":3,"items":[1,2,3]}})");
  EXPECT_EQ(steps[3].locals, R"({"xs":{"type":"list","id":7,"len":5,"items":[1,2,3],"truncated":true}})");
  EXPECT_EQ(steps[4].locals, R"({"xs":{"type":"list","id":7,"len":4,"items":[1,2,3],"truncated":true}})");
  EXPECT_EQ(steps[5].locals, R"({"xs":{"type":"list","id":7,"len":2,"items":[1,9]}})");
  EXPECT_EQ(steps[6].locals, R"({"xs":{"type":"list","id":8,"len":1,"items":[0]},"other":5})");
  EXPECT_EQ(steps[8].locals, R"({"d":{"type":"dict","id":9,"len":2,"items":[["a",1],["b",null]]}})");
  for (const Seen& step : steps) EXPECT_TRUE(step.complete) << step.seq;
}

// A delta that has nothing to apply to (corrupt input, or a timeline started after the value
// it refers to) shows the container's header without items, marked truncated, and the frame
// as incomplete until a full state.
TEST(Timeline, UnresolvableContainerDeltasAreMarkedNotGuessed) {
  TempDir dir;
  std::string path = dir.file("bad.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/b.py", "f", 1, {"a", "b", "c", "d"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, delta(list(7, {integer(1), integer(2)}), 1)),
                         slot(1, list(8, {integer(1)})), slot(2, text("x")), slot(3, list(9, {integer(1)}))});
  b.line(0, 2, f, 2, 0, {slot(1, delta(list(80, {integer(1), integer(2)}), 1)),  // another id
                         slot(2, delta(list(10, {integer(1)}), 1)),              // was a str
                         slot(3, delta(list(9, {integer(1), integer(2), integer(3)}), 2))});  // holds 1
  v1::Value wrong_kind = delta(list(7, {integer(1)}), 1);
  wrong_kind.mutable_container()->set_kind(v1::CONTAINER_TUPLE);
  b.line(0, 3, f, 3, 0, {slot(0, list(7, {integer(4)}))});
  b.line(0, 4, f, 4, 0, {slot(0, wrong_kind)});
  b.line(0, 5, f, 5, 0, {slot(0, list(7, {integer(5)})), slot(1, list(8, {integer(6)})), slot(2, integer(0)),
                         slot(3, list(9, {}))},
         /*full_state=*/true);
  b.line(0, 6, f, 6, 0, {slot(0, delta(list(7, {integer(5), integer(6)}), 1))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 6u);
  const std::string unknown7 = R"({"type":"list","id":7,"len":2,"items":[],"truncated":true})";
  EXPECT_EQ(steps[0].locals, R"({"a":)" + unknown7 + R"(,"b":{"type":"list","id":8,"len":1,"items":[1]},"c":"x",)" +
                                 R"("d":{"type":"list","id":9,"len":1,"items":[1]}})");
  EXPECT_FALSE(steps[0].complete);
  EXPECT_EQ(steps[1].locals, R"({"a":)" + unknown7 + R"(,"b":{"type":"list","id":80,"len":2,"items":[],"truncated":true},)" +
                                 R"("c":{"type":"list","id":10,"len":1,"items":[],"truncated":true},)" +
                                 R"("d":{"type":"list","id":9,"len":3,"items":[],"truncated":true}})");
  EXPECT_FALSE(steps[1].complete);
  EXPECT_EQ(steps[3].locals.find(R"({"a":{"type":"tuple","id":7,"len":1,"items":[],"truncated":true},)"), 0u);
  EXPECT_FALSE(steps[3].complete);
  EXPECT_TRUE(steps[4].complete);
  EXPECT_EQ(steps[5].locals, R"({"a":{"type":"list","id":7,"len":2,"items":[5,6]},"b":{"type":"list","id":8,"len":1,)"
                             R"("items":[6]},"c":0,"d":{"type":"list","id":9,"len":0,"items":[]}})");
  EXPECT_TRUE(steps[5].complete);
}

// Deltas do not make chunks depend on each other more than deltas of locals already do: a
// timeline started mid-recording resolves deltas whose base it has seen, and marks the others.
TEST(Timeline, ContainerDeltasWhenStartingMidRecording) {
  TempDir dir;
  std::string path = dir.file("mid.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/m.py", "f", 1, {"xs", "ys"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, list(7, {integer(1)}))});
  ASSERT_TRUE(b.writer().flush_chunk());
  b.line(0, 2, f, 2, 0, {slot(0, delta(list(7, {integer(1), integer(2)}), 1)), slot(1, list(8, {integer(3)}))});
  b.line(0, 3, f, 3, 0, {slot(0, delta(list(7, {integer(1), integer(2)}, 3), 2)),
                         slot(1, delta(list(8, {integer(3), integer(4)}), 1))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->summary().chunks_size(), 2);
  auto whole = collect(*rec);
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(whole[2].locals, R"({"xs":{"type":"list","id":7,"len":3,"items":[1,2],"truncated":true},)"
                             R"("ys":{"type":"list","id":8,"len":2,"items":[3,4]}})");
  auto from_second = collect(*rec, 1);
  ASSERT_EQ(from_second.size(), 2u);
  EXPECT_EQ(from_second[1].locals, R"({"xs":{"type":"list","id":7,"len":3,"items":[],"truncated":true},)"
                                   R"("ys":{"type":"list","id":8,"len":2,"items":[3,4]}})");
  EXPECT_FALSE(from_second[1].complete);
}

TEST(Timeline, ThreadsHaveSeparateStacks) {
  TempDir dir;
  std::string path = dir.file("t.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/t.py", "f", 1, {"x"});
  b.thread(0, 1, "MainThread");
  b.thread(1, 2, "T1");
  b.call(0, 1, f, 1, 0, {slot(0, integer(0))});
  b.call(1, 2, f, 1, 0, {slot(0, integer(100))});
  b.call(0, 3, f, 1, 1, {slot(0, integer(1))});
  b.line(1, 4, f, 2, 0, {slot(0, integer(101))});
  b.line(0, 5, f, 2, 1, {});
  b.ret(0, 6, f, 2, 1, nullptr);
  b.line(0, 7, f, 2, 0, {});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  auto steps = collect(*rec);
  ASSERT_EQ(steps.size(), 7u);
  EXPECT_EQ(steps[3].locals, R"({"x":101})");
  EXPECT_EQ(steps[4].locals, R"({"x":1})");
  EXPECT_EQ(steps[6].locals, R"({"x":0})");
  EXPECT_EQ(steps[6].thread, 0u);
}

TEST(Timeline, UnknownCodeStillYieldsEvents) {
  TempDir dir;
  std::string path = dir.file("u.rwd");
  RecordingBuilder b(path);
  b.thread(0, 1, "MainThread");
  b.call(0, 1, 999, 1, 0, {slot(1, integer(1))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  Timeline t(*rec);
  while (t.next() && t.type() != ItemType::kEvent) {
  }
  ASSERT_EQ(t.type(), ItemType::kEvent);
  EXPECT_FALSE(t.step().code->known);
  EXPECT_EQ(t.step().code->id, 999u);
  EXPECT_EQ(locals_json(*t.step().frame), R"({"<slot 1>":1})");
}

}  // namespace
}  // namespace pyrewind
