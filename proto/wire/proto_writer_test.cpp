// The hand-written encoder must produce bytes the protoc-generated classes parse to the same
// values; the reader must stay inside its input whatever it is given.
#include "proto/wire/proto_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::wire {
namespace {

namespace f = fields;

// Encodes with `fill` into a buffer of `capacity` bytes and returns the bytes written.
template <typename Fill>
std::string encode(Fill fill, size_t capacity = 4096) {
  std::vector<uint8_t> buffer(capacity);
  ProtoWriter writer(buffer.data(), buffer.size());
  fill(writer);
  EXPECT_FALSE(writer.overflowed());
  return std::string(reinterpret_cast<const char*>(writer.data()), writer.size());
}

TEST(ProtoWriter, VarintFieldsRoundTrip) {
  const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, (1ull << 32) - 1, 1ull << 32, (1ull << 63),
                             std::numeric_limits<uint64_t>::max()};
  for (uint64_t value : values) {
    std::string bytes = encode([&](ProtoWriter& w) {
      w.varint_field(f::Event::kKind, static_cast<uint32_t>(EventKind::kReturn));
      w.varint_field(f::Event::kTimeDeltaNs, value);
      w.varint_field(f::Event::kCodeId, value ^ 0x5555);
      w.varint_field(f::Event::kLine, static_cast<uint32_t>(value));
      w.varint_field(f::Event::kDepth, 7);
      w.bool_field(f::Event::kFullState, true);
    });
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(bytes)) << value;
    EXPECT_EQ(event.kind(), v1::EVENT_RETURN);
    EXPECT_EQ(event.time_delta_ns(), value);
    EXPECT_EQ(event.code_id(), value ^ 0x5555);
    EXPECT_EQ(event.line(), static_cast<uint32_t>(value));
    EXPECT_EQ(event.depth(), 7u);
    EXPECT_TRUE(event.full_state());
    // Canonical encoding: protobuf serialises the same message to the same bytes (proto3
    // leaves out zero fields, so only when none is zero).
    if (value != 0 && static_cast<uint32_t>(value) != 0 && (value ^ 0x5555) != 0) {
      EXPECT_EQ(event.SerializeAsString(), bytes) << value;
    }
  }
}

TEST(ProtoWriter, SignedIntsUseZigZag) {
  const int64_t values[] = {0, -1, 1, -2, 63, -64, 64, -65, 1ll << 40, -(1ll << 40),
                            std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  for (int64_t value : values) {
    std::string bytes = encode([&](ProtoWriter& w) { w.sint_field(f::Value::kInt, value); });
    v1::Value parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ASSERT_EQ(parsed.kind_case(), v1::Value::kIntValue);
    EXPECT_EQ(parsed.int_value(), value);
    EXPECT_EQ(parsed.SerializeAsString(), bytes);
  }
}

TEST(ProtoWriter, Doubles) {
  const double values[] = {0.0, -0.0, 1.5, -3.25e300, std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::max()};
  for (double value : values) {
    std::string bytes = encode([&](ProtoWriter& w) { w.double_field(f::Value::kFloat, value); });
    v1::Value parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ASSERT_EQ(parsed.kind_case(), v1::Value::kFloatValue);
    const double got = parsed.float_value();
    EXPECT_EQ(std::memcmp(&value, &got, sizeof value), 0) << value;  // bit-exact, -0.0 too
  }
  std::string bytes = encode([&](ProtoWriter& w) { w.double_field(f::Value::kFloat, std::nan("")); });
  v1::Value parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(std::isnan(parsed.float_value()));
}

TEST(ProtoWriter, BytesAndStrings) {
  const std::string binary("\x00\x01\xff\x80 zero\x00inside", 16);
  std::string text = "h\xc3\xa9llo w\xc3\xb6rld";
  std::string long_text(1000, 'x');  // two-byte length prefix
  std::string bytes = encode([&](ProtoWriter& w) {
    w.bytes_field(f::Blob::kData, binary.data(), binary.size());
    w.varint_field(f::Blob::kLength, 12345);
    w.bool_field(f::Blob::kTruncated, true);
  });
  v1::Blob blob;
  ASSERT_TRUE(blob.ParseFromString(bytes));
  EXPECT_EQ(blob.data(), binary);
  EXPECT_EQ(blob.length(), 12345u);
  EXPECT_TRUE(blob.truncated());

  for (const std::string& s : {text, long_text, std::string()}) {
    bytes = encode([&](ProtoWriter& w) {
      w.varint_field(f::StringDef::kId, 42);
      w.string_field(f::StringDef::kText, s.c_str());
    });
    v1::StringDef def;
    ASSERT_TRUE(def.ParseFromString(bytes));
    EXPECT_EQ(def.id(), 42u);
    EXPECT_EQ(def.text(), s);
  }
}

TEST(ProtoWriter, NestedMessagesWithBackPatchedLengths) {
  // Packet{event{kind, code, line, locals=[slot 0: int -5, slot 1: list[str "ab", dict{1: None}],
  // name "g": object], value: bigint}}
  std::string bytes = encode([&](ProtoWriter& w) {
    auto event = w.begin_nested(f::Packet::kEvent);
    w.varint_field(f::Event::kKind, static_cast<uint32_t>(EventKind::kLine));
    w.varint_field(f::Event::kCodeId, 9);
    w.varint_field(f::Event::kLine, 31);

    auto b0 = w.begin_nested(f::Event::kLocals);
    w.varint_field(f::Binding::kSlot, 0);
    auto v0 = w.begin_nested(f::Binding::kValue);
    w.sint_field(f::Value::kInt, -5);
    w.end_nested(v0);
    w.end_nested(b0);

    auto b1 = w.begin_nested(f::Event::kLocals);
    w.varint_field(f::Binding::kSlot, 1);
    auto v1 = w.begin_nested(f::Binding::kValue);
    auto list = w.begin_nested(f::Value::kContainer);
    w.varint_field(f::Container::kKind, static_cast<uint32_t>(ContainerKind::kList));
    w.varint_field(f::Container::kId, 0x7f0011223344ull);
    w.varint_field(f::Container::kLength, 2);
    auto item0 = w.begin_nested(f::Container::kItems);
    auto str = w.begin_nested(f::Value::kStr);
    w.string_field(f::Text::kText, "ab");
    w.varint_field(f::Text::kLength, 2);
    w.end_nested(str);
    w.end_nested(item0);
    auto item1 = w.begin_nested(f::Container::kItems);
    auto dict = w.begin_nested(f::Value::kContainer);
    w.varint_field(f::Container::kKind, static_cast<uint32_t>(ContainerKind::kDict));
    w.varint_field(f::Container::kLength, 1);
    auto key = w.begin_nested(f::Container::kItems);
    w.sint_field(f::Value::kInt, 1);
    w.end_nested(key);
    auto val = w.begin_nested(f::Container::kItems);
    w.bool_field(f::Value::kNone, true);
    w.end_nested(val);
    w.end_nested(dict);
    w.end_nested(item1);
    w.end_nested(list);
    w.end_nested(v1);
    w.end_nested(b1);

    auto b2 = w.begin_nested(f::Event::kLocals);
    w.string_field(f::Binding::kName, "g");
    auto v2 = w.begin_nested(f::Binding::kValue);
    auto obj = w.begin_nested(f::Value::kObject);
    w.string_field(f::ObjectRef::kTypeName, "Ledger");
    w.varint_field(f::ObjectRef::kId, 77);
    w.end_nested(obj);
    w.end_nested(v2);
    w.end_nested(b2);

    auto b3 = w.begin_nested(f::Event::kLocals);  // deleted name: empty value, unbound
    w.varint_field(f::Binding::kSlot, 3);
    w.bool_field(f::Binding::kUnbound, true);
    w.end_nested(b3);

    auto ret = w.begin_nested(f::Event::kValue);
    auto big = w.begin_nested(f::Value::kBigInt);
    w.bool_field(f::BigInt::kNegative, true);
    const uint8_t magnitude[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    w.bytes_field(f::BigInt::kMagnitudeLe, magnitude, sizeof magnitude);
    w.varint_field(f::BigInt::kBitLength, 68);
    w.end_nested(big);
    w.end_nested(ret);

    auto empty = w.begin_nested(f::Event::kException);  // present but empty
    w.end_nested(empty);
    w.end_nested(event);
  });

  v1::Packet packet;
  ASSERT_TRUE(packet.ParseFromString(bytes));
  ASSERT_EQ(packet.body_case(), v1::Packet::kEvent);
  const v1::Event& e = packet.event();
  EXPECT_EQ(e.kind(), v1::EVENT_LINE);
  EXPECT_EQ(e.code_id(), 9u);
  EXPECT_EQ(e.line(), 31u);
  ASSERT_EQ(e.locals_size(), 4);
  EXPECT_EQ(e.locals(0).slot(), 0u);
  EXPECT_EQ(e.locals(0).value().int_value(), -5);
  const v1::Container& l = e.locals(1).value().container();
  EXPECT_EQ(e.locals(1).slot(), 1u);
  EXPECT_EQ(l.kind(), v1::CONTAINER_LIST);
  EXPECT_EQ(l.id(), 0x7f0011223344ull);
  EXPECT_EQ(l.length(), 2u);
  ASSERT_EQ(l.items_size(), 2);
  EXPECT_EQ(l.items(0).str_value().text(), "ab");
  EXPECT_EQ(l.items(0).str_value().length(), 2u);
  const v1::Container& d = l.items(1).container();
  EXPECT_EQ(d.kind(), v1::CONTAINER_DICT);
  ASSERT_EQ(d.items_size(), 2);
  EXPECT_EQ(d.items(0).int_value(), 1);
  EXPECT_EQ(d.items(1).kind_case(), v1::Value::kNone);
  EXPECT_EQ(e.locals(2).name(), "g");
  EXPECT_EQ(e.locals(2).value().object().type_name(), "Ledger");
  EXPECT_EQ(e.locals(2).value().object().id(), 77u);
  EXPECT_EQ(e.locals(3).slot(), 3u);
  EXPECT_TRUE(e.locals(3).unbound());
  EXPECT_FALSE(e.locals(3).has_value());
  EXPECT_TRUE(e.value().big_int().negative());
  EXPECT_EQ(e.value().big_int().magnitude_le(), std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09"));
  EXPECT_EQ(e.value().big_int().bit_length(), 68u);
  EXPECT_TRUE(e.has_exception());
  EXPECT_EQ(e.exception().type_name(), "");
}

// Nested lengths are back-patched whatever the body size (one varint byte up to 127, more
// beyond), at every level, and the result is byte-identical to libprotobuf's serialisation.
TEST(ProtoWriter, NestedLengthsAcrossVarintBoundaries) {
  const size_t sizes[] = {0, 1, 100, 124, 125, 126, 127, 128, 129, 300, 16380, 16381, 16383, 16384, 70000};
  std::vector<uint8_t> buffer(1 << 18);
  for (size_t text_size : sizes) {
    const std::string text(text_size, 't');
    // Packet{event{line 9, locals[Binding{slot 2, value{str_value{text, length}}}]}}, fields
    // in number order and zeros left out, as libprotobuf writes them.
    ProtoWriter w(buffer.data(), buffer.size());
    auto event = w.begin_nested(f::Packet::kEvent);
    w.varint_field(f::Event::kLine, 9);
    auto binding = w.begin_nested(f::Event::kLocals);
    w.varint_field(f::Binding::kSlot, 2);
    auto value = w.begin_nested(f::Binding::kValue);
    auto str = w.begin_nested(f::Value::kStr);
    if (text_size != 0) {
      w.bytes_field(f::Text::kText, text.data(), text.size());
      w.varint_field(f::Text::kLength, text_size);
    }
    w.end_nested(str);
    w.end_nested(value);
    w.end_nested(binding);
    w.end_nested(event);
    ASSERT_FALSE(w.overflowed()) << text_size;

    v1::Packet expected;
    v1::Event* e = expected.mutable_event();
    v1::Binding* b = e->add_locals();
    b->set_slot(2);
    b->mutable_value()->mutable_str_value()->set_text(text);
    b->mutable_value()->mutable_str_value()->set_length(text_size);
    e->set_line(9);
    const std::string bytes(reinterpret_cast<const char*>(w.data()), w.size());
    EXPECT_EQ(bytes, expected.SerializeAsString()) << text_size;
    v1::Packet parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << text_size;
    EXPECT_EQ(parsed.event().locals(0).value().str_value().text().size(), text_size);
    EXPECT_EQ(parsed.event().line(), 9u);
  }
}

// Every capacity below what a message needs overflows, never writes outside the buffer, and
// every capacity from there on yields the complete message (also when closing a nested message
// needs a longer length than the byte reserved for it).
TEST(ProtoWriter, EveryCapacityAroundTheNeededSize) {
  const std::string long_text(150, 'L');
  auto fill = [&](ProtoWriter& w) {
    auto event = w.begin_nested(f::Packet::kEvent);
    w.varint_field(f::Event::kCodeId, std::numeric_limits<uint64_t>::max());
    auto exception = w.begin_nested(f::Event::kException);
    w.string_field(f::ExceptionInfo::kTypeName, "KeyError");
    w.string_field(f::ExceptionInfo::kMessage, long_text.c_str());
    w.end_nested(exception);
    w.varint_field(f::Event::kLine, 12);
    w.end_nested(event);
  };
  std::vector<uint8_t> reference(1024);
  ProtoWriter full(reference.data(), reference.size());
  fill(full);
  ASSERT_FALSE(full.overflowed());
  const size_t needed = full.size();
  for (size_t capacity = 0; capacity < needed + 8; ++capacity) {
    std::vector<uint8_t> storage(capacity + 16, 0xEE);  // canary after the buffer
    ProtoWriter w(storage.data(), capacity);
    fill(w);
    EXPECT_EQ(w.overflowed(), capacity < needed) << capacity;
    EXPECT_LE(w.size(), capacity);
    for (size_t i = capacity; i < storage.size(); ++i) ASSERT_EQ(storage[i], 0xEE) << capacity;
    if (!w.overflowed()) {
      EXPECT_EQ(std::memcmp(w.data(), reference.data(), needed), 0) << capacity;
      continue;
    }
    // Once overflowed, nothing else is appended, even a short field that would still fit.
    const size_t size = w.size();
    w.varint_field(1, 1);
    w.raw_varint(5);
    w.bool_field(2, true);
    EXPECT_EQ(w.size(), size);
    EXPECT_EQ(w.remaining(), 0u);
  }
}

TEST(ProtoWriter, VarintHelpersAgreeWithEachOther) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    uint64_t value = rng() >> (rng() % 64);
    uint8_t out[10];
    size_t n = ProtoWriter::encode_varint(value, out);
    EXPECT_EQ(n, ProtoWriter::varint_size(value));
    uint8_t field[11] = {0x08};  // field 1, varint
    std::memcpy(field + 1, out, n);
    ProtoReader r(field, n + 1);
    Field parsed;
    ASSERT_TRUE(r.next(parsed));
    EXPECT_EQ(parsed.varint, value);
    EXPECT_TRUE(r.at_end());
  }
  EXPECT_EQ(ProtoWriter::varint_size(std::numeric_limits<uint64_t>::max()), 10u);
}

TEST(ProtoWriter, TruncateRollsBackAnOverflow) {
  uint8_t buffer[16];
  ProtoWriter w(buffer, sizeof buffer);
  w.varint_field(f::Event::kLine, 10);
  const size_t mark = w.size();
  std::string big(100, 'z');
  w.bytes_field(f::Event::kLocals, big.data(), big.size());
  EXPECT_TRUE(w.overflowed());
  w.truncate(mark);
  EXPECT_FALSE(w.overflowed());
  EXPECT_EQ(w.remaining(), sizeof buffer - mark);
  w.varint_field(f::Event::kDepth, 3);
  EXPECT_FALSE(w.overflowed());
  v1::Event e;
  ASSERT_TRUE(e.ParseFromArray(buffer, static_cast<int>(w.size())));
  EXPECT_EQ(e.line(), 10u);
  EXPECT_EQ(e.depth(), 3u);
  w.truncate(1000);  // beyond the size: ignored
  EXPECT_EQ(w.size(), mark + 2);
  w.reset();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.remaining(), sizeof buffer);
}

// ---------------------------------------------------------------------------------------------
// ProtoReader

TEST(ProtoReader, ReadsEveryWireType) {
  v1::Event event;
  event.set_kind(v1::EVENT_EXCEPTION);
  event.set_code_id(1ull << 40);
  event.set_line(12);
  event.mutable_exception()->set_type_name("ValueError");
  event.mutable_value()->set_float_value(2.5);  // fixed64 inside the nested Value
  std::string bytes = event.SerializeAsString();
  // Append a fixed32 field (unknown to Event; wire type 5) by hand.
  bytes += static_cast<char>((15 << 3) | 5);
  bytes += std::string("\x78\x56\x34\x12", 4);

  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  ProtoReader reader(data, bytes.size());
  Field field;
  std::vector<uint32_t> numbers;
  while (reader.next(field)) {
    numbers.push_back(field.number);
    EXPECT_GE(field.start, data);
    EXPECT_LE(field.end, data + bytes.size());
    switch (field.number) {
      case f::Event::kKind:
        EXPECT_EQ(field.wire_type, kVarint);
        EXPECT_EQ(field.varint, static_cast<uint64_t>(v1::EVENT_EXCEPTION));
        break;
      case f::Event::kCodeId:
        EXPECT_EQ(field.varint, 1ull << 40);
        break;
      case f::Event::kLine:
        EXPECT_EQ(field.varint, 12u);
        break;
      case f::Event::kValue: {
        EXPECT_EQ(field.wire_type, kLengthDelimited);
        ProtoReader inner(field.bytes, field.size);
        Field value;
        ASSERT_TRUE(inner.next(value));
        EXPECT_EQ(value.number, f::Value::kFloat);
        EXPECT_EQ(value.wire_type, kFixed64);
        double d;
        std::memcpy(&d, &value.varint, sizeof d);
        EXPECT_EQ(d, 2.5);
        EXPECT_FALSE(inner.next(value));
        EXPECT_TRUE(inner.ok());
        break;
      }
      case f::Event::kException: {
        ProtoReader inner(field.bytes, field.size);
        Field name;
        ASSERT_TRUE(inner.next(name));
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(name.bytes), name.size), "ValueError");
        break;
      }
      case 15:
        EXPECT_EQ(field.wire_type, kFixed32);
        EXPECT_EQ(field.varint, 0x12345678u);
        break;
      default:
        ADD_FAILURE() << "unexpected field " << field.number;
    }
  }
  EXPECT_TRUE(reader.ok());
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(numbers, (std::vector<uint32_t>{1, 3, 4, 7, 8, 15}));
}

TEST(ProtoReader, RejectsMalformedInput) {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
  };
  const Case cases[] = {
      {"field number 0", {0x00, 0x01}},
      {"wire type 3 (group start)", {0x0B}},
      {"wire type 4 (group end)", {0x0C}},
      {"wire type 6", {0x0E, 0x00}},
      {"wire type 7", {0x0F, 0x00}},
      {"key beyond 32 bits", {0x88, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00}},
      {"varint longer than 10 bytes", {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
      {"varint cut off", {0x08, 0xff}},
      {"key cut off", {0x88}},
      {"fixed64 cut off", {0x09, 1, 2, 3, 4, 5, 6, 7}},
      {"fixed32 cut off", {0x0D, 1, 2, 3}},
      {"length beyond the end", {0x0A, 0x05, 1, 2, 3, 4}},
      {"length near 2^64", {0x0A, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}},
      {"length missing", {0x0A}},
  };
  for (const Case& c : cases) {
    // Exactly-sized heap copy so a sanitizer would catch any read past the end.
    std::unique_ptr<uint8_t[]> data(new uint8_t[c.bytes.size()]);
    std::memcpy(data.get(), c.bytes.data(), c.bytes.size());
    ProtoReader reader(data.get(), c.bytes.size());
    Field field;
    int fields = 0;
    while (reader.next(field)) ++fields;
    EXPECT_FALSE(reader.ok()) << c.what;
    EXPECT_EQ(fields, 0) << c.what;
    EXPECT_FALSE(reader.next(field)) << c.what;  // stays failed
  }
}

TEST(ProtoReader, EveryTruncationOfAValidMessage) {
  v1::Packet packet;
  v1::Event* e = packet.mutable_event();
  e->set_kind(v1::EVENT_CALL);
  e->set_time_delta_ns(123456789);
  e->set_code_id(4);
  for (int i = 0; i < 5; ++i) {
    v1::Binding* b = e->add_locals();
    b->set_slot(static_cast<uint32_t>(i));
    b->mutable_value()->mutable_str_value()->set_text(std::string(static_cast<size_t>(i * 40), 'q'));
  }
  e->mutable_value()->set_float_value(-1.25);
  const std::string bytes = packet.SerializeAsString();
  // Field boundaries of the outer message (the single `event` field).
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    std::unique_ptr<uint8_t[]> data(new uint8_t[cut + 1]);
    std::memcpy(data.get(), bytes.data(), cut);
    ProtoReader reader(data.get(), cut);
    Field field;
    size_t fields = 0;
    while (reader.next(field)) {
      ++fields;
      ASSERT_LE(field.end, data.get() + cut);
      if (field.wire_type == kLengthDelimited) {
        ASSERT_LE(field.bytes + field.size, data.get() + cut);
      }
    }
    if (cut == 0 || cut == bytes.size()) {
      EXPECT_TRUE(reader.ok()) << cut;
      EXPECT_EQ(fields, cut == 0 ? 0u : 1u);
    } else {
      EXPECT_FALSE(reader.ok()) << cut;  // the only field is cut
      EXPECT_EQ(fields, 0u);
    }
  }
}

// Walks a message tree, descending into every length-delimited field that parses.
size_t walk(const uint8_t* data, size_t size, const uint8_t* lo, const uint8_t* hi, int depth) {
  ProtoReader reader(data, size);
  Field field;
  size_t fields = 0;
  const uint8_t* last_end = data;
  while (reader.next(field)) {
    ++fields;
    EXPECT_EQ(field.start, last_end);
    EXPECT_GT(field.end, field.start);  // progress
    EXPECT_GE(field.start, lo);
    EXPECT_LE(field.end, hi);
    last_end = field.end;
    if (field.wire_type == kLengthDelimited) {
      EXPECT_GE(field.bytes, lo);
      EXPECT_LE(field.bytes + field.size, field.end);
      if (depth < 8) fields += walk(field.bytes, field.size, lo, hi, depth + 1);
    }
  }
  EXPECT_TRUE(!reader.ok() || reader.at_end());
  return fields;
}

TEST(ProtoReader, RandomGarbageStaysInBounds) {
  std::mt19937_64 rng(20240601);
  size_t total = 0;
  for (int iteration = 0; iteration < 100000; ++iteration) {
    const size_t size = rng() % 48;
    std::unique_ptr<uint8_t[]> data(new uint8_t[size == 0 ? 1 : size]);
    // Bias towards plausible keys and small lengths so parsing goes deep sometimes.
    for (size_t i = 0; i < size; ++i) {
      const uint64_t r = rng();
      data[i] = (r & 3) == 0 ? static_cast<uint8_t>(((r >> 8) % 16 << 3) | ((r >> 16) % 6))
                             : static_cast<uint8_t>(r >> 24) % ((r & 4) ? 16 : 256);
    }
    total += walk(data.get(), size, data.get(), data.get() + size, 0);
  }
  EXPECT_GT(total, 20000u);  // the generator does exercise the parser
}

TEST(ProtoReader, RandomMutationsOfValidMessages) {
  v1::Packet packet;
  v1::Event* e = packet.mutable_event();
  e->set_kind(v1::EVENT_LINE);
  e->set_line(7);
  auto* c = e->add_locals()->mutable_value()->mutable_container();
  c->set_kind(v1::CONTAINER_TUPLE);
  for (int i = 0; i < 6; ++i) c->add_items()->set_int_value(-i * 1000);
  c->add_items()->mutable_bytes_value()->set_data("abc");
  const std::string valid = packet.SerializeAsString();
  std::mt19937_64 rng(99);
  for (int iteration = 0; iteration < 50000; ++iteration) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 3 == 0) bytes.resize(rng() % bytes.size());
    std::unique_ptr<uint8_t[]> data(new uint8_t[bytes.size() + 1]);
    std::memcpy(data.get(), bytes.data(), bytes.size());
    walk(data.get(), bytes.size(), data.get(), data.get() + bytes.size(), 0);
  }
}

}  // namespace
}  // namespace pyrewind::wire
