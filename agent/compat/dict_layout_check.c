/* Compile-time proof that dict_layout.h matches this CPython's own keys table (3.11+). */
#define Py_BUILD_CORE 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"  /* in 3.13's internal headers */
#include <Python.h>
#include <internal/pycore_dict.h>
#pragma GCC diagnostic pop

#include <stddef.h>

#include "dict_layout.h"

#define SAME_FIELD(field)                                                                  \
  _Static_assert(offsetof(struct _dictkeysobject, field) == offsetof(pyrewind_dict_keys_head, field) && \
                     sizeof(((struct _dictkeysobject*)0)->field) == sizeof(((pyrewind_dict_keys_head*)0)->field), \
                 "dict_layout.h: " #field " moved")
SAME_FIELD(dk_log2_index_bytes);
SAME_FIELD(dk_kind);
SAME_FIELD(dk_nentries);
_Static_assert(offsetof(struct _dictkeysobject, dk_indices) == sizeof(pyrewind_dict_keys_head),
               "dict_layout.h: the index table moved");
_Static_assert(DICT_KEYS_GENERAL == PYREWIND_DICT_KEYS_GENERAL, "dict_layout.h: key kinds changed");
_Static_assert(sizeof(PyDictKeyEntry) == 3 * sizeof(PyObject*) &&
                   offsetof(PyDictKeyEntry, me_key) == sizeof(PyObject*) &&
                   offsetof(PyDictKeyEntry, me_value) == 2 * sizeof(PyObject*),
               "dict_layout.h: general entries changed");
_Static_assert(sizeof(PyDictUnicodeEntry) == 2 * sizeof(PyObject*) && offsetof(PyDictUnicodeEntry, me_key) == 0 &&
                   offsetof(PyDictUnicodeEntry, me_value) == sizeof(PyObject*),
               "dict_layout.h: unicode entries changed");
