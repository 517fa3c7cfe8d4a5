// Collector side of the ring: drains committed packets, validating everything it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/ring/layout.h"

namespace pyrewind::ring {

class DrainSink {
 public:
  virtual ~DrainSink() = default;
  // A writer's next chunk starts: times of its first event are relative to `base_time_ns`;
  // `dropped_*` counts what this writer dropped just before it.
  virtual void on_chunk_start(uint32_t writer_id, uint64_t base_time_ns, uint64_t dropped_records,
                              uint64_t dropped_bytes) = 0;
  // One packet's bytes (a serialized pyrewind.v1.Packet, framing removed). Valid only during
  // the call.
  virtual void on_packet(uint32_t writer_id, const uint8_t* data, size_t size) = 0;
  // Data that failed validation was skipped.
  virtual void on_corruption(uint32_t chunk_index, const std::string& reason) = 0;
  // At the start of each poll: the share of the ring's capacity committed by the writers and
  // not yet drained, i.e. how far the collector is behind the program.
  virtual void on_backlog(double /*fraction*/) {}
};

struct DrainStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t chunks_recycled = 0;
  uint64_t corrupt_chunks = 0;
};

// Reads each writer's chunks in sequence order, including the committed prefix of chunks
// still being written (so an idle thread's events are not held back, and a SIGKILLed
// target loses nothing it committed). Recycles COMPLETE chunks once drained.
class Drainer {
 public:
  // `header` must belong to a mapping of `mapped_bytes` bytes; it is validated (again) here.
  Drainer(SegmentHeader* header, uint64_t mapped_bytes);

  bool valid() const { return valid_; }
  const std::string& error() const { return error_; }

  // One pass over the ring. Returns the number of packets delivered.
  size_t poll(DrainSink& sink);

  const DrainStats& stats() const { return stats_; }

 private:
  struct ChunkCursor {
    uint32_t writer_id = 0;
    uint64_t sequence = 0;
    uint32_t consumed = 0;
    bool active = false;    // on_chunk_start delivered for this chunk generation
    bool poisoned = false;  // failed validation: skip its data, recycle once COMPLETE
    bool reported = false;  // a lasting problem of this chunk was already reported
  };
  struct WriterCursor {
    uint64_t next_sequence = 0;
    uint64_t gap_poll = 0;  // poll whose first scan missed the expected chunk
  };
  struct Candidate {
    uint32_t writer_id;
    uint64_t sequence;
    uint32_t index;
  };
  enum class Progress { kWaiting, kRecycled };

  uint8_t* chunk_base(uint32_t index) const;
  void scan(DrainSink& sink);
  bool process(DrainSink& sink, bool second_pass, size_t* packets);
  Progress consume(uint32_t index, uint32_t writer_id, uint64_t sequence, DrainSink& sink, size_t* packets);
  bool recycle(uint32_t index, DrainSink& sink);
  void reject(DrainSink& sink, uint32_t index, const std::string& reason);

  SegmentHeader* header_;
  uint64_t mapped_bytes_;
  bool valid_ = false;
  std::string error_;
  uint32_t chunk_bytes_ = 0;
  uint32_t chunk_count_ = 0;
  std::vector<ChunkCursor> cursors_;
  std::unordered_map<uint32_t, WriterCursor> writers_;
  std::vector<Candidate> candidates_;  // reused by every poll
  std::vector<uint8_t> copy_;          // private copy of newly committed bytes
  uint64_t poll_count_ = 0;
  uint64_t undrained_bytes_ = 0;  // committed but not yet drained, at the last scan
  DrainStats stats_;
};

}  // namespace pyrewind::ring
