#include "src/values.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "proto/wire/fields.h"

namespace pyrewind::agent {
namespace f = wire::fields;

namespace {

constexpr uint32_t kMaxExactIntBits = 1024;
constexpr Py_ssize_t kHashOnceChars = 4096;
constexpr size_t kItemReserve = 64;  // bytes kept free to close open messages after a cut
constexpr size_t kSmallIntItemBytes = 13;  // a Value with a small int: tag, length, tag, varint

using detail::step;
using detail::str_fingerprint;
using namespace detail::tags;

uint64_t hash_bytes(const void* data, size_t size, uint64_t h) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = step(h, word);
  }
  uint64_t tail = 0;
  for (size_t shift = 0; i < size; ++i, shift += 8) tail |= static_cast<uint64_t>(bytes[i]) << shift;
  return step(h, tail ^ size);
}

inline uint64_t object_id(PyObject* value) { return reinterpret_cast<uintptr_t>(value); }

wire::ContainerKind container_kind(PyObject* value, bool* is_container) {
  *is_container = true;
  if (PyList_CheckExact(value)) return wire::ContainerKind::kList;
  if (PyTuple_CheckExact(value)) return wire::ContainerKind::kTuple;
  if (PyDict_CheckExact(value)) return wire::ContainerKind::kDict;
  if (compat::is_exact_set(value)) return wire::ContainerKind::kSet;
  if (PyFrozenSet_CheckExact(value)) return wire::ContainerKind::kFrozenSet;
  *is_container = false;
  return wire::ContainerKind::kList;
}

// Visits the first `limit` items of an exact container (dict: key then value per item) without
// allocating, except the first `skip` of them, which are only counted. Stops early when `visit`
// returns false. Returns the number of items counted. `user_code_runs`: `visit` may run user
// code (--repr), which can resize the container under the walk.
template <typename Visit>
size_t for_each_item(PyObject* value, wire::ContainerKind kind, size_t limit, bool user_code_runs, Visit&& visit,
                     size_t skip = 0) {
  size_t count = 0;
  switch (kind) {
    case wire::ContainerKind::kList:
      // Size and items re-read at each step: with --repr, user code runs inside `visit`.
      count = std::min({skip, limit, static_cast<size_t>(PyList_GET_SIZE(value))});
      while (count < limit && count < static_cast<size_t>(PyList_GET_SIZE(value))) {
        if (!visit(PyList_GET_ITEM(value, count++), nullptr)) break;
      }
      break;
    case wire::ContainerKind::kTuple: {
      const size_t end = std::min(static_cast<size_t>(PyTuple_GET_SIZE(value)), limit);
      for (count = std::min(skip, end); count < end;) {
        if (!visit(PyTuple_GET_ITEM(value, count++), nullptr)) break;
      }
      break;
    }
    case wire::ContainerKind::kDict:
      for_each_dict_item(value, user_code_runs, [&](PyObject* key, PyObject* item) __attribute__((always_inline)) {
        if (count >= limit) return false;
        if (count++ < skip) return true;
        return visit(key, item);
      });
      break;
    case wire::ContainerKind::kSet:
    case wire::ContainerKind::kFrozenSet: {
      Py_ssize_t position = 0;
      PyObject* key;
      while (count < limit && compat::set_next_entry(value, &position, &key)) {
        if (count++ < skip) continue;
        if (!visit(key, nullptr)) break;
      }
      break;
    }
  }
  return count;
}

// The item array of an exact list or tuple.
PyObject* const* sequence_items(PyObject* value, wire::ContainerKind kind) {
  return kind == wire::ContainerKind::kList ? reinterpret_cast<PyListObject*>(value)->ob_item
                                            : reinterpret_cast<PyTupleObject*>(value)->ob_item;
}

Py_ssize_t container_length(PyObject* value, wire::ContainerKind kind) {
  switch (kind) {
    case wire::ContainerKind::kList: return PyList_GET_SIZE(value);
    case wire::ContainerKind::kTuple: return PyTuple_GET_SIZE(value);
    case wire::ContainerKind::kDict: return PyDict_GET_SIZE(value);
    default: return PySet_GET_SIZE(value);
  }
}

// Appends the UTF-8 encoding of the first `max_chars` code points of a ready str to `out`
// (capacity `capacity` bytes); lone surrogates become U+FFFD. Returns bytes written and sets
// `chars` to the code points taken.
size_t utf8_prefix(PyObject* text, size_t max_chars, char* out, size_t capacity, size_t* chars) {
  const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
  const int kind = PyUnicode_KIND(text);
  const void* data = PyUnicode_DATA(text);
  size_t written = 0, taken = 0;
  if (PyUnicode_IS_ASCII(text)) {
    taken = std::min<size_t>({static_cast<size_t>(length), max_chars, capacity});
    std::memcpy(out, data, taken);
    *chars = taken;
    return taken;
  }
  for (Py_ssize_t i = 0; i < length && taken < max_chars; ++i) {
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
    char encoded[4];
    size_t n;
    if (c < 0x80) {
      encoded[0] = static_cast<char>(c);
      n = 1;
    } else if (c < 0x800) {
      encoded[0] = static_cast<char>(0xC0 | (c >> 6));
      encoded[1] = static_cast<char>(0x80 | (c & 0x3F));
      n = 2;
    } else if (c < 0x10000) {
      encoded[0] = static_cast<char>(0xE0 | (c >> 12));
      encoded[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      encoded[2] = static_cast<char>(0x80 | (c & 0x3F));
      n = 3;
    } else {
      encoded[0] = static_cast<char>(0xF0 | (c >> 18));
      encoded[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      encoded[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      encoded[3] = static_cast<char>(0x80 | (c & 0x3F));
      n = 4;
    }
    if (written + n > capacity) break;
    std::memcpy(out + written, encoded, n);
    written += n;
    ++taken;
  }
  *chars = taken;
  return written;
}

// A small int in a Value field, the most common item, written without nested-length
// patching (the same bytes as the general path). False for anything else, or without room.
bool encode_small_int(wire::ProtoWriter& writer, uint32_t field, PyObject* value) {
  using W = wire::ProtoWriter;
  long long small;
  if (Py_TYPE(value) != &PyLong_Type || !compat::long_small_value(value, &small)) return false;
  uint8_t* at = writer.reserve(16);
  if (!at) return false;
  writer.commit_reserved(put_small_int_value(at, field, W::zigzag(small)));
  return true;
}

}  // namespace

struct ValueCapture::Path {
  PyObject* container;
  const Path* parent;
  bool contains(PyObject* value) const {
    for (const Path* p = this; p; p = p->parent)
      if (p->container == value) return true;
    return false;
  }
};

// An atom's recorded form cannot change while a container holds it (no --repr: objects are
// recorded as type and id).
inline bool ValueCapture::is_atom(PyObject* value) const {
  PyTypeObject* type = Py_TYPE(value);
  if (value == Py_None || type == &PyBool_Type || type == &PyLong_Type || type == &PyFloat_Type ||
      type == &PyUnicode_Type || type == &PyBytes_Type)
    return true;
  bool is_container;
  container_kind(value, &is_container);
  return !is_container && !limits_.call_repr;
}

// A container's item: the items most containers hold (str with a cached hash, small ints) are
// fingerprinted without a call, to the same value fingerprint_at gives; a local holding a long
// list is walked at every line. Clears `*atoms_only` for an item that is no atom.
[[gnu::always_inline]] inline uint64_t ValueCapture::item_fingerprint(PyObject* item, uint32_t depth, const Path* path,
                                                                      bool* atoms_only) const {
  PyTypeObject* type = Py_TYPE(item);
  if (type == &PyUnicode_Type) {
    const Py_hash_t cached = reinterpret_cast<PyASCIIObject*>(item)->hash;
    if (cached != -1 && compat::str_is_ready(item)) return str_fingerprint(PyUnicode_GET_LENGTH(item), cached);
  } else if (type == &PyLong_Type) {
    long long small;
    if (compat::long_small_value(item, &small)) return step(kTagInt, static_cast<uint64_t>(small));
  }
  if (!is_atom(item)) *atoms_only = false;
  return fingerprint_at(item, depth, path, nullptr);
}

uint64_t ValueCapture::fingerprint_at(PyObject* value, uint32_t depth, const Path* path, ContainerScan* scan) const {
  if (value == Py_None) return kTagNone;
  PyTypeObject* type = Py_TYPE(value);
  if (type == &PyBool_Type) return step(kTagBool, value == Py_True);
  if (type == &PyLong_Type) {
    long long small;
    if (compat::long_small_value(value, &small)) return step(kTagInt, static_cast<uint64_t>(small));
    int overflow = 0;
    small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (!overflow) return step(kTagInt, static_cast<uint64_t>(small));
    size_t bits = _PyLong_NumBits(value);
    uint64_t h = step(step(kTagBigInt, bits), overflow < 0);
    if (bits <= kMaxExactIntBits) {
      unsigned char bytes[kMaxExactIntBits / 8 + 1];
      if (compat::long_to_bytes(value, bytes, bits / 8 + 1) == 0) h = hash_bytes(bytes, bits / 8 + 1, h);
    }
    return h;
  }
  if (type == &PyFloat_Type) return detail::float_fingerprint(value);
  if (type == &PyUnicode_Type && compat::str_is_ready(value)) {
    const Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    uint64_t h = step(kTagStr, static_cast<uint64_t>(length));
    Py_hash_t cached = reinterpret_cast<PyASCIIObject*>(value)->hash;
    // An exact str caches its hash in itself, as any dict lookup would; short ones are hashed
    // once here so the next fingerprints of the same string cost nothing.
    if (cached == -1 && length <= kHashOnceChars) {
      cached = PyObject_Hash(value);
      if (cached == -1) PyErr_Clear();
    }
    if (cached != -1) return str_fingerprint(length, cached);
    const size_t chars = std::min<size_t>(static_cast<size_t>(length), limits_.max_string);
    return hash_bytes(PyUnicode_DATA(value), chars * PyUnicode_KIND(value), h);
  }
  if (type == &PyBytes_Type) {
    const Py_ssize_t length = PyBytes_GET_SIZE(value);
    const size_t kept = std::min<size_t>(static_cast<size_t>(length), limits_.max_string);
    return hash_bytes(PyBytes_AS_STRING(value), kept, step(kTagBytes, static_cast<uint64_t>(length)));
  }
  bool is_container;
  wire::ContainerKind kind = container_kind(value, &is_container);
  if (is_container) {
    const Py_ssize_t length = container_length(value, kind);
    // The items chain starts from the container's kind and id; the length is folded in last.
    uint64_t h = step(step(kTagList, static_cast<uint64_t>(kind)), object_id(value));
    size_t items = 0;
    bool prefix_found = false;
    uint64_t prefix_hash = 0;
    // A dict's version changes with every mutation and is unique across dicts (PEP 509), so a
    // dict of atoms seen before with the same version has the same items.
    DictMemo* memo = nullptr;
    uint64_t version = 0;
    if (kind == wire::ContainerKind::kDict && compat::dict_version(value, &version))
      memo = &dict_memo_[(object_id(value) >> 4) % kDictMemoSlots];
    if (depth >= limits_.max_depth || (path && path->contains(value))) {
      h = step(h, kTagCut);
    } else if (memo && memo->dict == value && memo->version == version && memo->depth == depth) {
      h = memo->items_hash;
      items = memo->items;
      prefix_found = scan && scan->prefix_items == items;
      prefix_hash = h;
    } else if (!limits_.call_repr &&
               (kind == wire::ContainerKind::kList || kind == wire::ContainerKind::kTuple)) {
      // No user code can run during this walk, so the item array and its size stay put: walk
      // the array itself (a list local is walked at every line).
      PyObject* const* array = sequence_items(value, kind);
      items = std::min<size_t>(static_cast<size_t>(length), limits_.max_items);
      Path here{value, path};
      bool atoms_only;  // not needed: lists and tuples are not memoised
      size_t next = 0;
      if (scan && scan->prefix_items && scan->prefix_items <= items) {
        for (; next < scan->prefix_items; ++next)
          h = step(h, item_fingerprint(array[next], depth + 1, &here, &atoms_only));
        prefix_found = true;
        prefix_hash = h;
      }
      for (; next < items; ++next) h = step(h, item_fingerprint(array[next], depth + 1, &here, &atoms_only));
    } else {
      // Only a top-level walk records a prefix: the recorder's delta base has that many items.
      const size_t prefix_at = scan && scan->prefix_items ? scan->prefix_items : SIZE_MAX;
      Path here{value, path};
      bool atoms_only = true;
      size_t seen = 0;
      auto visit = [&](PyObject* item, PyObject* dict_value) __attribute__((always_inline)) {
        if (seen++ == prefix_at) [[unlikely]] {
          prefix_found = true;
          prefix_hash = h;
        }
        h = step(h, item_fingerprint(item, depth + 1, &here, &atoms_only));
        if (dict_value) h = step(h, item_fingerprint(dict_value, depth + 1, &here, &atoms_only));
        return true;
      };
      items = for_each_item(value, kind, limits_.max_items, limits_.call_repr, visit);
      if (items == prefix_at) {
        prefix_found = true;
        prefix_hash = h;
      }
      if (memo && atoms_only) *memo = {value, version, h, static_cast<uint32_t>(items), depth};
    }
    if (scan) {
      scan->is_container = true;
      scan->kind = kind;
      scan->items = static_cast<uint32_t>(items);
      scan->items_hash = h;
      scan->prefix_found = prefix_found;
      scan->prefix_hash = prefix_hash;
    }
    return step(h, static_cast<uint64_t>(length));
  }
  uint64_t h = detail::object_fingerprint(value);
  if (limits_.call_repr) {
    // With --repr a user object's recorded form includes its repr, which can change while its
    // identity does not; fingerprint what will be recorded.
    constexpr size_t kReprScratch = 4096;
    std::unique_ptr<uint8_t[]> scratch(new (std::nothrow) uint8_t[kReprScratch]);
    if (!scratch) return h;
    wire::ProtoWriter writer(scratch.get(), kReprScratch);
    encode_object(writer, value, kReprScratch);
    h = hash_bytes(writer.data(), writer.size(), h);
  }
  return h;
}

void ValueCapture::encode_redacted(wire::ProtoWriter& writer, uint32_t field) const {
  auto nested = writer.begin_nested(field);
  writer.bool_field(f::Value::kRedacted, true);
  writer.end_nested(nested);
}

void ValueCapture::encode_at(wire::ProtoWriter& writer, uint32_t field, PyObject* value, uint32_t depth,
                             const Path* path, size_t budget_end, uint32_t reused_items) const {
  auto nested = writer.begin_nested(field);
  PyTypeObject* type = Py_TYPE(value);
  if (value == Py_None) {
    writer.bool_field(f::Value::kNone, true);
  } else if (type == &PyBool_Type) {
    writer.bool_field(f::Value::kBool, value == Py_True);
  } else if (type == &PyLong_Type) {
    int overflow = 0;
    long long small;
    if (!compat::long_small_value(value, &small)) small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (!overflow) {
      writer.sint_field(f::Value::kInt, small);
    } else {
      auto big = writer.begin_nested(f::Value::kBigInt);
      size_t bits = _PyLong_NumBits(value);
      writer.bool_field(f::BigInt::kNegative, overflow < 0);
      writer.varint_field(f::BigInt::kBitLength, bits);
      unsigned char bytes[kMaxExactIntBits / 8 + 1];
      size_t size = bits / 8 + 1;
      if (bits <= kMaxExactIntBits && compat::long_to_bytes(value, bytes, size) == 0) {
        if (overflow < 0) {  // two's complement -> magnitude
          unsigned carry = 1;
          for (size_t i = 0; i < size; ++i) {
            unsigned sum = static_cast<unsigned char>(~bytes[i]) + carry;
            bytes[i] = static_cast<unsigned char>(sum);
            carry = sum >> 8;
          }
        }
        while (size > 1 && bytes[size - 1] == 0) --size;
        writer.bytes_field(f::BigInt::kMagnitudeLe, bytes, size);
      } else {
        writer.bool_field(f::BigInt::kTruncated, true);
      }
      writer.end_nested(big);
    }
  } else if (type == &PyFloat_Type) {
    writer.double_field(f::Value::kFloat, PyFloat_AS_DOUBLE(value));
  } else if (type == &PyUnicode_Type && compat::str_is_ready(value)) {
    auto text = writer.begin_nested(f::Value::kStr);
    const size_t length = static_cast<size_t>(PyUnicode_GET_LENGTH(value));
    char buffer[4 * 1024];
    size_t room = budget_end > writer.size() + kItemReserve ? budget_end - writer.size() - kItemReserve : 0;
    room = std::min(room, sizeof buffer);
    size_t chars = 0;
    size_t bytes = utf8_prefix(value, limits_.max_string, buffer, room, &chars);
    writer.bytes_field(f::Text::kText, buffer, bytes);
    writer.varint_field(f::Text::kLength, length);
    if (chars < length) writer.bool_field(f::Text::kTruncated, true);
    if (chars < std::min<size_t>(length, limits_.max_string)) cut_by_budget_ = true;
    writer.end_nested(text);
  } else if (type == &PyBytes_Type) {
    auto blob = writer.begin_nested(f::Value::kBytes);
    const size_t length = static_cast<size_t>(PyBytes_GET_SIZE(value));
    size_t room = budget_end > writer.size() + kItemReserve ? budget_end - writer.size() - kItemReserve : 0;
    size_t kept = std::min({length, static_cast<size_t>(limits_.max_string), room});
    writer.bytes_field(f::Blob::kData, PyBytes_AS_STRING(value), kept);
    writer.varint_field(f::Blob::kLength, length);
    if (kept < length) writer.bool_field(f::Blob::kTruncated, true);
    if (kept < std::min<size_t>(length, limits_.max_string)) cut_by_budget_ = true;
    writer.end_nested(blob);
  } else {
    bool is_container;
    container_kind(value, &is_container);
    if (is_container)
      encode_container(writer, value, depth, path, budget_end, reused_items);
    else
      encode_object(writer, value, budget_end);
  }
  writer.end_nested(nested);
}

void ValueCapture::encode_container(wire::ProtoWriter& writer, PyObject* value, uint32_t depth, const Path* path,
                                    size_t budget_end, uint32_t reused_items) const {
  bool is_container;
  wire::ContainerKind kind = container_kind(value, &is_container);
  const Py_ssize_t length = container_length(value, kind);
  auto container = writer.begin_nested(f::Value::kContainer);
  writer.varint_field(f::Container::kKind, static_cast<uint32_t>(kind));
  writer.varint_field(f::Container::kId, object_id(value));
  writer.varint_field(f::Container::kLength, static_cast<uint64_t>(length));
  // The caller's scan found that many items; only --repr code run since could have removed some.
  if (reused_items > std::min<size_t>(static_cast<size_t>(length), limits_.max_items)) reused_items = 0;
  if (reused_items) writer.varint_field(f::Container::kReusedItems, reused_items);
  bool truncated;
  if (depth >= limits_.max_depth || (path && path->contains(value))) {
    truncated = length > 0;
  } else {
    Path here{value, path};
    bool cut = false;
    const size_t small_ints_end =
        limits_.call_repr ? reused_items : encode_small_int_items(writer, value, kind, reused_items, budget_end);
    size_t visited = for_each_item(
        value, kind, limits_.max_items, limits_.call_repr,
        [&](PyObject* item, PyObject* dict_value) {
          if (writer.size() + kItemReserve * (dict_value ? 2 : 1) > budget_end) {
            cut = true;
            return false;
          }
          if (!encode_small_int(writer, f::Container::kItems, item))
            encode_at(writer, f::Container::kItems, item, depth + 1, &here, budget_end);
          if (dict_value && !encode_small_int(writer, f::Container::kItems, dict_value))
            encode_at(writer, f::Container::kItems, dict_value, depth + 1, &here, budget_end);
          return true;
        },
        small_ints_end);
    if (cut) {
      --visited;  // the item that did not fit was not written
      cut_by_budget_ = true;
    }
    truncated = cut || visited < static_cast<size_t>(length);
  }
  if (truncated) writer.bool_field(f::Container::kTruncated, true);
  writer.end_nested(container);
}

size_t ValueCapture::encode_small_int_items(wire::ProtoWriter& writer, PyObject* value, wire::ContainerKind kind,
                                            size_t first, size_t budget_end) const {
  if (kind != wire::ContainerKind::kList && kind != wire::ContainerKind::kTuple) return first;
  PyObject* const* array = sequence_items(value, kind);
  const size_t end = std::min<size_t>(static_cast<size_t>(container_length(value, kind)), limits_.max_items);
  if (first >= end) return first;
  // Within this, the per-item budget check of encode_container passes for every item.
  const size_t most = (end - first) * kSmallIntItemBytes;
  if (writer.size() + kItemReserve + most > budget_end) return first;
  uint8_t* at = writer.reserve(most);
  if (!at) return first;
  size_t next = first;
  for (; next < end; ++next) {
    PyObject* item = array[next];
    long long small;
    if (Py_TYPE(item) != &PyLong_Type || !compat::long_small_value(item, &small)) break;
    at = put_small_int_value(at, f::Container::kItems, wire::ProtoWriter::zigzag(small));
  }
  writer.commit_reserved(at);
  return next;
}

void ValueCapture::encode_object(wire::ProtoWriter& writer, PyObject* value, size_t budget_end) const {
  auto object = writer.begin_nested(f::Value::kObject);
  writer.string_field(f::ObjectRef::kTypeName, Py_TYPE(value)->tp_name);
  writer.varint_field(f::ObjectRef::kId, object_id(value));
  if (limits_.call_repr && !PyErr_Occurred()) {
    // Opt-in: user code runs here. Any exception it raises is recorded and cleared.
    PyObject* repr = PyObject_Repr(value);
    if (repr && PyUnicode_CheckExact(repr) && compat::str_is_ready(repr)) {
      char buffer[4 * 1024];
      size_t room = budget_end > writer.size() + kItemReserve ? budget_end - writer.size() - kItemReserve : 0;
      size_t chars = 0;
      size_t bytes = utf8_prefix(repr, limits_.max_string, buffer, std::min(room, sizeof buffer), &chars);
      writer.bytes_field(f::ObjectRef::kRepr, buffer, bytes);
      const size_t length = static_cast<size_t>(PyUnicode_GET_LENGTH(repr));
      if (chars < length) writer.bool_field(f::ObjectRef::kReprTruncated, true);
      if (chars < std::min<size_t>(length, limits_.max_string)) cut_by_budget_ = true;
    } else if (!repr) {
      PyObject *type, *error, *traceback;
      PyErr_Fetch(&type, &error, &traceback);
      writer.string_field(f::ObjectRef::kReprError,
                          type ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "unknown error");
      Py_XDECREF(type);
      Py_XDECREF(error);
      Py_XDECREF(traceback);
    }
    Py_XDECREF(repr);
  }
  writer.end_nested(object);
}

void ValueCapture::encode_exception(wire::ProtoWriter& writer, uint32_t field, PyObject* exception) const {
  auto info = writer.begin_nested(field);
  PyTypeObject* type = Py_TYPE(exception);
  writer.string_field(f::ExceptionInfo::kTypeName, type->tp_name);
  const bool builtin = !(type->tp_flags & Py_TPFLAGS_HEAPTYPE);
  if (builtin && PyExceptionInstance_Check(exception) && !PyErr_GivenExceptionMatches(exception, PyExc_KeyError)) {
    PyObject* args = reinterpret_cast<PyBaseExceptionObject*>(exception)->args;
    if (args && PyTuple_CheckExact(args)) {
      if (PyTuple_GET_SIZE(args) == 0) {
        writer.bytes_field(f::ExceptionInfo::kMessage, "", 0);
      } else if (PyTuple_GET_SIZE(args) == 1 && PyUnicode_CheckExact(PyTuple_GET_ITEM(args, 0)) &&
                 compat::str_is_ready(PyTuple_GET_ITEM(args, 0))) {
        PyObject* message = PyTuple_GET_ITEM(args, 0);
        char buffer[4 * 1024];
        size_t chars = 0;
        size_t bytes = utf8_prefix(message, limits_.max_string, buffer, sizeof buffer, &chars);
        writer.bytes_field(f::ExceptionInfo::kMessage, buffer, bytes);
        if (chars < static_cast<size_t>(PyUnicode_GET_LENGTH(message)))
          writer.bool_field(f::ExceptionInfo::kMessageTruncated, true);
      }
    }
  }
  writer.end_nested(info);
}

}  // namespace pyrewind::agent
