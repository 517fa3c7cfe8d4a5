#include "proto/ring/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>

namespace pyrewind::ring {

namespace bip = boost::interprocess;

namespace {

constexpr std::string_view kNamePrefix = "pyrewind-";
constexpr size_t kNameRandomHexChars = 32;

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void set_error(std::string* error, std::string text) {
  if (error != nullptr) *error = std::move(text);
}

// 128 bits from the kernel's CSPRNG, so another local user cannot guess the name.
bool random_hex(std::string* out, std::string* error) {
  uint8_t bytes[kNameRandomHexChars / 2];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      set_error(error, std::string("getrandom failed: ") + std::strerror(errno));
      return false;
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out->clear();
  for (uint8_t b : bytes) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 15]);
  }
  return true;
}

bool valid_chunk_bytes(uint32_t chunk_bytes) {
  // Multiples of 64 keep every ChunkHeader (and its 64-bit fields) cache-line aligned;
  // powers of two >= kMinChunkBytes are such multiples.
  return chunk_bytes >= kMinChunkBytes && chunk_bytes <= kMaxChunkBytes && chunk_bytes % 64 == 0;
}

// "pyrewind-<decimal pid>-<32 lowercase hex>" (a /dev/shm entry, no leading slash).
bool parse_segment_file_name(std::string_view name, pid_t* pid) {
  if (name.substr(0, kNamePrefix.size()) != kNamePrefix) return false;
  name.remove_prefix(kNamePrefix.size());
  size_t dash = name.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 10) return false;
  uint64_t value = 0;
  for (char c : name.substr(0, dash)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value == 0 || value > 0x7fffffff) return false;
  std::string_view random = name.substr(dash + 1);
  if (random.size() != kNameRandomHexChars) return false;
  for (char c : random) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  *pid = static_cast<pid_t>(value);
  return true;
}

}  // namespace

struct OwnedSegment::Impl {
  bip::mapped_region region;
};

struct AttachedSegment::Impl {
  bip::mapped_region region;
};

std::unique_ptr<OwnedSegment> OwnedSegment::create(const SegmentOptions& options, std::string* error) {
  try {
    return create_checked(options, error);
  } catch (const std::exception& e) {
    set_error(error, std::string("cannot create the shared memory segment: ") + e.what());
  }
  return nullptr;
}

std::unique_ptr<OwnedSegment> OwnedSegment::create_checked(const SegmentOptions& options, std::string* error) {
  if (!valid_chunk_bytes(options.chunk_bytes)) {
    set_error(error, "chunk size " + std::to_string(options.chunk_bytes) + " must be a multiple of 64 within [" +
                         std::to_string(kMinChunkBytes) + ", " + std::to_string(kMaxChunkBytes) + "]");
    return nullptr;
  }
  if (options.segment_bytes < kHeaderBytes ||
      (options.segment_bytes - kHeaderBytes) / options.chunk_bytes < 2) {
    set_error(error, "segment size " + std::to_string(options.segment_bytes) + " holds fewer than 2 chunks of " +
                         std::to_string(options.chunk_bytes) + " bytes");
    return nullptr;
  }
  const uint64_t chunk_count = (options.segment_bytes - kHeaderBytes) / options.chunk_bytes;
  if (chunk_count > kMaxChunks) {
    set_error(error, "segment size " + std::to_string(options.segment_bytes) + " needs " +
                         std::to_string(chunk_count) + " chunks, more than " + std::to_string(kMaxChunks));
    return nullptr;
  }
  if (options.config.patterns_bytes > sizeof(options.config.patterns)) {
    set_error(error, "agent config patterns exceed " + std::to_string(sizeof(options.config.patterns)) + " bytes");
    return nullptr;
  }

  std::string random;
  if (!random_hex(&random, error)) return nullptr;
  std::string name = "/" + std::string(kNamePrefix) + std::to_string(getpid()) + "-" + random;

  std::unique_ptr<OwnedSegment> segment(new (std::nothrow) OwnedSegment());
  if (segment == nullptr) {
    set_error(error, "out of memory");
    return nullptr;
  }
  bool created = false;
  try {
    segment->impl_ = std::make_unique<Impl>();
    bip::permissions permissions(0600);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, permissions);
    created = true;
    shm.truncate(static_cast<bip::offset_t>(options.segment_bytes));
    // Reserve the pages now: on a full /dev/shm this fails here with a clear error instead of
    // raising SIGBUS in the target the first time a writer touches a chunk.
    int rc = posix_fallocate(shm.get_mapping_handle().handle, 0, static_cast<off_t>(options.segment_bytes));
    if (rc != 0) {
      bip::shared_memory_object::remove(name.c_str());
      set_error(error, "cannot reserve " + std::to_string(options.segment_bytes) + " bytes of shared memory for " +
                           name + ": " + std::strerror(rc));
      return nullptr;
    }
    segment->impl_->region = bip::mapped_region(shm, bip::read_write, 0, static_cast<size_t>(options.segment_bytes));
    // `shm` closes its descriptor here; the mapping stays valid.
  } catch (const std::exception& e) {
    if (created) bip::shared_memory_object::remove(name.c_str());
    set_error(error, "cannot create shared memory segment " + name + ": " + e.what());
    return nullptr;
  }

  segment->name_ = std::move(name);
  segment->linked_ = true;
  segment->size_ = options.segment_bytes;
  uint8_t* base = static_cast<uint8_t*>(segment->impl_->region.get_address());

  // The file is freshly truncated (all zero) and nobody else knows its name yet, so plain
  // initialisation is race-free.
  auto* header = new (base) SegmentHeader{};
  std::memcpy(header->magic, kMagic, sizeof kMagic);
  header->abi_version = kAbiVersion;
  header->header_bytes = static_cast<uint32_t>(kHeaderBytes);
  header->segment_bytes = options.segment_bytes;
  header->chunk_bytes = options.chunk_bytes;
  header->chunk_count = static_cast<uint32_t>(chunk_count);
  header->start_monotonic_ns = monotonic_ns();
  header->target_pid = options.target_pid;
  header->collector_heartbeat_ns.store(header->start_monotonic_ns, std::memory_order_relaxed);
  header->collector_pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
  std::memcpy(&header->config, &options.config, sizeof header->config);
  for (uint64_t i = 0; i < chunk_count; ++i) {
    new (base + kHeaderBytes + i * options.chunk_bytes) ChunkHeader{};  // state FREE, committed 0
  }
  segment->header_ = header;
  return segment;
}

OwnedSegment::~OwnedSegment() { unlink(); }

void OwnedSegment::unlink() {
  if (!linked_) return;
  linked_ = false;
  bip::shared_memory_object::remove(name_.c_str());
}

void OwnedSegment::sweep_stale() {
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    if (!parse_segment_file_name(entry->d_name, &pid)) continue;
    // Only a pid that certainly does not exist (ESRCH) marks a segment stale; EPERM means a
    // live process of another user.
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::string name = std::string("/") + entry->d_name;
    bip::shared_memory_object::remove(name.c_str());
  }
  closedir(dir);
}

// Never throws: the agent calls this inside the target. Every failure becomes `error`.
std::unique_ptr<AttachedSegment> AttachedSegment::open(const char* name, std::string* error) {
  try {
    return open_checked(name, error);
  } catch (const std::exception& e) {
    set_error(error, std::string("cannot attach the shared memory segment: ") + e.what());
  } catch (...) {
    set_error(error, "cannot attach the shared memory segment");
  }
  return nullptr;
}

std::unique_ptr<AttachedSegment> AttachedSegment::open_checked(const char* name, std::string* error) {
  if (name == nullptr || name[0] == '\0' || std::strlen(name) > 255) {
    set_error(error, "invalid shared memory segment name");
    return nullptr;
  }
  std::unique_ptr<AttachedSegment> segment(new (std::nothrow) AttachedSegment());
  if (segment == nullptr) {
    set_error(error, "out of memory");
    return nullptr;
  }
  try {
    segment->impl_ = std::make_unique<Impl>();
    bip::shared_memory_object shm(bip::open_only, name, bip::read_write);
    bip::offset_t size = 0;
    if (!shm.get_size(size)) {
      set_error(error, std::string("cannot read the size of shared memory segment ") + name);
      return nullptr;
    }
    if (size < static_cast<bip::offset_t>(kHeaderBytes)) {
      set_error(error, std::string("shared memory segment ") + name + " is too small (" + std::to_string(size) +
                           " bytes)");
      return nullptr;
    }
    segment->impl_->region = bip::mapped_region(shm, bip::read_write, 0, static_cast<size_t>(size));
    segment->size_ = static_cast<uint64_t>(size);
  } catch (const std::exception& e) {
    set_error(error, std::string("cannot map shared memory segment ") + name + ": " + e.what());
    return nullptr;
  }
  auto* header = static_cast<SegmentHeader*>(segment->impl_->region.get_address());
  std::string why;
  if (!validate_header(*header, segment->size_, &why)) {
    set_error(error, std::string("shared memory segment ") + name + ": " + why);
    return nullptr;
  }
  const uint32_t target_pid = __atomic_load_n(&header->target_pid, __ATOMIC_RELAXED);
  if (target_pid != 0 && target_pid != static_cast<uint32_t>(getpid())) {
    set_error(error, std::string("shared memory segment ") + name + " is reserved for pid " +
                         std::to_string(target_pid));
    return nullptr;
  }
  segment->header_ = header;
  return segment;
}

AttachedSegment::~AttachedSegment() = default;

bool validate_header(const SegmentHeader& header, uint64_t mapped_bytes, std::string* error) {
  if (mapped_bytes < kHeaderBytes) {
    set_error(error, "mapping of " + std::to_string(mapped_bytes) + " bytes is smaller than the header");
    return false;
  }
  // Every field is read exactly once into a local: the other side may change it meanwhile.
  auto once = [](const auto& field) { return __atomic_load_n(&field, __ATOMIC_RELAXED); };
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) {
    set_error(error, "bad magic (not a pyrewind ring)");
    return false;
  }
  const uint32_t abi_version = once(header.abi_version);
  if (abi_version != kAbiVersion) {
    set_error(error, "ring ABI version " + std::to_string(abi_version) + ", expected " + std::to_string(kAbiVersion));
    return false;
  }
  const uint32_t header_bytes = once(header.header_bytes);
  if (header_bytes != kHeaderBytes) {
    set_error(error, "header size " + std::to_string(header_bytes) + ", expected " + std::to_string(kHeaderBytes));
    return false;
  }
  const uint64_t segment_bytes = once(header.segment_bytes);
  if (segment_bytes != mapped_bytes) {
    set_error(error, "segment size " + std::to_string(segment_bytes) + " does not match the mapping (" +
                         std::to_string(mapped_bytes) + " bytes)");
    return false;
  }
  const uint32_t chunk_bytes = once(header.chunk_bytes);
  if (!valid_chunk_bytes(chunk_bytes)) {
    set_error(error, "invalid chunk size " + std::to_string(chunk_bytes));
    return false;
  }
  const uint32_t chunk_count = once(header.chunk_count);
  if (chunk_count < 2 || chunk_count > kMaxChunks) {
    set_error(error, "invalid chunk count " + std::to_string(chunk_count));
    return false;
  }
  // Both factors are at most 2^20, so the product cannot overflow 64 bits.
  if (static_cast<uint64_t>(chunk_bytes) * chunk_count > segment_bytes - kHeaderBytes) {
    set_error(error, std::to_string(chunk_count) + " chunks of " + std::to_string(chunk_bytes) +
                         " bytes do not fit in a segment of " + std::to_string(segment_bytes) + " bytes");
    return false;
  }
  const uint32_t patterns_bytes = once(header.config.patterns_bytes);
  if (patterns_bytes > sizeof(header.config.patterns)) {
    set_error(error, "agent config patterns size " + std::to_string(patterns_bytes) + " out of range");
    return false;
  }
  return true;
}

void set_agent_message(SegmentHeader& header, const char* text) {
  if (text == nullptr) text = "";
  size_t n = strnlen(text, sizeof(header.agent_message));
  // Cut at a character boundary: drop UTF-8 continuation bytes of a sequence split by the bound.
  if (n == sizeof(header.agent_message) && text[n] != '\0') {
    size_t cut = n;
    while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
    n = cut;
  }
  // Readers take the length first (acquire). Hide the old text while it is overwritten (the
  // acquire half keeps the copy below after this); a reader racing with a second message may
  // still see a mix of both, never more than the buffer.
  header.agent_message_bytes.exchange(0, std::memory_order_acq_rel);
  std::memcpy(header.agent_message, text, n);
  header.agent_message_bytes.store(static_cast<uint32_t>(n), std::memory_order_release);
}

std::string agent_message(const SegmentHeader& header) {
  uint32_t n = header.agent_message_bytes.load(std::memory_order_acquire);
  if (n > sizeof(header.agent_message)) n = sizeof(header.agent_message);
  char copy[sizeof(header.agent_message)];
  std::memcpy(copy, header.agent_message, n);
  return std::string(copy, n);
}

ChunkHeader* chunk_at(SegmentHeader* header, uint32_t index) {
  if (header == nullptr) return nullptr;
  const uint32_t count = __atomic_load_n(&header->chunk_count, __ATOMIC_RELAXED);
  const uint32_t bytes = __atomic_load_n(&header->chunk_bytes, __ATOMIC_RELAXED);
  if (index >= count) return nullptr;
  return reinterpret_cast<ChunkHeader*>(reinterpret_cast<uint8_t*>(header) + kHeaderBytes +
                                        static_cast<uint64_t>(index) * bytes);
}

}  // namespace pyrewind::ring
