/* The head of a dict's keys table (PyDictKeysObject), which CPython keeps out of its public
 * headers; compat.h walks combined tables with it. Plain C so that dict_layout_check.c can
 * compare it with the real definition where the headers have one (3.11+, internal/pycore_dict.h,
 * which C++ cannot include). Stable within a minor version. */
#ifndef PYREWIND_AGENT_COMPAT_DICT_LAYOUT_H
#define PYREWIND_AGENT_COMPAT_DICT_LAYOUT_H

#include <Python.h>
#include <stdint.h>

#if PY_VERSION_HEX >= 0x030B0000
typedef struct {
  Py_ssize_t dk_refcnt;
  uint8_t dk_log2_size;
  uint8_t dk_log2_index_bytes; /* the index table takes 1 << this many bytes */
  uint8_t dk_kind;             /* 0: general entries {hash, key, value}, else {key, value} */
  uint32_t dk_version;
  Py_ssize_t dk_usable;
  Py_ssize_t dk_nentries;
  /* then the index table, then the entries */
} pyrewind_dict_keys_head;
#define PYREWIND_DICT_KEYS_GENERAL 0
#else
typedef struct {
  Py_ssize_t dk_refcnt;
  Py_ssize_t dk_size; /* index slots; each takes 1, 2, 4 or 8 bytes by this size */
  void* dk_lookup;
  Py_ssize_t dk_usable;
  Py_ssize_t dk_nentries;
  /* then the index table, then the entries {hash, key, value} */
} pyrewind_dict_keys_head;
#endif

#endif
