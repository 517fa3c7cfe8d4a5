// Tracing backend for CPython 3.9-3.11: a C trace function (PyEval_SetTrace's mechanism, with
// the same events a Python sys.settrace function sees, but no Python call per event).
//
// Installed on every existing thread; threads started later get it through threading.settrace,
// whose hook (a C function) swaps itself for the C trace function on its first call. A thread
// that already has a trace function (a debugger, coverage) is left alone and reported.
#include <string>

#include "compat/compat.h"
#include "src/agent.h"
#include "src/backend.h"
#include "src/code_registry.h"
#include "src/overhead.h"
#include "src/recorder.h"

namespace pyrewind::agent {
namespace {

PyObject* g_thread_hook = nullptr;  // the callable given to threading.settrace (strong)

int trace_function(PyObject*, PyFrameObject* frame_object, int what, PyObject* arg) {
  overhead::CallbackTimer timer;  // --max-overhead (src/overhead.h)
  Agent* agent = Agent::instance();
  if (!agent->tracing()) {  // also off in a forked child
    compat::set_thread_trace_function(PyThreadState_Get(), nullptr, nullptr);
    return 0;
  }
  agent->apply_control_requests();
  if (agent->paused()) {  // only calls reach here then: each new frame's lines go off
    if (what == PyTrace_CALL || what == PyTrace_LINE) compat::frame_disable_line_events(frame_object);
    return 0;
  }
  compat::Frame frame = compat::frame_of(frame_object);
  PyCodeObject* code = compat::frame_code(frame);
  CodeMeta* meta = code ? code_meta(code) : nullptr;
  if (!meta) return 0;
  if (!meta->traced) {  // a running frame's code may have been filtered out since its call
    if (what == PyTrace_CALL || what == PyTrace_LINE) compat::frame_disable_line_events(frame_object);
    return 0;
  }
  const int line = what == PyTrace_LINE ? compat::line_event_line(frame_object) : PyFrame_GetLineNumber(frame_object);
  switch (what) {
    case PyTrace_CALL:
      record_call(*meta, frame, line);
      if (meta->lines_thinned) compat::frame_disable_line_events(frame_object);
      break;
    case PyTrace_LINE:
      if (meta->lines_thinned) {  // a frame that was running when its code was thinned
        compat::frame_disable_line_events(frame_object);
        break;
      }
      record_line(*meta, frame, line);
      break;
    case PyTrace_RETURN:
      record_return(*meta, frame, line, arg);  // arg is NULL when unwinding
      break;
    case PyTrace_EXCEPTION: {
      PyObject* exception = (arg && PyTuple_Check(arg) && PyTuple_GET_SIZE(arg) >= 2) ? PyTuple_GET_ITEM(arg, 1) : nullptr;
      record_exception(*meta, frame, line, exception);
      break;
    }
    default:
      break;
  }
  return 0;
}

// threading.settrace hook: runs as a Python-level trace function for the first event of a new
// thread, installs the C trace function on that thread, and records the event.
PyObject* thread_hook(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Agent* agent = Agent::instance();
  if (nargs >= 1 && PyFrame_Check(args[0]) && agent->tracing()) {
    PyThreadState* tstate = PyThreadState_Get();
    compat::set_thread_trace_function(tstate, trace_function, nullptr);
    trace_function(nullptr, reinterpret_cast<PyFrameObject*>(args[0]), PyTrace_CALL, nullptr);
  }
  Py_RETURN_NONE;
}

PyMethodDef k_thread_hook = {"pyrewind_thread_hook",
                             reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(thread_hook)),
                             METH_FASTCALL, nullptr};

bool set_threading_hook(PyObject* hook) {
  PyObject* threading = PyImport_ImportModule("threading");
  if (!threading) return false;
  PyObject* result = PyObject_CallMethod(threading, "settrace", "O", hook);
  Py_DECREF(threading);
  Py_XDECREF(result);
  return result != nullptr;
}

}  // namespace

bool install_tracing(std::string* error) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  set_infer_exception_handled(true);
  set_sticky_frame_line(compat::kTracedLineIsLastLineEvent);
  if (!g_thread_hook) g_thread_hook = PyCFunction_New(&k_thread_hook, nullptr);
  bool ok = g_thread_hook && set_threading_hook(g_thread_hook);
  if (!ok) {
    *error = "threading.settrace failed";
    PyErr_Clear();
  } else {
    PyInterpreterState* interpreter = PyThreadState_Get()->interp;
    for (PyThreadState* thread = PyInterpreterState_ThreadHead(interpreter); thread;
         thread = PyThreadState_Next(thread)) {
      if (compat::thread_has_trace_function(thread)) {
        Agent::instance()->warn("a thread already has a trace function (debugger or coverage?); it is not traced");
        continue;
      }
      if (compat::set_thread_trace_function(thread, trace_function, nullptr) != 0) PyErr_Clear();
    }
  }
  PyErr_Restore(type, value, traceback);
  return ok;
}

void thin_lines(CodeMeta& meta) { meta.lines_thinned = true; }  // applied per frame at its next event

void pause_tracing() {}  // applied per frame at its next event

// The frames whose line events the pause switched off get them back (their code is traced).
void resume_tracing() {
  PyThreadState* current = PyThreadState_Get();
  for (PyThreadState* thread = PyInterpreterState_ThreadHead(current->interp); thread;
       thread = PyThreadState_Next(thread)) {
    if (compat::thread_trace_function(thread) != trace_function) continue;
    for (compat::Frame frame = compat::current_frame(thread); frame; frame = compat::frame_previous(frame)) {
      PyCodeObject* code = compat::frame_code(frame);
      CodeMeta* meta = code ? code_meta(code) : nullptr;
      if (meta && meta->traced && !meta->lines_thinned) compat::frame_restore_line_events(frame);
    }
  }
}

// Frames of code no longer traced switch their line events off at their next one.
void refilter_events(const std::vector<CodeMeta*>&, bool some_now_traced) {
  if (some_now_traced) resume_tracing();
}

void uninstall_tracing() {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyThreadState* current = PyThreadState_Get();
  for (PyThreadState* thread = PyInterpreterState_ThreadHead(current->interp); thread;
       thread = PyThreadState_Next(thread)) {
    if (compat::thread_trace_function(thread) != trace_function) continue;
    if (compat::set_thread_trace_function(thread, nullptr, nullptr) != 0) PyErr_Clear();
    for (compat::Frame frame = compat::current_frame(thread); frame; frame = compat::frame_previous(frame)) {
      PyCodeObject* code = compat::frame_code(frame);
      CodeMeta* meta = code ? code_meta(code) : nullptr;
      if (meta && (!meta->traced || meta->lines_thinned)) compat::frame_restore_line_events(frame);
    }
  }
  // Only take the hook back if it is still ours.
  PyObject* threading = PyImport_GetModuleDict() ? PyDict_GetItemString(PyImport_GetModuleDict(), "threading") : nullptr;
  PyObject* installed = threading ? PyObject_GetAttrString(threading, "_trace_hook") : nullptr;
  if (installed == g_thread_hook && !set_threading_hook(Py_None)) PyErr_Clear();
  Py_XDECREF(installed);
  PyErr_Clear();
  PyErr_Restore(type, value, traceback);
}

}  // namespace pyrewind::agent
