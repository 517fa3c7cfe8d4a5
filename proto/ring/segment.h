// Creating and mapping the shared-memory segment (Boost.Interprocess shared_memory_object +
// mapped_region; no managed allocator and no interprocess mutex, see design notes §3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "proto/ring/layout.h"

namespace pyrewind::ring {

struct SegmentOptions {
  uint64_t segment_bytes = kDefaultSegmentBytes;
  uint32_t chunk_bytes = kDefaultChunkBytes;
  uint32_t target_pid = 0;  // 0: any process may attach
  AgentConfig config{};
};

// The collector's side: owns the name and the mapping. Creates the segment with mode 0600
// under an unguessable name ("/pyrewind-<pid>-<128 random bits hex>"), sizes it, and
// initialises the header and every chunk (all FREE). The name is unlinked by `unlink()`
// (once the agent has mapped it) or by the destructor at the latest.
class OwnedSegment {
 public:
  static std::unique_ptr<OwnedSegment> create(const SegmentOptions& options, std::string* error);
  ~OwnedSegment();
  OwnedSegment(const OwnedSegment&) = delete;
  OwnedSegment& operator=(const OwnedSegment&) = delete;

  const std::string& name() const { return name_; }
  SegmentHeader* header() const { return header_; }
  uint8_t* base() const { return reinterpret_cast<uint8_t*>(header_); }
  uint64_t size() const { return size_; }
  void unlink();

  // Removes segments named /pyrewind-<pid>-* whose pid is no longer alive.
  static void sweep_stale();

 private:
  OwnedSegment() = default;
  static std::unique_ptr<OwnedSegment> create_checked(const SegmentOptions& options, std::string* error);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
  SegmentHeader* header_ = nullptr;
  uint64_t size_ = 0;
  bool linked_ = false;
};

// The agent's side: maps an existing segment by name and validates its header (magic, ABI
// version, sizes consistent with the mapping, chunk geometry). Never throws.
class AttachedSegment {
 public:
  static std::unique_ptr<AttachedSegment> open(const char* name, std::string* error);
  ~AttachedSegment();
  AttachedSegment(const AttachedSegment&) = delete;
  AttachedSegment& operator=(const AttachedSegment&) = delete;

  SegmentHeader* header() const { return header_; }
  uint64_t size() const { return size_; }

 private:
  AttachedSegment() = default;
  static std::unique_ptr<AttachedSegment> open_checked(const char* name, std::string* error);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SegmentHeader* header_ = nullptr;
  uint64_t size_ = 0;
};

// Validates a header read from an untrusted mapping of `mapped_bytes`.
bool validate_header(const SegmentHeader& header, uint64_t mapped_bytes, std::string* error);

// Writes `config` into the header (collector side, before the agent attaches).
void set_agent_message(SegmentHeader& header, const char* text);  // agent side: why it stopped
std::string agent_message(const SegmentHeader& header);           // collector side, bounded

// Pointer to chunk `index`, or nullptr if out of range. `header` must have been validated.
ChunkHeader* chunk_at(SegmentHeader* header, uint32_t index);

}  // namespace pyrewind::ring
