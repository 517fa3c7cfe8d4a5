/* The benchmark's floor: the cheapest possible line tracer. It only counts events.
 *   3.12+:    `on_line`, a C function for sys.monitoring.register_callback(tool, LINE, ...), and
 *             `on_call` for PY_START and PY_RETURN (the "floor with calls": what a tracer that
 *             records calls and returns too is dispatched at the least)
 *   3.9-3.11: `install_trace()`, a C trace function set with PyEval_SetTrace (which is given
 *             calls and returns as well as lines)
 * Built by tools/bench/bench.py against each interpreter's own headers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

static unsigned long long g_lines = 0;
static unsigned long long g_calls = 0;

#if PY_VERSION_HEX >= 0x030C0000
static PyObject* on_line(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  (void)args;
  (void)nargs;
  ++g_lines;
  Py_RETURN_NONE;
}

static PyObject* on_call(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  (void)args;
  (void)nargs;
  ++g_calls;
  Py_RETURN_NONE;
}
#else
static int trace(PyObject* obj, PyFrameObject* frame, int what, PyObject* arg) {
  (void)obj;
  (void)frame;
  (void)arg;
  if (what == PyTrace_LINE) ++g_lines;
  return 0;
}

static PyObject* install_trace(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  PyEval_SetTrace(trace, NULL);
  Py_RETURN_NONE;
}
#endif

static PyObject* lines(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  return PyLong_FromUnsignedLongLong(g_lines);
}

static PyMethodDef methods[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {"on_line", (PyCFunction)(void (*)(void))on_line, METH_FASTCALL, "sys.monitoring LINE callback"},
    {"on_call", (PyCFunction)(void (*)(void))on_call, METH_FASTCALL, "sys.monitoring PY_START/PY_RETURN callback"},
#else
    {"install_trace", install_trace, METH_NOARGS, "PyEval_SetTrace a counting C trace function"},
#endif
    {"lines", lines, METH_NOARGS, "LINE events counted so far"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linefloor", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linefloor(void) { return PyModule_Create(&module); }
