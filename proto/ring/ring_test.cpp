// Tests of the shared-memory ring: segment lifecycle, writer/drainer protocol, loss accounting,
// cross-process use (including a writer killed mid-write) and hostile segment contents.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "proto/ring/drainer.h"
#include "proto/ring/layout.h"
#include "proto/ring/segment.h"
#include "proto/ring/writer.h"
#include "proto/wire/proto_reader.h"
#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::ring {
namespace {

namespace bip = boost::interprocess;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kSmallChunk = 4096;
constexpr uint32_t kSmallPayload = kSmallChunk - sizeof(ChunkHeader);

std::unique_ptr<OwnedSegment> make_segment(uint32_t chunks, uint32_t chunk_bytes = kSmallChunk) {
  SegmentOptions options;
  options.chunk_bytes = chunk_bytes;
  options.segment_bytes = kHeaderBytes + uint64_t{chunks} * chunk_bytes;
  std::string error;
  auto segment = OwnedSegment::create(options, &error);
  EXPECT_NE(segment, nullptr) << error;
  return segment;
}

bool shm_exists(const std::string& name) {
  struct stat st;
  return stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// Record `seq` of writer `writer`: a real Packet whose size varies with the sequence number.
std::string make_record(uint32_t writer, uint64_t seq) {
  v1::Packet packet;
  v1::Event* event = packet.mutable_event();
  event->set_kind(v1::EVENT_LINE);
  event->set_code_id(writer);
  event->set_time_delta_ns(seq);
  const size_t padding = (seq * 7 + writer * 13) % 150;
  if (padding != 0) event->mutable_exception()->set_message(std::string(padding, static_cast<char>('a' + seq % 26)));
  return packet.SerializeAsString();
}

// The record's time base is its sequence number unless given.
bool append_record(ChunkWriter& writer, uint32_t id, uint64_t seq, uint64_t time = UINT64_MAX) {
  const std::string record = make_record(id, seq);
  return writer.append(reinterpret_cast<const uint8_t*>(record.data()), record.size(), time == UINT64_MAX ? seq : time);
}

uint64_t fnv1a(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

// Checks each writer's stream: records arrive in order, exactly those not reported dropped,
// each loss reported exactly where the records went missing, contents intact. The per-packet
// work is kept small (the collector competes with the writers for the CPU); the contents and
// the dropped byte counts are compared with the expected records in verify(), at the end.
class CheckingSink : public DrainSink {
 public:
  struct Log {
    uint64_t expected = 0;  // next sequence number this writer's stream must deliver
    uint64_t received = 0;
    uint64_t dropped_records = 0;
    uint64_t dropped_bytes = 0;
    uint64_t chunks = 0;
    uint64_t next_base = UINT64_MAX;  // base time of the chunk just started
    std::string error;                // first inconsistency
  };
  struct Loss {
    uint32_t writer;
    uint64_t first, records, bytes;
  };
  struct Seen {
    uint32_t writer;
    uint64_t seq;
    uint64_t hash;
  };

  void on_chunk_start(uint32_t writer_id, uint64_t base_time_ns, uint64_t dropped_records,
                      uint64_t dropped_bytes) override {
    Log& log = logs[writer_id];
    ++log.chunks;
    if (dropped_records != 0) losses.push_back({writer_id, log.expected, dropped_records, dropped_bytes});
    log.expected += dropped_records;
    log.dropped_records += dropped_records;
    log.dropped_bytes += dropped_bytes;
    log.next_base = base_time_ns;
  }
  void on_packet(uint32_t writer_id, const uint8_t* data, size_t size) override {
    Log& log = logs[writer_id];
    // Packet{event (5){code_id (3), time_delta_ns (2), ...}}
    wire::ProtoReader packet(data, size);
    wire::Field event;
    if (!packet.next(event) || event.number != 5 || event.wire_type != 2) return fail(log, "not an event packet");
    uint64_t seq = UINT64_MAX, code = UINT64_MAX;
    wire::ProtoReader fields(event.bytes, event.size);
    wire::Field field;
    while (fields.next(field)) {
      if (field.number == 2) seq = field.varint;
      if (field.number == 3) code = field.varint;
    }
    if (seq == UINT64_MAX) seq = 0;  // proto3 leaves out zeros
    if (code == UINT64_MAX) code = 0;
    if (!fields.ok() || code != writer_id) return fail(log, "packet of another writer");
    if (seq != log.expected) {
      return fail(log, "got record " + std::to_string(seq) + ", expected " + std::to_string(log.expected));
    }
    if (check_base && log.next_base != UINT64_MAX && log.next_base != seq) {
      fail(log, "chunk base time is not its first record's");
    }
    log.next_base = UINT64_MAX;
    seen.push_back({writer_id, seq, fnv1a(data, size)});
    log.expected = seq + 1;
    ++log.received;
  }
  void on_corruption(uint32_t chunk_index, const std::string& reason) override {
    corruptions.push_back(std::to_string(chunk_index) + ": " + reason);
  }

  // Every delivered record has the bytes written, and each loss states the bytes of exactly
  // the records it skipped.
  std::string verify() const {
    for (const Seen& s : seen) {
      const std::string expected = make_record(s.writer, s.seq);
      if (fnv1a(reinterpret_cast<const uint8_t*>(expected.data()), expected.size()) != s.hash) {
        return "writer " + std::to_string(s.writer) + ": record " + std::to_string(s.seq) + " has other bytes";
      }
    }
    for (const Loss& loss : losses) {
      uint64_t bytes = 0;
      for (uint64_t s = loss.first; s < loss.first + loss.records && s < loss.first + 10000000; ++s) {
        bytes += make_record(loss.writer, s).size();
      }
      if (bytes != loss.bytes) {
        return "writer " + std::to_string(loss.writer) + ": loss at " + std::to_string(loss.first) + " states " +
               std::to_string(loss.bytes) + " bytes, the records had " + std::to_string(bytes);
      }
    }
    return "";
  }

  bool check_base = true;  // records' time bases are their sequence numbers
  std::map<uint32_t, Log> logs;
  std::vector<Loss> losses;
  std::vector<Seen> seen;
  std::vector<std::string> corruptions;

 private:
  void fail(Log& log, const std::string& what) {
    if (log.error.empty()) log.error = what;
  }
};

// Keeps everything it is given, in order.
class RecordingSink : public DrainSink {
 public:
  struct Item {
    enum Kind { kStart, kPacket } kind;
    uint32_t writer;
    uint64_t base = 0, dropped_records = 0, dropped_bytes = 0;
    std::string bytes;
  };
  void on_chunk_start(uint32_t writer_id, uint64_t base_time_ns, uint64_t dropped_records,
                      uint64_t dropped_bytes) override {
    items.push_back({Item::kStart, writer_id, base_time_ns, dropped_records, dropped_bytes, {}});
  }
  void on_packet(uint32_t writer_id, const uint8_t* data, size_t size) override {
    items.push_back({Item::kPacket, writer_id, 0, 0, 0, std::string(reinterpret_cast<const char*>(data), size)});
  }
  void on_corruption(uint32_t chunk_index, const std::string& reason) override {
    corruptions.push_back(std::to_string(chunk_index) + ": " + reason);
  }
  std::vector<std::string> packets() const {
    std::vector<std::string> out;
    for (const Item& item : items)
      if (item.kind == Item::kPacket) out.push_back(item.bytes);
    return out;
  }
  void on_backlog(double fraction) override { backlogs.push_back(fraction); }
  std::vector<Item> items;
  std::vector<std::string> corruptions;
  std::vector<double> backlogs;  // one per poll
};

// Touches every delivered byte (so a sanitizer sees any out-of-bounds pointer) and counts.
class TouchingSink : public DrainSink {
 public:
  void on_chunk_start(uint32_t, uint64_t, uint64_t, uint64_t) override { ++starts; }
  void on_packet(uint32_t, const uint8_t* data, size_t size) override {
    for (size_t i = 0; i < size; ++i) checksum += data[i];
    ++packets;
  }
  void on_corruption(uint32_t, const std::string& reason) override {
    ++corruptions;
    EXPECT_FALSE(reason.empty());
  }
  uint64_t starts = 0, packets = 0, corruptions = 0, checksum = 0;
};

// Polls until two polls in a row deliver nothing (bounded, so a bug cannot hang the test).
size_t drain_all(Drainer& drainer, DrainSink& sink) {
  size_t total = 0;
  for (int idle = 0, polls = 0; idle < 2 && polls < 1000000; ++polls) {
    size_t n = drainer.poll(sink);
    total += n;
    idle = n == 0 ? idle + 1 : 0;
  }
  return total;
}

std::vector<uint32_t> chunk_states(SegmentHeader* header) {
  std::vector<uint32_t> states;
  for (uint32_t i = 0; i < header->chunk_count; ++i) states.push_back(chunk_at(header, i)->state.load());
  return states;
}

ChunkHeader* find_chunk(SegmentHeader* header, uint32_t writer, uint64_t sequence) {
  for (uint32_t i = 0; i < header->chunk_count; ++i) {
    ChunkHeader* chunk = chunk_at(header, i);
    if (chunk->state.load() != kFree && chunk->writer_id == writer && chunk->sequence == sequence) return chunk;
  }
  return nullptr;
}

uint8_t* payload_of(ChunkHeader* chunk) { return reinterpret_cast<uint8_t*>(chunk + 1); }

// ---------------------------------------------------------------------------------------------
// Segment

TEST(Segment, CreateInitialisesHeaderAndChunks) {
  SegmentOptions options;
  options.segment_bytes = kHeaderBytes + 10 * 8192 + 100;  // the tail that is no whole chunk is unused
  options.chunk_bytes = 8192;
  options.target_pid = 4242;
  options.config.flags = kCaptureLocals | kRedact;
  options.config.max_items = 25;
  options.config.patterns_bytes = 9;
  std::memcpy(options.config.patterns, "password", 9);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t before = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  std::string error;
  auto segment = OwnedSegment::create(options, &error);
  ASSERT_NE(segment, nullptr) << error;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t after = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);

  EXPECT_TRUE(std::regex_match(segment->name(), std::regex("/pyrewind-" + std::to_string(getpid()) + "-[0-9a-f]{32}")))
      << segment->name();
  struct stat st;
  ASSERT_EQ(stat(("/dev/shm" + segment->name()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), options.segment_bytes);
  EXPECT_EQ(segment->size(), options.segment_bytes);

  SegmentHeader* h = segment->header();
  EXPECT_EQ(std::memcmp(h->magic, kMagic, 8), 0);
  EXPECT_EQ(h->abi_version, kAbiVersion);
  EXPECT_EQ(h->header_bytes, kHeaderBytes);
  EXPECT_EQ(h->segment_bytes, options.segment_bytes);
  EXPECT_EQ(h->chunk_bytes, 8192u);
  EXPECT_EQ(h->chunk_count, 10u);
  EXPECT_GE(h->start_monotonic_ns, before);
  EXPECT_LE(h->start_monotonic_ns, after);
  EXPECT_EQ(h->target_pid, 4242u);
  EXPECT_EQ(h->collector_pid.load(), static_cast<uint32_t>(getpid()));
  EXPECT_EQ(h->agent_state.load(), kAgentNone);
  EXPECT_EQ(h->config.flags, kCaptureLocals | kRedact);
  EXPECT_EQ(h->config.max_items, 25u);
  EXPECT_STREQ(h->config.patterns, "password");
  EXPECT_EQ(segment->base(), reinterpret_cast<uint8_t*>(h));
  for (uint32_t i = 0; i < 10; ++i) {
    ChunkHeader* chunk = chunk_at(h, i);
    ASSERT_NE(chunk, nullptr);
    EXPECT_EQ(reinterpret_cast<uint8_t*>(chunk), segment->base() + kHeaderBytes + i * 8192);
    EXPECT_EQ(chunk->state.load(), kFree);
    EXPECT_EQ(chunk->committed.load(), 0u);
  }
  EXPECT_EQ(chunk_at(h, 10), nullptr);
  std::string why;
  EXPECT_TRUE(validate_header(*h, segment->size(), &why)) << why;

  auto other = make_segment(2);
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other->name(), segment->name());
}

TEST(Segment, CreateRejectsBadOptions) {
  struct Case {
    uint64_t segment_bytes;
    uint32_t chunk_bytes;
    uint32_t patterns_bytes;
  };
  const Case cases[] = {
      {kHeaderBytes + 16 * 4032, 4032, 0},             // below the minimum chunk size
      {kHeaderBytes + 16 * 4100, 4100, 0},             // not a multiple of 64
      {kHeaderBytes + 4 * (2u << 20), 2u << 20, 0},    // above the maximum chunk size
      {kHeaderBytes + 4096 + 4095, 4096, 0},           // only one chunk
      {100, 4096, 0},                                  // smaller than the header
      {kHeaderBytes + (uint64_t{kMaxChunks} + 1) * 4096, 4096, 0},  // too many chunks
      {kHeaderBytes + 4 * 4096, 4096, 9000},           // config patterns too long
  };
  for (const Case& c : cases) {
    SegmentOptions options;
    options.segment_bytes = c.segment_bytes;
    options.chunk_bytes = c.chunk_bytes;
    options.config.patterns_bytes = c.patterns_bytes;
    std::string error;
    EXPECT_EQ(OwnedSegment::create(options, &error), nullptr) << c.segment_bytes << " " << c.chunk_bytes;
    EXPECT_FALSE(error.empty());
  }
  // Non-power-of-two multiples of 64 are fine.
  SegmentOptions options;
  options.chunk_bytes = 4096 + 64;
  options.segment_bytes = kHeaderBytes + 3 * options.chunk_bytes;
  std::string error;
  auto segment = OwnedSegment::create(options, &error);
  ASSERT_NE(segment, nullptr) << error;
  EXPECT_EQ(segment->header()->chunk_count, 3u);
}

TEST(Segment, UnlinkIsIdempotentAndDestructorUnlinks) {
  std::string name;
  {
    auto segment = make_segment(4);
    ASSERT_NE(segment, nullptr);
    name = segment->name();
    EXPECT_TRUE(shm_exists(name));
    segment->unlink();
    EXPECT_FALSE(shm_exists(name));
    segment->unlink();
    segment->header()->agent_pid.store(1);  // the mapping outlives the name
    std::string error;
    EXPECT_EQ(AttachedSegment::open(name.c_str(), &error), nullptr);
    EXPECT_FALSE(error.empty());
  }
  {
    auto segment = make_segment(4);
    ASSERT_NE(segment, nullptr);
    name = segment->name();
    EXPECT_TRUE(shm_exists(name));
  }
  EXPECT_FALSE(shm_exists(name));
}

TEST(Segment, AttachMapsTheSameMemory) {
  auto segment = make_segment(8);
  ASSERT_NE(segment, nullptr);
  std::string error;
  auto attached = AttachedSegment::open(segment->name().c_str(), &error);
  ASSERT_NE(attached, nullptr) << error;
  EXPECT_EQ(attached->size(), segment->size());
  EXPECT_NE(static_cast<void*>(attached->header()), static_cast<void*>(segment->header()));
  attached->header()->python_hexversion.store(0x030C01F0);
  EXPECT_EQ(segment->header()->python_hexversion.load(), 0x030C01F0u);
  segment->unlink();  // the attached mapping stays valid
  attached->header()->agent_state.store(kAgentTracing);
  EXPECT_EQ(segment->header()->agent_state.load(), kAgentTracing);
}

TEST(Segment, AttachFailsCleanly) {
  std::string error;
  EXPECT_EQ(AttachedSegment::open("/pyrewind-does-not-exist-0123", &error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(AttachedSegment::open("", &error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(AttachedSegment::open(nullptr, &error), nullptr);
  EXPECT_FALSE(error.empty());

  // Not a pyrewind segment: zeros, and too small.
  for (uint64_t size : {uint64_t{100}, uint64_t{kHeaderBytes + 4 * 4096}}) {
    const std::string name = "/pyrewind-test-foreign-" + std::to_string(getpid());
    bip::shared_memory_object::remove(name.c_str());
    {
      bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, bip::permissions(0600));
      shm.truncate(static_cast<bip::offset_t>(size));
    }
    error.clear();
    EXPECT_EQ(AttachedSegment::open(name.c_str(), &error), nullptr) << size;
    EXPECT_FALSE(error.empty());
    bip::shared_memory_object::remove(name.c_str());
  }

  // Reserved for another process.
  SegmentOptions options;
  options.segment_bytes = kHeaderBytes + 4 * 4096;
  options.chunk_bytes = 4096;
  options.target_pid = static_cast<uint32_t>(getpid()) + 1;
  auto segment = OwnedSegment::create(options, &error);
  ASSERT_NE(segment, nullptr) << error;
  error.clear();
  EXPECT_EQ(AttachedSegment::open(segment->name().c_str(), &error), nullptr);
  EXPECT_NE(error.find("reserved"), std::string::npos) << error;
  segment->header()->target_pid = static_cast<uint32_t>(getpid());
  EXPECT_NE(AttachedSegment::open(segment->name().c_str(), &error), nullptr) << error;
}

TEST(Segment, ValidateHeaderRejectsInconsistentHeaders) {
  auto segment = make_segment(8);
  ASSERT_NE(segment, nullptr);
  SegmentHeader* h = segment->header();
  const uint64_t size = segment->size();
  std::string error;
  ASSERT_TRUE(validate_header(*h, size, &error)) << error;

  auto expect_rejected = [&](const char* what, auto mutate, auto restore, uint64_t mapped) {
    mutate();
    std::string why;
    EXPECT_FALSE(validate_header(*h, mapped, &why)) << what;
    EXPECT_FALSE(why.empty()) << what;
    EXPECT_EQ(Drainer(h, mapped).valid(), false) << what;
    restore();
    ASSERT_TRUE(validate_header(*h, size, &why)) << what << ": " << why;
  };
  expect_rejected("magic", [&] { h->magic[3] ^= 1; }, [&] { h->magic[3] ^= 1; }, size);
  expect_rejected("abi version", [&] { h->abi_version = kAbiVersion + 1; }, [&] { h->abi_version = kAbiVersion; },
                  size);
  expect_rejected("header bytes", [&] { h->header_bytes = 4096; }, [&] { h->header_bytes = kHeaderBytes; }, size);
  expect_rejected("segment bytes", [&] { h->segment_bytes = size + 4096; }, [&] { h->segment_bytes = size; },
                  size);
  expect_rejected("mapping smaller than segment", [] {}, [] {}, size - 4096);
  expect_rejected("mapping smaller than header", [] {}, [] {}, 64);
  expect_rejected("chunk bytes not multiple of 64", [&] { h->chunk_bytes = 4096 + 8; },
                  [&] { h->chunk_bytes = 4096; }, size);
  expect_rejected("chunk bytes too small", [&] { h->chunk_bytes = 2048; }, [&] { h->chunk_bytes = 4096; }, size);
  expect_rejected("chunk bytes too large", [&] { h->chunk_bytes = 4u << 20; }, [&] { h->chunk_bytes = 4096; },
                  size);
  expect_rejected("chunks beyond the mapping", [&] { h->chunk_count = 9; }, [&] { h->chunk_count = 8; }, size);
  expect_rejected("one chunk", [&] { h->chunk_count = 1; }, [&] { h->chunk_count = 8; }, size);
  expect_rejected("chunk count overflow", [&] { h->chunk_count = 0xFFFFFFFFu; }, [&] { h->chunk_count = 8; }, size);
  expect_rejected("geometry product overflow",
                  [&] {
                    h->chunk_count = kMaxChunks;
                    h->chunk_bytes = kMaxChunkBytes;
                  },
                  [&] {
                    h->chunk_count = 8;
                    h->chunk_bytes = 4096;
                  },
                  size);
  expect_rejected("patterns bytes", [&] { h->config.patterns_bytes = 8193; }, [&] { h->config.patterns_bytes = 0; },
                  size);
  // Fewer, larger chunks that still fit are consistent.
  h->chunk_count = 4;
  h->chunk_bytes = 8192;
  EXPECT_TRUE(validate_header(*h, size, &error)) << error;
}

TEST(Segment, AgentMessageIsBounded) {
  auto segment = make_segment(2);
  ASSERT_NE(segment, nullptr);
  SegmentHeader& h = *segment->header();
  EXPECT_EQ(agent_message(h), "");
  set_agent_message(h, "tracing stopped: out of memory");
  EXPECT_EQ(agent_message(h), "tracing stopped: out of memory");
  set_agent_message(h, "short");
  EXPECT_EQ(agent_message(h), "short");
  std::string long_text(600, 'x');
  set_agent_message(h, long_text.c_str());
  EXPECT_EQ(agent_message(h), std::string(512, 'x'));
  // A multi-byte character straddling the bound is dropped whole.
  std::string utf8(511, 'y');
  utf8 += "\xc3\xa9tail";
  set_agent_message(h, utf8.c_str());
  EXPECT_EQ(agent_message(h), std::string(511, 'y'));
  // A hostile length is clamped to the buffer.
  h.agent_message_bytes.store(1u << 30);
  EXPECT_EQ(agent_message(h).size(), 512u);
  set_agent_message(h, nullptr);
  EXPECT_EQ(agent_message(h), "");
}

TEST(Segment, SweepRemovesSegmentsOfDeadProcessesOnly) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // `child` is now a pid nobody has

  const std::string hex = "0123456789abcdef0123456789abcdef";
  const std::string dead = "/pyrewind-" + std::to_string(child) + "-" + hex;
  const std::string live = "/pyrewind-" + std::to_string(getpid()) + "-" + hex;
  const std::string other = "/pyrewind-" + std::to_string(child) + "-notes";  // not our name format
  for (const std::string& name : {dead, live, other}) {
    bip::shared_memory_object::remove(name.c_str());
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, bip::permissions(0600));
    shm.truncate(4096);
    ASSERT_TRUE(shm_exists(name)) << name;
  }
  auto segment = make_segment(2);  // a live segment created the normal way
  ASSERT_NE(segment, nullptr);

  OwnedSegment::sweep_stale();
  EXPECT_FALSE(shm_exists(dead));
  EXPECT_TRUE(shm_exists(live));
  EXPECT_TRUE(shm_exists(other));
  EXPECT_TRUE(shm_exists(segment->name()));
  bip::shared_memory_object::remove(live.c_str());
  bip::shared_memory_object::remove(other.c_str());
}

// ---------------------------------------------------------------------------------------------
// Writer and drainer in one process

TEST(Ring, SingleWriterRoundTrip) {
  auto segment = make_segment(8);
  ASSERT_NE(segment, nullptr);
  Drainer drainer(segment->header(), segment->size());
  ASSERT_TRUE(drainer.valid()) << drainer.error();
  CheckingSink sink;
  ChunkWriter writer(segment->header(), 5);
  EXPECT_EQ(writer.writer_id(), 5u);
  const uint64_t kRecords = 1000;  // spans several chunks, recycled along the way
  for (uint64_t seq = 0; seq < kRecords; ++seq) {
    ASSERT_TRUE(append_record(writer, 5, seq)) << seq;
    if (seq % 50 == 0) drainer.poll(sink);
  }
  drain_all(drainer, sink);
  // The open chunk's committed prefix is delivered before the chunk is complete.
  EXPECT_EQ(sink.logs[5].received, kRecords);
  const auto states = chunk_states(segment->header());
  EXPECT_EQ(std::count(states.begin(), states.end(), kWriting), 1);
  writer.finish();
  drain_all(drainer, sink);
  const CheckingSink::Log& log = sink.logs[5];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  EXPECT_EQ(log.received, kRecords);
  EXPECT_EQ(log.dropped_records, 0u);
  EXPECT_GT(log.chunks, 8u);
  EXPECT_EQ(writer.dropped_records(), 0u);
  EXPECT_FALSE(writer.take_drop_flag());
  EXPECT_TRUE(sink.corruptions.empty());
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kFree);
  EXPECT_EQ(drainer.stats().packets, kRecords);
  EXPECT_EQ(drainer.stats().chunks_recycled, log.chunks);
  EXPECT_EQ(drainer.stats().corrupt_chunks, 0u);
}

TEST(Ring, ChunkBytesParseAsPacketBatch) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  std::vector<v1::Packet> packets(4);
  packets[0].mutable_string_def()->set_id(1);
  packets[0].mutable_string_def()->set_text("app.py");
  v1::CodeDef* code = packets[1].mutable_code_def();
  code->set_id(7);
  code->set_file_name_id(1);
  code->set_first_line(3);
  code->add_local_name_ids(2);
  code->add_local_name_ids(3);
  v1::Event* event = packets[2].mutable_event();
  event->set_kind(v1::EVENT_CALL);
  event->set_code_id(7);
  event->set_time_delta_ns(1500);
  auto* local = event->add_locals();
  local->set_slot(1);
  local->mutable_value()->set_int_value(-3);
  // packets[3] stays empty: a Packet of 0 bytes.

  ChunkWriter writer(segment->header(), 0);
  for (const v1::Packet& p : packets) {
    const std::string bytes = p.SerializeAsString();
    ASSERT_TRUE(writer.append(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 100));
  }
  ChunkHeader* chunk = find_chunk(segment->header(), 0, 0);
  ASSERT_NE(chunk, nullptr);
  EXPECT_EQ(chunk->state.load(), kWriting);
  EXPECT_EQ(chunk->base_time_ns, 100u);
  v1::PacketBatch batch;
  ASSERT_TRUE(batch.ParseFromArray(payload_of(chunk), static_cast<int>(chunk->committed.load())));
  ASSERT_EQ(batch.packet_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(batch.packet(i).SerializeAsString(), packets[i].SerializeAsString()) << i;
  // Byte-identical to what libprotobuf would serialise for the batch.
  v1::PacketBatch expected;
  for (const v1::Packet& p : packets) *expected.add_packet() = p;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(payload_of(chunk)), chunk->committed.load()),
            expected.SerializeAsString());

  writer.finish();
  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  EXPECT_EQ(drain_all(drainer, sink), 4u);
  std::vector<std::string> got = sink.packets();
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    v1::Packet parsed;
    ASSERT_TRUE(parsed.ParseFromString(got[i]));
    EXPECT_EQ(parsed.SerializeAsString(), packets[i].SerializeAsString());
  }
  ASSERT_EQ(sink.items[0].kind, RecordingSink::Item::kStart);
  EXPECT_EQ(sink.items[0].base, 100u);
}

// Packets written in place (short, two- and three-byte lengths, an abandoned one) frame to
// exactly the bytes libprotobuf serialises, interleaved with appended ones.
TEST(Ring, InPlacePacketsFrameLikeAppendedOnes) {
  auto segment = make_segment(4, 65536);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 3);
  size_t room = 1;
  EXPECT_EQ(writer.in_place_space(&room), nullptr);  // no chunk yet
  EXPECT_EQ(room, 0u);
  std::vector<std::string> packets;
  for (size_t padding : {0, 10, 200, 20000}) {
    v1::Packet packet;
    packet.mutable_event()->set_code_id(padding + 1);
    if (padding) packet.mutable_event()->mutable_exception()->set_message(std::string(padding, 'x'));
    packets.push_back(packet.SerializeAsString());
  }
  ASSERT_TRUE(writer.append(reinterpret_cast<const uint8_t*>(packets[0].data()), packets[0].size(), 7));
  for (size_t i = 1; i < packets.size(); ++i) {
    uint8_t* space = writer.in_place_space(&room);
    ASSERT_NE(space, nullptr);
    ASSERT_GE(room, packets[i].size());
    std::memset(space, 0xEE, std::min<size_t>(room, 64));  // abandoned: never published
    space = writer.in_place_space(&room);
    std::memcpy(space, packets[i].data(), packets[i].size());
    writer.commit_in_place(packets[i].size(), 8);
  }
  ChunkHeader* chunk = find_chunk(segment->header(), 3, 0);
  ASSERT_NE(chunk, nullptr);
  v1::PacketBatch expected;
  for (const std::string& p : packets) expected.add_packet()->ParseFromString(p);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(payload_of(chunk)), chunk->committed.load()),
            expected.SerializeAsString());
  // What is left never overlaps the committed bytes and shrinks as they grow.
  const size_t before = room;
  uint8_t* space = writer.in_place_space(&room);
  EXPECT_GE(space, payload_of(chunk) + chunk->committed.load());
  EXPECT_LT(room, before);
  writer.finish();
  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  EXPECT_EQ(drain_all(drainer, sink), packets.size());
  EXPECT_EQ(sink.packets(), packets);
}

// What the drainer finds committed and not yet drained when a poll begins, as a share of the
// ring: the collector's measure of how far behind it is.
TEST(Ring, BacklogIsTheUndrainedShareOfTheRing) {
  auto segment = make_segment(4, 65536);
  ASSERT_NE(segment, nullptr);
  const double capacity = 4.0 * chunk_payload_bytes(65536);
  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  drainer.poll(sink);
  ASSERT_EQ(sink.backlogs.size(), 1u);
  EXPECT_EQ(sink.backlogs[0], 0.0);
  ChunkWriter writer(segment->header(), 1);
  const std::string packet(1000, 'p');
  size_t framed = 0;
  for (int i = 0; i < 100; ++i) {  // 100 KB: two chunks of four, the second still being written
    ASSERT_TRUE(writer.append(reinterpret_cast<const uint8_t*>(packet.data()), packet.size(), 1));
    framed += 1 + 2 + packet.size();
  }
  drainer.poll(sink);
  EXPECT_NEAR(sink.backlogs[1], framed / capacity, 0.001);
  EXPECT_EQ(sink.packets().size(), 100u);
  drainer.poll(sink);
  EXPECT_EQ(sink.backlogs[2], 0.0);  // all drained; the writer still holds its chunk
}

// Frames whose length takes three bytes (packets of 16 KiB and more) are read as any other.
TEST(Ring, LongFramesBetweenShortOnes) {
  auto segment = make_segment(4, 65536);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 2);
  const std::vector<std::string> packets = {std::string(5, 'a'), std::string(20000, 'b'), std::string(200, 'c'),
                                            std::string(16383, 'd'), std::string(16384, 'e'), std::string(1, 'f')};
  for (const std::string& p : packets)
    ASSERT_TRUE(writer.append(reinterpret_cast<const uint8_t*>(p.data()), p.size(), 1));
  writer.finish();
  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  drain_all(drainer, sink);
  EXPECT_EQ(sink.packets(), packets);
  EXPECT_TRUE(sink.corruptions.empty());
}

TEST(Ring, ConcurrentWritersLoseNothingUncounted) {
  constexpr int kWriters = 8;
  constexpr uint64_t kRecords = 40000;
  auto segment = make_segment(64);  // small: writers outrun the collector at times and drop
  ASSERT_NE(segment, nullptr);
  Drainer drainer(segment->header(), segment->size());
  ASSERT_TRUE(drainer.valid());
  CheckingSink sink;
  std::atomic<bool> done{false};
  std::thread collector([&] {
    while (!done.load(std::memory_order_acquire)) {
      if (drainer.poll(sink) == 0) std::this_thread::yield();
    }
  });
  std::vector<uint64_t> attempted(kWriters), dropped(kWriters), dropped_bytes(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      const uint32_t id = static_cast<uint32_t>(w) * 3 + 1;  // ids need not be dense
      ChunkWriter writer(segment->header(), id);
      uint64_t seq = 0;
      const auto deadline = Clock::now() + std::chrono::seconds(30);
      // After kRecords, keep writing until one record gets through: that chunk carries the
      // final drop counts.
      for (;; ++seq) {
        const bool ok = append_record(writer, id, seq);
        if (ok && seq + 1 >= kRecords) break;
        if (seq + 1 >= kRecords && Clock::now() > deadline) {
          ADD_FAILURE() << "writer " << id << " never got a chunk again";
          break;
        }
        if (!ok && seq + 1 >= kRecords) std::this_thread::yield();
        // Bursts with short pauses, so the ring alternates between full and draining.
        if (seq % 256 == 255) std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      attempted[w] = seq + 1;
      dropped[w] = writer.dropped_records();
      dropped_bytes[w] = writer.dropped_bytes();
      writer.finish();
    });
  }
  for (auto& t : threads) t.join();
  done.store(true, std::memory_order_release);
  collector.join();
  drain_all(drainer, sink);

  uint64_t total_dropped = 0, total_received = 0;
  for (int w = 0; w < kWriters; ++w) {
    const uint32_t id = static_cast<uint32_t>(w) * 3 + 1;
    const CheckingSink::Log& log = sink.logs[id];
    EXPECT_EQ(log.error, "") << "writer " << id;
    EXPECT_EQ(log.received + log.dropped_records, attempted[w]) << "writer " << id;
    EXPECT_EQ(log.expected, attempted[w]) << "writer " << id;
    EXPECT_EQ(log.dropped_records, dropped[w]) << "writer " << id;
    EXPECT_EQ(log.dropped_bytes, dropped_bytes[w]) << "writer " << id;
    EXPECT_GT(log.received, 0u);
    total_dropped += log.dropped_records;
    total_received += log.received;
  }
  EXPECT_EQ(sink.logs.size(), static_cast<size_t>(kWriters));
  EXPECT_EQ(sink.verify(), "");
  EXPECT_TRUE(sink.corruptions.empty()) << sink.corruptions.front();
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kFree);
  std::printf("[ info ] %d writers x %llu records: %llu received, %llu dropped, %llu chunks recycled\n",
              kWriters, static_cast<unsigned long long>(kRecords), static_cast<unsigned long long>(total_received),
              static_cast<unsigned long long>(total_dropped),
              static_cast<unsigned long long>(drainer.stats().chunks_recycled));
}

// ---------------------------------------------------------------------------------------------
// Loss accounting

TEST(Ring, OverflowCountsAreExactAndReachTheNextChunk) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 2);
  uint64_t seq = 0, failures = 0, failure_bytes = 0, successes = 0;
  for (; seq < 1000; ++seq) {  // nobody drains: the ring fills up
    if (append_record(writer, 2, seq)) {
      ++successes;
    } else {
      ++failures;
      failure_bytes += make_record(2, seq).size();
    }
  }
  EXPECT_GT(successes, 4u * 20);
  EXPECT_EQ(successes + failures, 1000u);
  EXPECT_EQ(writer.dropped_records(), failures);
  EXPECT_EQ(writer.dropped_bytes(), failure_bytes);
  EXPECT_TRUE(writer.take_drop_flag());
  EXPECT_FALSE(writer.take_drop_flag());
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kComplete);

  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  drain_all(drainer, sink);
  EXPECT_EQ(sink.logs[2].received, successes);
  EXPECT_EQ(sink.logs[2].dropped_records, 0u);  // not yet stated: no chunk since the drops

  // The ring has room again; the writer notices within its back-off and states the drops.
  uint64_t more_failures = 0;
  for (;; ++seq) {
    if (append_record(writer, 2, seq)) break;
    ++more_failures;
    failure_bytes += make_record(2, seq).size();
    ASSERT_LE(more_failures, 1025u) << "back-off must stay bounded";
  }
  ++seq;
  writer.finish();
  drain_all(drainer, sink);
  const CheckingSink::Log& log = sink.logs[2];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  EXPECT_EQ(log.dropped_records, failures + more_failures);
  EXPECT_EQ(log.dropped_bytes, failure_bytes);
  EXPECT_EQ(log.received + log.dropped_records, seq);
  EXPECT_EQ(writer.dropped_records(), failures + more_failures);
  EXPECT_TRUE(sink.corruptions.empty());
}

TEST(Ring, BackOffEndsAfterSomeRecordsOrSomeTime) {
  auto segment = make_segment(2);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 4);
  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  sink.check_base = false;
  const uint64_t t0 = 5000000;
  uint64_t seq = 0;
  while (append_record(writer, 4, seq, t0)) {  // until the ring is full: a scan failed at t0
    ++seq;
    ASSERT_LT(seq, 1000u);
  }
  ++seq;
  drain_all(drainer, sink);  // room again
  // Within the back-off the writer does not look (a scan per dropped record would cost more
  // than the records), however many chunks are free...
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(append_record(writer, 4, seq++, t0 + 1000));
  // ...but 20 us later by its clock it does.
  EXPECT_TRUE(append_record(writer, 4, seq++, t0 + 20000));
  writer.finish();
  drain_all(drainer, sink);
  const CheckingSink::Log& log = sink.logs[4];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  EXPECT_EQ(log.dropped_records, 11u);
  EXPECT_EQ(log.received + log.dropped_records, seq);
}

TEST(Ring, OversizedPacketIsDroppedWhereItWas) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 0);
  const std::string small = "\x2a\x02\x08\x01";  // Packet{event{kind: CALL}}
  const std::vector<uint8_t> huge(kSmallPayload - 2, 0x55);  // + tag + 2-byte length > payload
  const std::vector<uint8_t> fits(kSmallPayload - 3, 0x2a);  // exactly fills a chunk
  auto put = [&](const void* p, size_t n, uint64_t t) {
    return writer.append(static_cast<const uint8_t*>(p), n, t);
  };
  EXPECT_TRUE(put(small.data(), small.size(), 10));
  EXPECT_TRUE(put(small.data(), small.size(), 11));
  EXPECT_FALSE(put(huge.data(), huge.size(), 12));
  EXPECT_FALSE(put(nullptr, size_t{1} << 40, 13));  // absurd sizes too
  EXPECT_TRUE(put(small.data(), small.size(), 14));
  EXPECT_TRUE(put(fits.data(), fits.size(), 15));
  EXPECT_EQ(writer.dropped_records(), 2u);
  EXPECT_EQ(writer.dropped_bytes(), huge.size() + (size_t{1} << 40));
  writer.finish();

  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  drain_all(drainer, sink);
  using Item = RecordingSink::Item;
  ASSERT_EQ(sink.items.size(), 7u);
  EXPECT_EQ(sink.items[0].kind, Item::kStart);
  EXPECT_EQ(sink.items[0].base, 10u);
  EXPECT_EQ(sink.items[0].dropped_records, 0u);
  EXPECT_EQ(sink.items[1].kind, Item::kPacket);
  EXPECT_EQ(sink.items[2].kind, Item::kPacket);
  EXPECT_EQ(sink.items[3].kind, Item::kStart);  // the drop closed the first chunk
  EXPECT_EQ(sink.items[3].base, 14u);
  EXPECT_EQ(sink.items[3].dropped_records, 2u);
  EXPECT_EQ(sink.items[3].dropped_bytes, huge.size() + (size_t{1} << 40));
  EXPECT_EQ(sink.items[4].bytes, small);
  EXPECT_EQ(sink.items[5].kind, Item::kStart);  // `fits` needed a chunk of its own
  EXPECT_EQ(sink.items[6].bytes.size(), fits.size());
  EXPECT_TRUE(sink.corruptions.empty());
}

TEST(Ring, FinishStatesPendingDropsInAnEmptyChunk) {
  auto segment = make_segment(2);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 9);
  uint64_t seq = 0, failures = 0;
  for (; seq < 300; ++seq) failures += append_record(writer, 9, seq) ? 0 : 1;
  ASSERT_GT(failures, 0u);
  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  drain_all(drainer, sink);
  writer.finish();  // no record follows: the counts travel in a chunk without records
  drain_all(drainer, sink);
  const CheckingSink::Log& log = sink.logs[9];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  EXPECT_EQ(log.dropped_records, failures);
  EXPECT_EQ(log.received + log.dropped_records, seq);
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kFree);
  EXPECT_TRUE(sink.corruptions.empty());
}

// Detach: the agent closes every writer, then unmaps the segment; a thread's writer is
// destroyed later (thread or process exit). With drop counts that found no free chunk, it used
// to look for one again in the unmapped segment.
TEST(Ring, ClosedWriterNeverTouchesTheSegmentAgain) {
  auto segment = make_segment(2);
  ASSERT_NE(segment, nullptr);
  auto writer = std::make_unique<ChunkWriter>(segment->header(), 9);
  uint64_t failures = 0;
  for (uint64_t seq = 0; seq < 300; ++seq) failures += append_record(*writer, 9, seq) ? 0 : 1;
  ASSERT_GT(failures, 0u);  // the ring is full: nothing can carry the counts
  writer->close();
  segment.reset();  // unmapped
  EXPECT_FALSE(append_record(*writer, 9, 300));
  writer->finish();
  writer.reset();  // ~ChunkWriter: finish() again
}

TEST(Ring, HeartbeatAdvances) {
  auto segment = make_segment(2);
  ASSERT_NE(segment, nullptr);
  Drainer drainer(segment->header(), segment->size());
  RecordingSink sink;
  const uint64_t start = segment->header()->collector_heartbeat_ns.load();
  drainer.poll(sink);
  const uint64_t first = segment->header()->collector_heartbeat_ns.load();
  EXPECT_GE(first, start);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  drainer.poll(sink);
  EXPECT_GT(segment->header()->collector_heartbeat_ns.load(), first);
}

// ---------------------------------------------------------------------------------------------
// Across processes

struct ChildReport {
  std::atomic<uint32_t> attached;
  std::atomic<uint64_t> attempted;
  std::atomic<uint64_t> last_ok;  // 1 + sequence number of the last record known committed
  std::atomic<uint64_t> dropped;
};

ChildReport* shared_report() {
  void* p = mmap(nullptr, sizeof(ChildReport), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return new (p) ChildReport{};
}

// The child: attach by name, write records, report through `report`. Never returns.
[[noreturn]] void child_writer(const std::string& name, ChildReport* report, uint64_t records, bool forever) {
  std::string error;
  auto attached = AttachedSegment::open(name.c_str(), &error);
  if (attached == nullptr) _exit(3);
  report->attached.store(1, std::memory_order_release);
  ChunkWriter writer(attached->header(), 0);
  const auto deadline = Clock::now() + std::chrono::seconds(20);  // if the parent never kills us
  uint64_t seq = 0;
  for (;; ++seq) {
    const bool ok = append_record(writer, 0, seq);
    if (ok) report->last_ok.store(seq + 1, std::memory_order_release);
    report->attempted.store(seq + 1, std::memory_order_release);
    if (!forever && ok && seq + 1 >= records) break;
    if ((seq & 1023) == 0 && Clock::now() > deadline) _exit(4);
  }
  report->dropped.store(writer.dropped_records(), std::memory_order_release);
  writer.finish();
  _exit(0);
}

TEST(Ring, CrossProcessWriter) {
  auto segment = make_segment(64);
  ASSERT_NE(segment, nullptr);
  ChildReport* report = shared_report();
  ASSERT_NE(report, nullptr);
  const uint64_t kRecords = 200000;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) child_writer(segment->name(), report, kRecords, false);

  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  bool unlinked = false;
  int status = 0;
  for (;;) {
    if (!unlinked && report->attached.load(std::memory_order_acquire)) {
      segment->unlink();  // as the collector does once the agent has mapped the segment
      unlinked = true;
    }
    if (drainer.poll(sink) == 0) {
      pid_t done = waitpid(child, &status, WNOHANG);
      if (done == child) break;
      std::this_thread::yield();
    }
  }
  drain_all(drainer, sink);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(unlinked);
  const CheckingSink::Log& log = sink.logs[0];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  EXPECT_EQ(log.received + log.dropped_records, report->attempted.load());
  EXPECT_EQ(log.dropped_records, report->dropped.load());
  EXPECT_GE(log.received, 1u);
  EXPECT_TRUE(sink.corruptions.empty());
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kFree);
  munmap(report, sizeof(ChildReport));
}

TEST(Ring, WriterKilledMidWriteLosesNothingCommitted) {
  auto segment = make_segment(64);
  ASSERT_NE(segment, nullptr);
  ChildReport* report = shared_report();
  ASSERT_NE(report, nullptr);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) child_writer(segment->name(), report, 0, true);

  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  while (sink.logs[0].received < 30000 && Clock::now() < deadline) {
    if (drainer.poll(sink) == 0) std::this_thread::yield();
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer must die mid-write";
  drain_all(drainer, sink);

  const CheckingSink::Log& log = sink.logs[0];
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(sink.verify(), "");
  const uint64_t last_ok = report->last_ok.load();
  ASSERT_GE(last_ok, 30000u);
  // Every record the child saw committed was delivered (at most one more that it committed
  // but did not get to report).
  EXPECT_GE(log.expected, last_ok);
  EXPECT_LE(log.expected, report->attempted.load() + 1);
  EXPECT_TRUE(sink.corruptions.empty());
  // At most the chunk the child held remains; everything complete was recycled.
  const auto states = chunk_states(segment->header());
  EXPECT_LE(std::count(states.begin(), states.end(), kWriting), 1);
  EXPECT_EQ(std::count(states.begin(), states.end(), kComplete), 0);
  munmap(report, sizeof(ChildReport));
}

// ---------------------------------------------------------------------------------------------
// Hostile segment contents

// Writer 1 has filled chunks 0, 1, 2 (COMPLETE) and put one record into chunk 3 (WRITING).
struct ThreeChunks {
  std::unique_ptr<OwnedSegment> segment;
  std::unique_ptr<ChunkWriter> writer;  // declared after the segment: destroyed before it
  ChunkHeader* chunk[3] = {};
  uint64_t records = 0;
};

ThreeChunks write_three_chunks() {
  ThreeChunks t;
  t.segment = make_segment(8);
  t.writer = std::make_unique<ChunkWriter>(t.segment->header(), 1);
  uint64_t seq = 0;
  while (find_chunk(t.segment->header(), 1, 3) == nullptr && seq < 10000) {
    EXPECT_TRUE(append_record(*t.writer, 1, seq));
    ++seq;
  }
  for (int i = 0; i < 3; ++i) t.chunk[i] = find_chunk(t.segment->header(), 1, static_cast<uint64_t>(i));
  t.records = seq;
  return t;
}

TEST(Corruption, GarbageFrameIsReportedAndChunkRecycled) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 0);
  for (uint64_t seq = 0; seq < 3; ++seq) ASSERT_TRUE(append_record(writer, 0, seq));
  writer.finish();
  ChunkHeader* chunk = find_chunk(segment->header(), 0, 0);
  ASSERT_NE(chunk, nullptr);
  const size_t first_frame = 2 + make_record(0, 0).size();
  payload_of(chunk)[first_frame] = 0x12;  // field 2 instead of PacketBatch.packet

  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  drain_all(drainer, sink);
  EXPECT_EQ(sink.logs[0].received, 1u);
  ASSERT_EQ(sink.corruptions.size(), 1u);
  EXPECT_NE(sink.corruptions[0].find("unexpected field 2"), std::string::npos) << sink.corruptions[0];
  EXPECT_EQ(chunk->state.load(), kFree);
  EXPECT_EQ(drainer.stats().corrupt_chunks, 1u);
}

TEST(Corruption, TornFrameSkipsTheRestOfTheChunkButNotTheStream) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  ChunkWriter writer(segment->header(), 0);
  ASSERT_TRUE(append_record(writer, 0, 0));
  ASSERT_TRUE(append_record(writer, 0, 1));
  ChunkHeader* chunk = find_chunk(segment->header(), 0, 0);
  ASSERT_NE(chunk, nullptr);
  const uint32_t first_frame = static_cast<uint32_t>(2 + make_record(0, 0).size());
  chunk->committed.store(first_frame + 3);  // ends inside the second frame
  Drainer drainer(segment->header(), segment->size());
  CheckingSink sink;
  drain_all(drainer, sink);
  EXPECT_EQ(sink.logs[0].received, 1u);
  ASSERT_EQ(sink.corruptions.size(), 1u);
  EXPECT_NE(sink.corruptions[0].find("torn"), std::string::npos) << sink.corruptions[0];

  // The writer goes on; the poisoned chunk is recycled once complete, and later chunks flow.
  uint64_t seq = 2;
  while (find_chunk(segment->header(), 0, 1) == nullptr) {
    ASSERT_TRUE(append_record(writer, 0, seq++));
    ASSERT_LT(seq, 1000u);
  }
  writer.finish();
  RecordingSink after;
  drain_all(drainer, after);
  EXPECT_TRUE(after.corruptions.empty());
  ASSERT_EQ(after.items.size(), 2u);  // chunk 1: its start and its single record
  EXPECT_EQ(after.items[0].kind, RecordingSink::Item::kStart);
  v1::Packet last;
  ASSERT_TRUE(last.ParseFromString(after.items[1].bytes));
  EXPECT_EQ(last.event().time_delta_ns(), seq - 1);
  for (uint32_t state : chunk_states(segment->header())) EXPECT_EQ(state, kFree);
}

TEST(Corruption, BadCommittedSizes) {
  {  // beyond the payload
    auto segment = make_segment(4);
    ASSERT_NE(segment, nullptr);
    ChunkWriter writer(segment->header(), 0);
    ASSERT_TRUE(append_record(writer, 0, 0));
    writer.finish();
    ChunkHeader* chunk = find_chunk(segment->header(), 0, 0);
    chunk->committed.store(kSmallPayload + 1);
    Drainer drainer(segment->header(), segment->size());
    TouchingSink sink;
    drain_all(drainer, sink);
    EXPECT_EQ(sink.packets, 0u);
    EXPECT_EQ(sink.corruptions, 1u);
    EXPECT_EQ(chunk->state.load(), kFree);
  }
  {  // going backwards
    auto segment = make_segment(4);
    ASSERT_NE(segment, nullptr);
    ChunkWriter writer(segment->header(), 0);
    ASSERT_TRUE(append_record(writer, 0, 0));
    ASSERT_TRUE(append_record(writer, 0, 1));
    Drainer drainer(segment->header(), segment->size());
    TouchingSink sink;
    drain_all(drainer, sink);
    EXPECT_EQ(sink.packets, 2u);
    ChunkHeader* chunk = find_chunk(segment->header(), 0, 0);
    chunk->committed.store(chunk->committed.load() - 1);
    drain_all(drainer, sink);
    EXPECT_EQ(sink.corruptions, 1u);
    chunk->committed.store(0);  // and to zero
    drain_all(drainer, sink);
    EXPECT_EQ(sink.corruptions, 1u);  // one report per chunk
    EXPECT_EQ(drainer.stats().corrupt_chunks, 1u);
  }
}

TEST(Corruption, InvalidStateAndWriterIdAreReportedOnce) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  ChunkHeader* a = chunk_at(segment->header(), 0);
  ChunkHeader* b = chunk_at(segment->header(), 1);
  a->state.store(7);
  b->writer_id = 0xFFFFFFF0u;
  b->committed.store(10);
  b->state.store(kComplete);
  Drainer drainer(segment->header(), segment->size());
  TouchingSink sink;
  drainer.poll(sink);
  drainer.poll(sink);
  drainer.poll(sink);
  EXPECT_EQ(sink.corruptions, 2u);
  EXPECT_EQ(sink.packets, 0u);
  EXPECT_EQ(sink.starts, 0u);
  EXPECT_EQ(b->state.load(), kFree);  // a chunk of nobody is recycled, not leaked
  EXPECT_EQ(b->committed.load(), 0u);
  a->state.store(kFree);
  drainer.poll(sink);
  EXPECT_EQ(sink.corruptions, 2u);
}

TEST(Corruption, MissingSequenceIsSkippedAfterARescan) {
  ThreeChunks t = write_three_chunks();
  ASSERT_NE(t.chunk[2], nullptr);
  t.chunk[1]->state.store(9);  // chunk 1 is lost
  Drainer drainer(t.segment->header(), t.segment->size());
  RecordingSink sink;
  drainer.poll(sink);  // a single poll suffices: the gap is confirmed by the rescan
  int starts = 0;
  for (const auto& item : sink.items) starts += item.kind == RecordingSink::Item::kStart;
  EXPECT_EQ(starts, 3);  // chunks 0, 2 and the open chunk 3
  ASSERT_EQ(sink.corruptions.size(), 2u);
  EXPECT_NE(sink.corruptions[0].find("invalid chunk state 9"), std::string::npos) << sink.corruptions[0];
  EXPECT_NE(sink.corruptions[1].find("chunks 1..1 are missing"), std::string::npos) << sink.corruptions[1];
  EXPECT_EQ(t.chunk[0]->state.load(), kFree);
  EXPECT_EQ(t.chunk[2]->state.load(), kFree);
  // Records of chunks 0, 2 and 3 arrived in order.
  uint64_t previous = 0;
  bool first = true;
  size_t packets = 0;
  for (const std::string& bytes : sink.packets()) {
    v1::Packet p;
    ASSERT_TRUE(p.ParseFromString(bytes));
    if (!first) {
      EXPECT_GT(p.event().time_delta_ns(), previous);
    }
    previous = p.event().time_delta_ns();
    first = false;
    ++packets;
  }
  EXPECT_EQ(previous, t.records - 1);
  EXPECT_LT(packets, t.records);
}

TEST(Corruption, DuplicateAndRewrittenHeaders) {
  ThreeChunks t = write_three_chunks();
  ASSERT_NE(t.chunk[2], nullptr);
  // A duplicate of chunk 0 in a free chunk.
  SegmentHeader* h = t.segment->header();
  ChunkHeader* dup = nullptr;
  for (uint32_t i = 0; i < h->chunk_count && dup == nullptr; ++i)
    if (chunk_at(h, i)->state.load() == kFree) dup = chunk_at(h, i);
  ASSERT_NE(dup, nullptr);
  std::memcpy(payload_of(dup), payload_of(t.chunk[0]), t.chunk[0]->committed.load());
  dup->writer_id = 1;
  dup->sequence = 0;
  dup->committed.store(t.chunk[0]->committed.load());
  dup->state.store(kComplete);
  Drainer drainer(h, t.segment->size());
  CheckingSink sink;
  drainer.poll(sink);
  EXPECT_EQ(sink.logs[1].error, "");
  EXPECT_EQ(sink.logs[1].received, t.records);  // delivered once
  ASSERT_EQ(sink.corruptions.size(), 1u);
  EXPECT_NE(sink.corruptions[0].find("already drained"), std::string::npos) << sink.corruptions[0];
  EXPECT_EQ(dup->state.load(), kFree);

  // The open chunk 3 changes identity while being drained.
  ChunkHeader* open = find_chunk(h, 1, 3);
  ASSERT_NE(open, nullptr);
  open->sequence = 17;
  drainer.poll(sink);
  ASSERT_EQ(sink.corruptions.size(), 2u);
  EXPECT_NE(sink.corruptions[1].find("changed"), std::string::npos) << sink.corruptions[1];
}

TEST(Corruption, DrainerRejectsAnInvalidSegment) {
  auto segment = make_segment(4);
  ASSERT_NE(segment, nullptr);
  segment->header()->abi_version = 99;
  Drainer drainer(segment->header(), segment->size());
  EXPECT_FALSE(drainer.valid());
  EXPECT_NE(drainer.error().find("ABI"), std::string::npos) << drainer.error();
  TouchingSink sink;
  EXPECT_EQ(drainer.poll(sink), 0u);
  Drainer null_drainer(nullptr, 0);
  EXPECT_FALSE(null_drainer.valid());
  EXPECT_EQ(null_drainer.poll(sink), 0u);
}

// Random garbage in chunk headers and payloads between the writers' appends and the polls.
TEST(Corruption, RandomGarbageManySeeds) {
  const auto started = Clock::now();
  constexpr uint32_t kChunks = 8;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    std::mt19937_64 rng(seed);
    auto segment = make_segment(kChunks);
    ASSERT_NE(segment, nullptr);
    SegmentHeader* h = segment->header();
    Drainer drainer(h, segment->size());
    ASSERT_TRUE(drainer.valid());
    TouchingSink sink;
    ChunkWriter writers[2] = {ChunkWriter(h, 0), ChunkWriter(h, 1)};
    std::vector<uint8_t> record(3000);
    auto any_value = [&]() -> uint64_t {
      switch (rng() % 7) {
        case 0: return 0;
        case 1: return 1 + rng() % 3;
        case 2: return rng() % (2 * kSmallChunk);
        case 3: return 0xFFFFFFFFu;
        case 4: return rng();
        case 5: return kSmallPayload + rng() % 4;
        default: return rng() % 64;
      }
    };
    for (int round = 0; round < 12; ++round) {
      for (auto& writer : writers) {
        const int n = static_cast<int>(rng() % 60);
        for (int i = 0; i < n; ++i) {
          const size_t size = rng() % 20 == 0 ? rng() % record.size() : rng() % 200;
          for (size_t k = 0; k < size; ++k) record[k] = static_cast<uint8_t>(rng());
          writer.append(record.data(), size, rng());
        }
        if (rng() % 4 == 0) writer.finish();
      }
      const int corruptions = static_cast<int>(rng() % 4);
      for (int c = 0; c < corruptions; ++c) {
        ChunkHeader* chunk = chunk_at(h, static_cast<uint32_t>(rng() % kChunks));
        switch (rng() % 9) {
          case 0: chunk->state.store(static_cast<uint32_t>(any_value())); break;
          case 1: chunk->committed.store(static_cast<uint32_t>(any_value())); break;
          case 2: chunk->writer_id = static_cast<uint32_t>(any_value()); break;
          case 3: chunk->sequence = any_value(); break;
          case 4: chunk->dropped_records_before = any_value(); break;
          case 5: {  // a plausible-looking frame header somewhere
            uint8_t* p = payload_of(chunk) + rng() % (kSmallPayload - 2);
            p[0] = 0x0A;
            p[1] = static_cast<uint8_t>(rng());
            break;
          }
          default: {
            uint8_t* p = payload_of(chunk) + rng() % kSmallPayload;
            *p = static_cast<uint8_t>(rng());
          }
        }
      }
      if (round % 4 == 3) {
        // Certainly detectable: an out-of-range state, seen by the very next poll.
        chunk_at(h, static_cast<uint32_t>(rng() % kChunks))->state.store(3 + static_cast<uint32_t>(rng() % 1000));
      }
      const int polls = 1 + static_cast<int>(rng() % 2);
      for (int p = 0; p < polls; ++p) drainer.poll(sink);
    }
    EXPECT_GE(sink.corruptions, 1u) << "seed " << seed;
    EXPECT_GE(drainer.stats().corrupt_chunks, 1u) << "seed " << seed;
  }
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
}

// A hostile process scribbles over the whole segment (the segment header's geometry included)
// while a writer writes and the collector drains: the drainer keeps to its own copies.
TEST(Corruption, ConcurrentScribbler) {
  auto segment = make_segment(16);
  ASSERT_NE(segment, nullptr);
  SegmentHeader* h = segment->header();
  Drainer drainer(h, segment->size());
  ASSERT_TRUE(drainer.valid());
  std::atomic<bool> stop{false};
  ChunkWriter writer(h, 0);  // takes its copy of the geometry before the scribbling starts
  std::thread writer_thread([&] {
    uint64_t seq = 0;
    while (!stop.load(std::memory_order_relaxed)) append_record(writer, 0, seq++);
  });
  std::thread scribbler([&] {
    std::mt19937_64 rng(12345);
    uint8_t* base = segment->base();
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t chunk = kHeaderBytes + (rng() % 16) * kSmallChunk;
      const uint64_t action = rng() % 100;
      if (action < 10) {
        // Let a chunk go (as a confused writer might), so the ring keeps moving.
        reinterpret_cast<ChunkHeader*>(base + chunk)->state.store(kFree, std::memory_order_release);
      } else {
        uint64_t offset;
        if (action < 20) {
          offset = rng() % 128;  // the segment header: geometry, sizes
        } else if (action < 50) {
          offset = chunk + rng() % sizeof(ChunkHeader);
        } else {
          offset = chunk + sizeof(ChunkHeader) + rng() % kSmallPayload;
        }
        __atomic_store_n(base + offset, static_cast<uint8_t>(rng()), __ATOMIC_RELAXED);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  TouchingSink sink;
  const auto until = Clock::now() + std::chrono::milliseconds(700);
  uint64_t polls = 0;
  while (Clock::now() < until) {
    drainer.poll(sink);
    ++polls;
  }
  stop.store(true);
  writer_thread.join();
  scribbler.join();
  drain_all(drainer, sink);
  EXPECT_GT(polls, 10u);
  EXPECT_GT(sink.corruptions, 0u);
  EXPECT_GT(sink.packets, 0u);
  std::printf("[ info ] %llu polls, %llu packets, %llu corruption reports\n", static_cast<unsigned long long>(polls),
              static_cast<unsigned long long>(sink.packets), static_cast<unsigned long long>(sink.corruptions));
}

}  // namespace
}  // namespace pyrewind::ring
