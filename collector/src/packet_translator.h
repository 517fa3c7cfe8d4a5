// Rewrites ring packets into recording-file packets (design: /work/brief.md "Ring packet forms
// vs file packet forms"), at the wire level, without libprotobuf:
//   Event        drop time_delta_ns(2), add thread(9) = writer id and time_ns(11) = absolute
//                time (the writer's running time: chunk base + the deltas so far); every other
//                field's bytes are copied verbatim, container deltas (Container.reused_items)
//                included: readers resolve them against the binding's previous value.
//   StringDef, CodeDef, ThreadStart, ThreadEnd, AgentStatus -> the matching RecordingWriter
//                call, with the packet bytes verbatim once validated.
//   chunk-header drop counts and ring Loss packets -> Loss packets.
// Every packet is validated against the schema first (packet_validator.h); a malformed one is
// counted and skipped. Definitions are forwarded once per id: agent threads repeat them in their
// own streams (ids are global and immutable), the writer re-states them per file chunk itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "collector/src/recording_writer.h"
#include "proto/ring/drainer.h"

namespace pyrewind::collector {

struct TranslatorStats {
  uint64_t packets = 0;           // packets received from the ring
  uint64_t events = 0;            // events passed to the writer
  uint64_t strings = 0;
  uint64_t codes = 0;
  uint64_t threads_started = 0;
  uint64_t threads_ended = 0;
  uint64_t statuses = 0;
  uint64_t loss_packets = 0;
  uint64_t dropped_records = 0;   // reported lost by the agent side (chunk headers + Loss packets)
  uint64_t dropped_bytes = 0;
  uint64_t duplicate_defs = 0;    // repeated definitions, skipped
  uint64_t malformed_packets = 0; // failed validation, skipped
  uint64_t unknown_packets = 0;   // well-formed packets of a type this collector does not know
  uint64_t corrupt_chunks = 0;    // reported by the drainer
  uint64_t discarded_packets = 0; // drained after the writer failed (disk full), not written
};

class PacketTranslator final : public ring::DrainSink {
 public:
  explicit PacketTranslator(RecordingWriter& writer);

  void on_chunk_start(uint32_t writer_id, uint64_t base_time_ns, uint64_t dropped_records,
                      uint64_t dropped_bytes) override;
  void on_packet(uint32_t writer_id, const uint8_t* data, size_t size) override;
  void on_corruption(uint32_t chunk_index, const std::string& reason) override;
  void on_backlog(double fraction) override { writer_.set_ring_backlog(fraction); }

  const TranslatorStats& stats() const { return stats_; }
  // Threads seen (ThreadStart packets or events), for the end-of-run line.
  size_t thread_count() const { return threads_seen_.size(); }
  // True once anything was handed to the writer since the last call.
  bool take_written_flag();
  // The first few corruption reports, for diagnostics.
  const std::vector<std::string>& corruption_samples() const { return corruption_samples_; }
  // True if an AgentStatus packet carried exactly this message.
  bool saw_status_message(const std::string& message) const;

 private:
  struct WriterClock {
    uint64_t time_ns = 0;  // time of this writer's previous event (or its chunk's base)
    bool has_events = false;
  };

  bool writable();
  bool handle_event(uint32_t writer_id, const uint8_t* data, size_t size);
  bool handle_string(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size);
  bool handle_code(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size);
  bool handle_thread_start(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size);
  bool handle_thread_end(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size);
  bool handle_loss(uint32_t writer_id, const uint8_t* data, size_t size);
  bool handle_status(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size);
  void write_loss(uint32_t thread, uint64_t records, uint64_t bytes, const std::string& reason);

  RecordingWriter& writer_;
  TranslatorStats stats_;
  std::unordered_map<uint32_t, WriterClock> clocks_;
  WriterClock* clock_ = nullptr;  // clocks_[clock_writer_]: consecutive packets share a writer
  uint32_t clock_writer_ = 0;
  std::unordered_set<uint64_t> strings_;
  std::unordered_set<uint64_t> codes_;
  std::unordered_set<uint32_t> threads_started_;
  std::unordered_set<uint32_t> threads_ended_;
  std::unordered_set<uint32_t> threads_seen_;
  std::vector<uint8_t> buffer_;
  std::vector<uint64_t> local_name_ids_;
  std::vector<std::string> corruption_samples_;
  std::vector<std::string> status_messages_;  // the first few
  bool written_ = false;
};

}  // namespace pyrewind::collector
