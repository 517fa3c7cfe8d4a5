// Recording file writer; see recording_writer.h and proto/recording/format.h.
#include "collector/src/recording_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "proto/recording/crc32c.h"
#include "proto/recording/format.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_writer.h"

namespace pyrewind::collector {
namespace {

namespace fmt = pyrewind::recording;

constexpr size_t kMaxAgentMessages = 1000;
constexpr size_t kMaxAgentMessageBytes = 4096;
constexpr size_t kMaxKinds = 32;  // event_count_by_kind grows up to this many entries

// Wire-level framing of one packet inside a PacketBatch: tag of field 1 (LEN) + length.
size_t framed_size(size_t packet_size) {
  return 1 + wire::ProtoWriter::varint_size(packet_size) + packet_size;
}

void append_framed(std::string& out, std::string_view packet) {
  uint8_t head[11];
  head[0] = static_cast<uint8_t>((wire::fields::PacketBatch::kPacket << 3) | wire::kLengthDelimited);
  size_t n = 1 + wire::ProtoWriter::encode_varint(packet.size(), head + 1);
  out.append(reinterpret_cast<const char*>(head), n);
  out.append(packet.data(), packet.size());
}

uint64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Writes all of [data, data + size) at the current file position, retrying short writes and
// EINTR. Returns 0 or the errno of the failure.
int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;  // a regular file only writes 0 bytes when it cannot grow
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

struct RecordingWriter::Impl {
  struct CodeEntry {
    uint64_t file_name_id = 0;
    uint64_t qualified_name_id = 0;
    std::vector<uint64_t> local_name_ids;
    std::string packet;
  };
  struct ThreadEntry {
    uint64_t native_id = 0;
    std::string name;
    std::string packet;  // empty: never announced by add_thread
    uint64_t events = 0;
    uint64_t samples = 0;
    uint64_t dropped_records = 0;
    uint64_t first_time_ns = 0;
    uint64_t last_time_ns = 0;
  };

  std::string path;
  int fd = -1;
  uint64_t offset = 0;  // bytes in the file that are known to be whole
  bool failed = false;
  bool finished = false;
  std::string error;
  uint64_t start_monotonic_ns = 0;

  // Definitions, by id (ids are global and immutable: the first content wins).
  std::unordered_map<uint64_t, std::string> strings;
  std::unordered_map<uint64_t, CodeEntry> codes;
  std::map<uint32_t, ThreadEntry> threads;

  // The chunk being filled: PacketBatch bytes and what it already states.
  std::string chunk;
  uint64_t chunk_first_seq = 0;
  uint64_t chunk_events = 0;
  uint64_t chunk_timed = 0;  // events and samples: what the chunk's time range covers
  uint64_t chunk_first_time = 0;
  uint64_t chunk_last_time = 0;
  std::unordered_set<uint64_t> chunk_strings;
  std::unordered_set<uint64_t> chunk_codes;
  std::unordered_set<uint32_t> chunk_threads;
  // The code and thread of the chunk's last event, known to be stated: most events repeat
  // them, and this spares the sets' lookups on the collector's per-event path.
  uint64_t chunk_last_code = 0;
  uint32_t chunk_last_thread = UINT32_MAX;
  std::string compressed;
  ZSTD_CCtx* cctx = nullptr;

  // Summary state.
  std::vector<v1::ChunkIndexEntry> index;
  uint64_t events = 0;
  uint64_t samples = 0;
  std::vector<uint64_t> by_kind = std::vector<uint64_t>(6, 0);
  uint64_t dropped_records = 0;
  uint64_t dropped_bytes = 0;
  uint64_t max_time_ns = 0;
  std::vector<std::string> agent_messages;
  uint64_t size_limit = 0;     // 0: none
  bool limit_reached = false;  // nothing more is written

  ~Impl() {
    if (cctx) ZSTD_freeCCtx(cctx);
    if (fd >= 0) ::close(fd);
  }

  bool usable() const { return fd >= 0 && !failed && !finished; }

  // Records a write failure; the file keeps only its whole chunks.
  void fail(int err, const std::string& what) {
    failed = true;
    const char* reason = std::strerror(err);
    if (err == ENOSPC || err == EDQUOT)
      error = "disk full while writing " + what + " to " + path + ": " + reason;
    else if (err == EIO)
      error = "I/O error while writing " + what + " to " + path + ": " + reason;
    else
      error = "cannot write " + what + " to " + path + ": " + reason;
    // Drop a torn tail so readers see a clean end; harmless if it fails too.
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(offset)) == 0) ::lseek(fd, 0, SEEK_END);
    chunk.clear();
  }

  bool write(const void* data, size_t size, const std::string& what) {
    if (int err = write_all(fd, data, size)) {
      fail(err, what);
      return false;
    }
    return true;
  }

  void append(std::string_view packet) { append_framed(chunk, packet); }

  void state_string(uint64_t id) {
    if (id == 0 || chunk_strings.count(id)) return;
    auto it = strings.find(id);
    if (it == strings.end()) return;
    append(it->second);
    chunk_strings.insert(id);
  }

  size_t restate_code_size(uint64_t id) const {
    if (id == 0 || id == chunk_last_code || chunk_codes.count(id)) return 0;
    auto it = codes.find(id);
    if (it == codes.end()) return 0;
    size_t n = framed_size(it->second.packet.size());
    auto add = [&](uint64_t sid) {
      if (sid == 0 || chunk_strings.count(sid)) return;
      auto s = strings.find(sid);
      if (s != strings.end()) n += framed_size(s->second.size());
    };
    add(it->second.file_name_id);
    add(it->second.qualified_name_id);
    for (uint64_t sid : it->second.local_name_ids) add(sid);  // over-counts duplicates: fine
    return n;
  }

  void state_code(uint64_t id) {
    if (id == 0 || id == chunk_last_code) return;
    if (chunk_codes.count(id)) {
      chunk_last_code = id;
      return;
    }
    auto it = codes.find(id);
    if (it == codes.end()) return;  // not defined (yet): stated once it is
    state_string(it->second.file_name_id);
    state_string(it->second.qualified_name_id);
    for (uint64_t sid : it->second.local_name_ids) state_string(sid);
    append(it->second.packet);
    chunk_codes.insert(id);
    chunk_last_code = id;
  }

  size_t restate_thread_size(uint32_t thread) const {
    if (thread == chunk_last_thread || chunk_threads.count(thread)) return 0;
    auto it = threads.find(thread);
    return it == threads.end() || it->second.packet.empty() ? 0 : framed_size(it->second.packet.size());
  }

  void state_thread(uint32_t thread) {
    if (thread == chunk_last_thread) return;
    if (chunk_threads.count(thread)) {
      chunk_last_thread = thread;
      return;
    }
    auto it = threads.find(thread);
    if (it == threads.end() || it->second.packet.empty()) return;  // stated once announced
    append(it->second.packet);
    chunk_threads.insert(thread);
    chunk_last_thread = thread;
  }

  // Makes room for `bytes` more in the current chunk without passing the format's maximum.
  // Returns false when even an empty chunk cannot hold them.
  bool make_room(size_t bytes) {
    if (bytes > fmt::kMaxChunkUncompressedBytes) return false;
    if (!chunk.empty() && chunk.size() + bytes > fmt::kMaxChunkUncompressedBytes) write_chunk();
    return true;
  }

  // With a size limit: true if `need()` more bytes in the current chunk keep the finished file
  // (that chunk stored uncompressed at worst, then the summary and footer) within the limit.
  // Near it the chunk is written early, compressed, to make room; false once nothing more fits.
  template <class Need>
  bool within_limit(Need&& need) {
    if (size_limit == 0) return true;
    if (limit_reached) return false;
    auto fits = [&] { return offset + sizeof(fmt::ChunkFrame) + chunk.size() + need() + summary_bound() <= size_limit; };
    if (fits() || (!chunk.empty() && write_chunk() && fits())) return true;
    limit_reached = true;
    return false;
  }

  // An upper bound of the summary, its frame and the footer as they stand.
  size_t summary_bound() const {
    size_t bound = 1024 + sizeof(fmt::SummaryFrame) + sizeof(fmt::Footer) + 64 * (index.size() + 2) + 16 * kMaxKinds;
    for (const auto& [thread, t] : threads) bound += 96 + t.name.size();
    for (const std::string& message : agent_messages) bound += 8 + message.size();
    return bound;
  }

  // Widens the chunk's and the thread's time ranges to `time_ns`; `counter` is the thread's
  // count of this kind of packet (events or samples), incremented.
  void note_time(ThreadEntry& t, uint64_t& counter, uint64_t time_ns) {
    if (chunk_timed == 0) {
      chunk_first_time = chunk_last_time = time_ns;
    } else {
      chunk_first_time = std::min(chunk_first_time, time_ns);
      chunk_last_time = std::max(chunk_last_time, time_ns);
    }
    ++chunk_timed;
    max_time_ns = std::max(max_time_ns, time_ns);
    if (t.events == 0 && t.samples == 0) {
      t.first_time_ns = t.last_time_ns = time_ns;
    } else {
      t.first_time_ns = std::min(t.first_time_ns, time_ns);
      t.last_time_ns = std::max(t.last_time_ns, time_ns);
    }
    ++counter;
  }

  void after_append() {
    if (chunk.size() >= fmt::kTargetChunkBytes) write_chunk();
  }

  ThreadEntry& thread_entry(uint32_t thread) {
    if (thread != last_entry_thread || !last_entry) {  // std::map nodes never move
      last_entry = &threads[thread];
      last_entry_thread = thread;
    }
    return *last_entry;
  }
  ThreadEntry* last_entry = nullptr;
  uint32_t last_entry_thread = 0;

  void count_drop(uint32_t thread, uint64_t records, uint64_t bytes) {
    dropped_records += records;
    dropped_bytes += bytes;
    thread_entry(thread).dropped_records += records;
  }

  // Compresses and writes the current chunk. Returns false after a write failure.
  bool write_chunk() {
    if (!usable()) return false;
    if (chunk.empty()) return true;

    fmt::ChunkFrame frame{};
    frame.magic = fmt::kChunkMagic;
    frame.uncompressed_length = chunk.size();
    frame.first_seq = chunk_first_seq;
    frame.event_count = chunk_events;
    frame.first_time_ns = chunk_timed ? chunk_first_time : 0;
    frame.last_time_ns = chunk_timed ? chunk_last_time : 0;

    std::string_view payload = chunk;
    frame.compression = fmt::kNone;
    if (!cctx) cctx = ZSTD_createCCtx();
    if (cctx) {
      compressed.resize(ZSTD_compressBound(chunk.size()));
      size_t n = ZSTD_compressCCtx(cctx, compressed.data(), compressed.size(), chunk.data(), chunk.size(), 1);
      if (!ZSTD_isError(n) && n < chunk.size()) {  // store when compression does not pay
        payload = std::string_view(compressed.data(), n);
        frame.compression = fmt::kZstd;
      }
    }
    frame.compressed_length = payload.size();
    frame.payload_crc32c = fmt::crc32c(payload.data(), payload.size());
    frame.frame_crc32c = 0;
    frame.frame_crc32c = fmt::crc32c(&frame, sizeof frame);

    std::string what = "chunk " + std::to_string(index.size() + 1);
    if (!write(&frame, sizeof frame, what) || !write(payload.data(), payload.size(), what)) return false;

    v1::ChunkIndexEntry entry;
    entry.set_file_offset(offset);
    entry.set_first_seq(frame.first_seq);
    entry.set_event_count(frame.event_count);
    entry.set_first_time_ns(frame.first_time_ns);
    entry.set_last_time_ns(frame.last_time_ns);
    index.push_back(std::move(entry));
    offset += sizeof frame + payload.size();

    chunk.clear();
    if (chunk.capacity() > 2 * fmt::kTargetChunkBytes) chunk.shrink_to_fit();  // after a huge packet
    chunk_first_seq = events;
    chunk_events = 0;
    chunk_timed = 0;
    chunk_strings.clear();
    chunk_codes.clear();
    chunk_threads.clear();
    chunk_last_code = 0;
    chunk_last_thread = UINT32_MAX;
    return true;
  }
};

RecordingWriter::RecordingWriter() : impl_(std::make_unique<Impl>()) {}

RecordingWriter::~RecordingWriter() {
  // Not finished: keep what is buffered (a whole chunk), but write no summary or footer.
  if (impl_ && impl_->usable()) impl_->write_chunk();
}

std::unique_ptr<RecordingWriter> RecordingWriter::create(const std::string& path,
                                                         const v1::RecordingHeader& header,
                                                         std::string* error) {
  auto set_error = [&](const std::string& message) {
    if (error) *error = message;
    return nullptr;
  };
  v1::RecordingHeader h = header;
  h.set_format_version(fmt::kFormatVersion);  // what this writer writes, whatever the caller set
  std::string header_bytes;
  if (!h.SerializeToString(&header_bytes)) return set_error("cannot encode the recording header");
  if (header_bytes.size() > fmt::kMaxHeaderLength)
    return set_error("recording header too large (" + std::to_string(header_bytes.size()) + " bytes)");

  std::unique_ptr<RecordingWriter> writer(new RecordingWriter());
  Impl& im = *writer->impl_;
  im.path = path;
  im.start_monotonic_ns = h.start_monotonic_ns();
  // 0600: a recording holds the program's local variables.
  im.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (im.fd < 0) return set_error("cannot create " + path + ": " + std::strerror(errno));

  std::string head(fmt::kFileMagic, sizeof fmt::kFileMagic);
  uint32_t words[2] = {fmt::kFormatVersion, static_cast<uint32_t>(header_bytes.size())};
  head.append(reinterpret_cast<const char*>(words), sizeof words);
  head += header_bytes;
  if (!im.write(head.data(), head.size(), "the header")) return set_error(im.error);
  im.offset = head.size();
  return writer;
}

void RecordingWriter::add_string(uint64_t id, std::string_view packet) {
  if (!impl_->usable() || id == 0) return;
  impl_->strings.try_emplace(id, packet);
}

void RecordingWriter::add_code(uint64_t id, uint64_t file_name_id, uint64_t qualified_name_id,
                               const uint64_t* local_name_ids, size_t local_name_count,
                               std::string_view packet) {
  if (!impl_->usable() || id == 0 || impl_->codes.count(id)) return;
  Impl::CodeEntry entry;
  entry.file_name_id = file_name_id;
  entry.qualified_name_id = qualified_name_id;
  if (local_name_ids) entry.local_name_ids.assign(local_name_ids, local_name_ids + local_name_count);
  entry.packet = packet;
  impl_->codes.emplace(id, std::move(entry));
}

void RecordingWriter::add_thread(uint32_t thread, uint64_t native_id, std::string_view name,
                                 std::string_view packet) {
  Impl& im = *impl_;
  if (!im.usable()) return;
  Impl::ThreadEntry& t = im.thread_entry(thread);
  // Ring writers re-announce their thread; an unchanged announcement is restated lazily
  // (before the thread's next event in a chunk), a new or renamed thread is written now.
  if (t.packet == packet) return;
  t.native_id = native_id;
  t.name = name;
  t.packet = packet;
  if (!im.within_limit([&] { return framed_size(packet.size()); }) || !im.make_room(framed_size(packet.size()))) return;
  im.append(packet);
  im.chunk_threads.insert(thread);
  im.after_append();
}

void RecordingWriter::end_thread(uint32_t thread, std::string_view packet) {
  Impl& im = *impl_;
  auto need = [&] { return im.restate_thread_size(thread) + framed_size(packet.size()); };
  if (!im.usable() || !im.within_limit(need) || !im.make_room(need())) return;
  im.state_thread(thread);  // so the end names a thread this chunk knows
  im.append(packet);
  im.after_append();
}

void RecordingWriter::add_event(const EventMeta& meta, std::string_view packet) {
  Impl& im = *impl_;
  if (!im.usable() || !im.within_limit([&] {
        return im.restate_thread_size(meta.thread) + im.restate_code_size(meta.code_id) + framed_size(packet.size());
      }))
    return;
  size_t need = im.restate_thread_size(meta.thread) + im.restate_code_size(meta.code_id) +
                framed_size(packet.size());
  if (!im.chunk.empty() && im.chunk.size() + need > fmt::kMaxChunkUncompressedBytes) {
    if (!im.write_chunk()) return;
    need = im.restate_thread_size(meta.thread) + im.restate_code_size(meta.code_id) +
           framed_size(packet.size());
  }
  if (need > fmt::kMaxChunkUncompressedBytes) {
    // Cannot be stored in any chunk: account for it as a loss rather than corrupt the file.
    im.count_drop(meta.thread, 1, packet.size());
    return;
  }
  im.state_thread(meta.thread);
  im.state_code(meta.code_id);
  im.append(packet);

  if (im.chunk_events == 0) im.chunk_first_seq = im.events;
  ++im.chunk_events;
  ++im.events;
  if (meta.kind < kMaxKinds) {
    if (meta.kind >= im.by_kind.size()) im.by_kind.resize(meta.kind + 1, 0);
    ++im.by_kind[meta.kind];
  }
  Impl::ThreadEntry& t = im.thread_entry(meta.thread);
  im.note_time(t, t.events, meta.time_ns);
  im.after_append();
}

void RecordingWriter::add_sample(uint32_t thread, uint64_t time_ns, const uint64_t* code_ids, size_t code_count,
                                 std::string_view packet) {
  Impl& im = *impl_;
  auto need = [&] {
    size_t n = im.restate_thread_size(thread) + framed_size(packet.size());
    for (size_t i = 0; i < code_count; ++i) n += im.restate_code_size(code_ids[i]);  // duplicates over-count: fine
    return n;
  };
  if (!im.usable() || !im.within_limit(need)) return;
  if (!im.chunk.empty() && im.chunk.size() + need() > fmt::kMaxChunkUncompressedBytes && !im.write_chunk()) return;
  if (need() > fmt::kMaxChunkUncompressedBytes) return;  // a stack no chunk can hold: not recorded
  im.state_thread(thread);
  for (size_t i = 0; i < code_count; ++i) im.state_code(code_ids[i]);
  im.append(packet);
  Impl::ThreadEntry& t = im.thread_entry(thread);
  im.note_time(t, t.samples, time_ns);
  ++im.samples;
  im.after_append();
}

void RecordingWriter::add_loss(uint32_t thread, uint64_t dropped_records, uint64_t dropped_bytes,
                               std::string_view packet) {
  Impl& im = *impl_;
  if (!im.usable()) return;
  im.count_drop(thread, dropped_records, dropped_bytes);
  auto need = [&] { return im.restate_thread_size(thread) + framed_size(packet.size()); };
  if (!im.within_limit(need) || !im.make_room(need())) return;
  im.state_thread(thread);
  im.append(packet);
  im.after_append();
}

void RecordingWriter::add_status(std::string_view message, std::string_view packet) {
  Impl& im = *impl_;
  if (!im.usable()) return;
  if (!message.empty() && im.agent_messages.size() < kMaxAgentMessages)
    im.agent_messages.emplace_back(message.substr(0, kMaxAgentMessageBytes));
  if (!im.within_limit([&] { return framed_size(packet.size()); }) || !im.make_room(framed_size(packet.size())))
    return;
  im.append(packet);
  im.after_append();
}

bool RecordingWriter::flush_chunk() { return impl_->write_chunk(); }

void RecordingWriter::set_size_limit(uint64_t max_file_bytes) { impl_->size_limit = max_file_bytes; }
bool RecordingWriter::size_limit_reached() const { return impl_->limit_reached; }

bool RecordingWriter::finish(const v1::RecordingSummary& summary_extras) {
  Impl& im = *impl_;
  if (im.finished || im.fd < 0) return !im.failed;
  if (im.failed || !im.write_chunk()) return false;

  v1::RecordingSummary summary = summary_extras;
  summary.clear_chunks();
  for (auto& entry : im.index) *summary.add_chunks() = std::move(entry);
  im.index.clear();
  summary.clear_threads();
  for (const auto& [thread, t] : im.threads) {
    v1::ThreadSummary* ts = summary.add_threads();
    ts->set_thread(thread);
    ts->set_native_id(t.native_id);
    ts->set_name(t.name);
    ts->set_events(t.events);
    ts->set_dropped_records(t.dropped_records);
    ts->set_first_time_ns(t.first_time_ns);
    ts->set_last_time_ns(t.last_time_ns);
    ts->set_samples(t.samples);
  }
  summary.set_event_count(im.events);
  summary.set_sample_count(im.samples);
  summary.clear_event_count_by_kind();
  for (uint64_t n : im.by_kind) summary.add_event_count_by_kind(n);
  summary.set_dropped_records(im.dropped_records);
  summary.set_dropped_bytes(im.dropped_bytes);
  if (summary.duration_ns() == 0) {
    // From the start of the recording to now, or to the last event if the clock disagrees.
    uint64_t now = monotonic_now_ns();
    uint64_t elapsed = im.start_monotonic_ns && now > im.start_monotonic_ns ? now - im.start_monotonic_ns : 0;
    summary.set_duration_ns(std::max(elapsed, im.max_time_ns));
  }
  for (auto& m : im.agent_messages) summary.add_agent_messages(std::move(m));
  summary.set_code_count(im.codes.size());

  std::string bytes;
  if (!summary.SerializeToString(&bytes)) {
    im.failed = true;
    im.error = "cannot encode the recording summary";
    return false;
  }
  fmt::SummaryFrame sframe{};
  sframe.magic = fmt::kSummaryMagic;
  sframe.crc32c = fmt::crc32c(bytes.data(), bytes.size());
  sframe.length = bytes.size();
  fmt::Footer footer{};
  footer.magic = fmt::kFooterMagic;
  footer.summary_offset = im.offset;
  std::memcpy(footer.file_magic, fmt::kFileMagic, sizeof footer.file_magic);
  footer.crc32c = 0;
  footer.crc32c = fmt::crc32c(&footer, sizeof footer);

  std::string tail(reinterpret_cast<const char*>(&sframe), sizeof sframe);
  tail += bytes;
  tail.append(reinterpret_cast<const char*>(&footer), sizeof footer);
  if (!im.write(tail.data(), tail.size(), "the summary")) return false;
  im.offset += tail.size();

  if (::fdatasync(im.fd) != 0 && errno != EINVAL && errno != EROFS) {  // EINVAL: /dev/null etc.
    im.fail(errno, "the recording (fdatasync)");
    return false;
  }
  int fd = im.fd;
  im.fd = -1;
  im.finished = true;
  if (::close(fd) != 0 && errno != EINTR) {
    im.failed = true;
    im.error = "cannot close " + im.path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool RecordingWriter::failed() const { return impl_->failed; }
const std::string& RecordingWriter::error() const { return impl_->error; }
uint64_t RecordingWriter::bytes_written() const { return impl_->offset; }
uint64_t RecordingWriter::events_written() const { return impl_->events; }

}  // namespace pyrewind::collector
