/* Fills a pyrewind_python_layout from the headers of the CPython version this file is
 * compiled against (one object per supported minor version, see CMakeLists.txt). Every
 * version difference the outside reader knows of is decided here, by the headers' own
 * PY_VERSION_HEX; the reader (python_stacks.cpp) only follows the table. */
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <string.h>

#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_object.h"
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include "opcode_ids.h"
#else
#include "opcode.h"
#endif

#include "injector/inspect/python_layout.h"

#if PY_VERSION_HEX < 0x03090000 || PY_VERSION_HEX >= 0x030E0000
#error "pyrewind's outside reader supports CPython 3.9 to 3.13"
#endif

#define LAYOUT_NAME2(major, minor) pyrewind_fill_layout_##major##_##minor
#define LAYOUT_NAME(major, minor) LAYOUT_NAME2(major, minor)

/* The position of the lowest set bit of a bitfield member, found by setting it in a zeroed
 * copy (bitfields have no offsetof). */
static uint32_t lowest_bit(const unsigned char* bytes, size_t size) {
  for (size_t i = 0; i < size * 8; ++i)
    if (bytes[i / 8] & (1u << (i % 8))) return (uint32_t)i;
  return PYREWIND_ABSENT;
}

/* Structures no installed header of the version declares, mirrored from its source. */

/* Modules/_asynciomodule.c: FutureObj_HEAD(task) then TaskObj's own fields, up to the last one
 * read (task_name). Checked against a live Task of each version (its fields' addresses). */
struct pyrewind_task_mirror {
  PyObject_HEAD
  PyObject *loop, *callback0, *context0, *callbacks, *exception;
#if PY_VERSION_HEX >= 0x030A0000
  PyObject* exception_tb;
#endif
  PyObject *result, *source_tb, *cancel_msg;
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* cancelled_exc;
  int state;                       /* fut_state */
  unsigned log_tb : 1, blocking : 1, must_cancel : 1, log_destroy_pending : 1;
  int num_cancels_requested;       /* __dict__ and weak references are managed by now */
#else
  int state;                       /* fut_state */
  int log_tb, blocking;
  PyObject *dict, *weakreflist;
#if PY_VERSION_HEX >= 0x030B0000
  PyObject* cancelled_exc;
#else
  _PyErr_StackItem cancelled_exc_state;
#endif
#endif
  PyObject *fut_waiter, *coro, *name, *context;
#if PY_VERSION_HEX < 0x030D0000
  int must_cancel, log_destroy_pending;
#if PY_VERSION_HEX >= 0x030B0000
  int num_cancels_requested;
#endif
#endif
};

#if PY_VERSION_HEX < 0x030B0000
/* Objects/dict-common.h (3.9, 3.10) */
struct pyrewind_dict_keys_mirror {
  Py_ssize_t dk_refcnt, dk_size;
  void* dk_lookup;
  Py_ssize_t dk_usable, dk_nentries;
  char dk_indices[];
};
struct pyrewind_dict_entry_mirror {
  Py_hash_t me_hash;
  PyObject *me_key, *me_value;
};
/* Objects/moduleobject.c (3.9, 3.10) */
struct pyrewind_module_mirror {
  PyObject_HEAD
  PyObject* md_dict;
};
#endif

void LAYOUT_NAME(PY_MAJOR_VERSION, PY_MINOR_VERSION)(struct pyrewind_python_layout* out) {
  memset(out, 0xff, sizeof *out);  /* every field ABSENT until set */
  out->major = PY_MAJOR_VERSION;
  out->minor = PY_MINOR_VERSION;
  out->header_hexversion = PY_VERSION_HEX;

  out->runtime_interpreters_head = offsetof(_PyRuntimeState, interpreters.head);
  out->interp_next = offsetof(PyInterpreterState, next);
  out->interp_id = offsetof(PyInterpreterState, id);
#if PY_VERSION_HEX >= 0x030B0000
  out->interp_threads_head = offsetof(PyInterpreterState, threads.head);
#else
  out->interp_threads_head = offsetof(PyInterpreterState, tstate_head);
#endif
#if PY_VERSION_HEX >= 0x030C0000
  out->interp_gil_pointer = offsetof(PyInterpreterState, ceval.gil);
#else
  out->runtime_gil = offsetof(_PyRuntimeState, ceval.gil);
#endif
  out->gil_last_holder = offsetof(struct _gil_runtime_state, last_holder);
  out->gil_locked = offsetof(struct _gil_runtime_state, locked);

  out->tstate_next = offsetof(PyThreadState, next);
  out->tstate_interp = offsetof(PyThreadState, interp);
  out->tstate_thread_id = offsetof(PyThreadState, thread_id);
#if PY_VERSION_HEX >= 0x030B0000
  out->tstate_native_thread_id = offsetof(PyThreadState, native_thread_id);
#endif

#if PY_VERSION_HEX >= 0x030B0000
  out->frame_model = PYREWIND_INTERPRETER_FRAMES;
#if PY_VERSION_HEX >= 0x030D0000
  out->tstate_frame = offsetof(PyThreadState, current_frame);
  out->frame_code = offsetof(_PyInterpreterFrame, f_executable);
  out->frame_instruction = offsetof(_PyInterpreterFrame, instr_ptr);
#else
  out->tstate_cframe = offsetof(PyThreadState, cframe);
  out->cframe_current_frame = offsetof(_PyCFrame, current_frame);
  out->frame_code = offsetof(_PyInterpreterFrame, f_code);
  out->frame_instruction = offsetof(_PyInterpreterFrame, prev_instr);
#endif
  out->frame_previous = offsetof(_PyInterpreterFrame, previous);
  out->frame_owner = offsetof(_PyInterpreterFrame, owner);
#if PY_VERSION_HEX < 0x030C0000
  out->frame_is_entry = offsetof(_PyInterpreterFrame, is_entry);
#endif
  out->frame_localsplus = offsetof(_PyInterpreterFrame, localsplus);
  out->owner_generator = FRAME_OWNED_BY_GENERATOR;
#if PY_VERSION_HEX >= 0x030C0000
  out->owner_cstack = FRAME_OWNED_BY_CSTACK;
#else
  out->owner_cstack = -1;
#endif
#else
  out->frame_model = PYREWIND_FRAME_OBJECTS;
  out->tstate_frame = offsetof(PyThreadState, frame);
  out->frame_previous = offsetof(PyFrameObject, f_back);
  out->frame_code = offsetof(PyFrameObject, f_code);
  out->frame_instruction = offsetof(PyFrameObject, f_lasti);
#if PY_VERSION_HEX >= 0x030A0000
  out->frame_lasti_unit = sizeof(_Py_CODEUNIT);
#else
  out->frame_lasti_unit = 1;
#endif
  out->frame_localsplus = offsetof(PyFrameObject, f_localsplus);
  out->owner_generator = -1;
  out->owner_cstack = -1;
#endif

  out->code_filename = offsetof(PyCodeObject, co_filename);
  out->code_name = offsetof(PyCodeObject, co_name);
  out->code_firstlineno = offsetof(PyCodeObject, co_firstlineno);
#if PY_VERSION_HEX >= 0x030B0000
  out->line_table_format = PYREWIND_LOCATIONS;
  out->code_qualname = offsetof(PyCodeObject, co_qualname);
  out->code_linetable = offsetof(PyCodeObject, co_linetable);
  out->code_code_adaptive = offsetof(PyCodeObject, co_code_adaptive);
  out->code_firsttraceable = offsetof(PyCodeObject, _co_firsttraceable);
  out->code_nlocalsplus = offsetof(PyCodeObject, co_nlocalsplus);
  out->code_localsplusnames = offsetof(PyCodeObject, co_localsplusnames);
  out->code_localspluskinds = offsetof(PyCodeObject, co_localspluskinds);
  out->fast_local = CO_FAST_LOCAL;
  out->fast_cell = CO_FAST_CELL;
  out->fast_free = CO_FAST_FREE;
#else
#if PY_VERSION_HEX >= 0x030A0000
  out->line_table_format = PYREWIND_LINETABLE_310;
  out->code_linetable = offsetof(PyCodeObject, co_linetable);
#else
  out->line_table_format = PYREWIND_LNOTAB;
  out->code_linetable = offsetof(PyCodeObject, co_lnotab);
#endif
  out->code_nlocals = offsetof(PyCodeObject, co_nlocals);
  out->code_varnames = offsetof(PyCodeObject, co_varnames);
  out->code_cellvars = offsetof(PyCodeObject, co_cellvars);
  out->code_freevars = offsetof(PyCodeObject, co_freevars);
  out->fast_local = out->fast_cell = out->fast_free = 0;
#endif

  out->object_type = offsetof(PyObject, ob_type);
  out->var_object_size = offsetof(PyVarObject, ob_size);
  out->type_name = offsetof(PyTypeObject, tp_name);
  out->tuple_items = offsetof(PyTupleObject, ob_item);
  out->list_items = offsetof(PyListObject, ob_item);
  out->dict_used = offsetof(PyDictObject, ma_used);
  out->set_used = offsetof(PySetObject, used);
  out->cell_ref = offsetof(PyCellObject, ob_ref);
  out->float_value = offsetof(PyFloatObject, ob_fval);
  out->bytes_data = offsetof(PyBytesObject, ob_sval);
#if PY_VERSION_HEX >= 0x030C0000
  out->long_digits = offsetof(PyLongObject, long_value.ob_digit);
  out->long_tag = offsetof(PyLongObject, long_value.lv_tag);
  out->long_tag_shift = _PyLong_NON_SIZE_BITS;
#else
  out->long_digits = offsetof(PyLongObject, ob_digit);
#endif
  out->long_digit_bits = PyLong_SHIFT;
  out->long_digit_size = sizeof(digit);

  out->unicode_length = offsetof(PyASCIIObject, length);
  out->unicode_state = offsetof(PyASCIIObject, state);
  {
    PyASCIIObject probe;
    const unsigned char* state = (const unsigned char*)&probe.state;
    memset(&probe, 0, sizeof probe);
    probe.state.kind = 1;
    out->unicode_kind_shift = lowest_bit(state, sizeof probe.state);
    memset(&probe, 0, sizeof probe);
    probe.state.compact = 1;
    out->unicode_compact_bit = lowest_bit(state, sizeof probe.state);
    memset(&probe, 0, sizeof probe);
    probe.state.ascii = 1;
    out->unicode_ascii_bit = lowest_bit(state, sizeof probe.state);
  }
  out->unicode_ascii_data = sizeof(PyASCIIObject);
  out->unicode_compact_data = sizeof(PyCompactUnicodeObject);
  out->code_unit_size = sizeof(_Py_CODEUNIT);

  out->dict_keys = offsetof(PyDictObject, ma_keys);
  out->dict_values = offsetof(PyDictObject, ma_values);
  out->type_flags = offsetof(PyTypeObject, tp_flags);
  out->type_dictoffset = offsetof(PyTypeObject, tp_dictoffset);
  out->type_basicsize = offsetof(PyTypeObject, tp_basicsize);
  out->type_base = offsetof(PyTypeObject, tp_base);
  out->set_mask = offsetof(PySetObject, mask);
  out->set_table = offsetof(PySetObject, table);
  out->set_entry_size = sizeof(setentry);
  out->set_entry_key = offsetof(setentry, key);
  out->weakref_object = offsetof(PyWeakReference, wr_object);
  out->managed_dict_flag = out->inline_values_flag = 0;
#if PY_VERSION_HEX >= 0x030B0000
  out->keys_log2_index_bytes = offsetof(PyDictKeysObject, dk_log2_index_bytes);
  out->keys_kind = offsetof(PyDictKeysObject, dk_kind);
  out->keys_nentries = offsetof(PyDictKeysObject, dk_nentries);
  out->keys_indices = offsetof(PyDictKeysObject, dk_indices);
  out->keys_kind_general = DICT_KEYS_GENERAL;
  out->entry_size = sizeof(PyDictKeyEntry);
  out->entry_key = offsetof(PyDictKeyEntry, me_key);
  out->entry_value = offsetof(PyDictKeyEntry, me_value);
  out->unicode_entry_size = sizeof(PyDictUnicodeEntry);
  out->unicode_entry_key = offsetof(PyDictUnicodeEntry, me_key);
  out->unicode_entry_value = offsetof(PyDictUnicodeEntry, me_value);
  out->values_items = offsetof(PyDictValues, values);
  out->heap_type_cached_keys = offsetof(PyHeapTypeObject, ht_cached_keys);
  out->managed_dict_flag = Py_TPFLAGS_MANAGED_DICT;
  out->module_dict = offsetof(PyModuleObject, md_dict);
#if PY_VERSION_HEX >= 0x030D0000
  out->instance_dict = PYREWIND_VALUES_INLINE;
  out->managed_dict_offset = MANAGED_DICT_OFFSET;
  out->values_valid = offsetof(PyDictValues, valid);
  out->inline_values_flag = Py_TPFLAGS_INLINE_VALUES;
#elif PY_VERSION_HEX >= 0x030C0000
  out->instance_dict = PYREWIND_VALUES_TAGGED;
  out->managed_dict_offset = -3 * (int32_t)sizeof(PyObject*);  /* _PyObject_DictOrValuesPointer */
#else
  out->instance_dict = PYREWIND_VALUES_BELOW_OBJECT;
  out->managed_dict_offset = MANAGED_DICT_OFFSET;  /* the values pointer is one word below */
#endif
#else
  out->keys_size = offsetof(struct pyrewind_dict_keys_mirror, dk_size);
  out->keys_nentries = offsetof(struct pyrewind_dict_keys_mirror, dk_nentries);
  out->keys_indices = offsetof(struct pyrewind_dict_keys_mirror, dk_indices);
  out->keys_kind_general = 0;
  out->entry_size = sizeof(struct pyrewind_dict_entry_mirror);
  out->entry_key = offsetof(struct pyrewind_dict_entry_mirror, me_key);
  out->entry_value = offsetof(struct pyrewind_dict_entry_mirror, me_value);
  out->values_items = 0;  /* ma_values is the PyObject* array itself */
  out->instance_dict = PYREWIND_DICT_AT_DICTOFFSET;
  out->module_dict = offsetof(struct pyrewind_module_mirror, md_dict);
#endif
#if PY_VERSION_HEX >= 0x030C0000
  out->interp_modules = offsetof(PyInterpreterState, imports.modules);
#else
  out->interp_modules = offsetof(PyInterpreterState, modules);
#endif

#if PY_VERSION_HEX >= 0x030B0000
  out->gen_iframe = offsetof(PyGenObject, gi_iframe);
  out->gen_frame_state = offsetof(PyGenObject, gi_frame_state);
  out->frame_stack_top = offsetof(_PyInterpreterFrame, stacktop);
  out->state_completed = FRAME_COMPLETED;
#if PY_VERSION_HEX >= 0x030D0000
  out->yield_from_check = PYREWIND_YF_FRAME_STATE;
  out->state_awaiting = FRAME_SUSPENDED_YIELD_FROM;
#else
  out->yield_from_check = PYREWIND_YF_NEXT_RESUME;
  out->state_awaiting = FRAME_SUSPENDED;
  out->opcode_resume = RESUME;
#if PY_VERSION_HEX >= 0x030C0000
  out->opcode_resume_variant = INSTRUMENTED_RESUME;
#else
  out->opcode_resume_variant = RESUME_QUICK;
#endif
#endif
#else
  out->gen_frame = offsetof(PyGenObject, gi_frame);
  out->code_code = offsetof(PyCodeObject, co_code);
  out->opcode_yield_from = YIELD_FROM;
#if PY_VERSION_HEX >= 0x030A0000
  out->yield_from_check = PYREWIND_YF_STACK_DEPTH;
  out->frame_state = offsetof(PyFrameObject, f_state);
  out->state_awaiting = FRAME_SUSPENDED;
  out->frame_stack_top = offsetof(PyFrameObject, f_stackdepth);
  out->frame_valuestack = offsetof(PyFrameObject, f_valuestack);
#else
  out->yield_from_check = PYREWIND_YF_STACKTOP_POINTER;
  out->frame_stack_top = offsetof(PyFrameObject, f_stacktop);
#endif
#endif

  out->task_state = offsetof(struct pyrewind_task_mirror, state);
  out->task_fut_waiter = offsetof(struct pyrewind_task_mirror, fut_waiter);
  out->task_coro = offsetof(struct pyrewind_task_mirror, coro);
  out->task_name = offsetof(struct pyrewind_task_mirror, name);
  out->task_size = offsetof(struct pyrewind_task_mirror, context) + sizeof(PyObject*);

  out->debug_cookie_size = 0;
  out->debug_checks = 0;
#ifdef _Py_Debug_Cookie
  out->debug_cookie_size = sizeof out->debug_cookie;
  memcpy(out->debug_cookie, _Py_Debug_Cookie, sizeof out->debug_cookie);
#define CHECK(debug_field, expected)                                                 \
  do {                                                                              \
    out->debug_check[out->debug_checks].offset = offsetof(_Py_DebugOffsets, debug_field); \
    out->debug_check[out->debug_checks].value = (expected);                            \
    ++out->debug_checks;                                                            \
  } while (0)
  CHECK(runtime_state.interpreters_head, out->runtime_interpreters_head);
  CHECK(interpreter_state.id, out->interp_id);
  CHECK(interpreter_state.next, out->interp_next);
  CHECK(interpreter_state.threads_head, out->interp_threads_head);
  CHECK(interpreter_state.ceval_gil, out->interp_gil_pointer);
  /* these two are offsets inside the interpreter's own GIL, interp->_gil */
  CHECK(interpreter_state.gil_runtime_state_locked, offsetof(PyInterpreterState, _gil) + out->gil_locked);
  CHECK(interpreter_state.gil_runtime_state_holder, offsetof(PyInterpreterState, _gil) + out->gil_last_holder);
  CHECK(thread_state.next, out->tstate_next);
  CHECK(thread_state.interp, out->tstate_interp);
  CHECK(thread_state.current_frame, out->tstate_frame);
  CHECK(thread_state.thread_id, out->tstate_thread_id);
  CHECK(thread_state.native_thread_id, out->tstate_native_thread_id);
  CHECK(interpreter_frame.previous, out->frame_previous);
  CHECK(interpreter_frame.executable, out->frame_code);
  CHECK(interpreter_frame.instr_ptr, out->frame_instruction);
  CHECK(interpreter_frame.localsplus, out->frame_localsplus);
  CHECK(interpreter_frame.owner, out->frame_owner);
  CHECK(code_object.filename, out->code_filename);
  CHECK(code_object.name, out->code_name);
  CHECK(code_object.qualname, out->code_qualname);
  CHECK(code_object.linetable, out->code_linetable);
  CHECK(code_object.firstlineno, out->code_firstlineno);
  CHECK(code_object.localsplusnames, out->code_localsplusnames);
  CHECK(code_object.co_code_adaptive, out->code_code_adaptive);
#undef CHECK
#endif
}
