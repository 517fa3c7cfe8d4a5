// Collector side of the chunk protocol (see writer.cpp for the writer's half).
//
// Everything in the segment is untrusted. The geometry is copied once, at construction; after
// that every chunk address comes from our copies. Header fields are read exactly once each
// (__atomic_load_n) and validated; packet bytes are copied out of shared memory before they
// are parsed, so what is validated is what is delivered.
//
// A chunk's header is trusted once state == COMPLETE (acquire) or, for a WRITING chunk, once
// committed > 0 (acquire): the writer releases both after filling the header.
//
// Order: each writer's chunks are consumed by increasing sequence. A scan may legitimately
// miss chunk s while seeing s+1 (s was acquired, filled and completed behind the scan), but
// then s is COMPLETE before the scan ends and only we free chunks, so a second scan must find
// it. A sequence still missing from the second scan is lost (its chunk was rejected): we
// report it and skip ahead.
#include "proto/ring/drainer.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "proto/ring/segment.h"
#include "proto/wire/proto_reader.h"

namespace pyrewind::ring {

namespace {

constexpr uint32_t kMaxWriterId = 1u << 20;  // far above any real thread count
constexpr uint32_t kPacketField = 1;         // PacketBatch.packet
constexpr uint32_t kLengthDelimited = 2;

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The PacketBatch.packet frame at `p`, read without a ProtoReader: its packet is [*packet,
// returned). nullptr: not a well-formed frame; ProtoReader says why.
const uint8_t* read_frame(const uint8_t* p, const uint8_t* end, const uint8_t** packet) {
  constexpr uint8_t kFrameTag = kPacketField << 3 | kLengthDelimited;
  return p != end && *p == kFrameTag ? wire::read_length_delimited(p + 1, end, packet) : nullptr;
}

// One read of a plain field in shared memory: the compiler may neither repeat nor tear it.
template <typename T>
T once(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

}  // namespace

Drainer::Drainer(SegmentHeader* header, uint64_t mapped_bytes) : header_(header), mapped_bytes_(mapped_bytes) {
  if (header_ == nullptr) {
    error_ = "no segment";
    return;
  }
  if (!validate_header(*header_, mapped_bytes_, &error_)) return;
  // validate_header read the geometry once; the other side may have changed it since, so
  // check the copies we keep.
  const uint32_t chunk_bytes = once(header_->chunk_bytes);
  const uint32_t chunk_count = once(header_->chunk_count);
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes || chunk_bytes % 64 != 0 || chunk_count < 2 ||
      chunk_count > kMaxChunks || static_cast<uint64_t>(chunk_bytes) * chunk_count > mapped_bytes_ - kHeaderBytes) {
    error_ = "segment geometry changed while it was validated";
    return;
  }
  chunk_bytes_ = chunk_bytes;
  chunk_count_ = chunk_count;
  cursors_.assign(chunk_count_, ChunkCursor{});
  copy_.resize(chunk_payload_bytes(chunk_bytes_));
  candidates_.reserve(chunk_count_);
  valid_ = true;
}

uint8_t* Drainer::chunk_base(uint32_t index) const {
  return reinterpret_cast<uint8_t*>(header_) + kHeaderBytes + static_cast<uint64_t>(index) * chunk_bytes_;
}

size_t Drainer::poll(DrainSink& sink) {
  if (!valid_) return 0;
  header_->collector_heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
  ++poll_count_;
  size_t packets = 0;
  scan(sink);
  sink.on_backlog(static_cast<double>(undrained_bytes_) /
                  (static_cast<double>(chunk_count_) * chunk_payload_bytes(chunk_bytes_)));
  if (process(sink, /*second_pass=*/false, &packets)) {
    scan(sink);
    process(sink, /*second_pass=*/true, &packets);
  }
  return packets;
}

void Drainer::reject(DrainSink& sink, uint32_t index, const std::string& reason) {
  ChunkCursor& cursor = cursors_[index];
  cursor.poisoned = true;
  if (cursor.reported) return;  // once per chunk generation
  cursor.reported = true;
  ++stats_.corrupt_chunks;
  sink.on_corruption(index, reason);
}

void Drainer::scan(DrainSink& sink) {
  candidates_.clear();
  undrained_bytes_ = 0;
  const uint32_t payload_bytes = chunk_payload_bytes(chunk_bytes_);
  for (uint32_t i = 0; i < chunk_count_; ++i) {
    auto* chunk = reinterpret_cast<ChunkHeader*>(chunk_base(i));
    ChunkCursor& cursor = cursors_[i];
    const uint32_t state = chunk->state.load(std::memory_order_acquire);
    if (state == kFree) {
      if (cursor.active) {
        ++stats_.corrupt_chunks;
        sink.on_corruption(i, "chunk became FREE while it was being drained");
      }
      cursor = ChunkCursor{};
      continue;
    }
    if (state != kWriting && state != kComplete) {
      reject(sink, i, "invalid chunk state " + std::to_string(state));
      continue;
    }
    const uint32_t committed = chunk->committed.load(std::memory_order_acquire);
    const uint32_t drained = cursor.active ? cursor.consumed : 0;
    if (committed > drained) undrained_bytes_ += std::min(committed, payload_bytes) - std::min(drained, payload_bytes);
    if (state == kWriting && committed == 0) {
      // Header not published yet (or the writer died right after claiming the chunk).
      if (cursor.active) reject(sink, i, "committed size went back to 0");
      continue;
    }
    const uint32_t writer_id = once(chunk->writer_id);
    const uint64_t sequence = once(chunk->sequence);
    if (cursor.active) {
      // Our cursor is authoritative for the identity of a chunk we have started on.
      if (writer_id != cursor.writer_id || sequence != cursor.sequence) {
        reject(sink, i, "chunk header changed while it was being drained");
      }
      candidates_.push_back({cursor.writer_id, cursor.sequence, i});
      continue;
    }
    if (writer_id >= kMaxWriterId) {
      reject(sink, i, "writer id " + std::to_string(writer_id) + " out of range");
      if (state == kComplete) recycle(i, sink);  // it belongs to nobody: do not leak it
      continue;
    }
    candidates_.push_back({writer_id, sequence, i});
  }
}

bool Drainer::process(DrainSink& sink, bool second_pass, size_t* packets) {
  std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& b) {
    if (a.writer_id != b.writer_id) return a.writer_id < b.writer_id;
    if (a.sequence != b.sequence) return a.sequence < b.sequence;
    return a.index < b.index;
  });
  bool any_gap = false;
  size_t begin = 0;
  while (begin < candidates_.size()) {
    const uint32_t writer_id = candidates_[begin].writer_id;
    size_t end = begin;
    while (end < candidates_.size() && candidates_[end].writer_id == writer_id) ++end;
    WriterCursor& writer = writers_[writer_id];
    for (size_t k = begin; k < end; ++k) {
      const Candidate& candidate = candidates_[k];
      if (candidate.sequence < writer.next_sequence) {
        reject(sink, candidate.index,
               "writer " + std::to_string(writer_id) + " chunk sequence " + std::to_string(candidate.sequence) +
                   " was already drained");
        auto* chunk = reinterpret_cast<ChunkHeader*>(chunk_base(candidate.index));
        if (chunk->state.load(std::memory_order_acquire) == kComplete) recycle(candidate.index, sink);
        continue;
      }
      if (candidate.sequence > writer.next_sequence) {
        if (!second_pass) {
          writer.gap_poll = poll_count_;
          any_gap = true;
          break;
        }
        if (writer.gap_poll != poll_count_) break;  // first seen in the second scan: next poll
        sink.on_corruption(candidate.index, "writer " + std::to_string(writer_id) + " chunks " +
                                                std::to_string(writer.next_sequence) + ".." +
                                                std::to_string(candidate.sequence - 1) + " are missing");
        writer.next_sequence = candidate.sequence;
      }
      if (consume(candidate.index, writer_id, candidate.sequence, sink, packets) != Progress::kRecycled) break;
      writer.next_sequence = candidate.sequence + 1;
    }
    begin = end;
  }
  return any_gap;
}

Drainer::Progress Drainer::consume(uint32_t index, uint32_t writer_id, uint64_t sequence, DrainSink& sink,
                                   size_t* packets) {
  auto* chunk = reinterpret_cast<ChunkHeader*>(chunk_base(index));
  ChunkCursor& cursor = cursors_[index];
  const uint32_t state = chunk->state.load(std::memory_order_acquire);
  if (state != kWriting && state != kComplete) return Progress::kWaiting;  // the next scan reports it
  // After a COMPLETE state (acquire) this is the final size.
  const uint32_t committed = chunk->committed.load(std::memory_order_acquire);

  if (!cursor.active) {
    cursor.writer_id = writer_id;
    cursor.sequence = sequence;
    cursor.consumed = 0;
    cursor.active = true;
    if (!cursor.poisoned) {
      sink.on_chunk_start(writer_id, once(chunk->base_time_ns), once(chunk->dropped_records_before),
                          once(chunk->dropped_bytes_before));
    }
  }

  if (!cursor.poisoned) {
    const uint32_t payload_bytes = chunk_payload_bytes(chunk_bytes_);
    if (committed > payload_bytes) {
      reject(sink, index, "committed size " + std::to_string(committed) + " exceeds the chunk payload");
    } else if (committed < cursor.consumed) {
      reject(sink, index, "committed size went back from " + std::to_string(cursor.consumed) + " to " +
                              std::to_string(committed));
    } else if (committed > cursor.consumed) {
      const uint32_t length = committed - cursor.consumed;
      std::memcpy(copy_.data(), chunk_base(index) + sizeof(ChunkHeader) + cursor.consumed, length);
      const uint8_t* frame = copy_.data();
      const uint8_t* const end = frame + length;
      while (frame != end) {
        const uint8_t* packet;
        const uint8_t* next = read_frame(frame, end, &packet);
        if (!next) {
          wire::ProtoReader reader(frame, static_cast<size_t>(end - frame));
          wire::Field field;
          if (!reader.next(field)) {
            reject(sink, index, "torn or malformed packet frame in committed bytes " +
                                    std::to_string(cursor.consumed) + ".." + std::to_string(committed));
            break;
          }
          if (field.number != kPacketField || field.wire_type != kLengthDelimited) {
            reject(sink, index, "unexpected field " + std::to_string(field.number) + " (wire type " +
                                    std::to_string(field.wire_type) + ") at payload offset " +
                                    std::to_string(cursor.consumed + (field.start - copy_.data())));
            break;
          }
          packet = field.bytes;
          next = field.end;
        }
        const size_t size = static_cast<size_t>(next - packet);
        sink.on_packet(writer_id, packet, size);
        ++*packets;
        ++stats_.packets;
        stats_.bytes += size;
        frame = next;
      }
      if (!cursor.poisoned) cursor.consumed = committed;
    }
  }

  if (state == kComplete && (cursor.poisoned || cursor.consumed == committed)) {
    return recycle(index, sink) ? Progress::kRecycled : Progress::kWaiting;
  }
  return Progress::kWaiting;
}

bool Drainer::recycle(uint32_t index, DrainSink& sink) {
  auto* chunk = reinterpret_cast<ChunkHeader*>(chunk_base(index));
  // A FREE chunk must have committed == 0 before a writer can claim it (writer.cpp, step 1).
  chunk->committed.store(0, std::memory_order_relaxed);
  uint32_t expected = kComplete;
  if (!chunk->state.compare_exchange_strong(expected, kFree, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    reject(sink, index, "chunk state changed from COMPLETE to " + std::to_string(expected));
    return false;
  }
  cursors_[index] = ChunkCursor{};
  ++stats_.chunks_recycled;
  return true;
}

}  // namespace pyrewind::ring
