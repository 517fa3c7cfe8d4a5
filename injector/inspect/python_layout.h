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
