/* Where CPython keeps what an outside reader needs, for one minor version: byte offsets of
 * struct fields, sizes, constants and the formats that differ between versions.
 *
 * One table per supported minor version is filled by layout_probe.c, compiled against that
 * version's own headers (include/ and include/internal/ with Py_BUILD_CORE), so every number
 * comes from the compiler, not from hand-copied constants. This header is plain C: the probe
 * is C (the internal headers are not all valid C++), the reader is C++. */
#ifndef PYREWIND_INJECTOR_INSPECT_PYTHON_LAYOUT_H_
#define PYREWIND_INJECTOR_INSPECT_PYTHON_LAYOUT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A field this version does not have. */
#define PYREWIND_ABSENT 0xffffffffu

/* How a thread's innermost frame is reached and frames are chained. */
enum pyrewind_frame_model {
  /* 3.9, 3.10: tstate->frame, a PyFrameObject; f_back; f_lasti counts bytes (3.9) or code
   * units (3.10). */
  PYREWIND_FRAME_OBJECTS = 1,
  /* 3.11+: _PyInterpreterFrame records chained by `previous`; the current instruction is a
   * pointer into the code object's co_code_adaptive. */
  PYREWIND_INTERPRETER_FRAMES = 2,
};

/* How a suspended generator or coroutine tells that it awaits (yields from) another object,
 * which is then the top of its frame's value stack (CPython's _PyGen_yf). */
enum pyrewind_yield_from_check {
  /* 3.9: the frame's f_stacktop is set (suspended) and the next instruction is YIELD_FROM. */
  PYREWIND_YF_STACKTOP_POINTER = 1,
  /* 3.10: f_state is FRAME_SUSPENDED (gen_suspended) and the next instruction is YIELD_FROM;
   * the value stack is f_valuestack[0 .. f_stackdepth). */
  PYREWIND_YF_STACK_DEPTH = 2,
  /* 3.11, 3.12: gi_frame_state is FRAME_SUSPENDED and the next instruction is a RESUME whose
   * argument is >= 2 (resumed after a yield from / await). */
  PYREWIND_YF_NEXT_RESUME = 3,
  /* 3.13: gi_frame_state is FRAME_SUSPENDED_YIELD_FROM. */
  PYREWIND_YF_FRAME_STATE = 4,
};

/* Where an instance of a Python class keeps its __dict__. */
enum pyrewind_instance_dict {
  PYREWIND_DICT_AT_DICTOFFSET = 1, /* 3.9, 3.10: a dict pointer at tp_dictoffset */
  /* 3.11+, types with Py_TPFLAGS_MANAGED_DICT: a dict pointer at managed_dict_offset (below
   * the object), or, while no dict was made, only the values of a split table whose keys are
   * the type's ht_cached_keys. The values are: */
  PYREWIND_VALUES_BELOW_OBJECT = 2, /* 3.11: pointed to from just below the dict pointer */
  PYREWIND_VALUES_TAGGED = 3,       /* 3.12: the dict pointer's slot, tagged with bit 0 (pointer - 1) */
  PYREWIND_VALUES_INLINE = 4,       /* 3.13: inside the object, at tp_basicsize (Py_TPFLAGS_INLINE_VALUES) */
};

/* The encoding of code-offset -> line-number tables. */
enum pyrewind_line_table_format {
  PYREWIND_LNOTAB = 1,         /* 3.9 co_lnotab: (byte delta, signed line delta) pairs */
  PYREWIND_LINETABLE_310 = 2,  /* 3.10 co_linetable: (byte delta, line delta or -128) pairs */
  PYREWIND_LOCATIONS = 3,      /* 3.11+ co_linetable: varint-coded location entries */
};

struct pyrewind_python_layout {
  uint32_t major, minor;
  uint32_t header_hexversion;  /* PY_VERSION_HEX of the headers the table came from */
  uint32_t frame_model;        /* enum pyrewind_frame_model */
  uint32_t line_table_format;  /* enum pyrewind_line_table_format */

  /* _PyRuntimeState (the _PyRuntime symbol) */
  uint32_t runtime_interpreters_head;
  uint32_t runtime_gil;        /* struct _gil_runtime_state inside _PyRuntime (<= 3.11) */

  /* PyInterpreterState */
  uint32_t interp_next;
  uint32_t interp_id;
  uint32_t interp_threads_head;
  uint32_t interp_gil_pointer;  /* interp->ceval.gil (3.12+), else ABSENT */

  /* struct _gil_runtime_state */
  uint32_t gil_last_holder;
  uint32_t gil_locked;

  /* PyThreadState */
  uint32_t tstate_next;
  uint32_t tstate_interp;
  uint32_t tstate_thread_id;         /* pthread_t of the thread */
  uint32_t tstate_native_thread_id;  /* the kernel's thread id (3.11+), else ABSENT */
  uint32_t tstate_frame;        /* innermost frame pointer in the thread state (3.9, 3.10, 3.13+) */
  uint32_t tstate_cframe;       /* else (3.11, 3.12): tstate->cframe ... */
  uint32_t cframe_current_frame; /* ... ->current_frame */

  /* PyFrameObject (3.9, 3.10) or _PyInterpreterFrame (3.11+) */
  uint32_t frame_previous;     /* f_back / previous */
  uint32_t frame_code;         /* f_code / f_executable */
  uint32_t frame_instruction;  /* f_lasti (int) / prev_instr or instr_ptr (pointer) */
  uint32_t frame_lasti_unit;   /* bytes per f_lasti step: 1 (3.9), 2 (3.10); ABSENT after */
  uint32_t frame_owner;        /* char; ABSENT for frame objects */
  uint32_t frame_is_entry;     /* 3.11: bool, the outermost frame of one C call of the eval loop; else ABSENT */
  uint32_t frame_localsplus;
  int32_t owner_generator;     /* FRAME_OWNED_BY_GENERATOR, or -1 */
  int32_t owner_cstack;        /* FRAME_OWNED_BY_CSTACK (3.12+: shim frames), or -1 */

  /* PyCodeObject */
  uint32_t code_filename;
  uint32_t code_name;
  uint32_t code_qualname;      /* 3.11+, else ABSENT */
  uint32_t code_firstlineno;   /* int */
  uint32_t code_linetable;     /* co_lnotab (3.9) / co_linetable */
  uint32_t code_code_adaptive; /* 3.11+: the instructions, inline in the code object */
  uint32_t code_firsttraceable;/* 3.11+: int, index of the first traceable instruction */
  uint32_t code_nlocals;       /* int: fast locals (3.9, 3.10) ... */
  uint32_t code_varnames;      /* ... and their names (tuple), then cells (3.9, 3.10): */
  uint32_t code_cellvars, code_freevars; /* names (tuples) of the cell slots after the locals */
  uint32_t code_nlocalsplus;   /* 3.11+: int, locals + cells + free variables ... */
  uint32_t code_localsplusnames; /* ... their names (tuple) ... */
  uint32_t code_localspluskinds; /* ... and kinds (bytes of CO_FAST_* flags) */
  uint32_t fast_local, fast_cell, fast_free; /* CO_FAST_* (3.11+), else 0 */

  /* Objects */
  uint32_t object_type;        /* ob_type */
  uint32_t var_object_size;    /* ob_size */
  uint32_t type_name;          /* tp_name: const char* */
  uint32_t tuple_items;
  uint32_t list_items;         /* PyObject** */
  uint32_t dict_used;
  uint32_t set_used;
  uint32_t cell_ref;
  uint32_t float_value;
  uint32_t bytes_data;
  uint32_t long_digits;
  uint32_t long_tag;           /* 3.12+: lv_tag (sign in bits 0-1, digit count above) ... */
  uint32_t long_tag_shift;     /* ... shifted by this; else ABSENT: the sign and count of ob_size */
  uint32_t long_digit_bits;    /* PyLong_SHIFT */
  uint32_t long_digit_size;    /* sizeof(digit) */
  uint32_t unicode_length;
  uint32_t unicode_state;      /* the 32-bit state bitfield ... */
  uint32_t unicode_kind_shift, unicode_compact_bit, unicode_ascii_bit; /* ... its layout */
  uint32_t unicode_ascii_data;   /* characters of a compact ASCII string */
  uint32_t unicode_compact_data; /* characters of another compact string */
  uint32_t code_unit_size;     /* sizeof(_Py_CODEUNIT) */

  /* Dicts (sys.modules, module and instance namespaces). The keys object's entries follow
   * its index table: 3.9/3.10 dk_size indices of 1, 2, 4 or 8 bytes by that size; 3.11+
   * 1 << dk_log2_index_bytes bytes of them. */
  uint32_t dict_keys, dict_values;  /* ma_keys, ma_values (split tables: values, by entry index) */
  uint32_t keys_size;               /* 3.9, 3.10: Py_ssize_t dk_size, else ABSENT */
  uint32_t keys_log2_index_bytes;   /* 3.11+: uint8_t, else ABSENT */
  uint32_t keys_kind;               /* 3.11+: uint8_t dk_kind, else ABSENT (every entry general) */
  uint32_t keys_nentries, keys_indices;
  uint32_t keys_kind_general;       /* DICT_KEYS_GENERAL: entries with a hash (3.11+) */
  uint32_t entry_size, entry_key, entry_value;                 /* PyDictKeyEntry */
  uint32_t unicode_entry_size, unicode_entry_key, unicode_entry_value; /* 3.11+: PyDictUnicodeEntry */
  uint32_t values_items;            /* the value array inside a split table's values */
  uint32_t instance_dict;           /* enum pyrewind_instance_dict */
  int32_t managed_dict_offset;      /* 3.11+: relative to the object (negative) */
  uint32_t values_valid;            /* 3.13: uint8_t, 0 once the inline values moved to a dict */
  uint64_t managed_dict_flag, inline_values_flag; /* Py_TPFLAGS_*, 0 when absent */
  uint32_t type_flags, type_dictoffset, type_basicsize, type_base;
  uint32_t heap_type_cached_keys;   /* 3.11+: PyHeapTypeObject.ht_cached_keys */
  uint32_t set_mask, set_table;     /* PySetObject; its table holds (key, hash) entries */
  uint32_t set_entry_size, set_entry_key;
  uint32_t weakref_object;          /* PyWeakReference.wr_object (None once dead) */
  uint32_t interp_modules;          /* sys.modules: interp->modules / interp->imports.modules */
  uint32_t module_dict;             /* PyModuleObject.md_dict */

  /* Generators and coroutines (PyGenObject, PyCoroObject share the head) */
  uint32_t yield_from_check;        /* enum pyrewind_yield_from_check */
  uint32_t gen_frame;               /* 3.9, 3.10: gi_frame, a PyFrameObject (NULL once finished) */
  uint32_t gen_iframe;              /* 3.11+: the _PyInterpreterFrame inside the object */
  uint32_t gen_frame_state;         /* 3.11+: int8_t gi_frame_state */
  uint32_t frame_state;             /* 3.10: int8_t f_state of a frame object */
  int32_t state_awaiting;           /* the (frame or gen) state value a yield from needs */
  int32_t state_completed;          /* 3.11+: gi_frame_state from which on the frame is gone */
  uint32_t frame_stack_top;         /* 3.9 f_stacktop (PyObject**); 3.10 f_stackdepth; 3.11+ stacktop (int) */
  uint32_t frame_valuestack;        /* 3.10: f_valuestack */
  uint32_t code_code;               /* 3.9, 3.10: co_code (bytes) */
  uint32_t opcode_yield_from;       /* 3.9, 3.10: YIELD_FROM */
  uint32_t opcode_resume, opcode_resume_variant; /* 3.11, 3.12: RESUME and RESUME_QUICK / INSTRUMENTED_RESUME */

  /* _asyncio's C Task (TaskObj in Modules/_asynciomodule.c, not in any installed header:
   * layout_probe.c mirrors each version's struct). */
  uint32_t task_state;              /* fut_state (int): 0 pending, 1 cancelled, 2 finished */
  uint32_t task_fut_waiter;         /* the future the task waits for, or NULL */
  uint32_t task_coro;
  uint32_t task_name;               /* str; 3.12+ also an int n standing for "Task-n" */
  uint32_t task_size;               /* sizeof(TaskObj): an object's tp_basicsize is at least that */

  /* 3.13+: pairs (offset inside _Py_DebugOffsets, expected uint64 value) the target's
   * _PyRuntime.debug_offsets must match, so a build whose layout differs from the headers
   * (another patch release, other build options) is refused, not misread. */
  uint32_t debug_cookie_size;  /* 0 when the version has no _Py_DebugOffsets */
  char debug_cookie[8];
  uint32_t debug_checks;
  struct { uint32_t offset; uint64_t value; } debug_check[32];
};

#ifdef __cplusplus
}
#endif

#endif /* PYREWIND_INJECTOR_INSPECT_PYTHON_LAYOUT_H_ */
