// JSON rendering of recorded values and text, shared by every exporter.
//
// Values (pyrewind.v1.Value) map to JSON as follows; keys appear in exactly this order:
//   None, bool                 null, true, false
//   int                        a number; beyond +-2^53 a decimal string
//   big int (complete)         a decimal string (a number if it fits in +-2^53)
//   big int (truncated)        {"type":"int","bits":N,"truncated":true}
//   float                      shortest round-trip form as Python's repr() ("1.0", "1e+16");
//                              NaN and infinities as the strings "NaN", "Infinity", "-Infinity"
//   str                        a string; truncated: {"type":"str","len":N,"value":"<prefix>","truncated":true}
//   bytes                      {"type":"bytes","len":N,"hex":"..."} (+ "truncated":true)
//   list/tuple/dict/set/frozenset
//                              {"type":"list","id":ID,"len":N,"items":[...]} (+ "truncated":true);
//                              dict items are [key, value] pairs
//   other objects              {"type":NAME,"id":ID} (+ "repr":"..." (+ "repr_truncated":true)
//                              when recorded, + "repr_error":"<exception type>")
//   redacted                   {"redacted":true}
// Strings are escaped as JSON requires (control characters as \n, \t, ... or \u00XX); valid
// UTF-8 passes through, each invalid byte becomes U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::reader::json {

void append_string(std::string& out, std::string_view text);  // quoted and escaped
void append_int(std::string& out, int64_t value);             // string beyond +-2^53
void append_uint(std::string& out, uint64_t value);           // string beyond 2^53
void append_float(std::string& out, double value);
void append_value(std::string& out, const v1::Value& value);
// {"type":...,"message":...} (+ "truncated":true when the message was cut).
void append_exception(std::string& out, const v1::ExceptionInfo& exception);

// "list", "tuple", "dict", "set", "frozenset" ("container" for an unknown kind).
const char* container_type(v1::ContainerKind kind);
// Bytes as a quoted lowercase hex string.
void append_hex(std::string& out, std::string_view data);

// Python repr() of a finite or non-finite double ("1.0", "1e-05", "nan", "inf").
std::string python_float_repr(double value);
// Decimal digits of a little-endian magnitude ("0" when empty), with a '-' when negative
// and non-zero.
std::string decimal_from_le(bool negative, std::string_view magnitude_le);

}  // namespace pyrewind::reader::json
