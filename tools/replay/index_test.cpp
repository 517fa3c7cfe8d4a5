// The replay index: a timeline started from any chunk's checkpoint sees exactly what a
// timeline read from the start sees there; the cache is reused, and rebuilt when it is stale
// or damaged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "tools/reader/json.h"
#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/replay/index.h"

namespace pyrewind::replay {
namespace {

using namespace pyrewind::testing;
using reader::ItemType;

// Every event from the timeline's position on, with its full reconstructed state.
std::vector<std::string> steps(reader::Timeline& t, uint64_t from_seq) {
  std::vector<std::string> out;
  while (t.next()) {
    if (t.type() != ItemType::kEvent || t.step().seq < from_seq) continue;
    const reader::Step& s = t.step();
    std::string text = std::to_string(s.seq) + " " + s.code->qualified_name + ":" + std::to_string(s.line) +
                       " complete=" + std::to_string(s.frame->locals_complete()) + " frame_line=" +
                       std::to_string(s.frame->line()) + " {";
    s.frame->for_each_local([&](const std::string& name, const v1::Value& value) {
      text += name + "=";
      reader::json::append_value(text, value);
      text += " ";
    });
    text += "} stack:";
    if (const reader::ThreadInfo* info = t.thread(s.thread))
      for (const reader::Frame& f : info->stack) text += " " + f.code()->qualified_name + "@" + std::to_string(f.line());
    out.push_back(text);
  }
  return out;
}

std::unique_ptr<reader::Recording> open_ok(const std::string& path) {
  std::string error;
  auto rec = reader::Recording::open(path, &error);
  EXPECT_TRUE(rec) << error;
  return rec;
}

TEST(ReplayIndex, EveryChunkStartsWithTheStateReadFromTheStart) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  ASSERT_GE(rec->summary().chunks_size(), 3);
  ReplayIndex index(*rec);
  ASSERT_EQ(index.chunk_count(), static_cast<size_t>(rec->summary().chunks_size()));
  for (size_t chunk = 0; chunk < index.chunk_count(); ++chunk) {
    reader::Timeline from_start(*rec);
    auto from_checkpoint = index.timeline_at(chunk);
    const uint64_t first = rec->summary().chunks(static_cast<int>(chunk)).first_seq();
    const auto expected = steps(from_start, first);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(steps(*from_checkpoint, 0), expected) << "chunk " << chunk;
  }
  EXPECT_EQ(index.chunk_of_seq(0), 0u);
  EXPECT_EQ(index.chunk_of_seq(rec->summary().event_count() - 1), index.chunk_count() - 1);
}

TEST(ReplayIndex, ChunkContentsNameCodesLinesAndThreads) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ReplayIndex index(*rec);
  std::set<std::string> lines_seen;
  reader::Timeline t(*rec);
  while (t.next())
    if (t.type() == ItemType::kEvent && t.step().kind == v1::EVENT_LINE)
      lines_seen.insert(t.step().code->qualified_name + ":" + std::to_string(t.step().line));
  std::set<std::string> indexed;
  std::set<uint32_t> threads;
  for (size_t chunk = 0; chunk < index.chunk_count(); ++chunk) {
    for (const v1::CodeInChunk& code : index.contents(chunk).codes()) {
      const v1::IndexedCode* named = index.code(code.code_id());
      ASSERT_TRUE(named);
      for (uint32_t line : code.lines()) indexed.insert(named->qualified_name() + ":" + std::to_string(line));
    }
    for (uint32_t thread : index.contents(chunk).threads()) threads.insert(thread);
  }
  EXPECT_EQ(indexed, lines_seen);
  EXPECT_EQ(threads, (std::set<uint32_t>{0, 1}));
}

TEST(ReplayIndex, CacheIsReusedAndRebuiltWhenStaleOrDamaged) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  {
    auto rec = open_ok(dir.file("a.rwd"));
    ReplayIndex built(*rec);
    EXPECT_FALSE(built.loaded_from_cache());
    EXPECT_EQ(built.cache_path(), dir.file("a.rwdi"));
    struct stat st {};
    ASSERT_EQ(::stat(dir.file("a.rwdi").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // it holds recorded values
    ReplayIndex loaded(*rec);
    EXPECT_TRUE(loaded.loaded_from_cache());
    EXPECT_EQ(loaded.chunk_count(), built.chunk_count());
  }
  // Damaged in every way a file can be: each byte flipped in turn, or cut anywhere.
  reader::quiet_protobuf_utf8_errors();  // flipped bytes make invalid UTF-8 that protobuf logs
  const std::string good = read_file(dir.file("a.rwdi"));
  auto rec = open_ok(dir.file("a.rwd"));
  for (size_t at = 0; at < good.size(); at += 7) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    write_file(dir.file("a.rwdi"), at % 2 ? bad : good.substr(0, at));
    ReplayIndex index(*rec);
    ASSERT_GE(index.chunk_count(), 1u);
    for (size_t chunk = 0; chunk < index.chunk_count(); ++chunk) {
      auto t = index.timeline_at(chunk);
      while (t->next()) {
      }
    }
  }
  // A recording that changed: the cache no longer matches it.
  write_file(dir.file("a.rwdi"), good);
  write_sample(dir.file("a.rwd"), false);
  auto changed = open_ok(dir.file("a.rwd"));
  ReplayIndex rebuilt(*changed);
  EXPECT_FALSE(rebuilt.loaded_from_cache());
}

}  // namespace
}  // namespace pyrewind::replay
