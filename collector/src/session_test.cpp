// The collector session against a fake agent: ring packets written with ChunkWriter +
// ProtoWriter exactly as the agent writes them, drained into a real recording file, which is
// then read back with the reader library and the generated protobuf classes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "collector/src/packet_validator.h"
#include "collector/src/recording_writer.h"
#include "collector/src/session.h"
#include "proto/ring/segment.h"
#include "proto/ring/writer.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"
#include "pyrewind/v1/recording.pb.h"
#include "pyrewind/v1/trace.pb.h"
#include "tools/reader/recording.h"
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>

namespace pyrewind::collector {
namespace {

namespace f = wire::fields;
using Bytes = std::vector<uint8_t>;

// --- encoding ring packets the way the agent does ----------------------------------------

class Encoder {
 public:
  Encoder() : buffer_(1 << 16), out_(buffer_.data(), buffer_.size()) {}
  wire::ProtoWriter& out() { return out_; }
  Bytes take() {
    EXPECT_FALSE(out_.overflowed());
    Bytes bytes(out_.data(), out_.data() + out_.size());
    out_.reset();
    return bytes;
  }

 private:
  Bytes buffer_;
  wire::ProtoWriter out_;
};

Bytes string_def(uint64_t id, const std::string& text) {
  Encoder e;
  auto body = e.out().begin_nested(f::Packet::kStringDef);
  e.out().varint_field(f::StringDef::kId, id);
  e.out().bytes_field(f::StringDef::kText, text.data(), text.size());
  e.out().end_nested(body);
  return e.take();
}

Bytes code_def(uint64_t id, uint64_t file_id, uint64_t name_id, uint32_t first_line, std::vector<uint64_t> locals) {
  Encoder e;
  auto body = e.out().begin_nested(f::Packet::kCodeDef);
  e.out().varint_field(f::CodeDef::kId, id);
  e.out().varint_field(f::CodeDef::kFileNameId, file_id);
  e.out().varint_field(f::CodeDef::kQualifiedNameId, name_id);
  e.out().varint_field(f::CodeDef::kFirstLine, first_line);
  // Packed, as the agent writes repeated integers.
  uint8_t packed[64];
  size_t n = 0;
  for (uint64_t local : locals) n += wire::ProtoWriter::encode_varint(local, packed + n);
  e.out().bytes_field(f::CodeDef::kLocalNameIds, packed, n);
  e.out().end_nested(body);
  return e.take();
}

Bytes thread_start(uint32_t thread, uint64_t native_id, const std::string& name) {
  Encoder e;
  auto body = e.out().begin_nested(f::Packet::kThreadStart);
  e.out().varint_field(f::ThreadStart::kThread, thread);
  e.out().varint_field(f::ThreadStart::kNativeId, native_id);
  e.out().bytes_field(f::ThreadStart::kName, name.data(), name.size());
  e.out().end_nested(body);
  return e.take();
}

Bytes thread_end(uint32_t thread) {
  Encoder e;
  auto body = e.out().begin_nested(f::Packet::kThreadEnd);
  e.out().varint_field(f::ThreadEnd::kThread, thread);
  e.out().end_nested(body);
  return e.take();
}

// A LINE event with one fast local `slot 0 = value` (and a string local when `text` is set).
Bytes line_event(uint64_t delta, uint64_t code_id, uint32_t line, int64_t value, const std::string& text = "") {
  Encoder e;
  auto& o = e.out();
  auto body = o.begin_nested(f::Packet::kEvent);
  o.varint_field(f::Event::kKind, static_cast<uint32_t>(wire::EventKind::kLine));
  if (delta != 0) o.varint_field(f::Event::kTimeDeltaNs, delta);
  o.varint_field(f::Event::kCodeId, code_id);
  o.varint_field(f::Event::kLine, line);
  o.varint_field(f::Event::kDepth, 1);
  auto binding = o.begin_nested(f::Event::kLocals);
  o.varint_field(f::Binding::kSlot, 0);
  auto v = o.begin_nested(f::Binding::kValue);
  o.sint_field(f::Value::kInt, value);
  o.end_nested(v);
  o.end_nested(binding);
  if (!text.empty()) {
    binding = o.begin_nested(f::Event::kLocals);
    o.varint_field(f::Binding::kSlot, 1);
    v = o.begin_nested(f::Binding::kValue);
    auto t = o.begin_nested(f::Value::kStr);
    o.bytes_field(f::Text::kText, text.data(), text.size());
    o.varint_field(f::Text::kLength, text.size());
    o.end_nested(t);
    o.end_nested(v);
    o.end_nested(binding);
  }
  o.end_nested(body);
  return e.take();
}

Bytes status_packet(uint32_t state, const std::string& message) {
  Encoder e;
  auto body = e.out().begin_nested(f::Packet::kAgentStatus);
  e.out().varint_field(f::AgentStatus::kState, state);
  e.out().bytes_field(f::AgentStatus::kMessage, message.data(), message.size());
  e.out().end_nested(body);
  return e.take();
}

// One agent thread: its ChunkWriter and its running clock (the agent's side of the delta
// encoding: each append passes the previous event's time as the base).
struct FakeThread {
  FakeThread(ring::SegmentHeader* header, uint32_t id) : writer(header, id), id(id) {}
  bool put(const Bytes& packet) { return writer.append(packet.data(), packet.size(), last_time); }
  // Appends an event `delta` ns after the previous one; returns its absolute time.
  bool event(uint64_t delta, uint64_t code_id, uint32_t line, int64_t value, uint64_t* time = nullptr,
             const std::string& text = "") {
    const Bytes packet = line_event(delta, code_id, line, value, text);
    // Like the agent: the delta is relative to the previous event, which is also the base a
    // newly acquired chunk states; the clock advances whether or not the ring took the event.
    const uint64_t base = last_time;
    last_time += delta;
    if (time != nullptr) *time = last_time;
    return writer.append(packet.data(), packet.size(), base);
  }
  ring::ChunkWriter writer;
  uint32_t id;
  uint64_t last_time = 0;
};

// --- the collector side -----------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/pyrewind-session-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

v1::RecordingHeader header_for(const ring::OwnedSegment& segment) {
  v1::RecordingHeader header;
  header.set_format_version(1);
  header.set_python_implementation("cpython");
  header.set_python_version("3.12.1");
  header.set_python_hexversion(0x030C01F0);
  header.set_pid(static_cast<uint64_t>(getpid()));
  header.add_argv("python3");
  header.set_start_monotonic_ns(segment.header()->start_monotonic_ns);
  header.set_mode("trace");
  return header;
}

struct Harness {
  explicit Harness(uint64_t segment_bytes = 4u << 20, uint32_t chunk_bytes = 4096, SessionOptions options = {}) {
    ring::SegmentOptions segment_options;
    segment_options.segment_bytes = segment_bytes;
    segment_options.chunk_bytes = chunk_bytes;
    std::string error;
    segment = ring::OwnedSegment::create(segment_options, &error);
    EXPECT_NE(segment, nullptr) << error;
    path = dir.file("out.rwd");
    writer = RecordingWriter::create(path, header_for(*segment), &error);
    EXPECT_NE(writer, nullptr) << error;
    session = std::make_unique<Session>(*segment, *writer, options);
    EXPECT_TRUE(session->valid()) << session->error();
  }
  ring::SegmentHeader* header() const { return segment->header(); }

  TempDir dir;
  std::string path;
  std::unique_ptr<ring::OwnedSegment> segment;
  std::unique_ptr<RecordingWriter> writer;
  std::unique_ptr<Session> session;
};

// Everything read back from a recording.
struct Contents {
  std::unique_ptr<reader::Recording> recording;
  std::vector<v1::Packet> packets;
  std::vector<v1::Event> events;
  std::vector<v1::Loss> losses;
  std::map<uint64_t, std::string> strings;
  std::map<uint64_t, v1::CodeDef> codes;
  std::map<uint32_t, v1::ThreadStart> threads;
  std::vector<uint32_t> thread_ends;
  std::vector<std::string> statuses;
  uint64_t skipped_packets = 0;
  std::string chunk_error;
};

Contents read_recording(const std::string& path) {
  Contents c;
  std::string error;
  c.recording = reader::Recording::open(path, &error);
  EXPECT_NE(c.recording, nullptr) << error;
  if (c.recording == nullptr) return c;
  reader::ChunkCursor cursor(*c.recording);
  while (cursor.next()) {
    // Each chunk parses as a whole with libprotobuf (what readers rely on) ...
    v1::PacketBatch batch;
    EXPECT_TRUE(batch.ParseFromArray(cursor.data(), static_cast<int>(cursor.size())));
    // ... and packet by packet.
    reader::PacketIterator it(cursor.data(), cursor.size());
    while (it.next()) {
      const v1::Packet& p = it.packet();
      c.packets.push_back(p);
      switch (p.body_case()) {
        case v1::Packet::kEvent:
          c.events.push_back(p.event());
          break;
        case v1::Packet::kLoss:
          c.losses.push_back(p.loss());
          break;
        case v1::Packet::kStringDef:
          c.strings[p.string_def().id()] = p.string_def().text();
          break;
        case v1::Packet::kCodeDef:
          c.codes[p.code_def().id()] = p.code_def();
          break;
        case v1::Packet::kThreadStart:
          c.threads[p.thread_start().thread()] = p.thread_start();
          break;
        case v1::Packet::kThreadEnd:
          c.thread_ends.push_back(p.thread_end().thread());
          break;
        case v1::Packet::kAgentStatus:
          c.statuses.push_back(p.agent_status().message());
          break;
        default:
          break;
      }
    }
    c.skipped_packets += it.skipped_packets();
    EXPECT_FALSE(it.framing_error());
  }
  c.chunk_error = cursor.error();
  return c;
}

void define_basics(FakeThread& t, const std::string& name) {
  ASSERT_TRUE(t.put(thread_start(t.id, 1000 + t.id, name)));
  ASSERT_TRUE(t.put(string_def(1, "/app/main.py")));
  ASSERT_TRUE(t.put(string_def(2, "Ledger.add")));
  ASSERT_TRUE(t.put(string_def(3, "amount")));
  ASSERT_TRUE(t.put(string_def(4, "note")));
  ASSERT_TRUE(t.put(code_def(7, 1, 2, 10, {3, 4})));
}

// --- tests -------------------------------------------------------------------------------

TEST(Session, RewritesEventsWithThreadAndAbsoluteTimeAcrossChunks) {
  Harness h;
  ring::SegmentHeader* header = h.header();
  FakeThread a(header, 0), b(header, 1);
  b.last_time = 7'000'000'000;  // a thread that starts later: its first chunk's base says when
  define_basics(a, "MainThread");
  define_basics(b, "worker");  // the same definitions again, in b's own stream

  struct Expected {
    uint32_t thread;
    uint32_t line;
    uint64_t time;
    int64_t value;
  };
  std::map<std::pair<uint32_t, uint32_t>, Expected> expected;  // (thread, line) -> event
  // 4 KiB chunks, ~40 B events: each thread fills many chunks; poll now and then so chunks are
  // drained both complete and as prefixes of chunks still being written.
  std::mt19937_64 rng(42);
  for (uint32_t line = 1; line <= 3000; ++line) {
    for (FakeThread* t : {&a, &b}) {
      const uint64_t delta = rng() % (line % 97 == 0 ? 5'000'000'000ull : 3000);  // some long gaps
      uint64_t time = 0;
      ASSERT_TRUE(t->event(delta, 7, line, static_cast<int64_t>(line) * (t->id ? -1 : 1), &time,
                           line % 10 == 0 ? "café " + std::to_string(line) : ""));
      expected[{t->id, line}] = {t->id, line, time, static_cast<int64_t>(line) * (t->id ? -1 : 1)};
    }
    if (line % 150 == 0) h.session->poll();
  }
  ASSERT_TRUE(b.put(thread_end(1)));
  a.writer.finish();
  b.writer.finish();
  ASSERT_TRUE(h.session->finish({3, true, ""}));

  const TranslatorStats& stats = h.session->stats();
  EXPECT_EQ(stats.events, 6000u);
  EXPECT_EQ(stats.malformed_packets, 0u);
  EXPECT_EQ(stats.duplicate_defs, 5u);  // b's repeated StringDefs and CodeDef
  EXPECT_EQ(stats.dropped_records, 0u);
  EXPECT_EQ(h.session->thread_count(), 2u);

  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_TRUE(c.recording->finished());
  EXPECT_EQ(c.skipped_packets, 0u);
  EXPECT_EQ(c.chunk_error, "");
  ASSERT_EQ(c.events.size(), 6000u);
  std::map<uint32_t, uint64_t> last_time;
  for (const v1::Event& e : c.events) {
    auto it = expected.find({e.thread(), e.line()});
    ASSERT_NE(it, expected.end()) << e.ShortDebugString();
    EXPECT_EQ(e.time_ns(), it->second.time) << "thread " << e.thread() << " line " << e.line();
    EXPECT_EQ(e.time_delta_ns(), 0u);  // ring-only field removed
    EXPECT_EQ(e.kind(), v1::EVENT_LINE);
    EXPECT_EQ(e.code_id(), 7u);
    EXPECT_EQ(e.depth(), 1u);
    ASSERT_GE(e.locals_size(), 1);
    EXPECT_EQ(e.locals(0).value().int_value(), it->second.value);
    if (e.line() % 10 == 0) {
      ASSERT_EQ(e.locals_size(), 2);
      EXPECT_EQ(e.locals(1).value().str_value().text(), "café " + std::to_string(e.line()));
    }
    // Per thread, events arrive in order and times never go back.
    EXPECT_GE(e.time_ns(), last_time[e.thread()]);
    last_time[e.thread()] = e.time_ns();
    expected.erase(it);
  }
  EXPECT_TRUE(expected.empty());
  EXPECT_EQ(c.strings.at(1), "/app/main.py");
  EXPECT_EQ(c.strings.at(2), "Ledger.add");
  ASSERT_EQ(c.codes.count(7), 1u);
  EXPECT_EQ(c.codes.at(7).local_name_ids_size(), 2);
  EXPECT_EQ(c.codes.at(7).local_name_ids(1), 4u);
  EXPECT_EQ(c.threads.at(0).name(), "MainThread");
  EXPECT_EQ(c.threads.at(1).name(), "worker");
  EXPECT_EQ(c.threads.at(1).native_id(), 1001u);
  EXPECT_EQ(c.thread_ends, (std::vector<uint32_t>{1}));

  const v1::RecordingSummary& summary = c.recording->summary();
  EXPECT_EQ(summary.exit_status(), 3);
  EXPECT_TRUE(summary.target_exited());
  EXPECT_EQ(summary.event_count(), 6000u);
  EXPECT_EQ(summary.dropped_records(), 0u);
}

TEST(Session, RingDropsBecomeLossPackets) {
  // 4 chunks of 4 KiB: without draining, the writer soon finds no free chunk and drops.
  Harness h(ring::kHeaderBytes + 4 * 4096, 4096);
  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");
  uint64_t written = 0;
  uint64_t time = 0;
  std::vector<uint64_t> kept_lines;
  std::map<uint64_t, uint64_t> kept_times;  // line -> the agent's time of that event
  for (uint32_t line = 1; line <= 2000; ++line) {
    if (t.event(100, 7, line, line, &time)) {
      ++written;
      kept_lines.push_back(line);
      kept_times[line] = time;
    }
  }
  ASSERT_GT(t.writer.dropped_records(), 0u);
  ASSERT_EQ(written + t.writer.dropped_records(), 2000u);
  h.session->poll();
  // After the drain frees chunks, the next record that gets a chunk states the drops in its
  // header. The writer backs off for a while before it looks at a ring it found full again,
  // so a few more records may be dropped first.
  bool stated = false;
  for (uint32_t line = 5000; line < 8000 && !stated; ++line) {
    if (t.event(100, 7, line, line, &time)) {
      kept_lines.push_back(line);
      kept_times[line] = time;
      stated = true;
    }
  }
  ASSERT_TRUE(stated);
  const uint64_t dropped = t.writer.dropped_records();
  t.writer.finish();
  ASSERT_TRUE(h.session->finish({0, true, ""}));

  EXPECT_EQ(h.session->stats().dropped_records, dropped);
  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  uint64_t lost = 0, lost_bytes = 0;
  for (const v1::Loss& loss : c.losses) {
    EXPECT_EQ(loss.thread(), 0u);
    EXPECT_FALSE(loss.reason().empty());
    lost += loss.dropped_records();
    lost_bytes += loss.dropped_bytes();
  }
  EXPECT_EQ(lost, dropped);
  EXPECT_EQ(lost_bytes, t.writer.dropped_bytes());
  EXPECT_EQ(c.recording->summary().dropped_records(), dropped);
  ASSERT_EQ(c.events.size(), kept_lines.size());
  for (size_t i = 0; i < c.events.size(); ++i) EXPECT_EQ(c.events[i].line(), kept_lines[i]);
  // Times stay exact across the gap: the chunk after it states the base time.
  EXPECT_EQ(c.events.back().time_ns(), time);
  for (const v1::Event& e : c.events) EXPECT_EQ(e.time_ns(), kept_times.at(e.line())) << "line " << e.line();
}

TEST(Session, MalformedPacketsAreCountedAndSkipped) {
  Harness h;
  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");

  std::vector<Bytes> bad;
  bad.push_back({0x2A, 0x05, 0x08});                          // truncated body
  bad.push_back({0x28, 0x01});                                // body with a varint wire type
  bad.push_back({});                                          // empty packet
  {
    Bytes two = line_event(1, 7, 1, 1);                      // two bodies in one packet
    Bytes more = string_def(99, "x");
    two.insert(two.end(), more.begin(), more.end());
    bad.push_back(two);
  }
  {
    Encoder e;                                                // event kind 0
    auto body = e.out().begin_nested(f::Packet::kEvent);
    e.out().varint_field(f::Event::kLine, 3);
    e.out().end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // invalid UTF-8 in a nested Text
    auto& o = e.out();
    auto body = o.begin_nested(f::Packet::kEvent);
    o.varint_field(f::Event::kKind, 2);
    auto binding = o.begin_nested(f::Event::kLocals);
    auto v = o.begin_nested(f::Binding::kValue);
    auto text = o.begin_nested(f::Value::kStr);
    o.bytes_field(f::Text::kText, "\xff\xfe", 2);
    o.end_nested(text);
    o.end_nested(v);
    o.end_nested(binding);
    o.end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // Value.float_value as a varint
    auto& o = e.out();
    auto body = o.begin_nested(f::Packet::kEvent);
    o.varint_field(f::Event::kKind, 2);
    auto binding = o.begin_nested(f::Event::kLocals);
    auto v = o.begin_nested(f::Binding::kValue);
    o.varint_field(f::Value::kFloat, 1);
    o.end_nested(v);
    o.end_nested(binding);
    o.end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // nesting beyond protobuf's limit
    auto& o = e.out();
    std::vector<wire::ProtoWriter::Nested> open;
    open.push_back(o.begin_nested(f::Packet::kEvent));
    o.varint_field(f::Event::kKind, 2);
    open.push_back(o.begin_nested(f::Event::kLocals));
    open.push_back(o.begin_nested(f::Binding::kValue));
    for (int i = 0; i < 60; ++i) {
      open.push_back(o.begin_nested(f::Value::kContainer));
      open.push_back(o.begin_nested(f::Container::kItems));
    }
    while (!open.empty()) {
      o.end_nested(open.back());
      open.pop_back();
    }
    bad.push_back(e.take());
  }
  bad.push_back(string_def(0, "id zero"));                    // id 0 is "none"
  {
    Encoder e;                                                // StringDef text not UTF-8
    auto body = e.out().begin_nested(f::Packet::kStringDef);
    e.out().varint_field(f::StringDef::kId, 50);
    e.out().bytes_field(f::StringDef::kText, "\xc0\x80", 2);  // overlong NUL
    e.out().end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // CodeDef with a broken packed list
    auto body = e.out().begin_nested(f::Packet::kCodeDef);
    e.out().varint_field(f::CodeDef::kId, 51);
    const uint8_t packed[] = {0x81};
    e.out().bytes_field(f::CodeDef::kLocalNameIds, packed, 1);
    e.out().end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // ThreadStart thread beyond 32 bits
    auto body = e.out().begin_nested(f::Packet::kThreadStart);
    e.out().varint_field(f::ThreadStart::kThread, 1ull << 40);
    e.out().end_nested(body);
    bad.push_back(e.take());
  }
  {
    Encoder e;                                                // a time delta that overflows
    auto body = e.out().begin_nested(f::Packet::kEvent);
    e.out().varint_field(f::Event::kKind, 2);
    e.out().varint_field(f::Event::kTimeDeltaNs, UINT64_MAX);
    e.out().end_nested(body);
    bad.push_back(e.take());
  }

  Bytes unknown_type;  // well-formed, from a newer agent: skipped, not malformed
  {
    Encoder e;
    auto body = e.out().begin_nested(99);
    e.out().varint_field(1, 5);
    e.out().end_nested(body);
    unknown_type = e.take();
  }
  Bytes unknown_field_event;  // an event with a field this collector does not know: kept
  {
    Encoder e;
    auto body = e.out().begin_nested(f::Packet::kEvent);
    e.out().varint_field(f::Event::kKind, 1);
    e.out().varint_field(f::Event::kLine, 500);
    e.out().varint_field(f::Event::kCodeId, 12345);  // never defined: fine
    e.out().bytes_field(40, "future", 6);
    e.out().end_nested(body);
    unknown_field_event = e.take();
  }

  uint32_t line = 1;
  for (const Bytes& packet : bad) {
    ASSERT_TRUE(t.event(10, 7, line, line));
    ++line;
    ASSERT_TRUE(t.put(packet));
  }
  ASSERT_TRUE(t.put(unknown_type));
  ASSERT_TRUE(t.put(unknown_field_event));
  ASSERT_TRUE(t.event(10, 7, line, line));
  t.writer.finish();
  ASSERT_TRUE(h.session->finish({0, true, ""}));

  const TranslatorStats& stats = h.session->stats();
  EXPECT_EQ(stats.malformed_packets, bad.size());
  EXPECT_EQ(stats.unknown_packets, 1u);
  EXPECT_EQ(stats.corrupt_chunks, 0u);

  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_EQ(c.skipped_packets, 0u);  // nothing that reached the file fails to parse
  ASSERT_EQ(c.events.size(), bad.size() + 2);
  for (uint32_t i = 0; i < bad.size(); ++i) EXPECT_EQ(c.events[i].line(), i + 1);
  const v1::Event& future = c.events[bad.size()];
  EXPECT_EQ(future.line(), 500u);
  EXPECT_EQ(future.code_id(), 12345u);
  EXPECT_EQ(future.thread(), 0u);
  const auto& unknown = future.GetReflection()->GetUnknownFields(future);  // field 40 kept verbatim
  ASSERT_EQ(unknown.field_count(), 1);
  EXPECT_EQ(unknown.field(0).number(), 40);
  EXPECT_EQ(unknown.field(0).length_delimited(), "future");
  EXPECT_EQ(c.events.back().line(), line);
  EXPECT_EQ(c.strings.count(0), 0u);
  EXPECT_EQ(c.strings.count(50), 0u);
  EXPECT_EQ(c.codes.count(51), 0u);
}

TEST(Session, SigkilledWriterProcessLosesNothingCommitted) {
  // 16 MiB of ring holds every event the child can write, so nothing is ever dropped: every
  // event the child committed before it died must be in the file, in order.
  Harness h(16u << 20, 4096);
  auto* progress = static_cast<std::atomic<uint64_t>*>(
      mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(progress, MAP_FAILED);
  new (progress) std::atomic<uint64_t>(0);
  constexpr uint32_t kMaxEvents = 300000;

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The fake agent: a separate process writing into the inherited mapping.
    FakeThread t(h.header(), 0);
    t.put(thread_start(0, static_cast<uint64_t>(getpid()), "MainThread"));
    t.put(string_def(1, "/app/main.py"));
    t.put(string_def(2, "loop"));
    t.put(code_def(7, 1, 2, 1, {}));
    h.header()->agent_state.store(ring::kAgentTracing, std::memory_order_release);
    for (uint32_t line = 1; line <= kMaxEvents; ++line) {
      if (!t.event(50, 7, line, line)) _exit(3);
      progress->store(line, std::memory_order_release);
      if (line % 2000 == 0) usleep(200);
    }
    pause();
    _exit(0);
  }

  // Collect while it writes; kill it mid-stream.
  const std::string shm_path = "/dev/shm" + h.segment->name();
  bool killed = false;
  h.session->run([&](uint64_t timeout_ns) {
    if (!killed && progress->load() >= 40000) {
      kill(child, SIGKILL);
      killed = true;
    }
    usleep(static_cast<useconds_t>(timeout_ns / 1000));
    int status = 0;
    return killed && waitpid(child, &status, WNOHANG) == child;
  });
  const uint64_t committed_at_least = progress->load();
  ASSERT_LT(committed_at_least, kMaxEvents);  // it really died mid-stream
  // The agent attached: the name is gone, the mapping stays.
  EXPECT_TRUE(h.session->agent_attached());
  struct stat st {};
  EXPECT_NE(stat(shm_path.c_str(), &st), 0);

  ASSERT_TRUE(h.session->finish({-SIGKILL, true, ""}));
  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_EQ(c.losses.size(), 0u);
  // The counter is stored right after each append, so at most one more event was committed.
  ASSERT_GE(c.events.size(), committed_at_least);
  ASSERT_LE(c.events.size(), committed_at_least + 1);
  for (size_t i = 0; i < c.events.size(); ++i) {
    ASSERT_EQ(c.events[i].line(), i + 1);
    ASSERT_EQ(c.events[i].time_ns(), 50 * (i + 1));
  }
  EXPECT_EQ(c.recording->summary().exit_status(), -SIGKILL);
  munmap(progress, sizeof(std::atomic<uint64_t>));
}

TEST(Session, PeriodicFlushMakesChunksReadableBeforeTheEnd) {
  SessionOptions options;
  options.flush_interval_ns = 1'000'000;  // 1 ms
  Harness h(4u << 20, 4096, options);
  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");
  for (uint32_t line = 1; line <= 100; ++line) ASSERT_TRUE(t.event(10, 7, line, line));
  h.session->poll();
  usleep(2000);
  h.session->poll();  // the interval has passed: a chunk goes to the file

  // What a reader sees if the collector were killed now: a file without summary, with
  // every event so far.
  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_FALSE(c.recording->finished());
  EXPECT_EQ(c.events.size(), 100u);
  EXPECT_EQ(c.threads.count(0), 1u);
}

TEST(Session, AgentStateMessagesAndUnlink) {
  Harness h;
  const std::string shm_path = "/dev/shm" + h.segment->name();
  struct stat st {};
  h.session->poll();
  EXPECT_EQ(stat(shm_path.c_str(), &st), 0);  // no agent yet: the name stays
  EXPECT_FALSE(h.session->agent_attached());
  const uint64_t heartbeat = h.header()->collector_heartbeat_ns.load();

  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");
  ASSERT_TRUE(t.put(status_packet(3, "repr of Foo raised; repr disabled")));
  ring::set_agent_message(*h.header(), "internal error: out of memory");
  h.header()->agent_state.store(ring::kAgentStopped);
  usleep(1000);
  h.session->poll();
  EXPECT_TRUE(h.session->agent_attached());
  EXPECT_NE(stat(shm_path.c_str(), &st), 0);
  EXPECT_GT(h.header()->collector_heartbeat_ns.load(), heartbeat);
  t.writer.finish();
  ASSERT_TRUE(h.session->finish({1, true, ""}));

  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_EQ(c.statuses, (std::vector<std::string>{"repr of Foo raised; repr disabled"}));
  const auto& messages = c.recording->summary().agent_messages();
  ASSERT_EQ(messages.size(), 2);
  EXPECT_EQ(messages[0], "internal error: out of memory");
  EXPECT_EQ(messages[1], "repr of Foo raised; repr disabled");
}

TEST(Session, WriteErrorKeepsDrainingAndLeavesWholeChunks) {
  // In a child process: the file size limit stands in for a full disk (EFBIG, like ENOSPC a
  // write that cannot complete).
  TempDir dir;
  const std::string path = dir.file("full.rwd");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    ring::SegmentOptions segment_options;
    segment_options.segment_bytes = ring::kHeaderBytes + 8 * 4096;  // a small ring: must recycle
    segment_options.chunk_bytes = 4096;
    std::string error;
    auto segment = ring::OwnedSegment::create(segment_options, &error);
    if (!segment) _exit(10);
    auto writer = RecordingWriter::create(path, header_for(*segment), &error);
    if (!writer) _exit(11);
    rlimit limit{256 * 1024, 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    SessionOptions options;
    options.flush_interval_ns = 0;  // a chunk per poll
    Session session(*segment, *writer, options);
    FakeThread t(segment->header(), 0);
    t.put(thread_start(0, 1, "MainThread"));
    t.put(string_def(1, "/app/main.py"));
    t.put(code_def(7, 1, 1, 1, {}));
    // Incompressible strings: 2 MiB of data against a 256 KiB file limit.
    std::mt19937_64 rng(7);
    std::string noise(200, ' ');
    for (uint32_t line = 1; line <= 10000; ++line) {
      for (char& ch : noise) ch = static_cast<char>('!' + rng() % 90);
      if (!t.event(1, 7, line, line, nullptr, noise)) _exit(12);  // the ring never runs full
      if (line % 20 == 0) session.poll();
    }
    t.writer.finish();
    const bool finished = session.finish({0, true, ""});
    if (finished) _exit(13);
    if (session.writer_error().empty()) _exit(14);
    if (session.stats().discarded_packets == 0) _exit(15);
    if (session.stats().dropped_records != 0) _exit(16);
    if (session.events_written() == 0) _exit(17);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  Contents c = read_recording(path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_FALSE(c.recording->finished());
  ASSERT_GT(c.events.size(), 100u);
  ASSERT_LT(c.events.size(), 10000u);
  for (size_t i = 0; i < c.events.size(); ++i) ASSERT_EQ(c.events[i].line(), i + 1);
}

TEST(Session, CorruptRingChunkIsReportedNotFatal) {
  Harness h;
  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");
  ASSERT_TRUE(t.event(10, 7, 1, 1));
  // Scribble over the payload of the first chunk: the drainer rejects what does not frame.
  ring::ChunkHeader* chunk = nullptr;
  for (uint32_t i = 0; i < h.header()->chunk_count; ++i) {
    ring::ChunkHeader* c = ring::chunk_at(h.header(), i);
    if (c->state.load() != ring::kFree) chunk = c;
  }
  ASSERT_NE(chunk, nullptr);
  const uint32_t committed = chunk->committed.load();
  uint8_t* payload = reinterpret_cast<uint8_t*>(chunk) + sizeof(ring::ChunkHeader);
  std::memset(payload + committed, 0xFF, 8);
  chunk->committed.store(committed + 8);
  h.session->poll();
  EXPECT_EQ(h.session->stats().corrupt_chunks, 1u);
  t.writer.finish();
  ASSERT_TRUE(h.session->finish({0, true, ""}));
  Contents c = read_recording(h.path);
  ASSERT_NE(c.recording, nullptr);
  EXPECT_EQ(c.events.size(), 1u);
}

// A list container {kind, id 5, length, reused_items, items...} in field `field` of `o`.
struct ListSpec {
  uint64_t length = 30;
  uint64_t reused = 25;
  std::vector<int64_t> items;
  bool reused_as_bytes = false;  // wrong wire type for reused_items
  bool nested_delta = false;     // one more item: a delta list inside this one
};

void write_list(wire::ProtoWriter& o, uint32_t field, const ListSpec& spec) {
  auto value = o.begin_nested(field);
  auto list = o.begin_nested(f::Value::kContainer);
  o.varint_field(f::Container::kKind, static_cast<uint32_t>(wire::ContainerKind::kList));
  o.varint_field(f::Container::kId, 5);
  o.varint_field(f::Container::kLength, spec.length);
  if (spec.reused_as_bytes)
    o.bytes_field(f::Container::kReusedItems, "\x19", 1);
  else if (spec.reused)
    o.varint_field(f::Container::kReusedItems, spec.reused);
  for (int64_t item : spec.items) {
    auto v = o.begin_nested(f::Container::kItems);
    o.sint_field(f::Value::kInt, item);
    o.end_nested(v);
  }
  if (spec.nested_delta) write_list(o, f::Container::kItems, ListSpec{});
  o.bool_field(f::Container::kTruncated, true);
  o.end_nested(list);
  o.end_nested(value);
}

// An event of `kind` whose slot 0 is bound to the list `spec` (and, for RETURN, returns it).
Bytes list_event(wire::EventKind kind, const ListSpec& spec, bool full_state = false) {
  Encoder e;
  auto& o = e.out();
  auto body = o.begin_nested(f::Packet::kEvent);
  o.varint_field(f::Event::kKind, static_cast<uint32_t>(kind));
  o.varint_field(f::Event::kTimeDeltaNs, 1);
  o.varint_field(f::Event::kCodeId, 7);
  o.varint_field(f::Event::kLine, 99);
  if (full_state) o.bool_field(f::Event::kFullState, true);
  if (kind == wire::EventKind::kReturn) {
    write_list(o, f::Event::kValue, spec);
  } else {
    auto binding = o.begin_nested(f::Event::kLocals);
    o.varint_field(f::Binding::kSlot, 0);
    write_list(o, f::Binding::kValue, spec);
    o.end_nested(binding);
  }
  o.end_nested(body);
  return e.take();
}

// A container delta refers to the binding's previous value: the collector passes it on
// verbatim where that value exists (a LINE without full_state) and rejects it anywhere else.
TEST(Session, ContainerDeltasOnlyWhereThePreviousValueExists) {
  Harness h;
  FakeThread t(h.header(), 0);
  define_basics(t, "MainThread");
  using K = wire::EventKind;
  const std::vector<Bytes> good = {
      list_event(K::kLine, ListSpec{}),                          // length changed only
      list_event(K::kLine, ListSpec{26, 25, {7}}),               // one item appended
      list_event(K::kLine, ListSpec{30, 0, {1, 2}}),             // a complete value
      list_event(K::kReturn, ListSpec{30, 0, {1}}),
  };
  const std::vector<Bytes> bad = {
      list_event(K::kCall, ListSpec{}),                          // a CALL states everything
      list_event(K::kLine, ListSpec{}, /*full_state=*/true),
      list_event(K::kException, ListSpec{}),
      list_event(K::kReturn, ListSpec{}),                        // a return value has no previous value
      list_event(K::kLine, ListSpec{30, 0, {1}, false, true}),   // a delta inside an item
      list_event(K::kLine, ListSpec{24, 25, {}}),                // reuses more than the length
      list_event(K::kLine, ListSpec{30, 25, {}, true}),          // reused_items not a varint
  };
  for (const Bytes& packet : good) ASSERT_TRUE(t.put(packet));
  for (const Bytes& packet : bad) ASSERT_TRUE(t.put(packet));
  t.writer.finish();
  ASSERT_TRUE(h.session->finish({0, true, ""}));
  EXPECT_EQ(h.session->stats().malformed_packets, bad.size());

  Contents c = read_recording(h.path);
  ASSERT_EQ(c.events.size(), good.size());
  const v1::Container& delta = c.events[0].locals(0).value().container();
  EXPECT_EQ(delta.reused_items(), 25u);
  EXPECT_EQ(delta.length(), 30u);
  EXPECT_EQ(delta.items_size(), 0);
  EXPECT_TRUE(delta.truncated());
  const v1::Container& appended = c.events[1].locals(0).value().container();
  EXPECT_EQ(appended.reused_items(), 25u);
  ASSERT_EQ(appended.items_size(), 1);
  EXPECT_EQ(appended.items(0).int_value(), 7);
  EXPECT_EQ(c.events[2].locals(0).value().container().reused_items(), 0u);
  EXPECT_EQ(c.events[3].value().container().items_size(), 1);
}

// --- validator ---------------------------------------------------------------------------

TEST(Validator, ContainerDeltasOnlyInABindingsOwnValue) {
  auto bytes_of = [](uint32_t field, const ListSpec& spec) {
    Encoder e;
    write_list(e.out(), field, spec);
    Bytes out = e.take();
    // Strip the field's tag and length: validate_message takes the message body.
    wire::ProtoReader reader(out.data(), out.size());
    wire::Field field_read;
    EXPECT_TRUE(reader.next(field_read));
    return Bytes(field_read.bytes, field_read.bytes + field_read.size);
  };
  const Bytes delta = bytes_of(1, ListSpec{});
  const Bytes nested = bytes_of(1, ListSpec{30, 0, {}, false, true});
  const Bytes too_many = bytes_of(1, ListSpec{3, 4, {}});
  ValidationFacts facts;
  EXPECT_TRUE(validate_message(MessageType::kBindingValue, delta.data(), delta.size(), 2, &facts));
  EXPECT_EQ(facts.container_deltas, 1u);
  EXPECT_FALSE(validate_message(MessageType::kValue, delta.data(), delta.size()));
  EXPECT_FALSE(validate_message(MessageType::kBindingValue, nested.data(), nested.size()));
  EXPECT_FALSE(validate_message(MessageType::kBindingValue, too_many.data(), too_many.size()));
  const Bytes complete = bytes_of(1, ListSpec{30, 0, {1, 2}});
  facts = {};
  EXPECT_TRUE(validate_message(MessageType::kBindingValue, complete.data(), complete.size(), 2, &facts));
  EXPECT_TRUE(validate_message(MessageType::kValue, complete.data(), complete.size()));
  EXPECT_EQ(facts.container_deltas, 0u);
}

// The Event body of a ring packet (its Packet tag and length stripped).
Bytes event_body(const Bytes& packet) {
  wire::ProtoReader reader(packet.data(), packet.size());
  wire::Field body;
  EXPECT_TRUE(reader.next(body));
  return Bytes(body.bytes, body.bytes + body.size);
}

// scan_plain_event() is the collector's fast path: what it accepts must be valid by the general
// validator and described the same way, whatever the bytes.
TEST(Validator, PlainEventScanAcceptsOnlyWhatTheGeneralValidatorAccepts) {
  const Bytes plain = event_body(line_event(300, 7, 12, -5));
  EventFields fields;
  ASSERT_TRUE(scan_plain_event(plain.data(), plain.size(), &fields));
  EXPECT_EQ(fields.kind, static_cast<uint64_t>(wire::EventKind::kLine));
  EXPECT_EQ(fields.code_id, 7u);
  EXPECT_EQ(fields.time_delta_ns, 300u);
  EXPECT_FALSE(fields.full_state);
  ASSERT_NE(fields.delta_begin, nullptr);
  EXPECT_EQ(fields.delta_end - fields.delta_begin, 3);  // tag and a two-byte varint
  // A str value is not plain: the general path validates its UTF-8.
  const Bytes with_text = event_body(line_event(1, 7, 12, 3, "text"));
  EXPECT_FALSE(scan_plain_event(with_text.data(), with_text.size(), &fields));
  const Bytes delta = event_body(list_event(wire::EventKind::kLine, ListSpec{}));
  EXPECT_FALSE(scan_plain_event(delta.data(), delta.size(), &fields));

  std::mt19937_64 rng(7);
  size_t accepted = 0;
  for (int round = 0; round < 200000; ++round) {
    Bytes bytes = event_body(line_event(rng() % 100000, 1 + rng() % 300, rng() % 5000, static_cast<int64_t>(rng())));
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits && !bytes.empty(); ++k) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<uint8_t>(rng());
          break;
        case 1:
          bytes.resize(at);
          break;
        case 2:
          bytes.insert(bytes.begin() + static_cast<long>(at), static_cast<uint8_t>(rng()));
          break;
        default:
          bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
      }
    }
    EventFields fast;
    if (!scan_plain_event(bytes.data(), bytes.size(), &fast)) continue;
    ++accepted;
    ValidationFacts facts;
    ASSERT_TRUE(validate_message(MessageType::kEvent, bytes.data(), bytes.size(), 2, &facts)) << round;
    EXPECT_EQ(facts.container_deltas, 0u);
    // The general reading: last one wins; the time delta's bytes are the one delta field.
    EventFields general;
    wire::ProtoReader reader(bytes.data(), bytes.size());
    wire::Field field;
    while (reader.next(field)) {
      if (field.number == f::Event::kKind) general.kind = field.varint;
      if (field.number == f::Event::kCodeId) general.code_id = field.varint;
      if (field.number == f::Event::kFullState) general.full_state = field.varint != 0;
      if (field.number == f::Event::kTimeDeltaNs) {
        general.time_delta_ns = field.varint;
        general.delta_begin = field.start;
        general.delta_end = field.end;
      }
    }
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(fast.kind, general.kind);
    EXPECT_EQ(fast.code_id, general.code_id);
    EXPECT_EQ(fast.full_state, general.full_state);
    EXPECT_EQ(fast.time_delta_ns, general.time_delta_ns);
    EXPECT_EQ(fast.delta_begin, general.delta_begin);
    EXPECT_EQ(fast.delta_end, general.delta_end);
  }
  EXPECT_GT(accepted, 1000u);  // the mutations keep plenty of events plain
}

TEST(Validator, Utf8) {
  auto ok = [](const std::string& s) { return valid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  EXPECT_TRUE(ok(""));
  EXPECT_TRUE(ok("plain"));
  EXPECT_TRUE(ok("café ∑ 𝄞"));
  EXPECT_FALSE(ok("\xff"));
  EXPECT_FALSE(ok("\xc3"));              // truncated
  EXPECT_FALSE(ok("\xc0\xaf"));          // overlong
  EXPECT_FALSE(ok("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(ok("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_EQ(to_valid_utf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(to_valid_utf8("café"), "café");
  // Agrees with libprotobuf: a proto3 string that fails here fails to parse there.
  google::protobuf::LogSilencer quiet;  // libprotobuf logs each invalid string it meets
  for (const std::string& s : {std::string("\xed\xa0\x80"), std::string("\xc0\xaf"), std::string("ok ∑")}) {
    v1::StringDef def;
    def.set_id(1);
    Bytes packet = string_def(1, s);
    v1::Packet parsed;
    const bool parses = parsed.ParseFromArray(packet.data(), static_cast<int>(packet.size()));
    EXPECT_EQ(parses, ok(s)) << s;
  }
}

}  // namespace
}  // namespace pyrewind::collector
