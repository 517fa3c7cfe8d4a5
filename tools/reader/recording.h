// Reading pyrewind recordings (layout: proto/recording/format.h).
//
// Three layers, each usable alone, all streaming in bounded memory (one chunk at a time):
//   Recording      opens a file: header, summary (from the footer, or rebuilt by scanning the
//                  chunks when the writer never finished), and what, if anything, is damaged.
//   ChunkCursor    walks the chunks in file order: validates each frame and CRC, decompresses.
//   PacketIterator walks the packets of one decompressed chunk (generated protobuf classes).
// The timeline (timeline.h) builds on them. Nothing here throws on bad input: every length and
// offset read from the file is checked, and problems come back as human-readable text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/arena.h"
#include "proto/recording/format.h"
#include "pyrewind/v1/recording.pb.h"
#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::reader {

struct OpenOptions {
  // A file without a valid footer has its summary rebuilt by reading every chunk. With true,
  // every packet is decoded too (threads, event kinds, losses, agent messages, code count);
  // with false only the chunk frames count (chunk index, event total, duration), which is
  // enough for a tool that streams the events anyway.
  bool rebuild_summary = true;
};

// A series (`--rotate`, flight-recorder windows; names in proto/recording/series.h) opens as
// one recording: `path` (app.rwd, which may be gone when --max-size deleted it) and the
// app.N.rwd beside it that belong to the same recording (same header start time, pid and
// host), in order. Their chunks are one chunk index, at offsets in one address space where
// part k starts at the sum of the sizes of the parts before it; events keep the seq they were
// written with. A single file is a series of one; a part opened by its own name (app.2.rwd)
// is read alone.
class Recording {
 public:
  // Opens and validates `path`. On failure returns nullptr and sets `*error` to a reason
  // without the path ("not a pyrewind recording (bad magic)"). A recording whose tail is torn
  // or corrupt opens fine: see damaged().
  static std::unique_ptr<Recording> open(const std::string& path, std::string* error,
                                         const OpenOptions& options = {});
  ~Recording();
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }  // a series: of all its files
  // The files of a series, in order (one for a single file).
  std::vector<std::string> part_paths() const;
  uint32_t format_version() const { return format_version_; }
  const v1::RecordingHeader& header() const { return header_; }

  // From the footer when the writer finished, otherwise rebuilt (then exit status is unknown:
  // target_exited false). summary().chunks() is the chunk index of every readable chunk.
  const v1::RecordingSummary& summary() const { return summary_; }
  bool finished() const { return finished_; }  // a valid footer and summary were found

  // Unfinished recordings: why the summary had to be rebuilt, or what was lost (empty for a
  // finished recording). damaged() is true when data was lost (torn or corrupt chunk), false
  // when only the summary/footer were missing.
  bool damaged() const { return damaged_; }
  const std::string& damage() const { return damage_; }

  // Where the chunks live: [data_begin(), data_end()).
  uint64_t data_begin() const { return data_begin_; }
  uint64_t data_end() const { return data_end_; }

  // For the readers of this file (shared, read-only; pread only, so cursors are independent).
  // A series: its newest file.
  int fd() const { return parts_.empty() ? fd_ : parts_.back()->fd_; }

  // Where the chunk at `*offset` (chunk address space) is: moves an offset at the end of a
  // part's chunk area to the start of the next part's; false past the last part.
  struct Span {
    const Recording* file = nullptr;  // the part (this, for a single file)
    uint64_t base = 0;                // its first byte's address
  };
  bool locate(uint64_t* offset, Span* span) const;

 private:
  Recording() = default;
  static std::unique_ptr<Recording> open_file(const std::string& path, std::string* error,
                                              const OpenOptions& options);
  bool load_series(std::vector<std::unique_ptr<Recording>> parts, std::string damage);
  bool load(const std::string& path, std::string* error, const OpenOptions& options);
  bool load_footer();
  void recover(const OpenOptions& options);

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint32_t format_version_ = 0;
  v1::RecordingHeader header_;
  v1::RecordingSummary summary_;
  bool finished_ = false;
  bool damaged_ = false;
  std::string damage_;
  uint64_t data_begin_ = 0;
  uint64_t data_end_ = 0;
  std::vector<std::unique_ptr<Recording>> parts_;  // a series of more than one file
  std::vector<uint64_t> part_base_;
};

// One chunk's place in the file, with its validated frame.
struct ChunkInfo {
  uint64_t index = 0;   // 0-based position among the chunks
  uint64_t offset = 0;  // file offset of the ChunkFrame
  recording::ChunkFrame frame{};
  uint64_t end() const { return offset + sizeof(recording::ChunkFrame) + frame.compressed_length; }
};

// Walks chunks in file order from data_begin() (or from an entry of the chunk index) to
// data_end(). Stops at the first chunk that fails validation and says why in error().
class ChunkCursor {
 public:
  explicit ChunkCursor(const Recording& recording);
  // Starts at summary().chunks(index) (index 0: the start of the chunk area, which does not
  // need the index); past the end of the index: an empty cursor.
  ChunkCursor(const Recording& recording, size_t index);
  ~ChunkCursor();
  ChunkCursor(const ChunkCursor&) = delete;
  ChunkCursor& operator=(const ChunkCursor&) = delete;

  // Reads, checks and decompresses the next chunk. False at the end or on an error.
  bool next();
  const ChunkInfo& info() const { return info_; }
  // The chunk's PacketBatch bytes; valid until the next call of next().
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Non-empty when iteration stopped at a bad chunk ("chunk 12 at byte 123: payload CRC
  // mismatch (stored 0x..., computed 0x...)").
  const std::string& error() const { return error_; }
  uint64_t chunks_read() const { return chunks_read_; }
  // Position in the chunk index of the chunk next() reads next.
  uint64_t next_index() const { return next_index_; }

 private:
  struct Zstd;
  const Recording& recording_;
  uint64_t next_offset_ = 0;
  uint64_t next_index_ = 0;
  ChunkInfo info_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> plain_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<Zstd> zstd_;
  std::string error_;
  uint64_t chunks_read_ = 0;
  bool done_ = false;
};

// Iterates the packets of one chunk's PacketBatch bytes. Packets that do not parse are skipped
// and counted; a broken batch framing ends the chunk (also counted).
class PacketIterator {
 public:
  PacketIterator(const uint8_t* data, size_t size);
  PacketIterator(const PacketIterator&) = delete;
  PacketIterator& operator=(const PacketIterator&) = delete;
  // Starts over on another chunk's bytes (reuses the packet's memory).
  void reset(const uint8_t* data, size_t size);

  // Advances to the next packet that parsed. False at the end of the chunk.
  bool next();
  // Valid until the next call of next().
  const v1::Packet& packet() const { return *packet_; }
  // For an event packet: its index among the chunk's events, unparsable ones included, so
  // ChunkFrame.first_seq + event_index() is its recording-wide seq.
  uint64_t event_index() const { return events_seen_ - 1; }

  uint64_t skipped_packets() const { return skipped_packets_; }
  uint64_t skipped_events() const { return skipped_events_; }
  bool framing_error() const { return framing_error_; }

 private:
  const uint8_t* pos_;
  const uint8_t* end_;
  // Each packet is parsed into an arena that is reset before the next one, so decoding does
  // not go through malloc for every message.
  std::unique_ptr<char[]> arena_block_;
  std::unique_ptr<google::protobuf::Arena> arena_;
  v1::Packet* packet_ = nullptr;
  uint64_t events_seen_ = 0;
  uint64_t skipped_packets_ = 0;
  uint64_t skipped_events_ = 0;
  bool framing_error_ = false;
};

// Parses a message like ParseFromArray, except that a string field holding invalid UTF-8
// (which libprotobuf rejects in proto3, failing the whole message) is repaired with U+FFFD.
// Recorded text comes from the OS and from Python (undecodable paths, lone surrogates).
bool parse_message(google::protobuf::Message& message, const uint8_t* data, size_t size);

// libprotobuf logs an error for every invalid UTF-8 string it meets; parse_message repairs
// them, so a tool can drop those lines (other messages still go to stderr). Process-wide;
// call once from a command, not from library code.
void quiet_protobuf_utf8_errors();

// Names of pyrewind.v1.EventKind values as used in exports: "call", "line", "return",
// "exception", "exception_handled"; "unknown" otherwise.
const char* event_kind_name(uint32_t kind);

}  // namespace pyrewind::reader
