// Bounds-checked protobuf wire-format reader for untrusted bytes (shared memory, files).
// Never reads outside [data, data + size); every malformed input ends in `ok() == false`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyrewind::wire {

// The varint at `p` (before `end`) into `*value`: returns the byte after it, or nullptr when
// there is none. For scanners that read a few fields without a ProtoReader (same rules).
[[gnu::always_inline]] inline const uint8_t* read_varint_at(const uint8_t* p, const uint8_t* end, uint64_t* value) {
  if (p != end && *p < 0x80) [[likely]] {  // most tags, lengths and values
    *value = *p;
    return p + 1;
  }
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && p != end; shift += 7) {
    const uint8_t byte = *p++;
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *value = v;
      return p;
    }
  }
  return nullptr;
}

// The body of a length-delimited field whose tag was just read, `p` at its length: [*body,
// returned). nullptr when the length is malformed or runs past `end`.
[[gnu::always_inline]] inline const uint8_t* read_length_delimited(const uint8_t* p, const uint8_t* end,
                                                                   const uint8_t** body) {
  uint64_t length;
  p = read_varint_at(p, end, &length);
  if (!p || length > static_cast<uint64_t>(end - p)) return nullptr;
  *body = p;
  return p + length;
}

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
    const uint8_t* next = read_varint_at(pos_, end_, &value);
    if (!next) return false;
    pos_ = next;
    return true;
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
