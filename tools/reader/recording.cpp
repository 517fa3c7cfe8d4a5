#include "tools/reader/recording.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_set>

#include "proto/recording/crc32c.h"
#include "proto/recording/series.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"  // wire type constants
#include "tools/reader/utf8.h"

namespace pyrewind::reader {
namespace {

namespace fmt = pyrewind::recording;
using fmt::ChunkFrame;

constexpr uint64_t kMaxSummaryBytes = 1ull << 30;
constexpr uint64_t kHeaderPrefix = sizeof fmt::kFileMagic + 8;  // magic, version, length

uint64_t max_compressed_length() { return ZSTD_compressBound(fmt::kMaxChunkUncompressedBytes); }

// Reads up to `size` bytes at `offset`; returns the count read (short only at end of file) or
// -1 with errno set.
ssize_t pread_full(int fd, void* buf, size_t size, uint64_t offset) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, p + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool pread_exact(int fd, void* buf, size_t size, uint64_t offset, std::string* error) {
  ssize_t n = pread_full(fd, buf, size, offset);
  if (n == static_cast<ssize_t>(size)) return true;
  if (error) {
    *error = n < 0 ? std::string("read error: ") + std::strerror(errno)
                   : "file changed while reading (short read at byte " + std::to_string(offset) + ")";
  }
  return false;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

enum class FrameStatus { kOk, kEnd, kTruncated, kSummary, kForeign, kCorrupt };

struct FrameCheck {
  FrameStatus status = FrameStatus::kOk;
  std::string message;
};

// Validates the chunk frame at `offset` against `limit` (the end of the chunk area; the end of
// the file when `limit_is_eof`). `ordinal` is the 1-based chunk number for messages.
FrameCheck check_frame(int fd, uint64_t offset, uint64_t limit, bool limit_is_eof, uint64_t ordinal,
                       ChunkFrame& frame) {
  FrameCheck r;
  const std::string where = "chunk " + std::to_string(ordinal) + " at byte " + std::to_string(offset);
  auto fail = [&](FrameStatus status, std::string message) {
    r.status = status;
    r.message = std::move(message);
    return r;
  };
  if (offset >= limit) return fail(FrameStatus::kEnd, "");
  uint64_t remaining = limit - offset;
  uint8_t raw[sizeof(ChunkFrame)] = {};
  size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, sizeof raw));
  std::string io_error;
  if (!pread_exact(fd, raw, want, offset, &io_error)) return fail(FrameStatus::kCorrupt, where + ": " + io_error);

  // Compare as much of the magic as is there, so a tail of 1-3 bytes is still recognised.
  auto magic_prefix = [&](uint32_t magic) {
    uint8_t m[4];
    std::memcpy(m, &magic, 4);
    return std::memcmp(raw, m, std::min<size_t>(want, 4)) == 0;
  };
  // Chunk and summary magics share their first bytes: a tail that short counts as a torn chunk.
  if (!magic_prefix(fmt::kChunkMagic) && magic_prefix(fmt::kSummaryMagic)) return fail(FrameStatus::kSummary, "");
  if (!magic_prefix(fmt::kChunkMagic))
    return fail(FrameStatus::kForeign, "unexpected data at byte " + std::to_string(offset) +
                                           " where chunk " + std::to_string(ordinal) + " should start");
  if (want < sizeof raw) {
    if (limit_is_eof)
      return fail(FrameStatus::kTruncated, "file truncated at byte " + std::to_string(limit) +
                                               " inside the frame of chunk " + std::to_string(ordinal));
    return fail(FrameStatus::kCorrupt, where + ": frame overruns the chunk area");
  }
  std::memcpy(&frame, raw, sizeof frame);
  ChunkFrame zeroed = frame;
  zeroed.frame_crc32c = 0;
  uint32_t crc = fmt::crc32c(&zeroed, sizeof zeroed);
  if (crc != frame.frame_crc32c)
    return fail(FrameStatus::kCorrupt, where + ": corrupt chunk frame (CRC mismatch: stored " +
                                           hex32(frame.frame_crc32c) + ", computed " + hex32(crc) + ")");
  if (frame.compression != fmt::kNone && frame.compression != fmt::kZstd)
    return fail(FrameStatus::kCorrupt, where + ": unknown compression " + std::to_string(frame.compression));
  if (frame.uncompressed_length > fmt::kMaxChunkUncompressedBytes ||
      frame.compressed_length > max_compressed_length() ||
      (frame.compression == fmt::kNone && frame.compressed_length != frame.uncompressed_length) ||
      frame.event_count > frame.uncompressed_length / 2 || frame.first_time_ns > frame.last_time_ns)
    return fail(FrameStatus::kCorrupt, where + ": impossible chunk frame (lengths " +
                                           std::to_string(frame.compressed_length) + "/" +
                                           std::to_string(frame.uncompressed_length) + ", " +
                                           std::to_string(frame.event_count) + " events)");
  uint64_t need = sizeof(ChunkFrame) + frame.compressed_length;
  if (need > remaining) {
    if (limit_is_eof)
      return fail(FrameStatus::kTruncated,
                  "file truncated at byte " + std::to_string(limit) + " inside chunk " + std::to_string(ordinal) +
                      " (which starts at byte " + std::to_string(offset) + " and needs " + std::to_string(need) +
                      " bytes)");
    return fail(FrameStatus::kCorrupt, where + ": chunk overruns the chunk area");
  }
  return r;
}

// Reads the payload of a validated frame into `out` and checks its CRC.
bool read_payload(int fd, uint64_t offset, uint64_t ordinal, const ChunkFrame& frame, std::vector<uint8_t>& out,
                  std::string* error) {
  const std::string where = "chunk " + std::to_string(ordinal) + " at byte " + std::to_string(offset);
  out.resize(static_cast<size_t>(frame.compressed_length));
  std::string io_error;
  if (!pread_exact(fd, out.data(), out.size(), offset + sizeof(ChunkFrame), &io_error)) {
    *error = where + ": " + io_error;
    return false;
  }
  uint32_t crc = fmt::crc32c(out.data(), out.size());
  if (crc != frame.payload_crc32c) {
    *error = where + ": payload CRC mismatch (stored " + hex32(frame.payload_crc32c) + ", computed " + hex32(crc) +
             ")";
    return false;
  }
  return true;
}

struct DctxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

// Decompresses a checked payload. On success `data`/`size` point at the PacketBatch bytes
// (into `payload` itself when stored uncompressed).
bool decode_payload(ZSTD_DCtx* dctx, uint64_t ordinal, uint64_t offset, const ChunkFrame& frame,
                    const std::vector<uint8_t>& payload, std::vector<uint8_t>& plain, const uint8_t*& data,
                    size_t& size, std::string* error) {
  const std::string where = "chunk " + std::to_string(ordinal) + " at byte " + std::to_string(offset);
  if (frame.compression == fmt::kNone) {
    data = payload.data();
    size = payload.size();
    return true;
  }
  unsigned long long content = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (content != frame.uncompressed_length ||
      ZSTD_findFrameCompressedSize(payload.data(), payload.size()) != payload.size()) {
    *error = where + ": zstd frame does not match the chunk frame";
    return false;
  }
  plain.resize(static_cast<size_t>(frame.uncompressed_length));
  size_t n = ZSTD_decompressDCtx(dctx, plain.data(), plain.size(), payload.data(), payload.size());
  if (ZSTD_isError(n) || n != plain.size()) {
    *error = where + ": cannot decompress (" + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output") + ")";
    return false;
  }
  data = plain.data();
  size = plain.size();
  return true;
}

// Summary statistics gathered at the wire level while rebuilding an unfinished recording.
struct SummaryBuilder {
  std::map<uint32_t, v1::ThreadSummary> threads;
  std::vector<uint64_t> by_kind = std::vector<uint64_t>(6, 0);
  uint64_t events = 0;
  uint64_t samples = 0;
  uint64_t dropped_records = 0;
  uint64_t dropped_bytes = 0;
  std::vector<std::string> messages;
  std::unordered_set<uint64_t> codes;

  v1::ThreadSummary& thread(uint32_t t) {
    auto [it, inserted] = threads.try_emplace(t);
    if (inserted) it->second.set_thread(t);
    return it->second;
  }

  void add_chunk(const uint8_t* data, size_t size) {
    namespace F = wire::fields;
    wire::ProtoReader batch(data, size);
    wire::Field pf;
    while (batch.next(pf)) {
      if (pf.number != F::PacketBatch::kPacket || pf.wire_type != wire::kLengthDelimited) continue;
      wire::ProtoReader packet(pf.bytes, pf.size);
      wire::Field body;
      while (packet.next(body)) {
        if (body.wire_type != wire::kLengthDelimited) continue;
        wire::ProtoReader r(body.bytes, body.size);
        wire::Field f;
        switch (body.number) {
          case F::Packet::kEvent: {
            uint64_t kind = 0, t = 0, time = 0;
            while (r.next(f)) {
              if (f.wire_type != wire::kVarint) continue;
              if (f.number == F::Event::kKind) kind = f.varint;
              if (f.number == F::Event::kThread) t = f.varint;
              if (f.number == F::Event::kTimeNs) time = f.varint;
            }
            ++events;
            if (kind < 32) {
              if (kind >= by_kind.size()) by_kind.resize(kind + 1, 0);
              ++by_kind[kind];
            }
            v1::ThreadSummary& ts = thread(static_cast<uint32_t>(t));
            if (ts.events() == 0 || time < ts.first_time_ns()) ts.set_first_time_ns(time);
            if (time > ts.last_time_ns()) ts.set_last_time_ns(time);
            ts.set_events(ts.events() + 1);
            break;
          }
          case F::Packet::kSample: {
            uint64_t t = 0, time = 0;
            while (r.next(f)) {
              if (f.wire_type != wire::kVarint) continue;
              if (f.number == F::Sample::kThread) t = f.varint;
              if (f.number == F::Sample::kTimeNs) time = f.varint;
            }
            ++samples;
            v1::ThreadSummary& ts = thread(static_cast<uint32_t>(t));
            if ((ts.events() == 0 && ts.samples() == 0) || time < ts.first_time_ns()) ts.set_first_time_ns(time);
            if (time > ts.last_time_ns()) ts.set_last_time_ns(time);
            ts.set_samples(ts.samples() + 1);
            break;
          }
          case F::Packet::kThreadStart: {
            uint64_t t = 0, native = 0;
            std::string name;
            while (r.next(f)) {
              if (f.number == F::ThreadStart::kThread && f.wire_type == wire::kVarint) t = f.varint;
              if (f.number == F::ThreadStart::kNativeId && f.wire_type == wire::kVarint) native = f.varint;
              if (f.number == F::ThreadStart::kName && f.wire_type == wire::kLengthDelimited)
                name.assign(reinterpret_cast<const char*>(f.bytes), f.size);
            }
            v1::ThreadSummary& ts = thread(static_cast<uint32_t>(t));
            ts.set_native_id(native);
            ts.set_name(name);
            break;
          }
          case F::Packet::kLoss: {
            uint64_t t = 0, records = 0, bytes = 0;
            while (r.next(f)) {
              if (f.wire_type != wire::kVarint) continue;
              if (f.number == F::Loss::kThread) t = f.varint;
              if (f.number == F::Loss::kDroppedRecords) records = f.varint;
              if (f.number == F::Loss::kDroppedBytes) bytes = f.varint;
            }
            dropped_records += records;
            dropped_bytes += bytes;
            v1::ThreadSummary& ts = thread(static_cast<uint32_t>(t));
            ts.set_dropped_records(ts.dropped_records() + records);
            break;
          }
          case F::Packet::kAgentStatus:
            while (r.next(f)) {
              if (f.number == F::AgentStatus::kMessage && f.wire_type == wire::kLengthDelimited && f.size > 0 &&
                  messages.size() < 1000)
                messages.emplace_back(reinterpret_cast<const char*>(f.bytes), std::min<size_t>(f.size, 4096));
            }
            break;
          case F::Packet::kCodeDef:
            while (r.next(f))
              if (f.number == F::CodeDef::kId && f.wire_type == wire::kVarint) codes.insert(f.varint);
            break;
          default:
            break;
        }
      }
    }
  }

  void fill(v1::RecordingSummary& s) const {
    for (const auto& [t, ts] : threads) *s.add_threads() = ts;
    for (uint64_t n : by_kind) s.add_event_count_by_kind(n);
    s.set_dropped_records(dropped_records);
    s.set_dropped_bytes(dropped_bytes);
    s.set_sample_count(samples);
    for (const auto& m : messages) s.add_agent_messages(m);
    s.set_code_count(codes.size());
  }
};

// Re-encodes a message with every string field made valid UTF-8 (see parse_message).
bool repair_strings(const google::protobuf::Descriptor* type, const uint8_t* data, size_t size, std::string& out,
                    int depth) {
  using google::protobuf::FieldDescriptor;
  if (depth > 100) return false;  // libprotobuf's own recursion limit
  wire::ProtoReader r(data, size);
  wire::Field f;
  while (r.next(f)) {
    const FieldDescriptor* field = type->FindFieldByNumber(static_cast<int>(f.number));
    if (field && f.wire_type == wire::kLengthDelimited &&
        (field->type() == FieldDescriptor::TYPE_STRING || field->type() == FieldDescriptor::TYPE_MESSAGE)) {
      std::string body;
      if (field->type() == FieldDescriptor::TYPE_STRING)
        body = to_valid_utf8(std::string_view(reinterpret_cast<const char*>(f.bytes), f.size));
      else if (!repair_strings(field->message_type(), f.bytes, f.size, body, depth + 1))
        return false;
      uint8_t head[20];
      size_t n = wire::ProtoWriter::encode_varint((uint64_t{f.number} << 3) | wire::kLengthDelimited, head);
      n += wire::ProtoWriter::encode_varint(body.size(), head + n);
      out.append(reinterpret_cast<const char*>(head), n);
      out += body;
      continue;
    }
    out.append(reinterpret_cast<const char*>(f.start), static_cast<size_t>(f.end - f.start));
  }
  return r.ok();
}

void filtered_log(google::protobuf::LogLevel level, const char* filename, int line, const std::string& message) {
  if (message.find("invalid UTF-8") != std::string::npos) return;
  static const char* const kLevels[] = {"INFO", "WARNING", "ERROR", "FATAL"};
  const char* name = level >= 0 && level < 4 ? kLevels[level] : "?";
  std::fprintf(stderr, "[libprotobuf %s %s:%d] %s\n", name, filename, line, message.c_str());
}

// `path` and the numbered files of its series beside it, in order; `path` alone when it is no
// series (or only `path` exists). `path` itself is left out when it does not exist but parts do.
std::vector<std::string> series_members(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::vector<uint64_t> numbers;
  if (DIR* d = name.empty() ? nullptr : ::opendir(dir.c_str())) {
    while (const dirent* entry = ::readdir(d))
      if (uint64_t n = fmt::series_part_number(name, entry->d_name); n > 0) numbers.push_back(n);
    ::closedir(d);
  }
  std::sort(numbers.begin(), numbers.end());
  std::vector<std::string> members;
  struct stat st {};
  if (numbers.empty() || ::stat(path.c_str(), &st) == 0) members.push_back(path);
  for (uint64_t n : numbers) members.push_back(fmt::series_part_path(path, n));
  return members;
}

bool same_recording(const v1::RecordingHeader& a, const v1::RecordingHeader& b) {
  return a.start_monotonic_ns() == b.start_monotonic_ns() && a.pid() == b.pid() && a.host() == b.host();
}

}  // namespace

bool parse_message(google::protobuf::Message& message, const uint8_t* data, size_t size) {
  if (size > static_cast<size_t>(INT32_MAX)) return false;
  if (message.ParseFromArray(data, static_cast<int>(size))) return true;
  std::string repaired;
  if (!repair_strings(message.GetDescriptor(), data, size, repaired, 0)) return false;
  return message.ParseFromString(repaired);
}

void quiet_protobuf_utf8_errors() { google::protobuf::SetLogHandler(&filtered_log); }

// ---------------------------------------------------------------------------------------------
// Recording

Recording::~Recording() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<Recording> Recording::open(const std::string& path, std::string* error,
                                           const OpenOptions& options) {
  const std::vector<std::string> members = series_members(path);
  if (members.size() == 1) return open_file(members[0], error, options);
  std::vector<std::unique_ptr<Recording>> parts;
  std::string damage;
  for (const std::string& member : members) {
    std::string why;
    std::unique_ptr<Recording> part = open_file(member, &why, options);
    if (!part) {
      if (parts.empty()) {
        if (error) *error = member + ": " + why;
        return nullptr;
      }
      damage = member + ": " + why + "; the series is read up to it";
      break;
    }
    // A numbered file left by an earlier recording of that name is not part of this one.
    if (!parts.empty() && !same_recording(parts.front()->header(), part->header())) continue;
    parts.push_back(std::move(part));
  }
  if (parts.size() == 1 && damage.empty()) return std::move(parts.front());
  std::unique_ptr<Recording> series(new Recording());
  series->path_ = path;
  series->load_series(std::move(parts), damage);
  return series;
}

std::vector<std::string> Recording::part_paths() const {
  if (parts_.empty()) return {path_};
  std::vector<std::string> paths;
  for (const auto& part : parts_) paths.push_back(part->path_);
  return paths;
}

bool Recording::locate(uint64_t* offset, Span* span) const {
  if (parts_.empty()) {
    *span = Span{this, 0};
    return true;
  }
  size_t k = static_cast<size_t>(std::upper_bound(part_base_.begin(), part_base_.end(), *offset) - part_base_.begin());
  for (k = k > 0 ? k - 1 : 0; k < parts_.size(); ++k) {
    const uint64_t base = part_base_[k];
    *offset = std::max(*offset, base + parts_[k]->data_begin_);
    if (*offset < base + parts_[k]->data_end_) {
      *span = Span{parts_[k].get(), base};
      return true;
    }
  }
  return false;
}

// The series' summary: the parts' chunk indexes (offsets moved into the one address space)
// and statistics added up; how it ended, from the last part.
bool Recording::load_series(std::vector<std::unique_ptr<Recording>> parts, std::string damage) {
  parts_ = std::move(parts);
  const Recording& first = *parts_.front();
  format_version_ = first.format_version_;
  header_ = first.header_;
  finished_ = true;
  std::map<uint32_t, v1::ThreadSummary> threads;
  std::vector<uint64_t> by_kind;
  std::unordered_set<std::string> messages;
  uint64_t base = 0;
  for (const auto& part : parts_) {
    part_base_.push_back(base);
    const v1::RecordingSummary& s = part->summary_;
    for (v1::ChunkIndexEntry entry : s.chunks()) {
      entry.set_file_offset(entry.file_offset() + base);
      *summary_.add_chunks() = std::move(entry);
    }
    summary_.set_event_count(summary_.event_count() + s.event_count());
    if (static_cast<size_t>(s.event_count_by_kind_size()) > by_kind.size())
      by_kind.resize(static_cast<size_t>(s.event_count_by_kind_size()), 0);
    for (int i = 0; i < s.event_count_by_kind_size(); ++i) by_kind[static_cast<size_t>(i)] += s.event_count_by_kind(i);
    summary_.set_dropped_records(summary_.dropped_records() + s.dropped_records());
    summary_.set_dropped_bytes(summary_.dropped_bytes() + s.dropped_bytes());
    summary_.set_duration_ns(std::max(summary_.duration_ns(), s.duration_ns()));
    summary_.set_code_count(std::max(summary_.code_count(), s.code_count()));
    for (const std::string& m : s.agent_messages())
      if (messages.insert(m).second) summary_.add_agent_messages(m);
    for (const v1::ThreadSummary& t : s.threads()) {
      auto [it, inserted] = threads.try_emplace(t.thread(), t);
      if (inserted) continue;
      v1::ThreadSummary& merged = it->second;
      if (t.events() > 0)
        merged.set_first_time_ns(merged.events() ? std::min(merged.first_time_ns(), t.first_time_ns())
                                                 : t.first_time_ns());
      merged.set_last_time_ns(std::max(merged.last_time_ns(), t.last_time_ns()));
      merged.set_events(merged.events() + t.events());
      merged.set_dropped_records(merged.dropped_records() + t.dropped_records());
      if (!t.name().empty()) merged.set_name(t.name());
      if (t.native_id() != 0) merged.set_native_id(t.native_id());
    }
    finished_ = finished_ && part->finished_;
    damaged_ = damaged_ || part->damaged_;
    if (!part->damage_.empty()) damage_ += (damage_.empty() ? "" : "; ") + part->path_ + ": " + part->damage_;
    base += part->file_size_;
  }
  for (uint64_t n : by_kind) summary_.add_event_count_by_kind(n);
  for (const auto& [thread, t] : threads) *summary_.add_threads() = t;
  const v1::RecordingSummary& last = parts_.back()->summary_;
  summary_.set_exit_status(last.exit_status());
  summary_.set_target_exited(last.target_exited());
  summary_.set_stop_reason(last.stop_reason());
  if (!damage.empty()) {
    damaged_ = true;
    finished_ = false;
    damage_ += (damage_.empty() ? "" : "; ") + damage;
  }
  file_size_ = base;
  data_begin_ = part_base_.front() + first.data_begin_;
  data_end_ = part_base_.back() + parts_.back()->data_end_;
  return true;
}

std::unique_ptr<Recording> Recording::open_file(const std::string& path, std::string* error,
                                                const OpenOptions& options) {
  std::unique_ptr<Recording> rec(new Recording());
  std::string message;
  if (!rec->load(path, &message, options)) {
    if (error) *error = message;
    return nullptr;
  }
  return rec;
}

bool Recording::load(const std::string& path, std::string* error, const OpenOptions& options) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    *error = std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    *error = std::strerror(errno);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    *error = "is a directory";
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    return false;
  }
  file_size_ = static_cast<uint64_t>(st.st_size);

  uint8_t prefix[kHeaderPrefix] = {};
  ssize_t got = pread_full(fd_, prefix, sizeof prefix, 0);
  if (got < 0) {
    *error = std::string("read error: ") + std::strerror(errno);
    return false;
  }
  if (got == 0) {
    *error = "empty file (not a pyrewind recording)";
    return false;
  }
  size_t magic_bytes = std::min<size_t>(static_cast<size_t>(got), sizeof fmt::kFileMagic);
  if (std::memcmp(prefix, fmt::kFileMagic, magic_bytes) != 0) {
    *error = "not a pyrewind recording (bad magic)";
    return false;
  }
  if (static_cast<size_t>(got) < sizeof prefix) {
    *error = "file truncated inside the recording header (" + plural(file_size_, "byte", "bytes") + ")";
    return false;
  }
  uint32_t words[2];
  std::memcpy(words, prefix + sizeof fmt::kFileMagic, sizeof words);
  format_version_ = words[0];
  if (format_version_ < fmt::kOldestReadableFormatVersion || format_version_ > fmt::kFormatVersion) {
    *error = "unsupported format version " + std::to_string(format_version_) + " (this pyrewind reads versions " +
             std::to_string(fmt::kOldestReadableFormatVersion) + " to " + std::to_string(fmt::kFormatVersion) + ")";
    return false;
  }
  uint32_t header_length = words[1];
  if (header_length > fmt::kMaxHeaderLength) {
    *error = "corrupt recording header (length " + std::to_string(header_length) + " exceeds the maximum of " +
             std::to_string(fmt::kMaxHeaderLength) + ")";
    return false;
  }
  if (kHeaderPrefix + header_length > file_size_) {
    *error = "file truncated inside the recording header (needs " +
             std::to_string(kHeaderPrefix + header_length) + " bytes, has " + std::to_string(file_size_) + ")";
    return false;
  }
  std::string bytes(header_length, '\0');
  std::string io_error;
  if (!pread_exact(fd_, bytes.data(), bytes.size(), kHeaderPrefix, &io_error)) {
    *error = io_error;
    return false;
  }
  if (!parse_message(header_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) {
    *error = "corrupt recording header (cannot decode " + std::to_string(header_length) + " bytes)";
    return false;
  }
  if (header_.format_version() != 0 && header_.format_version() != format_version_) {
    *error = "corrupt recording header (format version " + std::to_string(header_.format_version()) +
             " inside, " + std::to_string(format_version_) + " outside)";
    return false;
  }
  data_begin_ = kHeaderPrefix + header_length;
  data_end_ = data_begin_;

  if (!load_footer()) recover(options);
  return true;
}

// Reads the footer and summary; on any inconsistency leaves a reason in damage_ and returns
// false so the caller rebuilds the summary by scanning.
bool Recording::load_footer() {
  auto no = [&](const std::string& reason) {
    damage_ = reason;
    return false;
  };
  if (file_size_ < data_begin_ + sizeof(fmt::SummaryFrame) + sizeof(fmt::Footer))
    return no("recording not finished (no footer)");
  fmt::Footer footer{};
  std::string io_error;
  if (!pread_exact(fd_, &footer, sizeof footer, file_size_ - sizeof footer, &io_error)) return no(io_error);
  if (footer.magic != fmt::kFooterMagic || std::memcmp(footer.file_magic, fmt::kFileMagic, sizeof fmt::kFileMagic))
    return no("recording not finished (no footer)");
  fmt::Footer zeroed = footer;
  zeroed.crc32c = 0;
  if (fmt::crc32c(&zeroed, sizeof zeroed) != footer.crc32c) return no("corrupt footer (CRC mismatch)");
  uint64_t summary_limit = file_size_ - sizeof footer;
  if (footer.summary_offset < data_begin_ || footer.summary_offset > summary_limit - sizeof(fmt::SummaryFrame))
    return no("corrupt footer (summary offset " + std::to_string(footer.summary_offset) + " outside the file)");
  fmt::SummaryFrame frame{};
  if (!pread_exact(fd_, &frame, sizeof frame, footer.summary_offset, &io_error)) return no(io_error);
  uint64_t length = summary_limit - footer.summary_offset - sizeof frame;
  if (frame.magic != fmt::kSummaryMagic || frame.length != length || length > kMaxSummaryBytes)
    return no("corrupt summary frame at byte " + std::to_string(footer.summary_offset));
  std::string bytes(static_cast<size_t>(length), '\0');
  if (!pread_exact(fd_, bytes.data(), bytes.size(), footer.summary_offset + sizeof frame, &io_error))
    return no(io_error);
  if (fmt::crc32c(bytes.data(), bytes.size()) != frame.crc32c) return no("corrupt summary (CRC mismatch)");
  v1::RecordingSummary summary;
  if (!parse_message(summary, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))
    return no("corrupt summary (cannot decode)");
  // The chunk index must describe chunks inside the chunk area, in file order.
  uint64_t min_offset = data_begin_;
  for (const auto& entry : summary.chunks()) {
    if (entry.file_offset() < min_offset || entry.file_offset() > footer.summary_offset - sizeof(ChunkFrame) ||
        footer.summary_offset < sizeof(ChunkFrame))
      return no("corrupt summary (chunk index entry at byte " + std::to_string(entry.file_offset()) +
                " outside the chunk area)");
    min_offset = entry.file_offset() + sizeof(ChunkFrame);
  }
  summary_ = std::move(summary);
  data_end_ = footer.summary_offset;
  finished_ = true;
  damage_.clear();
  return true;
}

void Recording::recover(const OpenOptions& options) {
  const std::string reason = damage_;
  summary_.Clear();
  SummaryBuilder builder;
  std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(options.rebuild_summary ? ZSTD_createDCtx() : nullptr);
  std::vector<uint8_t> payload, plain;
  uint64_t offset = data_begin_;
  uint64_t events = 0, last_time = 0;
  std::string stop;   // set when data was lost
  bool saw_summary = false;
  for (uint64_t ordinal = 1;; ++ordinal) {
    ChunkFrame frame{};
    FrameCheck check = check_frame(fd_, offset, file_size_, true, ordinal, frame);
    if (check.status == FrameStatus::kEnd) break;
    if (check.status == FrameStatus::kSummary) {
      saw_summary = true;
      break;
    }
    if (check.status != FrameStatus::kOk) {
      stop = check.message;
      break;
    }
    std::string error;
    if (!read_payload(fd_, offset, ordinal, frame, payload, &error)) {
      stop = error;
      break;
    }
    if (options.rebuild_summary) {
      const uint8_t* data = nullptr;
      size_t size = 0;
      if (!dctx) {
        stop = "out of memory";
        break;
      }
      if (!decode_payload(dctx.get(), ordinal, offset, frame, payload, plain, data, size, &error)) {
        stop = error;
        break;
      }
      builder.add_chunk(data, size);
    }
    v1::ChunkIndexEntry* entry = summary_.add_chunks();
    entry->set_file_offset(offset);
    entry->set_first_seq(frame.first_seq);
    entry->set_event_count(frame.event_count);
    entry->set_first_time_ns(frame.first_time_ns);
    entry->set_last_time_ns(frame.last_time_ns);
    events += frame.event_count;
    last_time = std::max(last_time, frame.last_time_ns);
    offset += sizeof(ChunkFrame) + frame.compressed_length;
  }
  data_end_ = offset;
  if (options.rebuild_summary) builder.fill(summary_);
  summary_.set_event_count(events);
  summary_.set_duration_ns(last_time);

  std::string recovered = plural(static_cast<uint64_t>(summary_.chunks_size()), "chunk", "chunks") + ", " +
                          plural(events, "event", "events");
  if (!stop.empty()) {
    damaged_ = true;
    damage_ = stop + "; recovered " + recovered + " before it (" +
              plural(file_size_ - offset, "byte", "bytes") + " after it unreadable)";
  } else if (saw_summary) {
    damage_ = (reason.rfind("recording not finished", 0) == 0 ? "footer missing or torn" : reason) +
              "; rebuilt the summary from " + recovered;
  } else {
    damage_ = reason + "; rebuilt the summary from " + recovered;
  }
}

// ---------------------------------------------------------------------------------------------
// ChunkCursor

struct ChunkCursor::Zstd {
  std::unique_ptr<ZSTD_DCtx, DctxDeleter> ctx{ZSTD_createDCtx()};
};

ChunkCursor::ChunkCursor(const Recording& recording)
    : recording_(recording), next_offset_(recording.data_begin()), zstd_(std::make_unique<Zstd>()) {}

ChunkCursor::ChunkCursor(const Recording& recording, size_t index)
    : recording_(recording), next_index_(index), zstd_(std::make_unique<Zstd>()) {
  const auto& chunks = recording.summary().chunks();
  if (index == 0)
    next_offset_ = recording.data_begin();
  else if (index < static_cast<size_t>(chunks.size()))
    next_offset_ = chunks[static_cast<int>(index)].file_offset();
  else
    done_ = true;
}

ChunkCursor::~ChunkCursor() = default;

bool ChunkCursor::next() {
  if (done_) return false;
  data_ = nullptr;
  size_ = 0;
  Recording::Span span;
  if (!recording_.locate(&next_offset_, &span)) {
    done_ = true;
    return false;
  }
  const Recording& file = *span.file;
  const uint64_t offset = next_offset_ - span.base;  // in that file
  const uint64_t limit = file.data_end();
  const uint64_t ordinal = next_index_ + 1;
  // In a series, messages name the file.
  const std::string where = &file == &recording_ ? std::string() : file.path() + ": ";
  ChunkFrame frame{};
  FrameCheck check = check_frame(file.fd(), offset, limit, limit == file.file_size(), ordinal, frame);
  if (check.status != FrameStatus::kOk) {
    done_ = true;
    if (check.status == FrameStatus::kEnd) return false;
    error_ = where + (check.message.empty() ? "chunk " + std::to_string(ordinal) + " at byte " +
                                                  std::to_string(offset) + ": not a chunk"
                                            : check.message);
    return false;
  }
  if (!zstd_->ctx) {
    done_ = true;
    error_ = "out of memory";
    return false;
  }
  if (!read_payload(file.fd(), offset, ordinal, frame, payload_, &error_) ||
      !decode_payload(zstd_->ctx.get(), ordinal, offset, frame, payload_, plain_, data_, size_, &error_)) {
    error_ = where + error_;
    done_ = true;
    data_ = nullptr;
    size_ = 0;
    return false;
  }
  info_.index = next_index_;
  info_.offset = next_offset_;
  info_.frame = frame;
  next_offset_ = info_.end();
  ++next_index_;
  ++chunks_read_;
  return true;
}

// ---------------------------------------------------------------------------------------------
// PacketIterator

namespace {
constexpr size_t kArenaBlock = 64 * 1024;

std::unique_ptr<google::protobuf::Arena> make_arena(char* block) {
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = kArenaBlock;
  return std::make_unique<google::protobuf::Arena>(options);
}
}  // namespace

PacketIterator::PacketIterator(const uint8_t* data, size_t size)
    : pos_(data), end_(data + size), arena_block_(new char[kArenaBlock]), arena_(make_arena(arena_block_.get())) {
  packet_ = google::protobuf::Arena::CreateMessage<v1::Packet>(arena_.get());
}

void PacketIterator::reset(const uint8_t* data, size_t size) {
  pos_ = data;
  end_ = data + size;
  events_seen_ = skipped_packets_ = skipped_events_ = 0;
  framing_error_ = false;
}

bool PacketIterator::next() {
  namespace F = wire::fields;
  while (pos_ < end_ && !framing_error_) {
    wire::ProtoReader batch(pos_, static_cast<size_t>(end_ - pos_));
    wire::Field field;
    if (!batch.next(field)) {
      framing_error_ = true;  // the rest of the chunk cannot be delimited
      ++skipped_packets_;
      return false;
    }
    pos_ = field.end;
    if (field.number != F::PacketBatch::kPacket || field.wire_type != wire::kLengthDelimited) continue;
    // Which body is it? (the last one wins in a oneof). Events are counted even when they do
    // not parse, so the seq of later events stays right.
    wire::ProtoReader peek(field.bytes, field.size);
    wire::Field body;
    uint32_t kind = 0;
    while (peek.next(body)) kind = body.number;
    bool is_event = kind == F::Packet::kEvent;
    if (is_event) ++events_seen_;
    arena_->Reset();  // frees the previous packet; the first block is kept
    packet_ = google::protobuf::Arena::CreateMessage<v1::Packet>(arena_.get());
    if (peek.ok() && parse_message(*packet_, field.bytes, field.size)) return true;
    ++skipped_packets_;
    if (is_event) ++skipped_events_;
  }
  return false;
}

const char* event_kind_name(uint32_t kind) {
  switch (kind) {
    case v1::EVENT_CALL: return "call";
    case v1::EVENT_LINE: return "line";
    case v1::EVENT_RETURN: return "return";
    case v1::EVENT_EXCEPTION: return "exception";
    case v1::EVENT_EXCEPTION_HANDLED: return "exception_handled";
    default: return "unknown";
  }
}

}  // namespace pyrewind::reader
