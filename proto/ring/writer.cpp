// Writer side of the chunk protocol.
//
// Publication protocol (the collector may look at a chunk at any moment after our CAS):
//  1. A FREE chunk always has committed == 0 (zeroed at creation; the collector stores 0 before
//     its release-CAS COMPLETE -> FREE).
//  2. The writer wins FREE -> WRITING by CAS (acquire: it then sees the collector's reset and
//     may reuse the payload the collector has finished reading).
//  3. It fills the header (writer_id, sequence, base_time_ns, dropped_*_before) with plain
//     stores, then the first record, then release-stores committed > 0. The collector trusts a
//     WRITING chunk's header only after an acquire-load of committed > 0, and a COMPLETE
//     chunk's header after an acquire-load of state == COMPLETE (released after the header),
//     so it never sees a half-initialised header. A writer that dies between 2 and 3 leaves a
//     WRITING chunk with committed == 0, which the collector ignores.
//  4. Each further record: plain stores into the payload, then a release-store of committed.
//  5. WRITING -> COMPLETE by a release-store (only the owner moves a WRITING chunk). The
//     writer's next chunk gets the next sequence number only after that, so a collector that
//     sees sequence s+1 published will find chunk s COMPLETE.
#include "proto/ring/writer.h"

#include <algorithm>
#include <cstring>

#include "proto/wire/proto_writer.h"

namespace pyrewind::ring {

namespace {

// While the ring is full, rescan it only every so many records (doubling while it stays full):
// a scan touches one cache line (and page) per chunk, far more than encoding a record costs.
// A thread with few events must not lose many seconds of them to the back-off, so a scan is
// also due once kBackoffNs have passed (by the callers' clock) since the last failed one; the
// collector polls every few ms, so scanning more often than that gains little.
constexpr uint32_t kMinBackoff = 64;
constexpr uint32_t kMaxBackoff = 1024;
constexpr uint64_t kBackoffNs = 20000;

}  // namespace

ChunkWriter::ChunkWriter(SegmentHeader* segment, uint32_t writer_id) : segment_(segment), writer_id_(writer_id) {
  if (segment_ == nullptr) return;
  // The geometry was validated when the segment was attached; keep our own copy so a later
  // change in shared memory cannot send our stores elsewhere.
  const uint32_t chunk_bytes = __atomic_load_n(&segment_->chunk_bytes, __ATOMIC_RELAXED);
  const uint32_t chunk_count = __atomic_load_n(&segment_->chunk_count, __ATOMIC_RELAXED);
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes || chunk_bytes % 64 != 0 || chunk_count < 2 ||
      chunk_count > kMaxChunks) {
    return;  // no chunk can ever be acquired: every record is dropped and counted
  }
  chunk_bytes_ = chunk_bytes;
  chunk_count_ = chunk_count;
  chunks_ = reinterpret_cast<uint8_t*>(segment_) + kHeaderBytes;
  capacity_ = chunk_payload_bytes(chunk_bytes_);
  // Spread the writers' first scans over the ring (Fibonacci hashing of the id).
  scan_start_ = static_cast<uint32_t>(((uint64_t{writer_id} * 0x9E3779B97F4A7C15ull) >> 32) % chunk_count_);
}

ChunkWriter::~ChunkWriter() { finish(); }

bool ChunkWriter::append(const uint8_t* packet, size_t size, uint64_t time_base_ns) {
  last_time_base_ns_ = time_base_ns;
  if (chunk_ != nullptr && size < capacity_) {
    const size_t frame = 1 + wire::ProtoWriter::varint_size(size) + size;
    if (frame <= capacity_ - used_) {
      uint8_t* out = payload_ + used_;
      *out++ = kPacketTag;
      out += wire::ProtoWriter::encode_varint(size, out);
      if (size != 0) std::memcpy(out, packet, size);
      used_ += static_cast<uint32_t>(frame);
      chunk_->committed.store(used_, std::memory_order_release);
      return true;
    }
  }
  return append_slow(packet, size, time_base_ns);
}

bool ChunkWriter::append_slow(const uint8_t* packet, size_t size, uint64_t time_base_ns) {
  const size_t frame = size < capacity_ ? 1 + wire::ProtoWriter::varint_size(size) + size : SIZE_MAX;
  // The current chunk (if any) is full, or the packet can never fit. In both cases close the
  // chunk: for an oversized packet this puts the loss marker exactly where the record is missing.
  complete_chunk();
  if (frame > capacity_) {
    drop(size);
    return false;
  }
  if (acquire_backoff_ > 0 && time_base_ns - failed_scan_ns_ < kBackoffNs) {
    --acquire_backoff_;
    drop(size);
    return false;
  }
  if (!acquire_chunk(time_base_ns)) {
    backoff_step_ = backoff_step_ == 0 ? kMinBackoff : std::min(backoff_step_ * 2, kMaxBackoff);
    acquire_backoff_ = backoff_step_;
    failed_scan_ns_ = time_base_ns;
    drop(size);
    return false;
  }
  backoff_step_ = 0;
  acquire_backoff_ = 0;
  uint8_t* out = payload_;
  *out++ = kPacketTag;
  out += wire::ProtoWriter::encode_varint(size, out);
  if (size != 0) std::memcpy(out, packet, size);
  used_ = static_cast<uint32_t>(frame);
  chunk_->committed.store(used_, std::memory_order_release);  // also publishes the header
  return true;
}

bool ChunkWriter::acquire_chunk(uint64_t time_base_ns) {
  if (chunk_count_ == 0) return false;
  uint32_t index = scan_start_;
  for (uint32_t n = 0; n < chunk_count_; ++n) {
    auto* chunk = reinterpret_cast<ChunkHeader*>(chunks_ + static_cast<uint64_t>(index) * chunk_bytes_);
    uint32_t expected = kFree;
    // Plain load first: most chunks are busy when the ring is nearly full, and a failed CAS
    // would take the cache line exclusively.
    if (chunk->state.load(std::memory_order_relaxed) == kFree &&
        chunk->state.compare_exchange_strong(expected, kWriting, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      chunk->writer_id = writer_id_;
      chunk->sequence = next_sequence_++;
      chunk->base_time_ns = time_base_ns;
      chunk->dropped_records_before = pending_dropped_records_;
      chunk->dropped_bytes_before = pending_dropped_bytes_;
      pending_dropped_records_ = 0;
      pending_dropped_bytes_ = 0;
      chunk_ = chunk;
      payload_ = reinterpret_cast<uint8_t*>(chunk) + sizeof(ChunkHeader);
      used_ = 0;
      // scan_start_ stays at this writer's home slot: the collector frees chunks within
      // milliseconds, so a busy writer keeps cycling through the same few chunks near home,
      // which stay in cache and never page-fault again.
      return true;
    }
    if (++index == chunk_count_) index = 0;
  }
  return false;
}

void ChunkWriter::complete_chunk() {
  if (chunk_ == nullptr) return;
  chunk_->state.store(kComplete, std::memory_order_release);
  chunk_ = nullptr;
  payload_ = nullptr;
  used_ = 0;
}

void ChunkWriter::finish() {
  complete_chunk();
  // Counts of records dropped since the last chunk would otherwise be lost with this writer:
  // carry them in an empty chunk (its COMPLETE state publishes the header).
  if (pending_dropped_records_ > 0 && acquire_chunk(last_time_base_ns_)) complete_chunk();
}

void ChunkWriter::close() {
  finish();
  segment_ = nullptr;
  chunks_ = nullptr;
  chunk_count_ = 0;  // acquire_chunk() finds nothing from now on
}

void ChunkWriter::drop(size_t size) {
  ++pending_dropped_records_;
  pending_dropped_bytes_ += size;
  ++dropped_records_total_;
  dropped_bytes_total_ += size;
  dropped_since_check_ = true;
}

bool ChunkWriter::take_drop_flag() {
  const bool dropped = dropped_since_check_;
  dropped_since_check_ = false;
  return dropped;
}

}  // namespace pyrewind::ring
