// Reading the fields of one remote structure in one go (python_stacks.cpp, asyncio_tasks.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "injector/inspect/python_layout.h"
#include "injector/inspect/remote_memory.h"

namespace pyrewind::inspect {

constexpr bool present(uint32_t offset) { return offset != PYREWIND_ABSENT; }

// The range from the first to the last field is read at once; typed accessors by field offset
// are bounds-checked (an absent or unread field reads as zero).
class Block {
 public:
  bool read(Memory& memory, uint64_t address, std::initializer_list<uint32_t> offsets) {
    begin_ = PYREWIND_ABSENT;
    uint32_t end = 0;
    for (uint32_t offset : offsets) {
      if (!present(offset)) continue;
      begin_ = std::min(begin_, offset);
      end = std::max(end, offset + 8);  // no field read is wider than 8 bytes
    }
    if (end == 0 || end - begin_ > kMaxSpan) return false;
    bytes_.resize(end - begin_);
    return memory.read(address + begin_, bytes_.data(), bytes_.size());
  }
  template <class T>
  T get(uint32_t offset) const {
    T value{};
    if (present(offset) && offset >= begin_ && offset - begin_ + sizeof(T) <= bytes_.size())
      std::memcpy(&value, bytes_.data() + (offset - begin_), sizeof(T));
    return value;
  }

 private:
  static constexpr uint32_t kMaxSpan = 64 << 10;  // 3.13's interpreter state spreads over ~7 KiB
  std::vector<unsigned char> bytes_;
  uint32_t begin_ = 0;
};

}  // namespace pyrewind::inspect
