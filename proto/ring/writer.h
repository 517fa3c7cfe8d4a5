// Agent side of the ring: one ChunkWriter per writing thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "proto/ring/layout.h"
#include "proto/wire/proto_writer.h"

namespace pyrewind::ring {

// Not thread-safe: each OS thread owns its writer. Never blocks, never allocates, never
// throws. When no chunk can be had the record is dropped and counted exactly; the counts are
// stated in the header of the next chunk this writer acquires (the collector turns them into
// Loss packets). Dropped bytes are the packets' sizes, framing excluded. A writer id belongs
// to one ChunkWriter for the life of the segment: its chunks are numbered from 0, and the
// collector rejects a second series under the same id as replayed chunks.
class ChunkWriter {
  static constexpr uint8_t kPacketTag = 0x0A;  // PacketBatch.packet: field 1, wire type 2
  // An in-place packet starts after its tag and a one-byte length, and keeps room for two more
  // length bytes: a packet of 128 bytes or more (rare) is moved up by those when framed.
  static constexpr size_t kInPlaceFrame = 2;
  static constexpr size_t kInPlaceLengthSlack = 2;
  static constexpr size_t kMaxInPlacePacket = (size_t{1} << 21) - 1;

 public:
  ChunkWriter(SegmentHeader* segment, uint32_t writer_id);
  ~ChunkWriter();  // finish()
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Appends one Packet (its bytes, without framing) as a `PacketBatch.packet` field and
  // publishes it with a release-store. `time_base_ns` is what the packet's time delta is
  // relative to; it becomes the base time of a newly acquired chunk. Packets larger than a
  // chunk's payload are dropped. Returns false when the packet was dropped.
  bool append(const uint8_t* packet, size_t size, uint64_t time_base_ns);

  // Writing a packet in place, without a copy: the current chunk's free payload past room for
  // the framing, or nullptr (and 0) without a chunk. Nothing is published until
  // commit_in_place(size) frames the `size` bytes written there; a caller that changes its mind
  // just does not commit. No other call on this writer may come between the two.
  uint8_t* in_place_space(size_t* size) {
    constexpr size_t kOverhead = kInPlaceFrame + kInPlaceLengthSlack;
    if (chunk_ == nullptr || capacity_ - used_ <= kOverhead) {
      *size = 0;
      return nullptr;
    }
    // Packets are bounded below 2^21 bytes here, so the length takes at most three bytes.
    const size_t room = capacity_ - used_ - kOverhead;
    *size = room < kMaxInPlacePacket ? room : kMaxInPlacePacket;
    return payload_ + used_ + kInPlaceFrame;
  }
  void commit_in_place(size_t size, uint64_t time_base_ns) {
    last_time_base_ns_ = time_base_ns;
    uint8_t* frame = payload_ + used_;
    const size_t extra = wire::ProtoWriter::varint_size(size) - 1;
    if (extra != 0) std::memmove(frame + kInPlaceFrame + extra, frame + kInPlaceFrame, size);
    frame[0] = kPacketTag;
    wire::ProtoWriter::encode_varint(size, frame + 1);
    used_ += static_cast<uint32_t>(kInPlaceFrame + extra + size);
    chunk_->committed.store(used_, std::memory_order_release);
  }

  // Marks the current chunk COMPLETE so the collector can recycle it (thread exit, detach).
  void finish();
  // finish(), then never touches the segment again, since it is about to be unmapped (detach):
  // later records are dropped, and so are drop counts no chunk could carry.
  void close();

  uint32_t writer_id() const { return writer_id_; }
  uint64_t dropped_records() const { return dropped_records_total_; }
  uint64_t dropped_bytes() const { return dropped_bytes_total_; }
  // True once any record was dropped since the last call (the agent then re-sends state).
  bool take_drop_flag();

 private:
  bool acquire_chunk(uint64_t time_base_ns);
  bool append_slow(const uint8_t* packet, size_t size, uint64_t time_base_ns);
  void complete_chunk();
  void drop(size_t size);

  SegmentHeader* segment_;
  uint32_t writer_id_;
  uint8_t* chunks_ = nullptr;   // chunk 0; geometry copied once from the validated header
  uint32_t chunk_bytes_ = 0;
  uint32_t chunk_count_ = 0;
  ChunkHeader* chunk_ = nullptr;
  uint8_t* payload_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t used_ = 0;
  uint64_t next_sequence_ = 0;
  uint32_t scan_start_ = 0;
  uint32_t acquire_backoff_ = 0;  // records to drop before scanning a full ring again
  uint32_t backoff_step_ = 0;     // the next backoff (doubles while the ring stays full)
  uint64_t failed_scan_ns_ = 0;   // time base of the last scan that found no FREE chunk
  uint64_t last_time_base_ns_ = 0;
  uint64_t pending_dropped_records_ = 0;
  uint64_t pending_dropped_bytes_ = 0;
  uint64_t dropped_records_total_ = 0;
  uint64_t dropped_bytes_total_ = 0;
  bool dropped_since_check_ = false;
};

}  // namespace pyrewind::ring
