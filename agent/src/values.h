// Structured capture of Python values within the capture limits, without running user code
// (unless --repr) and without allocating Python objects.
//
// `fingerprint` and `encode` walk a value by the same rules, so two values with the same
// fingerprint encode to the same bytes (up to 64-bit hash collisions). The recorder uses this
// to send a local again only when what would be recorded changed: a mutation anywhere within
// the limits (an item appended to a list reached through a dict) changes the fingerprint,
// and so does a new object that happens to reuse a freed object's address.
//
// A container's fingerprint is its length folded into a chain over its kind, id and items, and
// the walk reports that chain (ContainerScan), so the recorder can tell in the same walk that a
// changed local is the same container with the same first items and send only what follows
// them (Container.reused_items).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "compat/compat.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_writer.h"
#include "src/agent.h"

namespace pyrewind::agent {

namespace detail {
namespace tags {
enum Tag : uint64_t {
  kTagNone = 1, kTagBool, kTagInt, kTagBigInt, kTagFloat, kTagStr, kTagBytes, kTagList, kTagTuple,
  kTagDict, kTagSet, kTagFrozenSet, kTagObject, kTagCut,
};
}  // namespace tags

// One step of the fingerprint chain: a bijection of `h` for each `v`, so two sequences that
// differ in a single item never collide.
inline uint64_t step(uint64_t h, uint64_t v) { return (std::rotl(h, 26) ^ v) * 0x9E3779B97F4A7C15ULL; }

// A str with a cached hash.
inline uint64_t str_fingerprint(Py_ssize_t length, Py_hash_t hash) {
  return step(step(tags::kTagStr, static_cast<uint64_t>(length)), static_cast<uint64_t>(hash));
}

// An object recorded by its type and id alone.
inline uint64_t object_fingerprint(PyObject* value) {
  return step(step(tags::kTagObject, reinterpret_cast<uintptr_t>(Py_TYPE(value))), reinterpret_cast<uintptr_t>(value));
}

inline uint64_t float_fingerprint(PyObject* value) {
  const double d = PyFloat_AS_DOUBLE(value);
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return step(tags::kTagFloat, bits);
}
}  // namespace detail

// Writes a Value holding the small int with zigzag encoding `zigzag` as field `field` (the same
// bytes as the general nested path, without length patching); returns the end. Needs 13 bytes.
inline uint8_t* put_small_int_value(uint8_t* at, uint32_t field, uint64_t zigzag) {
  using W = wire::ProtoWriter;
  *at++ = W::tag_byte(field, wire::kLengthDelimited);
  *at++ = static_cast<uint8_t>(1 + W::varint_size(zigzag));
  *at++ = W::tag_byte(wire::fields::Value::kInt, wire::kVarint);
  W::put_varint(at, zigzag);
  return at;
}

// What one fingerprint walk learned about a top-level container.
struct ContainerScan {
  uint32_t prefix_items = 0;   // in: report the chain after this many items (0: not needed)
  bool is_container = false;   // out; the caller clears it before each walk
  bool prefix_found = false;   // the value has at least `prefix_items` items: prefix_hash is set
  wire::ContainerKind kind = wire::ContainerKind::kList;
  uint32_t items = 0;          // items a record of the value holds (0 when cut by depth)
  uint64_t items_hash = 0;     // chain over those items
  uint64_t prefix_hash = 0;    // chain over the first `prefix_items` of them
};

// Visits every (key, value) of a dict in order, without allocating, until `visit` returns
// false. `user_code_runs`: `visit` may run user code (--repr), which could resize the table
// under a walk of it in place; PyDict_Next walks it then (and split tables always).
template <typename Visit>
void for_each_dict_item(PyObject* dict, bool user_code_runs, Visit&& visit) {
  PyObject* const* entry;
  Py_ssize_t entries;
  size_t stride;
  // Reading the table in place costs a fifth of a PyDict_Next call per item.
  if (!user_code_runs && compat::dict_combined_entries(dict, &entry, &entries, &stride)) {
    for (PyObject* const* const end = entry + entries * stride; entry != end; entry += stride) {
      if (entry[1] && !visit(entry[0], entry[1])) return;  // no value: a deleted entry
    }
    return;
  }
  Py_ssize_t position = 0;
  PyObject *key, *value;
  while (PyDict_Next(dict, &position, &key, &value)) {
    if (!visit(key, value)) return;
  }
}

class ValueCapture {
 public:
  explicit ValueCapture(const CaptureLimits& limits) : limits_(limits) {}

  // Inline for the common scalars; everything else walks the value. `scan`, if given, is
  // filled when `value` is a container.
  uint64_t fingerprint(PyObject* value, ContainerScan* scan = nullptr) const {
    uint64_t fp;
    return scalar_fingerprint(value, &fp) ? fp : fingerprint_at(value, 0, nullptr, scan);
  }
  // The fingerprint of a small int, a float, None or a bool (as fingerprint_at gives it);
  // false for any other value.
  static bool scalar_fingerprint(PyObject* value, uint64_t* fp) {
    PyTypeObject* type = Py_TYPE(value);
    long long small;
    if (type == &PyLong_Type && compat::long_small_value(value, &small)) {
      *fp = detail::step(detail::tags::kTagInt, static_cast<uint64_t>(small));
    } else if (type == &PyFloat_Type) {
      *fp = detail::float_fingerprint(value);
    } else if (value == Py_None) {
      *fp = detail::tags::kTagNone;
    } else if (type == &PyBool_Type) {
      *fp = detail::step(detail::tags::kTagBool, value == Py_True);
    } else {
      return false;
    }
    return true;
  }
  // The fingerprint of an exact str whose hash is cached (most str locals), without hashing:
  // false for any other value.
  static bool cached_str_fingerprint(PyObject* value, uint64_t* fp) {
    if (Py_TYPE(value) != &PyUnicode_Type) return false;
    const Py_hash_t cached = reinterpret_cast<PyASCIIObject*>(value)->hash;
    if (cached == -1 || !compat::str_is_ready(value)) return false;
    *fp = detail::str_fingerprint(PyUnicode_GET_LENGTH(value), cached);
    return true;
  }
  // --repr: walking a value may run user code.
  bool runs_user_code() const { return limits_.call_repr; }
  uint32_t max_string() const { return limits_.max_string; }
  // The fingerprint of an object recorded by its type and id alone (not with --repr): anything
  // but None, bool, int, float, str, bytes and the exact containers; false for those.
  bool identity_fingerprint(PyObject* value, uint64_t* fp) const {
    PyTypeObject* type = Py_TYPE(value);
    if (limits_.call_repr || value == Py_None || type == &PyBool_Type || type == &PyLong_Type ||
        type == &PyFloat_Type || type == &PyUnicode_Type || type == &PyBytes_Type || type == &PyList_Type ||
        type == &PyTuple_Type || type == &PyDict_Type || type == &PySet_Type || type == &PyFrozenSet_Type)
      return false;
    *fp = detail::object_fingerprint(value);
    return true;
  }
  // Encodes `value` as a pyrewind.v1.Value in field `field`, using at most about `budget`
  // bytes of `writer`: containers and strings that would exceed it are cut and marked.
  // `reused_items` > 0: `value` is a container whose first `reused_items` items the reader
  // already holds (a ContainerScan prefix matched); only the items after them are written.
  // Returns false when the budget cut something, so the record holds less than the
  // fingerprint describes.
  bool encode(wire::ProtoWriter& writer, uint32_t field, PyObject* value, size_t budget,
              uint32_t reused_items = 0) const {
    long long small;
    if (Py_TYPE(value) == &PyLong_Type && compat::long_small_value(value, &small)) {  // inline: most locals
      auto nested = writer.begin_nested(field);
      writer.sint_field(wire::fields::Value::kInt, small);
      writer.end_nested(nested);
      return true;
    }
    cut_by_budget_ = false;
    encode_at(writer, field, value, 0, nullptr, writer.size() + budget, reused_items);
    return !cut_by_budget_;
  }
  void encode_redacted(wire::ProtoWriter& writer, uint32_t field) const;

  // Encodes a pyrewind.v1.ExceptionInfo: the type name and, for builtin exception types, a
  // message that needs no user code: args[0] when it is the only argument and an exact str,
  // "" without arguments; otherwise no message (str() of anything else could run user code).
  void encode_exception(wire::ProtoWriter& writer, uint32_t field, PyObject* exception) const;

 private:
  struct Path;  // the containers being walked, for cycle detection
  // Item chains of dicts of atoms by identity and version (direct-mapped; GIL-serialised).
  struct DictMemo {
    PyObject* dict = nullptr;
    uint64_t version = 0;
    uint64_t items_hash = 0;
    uint32_t items = 0;
    uint32_t depth = 0;
  };
  static constexpr size_t kDictMemoSlots = 251;
  bool is_atom(PyObject* value) const;
  uint64_t fingerprint_at(PyObject* value, uint32_t depth, const Path* path, ContainerScan* scan) const;
  uint64_t item_fingerprint(PyObject* item, uint32_t depth, const Path* path, bool* atoms_only) const;
  void encode_at(wire::ProtoWriter& writer, uint32_t field, PyObject* value, uint32_t depth,
                 const Path* path, size_t budget_end, uint32_t reused_items = 0) const;
  void encode_container(wire::ProtoWriter& writer, PyObject* value, uint32_t depth, const Path* path,
                        size_t budget_end, uint32_t reused_items) const;
  void encode_object(wire::ProtoWriter& writer, PyObject* value, size_t budget_end) const;
  // Writes the run of small-int items of a list or tuple from item `first` when the budget holds
  // them all (no user code runs: not with --repr); returns the index of the first item left.
  size_t encode_small_int_items(wire::ProtoWriter& writer, PyObject* value, wire::ContainerKind kind, size_t first,
                                size_t budget_end) const;

  const CaptureLimits& limits_;
  mutable std::array<DictMemo, kDictMemoSlots> dict_memo_{};
  mutable bool cut_by_budget_ = false;  // set by the encode in progress
};

}  // namespace pyrewind::agent
