// The shared-memory ring ABI between the agent (inside the target) and the collector.
//
// Layout: [SegmentHeader, padded to kHeaderBytes][chunk 0][chunk 1]...; each chunk is a
// ChunkHeader followed by its payload. A chunk belongs to one writer thread at a time
// (Perfetto's model): the writer fills the payload with plain stores and publishes each record
// with a release-store of `committed`; the collector reads up to an acquire-load of it.
// Chunk ownership moves only by CAS on `state`: FREE -> WRITING (a writer), WRITING -> COMPLETE
// (the same writer), COMPLETE -> FREE (the collector, after draining). No lock anywhere, so a
// process that dies at any instruction leaves nothing the other side waits on.
// A FREE chunk has committed == 0 (the collector stores 0 before freeing it). A writer fills
// the chunk header after winning the CAS, so the header of a WRITING chunk is valid only once
// an acquire-load of `committed` returns > 0 (that of a COMPLETE chunk always). Details:
// proto/ring/writer.cpp.
//
// The payload is a sequence of `PacketBatch.packet` fields (tag 0x0A, varint length, Packet
// bytes), so any committed prefix parses as a pyrewind.v1.PacketBatch message.
//
// Both sides treat the other as untrusted: every size and index read from the segment is
// validated before use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pyrewind::ring {

constexpr char kMagic[8] = {'P', 'Y', 'R', 'W', 'R', 'I', 'N', 'G'};
constexpr uint32_t kAbiVersion = 1;
constexpr size_t kHeaderBytes = 16384;
constexpr uint32_t kMinChunkBytes = 4096;
constexpr uint32_t kMaxChunkBytes = 1u << 20;
constexpr uint32_t kDefaultChunkBytes = 32768;
constexpr uint64_t kDefaultSegmentBytes = 64ull << 20;
constexpr uint32_t kMaxChunks = 1u << 20;

enum ChunkState : uint32_t { kFree = 0, kWriting = 1, kComplete = 2 };

enum AgentState : uint32_t {
  kAgentNone = 0,      // no agent has attached yet
  kAgentTracing = 1,
  kAgentStopped = 2,   // tracing stopped; `agent_message` says why
  kAgentDetached = 3,  // agent let go of the segment
  kAgentPaused = 4,    // `pyrewind ctl SESSION trace off`: hooks stay, nothing is recorded
};

// SegmentHeader.sampling: who samples the stacks while line tracing is paused.
enum SamplingState : uint32_t {
  kSamplingOff = 0,
  kSamplingWanted = 1,   // agent -> collector: over its --max-overhead budget, sample instead
  kSamplingActive = 2,   // the collector samples the stacks from outside (set before pausing)
  kSamplingRefused = 3,  // the collector cannot sample this process: the agent stops instead
};

// Options the collector hands to the agent (filled before the agent attaches).
struct AgentConfig {
  uint32_t flags;             // AgentFlags
  uint32_t max_string_chars;  // per str/bytes value
  uint32_t max_items;         // per container
  uint32_t max_depth;         // container nesting
  uint32_t max_event_bytes;   // one encoded event, locals included
  uint32_t include_count;     // patterns, in order: include globs, exclude globs, redact names
  uint32_t exclude_count;
  uint32_t redact_count;
  uint32_t patterns_bytes;    // used bytes of `patterns`
  uint32_t max_overhead_percent;  // --max-overhead: the agent thins the trace above it; 0 = no bound
  uint32_t reserved[6];
  char patterns[8192];        // NUL-terminated strings back to back
};

enum AgentFlags : uint32_t {
  kCaptureLocals = 1u << 0,
  kCallRepr = 1u << 1,       // call user __repr__ (guarded)
  kRedact = 1u << 2,         // redact locals whose names match the redact patterns
  kDefaultExcludes = 1u << 3,  // skip stdlib, site-/dist-packages, frozen modules, pyrewind
};

struct SegmentHeader {
  char magic[8];
  uint32_t abi_version;
  uint32_t header_bytes;           // == kHeaderBytes
  uint64_t segment_bytes;          // whole mapping
  uint32_t chunk_bytes;            // header + payload of one chunk
  uint32_t chunk_count;
  uint64_t start_monotonic_ns;     // CLOCK_MONOTONIC origin of all event times
  uint32_t target_pid;             // the process allowed to attach (0 = any)
  uint32_t reserved0;

  std::atomic<uint32_t> agent_state;   // AgentState
  std::atomic<uint32_t> agent_pid;
  std::atomic<uint32_t> python_hexversion;
  std::atomic<uint32_t> stop_request;  // collector -> agent: 1 = stop tracing and detach
  std::atomic<uint64_t> collector_heartbeat_ns;  // CLOCK_MONOTONIC, refreshed every poll
  std::atomic<uint32_t> collector_pid;
  std::atomic<uint32_t> agent_message_bytes;     // published after agent_message is written
  std::atomic<uint32_t> next_writer_id;          // thread indices handed out by the agent
  std::atomic<uint32_t> pause_request;           // `pyrewind ctl` -> agent: 1 = pause recording, 0 = record
  std::atomic<uint32_t> sampling;                // SamplingState
  // `pyrewind ctl SESSION include|exclude GLOB`: the collector rewrites config's patterns under
  // this sequence lock (odd while it writes); the agent applies each new even value.
  std::atomic<uint32_t> filters_generation;
  std::atomic<uint32_t> filters_applied;  // agent -> collector: the generation it last applied
  uint32_t reserved1[7];
  char agent_message[512];         // why tracing stopped, UTF-8, not NUL-terminated

  AgentConfig config;
};

struct ChunkHeader {
  std::atomic<uint32_t> state;      // ChunkState
  std::atomic<uint32_t> committed;  // payload bytes published by the writer
  uint32_t writer_id;               // recording thread index
  uint32_t reserved0;
  uint64_t sequence;                // per-writer chunk number, 0, 1, 2, ... without gaps
  uint64_t base_time_ns;            // the time the first event's delta is relative to
  uint64_t dropped_records_before;  // records this writer dropped since its previous chunk
  uint64_t dropped_bytes_before;
  uint64_t reserved1[2];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(std::is_standard_layout_v<ChunkHeader>);
static_assert(sizeof(AgentConfig) == 64 + 8192);
static_assert(sizeof(ChunkHeader) == 64);
static_assert(offsetof(ChunkHeader, committed) == 4);
static_assert(offsetof(ChunkHeader, sequence) == 16);
static_assert(offsetof(SegmentHeader, agent_state) == 48);
static_assert(offsetof(SegmentHeader, agent_message) == 128);
static_assert(offsetof(SegmentHeader, config) == 640);
static_assert(sizeof(SegmentHeader) <= kHeaderBytes);

inline constexpr uint32_t chunk_payload_bytes(uint32_t chunk_bytes) {
  return chunk_bytes - static_cast<uint32_t>(sizeof(ChunkHeader));
}

}  // namespace pyrewind::ring
