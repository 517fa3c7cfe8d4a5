// Recorded values as Python would print them (repr()), for the tools that talk to a person
// (`replay`, `table`, `dump`). Truncation is always visible: a cut string ends in "..." with
// its full length, a cut container ends in "...", an unrecorded object shows its type and id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::reader {

// repr() of str or bytes content: quotes and backslash escapes for control characters (and,
// for bytes, anything that is not printable ASCII). UTF-8 text passes through.
std::string python_quoted(std::string_view text, bool bytes);

// repr() of a recorded value: 42, 'abc', [1, 2, ...], {'a': 1}, <Widget object at 0x7f..>.
std::string python_repr(const v1::Value& value);

// The type name Python would give: "int", "list", "Widget"; "redacted" for a redacted value.
std::string python_type_name(const v1::Value& value);

// "0x7f3a12c0".
std::string hex_address(uint64_t address);

}  // namespace pyrewind::reader
