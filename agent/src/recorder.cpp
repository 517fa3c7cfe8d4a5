#include "src/recorder.h"

#include <algorithm>
#include <cstring>

#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"
#include "src/agent.h"
#include "src/code_registry.h"
#include "src/thread_state.h"
#include "src/values.h"

namespace pyrewind::agent {
namespace f = wire::fields;
namespace {

constexpr uint64_t kUnboundFingerprint = 0;
constexpr uint64_t kRedactedFingerprint = 0x5ed5ed5ed5ed5edULL;
constexpr size_t kEventReserve = 64;
constexpr size_t kEventHeaderBytes = 48;  // kind, time delta, code id, line, depth: tags + varints
constexpr size_t kScalarValueBytes = 16;  // a Value field holding None, a small int or a float
// In place: the Packet's event tag, a length of up to two bytes, the head, a full-state flag.
constexpr size_t kInPlaceHeadBytes = 3 + kEventHeaderBytes + 2;
// Bounds below 2^14 keep an in-place event's length within two bytes.
constexpr size_t kMaxInPlaceEventBytes = (size_t{1} << 14) - 1;
// A binding is only started with this much room left; the rest wait for the frame's next event.
constexpr size_t kBindingReserve = 512;

bool g_infer_exception_handled = false;
bool g_sticky_frame_line = false;

// An event's first fields (at most kEventHeaderBytes).
[[gnu::always_inline]] inline void put_event_head(uint8_t*& position, wire::EventKind kind, uint64_t time_delta, const CodeMeta& meta, int line,
                    size_t depth) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;  // a local: byte stores could otherwise alias the caller's pointer
  *at++ = W::tag_byte(f::Event::kKind, wire::kVarint);
  *at++ = static_cast<uint8_t>(kind);
  *at++ = W::tag_byte(f::Event::kTimeDeltaNs, wire::kVarint);
  W::put_varint(at, time_delta);
  *at++ = W::tag_byte(f::Event::kCodeId, wire::kVarint);
  W::put_varint(at, meta.id);
  *at++ = W::tag_byte(f::Event::kLine, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(line < 0 ? 0 : line));
  if (depth) {
    *at++ = W::tag_byte(f::Event::kDepth, wire::kVarint);
    W::put_varint(at, depth);
  }
  position = at;
}

// An event's time, and the thread's previous one, which its time delta is relative to.
struct EventTime {
  uint64_t base;
  uint64_t now;
};
[[gnu::always_inline]] inline EventTime take_event_time(ThreadState& thread) {
  const uint64_t base = thread.last_time_ns;
  const uint64_t now = std::max(Agent::instance()->now_ns(thread.clock_calls), base);
  thread.last_time_ns = now;
  return {base, now};
}

// Everything one event needs; encodes into the thread's scratch buffer, which ThreadState::commit
// copies into a ring chunk. (Encoding events of unbounded size in place in the chunk measured
// slower: see InPlaceEvent for those of bounded size.)
class EventEncoder {
 public:
  EventEncoder(ThreadState& thread, wire::EventKind kind, const CodeMeta& meta, int line, size_t depth)
      : thread_(thread), writer_(thread.scratch(), thread.scratch_size()) {
    const EventTime time = take_event_time(thread);
    time_base_ = time.base;
    event_ = writer_.begin_nested(f::Packet::kEvent);
    uint8_t* at = writer_.reserve(kEventHeaderBytes);
    if (!at) {  // scratch smaller than any event: commit() reports the overflow
      writer_.varint_field(f::Event::kKind, static_cast<uint32_t>(kind));
      return;
    }
    put_event_head(at, kind, time.now - time.base, meta, line, depth);
    writer_.commit_reserved(at);
  }

  wire::ProtoWriter& writer() { return writer_; }
  bool incomplete() const { return incomplete_; }
  // False once the event is too full for another binding; marks the event as incomplete.
  bool room_for_binding() {
    if (writer_.remaining() >= kBindingReserve) return true;
    if (!incomplete_) writer_.bool_field(f::Event::kLocalsIncomplete, true);
    incomplete_ = true;
    return false;
  }
  // Half of what is left for one value, so every later binding still gets room.
  size_t value_budget() const {
    size_t left = writer_.remaining() > kEventReserve ? writer_.remaining() - kEventReserve : 0;
    return left / 2;
  }

  // Returns false if the event did not fit or was dropped.
  bool commit() {
    writer_.end_nested(event_);
    if (writer_.overflowed()) return false;
    return thread_.commit(writer_.size(), time_base_);
  }

 private:
  ThreadState& thread_;
  wire::ProtoWriter writer_;
  wire::ProtoWriter::Nested event_;
  uint64_t time_base_ = 0;
  bool incomplete_ = false;
};

// Created on first use (GIL held); a plain pointer test, no thread-safe static guard.
ValueCapture* g_capture = nullptr;
ValueCapture& capture() {
  if (!g_capture) g_capture = new ValueCapture(Agent::instance()->limits());
  return *g_capture;
}

// How many items of `value` (just scanned into `scan`) the reader already holds through the
// binding's previous value `base`: the same container with the same first items. 0: none.
uint32_t reusable_items(const ItemsShadow& base, const ContainerScan& scan, PyObject* value) {
  if (!base.items || !scan.is_container || !scan.prefix_found) return 0;
  const bool same = base.id == reinterpret_cast<uintptr_t>(value) && base.kind == static_cast<uint8_t>(scan.kind) &&
                    base.items_hash == scan.prefix_hash;
  return same ? base.items : 0;
}

// Encodes a changed binding's value, as a delta against `base` unless `full`, and makes `base`
// describe what the reader holds afterwards.
void encode_binding_value(wire::ProtoWriter& writer, size_t budget, PyObject* value, const ContainerScan& scan,
                          ItemsShadow& base, bool full) {
  const uint32_t reused = full ? 0 : reusable_items(base, scan, value);
  const bool exact = capture().encode(writer, f::Binding::kValue, value, budget, reused);
  if (exact && scan.is_container && scan.items)
    base = {scan.items_hash, reinterpret_cast<uintptr_t>(value), scan.items, static_cast<uint8_t>(scan.kind)};
  else
    base.items = 0;
}

// Bindings of a slot to the values most locals hold, written without nested-length patching
// (the same bytes as the general path). Each needs at most kPlainBindingBytes.
constexpr size_t kPlainBindingBytes = 24;

[[gnu::always_inline]] inline void put_small_int_binding(uint8_t*& position, int slot, long long small) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;
  const uint64_t zigzag = W::zigzag(small);
  *at++ = W::tag_byte(f::Event::kLocals, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(1 + W::varint_size(static_cast<uint32_t>(slot)) + 2 + 1 + W::varint_size(zigzag));
  *at++ = W::tag_byte(f::Binding::kSlot, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(slot));
  position = put_small_int_value(at, f::Binding::kValue, zigzag);
}

// A Value's float field: its tag and 8 bytes.
[[gnu::always_inline]] inline void put_float(uint8_t*& position, double value) {
  uint8_t* at = position;
  *at++ = wire::ProtoWriter::tag_byte(f::Value::kFloat, wire::kFixed64);
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) *at++ = static_cast<uint8_t>(bits >> (8 * i));
  position = at;
}

[[gnu::always_inline]] inline void put_float_binding(uint8_t*& position, int slot, double value) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;
  *at++ = W::tag_byte(f::Event::kLocals, wire::kLengthDelimited);
  // Slot tag and number, value tag and length, 9: float tag and 8 bytes.
  *at++ = static_cast<uint8_t>(1 + W::varint_size(static_cast<uint32_t>(slot)) + 2 + 9);
  *at++ = W::tag_byte(f::Binding::kSlot, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(slot));
  *at++ = W::tag_byte(f::Binding::kValue, wire::kLengthDelimited);
  *at++ = 9;
  put_float(at, value);
  position = at;
}

[[gnu::always_inline]] inline void put_unbound_binding(uint8_t*& position, int slot) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;
  *at++ = W::tag_byte(f::Event::kLocals, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(1 + W::varint_size(static_cast<uint32_t>(slot)) + 2);
  *at++ = W::tag_byte(f::Binding::kSlot, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(slot));
  *at++ = W::tag_byte(f::Binding::kUnbound, wire::kVarint);
  *at++ = 1;
  position = at;
}

// A binding of a slot to None (varint field 1 = true) or a bool (varint field 0 or 1).
[[gnu::always_inline]] inline void put_flag_binding(uint8_t*& position, int slot, uint32_t value_field, bool flag) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;
  *at++ = W::tag_byte(f::Event::kLocals, wire::kLengthDelimited);
  // Slot tag and number, value tag and length, 2: the field's tag and one byte.
  *at++ = static_cast<uint8_t>(1 + W::varint_size(static_cast<uint32_t>(slot)) + 2 + 2);
  *at++ = W::tag_byte(f::Binding::kSlot, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(slot));
  *at++ = W::tag_byte(f::Binding::kValue, wire::kLengthDelimited);
  *at++ = 2;
  *at++ = W::tag_byte(value_field, wire::kVarint);
  *at++ = flag ? 1 : 0;
  position = at;
}

// Objects recorded by type and id whose type name is at most this long are written in place.
constexpr size_t kMaxInPlaceTypeName = 64;
// A binding of a slot to such an object, at most: binding, value and object heads, the type
// name and the id.
constexpr size_t kObjectBindingBytes = kPlainBindingBytes + 4 + kMaxInPlaceTypeName + 10;

// The type name to write in place for an object recorded by type and id, or nullptr.
inline const char* in_place_type_name(PyObject* value, size_t* length) {
  const char* name = Py_TYPE(value)->tp_name;
  *length = std::strlen(name);
  return *length <= kMaxInPlaceTypeName ? name : nullptr;
}

// Field `field` holding a Value of an object recorded by type and id
// (ValueCapture::identity_fingerprint) with an in_place_type_name(): the bytes encode_object()
// writes, Value{object: ObjectRef{type_name, id}}. Returns the end.
[[gnu::always_inline]] inline uint8_t* put_object_value(uint8_t* at, uint32_t field, PyObject* value) {
  using W = wire::ProtoWriter;
  size_t name_length;
  const char* name = in_place_type_name(value, &name_length);
  const uint64_t id = reinterpret_cast<uintptr_t>(value);
  const size_t object_length = 2 + name_length + 1 + W::varint_size(id);
  *at++ = W::tag_byte(field, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(2 + object_length);
  *at++ = W::tag_byte(f::Value::kObject, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(object_length);
  *at++ = W::tag_byte(f::ObjectRef::kTypeName, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(name_length);
  std::memcpy(at, name, name_length);
  at += name_length;
  *at++ = W::tag_byte(f::ObjectRef::kId, wire::kVarint);
  W::put_varint(at, id);
  return at;
}

// ASCII strs of at most this many characters (and within --max-string) are written in place,
// in a binding of at most kObjectBindingBytes.
constexpr Py_ssize_t kMaxInPlaceStr = 64;

// `value` is an exact str that put_str_value() writes whole.
inline bool str_fits_in_place(PyObject* value, size_t max_string) {
  if (Py_TYPE(value) != &PyUnicode_Type || !compat::str_is_ready(value) || !PyUnicode_IS_ASCII(value)) return false;
  const Py_ssize_t length = PyUnicode_GET_LENGTH(value);
  return length <= kMaxInPlaceStr && static_cast<size_t>(length) <= max_string;
}

// A str_fits_in_place(), and its fingerprint (hashing it, as fingerprint_at() would, when its
// hash is not cached yet).
inline bool in_place_str(PyObject* value, size_t max_string, uint64_t* fingerprint) {
  if (!str_fits_in_place(value, max_string)) return false;
  const Py_ssize_t length = PyUnicode_GET_LENGTH(value);
  Py_hash_t hash = reinterpret_cast<PyASCIIObject*>(value)->hash;
  if (hash == -1) hash = PyObject_Hash(value);  // an exact str: no user code, no failure
  if (hash == -1) {
    PyErr_Clear();
    return false;
  }
  *fingerprint = detail::str_fingerprint(length, hash);
  return true;
}

// Field `field` holding a Value of an in_place_str(): the bytes encode_at() writes for it,
// Value{str: Text{text, length}}. Returns the end.
[[gnu::always_inline]] inline uint8_t* put_str_value(uint8_t* at, uint32_t field, PyObject* value) {
  using W = wire::ProtoWriter;
  const size_t length = static_cast<size_t>(PyUnicode_GET_LENGTH(value));
  const size_t text_length = 2 + length + 1 + W::varint_size(length);
  *at++ = W::tag_byte(field, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(2 + text_length);
  *at++ = W::tag_byte(f::Value::kStr, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(text_length);
  *at++ = W::tag_byte(f::Text::kText, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(length);
  std::memcpy(at, PyUnicode_DATA(value), length);
  at += length;
  *at++ = W::tag_byte(f::Text::kLength, wire::kVarint);
  W::put_varint(at, length);
  return at;
}

// `value` is what the in-place writers take besides scalars, an in_place_str() or an object
// recorded by type and id with an in_place_type_name(), and its fingerprint. Needs the capture.
inline bool sized_in_place(PyObject* value, uint64_t* fingerprint) {
  size_t name_length;
  return (g_capture->identity_fingerprint(value, fingerprint) && in_place_type_name(value, &name_length)) ||
         in_place_str(value, g_capture->max_string(), fingerprint);
}

// Whether sized_in_place() takes `value`, without its fingerprint. Needs the capture.
inline bool fits_in_place(PyObject* value) {
  uint64_t identity;
  size_t name_length;
  return (g_capture->identity_fingerprint(value, &identity) && in_place_type_name(value, &name_length)) ||
         str_fits_in_place(value, g_capture->max_string());
}

// A binding of a slot to a sized_in_place() value.
[[gnu::always_inline]] inline void put_sized_binding(uint8_t*& position, int slot, PyObject* value) {
  using W = wire::ProtoWriter;
  uint8_t* at = position;
  *at++ = W::tag_byte(f::Event::kLocals, wire::kLengthDelimited);
  uint8_t* length_at = at++;
  *at++ = W::tag_byte(f::Binding::kSlot, wire::kVarint);
  W::put_varint(at, static_cast<uint32_t>(slot));
  at = Py_TYPE(value) == &PyUnicode_Type ? put_str_value(at, f::Binding::kValue, value)
                                         : put_object_value(at, f::Binding::kValue, value);
  *length_at = static_cast<uint8_t>(at - length_at - 1);  // below kObjectBindingBytes: one byte
  position = at;
}

// An unbound slot, or one bound to what ValueCapture::scalar_fingerprint() takes; in an event
// of emit_scalar_locals(), also to a sized_in_place() value.
[[gnu::always_inline]] inline void put_plain_binding(uint8_t*& at, int slot, PyObject* value) {
  long long small;
  if (!value)
    put_unbound_binding(at, slot);
  else if (Py_TYPE(value) == &PyLong_Type && compat::long_small_value(value, &small))
    put_small_int_binding(at, slot, small);
  else if (Py_TYPE(value) == &PyFloat_Type)
    put_float_binding(at, slot, PyFloat_AS_DOUBLE(value));
  else if (value == Py_None)
    put_flag_binding(at, slot, f::Value::kNone, true);
  else if (Py_TYPE(value) == &PyBool_Type)
    put_flag_binding(at, slot, f::Value::kBool, value == Py_True);
  else
    put_sized_binding(at, slot, value);
}

// A slot bound to a value that is not plain (put_plain_binding): redacted, or walked into `scan`.
void encode_binding_slot(EventEncoder& event, const CodeMeta& meta, int slot, PyObject* value,
                         const ContainerScan& scan, ItemsShadow& base, bool full) {
  auto& writer = event.writer();
  auto binding = writer.begin_nested(f::Event::kLocals);
  writer.varint_field(f::Binding::kSlot, static_cast<uint32_t>(slot));
  if (meta.redacted[slot]) {
    capture().encode_redacted(writer, f::Binding::kValue);
    base.items = 0;
  } else {
    encode_binding_value(writer, event.value_budget(), value, scan, base, full);
  }
  writer.end_nested(binding);
}

constexpr uint32_t kNoScanIndex = UINT32_MAX;

// The slots find_slot_changes() found changed: on the stack for most frames.
struct SlotChanges {
  static constexpr size_t kOnStack = 64;
  SlotChange on_stack[kOnStack];  // not initialised: written before read
  SlotChange* items;
  size_t count = 0;
  SlotChanges(ThreadState& thread, size_t slots) : items(on_stack) {
    if (slots <= kOnStack) return;
    thread.slot_changes.resize(slots);
    items = thread.slot_changes.data();
  }
  const SlotChange* begin() const { return items; }
  const SlotChange* end() const { return items + count; }
};

// Fast locals, first pass: compares each slot's fingerprint with the shadow and lists in
// `changes` (room for every slot) what goes out with the event (every bound slot when `full`).
// Returns the most the event can take when every change is plain, else SIZE_MAX.
size_t find_slot_changes(ThreadState& thread, FrameShadow& shadow, bool full, SlotChanges& changes) {
  const CodeMeta& meta = *shadow.meta;
  const int slots = static_cast<int>(meta.name_ids.size());
  uint64_t* fingerprints = thread.fingerprints.data() + shadow.fingerprint_begin;
  ItemsShadow* bases = thread.items_shadows.data() + shadow.fingerprint_begin;
  PyCodeObject* code = compat::frame_code(shadow.frame);
  PyObject** frame_slots = compat::frame_slots(shadow.frame);
  const ValueCapture& values = capture();
  auto& scans = thread.slot_scans;
  changes.count = 0;
  scans.clear();
  // Walks emit_scalar_locals() made for this frame in this callback, in slot order.
  const ThreadState::WalkedSlot* next_walked = thread.walked.get();
  const ThreadState::WalkedSlot* const walked_end =
      thread.walked_frame == &shadow && !full ? next_walked + thread.walked_count : next_walked;
  bool all_plain = true;
  uint64_t changing = 0;  // FrameShadow::changing_slots, for frames of up to 64 slots
  for (int slot = 0; slot < slots; ++slot) {
    // The common case: no cells, nothing redacted.
    PyObject* value = meta.plain_slots ? frame_slots[slot]
                                       : compat::frame_local_value(shadow.frame, code, slot, meta.kinds[slot]);
    uint64_t fp;
    if (!value) {
      fp = kUnboundFingerprint;
      if (full) {
        bases[slot].items = 0;  // forget what an earlier frame left here
        fingerprints[slot] = fp;
        continue;
      }
      if (fp != fingerprints[slot]) changes.items[changes.count++] = {slot, kNoScanIndex, true, fp, value};
    } else if (ValueCapture::scalar_fingerprint(value, &fp) && (meta.plain_slots || !meta.redacted[slot])) {
      fp |= 1;
      if (full || fp != fingerprints[slot]) changes.items[changes.count++] = {slot, kNoScanIndex, true, fp, value};
    } else if (!meta.plain_slots && meta.redacted[slot]) {
      fp = kRedactedFingerprint;
      if (full || fp != fingerprints[slot]) changes.items[changes.count++] = {slot, kNoScanIndex, false, fp, value};
      all_plain = false;
    } else {
      if (slot < 64) changing |= uint64_t{1} << slot;
      ContainerScan scan;
      const ThreadState::WalkedSlot* walked = next_walked < walked_end ? next_walked : nullptr;
      if (walked && walked->slot == slot && walked->value == value) {
        fp = walked->fingerprint;  // emit_scalar_locals() has just walked it
        scan = walked->scan;
        ++next_walked;
      } else {
        scan.prefix_items = full ? 0 : bases[slot].items;
        fp = values.fingerprint(value, &scan) | 1;
      }
      if (!full && fp == fingerprints[slot]) continue;
      scans.push_back(scan);
      changes.items[changes.count++] = {slot, static_cast<uint32_t>(scans.size() - 1), false, fp, value};
      all_plain = false;
    }
  }
  thread.walked_count = 0;
  shadow.changing_slots = changing;
  shadow.scan_every_slot = false;
  return all_plain ? kInPlaceHeadBytes + changes.count * kPlainBindingBytes : SIZE_MAX;
}

constexpr ContainerScan kNoScan{};

// An event of bounded size written straight into the thread's ring chunk: no scratch buffer,
// no writer bookkeeping, no copy.
class InPlaceEvent {
 public:
  // ok() is false when the chunk has no room for `bound` bytes, or `bound` is too large to be
  // written in place; nothing is written then.
  InPlaceEvent(ThreadState& thread, size_t bound) : thread_(thread) {
    size_t room = 0;
    begin_ = thread.in_place_space(&room);
    if (!begin_ || room < bound || bound > kMaxInPlaceEventBytes) begin_ = nullptr;
  }
  bool ok() const { return begin_ != nullptr; }

  // Starts the event; then write its other fields at `at`.
  [[gnu::always_inline]] void head(wire::EventKind kind, const CodeMeta& meta, int line, size_t depth) {
    time_ = take_event_time(thread_);
    at = begin_;
    *at++ = wire::ProtoWriter::tag_byte(f::Packet::kEvent, wire::kLengthDelimited);
    length_at_ = at++;
    put_event_head(at, kind, time_.now - time_.base, meta, line, depth);
  }
  [[gnu::always_inline]] void commit() {
    const size_t body = static_cast<size_t>(at - length_at_ - 1);
    if (body >= 0x80) {  // below kMaxInPlaceEventBytes: one more length byte
      std::memmove(length_at_ + 2, length_at_ + 1, body);
      ++at;
    }
    wire::ProtoWriter::encode_varint(body, length_at_);
    thread_.commit_in_place(static_cast<size_t>(at - begin_), time_.base);
  }

  uint8_t* at = nullptr;

 private:
  ThreadState& thread_;
  uint8_t* begin_;
  uint8_t* length_at_ = nullptr;
  EventTime time_{};
};

// An event whose changed locals are all plain, given room for `bound` (find_slot_changes())
// bytes in the ring chunk; else false, having written nothing.
[[gnu::always_inline]] inline bool emit_plain_in_place(ThreadState& thread, FrameShadow& shadow, wire::EventKind kind,
                                                       int line, bool full, const SlotChanges& changes, size_t bound) {
  InPlaceEvent event(thread, bound);
  if (!event.ok()) return false;
  event.head(kind, *shadow.meta, line, thread.stack.size() - 1);
  uint8_t*& at = event.at;
  if (full && kind == wire::EventKind::kLine) {
    *at++ = wire::ProtoWriter::tag_byte(f::Event::kFullState, wire::kVarint);
    *at++ = 1;
  }
  uint64_t* fingerprints = thread.fingerprints.data() + shadow.fingerprint_begin;
  ItemsShadow* bases = thread.items_shadows.data() + shadow.fingerprint_begin;
  for (const SlotChange& change : changes) {
    put_plain_binding(at, change.slot, change.value);
    fingerprints[change.slot] = change.fingerprint;
    bases[change.slot].items = 0;
  }
  event.commit();
  return true;
}

// The scan of emit_scalar_locals(), for frames whose slots all hold their values (kPlainSlots)
// or not (cells, free variables, redacted names). False when the event needs the general path.
template <bool kPlainSlots>
[[gnu::always_inline]] inline bool scan_locals_in_place(ThreadState& thread, FrameShadow& shadow, bool full,
                                                        size_t slots, SlotChanges& changes, size_t* objects) {
  const CodeMeta& meta = *shadow.meta;
  uint64_t* fingerprints = thread.fingerprints.data() + shadow.fingerprint_begin;
  ItemsShadow* bases = thread.items_shadows.data() + shadow.fingerprint_begin;
  PyObject** frame_slots = compat::frame_slots(shadow.frame);
  PyCodeObject* code = kPlainSlots ? nullptr : compat::frame_code(shadow.frame);
  auto slot_value = [&](size_t slot) __attribute__((always_inline)) {
    if constexpr (kPlainSlots) return frame_slots[slot];
    // Cells and free variables hold their value in a cell (closures).
    return compat::frame_local_value(shadow.frame, code, static_cast<int>(slot), meta.kinds[slot]);
  };
  uint64_t changing = 0;  // FrameShadow::changing_slots of the slots visited
  uint8_t to_walk[SlotChanges::kOnStack];  // not initialised: written before read
  size_t to_walk_count = 0;
  // False: the event needs the general path.
  auto visit = [&](size_t slot) __attribute__((always_inline)) {
    PyObject* value = slot_value(slot);
    uint64_t fingerprint = kUnboundFingerprint;
    if constexpr (!kPlainSlots) {
      if (value && meta.redacted[slot]) {
        // Recorded as redacted whatever it holds: only becoming bound needs the general path.
        return !full && fingerprints[slot] == kRedactedFingerprint;
      }
    }
    if (value) {
      if (!ValueCapture::scalar_fingerprint(value, &fingerprint)) {
        // An object recorded by type and id (self) or a short ASCII str is written in place
        // when it changed; any other str or a container the reader already holds needs no
        // binding, a changed one the general path. (The capture exists once any event was
        // encoded; creating it allocates, which only guarded() may.)
        if (!g_capture) return false;
        if (sized_in_place(value, &fingerprint)) {
          // An object's type can be reassigned (__class__); a str never changes.
          if (Py_TYPE(value) != &PyUnicode_Type) changing |= uint64_t{1} << slot;
          fingerprint |= 1;
          if (full || fingerprint != fingerprints[slot]) {
            changes.items[changes.count++] = {static_cast<int>(slot), kNoScanIndex, true, fingerprint, value};
            ++*objects;
          }
          return true;
        }
        if (full) return false;
        if (ValueCapture::cached_str_fingerprint(value, &fingerprint)) return (fingerprint | 1) == fingerprints[slot];
        if (g_capture->runs_user_code()) return false;
        changing |= uint64_t{1} << slot;
        to_walk[to_walk_count++] = static_cast<uint8_t>(slot);
        return true;
      }
      fingerprint |= 1;
    } else if (full) {  // as find_slot_changes(): what the full state then writes anyway
      fingerprints[slot] = fingerprint;
      bases[slot].items = 0;
      return true;
    }
    if (full || fingerprint != fingerprints[slot])
      changes.items[changes.count++] = {static_cast<int>(slot), kNoScanIndex, true, fingerprint, value};
    return true;
  };
  // Only the slots that can have changed since the frame's last event, unless it owes a scan
  // of all of them (FrameShadow::changing_slots).
  uint64_t scanned = ~uint64_t{0};
  if (compat::kLineEventsMarkEveryLineChange && !full && !shadow.scan_every_slot && meta.slot_writes_known &&
      !compat::frame_open_to_debugger(shadow.frame)) {
    scanned = (shadow.changing_slots | meta.slots_written_after(shadow.last_line)) &
              (slots == 64 ? ~uint64_t{0} : (uint64_t{1} << slots) - 1);  // none without locals
    for (uint64_t pending = scanned; pending; pending &= pending - 1)
      if (!visit(static_cast<size_t>(__builtin_ctzll(pending)))) return false;
  } else {
    for (size_t slot = 0; slot < slots; ++slot)
      if (!visit(slot)) return false;
  }
  // Containers are walked last (a changed str above needs none of it); when one changed, the
  // general path takes over these walks.
  if (to_walk_count) {
    bool changed = false;
    for (size_t i = 0; i < to_walk_count; ++i) {
      ThreadState::WalkedSlot& walked = thread.walked[i];
      walked.slot = to_walk[i];
      walked.value = slot_value(walked.slot);
      walked.scan = ContainerScan{};
      walked.scan.prefix_items = bases[walked.slot].items;
      walked.fingerprint = g_capture->fingerprint(walked.value, &walked.scan) | 1;
      changed = changed || walked.fingerprint != fingerprints[walked.slot];
    }
    if (changed) {
      thread.walked_count = to_walk_count;
      thread.walked_frame = &shadow;
      return false;
    }
  }
  shadow.changing_slots = (shadow.changing_slots & ~scanned) | changing;
  shadow.scan_every_slot = false;
  return true;
}

// The steady state: a frame with at most SlotChanges::kOnStack fast locals whose changed
// bindings are all plain (unbound, small ints, floats, None, bools), the others unchanged since
// its last event; or any frame when locals are not captured. One scan, the event written in
// place, instead of find_slot_changes() and the scratch encoder (with record_line()'s
// shortcut, 720 -> 520 agent instructions per line event in a numeric loop). False, having
// written no event, for any other frame or event.
[[gnu::always_inline]] inline bool emit_scalar_locals(ThreadState& thread, FrameShadow& shadow, wire::EventKind kind,
                                                      int line, bool full) {
  static_assert(ThreadState::kMaxWalkedSlots >= SlotChanges::kOnStack);
  const CodeMeta& meta = *shadow.meta;
  const bool capture_locals = Agent::instance()->limits().capture_locals;
  const size_t slots = capture_locals ? meta.name_ids.size() : 0;
  thread.walked_count = 0;
  // Module-level and class-body frames keep their names in a dict: encode_dict_locals().
  if ((capture_locals && !meta.fast_locals) || slots > SlotChanges::kOnStack) return false;
  SlotChanges changes(thread, slots);
  size_t objects = 0;  // of the changes, bindings to objects and strs
  const bool in_place = meta.plain_slots ? scan_locals_in_place<true>(thread, shadow, full, slots, changes, &objects)
                                         : scan_locals_in_place<false>(thread, shadow, full, slots, changes, &objects);
  return in_place && emit_plain_in_place(thread, shadow, kind, line, full, changes,
                                         kInPlaceHeadBytes + changes.count * kPlainBindingBytes +
                                             objects * (kObjectBindingBytes - kPlainBindingBytes));
}

// Second pass: encodes the bindings find_slot_changes() listed and records them in the shadow.
void encode_slot_changes(EventEncoder& event, ThreadState& thread, FrameShadow& shadow, bool full,
                         const SlotChanges& changes) {
  const CodeMeta& meta = *shadow.meta;
  uint64_t* fingerprints = thread.fingerprints.data() + shadow.fingerprint_begin;
  ItemsShadow* bases = thread.items_shadows.data() + shadow.fingerprint_begin;
  auto& writer = event.writer();
  for (const SlotChange& change : changes) {
    const int slot = change.slot;
    uint8_t* at = change.plain ? writer.reserve(kPlainBindingBytes) : nullptr;
    if (at) {
      put_plain_binding(at, slot, change.value);
      writer.commit_reserved(at);
      bases[slot].items = 0;
    } else if (!event.room_for_binding()) {
      // Sent with the next event (the fingerprint differs from anything bound), complete.
      fingerprints[slot] = ~change.fingerprint;
      bases[slot].items = 0;
      shadow.scan_every_slot = true;
      continue;
    } else {
      const ContainerScan& scan = change.scan == kNoScanIndex ? kNoScan : thread.slot_scans[change.scan];
      encode_binding_slot(event, meta, slot, change.value, scan, bases[slot], full);
    }
    fingerprints[slot] = change.fingerprint;
  }
}

bool is_dunder(PyObject* key) {
  if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key)) return false;
  const Py_ssize_t n = PyUnicode_GET_LENGTH(key);
  const char* s = static_cast<const char*>(PyUnicode_DATA(key));
  return n >= 4 && s[0] == '_' && s[1] == '_' && s[n - 1] == '_' && s[n - 2] == '_';
}

std::string_view utf8_name(PyObject* key) {
  Py_ssize_t size = 0;
  const char* name = PyUnicode_AsUTF8AndSize(key, &size);
  if (!name) {
    PyErr_Clear();
    return {};
  }
  return {name, static_cast<size_t>(size)};
}

// `scan` is that of `value`'s fingerprint walk (unused when `value` is nullptr).
void encode_named_binding(EventEncoder& event, DictShadow::Entry& entry, PyObject* value, const ContainerScan& scan,
                          bool full) {
  auto& writer = event.writer();
  std::string_view name = utf8_name(entry.key);
  if (name.empty()) {  // not recordable: the reader holds nothing for it
    entry.items.items = 0;
    return;
  }
  auto binding = writer.begin_nested(f::Event::kLocals);
  writer.bytes_field(f::Binding::kName, name.data(), name.size());
  if (!value) {
    writer.bool_field(f::Binding::kUnbound, true);
    entry.items.items = 0;
  } else if (entry.redacted) {
    capture().encode_redacted(writer, f::Binding::kValue);
    entry.items.items = 0;
  } else {
    encode_binding_value(writer, event.value_budget(), value, scan, entry.items, full);
  }
  writer.end_nested(binding);
}

// Values recorded as {type, id} never change while bound; everything else may, in place.
bool contents_can_change(PyObject* value) {
  PyTypeObject* type = Py_TYPE(value);
  if (value == Py_None || type == &PyBool_Type || type == &PyLong_Type || type == &PyFloat_Type ||
      type == &PyUnicode_Type || type == &PyBytes_Type)
    return false;
  return PyList_CheckExact(value) || PyTuple_CheckExact(value) || PyDict_CheckExact(value) ||
         compat::is_exact_set(value) || PyFrozenSet_CheckExact(value) || Agent::instance()->limits().call_repr;
}

// Module-level and class-body frames: the namespace dict, minus dunder names, plus the bound
// fast-locals slots such frames can have (3.12+ inlines comprehensions: their variables live in
// slots of the enclosing frame and frame.f_locals shows them while bound). While the dict's
// version is unchanged only values whose contents can change are looked at again, so a
// module-level loop does not pay for every function and module in the namespace.
void encode_dict_locals(EventEncoder& event, FrameShadow& shadow, bool full) {
  if (!shadow.dict) shadow.dict.reset(new DictShadow);
  DictShadow& state = *shadow.dict;
  auto& entries = state.entries;
  size_t hint = 0;
  auto visit = [&](PyObject* key, PyObject* value, bool from_dict) {
    if (!PyUnicode_CheckExact(key)) return;
    const Py_hash_t key_hash = reinterpret_cast<PyASCIIObject*>(key)->hash;
    DictShadow::Entry* found = nullptr;
    // Dict order is stable, so the entry is almost always the next one.
    const size_t count = entries.size();
    for (size_t i = 0, at = hint; i < count; ++i, at = at + 1 == count ? 0 : at + 1) {
      auto& candidate = entries[at];
      if (candidate.key == key && candidate.key_hash == key_hash) {
        found = &candidate;
        hint = at + 1 == count ? 0 : at + 1;
        break;
      }
    }
    const bool first_sight = !found;
    if (first_sight) {
      const bool ignored = is_dunder(key);
      const bool redacted = !ignored && Agent::instance()->filters().redacts_name(utf8_name(key));
      entries.push_back({key, key_hash, 0, value, false, from_dict, false, ignored, redacted, {}});
      found = &entries.back();
    }
    found->seen = true;
    found->value = value;
    found->from_dict = from_dict;
    if (found->ignored) return;
    found->contents_can_change = contents_can_change(value);
    ContainerScan scan;
    scan.prefix_items = found->items.items;
    const uint64_t fp = capture().fingerprint(value, &scan);
    if (full || first_sight || found->fingerprint != fp) {
      if (!event.room_for_binding()) {
        found->fingerprint = ~fp;  // sent with the next event, complete
        found->items.items = 0;
        return;
      }
      encode_named_binding(event, *found, value, scan, full);
    }
    found->fingerprint = fp;
  };

  // A class body's namespace may be a dict subclass (enum's _EnumDict); its table is a dict's,
  // read without running user code.
  PyObject* namespace_dict = compat::frame_locals_dict(shadow.frame);
  const bool is_dict = namespace_dict && PyDict_Check(namespace_dict);
  uint64_t version = 0;
  const bool versioned = is_dict && compat::dict_version(namespace_dict, &version);
  const bool bindings_unchanged =
      !full && versioned && namespace_dict == state.dict && version == state.dict_version;
  for (auto& entry : entries) entry.seen = bindings_unchanged && entry.from_dict;
  if (bindings_unchanged) {
    for (auto& entry : entries) {
      if (!entry.from_dict || entry.ignored || !entry.contents_can_change) continue;
      ContainerScan scan;
      scan.prefix_items = entry.items.items;
      uint64_t fp = capture().fingerprint(entry.value, &scan);
      if (fp != entry.fingerprint) {
        if (!event.room_for_binding()) {
          entry.fingerprint = ~fp;
          entry.items.items = 0;
          continue;
        }
        encode_named_binding(event, entry, entry.value, scan, false);
      }
      entry.fingerprint = fp;
    }
  } else if (is_dict) {
    for_each_dict_item(namespace_dict, capture().runs_user_code(), [&](PyObject* key, PyObject* value) {
      visit(key, value, true);
      return true;
    });
  }
  state.dict = is_dict ? namespace_dict : nullptr;
  state.dict_version = version;

  PyCodeObject* code = compat::frame_code(shadow.frame);
  const int slots = compat::code_local_count(code);
  for (int slot = 0; slot < slots; ++slot) {
    PyObject* value = compat::frame_local_value(shadow.frame, code, slot, compat::code_local_kind(code, slot));
    if (value) visit(compat::code_local_name(code, slot), value, false);
  }
  // Names gone from the namespace were deleted.
  size_t kept = 0;
  for (auto& entry : entries) {
    if (entry.seen) {
      if (&entries[kept] != &entry) entries[kept] = entry;
      ++kept;
    } else if (!full && !entry.ignored) {
      if (!event.room_for_binding()) {
        entry.value = nullptr;    // no longer owned by the namespace: never read again
        entry.items.items = 0;
        entries[kept++] = entry;  // the deletion goes out with the next event
        continue;
      }
      encode_named_binding(event, entry, nullptr, ContainerScan{}, false);
    }
  }
  entries.resize(kept);
  // Deferred bindings are found again only by a full scan.
  if (event.incomplete()) state.dict = nullptr;
}

// emit_with_locals() for what emit_scalar_locals() does not take.
bool emit_general_locals(ThreadState& thread, FrameShadow& shadow, wire::EventKind kind, int line, bool full) {
  const bool capture_locals = Agent::instance()->limits().capture_locals;
  const bool fast_locals = capture_locals && shadow.meta->fast_locals;
  SlotChanges changes(thread, fast_locals ? shadow.meta->name_ids.size() : 0);
  const size_t bound = fast_locals ? find_slot_changes(thread, shadow, full, changes) : SIZE_MAX;
  if (bound != SIZE_MAX && emit_plain_in_place(thread, shadow, kind, line, full, changes, bound)) return true;
  EventEncoder event(thread, kind, *shadow.meta, line, thread.stack.size() - 1);
  if (full && kind == wire::EventKind::kLine) event.writer().bool_field(f::Event::kFullState, true);
  if (fast_locals)
    encode_slot_changes(event, thread, shadow, full, changes);
  else if (capture_locals)
    encode_dict_locals(event, shadow, full);
  return event.commit();
}

// An event with the frame's locals: what changed since its last event, or all of them when
// `full`. Returns false if the event did not fit or was dropped.
bool emit_with_locals(ThreadState& thread, FrameShadow& shadow, wire::EventKind kind, int line, bool full) {
  return emit_scalar_locals(thread, shadow, kind, line, full) || emit_general_locals(thread, shadow, kind, line, full);
}

void pop_frame(ThreadState& thread) {
  thread.slots_used = thread.stack.back().fingerprint_begin;
  thread.stack.pop_back();
}

// The shadow of `frame`, or nullptr. Frames above it were left without us seeing it (missed
// events): drop their shadows.
FrameShadow* find_frame(ThreadState& thread, compat::Frame frame, const CodeMeta& meta) {
  auto& stack = thread.stack;
  if (!stack.empty() && stack.back().frame == frame && stack.back().meta == &meta) return &stack.back();
  for (size_t i = stack.size(); i-- > 0;) {
    if (stack[i].frame == frame && stack[i].meta == &meta) {
      while (stack.size() > i + 1) pop_frame(thread);
      return &stack[i];
    }
  }
  return nullptr;
}

// The new frame's slot shadows keep whatever an earlier frame left there: its first event is a
// full state, which writes every one of them.
FrameShadow& push_frame(ThreadState& thread, compat::Frame frame, CodeMeta& meta) {
  const size_t begin = thread.slots_used;
  thread.slots_used += meta.name_ids.size();
  if (thread.fingerprints.size() < thread.slots_used) {
    const size_t grown = std::max(thread.slots_used, 2 * thread.fingerprints.size());
    thread.fingerprints.resize(grown);
    thread.items_shadows.resize(grown);
  }
  FrameShadow& shadow = thread.stack.emplace_back();
  shadow.frame = frame;
  shadow.meta = &meta;
  shadow.fingerprint_begin = static_cast<uint32_t>(begin);
  return shadow;
}

// A return event whose value is absent (unwinding), None, a bool, a small int, a float, a short
// str or an object recorded by type and id, written in place; else false, having written nothing.
bool emit_scalar_return(ThreadState& thread, const CodeMeta& meta, int line, size_t depth, PyObject* value) {
  using W = wire::ProtoWriter;
  long long small = 0;
  const bool is_int = value && Py_TYPE(value) == &PyLong_Type && compat::long_small_value(value, &small);
  const bool is_flag = value == Py_None || (value && Py_TYPE(value) == &PyBool_Type);
  // A short str, or an object recorded by type and id (a constructor's, a getter's result).
  const bool is_sized = value && !is_int && !is_flag && g_capture && fits_in_place(value);
  if (value && !is_flag && !is_int && !is_sized && Py_TYPE(value) != &PyFloat_Type) return false;
  InPlaceEvent event(thread, kInPlaceHeadBytes + (is_sized ? kObjectBindingBytes : kScalarValueBytes));
  if (!event.ok()) return false;
  event.head(wire::EventKind::kReturn, meta, line, depth);
  uint8_t*& at = event.at;
  if (is_sized) {
    at = Py_TYPE(value) == &PyUnicode_Type ? put_str_value(at, f::Event::kValue, value)
                                           : put_object_value(at, f::Event::kValue, value);
  } else if (is_int) {
    at = put_small_int_value(at, f::Event::kValue, W::zigzag(small));
  } else if (is_flag) {  // Value{none: true} or Value{bool: 0/1}
    *at++ = W::tag_byte(f::Event::kValue, wire::kLengthDelimited);
    *at++ = 2;
    *at++ = W::tag_byte(value == Py_None ? f::Value::kNone : f::Value::kBool, wire::kVarint);
    *at++ = value == Py_False ? 0 : 1;
  } else if (value) {
    *at++ = W::tag_byte(f::Event::kValue, wire::kLengthDelimited);
    *at++ = 9;
    put_float(at, PyFloat_AS_DOUBLE(value));
  }
  event.commit();
  return true;
}

// Under `pyrewind run`, each thread checks every so many events whether the collector asked
// to stop or is gone: a syscall (kill(pid, 0)) per 4096 events costs nothing measurable.
constexpr uint32_t kCallsPerSessionCheck = 4096;

// Counts an event towards its thread's next session check; true when this event is due to
// make it (guarded() does).
bool session_check_due(ThreadState& thread) {
  if (!Agent::instance()->checks_session_in_callbacks()) return false;
  if (thread.calls_until_session_check <= 1) return true;
  --thread.calls_until_session_check;
  return false;
}

// Runs `body` with the thread's state and a guard: any C++ failure stops tracing with a
// reason instead of reaching Python.
template <typename Body>
void guarded(const char* what, Body&& body) {
  Agent* agent = Agent::instance();
  if (!agent->tracing()) return;
  try {
    // The backends applied `pyrewind ctl` requests before calling (apply_control_requests).
    if (agent->paused() || !agent->tracing()) return;
    ThreadState* thread = ThreadState::current();
    if (!thread) return;
    if (session_check_due(*thread)) {
      thread->calls_until_session_check = kCallsPerSessionCheck;
      if (agent->session_end_requested()) {
        // Nothing of this event's state is used after this: the session, this thread's
        // state and every code object's record go.
        agent->close_session();
        return;
      }
    }
    body(*thread);
  } catch (const std::exception& e) {
    std::string reason = std::string("internal error while recording a ") + what + " event: " + e.what();
    agent->stop(reason.c_str());
  }
}

// The thread's innermost frame when it is `frame` running `meta` and this event is not due to
// check the session: line and return events there that need no allocation take a shortcut past
// guarded() and find_frame().
[[gnu::always_inline]] inline FrameShadow* innermost_frame(ThreadState* thread, const CodeMeta& meta,
                                                           compat::Frame frame) {
  if (!thread || thread->stack.empty()) return nullptr;
  FrameShadow& innermost = thread->stack.back();
  if (innermost.frame != frame || innermost.meta != &meta || session_check_due(*thread)) return nullptr;
  return &innermost;
}

void emit_pending_handled(ThreadState& thread, FrameShadow& shadow, int line) {
  if (shadow.pending_exception.empty()) return;
  std::string info = std::move(shadow.pending_exception);
  shadow.pending_exception.clear();
  EventEncoder event(thread, wire::EventKind::kExceptionHandled, *shadow.meta, line, thread.stack.size() - 1);
  event.writer().bytes_field(f::Event::kException, info.data(), info.size());
  event.commit();
}

}  // namespace

void set_infer_exception_handled(bool on) { g_infer_exception_handled = on; }
void set_sticky_frame_line(bool on) { g_sticky_frame_line = on; }

void reset_recorder() {
  delete g_capture;
  g_capture = nullptr;
}

void record_call(CodeMeta& meta, compat::Frame frame, int line) {
  guarded("call", [&](ThreadState& thread) {
    if (!thread.announce(meta)) return;
    FrameShadow& shadow = push_frame(thread, frame, meta);
    shadow.last_line = line;
    if (!emit_with_locals(thread, shadow, wire::EventKind::kCall, line, true)) shadow.full_state_due = true;
  });
}

void record_line(CodeMeta& meta, compat::Frame frame, int line) {
  ++meta.window_lines;  // --max-overhead picks the busiest code by these
  // The steady state: the innermost frame, owing neither a full state nor a handled exception,
  // whose locals changed only to scalars (emit_scalar_locals()).
  ThreadState* thread = ThreadState::existing();
  FrameShadow* innermost = innermost_frame(thread, meta, frame);
  const bool steady = innermost && !innermost->full_state_due && innermost->pending_exception.empty();
  if (steady && emit_scalar_locals(*thread, *innermost, wire::EventKind::kLine, line, false)) {
    innermost->last_line = line;
    return;
  }
  guarded("line", [&](ThreadState& thread) {
    if (!thread.announce(meta)) return;
    FrameShadow* shadow = find_frame(thread, frame, meta);
    if (!shadow) {
      // First sight of a frame already running (tracing started inside it).
      shadow = &push_frame(thread, frame, meta);
      shadow->full_state_due = true;
    }
    if (g_infer_exception_handled) emit_pending_handled(thread, *shadow, line);
    const bool full = shadow->full_state_due;
    // A steady frame's scalar scan has just failed: not again.
    shadow->full_state_due = steady ? !emit_general_locals(thread, *shadow, wire::EventKind::kLine, line, full)
                                    : !emit_with_locals(thread, *shadow, wire::EventKind::kLine, line, full);
    shadow->last_line = line;  // after the scan, which reads the previous event's line
  });
}

void record_return(CodeMeta& meta, compat::Frame frame, int line, PyObject* value) {
  // The innermost frame returning what emit_scalar_return() writes (or unwinding).
  ThreadState* thread = ThreadState::existing();
  if (FrameShadow* innermost = innermost_frame(thread, meta, frame)) {
    const int returned_line = g_sticky_frame_line && innermost->last_line > 0 ? innermost->last_line : line;
    if (emit_scalar_return(*thread, meta, returned_line, thread->stack.size() - 1, value)) {
      pop_frame(*thread);
      return;
    }
  }
  guarded("return", [&](ThreadState& thread) {
    if (!thread.announce(meta)) return;
    FrameShadow* shadow = find_frame(thread, frame, meta);
    const size_t depth = shadow ? thread.stack.size() - 1 : thread.stack.size();
    if (g_sticky_frame_line && shadow && shadow->last_line > 0) line = shadow->last_line;
    if (!emit_scalar_return(thread, meta, line, depth, value)) {
      EventEncoder event(thread, wire::EventKind::kReturn, meta, line, depth);
      if (value) capture().encode(event.writer(), f::Event::kValue, value, event.value_budget());
      event.commit();
    }
    if (shadow) pop_frame(thread);
  });
}

void record_exception(CodeMeta& meta, compat::Frame frame, int line, PyObject* exception) {
  guarded("exception", [&](ThreadState& thread) {
    if (!thread.announce(meta)) return;
    FrameShadow* shadow = find_frame(thread, frame, meta);
    if (!shadow) {
      shadow = &push_frame(thread, frame, meta);
      shadow->full_state_due = true;
    }
    if (g_sticky_frame_line && shadow->last_line > 0) line = shadow->last_line;
    shadow->scan_every_slot = true;  // a handler may bind before the next line event
    EventEncoder event(thread, wire::EventKind::kException, meta, line, thread.stack.size() - 1);
    const size_t info_start = event.writer().size();
    if (exception) capture().encode_exception(event.writer(), f::Event::kException, exception);
    if (g_infer_exception_handled && exception) {
      // Keep the ExceptionInfo body (without its tag and length) for the handled event.
      const uint8_t* begin = event.writer().data() + info_start;
      const uint8_t* end = event.writer().data() + event.writer().size();
      wire::ProtoReader reader(begin, static_cast<size_t>(end - begin));
      wire::Field field;
      if (reader.next(field) && field.wire_type == wire::kLengthDelimited)
        shadow->pending_exception.assign(reinterpret_cast<const char*>(field.bytes), field.size);
    }
    event.commit();
  });
}

void record_exception_handled(CodeMeta& meta, compat::Frame frame, int line, PyObject* exception) {
  guarded("exception-handled", [&](ThreadState& thread) {
    if (!thread.announce(meta)) return;
    FrameShadow* shadow = find_frame(thread, frame, meta);
    const size_t depth = shadow ? thread.stack.size() - 1 : thread.stack.size();
    if (shadow) shadow->scan_every_slot = true;  // the handler binds (except ... as e)
    EventEncoder event(thread, wire::EventKind::kExceptionHandled, meta, line, depth);
    if (exception) capture().encode_exception(event.writer(), f::Event::kException, exception);
    event.commit();
  });
}

}  // namespace pyrewind::agent
