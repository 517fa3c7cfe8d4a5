#include <gtest/gtest.h>

#include <random>
#include <string>

#include "proto/recording/crc32c.h"

namespace pyrewind {
namespace {

using recording::crc32c;
using recording::crc32c_portable;

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);  // the standard check value
  EXPECT_EQ(crc32c_portable("123456789", 9), 0xe3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);  // RFC 3720 B.4
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62a8ab43u);
}

TEST(Crc32c, HardwareAndTableAgreeAndChain) {
  std::mt19937 rng(99);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4991u}) {
      if (start + len > data.size()) continue;
      const char* p = data.data() + start;
      uint32_t a = crc32c(p, len), b = crc32c_portable(p, len);
      EXPECT_EQ(a, b) << start << "/" << len;
      size_t half = len / 3;
      EXPECT_EQ(crc32c(p + half, len - half, crc32c(p, half)), a);
    }
  }
  std::printf("crc32c uses %s\n", recording::crc32c_hardware() ? "SSE4.2" : "the table");
}

}  // namespace
}  // namespace pyrewind
