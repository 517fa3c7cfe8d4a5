// Allocation-free protobuf wire-format writer over a caller-owned, fixed-size buffer.
//
// Used on the agent's hot path: every method is inline, never allocates and never throws.
// Writing past the end sets `overflowed()` and drops further bytes, so a caller can encode
// optimistically and check once at the end. Nested messages reserve one byte for their
// length; the rare body of 128 bytes or more is moved up when the length is back-patched, so
// small messages (most events) cost no padding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pyrewind::wire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

constexpr size_t kMaxNestedLength = (size_t{1} << 28) - 1;

class ProtoWriter {
 public:
  ProtoWriter(uint8_t* buffer, size_t capacity)
      : begin_(buffer), pos_(buffer), end_(buffer + capacity), limit_(buffer + capacity) {}

  // A position inside the buffer marking an open nested message.
  struct Nested {
    uint8_t* length_at = nullptr;
  };

  void varint_field(uint32_t field, uint64_t value) {
    tag(field, kVarint);
    raw_varint(value);
  }
  void sint_field(uint32_t field, int64_t value) { varint_field(field, zigzag(value)); }
  void bool_field(uint32_t field, bool value) { varint_field(field, value ? 1 : 0); }
  void double_field(uint32_t field, double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    tag(field, kFixed64);
    raw_fixed64(bits);
  }
  void bytes_field(uint32_t field, const void* data, size_t size) {
    tag(field, kLengthDelimited);
    raw_varint(size);
    raw_bytes(data, size);
  }
  void string_field(uint32_t field, const char* text) { bytes_field(field, text, std::strlen(text)); }

  Nested begin_nested(uint32_t field) {
    tag(field, kLengthDelimited);
    Nested nested{pos_};
    advance(1);
    return nested;
  }
  void end_nested(Nested nested) {
    if (overflowed_ || nested.length_at == nullptr) return;
    uint8_t* body = nested.length_at + 1;
    const size_t length = static_cast<size_t>(pos_ - body);
    if (length < 0x80) {
      *nested.length_at = static_cast<uint8_t>(length);
      return;
    }
    const size_t extra = varint_size(length) - 1;
    if (length > kMaxNestedLength || static_cast<size_t>(end_ - pos_) < extra) {
      set_overflowed();
      return;
    }
    std::memmove(body + extra, body, length);
    encode_varint(length, nested.length_at);
    pos_ += extra;
  }

  void tag(uint32_t field, WireType type) { raw_varint((static_cast<uint64_t>(field) << 3) | type); }
  void raw_varint(uint64_t value) {
    if (value < 0x80 && pos_ < end_) {  // most tags, lengths and small numbers: one byte
      *pos_++ = static_cast<uint8_t>(value);
      return;
    }
    if (end_ - pos_ < 10) {  // slow path only near the end of the buffer
      uint8_t scratch[10];
      size_t n = encode_varint(value, scratch);
      raw_bytes(scratch, n);
      return;
    }
    pos_ += encode_varint(value, pos_);
  }
  void raw_fixed64(uint64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    raw_bytes(bytes, 8);
  }
  void raw_bytes(const void* data, size_t size) {
    if (overflowed_ || static_cast<size_t>(end_ - pos_) < size) {
      set_overflowed();
      return;
    }
    if (size) std::memcpy(pos_, data, size);
    pos_ += size;
  }

  static size_t encode_varint(uint64_t value, uint8_t* out) {
    size_t n = 0;
    while (value >= 0x80) {
      out[n++] = static_cast<uint8_t>(value | 0x80);
      value >>= 7;
    }
    out[n++] = static_cast<uint8_t>(value);
    return n;
  }
  static size_t varint_size(uint64_t value) {
    const uint32_t bits = 64 - static_cast<uint32_t>(__builtin_clzll(value | 1));
    return (bits * 9 + 64) / 64;  // ceil(bits / 7) without a division
  }

  // Direct writes for hot paths: `reserve(n)` returns the write position when at least `n`
  // bytes are free (else nullptr, nothing changes); the caller writes with put_* and hands the
  // advanced pointer back to `commit_reserved`.
  uint8_t* reserve(size_t n) { return static_cast<size_t>(end_ - pos_) >= n ? pos_ : nullptr; }
  void commit_reserved(uint8_t* at) { pos_ = at; }
  static constexpr uint8_t tag_byte(uint32_t field, WireType type) {
    return static_cast<uint8_t>((field << 3) | type);  // fields 1-15
  }
  static void put_varint(uint8_t*& at, uint64_t value) {
    uint8_t* out = at;  // a local: byte stores could otherwise alias the caller's pointer
    while (value >= 0x80) {
      *out++ = static_cast<uint8_t>(value | 0x80);
      value >>= 7;
    }
    *out++ = static_cast<uint8_t>(value);
    at = out;
  }
  static uint64_t zigzag(int64_t value) {
    return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
  }

  bool overflowed() const { return overflowed_; }
  size_t size() const { return static_cast<size_t>(pos_ - begin_); }
  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  const uint8_t* data() const { return begin_; }
  void reset() {
    pos_ = begin_;
    end_ = limit_;
    overflowed_ = false;
  }
  // Rolls back to an earlier size (drop a partially written optional part).
  void truncate(size_t size) {
    if (size <= this->size()) {
      pos_ = begin_ + size;
      end_ = limit_;
      overflowed_ = false;
    }
  }

 private:
  void advance(size_t n) {
    if (overflowed_ || static_cast<size_t>(end_ - pos_) < n) {
      set_overflowed();
      return;
    }
    pos_ += n;
  }
  // Shrinking the writable end to the current position makes every later write take the
  // checked slow path and be dropped (raw_varint's fast path only tests the room left).
  void set_overflowed() {
    overflowed_ = true;
    end_ = pos_;
  }

  uint8_t* begin_;
  uint8_t* pos_;
  uint8_t* end_;    // writable end: == limit_, or == pos_ once overflowed
  uint8_t* limit_;  // end of the caller's buffer
  bool overflowed_ = false;
};

}  // namespace pyrewind::wire
