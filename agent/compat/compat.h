// Every difference between the supported CPython versions (3.9-3.13) lives here; the rest of
// the agent is version-free. Each agent build compiles this against one version's headers,
// including internal/ ones for frame layouts (read, never written, except f_trace_lines).
#pragma once

#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#include <opcode.h>
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include <internal/pycore_setobject.h>
#endif
#undef Py_BUILD_CORE

#include <cstddef>
#include <cstdint>

#include "compat/dict_layout.h"

#if PY_VERSION_HEX < 0x03090000 || PY_VERSION_HEX >= 0x030E0000
#error "pyrewind supports CPython 3.9 to 3.13"
#endif

namespace pyrewind::agent::compat {

// Under a trace function, 3.9 reports frame.f_lineno as the line of the frame's last line
// event (until 3.10 it is recomputed from the instruction on every event).
constexpr bool kTracedLineIsLastLineEvent = PY_VERSION_HEX < 0x030A0000;

// The frame a trace callback works on: the frame object up to 3.10, the interpreter frame from
// 3.11 (which needs no frame object, so reading it allocates nothing).
#if PY_VERSION_HEX >= 0x030B0000
using Frame = _PyInterpreterFrame*;
#else
using Frame = PyFrameObject*;
#endif

inline Frame frame_of(PyFrameObject* frame) {
#if PY_VERSION_HEX >= 0x030B0000
  return frame->f_frame;
#else
  return frame;
#endif
}

inline Frame current_frame(PyThreadState* tstate) {
#if PY_VERSION_HEX >= 0x030D0000
  return tstate->current_frame;
#elif PY_VERSION_HEX >= 0x030B0000
  return tstate->cframe->current_frame;
#else
  return tstate->frame;
#endif
}

// The calling frame (nullptr at the bottom of the thread's stack).
inline Frame frame_previous(Frame frame) {
#if PY_VERSION_HEX >= 0x030B0000
  return frame->previous;
#else
  return frame->f_back;
#endif
}

inline bool is_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

inline PyCodeObject* frame_code(Frame frame) {
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* executable = frame->f_executable;
  return PyCode_Check(executable) ? reinterpret_cast<PyCodeObject*>(executable) : nullptr;
#else
  return frame->f_code;
#endif
}

// The namespace dict of module-level and class-body frames.
inline PyObject* frame_locals_dict(Frame frame) { return frame->f_locals; }

inline int code_local_count(PyCodeObject* code) {
#if PY_VERSION_HEX >= 0x030B0000
  return code->co_nlocalsplus;
#else
  return code->co_nlocals + static_cast<int>(PyTuple_GET_SIZE(code->co_cellvars) +
                                             PyTuple_GET_SIZE(code->co_freevars));
#endif
}

// Name of fast-locals slot `index` (borrowed).
inline PyObject* code_local_name(PyCodeObject* code, int index) {
#if PY_VERSION_HEX >= 0x030B0000
  return PyTuple_GET_ITEM(code->co_localsplusnames, index);
#else
  if (index < code->co_nlocals) return PyTuple_GET_ITEM(code->co_varnames, index);
  index -= code->co_nlocals;
  Py_ssize_t cells = PyTuple_GET_SIZE(code->co_cellvars);
  if (index < cells) return PyTuple_GET_ITEM(code->co_cellvars, index);
  return PyTuple_GET_ITEM(code->co_freevars, index - cells);
#endif
}

enum class LocalKind : uint8_t { kPlain, kCell, kFree };

inline LocalKind code_local_kind(PyCodeObject* code, int index) {
#if PY_VERSION_HEX >= 0x030B0000
  auto kind = _PyLocals_GetKind(code->co_localspluskinds, index);
  if (kind & CO_FAST_FREE) return LocalKind::kFree;
  if (kind & CO_FAST_CELL) return LocalKind::kCell;
  return LocalKind::kPlain;
#else
  if (index < code->co_nlocals) return LocalKind::kPlain;
  if (index - code->co_nlocals < PyTuple_GET_SIZE(code->co_cellvars)) return LocalKind::kCell;
  return LocalKind::kFree;
#endif
}

// Current value of fast-locals slot `index` (borrowed), or nullptr when unbound. Cells are
// dereferenced the way frame.f_locals does, including before MAKE_CELL/COPY_FREE_VARS ran
// (3.11 reports the call event before them), without changing the frame.
// The frame's fast-locals slots (cells and free variables hold cell objects).
inline PyObject** frame_slots(Frame frame) {
#if PY_VERSION_HEX >= 0x030B0000
  return frame->localsplus;
#else
  return frame->f_localsplus;
#endif
}

inline PyObject* frame_local_value(Frame frame, PyCodeObject* code, int index, LocalKind kind) {
#if PY_VERSION_HEX >= 0x030B0000
  PyObject* value = frame->localsplus[index];
#else
  PyObject* value = frame->f_localsplus[index];
#endif
  if (kind == LocalKind::kPlain) return value;
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
  if (_PyInterpreterFrame_LASTI(frame) < 0) {
    // Frame not started: free slots are still empty, cell slots hold plain argument values.
    if (kind == LocalKind::kFree) {
      PyObject* closure = reinterpret_cast<PyFunctionObject*>(frame->f_func)->func_closure;
      int free_index = index - (code->co_nlocalsplus - code->co_nfreevars);
      if (!closure || free_index < 0 || free_index >= PyTuple_GET_SIZE(closure)) return nullptr;
      value = PyTuple_GET_ITEM(closure, free_index);
    } else {
      return value;
    }
  }
#else
  (void)code;
#endif
  if (value == nullptr || !PyCell_Check(value)) return value;
  return PyCell_GET(value);
}

// From 3.10 a frame's line event marks every change of line, whichever way control got there
// (a jump, an exception handler, a superinstruction's second half): between two line events the
// frame ran only instructions of the first one's line and instructions without a line. 3.9
// reports a line only at the start of its address range and after a backward jump, so a forward
// jump into the middle of another line goes unreported there.
constexpr bool kLineEventsMarkEveryLineChange = PY_VERSION_HEX >= 0x030A0000;

// Whether something other than the frame's own instructions, run in line order, may have
// changed its fast locals since its last event: a debugger. PyFrame_LocalsToFast (up to 3.12)
// copies a materialised f_locals dict back into them; a Python trace function that sets
// f_lineno jumps and binds None to the unbound locals, and may clear its f_trace at once
// (pdb's continue), so from 3.12, where one runs beside sys.monitoring, any frame object
// counts (3.13: its f_locals proxy also writes through). Before 3.12 a Python trace function
// replaces pyrewind's, and every frame has a frame object under a C trace function from 3.11.
// Once true it stays true for the frame's life, but for a frame trace function set by hand
// before 3.12.
inline bool frame_open_to_debugger(Frame frame) {
#if PY_VERSION_HEX >= 0x030D0000
  return frame->frame_obj != nullptr;
#elif PY_VERSION_HEX >= 0x030C0000
  return frame->f_locals != nullptr || frame->frame_obj != nullptr;
#elif PY_VERSION_HEX >= 0x030B0000
  return frame->f_locals != nullptr || (frame->frame_obj && frame->frame_obj->f_trace);
#else
  return frame->f_locals != nullptr || frame->f_trace != nullptr;
#endif
}

// The code's instructions without quickening or instrumentation (new reference), or nullptr
// with an exception set.
inline PyObject* code_bytecode(PyCodeObject* code) {
#if PY_VERSION_HEX >= 0x030B0000
  return PyCode_GetCode(code);
#else
  Py_INCREF(code->co_code);
  return code->co_code;
#endif
}

// The fast-locals slots (bit i for slot i; slots below 64 only) that a plain instruction of
// code_bytecode() stores to or clears; 0 for the others. Cells and free variables are not
// included: STORE_DEREF changes the cell's content, not the slot.
inline uint64_t instruction_slot_writes(int opcode, int oparg) {
  auto slot = [](int index) { return index < 64 ? uint64_t{1} << index : 0; };
  switch (opcode) {
    case STORE_FAST:
    case DELETE_FAST:
#if PY_VERSION_HEX >= 0x030C0000
    case LOAD_FAST_AND_CLEAR:  // an inlined comprehension's saved iteration variable
#endif
      return slot(oparg);
#if PY_VERSION_HEX >= 0x030D0000
    case STORE_FAST_LOAD_FAST:
      return slot(oparg >> 4);
    case STORE_FAST_STORE_FAST:
      return slot(oparg >> 4) | slot(oparg & 15);
#endif
    default:
      return 0;
  }
}

// Code objects carry their qualified name from 3.11 on.
constexpr bool kCodeHasQualifiedName = PY_VERSION_HEX >= 0x030B0000;

// What the interpreter spends delivering one event to the agent, outside the agent's own code
// (sys.monitoring's dispatch and vectorcall on 3.12+; the C trace function machinery before):
// an estimate from the bare-callback floors tools/bench measures, used by --max-overhead.
constexpr double kEventDispatchNs = PY_VERSION_HEX >= 0x030C0000 ? 25.0 : 40.0;

// co_qualname (borrowed) from 3.11; nullptr before (the agent then derives it).
inline PyObject* code_qualified_name(PyCodeObject* code) {
#if PY_VERSION_HEX >= 0x030B0000
  return code->co_qualname;
#else
  (void)code;
  return nullptr;
#endif
}

inline bool code_uses_fast_locals(PyCodeObject* code) { return (code->co_flags & CO_OPTIMIZED) != 0; }

// The line of a LINE event (3.9-3.11 trace function). 3.9's PyFrame_GetLineNumber scans the
// line table from the start on every call (a cost that grows with the function), but the
// interpreter has just stored the event's line in f_lineno; later versions answer from there.
inline int line_event_line(PyFrameObject* frame) {
#if PY_VERSION_HEX < 0x030A0000
  return frame->f_lineno;
#else
  return PyFrame_GetLineNumber(frame);
#endif
}

// Stops line events for one frame (3.9-3.11 trace function only): used for filtered-out code.
inline void frame_disable_line_events(PyFrameObject* frame) { frame->f_trace_lines = 0; }

#if PY_VERSION_HEX < 0x030C0000
// Undoes frame_disable_line_events at detach, so a debugger set later sees those frames' lines.
// Only frames that have a frame object can have been changed.
inline void frame_restore_line_events(Frame frame) {
#if PY_VERSION_HEX >= 0x030B0000
  PyFrameObject* object = frame->frame_obj;
#else
  PyFrameObject* object = frame;
#endif
  if (object) object->f_trace_lines = 1;
}
#endif

inline Py_ssize_t request_code_extra_index(freefunc free_function) {
  return _PyEval_RequestCodeExtraIndex(free_function);
}
// Mirror of CPython's private _PyCodeObjectExtra (Objects/codeobject.c), unchanged from 3.6 to
// 3.13: reading it directly saves a call per event on the hot path.
struct CodeExtra {
  Py_ssize_t size;
  void* extras[1];
};
inline void* code_extra(PyCodeObject* code, Py_ssize_t index) {
  auto* extra = static_cast<CodeExtra*>(code->co_extra);
  return (extra && index < extra->size) ? extra->extras[index] : nullptr;
}
// Empties the slot without CPython calling the free function on what it held.
inline void code_clear_extra(PyCodeObject* code, Py_ssize_t index) {
  auto* extra = static_cast<CodeExtra*>(code->co_extra);
  if (extra && index < extra->size) extra->extras[index] = nullptr;
}
inline int code_set_extra(PyCodeObject* code, Py_ssize_t index, void* extra) {
  return _PyCode_SetExtra(reinterpret_cast<PyObject*>(code), index, extra);
}

// The value of an int below 2^62 in magnitude (counters, sums, ids, sizes, timestamps in ns)
// read in place, without a call into the interpreter; false for larger ones (use
// PyLong_AsLongLongAndOverflow then).
inline bool long_small_value(PyObject* value, long long* out) {
  auto* number = reinterpret_cast<PyLongObject*>(value);
#if PY_VERSION_HEX >= 0x030C0000
  if (_PyLong_IsCompact(number)) {
    *out = _PyLong_CompactValue(number);
    return true;
  }
  const uintptr_t digit_count = number->long_value.lv_tag >> _PyLong_NON_SIZE_BITS;
  const digit* digits = number->long_value.ob_digit;
  const bool negative = (number->long_value.lv_tag & _PyLong_SIGN_MASK) == 2;
#else
  const Py_ssize_t size = Py_SIZE(value);
  if (size >= -1 && size <= 1) {
    *out = size * static_cast<long long>(number->ob_digit[0]);
    return true;
  }
  const size_t digit_count = static_cast<size_t>(size < 0 ? -size : size);
  const digit* digits = number->ob_digit;
  const bool negative = size < 0;
#endif
  if (digit_count > 3) return false;
  uint64_t magnitude = uint64_t{digits[0]} | uint64_t{digits[1]} << PyLong_SHIFT;
  if (digit_count == 3) magnitude |= uint64_t{digits[2]} << (2 * PyLong_SHIFT);
  if (magnitude >> 62) return false;
  *out = negative ? -static_cast<long long>(magnitude) : static_cast<long long>(magnitude);
  return true;
}

// A str's characters are in place (before 3.12 a legacy str may not be).
inline bool str_is_ready(PyObject* value) {
#if PY_VERSION_HEX < 0x030C0000
  return PyUnicode_IS_READY(value);
#else
  (void)value;
  return true;
#endif
}

// Two's-complement little-endian bytes of an int; 0 on success.
inline int long_to_bytes(PyObject* value, unsigned char* out, size_t size) {
#if PY_VERSION_HEX >= 0x030D0000
  return _PyLong_AsByteArray(reinterpret_cast<PyLongObject*>(value), out, size, 1, 1, 0);
#else
  return _PyLong_AsByteArray(reinterpret_cast<PyLongObject*>(value), out, size, 1, 1);
#endif
}

inline bool is_exact_set(PyObject* value) { return Py_TYPE(value) == &PySet_Type; }  // PySet_CheckExact is 3.10+

// A dict's version tag changes on every insertion, deletion and value replacement (PEP 509;
// deprecated from 3.12 but maintained through 3.13). Equal tags mean the same bindings, for a
// combined table only: from 3.13 an attribute store writes the object's inline values, which
// its materialised __dict__ shares as split values, without touching that dict's tag. False
// (no usable version) for a split table.
inline bool dict_version(PyObject* dict, uint64_t* version) {
  auto* table = reinterpret_cast<PyDictObject*>(dict);
  if (table->ma_values) return false;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  *version = table->ma_version_tag;
#pragma GCC diagnostic pop
  return true;
}

// A dict's combined table read in place, for a walk in insertion order without a call per item:
// `*first_key` is the first entry's key, its value the pointer after it, and entries are
// `*stride` pointers apart; an entry whose value is null was deleted. False for a split table
// (an instance's __dict__), which PyDict_Next walks. Only valid while no code can mutate `dict`.
inline bool dict_combined_entries(PyObject* dict, PyObject* const** first_key, Py_ssize_t* entries,
                                  size_t* stride) {
  auto* table = reinterpret_cast<PyDictObject*>(dict);
  if (table->ma_values) return false;
  const auto* keys = reinterpret_cast<const pyrewind_dict_keys_head*>(table->ma_keys);
  const uintptr_t indices = reinterpret_cast<uintptr_t>(keys + 1);
  *entries = keys->dk_nentries;
#if PY_VERSION_HEX >= 0x030B0000
  auto* entry = reinterpret_cast<PyObject**>(indices + (size_t{1} << keys->dk_log2_index_bytes));
  const bool general = keys->dk_kind == PYREWIND_DICT_KEYS_GENERAL;
#else
  const size_t size = static_cast<size_t>(keys->dk_size);
  const size_t index_bytes = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8;
  auto* entry = reinterpret_cast<PyObject**>(indices + size * index_bytes);
  constexpr bool general = true;
#endif
  // General entries are {hash, key, value}; those of str-keyed tables (3.11+) {key, value}.
  *first_key = general ? entry + 1 : entry;
  *stride = general ? 3 : 2;
  return true;
}

// Iterates a set or frozenset without creating an iterator object (no allocation).
inline bool set_next_entry(PyObject* set, Py_ssize_t* position, PyObject** key) {
  Py_hash_t hash;
  return _PySet_NextEntry(set, position, key, &hash) != 0;
}

#if PY_VERSION_HEX < 0x030C0000
// The trace-function backend (3.9-3.11) installs per thread.
inline bool thread_has_trace_function(PyThreadState* tstate) { return tstate->c_tracefunc != nullptr; }
inline Py_tracefunc thread_trace_function(PyThreadState* tstate) { return tstate->c_tracefunc; }
inline int set_thread_trace_function(PyThreadState* tstate, Py_tracefunc function, PyObject* arg) {
  return _PyEval_SetTrace(tstate, function, arg);
}
#endif

}  // namespace pyrewind::agent::compat
