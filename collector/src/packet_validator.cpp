#include "collector/src/packet_validator.h"

#include <array>
#include <cstring>
#include <iterator>

#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"

namespace pyrewind::collector {

namespace {

namespace f = wire::fields;

enum class Kind : uint8_t {
  kVarint,        // integers, bools, enums (any varint value: proto3 enums are open)
  kFixed64,       // double
  kString,        // length-delimited, UTF-8
  kBytes,         // length-delimited, anything
  kMessage,       // length-delimited, a nested message of `message`
  kRepeatedVarint,  // repeated integer: unpacked varints or packed runs
  kForbidden,     // a schema field that is malformed in this context
};

struct FieldSpec {
  uint32_t number;
  Kind kind;
  MessageType message = MessageType::kStringDef;  // for kMessage only
};

struct MessageSpec {
  const FieldSpec* fields;
  size_t count;
};

constexpr FieldSpec kStringDefFields[] = {{f::StringDef::kId, Kind::kVarint}, {f::StringDef::kText, Kind::kString}};
constexpr FieldSpec kCodeDefFields[] = {
    {f::CodeDef::kId, Kind::kVarint},          {f::CodeDef::kFileNameId, Kind::kVarint},
    {f::CodeDef::kQualifiedNameId, Kind::kVarint}, {f::CodeDef::kFirstLine, Kind::kVarint},
    {f::CodeDef::kLocalNameIds, Kind::kRepeatedVarint}, {f::CodeDef::kModuleLevel, Kind::kVarint}};
constexpr FieldSpec kThreadStartFields[] = {{f::ThreadStart::kThread, Kind::kVarint},
                                            {f::ThreadStart::kNativeId, Kind::kVarint},
                                            {f::ThreadStart::kName, Kind::kString},
                                            {f::ThreadStart::kIdent, Kind::kVarint}};
constexpr FieldSpec kThreadEndFields[] = {{f::ThreadEnd::kThread, Kind::kVarint}};
constexpr FieldSpec kEventFields[] = {
    {f::Event::kKind, Kind::kVarint},
    {f::Event::kTimeDeltaNs, Kind::kVarint},
    {f::Event::kCodeId, Kind::kVarint},
    {f::Event::kLine, Kind::kVarint},
    {f::Event::kDepth, Kind::kVarint},
    {f::Event::kLocals, Kind::kMessage, MessageType::kBinding},
    {f::Event::kValue, Kind::kMessage, MessageType::kValue},
    {f::Event::kException, Kind::kMessage, MessageType::kExceptionInfo},
    {f::Event::kThread, Kind::kVarint},
    {f::Event::kTimeNs, Kind::kVarint},
    {f::Event::kFullState, Kind::kVarint},
    {f::Event::kLocalsIncomplete, Kind::kVarint}};
constexpr FieldSpec kBindingFields[] = {{f::Binding::kSlot, Kind::kVarint},
                                        {f::Binding::kName, Kind::kString},
                                        {f::Binding::kValue, Kind::kMessage, MessageType::kBindingValue},
                                        {f::Binding::kUnbound, Kind::kVarint}};
constexpr FieldSpec kExceptionInfoFields[] = {{f::ExceptionInfo::kTypeName, Kind::kString},
                                              {f::ExceptionInfo::kMessage, Kind::kString},
                                              {f::ExceptionInfo::kMessageTruncated, Kind::kVarint}};
constexpr FieldSpec kValueFields[] = {
    {f::Value::kNone, Kind::kVarint},
    {f::Value::kBool, Kind::kVarint},
    {f::Value::kInt, Kind::kVarint},
    {f::Value::kBigInt, Kind::kMessage, MessageType::kBigInt},
    {f::Value::kFloat, Kind::kFixed64},
    {f::Value::kStr, Kind::kMessage, MessageType::kText},
    {f::Value::kBytes, Kind::kMessage, MessageType::kBlob},
    {f::Value::kContainer, Kind::kMessage, MessageType::kContainer},
    {f::Value::kObject, Kind::kMessage, MessageType::kObjectRef},
    {f::Value::kRedacted, Kind::kVarint}};
constexpr FieldSpec kBigIntFields[] = {{f::BigInt::kNegative, Kind::kVarint},
                                       {f::BigInt::kMagnitudeLe, Kind::kBytes},
                                       {f::BigInt::kBitLength, Kind::kVarint},
                                       {f::BigInt::kTruncated, Kind::kVarint}};
constexpr FieldSpec kTextFields[] = {
    {f::Text::kText, Kind::kString}, {f::Text::kLength, Kind::kVarint}, {f::Text::kTruncated, Kind::kVarint}};
constexpr FieldSpec kBlobFields[] = {
    {f::Blob::kData, Kind::kBytes}, {f::Blob::kLength, Kind::kVarint}, {f::Blob::kTruncated, Kind::kVarint}};
// Only a binding's own value can refer to the binding's previous value.
constexpr FieldSpec kContainerFields[] = {{f::Container::kKind, Kind::kVarint},
                                          {f::Container::kId, Kind::kVarint},
                                          {f::Container::kLength, Kind::kVarint},
                                          {f::Container::kItems, Kind::kMessage, MessageType::kValue},
                                          {f::Container::kTruncated, Kind::kVarint},
                                          {f::Container::kReusedItems, Kind::kForbidden}};

// `fields` with the spec of field `replacement.number` replaced by `replacement`.
template <size_t N>
constexpr std::array<FieldSpec, N> with_field(const FieldSpec (&fields)[N], FieldSpec replacement) {
  std::array<FieldSpec, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = fields[i].number == replacement.number ? replacement : fields[i];
  return out;
}
constexpr auto kBindingValueFields =
    with_field(kValueFields, {f::Value::kContainer, Kind::kMessage, MessageType::kBindingContainer});
constexpr auto kBindingContainerFields = with_field(kContainerFields, {f::Container::kReusedItems, Kind::kVarint});
constexpr FieldSpec kObjectRefFields[] = {{f::ObjectRef::kTypeName, Kind::kString},
                                          {f::ObjectRef::kId, Kind::kVarint},
                                          {f::ObjectRef::kRepr, Kind::kString},
                                          {f::ObjectRef::kReprTruncated, Kind::kVarint},
                                          {f::ObjectRef::kReprError, Kind::kString}};
constexpr FieldSpec kLossFields[] = {{f::Loss::kThread, Kind::kVarint},
                                     {f::Loss::kDroppedRecords, Kind::kVarint},
                                     {f::Loss::kDroppedBytes, Kind::kVarint},
                                     {f::Loss::kReason, Kind::kString}};
constexpr FieldSpec kAgentStatusFields[] = {{f::AgentStatus::kState, Kind::kVarint},
                                            {f::AgentStatus::kMessage, Kind::kString},
                                            {f::AgentStatus::kTimeNs, Kind::kVarint}};

template <size_t N>
constexpr MessageSpec spec(const FieldSpec (&fields)[N]) {
  return {fields, N};
}
template <size_t N>
constexpr MessageSpec spec(const std::array<FieldSpec, N>& fields) {
  return {fields.data(), N};
}

// Indexed by MessageType.
constexpr MessageSpec kSpecs[] = {
    spec(kStringDefFields), spec(kCodeDefFields),  spec(kThreadStartFields), spec(kThreadEndFields),
    spec(kEventFields),     spec(kBindingFields),  spec(kExceptionInfoFields), spec(kValueFields),
    spec(kBigIntFields),    spec(kTextFields),     spec(kBlobFields),        spec(kContainerFields),
    spec(kObjectRefFields), spec(kLossFields),     spec(kAgentStatusFields), spec(kBindingValueFields),
    spec(kBindingContainerFields)};
static_assert(std::size(kSpecs) == static_cast<size_t>(MessageType::kBindingContainer) + 1);

// Field number -> index into the message's FieldSpecs (-1: unknown), so looking a field up
// costs one load on the collector's per-event path. Every schema field number is below 16.
constexpr uint32_t kMaxFieldNumber = 15;
using FieldIndex = std::array<std::array<int8_t, kMaxFieldNumber + 1>, std::size(kSpecs)>;

constexpr FieldIndex build_field_index() {
  FieldIndex index{};
  for (size_t m = 0; m < std::size(kSpecs); ++m) {
    for (auto& slot : index[m]) slot = -1;
    for (size_t i = 0; i < kSpecs[m].count; ++i) {
      const uint32_t number = kSpecs[m].fields[i].number;
      if (number > kMaxFieldNumber) throw "field number above kMaxFieldNumber";  // fails the build
      index[m][number] = static_cast<int8_t>(i);
    }
  }
  return index;
}
constexpr FieldIndex kFieldIndex = build_field_index();

const FieldSpec* find_field(MessageType type, uint32_t number) {
  if (number > kMaxFieldNumber) return nullptr;
  const auto m = static_cast<size_t>(type);
  const int8_t i = kFieldIndex[m][number];
  return i < 0 ? nullptr : &kSpecs[m].fields[i];
}

bool valid_packed_varints(const uint8_t* data, size_t size) {
  const uint8_t* end = data + size;
  uint64_t ignored;
  while (data != end)
    if (!(data = wire::read_varint_at(data, end, &ignored))) return false;
  return true;
}

// Length of the valid UTF-8 sequence at data[i], or 0 if there is none.
size_t utf8_sequence_length(const uint8_t* data, size_t size, size_t i) {
  const uint8_t c = data[i];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (size - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    const uint8_t cc = data[i + k];
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// One-byte tags of the fields scan_plain_event() takes.
constexpr uint8_t tag(uint32_t number, uint32_t wire_type) { return static_cast<uint8_t>(number << 3 | wire_type); }

// A Value that is None, a bool, an int, a float or redacted: each field a varint or the float.
[[gnu::always_inline]] inline bool plain_value(const uint8_t* p, const uint8_t* end) {
  while (p != end) {
    const uint8_t t = *p++;
    uint64_t ignored;
    if (t == tag(f::Value::kFloat, wire::kFixed64)) {
      if (end - p < 8) return false;
      p += 8;
    } else if (t == tag(f::Value::kNone, wire::kVarint) || t == tag(f::Value::kBool, wire::kVarint) ||
               t == tag(f::Value::kInt, wire::kVarint) || t == tag(f::Value::kRedacted, wire::kVarint)) {
      if (!(p = wire::read_varint_at(p, end, &ignored))) return false;
    } else {
      return false;
    }
  }
  return true;
}

// A Binding of a slot to nothing (unbound) or to a plain_value().
[[gnu::always_inline]] inline bool plain_binding(const uint8_t* p, const uint8_t* end) {
  while (p != end) {
    const uint8_t t = *p++;
    uint64_t ignored;
    if (t == tag(f::Binding::kSlot, wire::kVarint) || t == tag(f::Binding::kUnbound, wire::kVarint)) {
      if (!(p = wire::read_varint_at(p, end, &ignored))) return false;
    } else if (t == tag(f::Binding::kValue, wire::kLengthDelimited)) {
      const uint8_t* value;
      if (!(p = wire::read_length_delimited(p, end, &value)) || !plain_value(value, p)) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

bool scan_plain_event(const uint8_t* data, size_t size, EventFields* out) {
  const uint8_t* p = data;
  const uint8_t* const end = data + size;
  EventFields fields;
  while (p != end) {
    const uint8_t* const field_begin = p;
    const uint8_t t = *p++;
    uint64_t value;
    switch (t) {
      case tag(f::Event::kKind, wire::kVarint):
        if (!(p = wire::read_varint_at(p, end, &fields.kind))) return false;
        break;
      case tag(f::Event::kTimeDeltaNs, wire::kVarint):
        if (fields.delta_begin || !(p = wire::read_varint_at(p, end, &fields.time_delta_ns))) return false;
        fields.delta_begin = field_begin;
        fields.delta_end = p;
        break;
      case tag(f::Event::kCodeId, wire::kVarint):
        if (!(p = wire::read_varint_at(p, end, &fields.code_id))) return false;
        break;
      case tag(f::Event::kFullState, wire::kVarint):
        if (!(p = wire::read_varint_at(p, end, &value))) return false;
        fields.full_state = value != 0;
        break;
      case tag(f::Event::kLine, wire::kVarint):
      case tag(f::Event::kDepth, wire::kVarint):
      case tag(f::Event::kLocalsIncomplete, wire::kVarint):
        if (!(p = wire::read_varint_at(p, end, &value))) return false;
        break;
      case tag(f::Event::kLocals, wire::kLengthDelimited): {
        const uint8_t* binding;
        if (!(p = wire::read_length_delimited(p, end, &binding)) || !plain_binding(binding, p)) return false;
        break;
      }
      case tag(f::Event::kValue, wire::kLengthDelimited): {
        const uint8_t* returned;
        if (!(p = wire::read_length_delimited(p, end, &returned)) || !plain_value(returned, p)) return false;
        break;
      }
      default:  // anything else, thread and time_ns included (the collector writes those)
        return false;
    }
  }
  *out = fields;
  return true;
}

bool valid_utf8(const uint8_t* data, size_t size) {
  size_t i = 0;
  while (i < size) {
    // Most text is ASCII: skip 8 bytes at a time while no high bit is set.
    while (size - i >= 8) {
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i == size) break;
    const size_t n = utf8_sequence_length(data, size, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  if (valid_utf8(data, text.size())) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8_sequence_length(data, text.size(), i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

bool validate_field(MessageType type, const wire::Field& field, int nesting, ValidationFacts* facts) {
  const FieldSpec* spec = find_field(type, field.number);
  if (spec == nullptr) return true;  // unknown field: well-formed (ProtoReader checked) is enough
  switch (spec->kind) {
    case Kind::kVarint:
      return field.wire_type == wire::kVarint;
    case Kind::kFixed64:
      return field.wire_type == wire::kFixed64;
    case Kind::kString:
      return field.wire_type == wire::kLengthDelimited && valid_utf8(field.bytes, field.size);
    case Kind::kBytes:
      return field.wire_type == wire::kLengthDelimited;
    case Kind::kMessage:
      return field.wire_type == wire::kLengthDelimited &&
             validate_message(spec->message, field.bytes, field.size, nesting + 1, facts);
    case Kind::kRepeatedVarint:
      return field.wire_type == wire::kVarint ||
             (field.wire_type == wire::kLengthDelimited && valid_packed_varints(field.bytes, field.size));
    case Kind::kForbidden:
      return false;
  }
  return false;
}

bool validate_message(MessageType type, const uint8_t* data, size_t size, int nesting, ValidationFacts* facts) {
  if (nesting > kMaxPacketNesting) return false;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  uint64_t length = 0;
  uint64_t reused = 0;
  while (reader.next(field)) {
    if (!validate_field(type, field, nesting, facts)) return false;
    if (type != MessageType::kBindingContainer) continue;
    if (field.number == f::Container::kLength) length = field.varint;  // last one wins, as in protobuf
    if (field.number == f::Container::kReusedItems) reused = field.varint;
  }
  if (!reader.ok() || reused > length) return false;
  if (reused != 0 && facts) ++facts->container_deltas;
  return true;
}

}  // namespace pyrewind::collector
