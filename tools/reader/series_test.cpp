// Series of files (--rotate) and flight-recorder windows (--ring): written by the real writer,
// read back as one recording.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "proto/recording/series.h"
#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/reader/timeline.h"

namespace pyrewind::reader {
namespace {

using testing::RecordingBuilder;
using testing::TempDir;
using testing::integer;
using testing::slot;
using testing::text;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// A loop in one frame: `n` LINE events binding i (and a string that compresses less well).
void loop(RecordingBuilder& b, uint64_t code, uint64_t first, uint64_t n, uint64_t* time) {
  for (uint64_t i = first; i < first + n; ++i)
    b.line(0, (*time)++, code, 3 + i % 2, 1,
           {slot(0, integer(static_cast<int64_t>(i))), slot(1, text(std::to_string(i * 7919)))});
}

struct Seen {
  std::vector<uint64_t> seqs;
  int64_t last_i = -1;
  size_t last_stack = 0;
};

Seen read_all(const Recording& rec) {
  Seen seen;
  Timeline timeline(rec);
  while (timeline.next()) {
    if (timeline.type() != ItemType::kEvent) continue;
    const Step& s = timeline.step();
    seen.seqs.push_back(s.seq);
    if (const v1::Value* i = s.frame->find_local("i")) seen.last_i = i->int_value();
    seen.last_stack = timeline.thread(s.thread)->stack.size();
  }
  EXPECT_EQ(timeline.error(), "");
  return seen;
}

TEST(SeriesNames, PartsAndTheirNumbers) {
  EXPECT_EQ(recording::series_part_path("/d/app.rwd", 0), "/d/app.rwd");
  EXPECT_EQ(recording::series_part_path("/d/app.rwd", 3), "/d/app.3.rwd");
  EXPECT_EQ(recording::series_part_path("out.bin", 2), "out.bin.2");
  EXPECT_EQ(recording::series_part_number("app.rwd", "app.12.rwd"), 12u);
  EXPECT_EQ(recording::series_part_number("app.rwd", "app.rwd"), 0u);
  EXPECT_EQ(recording::series_part_number("app.rwd", "app.01.rwd"), 0u);
  EXPECT_EQ(recording::series_part_number("app.rwd", "app.x.rwd"), 0u);
  EXPECT_EQ(recording::series_part_number("app.rwd", "app.2.rwdi"), 0u);
  EXPECT_EQ(recording::series_part_number("out.bin", "out.bin.7"), 7u);
}

class Series : public ::testing::Test {
 protected:
  // Writes 6000 events through a writer with `output`; returns their count.
  uint64_t write(const collector::OutputOptions& output) {
    RecordingBuilder b(base, testing::test_header(), output);
    const uint64_t mod = b.code("/app/m.py", "<module>", 1, {}, true);
    const uint64_t f = b.code("/app/m.py", "f", 2, {"i", "s"});
    b.thread(0, 100, "MainThread");
    uint64_t time = 1;
    b.call(0, time++, mod, 1, 0, {});
    b.call(0, time++, f, 2, 1, {});
    loop(b, f, 0, 6000, &time);
    EXPECT_TRUE(b.finish());
    return b.events();
  }

  TempDir dir;
  std::string base = dir.file("app.rwd");
};

TEST_F(Series, RotatedFilesReadAsOneRecording) {
  collector::OutputOptions output;
  output.rotate_bytes = 16 << 10;
  const uint64_t events = write(output);
  ASSERT_TRUE(exists(recording::series_part_path(base, 2)));
  uint64_t parts_events = 0;
  for (uint64_t n = 1; exists(recording::series_part_path(base, n)); ++n) {
    const std::string part = recording::series_part_path(base, n);
    EXPECT_LE(size_of(part), output.rotate_bytes);
    std::string error;
    auto alone = Recording::open(part, &error);  // a part alone is a whole recording
    ASSERT_TRUE(alone) << error;
    EXPECT_TRUE(alone->finished());
    EXPECT_EQ(alone->part_paths().size(), 1u);
    parts_events += alone->summary().event_count();
  }
  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_TRUE(rec->finished()) << rec->damage();
  EXPECT_GT(rec->part_paths().size(), 2u);
  EXPECT_EQ(rec->summary().event_count(), events);
  EXPECT_LT(parts_events, events);
  EXPECT_TRUE(rec->summary().target_exited());
  ASSERT_EQ(rec->summary().threads_size(), 1);
  EXPECT_EQ(rec->summary().threads(0).events(), events);
  const Seen seen = read_all(*rec);
  ASSERT_EQ(seen.seqs.size(), events);
  for (uint64_t k = 0; k < events; ++k) ASSERT_EQ(seen.seqs[k], k);
  EXPECT_EQ(seen.last_i, 5999);
  EXPECT_EQ(seen.last_stack, 2u);  // the stack carried across the files

  // A reader starting at any chunk of the index, in any file, reads on to the end.
  const int chunks = rec->summary().chunks_size();
  Timeline middle(*rec, static_cast<size_t>(chunks / 2));
  uint64_t last = 0;
  while (middle.next())
    if (middle.type() == ItemType::kEvent) last = middle.step().seq;
  EXPECT_EQ(last, events - 1);
}

TEST_F(Series, MaxTotalKeepsTheNewestFiles) {
  collector::OutputOptions output;
  output.rotate_bytes = 16 << 10;
  output.max_total_bytes = 48 << 10;
  const uint64_t events = write(output);
  EXPECT_FALSE(exists(base));
  std::string error;
  auto rec = Recording::open(base, &error);  // the base name, deleted, still names the series
  ASSERT_TRUE(rec) << error;
  EXPECT_LE(rec->file_size(), output.max_total_bytes);
  const Seen seen = read_all(*rec);
  ASSERT_FALSE(seen.seqs.empty());
  EXPECT_GT(seen.seqs.front(), 0u);
  EXPECT_EQ(seen.seqs.back(), events - 1);
  EXPECT_EQ(seen.last_i, 5999);
}

TEST_F(Series, NumberedFilesOfAnotherRecordingAreLeftOut) {
  collector::OutputOptions output;
  output.rotate_bytes = 16 << 10;
  write(output);
  ASSERT_TRUE(exists(recording::series_part_path(base, 1)));
  v1::RecordingHeader other = testing::test_header();
  other.set_start_monotonic_ns(other.start_monotonic_ns() + 1);
  RecordingBuilder b(base, other);  // a plain recording over app.rwd; app.N.rwd stay
  const uint64_t mod = b.code("/app/m.py", "<module>", 1, {}, true);
  b.thread(0, 100, "MainThread");
  b.call(0, 1, mod, 1, 0, {});
  ASSERT_TRUE(b.finish());
  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_EQ(rec->part_paths().size(), 1u);
  EXPECT_EQ(rec->summary().event_count(), 1u);
}

TEST_F(Series, AMissingOrBrokenPartEndsTheSeriesThere) {
  collector::OutputOptions output;
  output.rotate_bytes = 16 << 10;
  write(output);
  testing::write_file(recording::series_part_path(base, 2), "PYRWREC\n garbage");
  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_TRUE(rec->damaged());
  EXPECT_NE(rec->damage().find("app.2.rwd"), std::string::npos) << rec->damage();
  EXPECT_EQ(rec->part_paths().size(), 2u);
  const Seen seen = read_all(*rec);
  EXPECT_EQ(seen.seqs.size(), rec->summary().event_count());
}

// The flight recorder: chunks kept compressed in memory, bounded, written on demand.
TEST(FlightRecorder, KeepsOnlyTheNewestAndWritesNothingUntilAWindow) {
  TempDir dir;
  const std::string base = dir.file("fr.rwd");
  collector::OutputOptions output;
  output.ring_bytes = 32 << 10;
  RecordingBuilder b(base, testing::test_header(), output);
  const uint64_t f = b.code("/app/m.py", "f", 2, {"i", "s"});
  b.thread(0, 100, "MainThread");
  uint64_t time = 1;
  b.call(0, time++, f, 2, 1, {});
  loop(b, f, 0, 30000, &time);
  b.writer().flush_chunk();
  // The ring holds its bound (and the newest chunk, whatever its size).
  EXPECT_LE(b.writer().ring_bytes_held(), 2 * output.ring_bytes);
  EXPECT_GT(b.writer().ring_bytes_held(), 0u);
  EXPECT_FALSE(exists(base));

  ASSERT_TRUE(b.writer().write_window("test"));
  EXPECT_EQ(b.writer().ring_bytes_held(), 0u);
  EXPECT_EQ(b.writer().current_path(), base);
  EXPECT_FALSE(b.writer().write_window("nothing new"));
  loop(b, f, 30000, 100, &time);
  ASSERT_TRUE(b.writer().write_window("second"));
  EXPECT_EQ(b.writer().current_path(), recording::series_part_path(base, 1));
  EXPECT_EQ(b.writer().windows_written(), 2u);
  ASSERT_TRUE(b.finish());
  EXPECT_FALSE(exists(recording::series_part_path(base, 2)));  // the end writes no window

  std::string error;
  auto first = Recording::open(recording::series_part_path(base, 1), &error);
  ASSERT_TRUE(first) << error;
  EXPECT_EQ(first->summary().event_count(), 100u);
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_TRUE(rec->finished());
  const Seen seen = read_all(*rec);
  ASSERT_FALSE(seen.seqs.empty());
  EXPECT_GT(seen.seqs.front(), 0u);        // the oldest were forgotten
  EXPECT_LT(seen.seqs.size(), b.events() - 100);
  EXPECT_EQ(seen.seqs.back(), b.events() - 1);
  EXPECT_EQ(seen.last_i, 30099);
  // The window started mid-stack, and the second after a gap: only the frame seen since.
  EXPECT_EQ(seen.last_stack, 1u);
}

TEST(FlightRecorder, MaxTotalKeepsTheNewestWindows) {
  TempDir dir;
  const std::string base = dir.file("fr.rwd");
  collector::OutputOptions output;
  output.ring_bytes = 16 << 10;
  output.max_total_bytes = 40 << 10;
  RecordingBuilder b(base, testing::test_header(), output);
  const uint64_t f = b.code("/app/m.py", "f", 2, {"i", "s"});
  b.thread(0, 100, "MainThread");
  uint64_t time = 1;
  b.call(0, time++, f, 2, 1, {});
  for (int window = 0; window < 5; ++window) {
    loop(b, f, static_cast<uint64_t>(window) * 10000, 10000, &time);
    ASSERT_TRUE(b.writer().write_window("test"));
  }
  ASSERT_TRUE(b.finish());
  EXPECT_FALSE(exists(base));
  EXPECT_TRUE(exists(recording::series_part_path(base, 4)));
  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_LE(rec->file_size(), output.max_total_bytes);
  EXPECT_EQ(read_all(*rec).last_i, 49999);
}

TEST(FlightRecorder, ExceptionTriggers) {
  TempDir dir;
  const std::string base = dir.file("fr.rwd");
  collector::OutputOptions output;
  output.ring_bytes = 1 << 20;
  RecordingBuilder b(base, testing::test_header(), output);
  b.writer().set_triggers({"mod.Boom"}, true);
  const uint64_t mod = b.code("/app/m.py", "<module>", 1, {}, true);
  const uint64_t f = b.code("/app/m.py", "f", 2, {"i", "s"});
  b.thread(0, 100, "MainThread");
  b.call(0, 1, mod, 1, 0, {});
  b.call(0, 2, f, 2, 1, {});
  b.exception(0, 3, f, 3, 1, v1::EVENT_EXCEPTION, "ValueError", "no");  // not the type asked for
  b.ret(0, 4, f, 3, 1, nullptr);
  b.exception(0, 5, mod, 1, 0, v1::EVENT_EXCEPTION_HANDLED, "ValueError", "no");
  EXPECT_EQ(b.writer().windows_written(), 0u);

  b.call(0, 6, f, 2, 1, {});
  b.exception(0, 7, f, 3, 1, v1::EVENT_EXCEPTION, "app.Boom", "raised");
  ASSERT_EQ(b.writer().windows_written(), 1u);
  b.ret(0, 8, f, 3, 1, nullptr);
  b.exception(0, 9, mod, 1, 0, v1::EVENT_EXCEPTION, "app.Boom", "raised");  // the same, propagating
  EXPECT_EQ(b.writer().windows_written(), 1u);
  b.ret(0, 10, mod, 1, 0, nullptr);  // uncaught, but within a second of the last window
  EXPECT_EQ(b.writer().windows_written(), 1u);
  ASSERT_TRUE(b.finish());

  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  Timeline timeline(*rec);
  const v1::ExceptionInfo* last = nullptr;
  uint64_t last_seq = 0;
  while (timeline.next())
    if (timeline.type() == ItemType::kEvent) {
      last = timeline.step().exception;
      last_seq = timeline.step().seq;
    }
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->type_name(), "app.Boom");  // the window ends at the raise
  EXPECT_EQ(last_seq, 6u);
  EXPECT_NE(rec->summary().agent_messages(rec->summary().agent_messages_size() - 1).find("exception app.Boom"),
            std::string::npos);
}

TEST(FlightRecorder, UncaughtButNotSystemExit) {
  TempDir dir;
  const std::string base = dir.file("fr.rwd");
  collector::OutputOptions output;
  output.ring_ns = 1'000'000'000;
  RecordingBuilder b(base, testing::test_header(), output);
  b.writer().set_triggers({}, true);
  const uint64_t mod = b.code("/app/m.py", "<module>", 1, {}, true);
  b.thread(0, 100, "MainThread");
  b.thread(1, 101, "worker");
  b.call(0, 1, mod, 1, 0, {});
  b.exception(0, 2, mod, 1, 0, v1::EVENT_EXCEPTION, "SystemExit", "0");
  b.ret(0, 3, mod, 1, 0, nullptr);
  EXPECT_EQ(b.writer().windows_written(), 0u);
  b.call(1, 4, mod, 1, 0, {});
  b.exception(1, 5, mod, 1, 0, v1::EVENT_EXCEPTION, "KeyError", "k");
  b.ret(1, 6, mod, 1, 0, nullptr);
  EXPECT_EQ(b.writer().windows_written(), 1u);
  ASSERT_TRUE(b.finish());
  std::string error;
  auto rec = Recording::open(base, &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_EQ(rec->summary().event_count(), 6u);
}

}  // namespace
}  // namespace pyrewind::reader
