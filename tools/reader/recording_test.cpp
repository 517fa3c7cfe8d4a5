// Writer -> reader round trips and every way a recording file can be damaged.
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <filesystem>
#include <random>

#include "proto/recording/crc32c.h"
#include "proto/recording/format.h"
#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"
#include "tools/reader/timeline.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;
using reader::ChunkCursor;
using reader::Recording;
using reader::Timeline;
namespace fmt = pyrewind::recording;

std::unique_ptr<Recording> open_ok(const std::string& path) {
  std::string error;
  auto rec = Recording::open(path, &error);
  EXPECT_TRUE(rec) << error;
  return rec;
}

std::string open_error(const std::string& path) {
  std::string error;
  auto rec = Recording::open(path, &error);
  EXPECT_FALSE(rec);
  return error;
}

// Reads every event; returns how many, checking seq continuity.
uint64_t count_events(const Recording& rec, std::string* error = nullptr) {
  Timeline t(rec);
  uint64_t n = 0;
  while (t.next()) {
    if (t.type() != reader::ItemType::kEvent) continue;
    EXPECT_EQ(t.step().seq, n);
    ++n;
  }
  if (error) *error = t.error();
  return n;
}

// Offsets of the chunk frames, following the frame chain of a good file.
std::vector<std::pair<uint64_t, uint64_t>> chunk_spans(const Recording& rec) {
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  ChunkCursor c(rec);
  while (c.next()) spans.emplace_back(c.info().offset, c.info().end());
  EXPECT_EQ(c.error(), "");
  return spans;
}

TEST(Recording, RoundTripHeaderAndSummary) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  uint64_t written = write_sample(path);
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->finished());
  EXPECT_FALSE(rec->damaged());
  EXPECT_EQ(rec->damage(), "");
  EXPECT_EQ(rec->format_version(), fmt::kFormatVersion);

  const v1::RecordingHeader& h = rec->header();
  EXPECT_EQ(h.format_version(), fmt::kFormatVersion);
  EXPECT_EQ(h.python_version(), "3.12.1");
  EXPECT_EQ(h.pid(), 4242u);
  ASSERT_EQ(h.argv_size(), 3);
  EXPECT_EQ(h.argv(2), "arg with space");
  EXPECT_EQ(h.host(), "testhost");

  const v1::RecordingSummary& s = rec->summary();
  EXPECT_EQ(s.event_count(), written);
  EXPECT_EQ(s.chunks_size(), 3);
  ASSERT_GE(s.event_count_by_kind_size(), 6);
  EXPECT_EQ(s.event_count_by_kind(v1::EVENT_CALL), 3u);
  EXPECT_EQ(s.event_count_by_kind(v1::EVENT_LINE), 10u);
  EXPECT_EQ(s.event_count_by_kind(v1::EVENT_RETURN), 3u);
  EXPECT_EQ(s.event_count_by_kind(v1::EVENT_EXCEPTION), 1u);
  EXPECT_EQ(s.event_count_by_kind(v1::EVENT_EXCEPTION_HANDLED), 1u);
  EXPECT_EQ(s.dropped_records(), 7u);
  EXPECT_EQ(s.dropped_bytes(), 700u);
  EXPECT_EQ(s.exit_status(), 3);
  EXPECT_TRUE(s.target_exited());
  EXPECT_EQ(s.code_count(), 3u);
  ASSERT_EQ(s.agent_messages_size(), 1);
  EXPECT_EQ(s.agent_messages(0), "tracing stopped: test");
  EXPECT_GE(s.duration_ns(), 150u);
  ASSERT_EQ(s.threads_size(), 2);
  EXPECT_EQ(s.threads(0).name(), "MainThread");
  EXPECT_EQ(s.threads(0).native_id(), 1000u);
  EXPECT_EQ(s.threads(0).events(), 13u);
  EXPECT_EQ(s.threads(0).first_time_ns(), 10u);
  EXPECT_EQ(s.threads(0).last_time_ns(), 150u);
  EXPECT_EQ(s.threads(1).name(), "worker");
  EXPECT_EQ(s.threads(1).events(), 5u);
  EXPECT_EQ(s.threads(1).dropped_records(), 7u);

  // The chunk index agrees with the frames, and seqs are continuous.
  auto spans = chunk_spans(*rec);
  ASSERT_EQ(spans.size(), 3u);
  uint64_t seq = 0;
  ChunkCursor c(*rec);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.next());
    EXPECT_EQ(s.chunks(i).file_offset(), c.info().offset);
    EXPECT_EQ(s.chunks(i).first_seq(), seq);
    EXPECT_EQ(c.info().frame.first_seq, seq);
    seq += c.info().frame.event_count;
    EXPECT_EQ(s.chunks(i).event_count(), c.info().frame.event_count);
  }
  EXPECT_FALSE(c.next());
  EXPECT_EQ(seq, written);
  EXPECT_EQ(count_events(*rec), written);
}

TEST(Recording, EveryPacketParsesWithTheGeneratedClasses) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  ChunkCursor c(*rec);
  while (c.next()) {
    v1::PacketBatch batch;
    ASSERT_TRUE(batch.ParseFromArray(c.data(), static_cast<int>(c.size())));
    reader::PacketIterator it(c.data(), c.size());
    int n = 0;
    while (it.next()) ++n;
    EXPECT_EQ(n, batch.packet_size());
    EXPECT_EQ(it.skipped_packets(), 0u);
  }
}

TEST(Recording, SummaryRebuiltWithoutFooterMatchesTheWritersOne) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  auto finished = open_ok(path);
  ASSERT_TRUE(finished);
  // Cut the summary and footer off: every chunk is whole.
  std::string bytes = read_file(path);
  write_file(dir.file("b.rwd"), bytes.substr(0, finished->data_end()));
  auto rec = open_ok(dir.file("b.rwd"));
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->finished());
  EXPECT_FALSE(rec->damaged());
  EXPECT_NE(rec->damage().find("not finished"), std::string::npos) << rec->damage();
  EXPECT_NE(rec->damage().find("3 chunks, 18 events"), std::string::npos) << rec->damage();
  const auto& a = finished->summary();
  const auto& b = rec->summary();
  EXPECT_EQ(b.event_count(), a.event_count());
  EXPECT_EQ(b.chunks_size(), a.chunks_size());
  for (int i = 0; i < a.chunks_size(); ++i)
    EXPECT_EQ(b.chunks(i).SerializeAsString(), a.chunks(i).SerializeAsString()) << i;
  ASSERT_EQ(b.threads_size(), a.threads_size());
  for (int i = 0; i < a.threads_size(); ++i)
    EXPECT_EQ(b.threads(i).SerializeAsString(), a.threads(i).SerializeAsString()) << i;
  for (int k = 0; k < 6; ++k) EXPECT_EQ(b.event_count_by_kind(k), a.event_count_by_kind(k));
  EXPECT_EQ(b.dropped_records(), a.dropped_records());
  EXPECT_EQ(b.dropped_bytes(), a.dropped_bytes());
  EXPECT_EQ(b.code_count(), a.code_count());
  EXPECT_EQ(b.agent_messages_size(), 1);
  EXPECT_FALSE(b.target_exited());
}

TEST(Recording, WriterDestroyedWithoutFinishLeavesAReadableFile) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  uint64_t written = write_sample(path, /*finish=*/false);
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->finished());
  EXPECT_FALSE(rec->damaged());
  EXPECT_EQ(rec->summary().event_count(), written);
  EXPECT_EQ(count_events(*rec), written);
  EXPECT_EQ(rec->data_end(), rec->file_size());
}

TEST(Recording, OpenErrorsAreClear) {
  TempDir dir;
  EXPECT_EQ(open_error(dir.file("missing.rwd")), "No such file or directory");
  EXPECT_EQ(open_error(dir.path()), "is a directory");

  write_file(dir.file("empty.rwd"), "");
  EXPECT_NE(open_error(dir.file("empty.rwd")).find("empty file"), std::string::npos);

  write_file(dir.file("text.rwd"), "hello, this is not a recording at all\n");
  EXPECT_EQ(open_error(dir.file("text.rwd")), "not a pyrewind recording (bad magic)");

  std::string good = dir.file("good.rwd");
  write_sample(good);
  std::string bytes = read_file(good);

  std::string wrong_magic = bytes;
  wrong_magic[3] = 'X';
  write_file(dir.file("magic.rwd"), wrong_magic);
  EXPECT_EQ(open_error(dir.file("magic.rwd")), "not a pyrewind recording (bad magic)");

  std::string wrong_version = bytes;
  uint32_t v = 7;
  std::memcpy(&wrong_version[8], &v, 4);
  write_file(dir.file("version.rwd"), wrong_version);
  EXPECT_EQ(open_error(dir.file("version.rwd")), "unsupported format version 7 (this pyrewind reads versions 1 to 2)");
  v = 0;
  std::memcpy(&wrong_version[8], &v, 4);
  write_file(dir.file("version0.rwd"), wrong_version);
  EXPECT_EQ(open_error(dir.file("version0.rwd")), "unsupported format version 0 (this pyrewind reads versions 1 to 2)");

  // Version 1 is version 2 without container deltas: still read. The header states the
  // version twice, outside and as its first field (tag 0x08, then the varint).
  std::string version1 = bytes;
  ASSERT_EQ(fmt::kFormatVersion, 2u);
  ASSERT_EQ(version1.substr(16, 2), std::string("\x08\x02"));
  v = 1;
  std::memcpy(&version1[8], &v, 4);
  version1[17] = '\x01';
  write_file(dir.file("version1.rwd"), version1);
  std::string error;
  auto old = Recording::open(dir.file("version1.rwd"), &error);
  ASSERT_TRUE(old) << error;
  EXPECT_EQ(old->format_version(), 1u);
  EXPECT_EQ(old->summary().event_count(), write_sample(dir.file("again.rwd")));

  std::string huge_header = bytes;
  uint32_t len = fmt::kMaxHeaderLength + 1;
  std::memcpy(&huge_header[12], &len, 4);
  write_file(dir.file("hlen.rwd"), huge_header);
  EXPECT_NE(open_error(dir.file("hlen.rwd")).find("corrupt recording header (length"), std::string::npos);

  std::string past_end = bytes.substr(0, 40);
  uint32_t len2 = 1000;
  std::memcpy(&past_end[12], &len2, 4);
  write_file(dir.file("hpast.rwd"), past_end);
  EXPECT_NE(open_error(dir.file("hpast.rwd")).find("truncated inside the recording header"), std::string::npos);

  std::string garbage = bytes;
  garbage[16] = '\xff';  // first header byte: an invalid tag
  garbage[17] = '\xff';
  write_file(dir.file("hgarbage.rwd"), garbage);
  EXPECT_NE(open_error(dir.file("hgarbage.rwd")).find("corrupt recording header (cannot decode"), std::string::npos);

  write_file(dir.file("short.rwd"), bytes.substr(0, 10));
  EXPECT_NE(open_error(dir.file("short.rwd")).find("truncated inside the recording header"), std::string::npos);
}

TEST(Recording, TruncatedAtEveryOffsetRecoversTheWholeChunks) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  auto full = open_ok(path);
  ASSERT_TRUE(full);
  const auto spans = chunk_spans(*full);
  ASSERT_EQ(spans.size(), 3u);
  std::vector<uint64_t> events_in;
  for (const auto& c : full->summary().chunks()) events_in.push_back(c.event_count());
  const std::string bytes = read_file(path);
  const std::string cut = dir.file("cut.rwd");

  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE("cut at " + std::to_string(n));
    write_file(cut, bytes.substr(0, n));
    std::string error;
    auto rec = Recording::open(cut, &error);
    if (n < full->data_begin()) {
      ASSERT_FALSE(rec);
      EXPECT_FALSE(error.empty());
      continue;
    }
    ASSERT_TRUE(rec) << error;
    EXPECT_FALSE(rec->finished());
    size_t whole = 0;
    uint64_t events = 0;
    bool at_boundary = n == full->data_begin();
    for (size_t i = 0; i < spans.size(); ++i) {
      if (spans[i].second <= n) {
        ++whole;
        events += events_in[i];
      }
      if (spans[i].second == n) at_boundary = true;
    }
    // 1-2 bytes of a summary frame cannot be told from the start of a chunk (the magics share
    // their first bytes): reported as a torn chunk, the cautious reading.
    bool in_summary = n >= full->data_end() + 3;
    EXPECT_EQ(rec->summary().chunks_size(), static_cast<int>(whole));
    EXPECT_EQ(rec->summary().event_count(), events);
    EXPECT_EQ(rec->damaged(), !at_boundary && !in_summary) << rec->damage();
    if (rec->damaged()) {
      EXPECT_NE(rec->damage().find("file truncated at byte " + std::to_string(n) + " inside"), std::string::npos)
          << rec->damage();
      EXPECT_NE(rec->damage().find("recovered " + std::to_string(whole) + " chunk"), std::string::npos)
          << rec->damage();
    }
    std::string iteration_error;
    EXPECT_EQ(count_events(*rec, &iteration_error), events);
    EXPECT_EQ(iteration_error, "");
  }
}

// Flips one byte and checks both the footer path (error while iterating) and the recovery path.
void check_corruption(size_t offset_in_file, const std::string& expect) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  auto full = open_ok(path);
  ASSERT_TRUE(full);
  std::string bytes = read_file(path);
  bytes[offset_in_file] ^= 0x20;

  // With the footer: opens (the summary is intact), iteration stops at the chunk.
  write_file(dir.file("b.rwd"), bytes);
  auto rec = open_ok(dir.file("b.rwd"));
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->finished());
  std::string error;
  uint64_t n = count_events(*rec, &error);
  EXPECT_EQ(n, full->summary().chunks(0).event_count());
  EXPECT_NE(error.find(expect), std::string::npos) << error;
  EXPECT_NE(error.find("chunk 2"), std::string::npos) << error;
  EXPECT_NE(error.find("byte " + std::to_string(full->summary().chunks(1).file_offset())), std::string::npos)
      << error;

  // Without the footer: recovery stops at the same chunk and says so.
  write_file(dir.file("c.rwd"), bytes.substr(0, full->data_end()));
  auto cut = open_ok(dir.file("c.rwd"));
  ASSERT_TRUE(cut);
  EXPECT_TRUE(cut->damaged());
  EXPECT_NE(cut->damage().find(expect), std::string::npos) << cut->damage();
  EXPECT_NE(cut->damage().find("recovered 1 chunk"), std::string::npos) << cut->damage();
  EXPECT_EQ(count_events(*cut), full->summary().chunks(0).event_count());
}

TEST(Recording, CorruptPayloadIsDetected) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  uint64_t chunk2 = rec->summary().chunks(1).file_offset();
  check_corruption(chunk2 + sizeof(fmt::ChunkFrame) + 5, "payload CRC mismatch");
}

TEST(Recording, CorruptFrameIsDetected) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  auto rec = open_ok(dir.file("a.rwd"));
  ASSERT_TRUE(rec);
  uint64_t chunk2 = rec->summary().chunks(1).file_offset();
  check_corruption(chunk2 + offsetof(fmt::ChunkFrame, event_count), "corrupt chunk frame (CRC mismatch");
  check_corruption(chunk2 + 1, "unexpected data at byte");  // the magic itself
}

TEST(Recording, CorruptFooterOrSummaryFallsBackToScanning) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  uint64_t written = write_sample(path);
  std::string bytes = read_file(path);

  std::string footer = bytes;
  footer[footer.size() - 20] ^= 1;  // footer CRC field
  write_file(dir.file("f.rwd"), footer);
  auto rec = open_ok(dir.file("f.rwd"));
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->finished());
  EXPECT_FALSE(rec->damaged());
  EXPECT_NE(rec->damage().find("corrupt footer (CRC mismatch)"), std::string::npos) << rec->damage();
  EXPECT_EQ(count_events(*rec), written);

  auto good = open_ok(path);
  std::string summary = bytes;
  summary[good->data_end() + sizeof(fmt::SummaryFrame) + 2] ^= 1;
  write_file(dir.file("s.rwd"), summary);
  rec = open_ok(dir.file("s.rwd"));
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->finished());
  EXPECT_NE(rec->damage().find("corrupt summary (CRC mismatch)"), std::string::npos) << rec->damage();
  EXPECT_EQ(rec->summary().event_count(), written);
}

TEST(Recording, LargeRecordingsAreChunkedAndCompressed) {
  TempDir dir;
  std::string path = dir.file("big.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/app/big.py", "loop", 1, {"i", "s"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, integer(0))});
  const int kLines = 60000;
  for (int i = 0; i < kLines; ++i)
    b.line(0, 2 + i, f, 2 + i % 3, 0, {slot(0, integer(i)), slot(1, text("value number " + std::to_string(i)))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  const auto& s = rec->summary();
  EXPECT_GT(s.chunks_size(), 1);
  EXPECT_EQ(s.event_count(), static_cast<uint64_t>(kLines + 1));
  ChunkCursor c(*rec);
  int chunks = 0;
  while (c.next()) {
    ++chunks;
    EXPECT_EQ(c.info().frame.compression, fmt::kZstd);
    EXPECT_LT(c.info().frame.compressed_length, c.info().frame.uncompressed_length / 3);
    EXPECT_LE(c.info().frame.uncompressed_length, fmt::kTargetChunkBytes + 4096);
  }
  EXPECT_EQ(chunks, s.chunks_size());
  // The last line's locals are whole even though they were built across chunks.
  Timeline t(*rec);
  const v1::Value* last_s = nullptr;
  uint64_t n = 0;
  while (t.next()) {
    ++n;
    if (n == static_cast<uint64_t>(kLines + 1)) last_s = t.step().frame->find_local("s");
  }
  ASSERT_TRUE(last_s);
  EXPECT_EQ(last_s->str_value().text(), "value number " + std::to_string(kLines - 1));
}

// Behind the program, the collector compresses faster rather than let the ring overflow: level
// 1, then a fast level from a quarter of the ring waiting, then none from three quarters. Every
// chunk reads back the same.
TEST(Writer, CompressionGivesWayAsTheRingFills) {
  TempDir dir;
  std::string path = dir.file("backlog.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/app/big.py", "loop", 1, {"i", "s"});
  b.thread(0, 1, "MainThread");
  const int kLinesPerPhase = 40000;  // more than a chunk's worth
  int line = 0;
  for (double backlog : {0.0, 0.5, 0.9}) {
    b.writer().set_ring_backlog(backlog);
    for (int i = 0; i < kLinesPerPhase; ++i, ++line)
      b.line(0, 2 + line, f, 2 + line % 3, 0, {slot(0, integer(line)), slot(1, text("value " + std::to_string(line)))});
    ASSERT_TRUE(b.writer().flush_chunk());
  }
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  ChunkCursor c(*rec);
  std::vector<std::pair<uint32_t, double>> chunks;  // compression, compressed / uncompressed
  while (c.next())
    chunks.emplace_back(c.info().frame.compression,
                        static_cast<double>(c.info().frame.compressed_length) / c.info().frame.uncompressed_length);
  ASSERT_GE(chunks.size(), 6u);
  EXPECT_EQ(chunks.front().first, fmt::kZstd);
  EXPECT_EQ(chunks.back().first, fmt::kNone);
  const double level1 = chunks.front().second;
  double fast = 0;  // the last compressed chunk's
  for (const auto& [compression, ratio] : chunks)
    if (compression == fmt::kZstd) fast = ratio;
  EXPECT_LT(level1, fast) << "the fast level compresses less";
  EXPECT_EQ(count_events(*rec), static_cast<uint64_t>(3 * kLinesPerPhase));

  // A byte budget sizes chunks by the compression so far: it stays.
  std::string limited_path = dir.file("limited.rwd");
  RecordingBuilder limited(limited_path);
  limited.writer().set_size_limit(uint64_t{64} << 20);
  limited.writer().set_ring_backlog(0.9);
  uint64_t g = limited.code("/app/big.py", "loop", 1, {"i"});
  limited.thread(0, 1, "MainThread");
  for (int i = 0; i < kLinesPerPhase; ++i) limited.line(0, 2 + i, g, 2, 0, {slot(0, integer(i))});
  ASSERT_TRUE(limited.finish());
  auto limited_rec = open_ok(limited_path);
  ASSERT_TRUE(limited_rec);
  ChunkCursor lc(*limited_rec);
  while (lc.next()) EXPECT_EQ(lc.info().frame.compression, fmt::kZstd);
}

TEST(Writer, SizeLimitKeepsTheFinishedFileWithinIt) {
  for (uint64_t limit : {uint64_t{64} << 10, uint64_t{300} << 10, uint64_t{2} << 20}) {
    TempDir dir;
    std::string path = dir.file("limited.rwd");
    RecordingBuilder b(path);
    b.writer().set_size_limit(limit);
    uint64_t f = b.code("/app/big.py", "loop", 1, {"i", "s"});
    b.thread(0, 1, "MainThread");
    int written = 0;
    for (int i = 0; i < 400000 && !b.writer().size_limit_reached(); ++i, ++written)
      b.line(0, 2 + i, f, 2 + i % 3, 0, {slot(0, integer(i)), slot(1, text("value number " + std::to_string(i)))});
    EXPECT_TRUE(b.writer().size_limit_reached()) << limit;
    ASSERT_TRUE(b.finish());
    EXPECT_LE(std::filesystem::file_size(path), limit);
    EXPECT_GT(std::filesystem::file_size(path), limit * 3 / 4) << "the limit should be used, not feared";
    auto rec = open_ok(path);
    ASSERT_TRUE(rec);
    EXPECT_TRUE(rec->finished());
    EXPECT_FALSE(rec->damaged());
    EXPECT_GT(rec->summary().event_count(), 0u);
    EXPECT_LE(rec->summary().event_count(), static_cast<uint64_t>(written));
  }
}

TEST(Recording, IncompressibleChunksAreStored) {
  TempDir dir;
  std::string path = dir.file("rand.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/app/r.py", "f", 1, {"blob"});
  b.thread(0, 1, "MainThread");
  std::mt19937_64 rng(42);
  std::string blob(4096, '\0');
  for (char& c : blob) c = static_cast<char>(rng());
  v1::Value v;
  v.mutable_bytes_value()->set_data(blob);
  v.mutable_bytes_value()->set_length(blob.size());
  b.call(0, 1, f, 1, 0, {slot(0, v)});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  ChunkCursor c(*rec);
  ASSERT_TRUE(c.next());
  EXPECT_EQ(c.info().frame.compression, fmt::kNone);
  EXPECT_EQ(c.info().frame.compressed_length, c.info().frame.uncompressed_length);
  Timeline t(*rec);
  ASSERT_TRUE(t.next());
  ASSERT_EQ(t.type(), reader::ItemType::kThreadStart);
  ASSERT_TRUE(t.next());
  ASSERT_EQ(t.type(), reader::ItemType::kEvent);
  EXPECT_EQ(t.step().frame->find_local("blob")->bytes_value().data(), blob);
}

TEST(Recording, UnparsablePacketsAreSkippedAndCounted) {
  TempDir dir;
  std::string path = dir.file("bad.rwd");
  RecordingBuilder b(path);
  uint64_t f = b.code("/app/x.py", "f", 1, {"a"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {slot(0, integer(1))});
  // An Event body whose content is not a valid message: field 5 (Event), length 2, bytes ff ff.
  b.raw_event(0, 2, std::string("\x2a\x02\xff\xff", 4));
  b.line(0, 3, f, 2, 0, {slot(0, integer(2))});
  ASSERT_TRUE(b.finish());
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  Timeline t(*rec);
  std::vector<uint64_t> seqs;
  while (t.next())
    if (t.type() == reader::ItemType::kEvent) seqs.push_back(t.step().seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{0, 2}));  // the broken event keeps its seq
  EXPECT_EQ(t.skipped_packets(), 1u);
  EXPECT_EQ(t.error(), "");
}

// Random damage anywhere must never crash or hang the reader.
TEST(Recording, RandomCorruptionNeverCrashes) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  const std::string bytes = read_file(path);
  std::mt19937 rng(1234);
  for (int round = 0; round < 1500; ++round) {
    std::string copy = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) copy[rng() % copy.size()] = static_cast<char>(rng());
    if (round % 3 == 0) copy.resize(rng() % copy.size());
    write_file(dir.file("m.rwd"), copy);
    std::string error;
    auto rec = Recording::open(dir.file("m.rwd"), &error);
    if (!rec) {
      EXPECT_FALSE(error.empty());
      continue;
    }
    Timeline t(*rec);
    uint64_t items = 0;
    while (t.next()) {
      if (t.type() == reader::ItemType::kEvent) {
        ASSERT_NE(t.step().code, nullptr);
        ASSERT_NE(t.step().frame, nullptr);
        t.step().frame->local_count();
      }
      ASSERT_LT(++items, 100000u);
    }
  }
}

TEST(Writer, DevFullFailsCleanly) {
  std::string error;
  auto w = collector::RecordingWriter::create("/dev/full", test_header(), &error);
  if (w) GTEST_SKIP() << "/dev/full accepted the header write";
  EXPECT_NE(error.find("disk full while writing the header to /dev/full"), std::string::npos) << error;
}

TEST(Writer, UncreatableFileFailsCleanly) {
  std::string error;
  auto w = collector::RecordingWriter::create("/nonexistent-dir/x.rwd", test_header(), &error);
  EXPECT_FALSE(w);
  EXPECT_NE(error.find("cannot create /nonexistent-dir/x.rwd"), std::string::npos) << error;
}

// A tiny tmpfs fills up while recording: the writer reports it, never crashes, and the file
// stays readable up to its last whole chunk.
TEST(Writer, DiskFullKeepsTheWholeChunks) {
  TempDir dir;
  std::string mnt = dir.file("mnt");
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << "); needs root";
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};

  std::string path = mnt + "/full.rwd";
  uint64_t accepted = 0;
  std::string error;
  {
    RecordingBuilder b(path);
    uint64_t f = b.code("/app/x.py", "f", 1, {"data"});
    b.thread(0, 1, "MainThread");
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000 && !b.writer().failed(); ++i) {
      std::string noise(900, '\0');
      for (char& c : noise) c = static_cast<char>(rng());
      v1::Value v;
      v.mutable_bytes_value()->set_data(noise);
      b.line(0, static_cast<uint64_t>(i), f, 2, 0, {slot(0, v)});
      if (i % 8 == 7) b.writer().flush_chunk();  // ~7 KiB chunks
      if (!b.writer().failed()) accepted = b.writer().events_written();
    }
    ASSERT_TRUE(b.writer().failed());
    error = b.writer().error();
    EXPECT_NE(error.find("disk full while writing chunk"), std::string::npos) << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
    // Later calls are no-ops and keep the first error.
    uint64_t events = b.writer().events_written();
    b.line(0, 99999, f, 3, 0, {});
    EXPECT_EQ(b.writer().events_written(), events);
    EXPECT_FALSE(b.writer().flush_chunk());
    EXPECT_FALSE(b.finish());
    EXPECT_EQ(b.writer().error(), error);
  }
  auto rec = open_ok(path);
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->finished());
  EXPECT_FALSE(rec->damaged()) << rec->damage();  // the torn chunk was cut off
  uint64_t read = count_events(*rec);
  EXPECT_GT(read, 0u);
  EXPECT_LE(read, accepted);
  EXPECT_EQ(read, rec->summary().event_count());
}

}  // namespace
}  // namespace pyrewind

namespace pyrewind {
namespace {

using namespace pyrewind::testing;

// Text from the OS and from Python is not always valid UTF-8 (undecodable paths, lone
// surrogates); libprotobuf rejects such proto3 strings, the reader repairs them instead.
TEST(Recording, InvalidUtf8IsRepairedNotDropped) {
  reader::quiet_protobuf_utf8_errors();
  TempDir dir;
  std::string path = dir.file("u.rwd");
  const std::string bad = "caf\xe9 \xed\xa0\x80";  // Latin-1 byte, UTF-8-encoded surrogate
  v1::RecordingHeader h = test_header();
  h.set_cwd("/tmp/" + bad);
  {
    RecordingBuilder b(path, h);
    uint64_t f = b.code("/x/" + bad + ".py", "f", 1, {"s"});
    b.thread(0, 1, "MainThread");
    b.call(0, 1, f, 1, 0, {slot(0, text(bad))});
    ASSERT_TRUE(b.finish());
  }
  std::string error;
  auto rec = reader::Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(rec->header().cwd(), "/tmp/caf" + r + " " + r + r + r);
  reader::Timeline t(*rec);
  bool seen = false;
  while (t.next()) {
    if (t.type() != reader::ItemType::kEvent) continue;
    seen = true;
    EXPECT_EQ(t.step().code->file, "/x/caf" + r + " " + r + r + r + ".py");
    EXPECT_EQ(t.step().frame->find_local("s")->str_value().text(), "caf" + r + " " + r + r + r);
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(t.skipped_packets(), 0u);
}

}  // namespace
}  // namespace pyrewind

namespace pyrewind {
namespace {

using namespace pyrewind::testing;
namespace fmt = pyrewind::recording;

// Frames whose CRC is right but whose lengths lie: every length is checked on its own.
TEST(Recording, LyingFramesWithValidCrcsAreRejected) {
  TempDir dir;
  std::string path = dir.file("a.rwd");
  write_sample(path);
  std::string error;
  auto rec = reader::Recording::open(path, &error);
  ASSERT_TRUE(rec) << error;
  const std::string bytes = read_file(path);
  const uint64_t at = rec->summary().chunks(1).file_offset();
  const uint64_t data_end = rec->data_end();

  auto with_frame = [&](const std::function<void(fmt::ChunkFrame&)>& edit, bool keep_footer) {
    std::string copy = bytes;
    fmt::ChunkFrame frame;
    std::memcpy(&frame, &copy[at], sizeof frame);
    edit(frame);
    frame.frame_crc32c = 0;
    frame.frame_crc32c = fmt::crc32c(&frame, sizeof frame);
    std::memcpy(&copy[at], &frame, sizeof frame);
    if (!keep_footer) copy.resize(data_end);
    std::string p = dir.file("lie.rwd");
    write_file(p, copy);
    std::string e;
    auto r = reader::Recording::open(p, &e);
    EXPECT_TRUE(r) << e;
    if (!r) return std::string("open failed");
    if (!keep_footer) {
      EXPECT_TRUE(r->damaged());
      EXPECT_EQ(r->summary().chunks_size(), 1);
      return r->damage();
    }
    reader::Timeline t(*r);
    while (t.next()) {
    }
    return t.error();
  };
  for (bool footer : {true, false}) {
    SCOPED_TRACE(footer ? "with footer" : "without footer");
    std::string e = with_frame([](fmt::ChunkFrame& f) { f.compressed_length = 1ull << 40; }, footer);
    EXPECT_NE(e.find("impossible chunk frame"), std::string::npos) << e;
    e = with_frame([](fmt::ChunkFrame& f) { f.uncompressed_length = fmt::kMaxChunkUncompressedBytes + 1; }, footer);
    EXPECT_NE(e.find("impossible chunk frame"), std::string::npos) << e;
    e = with_frame([](fmt::ChunkFrame& f) { f.compression = 9; }, footer);
    EXPECT_NE(e.find("unknown compression 9"), std::string::npos) << e;
    e = with_frame([](fmt::ChunkFrame& f) { f.event_count = 1ull << 40; }, footer);
    EXPECT_NE(e.find("impossible chunk frame"), std::string::npos) << e;
    e = with_frame([&](fmt::ChunkFrame& f) { f.compressed_length = bytes.size(); }, footer);
    EXPECT_TRUE(e.find("overruns the chunk area") != std::string::npos ||
                e.find("file truncated at byte") != std::string::npos)
        << e;
    e = with_frame([](fmt::ChunkFrame& f) { f.uncompressed_length += 1; }, footer);
    // The payload CRC still holds; the zstd frame's own content size disagrees.
    EXPECT_NE(e.find("zstd frame does not match the chunk frame"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace pyrewind
