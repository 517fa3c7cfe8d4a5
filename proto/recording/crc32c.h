// CRC32C (Castagnoli), the checksum of recording chunks, summaries and footers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyrewind::recording {

// CRC32C of `size` bytes, continuing from `crc` (the result of a previous call, 0 to start).
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both give the
// same result.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// The portable table implementation, exposed so tests can compare both paths.
uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc = 0);

// True when crc32c() uses the SSE4.2 instruction on this machine.
bool crc32c_hardware();

}  // namespace pyrewind::recording
