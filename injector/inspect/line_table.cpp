#include "injector/inspect/line_table.h"

namespace pyrewind::inspect {
namespace {

// 3.9 co_lnotab: (address delta, signed line delta) byte pairs.
int lnotab_line(std::string_view table, int line, int64_t address) {
  int64_t start = 0;
  for (size_t i = 0; i + 1 < table.size(); i += 2) {
    start += static_cast<unsigned char>(table[i]);
    if (start > address) break;
    line += static_cast<signed char>(table[i + 1]);
  }
  return line;
}

// 3.10 co_linetable: (length in bytes, signed line delta; -128: no line) byte pairs, each an
// address range [start, start + length) from the previous range's end.
int linetable_310_line(std::string_view table, int line, int64_t address) {
  int64_t end = 0;
  for (size_t i = 0; i + 1 < table.size(); i += 2) {
    const int64_t start = end;
    end += static_cast<unsigned char>(table[i]);
    const int delta = static_cast<signed char>(table[i + 1]);
    if (delta != -128) line += delta;
    if (start <= address && address < end) return delta == -128 ? -1 : line;
  }
  return -1;
}

// 3.11+ location table: entries of a header byte 1CCCCLLL (code C, length L+1 code units)
// then varint fields; only the line delta matters here.
class LocationReader {
 public:
  explicit LocationReader(std::string_view table) : table_(table) {}
  bool at_end() const { return at_ >= table_.size(); }
  uint8_t byte() { return at_end() ? 0 : static_cast<uint8_t>(table_[at_++]); }
  uint32_t varint() {  // 6-bit groups, least significant first; bit 6 says more follow
    uint8_t b = byte();
    uint32_t value = b & 63;
    for (unsigned shift = 6; (b & 64) && shift < 32 && !at_end(); shift += 6) {
      b = byte();
      value |= static_cast<uint32_t>(b & 63) << shift;
    }
    return value;
  }
  int signed_varint() {
    const uint32_t value = varint();
    return (value & 1) ? -static_cast<int>(value >> 1) : static_cast<int>(value >> 1);
  }
  void skip_to_next_entry() {  // entries start with the high bit set; their fields never do
    while (!at_end() && !(static_cast<uint8_t>(table_[at_]) & 0x80)) ++at_;
  }

 private:
  std::string_view table_;
  size_t at_ = 0;
};

int locations_line(std::string_view table, int line, int64_t address) {
  constexpr int kNoLocation = 15, kLong = 14, kNoColumns = 13, kOneLine0 = 10, kOneLine2 = 12;
  LocationReader reader(table);
  int64_t end = 0;
  while (!reader.at_end()) {
    const uint8_t header = reader.byte();
    if (!(header & 0x80)) return -1;  // not an entry start: a damaged table
    const int code = (header >> 3) & 15;
    const int64_t start = end;
    end += ((header & 7) + 1) * 2;
    if (code == kLong || code == kNoColumns)
      line += reader.signed_varint();
    else if (code >= kOneLine0 && code <= kOneLine2)
      line += code - kOneLine0;
    if (start <= address && address < end) return code == kNoLocation ? -1 : line;
    reader.skip_to_next_entry();
  }
  return -1;
}

}  // namespace

int line_for_address(pyrewind_line_table_format format, std::string_view table, int first_line, int64_t address) {
  if (address < 0) return first_line;
  switch (format) {
    case PYREWIND_LNOTAB:
      return lnotab_line(table, first_line, address);
    case PYREWIND_LINETABLE_310:
      return linetable_310_line(table, first_line, address);
    case PYREWIND_LOCATIONS:
      return locations_line(table, first_line, address);
  }
  return -1;
}

}  // namespace pyrewind::inspect
