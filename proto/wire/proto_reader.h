// Bounds-checked protobuf wire-format reader for untrusted bytes (shared memory, files).
// Never reads outside [data, data + size); every malformed input ends in `ok() == false`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyrewind::wire {

struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;          // kVarint, kFixed64, kFixed32
  const uint8_t* bytes = nullptr;  // kLengthDelimited
  size_t size = 0;
  const uint8_t* start = nullptr;  // first byte of the tag
  const uint8_t* end = nullptr;    // one past the field's last byte
};

class ProtoReader {
 public:
  ProtoReader(const uint8_t* data, size_t size) : pos_(data), end_(data + size) {}

  // Reads the next field. Returns false at the end of input or on malformed input
  // (check `ok()` to tell them apart).
  bool next(Field& field) {
    if (pos_ == end_ || !ok_) return false;
    field.start = pos_;
    uint64_t key;
    if (!read_varint(key) || key >> 32 != 0) return fail();
    field.number = static_cast<uint32_t>(key >> 3);
    field.wire_type = static_cast<uint32_t>(key & 7);
    if (field.number == 0) return fail();
    switch (field.wire_type) {
      case 0:
        if (!read_varint(field.varint)) return fail();
        break;
      case 1:
        if (end_ - pos_ < 8) return fail();
        field.varint = 0;
        for (int i = 0; i < 8; ++i) field.varint |= static_cast<uint64_t>(pos_[i]) << (8 * i);
        pos_ += 8;
        break;
      case 2: {
        uint64_t length;
        if (!read_varint(length) || length > static_cast<uint64_t>(end_ - pos_)) return fail();
        field.bytes = pos_;
        field.size = static_cast<size_t>(length);
        pos_ += length;
        break;
      }
      case 5:
        if (end_ - pos_ < 4) return fail();
        field.varint = 0;
        for (int i = 0; i < 4; ++i) field.varint |= static_cast<uint64_t>(pos_[i]) << (8 * i);
        pos_ += 4;
        break;
      default:
        return fail();
    }
    field.end = pos_;
    return true;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == end_; }

 private:
  // Most tags, lengths and values are below 128: one byte, inline; the rest out of line.
  bool read_varint(uint64_t& value) {
    if (pos_ != end_ && *pos_ < 0x80) [[likely]] {
      value = *pos_++;
      return true;
    }
    return read_long_varint(value);
  }
  __attribute__((noinline)) bool read_long_varint(uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == end_) return false;
      uint8_t byte = *pos_++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  }
  bool fail() {
    ok_ = false;
    return false;
  }

  const uint8_t* pos_;
  const uint8_t* end_;
  bool ok_ = true;
};

}  // namespace pyrewind::wire
