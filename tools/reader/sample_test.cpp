// Sample packets (`pyrewind sample`) through the real writer and back through the reader: the
// schema, the writer's re-stated definitions (each chunk decodes alone), the summary's counts,
// and the timeline's kSample items, which leave event consumers untouched.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/reader/timeline.h"

namespace pyrewind::reader {
namespace {

using testing::RecordingBuilder;
using testing::TempDir;

struct Seen {
  uint64_t index, time;
  uint32_t thread;
  std::vector<std::string> stack;  // "function@file:line", innermost first
  bool gil, idle;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> samples_of(const Recording& rec, size_t start_chunk = 0, uint64_t* events = nullptr) {
  Timeline t(rec, start_chunk);
  std::vector<Seen> out;
  while (t.next()) {
    if (t.type() != ItemType::kSample) continue;
    const SampleStep& s = t.sample();
    Seen seen{s.index, s.time_ns, s.thread, {}, s.gil, s.idle};
    for (const SampleFrame& f : s.frames) {
      EXPECT_TRUE(f.code->known && f.code->resolved) << f.code->id;
      seen.stack.push_back(f.code->qualified_name + "@" + f.code->file + ":" + std::to_string(f.line));
    }
    out.push_back(seen);
  }
  EXPECT_EQ(t.error(), "");
  if (events) *events = t.events_read();
  return out;
}

v1::RecordingHeader sample_header() {
  v1::RecordingHeader h = testing::test_header();
  h.set_mode("sample");
  h.set_sample_rate_hz(250);
  return h;
}

// Two threads over three chunks; the second and third chunks use code objects and threads
// defined only in the first.
void write_recording(const std::string& path, bool finish) {
  RecordingBuilder b(path, sample_header());
  const uint64_t mod = b.code("/app/app.py", "<module>", 1, {});
  const uint64_t hot = b.code("/app/app.py", "hot", 10, {});
  const uint64_t nap = b.code("/app/lib.py", "nap", 3, {});
  b.thread(0, 100, "MainThread");
  b.thread(1, 101, "sleeper");
  b.sample(0, 1000, {hot, mod}, {12, 30}, true, false);
  b.sample(1, 1100, {nap}, {4}, false, true);
  b.writer().flush_chunk();
  b.sample(0, 5000, {hot, hot, mod}, {11, 13, 30}, true, false);
  b.writer().flush_chunk();
  b.sample(1, 9000, {}, {}, false, false);
  b.sample(0, 9000, {mod}, {31}, false, false);
  if (finish) {
    v1::RecordingSummary extras;
    extras.set_dropped_samples(7);
    extras.set_target_exited(true);
    ASSERT_TRUE(b.writer().finish(extras));
  }
}

const std::vector<Seen> kExpected = {
    {0, 1000, 0, {"hot@/app/app.py:12", "<module>@/app/app.py:30"}, true, false},
    {1, 1100, 1, {"nap@/app/lib.py:4"}, false, true},
    {2, 5000, 0, {"hot@/app/app.py:11", "hot@/app/app.py:13", "<module>@/app/app.py:30"}, true, false},
    {3, 9000, 1, {}, false, false},
    {4, 9000, 0, {"<module>@/app/app.py:31"}, false, false},
};

TEST(Samples, RoundTripThroughWriterAndTimeline) {
  TempDir dir;
  const std::string path = dir.file("s.rwd");
  write_recording(path, true);
  std::string error;
  auto rec = Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_TRUE(rec->finished());
  EXPECT_EQ(rec->header().mode(), "sample");
  EXPECT_EQ(rec->header().sample_rate_hz(), 250u);
  uint64_t events = 1;
  EXPECT_EQ(samples_of(*rec, 0, &events), kExpected);
  EXPECT_EQ(events, 0u);  // samples are not events

  const v1::RecordingSummary& s = rec->summary();
  EXPECT_EQ(s.sample_count(), 5u);
  EXPECT_EQ(s.dropped_samples(), 7u);
  EXPECT_EQ(s.event_count(), 0u);
  EXPECT_EQ(s.code_count(), 3u);
  ASSERT_EQ(s.threads_size(), 2);
  EXPECT_EQ(s.threads(0).samples(), 3u);
  EXPECT_EQ(s.threads(0).first_time_ns(), 1000u);
  EXPECT_EQ(s.threads(0).last_time_ns(), 9000u);
  EXPECT_EQ(s.threads(1).samples(), 2u);
  EXPECT_EQ(s.threads(1).name(), "sleeper");
  ASSERT_EQ(s.chunks_size(), 3);
  EXPECT_EQ(s.chunks(1).first_time_ns(), 5000u);  // a chunk's time range covers its samples
  EXPECT_EQ(s.chunks(2).last_time_ns(), 9000u);
}

TEST(Samples, EachChunkDecodesAlone) {
  TempDir dir;
  const std::string path = dir.file("s.rwd");
  write_recording(path, true);
  std::string error;
  auto rec = Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  for (size_t chunk = 1; chunk < 3; ++chunk) {
    std::vector<Seen> tail = samples_of(*rec, chunk);
    std::vector<Seen> expected(kExpected.begin() + (chunk == 1 ? 2 : 3), kExpected.end());
    for (Seen& seen : expected) seen.index -= chunk == 1 ? 2 : 3;  // indexes count from where reading started
    EXPECT_EQ(tail, expected) << "from chunk " << chunk;
  }
}

TEST(Samples, AnUnfinishedRecordingRebuildsTheSampleCounts) {
  TempDir dir;
  const std::string path = dir.file("s.rwd");
  write_recording(path, false);
  std::string error;
  auto rec = Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_FALSE(rec->finished());
  EXPECT_EQ(rec->summary().sample_count(), 5u);
  ASSERT_EQ(rec->summary().threads_size(), 2);
  EXPECT_EQ(rec->summary().threads(0).samples(), 3u);
  EXPECT_EQ(rec->summary().threads(1).first_time_ns(), 1100u);
  EXPECT_EQ(samples_of(*rec), kExpected);
}

}  // namespace
}  // namespace pyrewind::reader
