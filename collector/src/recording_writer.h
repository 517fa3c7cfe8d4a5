// Writes a recording file (layout: proto/recording/format.h).
//
// Packets arrive in the file form (events carry `thread` and absolute `time_ns`). The writer
// buffers them into ~1 MiB chunks, and before the first event of a chunk that uses a code
// object or thread (or a sample that uses them) it re-states that CodeDef (with its StringDefs) and ThreadStart, so each
// chunk decodes alone. Chunks are zstd-compressed and CRC32C-checked. Every write error (disk
// full, I/O error) is reported, never thrown past the caller, and leaves the file readable up
// to its last whole chunk.
//
// Output modes (OutputOptions): one file (the default); a series of files of bounded size
// (`rotate_bytes`, named by proto/recording/series.h), each a complete recording with the
// summary of its own chunks; or a flight recorder (`ring_bytes` / `ring_ns`), where finished
// chunks stay compressed in a bounded in-memory ring and only write_window() (or a trigger
// event, set_triggers()) writes the ring's chunks as the next file of the series. The seq of
// events and their times continue across the files of a series.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyrewind/v1/recording.pb.h"

namespace pyrewind::collector {

struct EventMeta {
  uint32_t thread = 0;
  uint64_t time_ns = 0;
  uint64_t code_id = 0;   // 0: none
  uint32_t kind = 0;      // pyrewind.v1.EventKind
};

struct OutputOptions {
  uint64_t rotate_bytes = 0;     // a series: the next file starts before one would exceed this
  uint64_t ring_bytes = 0;       // a flight recorder keeping this many compressed bytes
  uint64_t ring_ns = 0;          // ... or the chunks of this last stretch of time
  // A series or flight recorder: the oldest files are deleted to keep the series within this.
  uint64_t max_total_bytes = 0;
};

class RecordingWriter {
 public:
  // Creates (truncates) `path` and writes the file magic and header. A series first deletes
  // the numbered files of an earlier series of that name; a flight recorder creates nothing
  // until its first window.
  static std::unique_ptr<RecordingWriter> create(const std::string& path,
                                                 const v1::RecordingHeader& header,
                                                 std::string* error, const OutputOptions& output = {});
  ~RecordingWriter();  // closes the file without a summary if finish() was not called

  // Definitions: remembered for re-stating; the bytes are a serialized Packet.
  void add_string(uint64_t id, std::string_view packet);
  void add_code(uint64_t id, uint64_t file_name_id, uint64_t qualified_name_id,
                const uint64_t* local_name_ids, size_t local_name_count, std::string_view packet);
  // `pid`: the thread's process when it is not the recording's (0).
  void add_thread(uint32_t thread, uint64_t native_id, std::string_view name, std::string_view packet,
                  uint64_t pid = 0);
  void end_thread(uint32_t thread, std::string_view packet);

  // An event packet (file form) and what the writer needs to know about it.
  void add_event(const EventMeta& meta, std::string_view packet);
  // A Sample packet of `thread` at `time_ns` whose stack uses `code_ids`: the thread and those
  // code objects are stated in its chunk first. Samples are not events (no seq).
  void add_sample(uint32_t thread, uint64_t time_ns, const uint64_t* code_ids, size_t code_count,
                  std::string_view packet);
  // Loss and AgentStatus packets.
  void add_loss(uint32_t thread, uint64_t dropped_records, uint64_t dropped_bytes, std::string_view packet);
  void add_status(std::string_view message, std::string_view packet);

  // Keeps the finished file within `max_file_bytes` (0: no limit): once the next packet would
  // not fit, nothing more is written and size_limit_reached() turns true. The file stays whole.
  void set_size_limit(uint64_t max_file_bytes);
  bool size_limit_reached() const;

  // Writes the current chunk now (e.g. a periodic flush so a killed collector loses little).
  bool flush_chunk();
  // Writes the last chunk, the summary and the footer. `summary_extras` supplies the fields
  // the writer cannot know (exit status, target_exited); the writer fills in the rest.
  bool finish(const v1::RecordingSummary& summary_extras);

  // Flight recorder: writes the ring (with the chunk being filled) as the next file of the
  // series, empties the ring and records on. `reason` goes into the file's summary. False when
  // there was nothing new to write or writing failed (see failed()).
  bool write_window(const std::string& reason);
  // Flight recorder: also write a window right after an EXCEPTION event whose type name is one
  // of `exception_types` (where it is raised, not in each frame it passes through), and, with
  // `uncaught`, after an exception leaves a thread's outermost traced frame (SystemExit aside).
  // Exception windows come at most once a second.
  void set_triggers(std::vector<std::string> exception_types, bool uncaught);
  // Samples added to a traced recording are taken at this rate (RecordingSummary.sample_rate_hz).
  void set_sample_rate(uint32_t hz);
  // The share of the shared-memory ring waiting to be drained (ring::DrainSink::on_backlog()):
  // chunks are compressed faster from a quarter on, and stored uncompressed from three quarters
  // (not with --rotate or a size limit, whose chunk sizes count on the compression so far).
  void set_ring_backlog(double fraction);
  uint64_t windows_written() const;
  // The index of the announced thread with this OS thread id, if any.
  std::optional<uint32_t> thread_with_native_id(uint64_t native_id) const;
  // The file written last (or being written), "" before the first.
  const std::string& current_path() const;
  // Compressed bytes held by the flight recorder's ring.
  uint64_t ring_bytes_held() const;

  bool failed() const;
  const std::string& error() const;
  uint64_t bytes_written() const;  // of the series' files still on disk, the current one included
  uint64_t events_written() const;

 private:
  RecordingWriter();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyrewind::collector
