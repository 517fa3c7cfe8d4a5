// UTF-8 validation and repair. Recorded text comes from the OS and from Python objects (lone
// surrogates, undecodable file names), so it is not always valid UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pyrewind::reader {

// Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates, at
// most U+10FFFF), or 0 if the bytes there are not one. Requires p < end.
size_t utf8_sequence(const unsigned char* p, const unsigned char* end);

bool is_valid_utf8(std::string_view text);

// `text` with every byte that does not belong to a valid sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

}  // namespace pyrewind::reader
