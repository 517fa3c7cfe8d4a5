#include "tools/reader/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "tools/reader/utf8.h"

namespace pyrewind::reader::json {
namespace {

constexpr uint64_t kMaxExactInteger = uint64_t{1} << 53;  // doubles hold every integer up to this
constexpr size_t kMaxBigIntBytes = 64 * 1024;             // decimal conversion is quadratic
constexpr int kMaxNesting = 200;                          // protobuf itself stops at 100

void append_raw_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_value_at(std::string& out, const v1::Value& v, int nesting);

void append_big_int(std::string& out, const v1::BigInt& b) {
  if (b.truncated() || b.magnitude_le().size() > kMaxBigIntBytes) {
    out += "{\"type\":\"int\",\"bits\":";
    append_raw_uint(out, b.bit_length());
    out += ",\"truncated\":true}";
    return;
  }
  // Normally outside +-2^53 (small ints arrive as int_value), but render by value either way.
  std::string_view mag = b.magnitude_le();
  size_t used = mag.size();
  while (used > 0 && mag[used - 1] == 0) --used;
  if (used <= 8) {
    uint64_t m = 0;
    for (size_t i = 0; i < used; ++i) m |= static_cast<uint64_t>(static_cast<unsigned char>(mag[i])) << (8 * i);
    if (m <= kMaxExactInteger) {
      if (b.negative() && m != 0) out.push_back('-');
      append_raw_uint(out, m);
      return;
    }
  }
  out.push_back('"');
  out += decimal_from_le(b.negative(), mag);
  out.push_back('"');
}

void append_container(std::string& out, const v1::Container& c, int nesting) {
  out += "{\"type\":\"";
  out += container_type(c.kind());
  out += "\",\"id\":";
  append_uint(out, c.id());
  out += ",\"len\":";
  append_raw_uint(out, c.length());
  out += ",\"items\":[";
  bool truncated = c.truncated();
  if (c.kind() == v1::CONTAINER_DICT) {
    int pairs = c.items_size() / 2;
    if (c.items_size() % 2) truncated = true;  // a key without its value: show what is whole
    for (int i = 0; i < pairs; ++i) {
      if (i) out.push_back(',');
      out.push_back('[');
      append_value_at(out, c.items(2 * i), nesting + 1);
      out.push_back(',');
      append_value_at(out, c.items(2 * i + 1), nesting + 1);
      out.push_back(']');
    }
  } else {
    for (int i = 0; i < c.items_size(); ++i) {
      if (i) out.push_back(',');
      append_value_at(out, c.items(i), nesting + 1);
    }
  }
  out.push_back(']');
  if (truncated) out += ",\"truncated\":true";
  out.push_back('}');
}

void append_value_at(std::string& out, const v1::Value& v, int nesting) {
  if (nesting > kMaxNesting) {
    out += "null";
    return;
  }
  switch (v.kind_case()) {
    case v1::Value::kNone:
      out += "null";
      return;
    case v1::Value::kBoolValue:
      out += v.bool_value() ? "true" : "false";
      return;
    case v1::Value::kIntValue:
      append_int(out, v.int_value());
      return;
    case v1::Value::kBigInt:
      append_big_int(out, v.big_int());
      return;
    case v1::Value::kFloatValue:
      append_float(out, v.float_value());
      return;
    case v1::Value::kStrValue: {
      const v1::Text& t = v.str_value();
      if (!t.truncated()) {
        append_string(out, t.text());
        return;
      }
      out += "{\"type\":\"str\",\"len\":";
      append_raw_uint(out, t.length());
      out += ",\"value\":";
      append_string(out, t.text());
      out += ",\"truncated\":true}";
      return;
    }
    case v1::Value::kBytesValue: {
      const v1::Blob& b = v.bytes_value();
      out += "{\"type\":\"bytes\",\"len\":";
      append_raw_uint(out, b.length() ? b.length() : b.data().size());
      out += ",\"hex\":";
      append_hex(out, b.data());
      if (b.truncated()) out += ",\"truncated\":true";
      out.push_back('}');
      return;
    }
    case v1::Value::kContainer:
      append_container(out, v.container(), nesting);
      return;
    case v1::Value::kObject: {
      const v1::ObjectRef& o = v.object();
      out += "{\"type\":";
      append_string(out, o.type_name());
      out += ",\"id\":";
      append_uint(out, o.id());
      if (!o.repr().empty() || o.repr_truncated()) {
        out += ",\"repr\":";
        append_string(out, o.repr());
        if (o.repr_truncated()) out += ",\"repr_truncated\":true";
      }
      if (!o.repr_error().empty()) {
        out += ",\"repr_error\":";
        append_string(out, o.repr_error());
      }
      out.push_back('}');
      return;
    }
    case v1::Value::kRedacted:
      out += "{\"redacted\":true}";
      return;
    case v1::Value::KIND_NOT_SET:
      break;
  }
  out += "null";
}

}  // namespace

void append_string(std::string& out, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Copy a run of bytes that need no attention in one go.
    const unsigned char* run = p;
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (p == end) break;
    unsigned char c = *p;
    if (c >= 0x80) {
      size_t n = utf8_sequence(p, end);
      if (n == 0) {
        out += "\xef\xbf\xbd";  // U+FFFD
        ++p;
      } else {
        out.append(reinterpret_cast<const char*>(p), n);
        p += n;
      }
      continue;
    }
    ++p;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.push_back('"');
}

void append_int(std::string& out, int64_t value) {
  uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  bool quote = magnitude > kMaxExactInteger;
  if (quote) out.push_back('"');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
  if (quote) out.push_back('"');
}

void append_uint(std::string& out, uint64_t value) {
  bool quote = value > kMaxExactInteger;
  if (quote) out.push_back('"');
  append_raw_uint(out, value);
  if (quote) out.push_back('"');
}

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout (float_repr_style 'short'): plain
  // notation when -4 < exponent + 1 <= 16, otherwise d.ddde+XX with at least two exponent digits.
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exponent = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  const int n = static_cast<int>(digits.size());
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(static_cast<size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(decpt));
      out.push_back('.');
      out.append(digits, static_cast<size_t>(decpt), std::string::npos);
    }
    return out;
  }
  out.push_back(digits[0]);
  if (n > 1) {
    out.push_back('.');
    out.append(digits, 1, std::string::npos);
  }
  out.push_back('e');
  out.push_back(exponent < 0 ? '-' : '+');
  int mag = exponent < 0 ? -exponent : exponent;
  if (mag < 10) out.push_back('0');
  out += std::to_string(mag);
  return out;
}

void append_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value < 0 ? "\"-Infinity\"" : "\"Infinity\"";
  } else {
    out += python_float_repr(value);
  }
}

std::string decimal_from_le(bool negative, std::string_view magnitude_le) {
  // 32-bit limbs, most significant last; repeatedly divide by 10^9.
  std::vector<uint32_t> limbs((magnitude_le.size() + 3) / 4, 0);
  for (size_t i = 0; i < magnitude_le.size(); ++i)
    limbs[i / 4] |= static_cast<uint32_t>(static_cast<unsigned char>(magnitude_le[i])) << (8 * (i % 4));
  while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  if (limbs.empty()) return "0";
  std::vector<uint32_t> groups;  // base 10^9, least significant first
  while (!limbs.empty()) {
    uint64_t rem = 0;
    for (size_t i = limbs.size(); i-- > 0;) {
      uint64_t cur = (rem << 32) | limbs[i];
      limbs[i] = static_cast<uint32_t>(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    groups.push_back(static_cast<uint32_t>(rem));
    while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  }
  std::string out = negative ? "-" : "";
  out += std::to_string(groups.back());
  for (size_t i = groups.size() - 1; i-- > 0;) {
    std::string g = std::to_string(groups[i]);
    out.append(9 - g.size(), '0');
    out += g;
  }
  return out;
}

void append_value(std::string& out, const v1::Value& value) { append_value_at(out, value, 0); }

void append_exception(std::string& out, const v1::ExceptionInfo& exception) {
  out += "{\"type\":";
  append_string(out, exception.type_name());
  out += ",\"message\":";
  append_string(out, exception.message());
  if (exception.message_truncated()) out += ",\"truncated\":true";
  out.push_back('}');
}

const char* container_type(v1::ContainerKind kind) {
  switch (kind) {
    case v1::CONTAINER_LIST: return "list";
    case v1::CONTAINER_TUPLE: return "tuple";
    case v1::CONTAINER_DICT: return "dict";
    case v1::CONTAINER_SET: return "set";
    case v1::CONTAINER_FROZENSET: return "frozenset";
    default: return "container";
  }
}

void append_hex(std::string& out, std::string_view data) {
  static const char kDigits[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : data) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  out.push_back('"');
}

}  // namespace pyrewind::reader::json
