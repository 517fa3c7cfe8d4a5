// Byte layout of a pyrewind recording file (.rwd), modelled on MCAP.
//
//   FileMagic | u32 format_version | u32 header_length | RecordingHeader (protobuf)
//   Chunk*                       each decodable alone
//   Summary                      optional: absent when the collector was killed
//   Footer                       optional, fixed size, at the very end
//
// All integers little-endian. Every chunk re-states the StringDef/CodeDef/ThreadStart packets
// its events use, so it decodes without any other chunk. A reader that finds no valid footer
// scans chunks from the start and stops at the first torn or corrupt one.
#pragma once

#include <cstdint>

namespace pyrewind::recording {

constexpr char kFileMagic[8] = {'P', 'Y', 'R', 'W', 'R', 'E', 'C', '\n'};
// Version 2: bindings' values may be container deltas (trace.proto Container.reused_items),
// which a version-1 reader would show as containers missing their first items. Version 1 is
// version 2 without deltas, so readers read both.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kOldestReadableFormatVersion = 1;
constexpr uint32_t kMaxHeaderLength = 1u << 20;

constexpr uint32_t kChunkMagic = 0x4b435752;    // "RWCK"
constexpr uint32_t kSummaryMagic = 0x4d535752;  // "RWSM"
constexpr uint32_t kFooterMagic = 0x54465752;   // "RWFT"

enum Compression : uint32_t { kNone = 0, kZstd = 1 };

constexpr uint64_t kTargetChunkBytes = 1u << 20;       // uncompressed
constexpr uint64_t kMaxChunkUncompressedBytes = 64u << 20;

// Followed by `compressed_length` bytes: the (compressed) PacketBatch of the chunk.
struct ChunkFrame {
  uint32_t magic;              // kChunkMagic
  uint32_t compression;        // Compression
  uint64_t compressed_length;
  uint64_t uncompressed_length;
  uint64_t first_seq;          // recording-wide index of the chunk's first event
  uint64_t event_count;
  uint64_t first_time_ns;      // min/max event time in the chunk
  uint64_t last_time_ns;
  uint32_t payload_crc32c;     // of the stored (compressed) payload
  uint32_t frame_crc32c;       // of this struct with frame_crc32c = 0
};
static_assert(sizeof(ChunkFrame) == 64);

// Followed by `length` bytes: a RecordingSummary (protobuf).
struct SummaryFrame {
  uint32_t magic;              // kSummaryMagic
  uint32_t crc32c;             // of the summary bytes
  uint64_t length;
};
static_assert(sizeof(SummaryFrame) == 16);

struct Footer {
  uint32_t magic;              // kFooterMagic
  uint32_t crc32c;             // of this struct with crc32c = 0
  uint64_t summary_offset;     // file offset of the SummaryFrame
  char file_magic[8];          // kFileMagic again, so a tail read recognises the file
};
static_assert(sizeof(Footer) == 24);

}  // namespace pyrewind::recording
