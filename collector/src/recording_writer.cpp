// Recording file writer; see recording_writer.h and proto/recording/format.h.
#include "collector/src/recording_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "proto/recording/crc32c.h"
#include "proto/recording/format.h"
#include "proto/recording/series.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"

namespace pyrewind::collector {
namespace {

namespace fmt = pyrewind::recording;

constexpr size_t kMaxAgentMessages = 1000;
constexpr size_t kMaxAgentMessageBytes = 4096;
constexpr size_t kMaxKinds = 32;  // event_count_by_kind grows up to this many entries
// A flight recorder given a duration still holds at most this much.
constexpr uint64_t kMaxRingBytes = 256ull << 20;
constexpr uint64_t kExceptionWindowIntervalNs = 1'000'000'000;

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

// Deletes the numbered files of an earlier series of `base` (part 0 is truncated by its writer).
void remove_stale_parts(const std::string& base) {
  const size_t slash = base.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : base.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? base : base.substr(slash + 1);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* entry = ::readdir(d)) {
    if (uint64_t part = recording::series_part_number(name, entry->d_name); part > 0)
      ::unlink(recording::series_part_path(base, part).c_str());
  }
  ::closedir(d);
}

// What a flight recorder's trigger watch needs of an event packet: its depth, whether it
// carries a value, and its exception's type name.
struct EventFacts {
  uint64_t depth = 0;
  bool has_value = false;
  std::string_view exception_type;
};

EventFacts event_facts(std::string_view packet) {
  namespace F = wire::fields;
  EventFacts facts;
  wire::ProtoReader outer(reinterpret_cast<const uint8_t*>(packet.data()), packet.size());
  wire::Field body;
  while (outer.next(body)) {
    if (body.number != F::Packet::kEvent || body.wire_type != wire::kLengthDelimited) continue;
    wire::ProtoReader r(body.bytes, body.size);
    wire::Field f;
    while (r.next(f)) {
      if (f.number == F::Event::kDepth && f.wire_type == wire::kVarint) facts.depth = f.varint;
      if (f.number == F::Event::kValue) facts.has_value = true;
      if (f.number == F::Event::kException && f.wire_type == wire::kLengthDelimited) {
        wire::ProtoReader e(f.bytes, f.size);
        wire::Field g;
        while (e.next(g))
          if (g.number == F::ExceptionInfo::kTypeName && g.wire_type == wire::kLengthDelimited)
            facts.exception_type = std::string_view(reinterpret_cast<const char*>(g.bytes), g.size);
      }
    }
  }
  return facts;
}

// Compared by class name: `type` is tp_name ("ValueError", "MyError" for a Python class,
// "package.module.Error" for some C types), and the user may write "json.JSONDecodeError".
bool type_matches(std::string_view type, std::string_view wanted) {
  auto class_name = [](std::string_view name) {
    const size_t dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
  };
  return class_name(type) == class_name(wanted);
}

}  // namespace

struct RecordingWriter::Impl {
  struct ThreadCounts {
    uint64_t events = 0;
    uint64_t samples = 0;
    uint64_t dropped_records = 0;
    uint64_t first_time_ns = 0;  // of its events and samples
    uint64_t last_time_ns = 0;
    bool timed() const { return events > 0 || samples > 0; }
    void merge(const ThreadCounts& o) {
      if (o.timed()) {
        first_time_ns = timed() ? std::min(first_time_ns, o.first_time_ns) : o.first_time_ns;
        last_time_ns = std::max(last_time_ns, o.last_time_ns);
      }
      events += o.events;
      samples += o.samples;
      dropped_records += o.dropped_records;
    }
  };
  // What a chunk holds, and summed over the chunks of a file: its summary's statistics.
  struct Stats {
    uint64_t events = 0;
    uint64_t samples = 0;
    std::vector<uint64_t> by_kind = std::vector<uint64_t>(6, 0);
    uint64_t dropped_records = 0;
    uint64_t dropped_bytes = 0;
    uint64_t max_time_ns = 0;
    std::map<uint32_t, ThreadCounts> threads;
    void merge(const Stats& o) {
      events += o.events;
      samples += o.samples;
      if (o.by_kind.size() > by_kind.size()) by_kind.resize(o.by_kind.size(), 0);
      for (size_t i = 0; i < o.by_kind.size(); ++i) by_kind[i] += o.by_kind[i];
      dropped_records += o.dropped_records;
      dropped_bytes += o.dropped_bytes;
      max_time_ns = std::max(max_time_ns, o.max_time_ns);
      for (const auto& [thread, counts] : o.threads) threads[thread].merge(counts);
    }
  };
  struct FileOut {
    std::string path;
    int fd = -1;
    uint64_t offset = 0;  // bytes in the file that are known to be whole
    std::vector<v1::ChunkIndexEntry> index;
    Stats stats;
  };
  struct RingChunk {
    fmt::ChunkFrame frame;
    std::string payload;
    Stats stats;
  };

  struct CodeEntry {
    uint64_t file_name_id = 0;
    uint64_t qualified_name_id = 0;
    std::vector<uint64_t> local_name_ids;
    std::string packet;
  };
  struct ThreadEntry {
    uint64_t native_id = 0;
    uint64_t pid = 0;
    std::string name;
    std::string packet;  // empty: never announced by add_thread
    ThreadCounts pending;  // of the chunk being filled
  };

  std::string base_path;
  std::string head;  // magic, version, header: the start of every file of the series
  OutputOptions output;
  FileOut file;
  uint64_t next_part = 0;
  std::string last_path;
  std::deque<std::pair<std::string, uint64_t>> done_files;  // finished parts still on disk
  uint64_t done_bytes = 0;
  bool rotate_pending = false;  // the current file is nearly full: the next chunk starts a new one
  uint64_t compressed_in = 0, compressed_out = 0;  // compression so far, to size chunks
  double last_ratio = 0;
  double ring_backlog = 0;  // set_ring_backlog()
  uint32_t sample_rate_hz = 0;  // set_sample_rate()  // of the latest chunk: data whose nature changes (losses) compresses differently
  // Flight recorder.
  std::deque<RingChunk> ring;
  uint64_t ring_held = 0;
  uint64_t windows = 0;
  std::vector<std::string> trigger_types;
  bool trigger_uncaught = false;
  struct Unwinding {
    std::string type;  // of the thread's last EXCEPTION event
    bool leaving = false;  // a RETURN without value followed it: the exception propagates
  };
  std::unordered_map<uint32_t, Unwinding> unwinding;
  uint64_t last_exception_window_ns = 0;
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

  // Summary state: events written (the next seq), and the chunk being filled's statistics
  // (their per-thread part in ThreadEntry::pending).
  uint64_t events = 0;
  Stats pending;
  std::vector<std::string> agent_messages;
  uint64_t size_limit = 0;     // 0: none
  bool limit_reached = false;  // nothing more is written

  ~Impl() {
    if (cctx) ZSTD_freeCCtx(cctx);
    if (file.fd >= 0) ::close(file.fd);
  }

  bool ring_mode() const { return output.ring_bytes > 0 || output.ring_ns > 0; }
  bool usable() const { return (file.fd >= 0 || ring_mode()) && !failed && !finished; }

  // Records a write failure; the file keeps only its whole chunks.
  void fail(int err, const std::string& what) {
    failed = true;
    const char* reason = std::strerror(err);
    if (err == ENOSPC || err == EDQUOT)
      error = "disk full while writing " + what + " to " + file.path + ": " + reason;
    else if (err == EIO)
      error = "I/O error while writing " + what + " to " + file.path + ": " + reason;
    else
      error = "cannot write " + what + " to " + file.path + ": " + reason;
    // Drop a torn tail so readers see a clean end; harmless if it fails too.
    if (file.fd >= 0 && ::ftruncate(file.fd, static_cast<off_t>(file.offset)) == 0) ::lseek(file.fd, 0, SEEK_END);
    chunk.clear();
  }

  bool write(const void* data, size_t size, const std::string& what) {
    if (int err = write_all(file.fd, data, size)) {
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

  // Inline: nearly every event is of the code stated last.
  size_t restate_code_size(uint64_t id) const {
    return id == 0 || id == chunk_last_code ? 0 : restate_other_code_size(id);
  }
  size_t restate_other_code_size(uint64_t id) const {
    if (chunk_codes.count(id)) return 0;
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
    if (id != 0 && id != chunk_last_code) state_other_code(id);
  }
  void state_other_code(uint64_t id) {
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
  // A series never refuses: the chunk is cut where it would no longer fit the current file, as
  // compressed as the chunks so far were (with a margin), and write_chunk() starts the next file
  // when the compressed chunk does not fit after all.
  template <class Need>
  bool within_limit(Need&& need) {
    if (output.rotate_bytes > 0) {
      if (!chunk.empty() && !fits_file(chunk.size() + need())) write_chunk();
      return usable();
    }
    if (size_limit == 0) return true;
    if (limit_reached) return false;
    auto fits = [&] {
      return file.offset + sizeof(fmt::ChunkFrame) + chunk.size() + need() + summary_bound() <= size_limit;
    };
    if (fits() || (!chunk.empty() && write_chunk() && fits())) return true;
    limit_reached = true;
    return false;
  }

  bool fits_file(size_t uncompressed) const {
    const double seen = compressed_in > 0 ? static_cast<double>(compressed_out) / static_cast<double>(compressed_in) : 1;
    const double ratio = std::min(1.0, 1.25 * std::max(seen, last_ratio));
    const uint64_t base = rotate_pending ? head.size() : file.offset;
    return base + sizeof(fmt::ChunkFrame) + static_cast<uint64_t>(ratio * static_cast<double>(uncompressed)) +
               summary_bound() <=
           output.rotate_bytes;
  }

  // An upper bound of the summary, its frame and the footer as they stand.
  size_t summary_bound() const {
    size_t bound =
        1024 + sizeof(fmt::SummaryFrame) + sizeof(fmt::Footer) + 64 * (file.index.size() + 2) + 16 * kMaxKinds;
    for (const auto& [thread, t] : threads) bound += 96 + t.name.size();
    for (const std::string& message : agent_messages) bound += 8 + message.size();
    return bound;
  }

  // A flight recorder's chunks are its unit of forgetting: a small ring gets smaller chunks.
  uint64_t target_chunk_bytes() const {
    if (output.ring_bytes == 0) return fmt::kTargetChunkBytes;
    return std::clamp<uint64_t>(output.ring_bytes, 64 << 10, fmt::kTargetChunkBytes);
  }

  void after_append() {
    if (chunk.size() >= target_chunk_bytes()) write_chunk();
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
    pending.dropped_records += records;
    pending.dropped_bytes += bytes;
    thread_entry(thread).pending.dropped_records += records;
  }

  // Widens the chunk's and the thread's time ranges to `time_ns`; `counter` is the thread's
  // count of this kind of packet (its events or samples), incremented.
  void note_time(ThreadCounts& t, uint64_t& counter, uint64_t time_ns) {
    if (chunk_timed == 0) {
      chunk_first_time = chunk_last_time = time_ns;
    } else {
      chunk_first_time = std::min(chunk_first_time, time_ns);
      chunk_last_time = std::max(chunk_last_time, time_ns);
    }
    ++chunk_timed;
    pending.max_time_ns = std::max(pending.max_time_ns, time_ns);
    if (!t.timed()) {
      t.first_time_ns = t.last_time_ns = time_ns;
    } else {
      t.first_time_ns = std::min(t.first_time_ns, time_ns);
      t.last_time_ns = std::max(t.last_time_ns, time_ns);
    }
    ++counter;
  }

  // Moves the statistics gathered since the last chunk into `into`.
  void fold_pending(Stats& into) {
    into.merge(pending);
    pending = Stats{};
    for (auto& [thread, t] : threads) {
      if (!t.pending.timed() && t.pending.dropped_records == 0) continue;
      into.threads[thread].merge(t.pending);
      t.pending = ThreadCounts{};
    }
  }

  // Creates `path` as the current file and writes its header.
  bool open_file(const std::string& path) {
    file = FileOut{};
    file.path = path;
    last_path = path;
    // 0600: a recording holds the program's local variables.
    file.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (file.fd < 0) {
      failed = true;
      error = "cannot create " + path + ": " + std::strerror(errno);
      return false;
    }
    if (!write(head.data(), head.size(), "the header")) return false;
    file.offset = head.size();
    return true;
  }

  bool append_chunk(const fmt::ChunkFrame& frame, std::string_view payload, const Stats& stats) {
    std::string what = "chunk " + std::to_string(file.index.size() + 1);
    if (!write(&frame, sizeof frame, what) || !write(payload.data(), payload.size(), what)) return false;
    v1::ChunkIndexEntry entry;
    entry.set_file_offset(file.offset);
    entry.set_first_seq(frame.first_seq);
    entry.set_event_count(frame.event_count);
    entry.set_first_time_ns(frame.first_time_ns);
    entry.set_last_time_ns(frame.last_time_ns);
    file.index.push_back(std::move(entry));
    file.offset += sizeof frame + payload.size();
    file.stats.merge(stats);
    return true;
  }

  // A finished part of a series or a window: deletes the oldest parts beyond the total bound,
  // counting a whole part for the file being written (a series keeps at least the newest part,
  // a flight recorder its newest window).
  void retire_file() {
    done_files.emplace_back(file.path, file.offset);
    done_bytes += file.offset;
    file = FileOut{};
    if (output.max_total_bytes == 0) return;
    const uint64_t reserve = output.rotate_bytes;
    while (done_files.size() > 1 && done_bytes + reserve > output.max_total_bytes) {
      ::unlink(done_files.front().first.c_str());
      done_bytes -= done_files.front().second;
      done_files.pop_front();
    }
  }

  bool next_file() {
    v1::RecordingSummary extras;  // the program runs on: no exit status
    extras.set_target_exited(false);
    if (!finish_file(extras, false)) return false;
    retire_file();
    rotate_pending = false;
    return open_file(recording::series_part_path(base_path, next_part++));
  }

  bool emit_to_file(const fmt::ChunkFrame& frame, std::string_view payload, const Stats& stats) {
    const uint64_t rotate = output.rotate_bytes;
    if (rotate > 0 && !file.index.empty() &&
        (rotate_pending || file.offset + sizeof frame + payload.size() + summary_bound() > rotate) && !next_file())
      return false;
    if (!append_chunk(frame, payload, stats)) return false;
    // Nearly full: another chunk would be tiny, so the next one starts the next file.
    if (rotate > 0 && file.offset + rotate / 8 + summary_bound() > rotate) rotate_pending = true;
    return true;
  }

  void keep_in_ring(const fmt::ChunkFrame& frame, std::string_view payload, Stats stats) {
    ring.push_back(RingChunk{frame, std::string(payload), std::move(stats)});
    ring_held += payload.size();
    const uint64_t max_bytes = output.ring_bytes > 0 ? output.ring_bytes : kMaxRingBytes;
    const uint64_t newest = ring.back().frame.last_time_ns;
    // The newest chunk stays, whatever its size.
    while (ring.size() > 1 && (ring_held > max_bytes ||
                               (output.ring_ns > 0 && ring.front().frame.last_time_ns + output.ring_ns < newest))) {
      ring_held -= ring.front().payload.size();
      ring.pop_front();
    }
  }

  // The current file's summary and footer; closes it. `sync`: flushed to the disk first. Not
  // for a full part of a series: that would stall the drain for the disk, and the chunks of a
  // single file are not synced before its end either.
  bool finish_file(const v1::RecordingSummary& summary_extras, bool sync) {
    v1::RecordingSummary summary = summary_extras;
    if (sample_rate_hz) summary.set_sample_rate_hz(sample_rate_hz);
    const Stats& st = file.stats;
    summary.clear_chunks();
    for (auto& entry : file.index) *summary.add_chunks() = std::move(entry);
    file.index.clear();
    summary.clear_threads();
    for (const auto& [thread, counts] : st.threads) {
      v1::ThreadSummary* ts = summary.add_threads();
      ts->set_thread(thread);
      auto it = threads.find(thread);
      if (it != threads.end()) {
        ts->set_native_id(it->second.native_id);
        ts->set_name(it->second.name);
        ts->set_pid(it->second.pid);
      }
      ts->set_events(counts.events);
      ts->set_dropped_records(counts.dropped_records);
      ts->set_first_time_ns(counts.first_time_ns);
      ts->set_last_time_ns(counts.last_time_ns);
      ts->set_samples(counts.samples);
    }
    summary.set_event_count(st.events);
    summary.set_sample_count(st.samples);
    summary.clear_event_count_by_kind();
    for (uint64_t n : st.by_kind) summary.add_event_count_by_kind(n);
    summary.set_dropped_records(st.dropped_records);
    summary.set_dropped_bytes(st.dropped_bytes);
    if (summary.duration_ns() == 0) {
      // From the start of the recording to now, or to the last event if the clock disagrees.
      uint64_t now = monotonic_now_ns();
      uint64_t elapsed = start_monotonic_ns && now > start_monotonic_ns ? now - start_monotonic_ns : 0;
      summary.set_duration_ns(std::max(elapsed, st.max_time_ns));
    }
    for (const std::string& m : agent_messages) summary.add_agent_messages(m);
    summary.set_code_count(codes.size());

    std::string bytes;
    if (!summary.SerializeToString(&bytes)) {
      failed = true;
      error = "cannot encode the recording summary";
      return false;
    }
    fmt::SummaryFrame sframe{};
    sframe.magic = fmt::kSummaryMagic;
    sframe.crc32c = fmt::crc32c(bytes.data(), bytes.size());
    sframe.length = bytes.size();
    fmt::Footer footer{};
    footer.magic = fmt::kFooterMagic;
    footer.summary_offset = file.offset;
    std::memcpy(footer.file_magic, fmt::kFileMagic, sizeof footer.file_magic);
    footer.crc32c = 0;
    footer.crc32c = fmt::crc32c(&footer, sizeof footer);

    std::string tail(reinterpret_cast<const char*>(&sframe), sizeof sframe);
    tail += bytes;
    tail.append(reinterpret_cast<const char*>(&footer), sizeof footer);
    if (!write(tail.data(), tail.size(), "the summary")) return false;
    file.offset += tail.size();

    if (sync && ::fdatasync(file.fd) != 0 && errno != EINVAL && errno != EROFS) {  // EINVAL: /dev/null etc.
      fail(errno, "the recording (fdatasync)");
      return false;
    }
    int fd = file.fd;
    file.fd = -1;
    if (::close(fd) != 0 && errno != EINTR) {
      failed = true;
      error = "cannot close " + file.path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }

  bool write_window(const std::string& reason) {
    if (!ring_mode() || !usable() || !write_chunk() || ring.empty()) return false;
    if (!open_file(recording::series_part_path(base_path, next_part++))) return false;
    for (const RingChunk& c : ring)
      if (!append_chunk(c.frame, c.payload, c.stats)) return false;
    ring.clear();
    ring_held = 0;
    v1::RecordingSummary extras;
    extras.set_target_exited(false);
    extras.add_agent_messages("flight recorder window: " + reason);
    if (!finish_file(extras, true)) return false;
    retire_file();
    ++windows;
    return true;
  }

  // Flight recorder: a window right after a trigger event (EventFacts for the rules).
  void watch_triggers(const EventMeta& meta, std::string_view packet) {
    constexpr auto kException = static_cast<uint32_t>(wire::EventKind::kException);
    constexpr auto kReturn = static_cast<uint32_t>(wire::EventKind::kReturn);
    if (meta.kind != kException && meta.kind != kReturn) {
      if (!unwinding.empty()) unwinding.erase(meta.thread);
      return;
    }
    const EventFacts facts = event_facts(packet);
    std::string reason;
    if (meta.kind == kException) {
      Unwinding& u = unwinding[meta.thread];
      // The same exception met again in the caller of a frame it left is not raised anew.
      const bool propagating = u.leaving && u.type == facts.exception_type;
      u.type = facts.exception_type;
      u.leaving = false;
      if (!propagating)
        for (const std::string& wanted : trigger_types)
          if (type_matches(facts.exception_type, wanted)) reason = "exception " + u.type;
    } else if (facts.has_value) {
      unwinding.erase(meta.thread);
    } else {
      auto it = unwinding.find(meta.thread);
      if (it == unwinding.end()) return;
      it->second.leaving = true;
      if (trigger_uncaught && facts.depth == 0 && it->second.type != "SystemExit")
        reason = "uncaught exception " + it->second.type;
    }
    if (reason.empty()) return;
    const uint64_t now = monotonic_now_ns();
    if (last_exception_window_ns != 0 && now - last_exception_window_ns < kExceptionWindowIntervalNs) return;
    if (write_window(reason)) last_exception_window_ns = now;
  }

  // Compresses the current chunk and writes it (to the file, the next file of a series, or the
  // flight recorder's ring). Returns false after a write failure.
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
    // Compression gives way before events do: with the shared ring filling up (the program
    // outruns the collector) a faster level, then none. zstd is a third of the collector's
    // time per event; level -3 compresses this data 1.5x as fast to 60% of level 1's ratio.
    // Not with a byte budget per file: its chunks are cut by the ratio seen so far.
    const double backlog = output.rotate_bytes > 0 || size_limit > 0 ? 0 : ring_backlog;
    const bool store = backlog >= 0.75;
    const int level = backlog >= 0.25 ? -3 : 1;
    if (!cctx && !store) cctx = ZSTD_createCCtx();
    if (cctx && !store) {
      compressed.resize(ZSTD_compressBound(chunk.size()));
      size_t n = ZSTD_compressCCtx(cctx, compressed.data(), compressed.size(), chunk.data(), chunk.size(), level);
      if (!ZSTD_isError(n) && n < chunk.size()) {  // store when compression does not pay
        payload = std::string_view(compressed.data(), n);
        frame.compression = fmt::kZstd;
      }
    }
    frame.compressed_length = payload.size();
    frame.payload_crc32c = fmt::crc32c(payload.data(), payload.size());
    frame.frame_crc32c = 0;
    frame.frame_crc32c = fmt::crc32c(&frame, sizeof frame);
    compressed_in += chunk.size();
    compressed_out += payload.size();
    last_ratio = static_cast<double>(payload.size()) / static_cast<double>(chunk.size());

    Stats stats;
    fold_pending(stats);
    if (ring_mode()) {
      keep_in_ring(frame, payload, std::move(stats));
    } else if (!emit_to_file(frame, payload, stats)) {
      return false;
    }

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
                                                         std::string* error, const OutputOptions& output) {
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
  im.base_path = path;
  im.output = output;
  im.start_monotonic_ns = h.start_monotonic_ns();
  im.head.assign(fmt::kFileMagic, sizeof fmt::kFileMagic);
  uint32_t words[2] = {fmt::kFormatVersion, static_cast<uint32_t>(header_bytes.size())};
  im.head.append(reinterpret_cast<const char*>(words), sizeof words);
  im.head += header_bytes;
  if (output.rotate_bytes > 0 || im.ring_mode()) remove_stale_parts(path);
  if (im.ring_mode()) {
    // Nothing is written before a trigger, but an output that cannot be written fails now;
    // an older recording of that name would pass for this one's window: it goes.
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      return set_error("cannot write to " + dir + ": " + std::strerror(errno));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return set_error("cannot replace " + path + ": " + std::strerror(errno));
    return writer;
  }
  if (!im.open_file(im.base_path)) return set_error(im.error);
  im.next_part = 1;
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
                                 std::string_view packet, uint64_t pid) {
  Impl& im = *impl_;
  if (!im.usable()) return;
  Impl::ThreadEntry& t = im.thread_entry(thread);
  // Ring writers re-announce their thread; an unchanged announcement is restated lazily
  // (before the thread's next event in a chunk), a new or renamed thread is written now.
  if (t.packet == packet) return;
  t.native_id = native_id;
  t.name = name;
  t.pid = pid;
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
  Impl::Stats& pending = im.pending;
  ++pending.events;
  if (meta.kind < kMaxKinds) {
    if (meta.kind >= pending.by_kind.size()) pending.by_kind.resize(meta.kind + 1, 0);
    ++pending.by_kind[meta.kind];
  }
  Impl::ThreadCounts& t = im.thread_entry(meta.thread).pending;
  im.note_time(t, t.events, meta.time_ns);
  im.after_append();
  if (!im.trigger_types.empty() || im.trigger_uncaught) im.watch_triggers(meta, packet);
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
  Impl::ThreadCounts& t = im.thread_entry(thread).pending;
  im.note_time(t, t.samples, time_ns);
  ++im.pending.samples;
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
  if (im.finished) return !im.failed;
  if (im.ring_mode()) {  // a flight recorder writes windows only
    im.finished = true;
    return !im.failed;
  }
  if (im.file.fd < 0) return !im.failed;
  if (im.failed || !im.write_chunk()) return false;
  im.fold_pending(im.file.stats);  // losses after the last chunk
  if (!im.finish_file(summary_extras, true)) return false;
  im.finished = true;
  return true;
}

bool RecordingWriter::write_window(const std::string& reason) { return impl_->write_window(reason); }

void RecordingWriter::set_sample_rate(uint32_t hz) { impl_->sample_rate_hz = hz; }

void RecordingWriter::set_ring_backlog(double fraction) { impl_->ring_backlog = fraction; }

std::optional<uint32_t> RecordingWriter::thread_with_native_id(uint64_t native_id) const {
  if (native_id == 0) return std::nullopt;
  for (const auto& [thread, entry] : impl_->threads)
    if (entry.native_id == native_id && !entry.packet.empty()) return thread;
  return std::nullopt;
}

void RecordingWriter::set_triggers(std::vector<std::string> exception_types, bool uncaught) {
  impl_->trigger_types = std::move(exception_types);
  impl_->trigger_uncaught = uncaught && impl_->ring_mode();
  if (!impl_->ring_mode()) impl_->trigger_types.clear();
}

uint64_t RecordingWriter::windows_written() const { return impl_->windows; }
const std::string& RecordingWriter::current_path() const { return impl_->last_path; }
uint64_t RecordingWriter::ring_bytes_held() const { return impl_->ring_held; }

bool RecordingWriter::failed() const { return impl_->failed; }
const std::string& RecordingWriter::error() const { return impl_->error; }
uint64_t RecordingWriter::bytes_written() const { return impl_->done_bytes + impl_->file.offset; }
uint64_t RecordingWriter::events_written() const { return impl_->events; }

}  // namespace pyrewind::collector
