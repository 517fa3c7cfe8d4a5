#include "tools/reader/python_text.h"

#include <cinttypes>
#include <cstdio>

#include "tools/reader/json.h"

namespace pyrewind::reader {

std::string python_quoted(std::string_view text, bool bytes) {
  std::string out = bytes ? "b'" : "'";
  for (unsigned char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "'";
}

std::string hex_address(uint64_t address) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, address);
  return text;
}

std::string python_type_name(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kNone: return "NoneType";
    case v1::Value::kBoolValue: return "bool";
    case v1::Value::kIntValue:
    case v1::Value::kBigInt: return "int";
    case v1::Value::kFloatValue: return "float";
    case v1::Value::kStrValue: return "str";
    case v1::Value::kBytesValue: return "bytes";
    case v1::Value::kContainer: return json::container_type(value.container().kind());
    case v1::Value::kObject: return value.object().type_name();
    case v1::Value::kRedacted: return "redacted";
    case v1::Value::KIND_NOT_SET: break;
  }
  return "unknown";
}

namespace {

std::string container_repr(const v1::Container& c) {
  const bool dict = c.kind() == v1::CONTAINER_DICT;
  std::string open = "[", close = "]";
  switch (c.kind()) {
    case v1::CONTAINER_TUPLE: open = "("; close = ")"; break;
    case v1::CONTAINER_DICT:
    case v1::CONTAINER_SET: open = "{"; close = "}"; break;
    case v1::CONTAINER_FROZENSET: open = "frozenset({"; close = "})"; break;
    default: break;
  }
  if (c.length() == 0) {
    if (c.kind() == v1::CONTAINER_SET) return "set()";
    if (c.kind() == v1::CONTAINER_FROZENSET) return "frozenset()";
    return open + close;
  }
  std::string out = open;
  const int step = dict ? 2 : 1;
  int shown = 0;
  for (int i = 0; i + step <= c.items_size(); i += step, ++shown) {
    if (shown) out += ", ";
    out += python_repr(c.items(i));
    if (dict) out += ": " + python_repr(c.items(i + 1));
  }
  const bool cut = c.truncated() || static_cast<uint64_t>(shown) < c.length();
  if (cut) out += shown ? ", ..." : "...";
  if (c.kind() == v1::CONTAINER_TUPLE && c.length() == 1 && !cut) out += ",";
  out += close;
  if (cut) out += " (" + std::to_string(c.length()) + (c.length() == 1 ? " item)" : " items)");
  return out;
}

}  // namespace

std::string python_repr(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kNone: return "None";
    case v1::Value::kBoolValue: return value.bool_value() ? "True" : "False";
    case v1::Value::kIntValue: return std::to_string(value.int_value());
    case v1::Value::kBigInt: {
      const v1::BigInt& b = value.big_int();
      if (b.truncated()) return "<int of " + std::to_string(b.bit_length()) + " bits>";
      return json::decimal_from_le(b.negative(), b.magnitude_le());
    }
    case v1::Value::kFloatValue: return json::python_float_repr(value.float_value());
    case v1::Value::kStrValue: {
      const v1::Text& t = value.str_value();
      std::string out = python_quoted(t.text(), false);
      if (t.truncated()) out += "... (" + std::to_string(t.length()) + " chars)";
      return out;
    }
    case v1::Value::kBytesValue: {
      const v1::Blob& b = value.bytes_value();
      std::string out = python_quoted(b.data(), true);
      if (b.truncated()) out += "... (" + std::to_string(b.length()) + " bytes)";
      return out;
    }
    case v1::Value::kContainer: return container_repr(value.container());
    case v1::Value::kObject: {
      const v1::ObjectRef& o = value.object();
      if (!o.repr().empty()) return o.repr() + (o.repr_truncated() ? "..." : "");
      return "<" + o.type_name() + " object at " + hex_address(o.id()) + ">";
    }
    case v1::Value::kRedacted: return "<redacted>";
    case v1::Value::KIND_NOT_SET: break;
  }
  return "<unknown>";
}

}  // namespace pyrewind::reader
