// Tracing backend for CPython 3.12+: sys.monitoring (PEP 669).
//
// PY_START is enabled globally; the first time a code object starts, it either gets the
// per-code events it needs (set_local_events, traced code) or returns DISABLE (filtered code),
// so filtered code costs one callback per code object and is never instrumented for lines.
// Events mirror what sys.settrace reports on these versions (its legacy layer is built on the
// same events): JUMP back to the same line is a LINE, STOP_ITERATION is an EXCEPTION.
#include <string>

#include "compat/compat.h"
#include "src/agent.h"
#include "src/backend.h"
#include "src/code_registry.h"
#include "src/overhead.h"
#include "src/recorder.h"

namespace pyrewind::agent {
namespace {

// The tools CPython names (debugger 0, coverage 1, profiler 2, optimizer 5) come last, so
// pyrewind coexists with a debugger or coverage.py.
constexpr int kToolPreference[] = {4, 3, 2, 1, 0, 5};

struct Events {
  long py_start, py_resume, py_return, py_yield, line, jump, raise, exception_handled, py_unwind,
      py_throw, stop_iteration;
};

int g_tool = -1;
Events g_events{};
PyObject* g_monitoring = nullptr;  // sys.monitoring (strong)
PyObject* g_disable = nullptr;     // sys.monitoring.DISABLE (strong)
bool g_uninstalling = false;

PyObject* none() { Py_RETURN_NONE; }
PyObject* disable() {
  Py_INCREF(g_disable);
  return g_disable;
}

// Resolves the callback's code object and the frame that runs it. Returns nullptr for code the
// agent does not trace (and sets `*filtered`).
[[gnu::always_inline]] inline CodeMeta* traced_code(PyObject* const* args, Py_ssize_t nargs, compat::Frame* frame,
                                                    bool* filtered) {
  *filtered = false;
  Agent* agent = Agent::instance();
  if (nargs < 1 || !PyCode_Check(args[0]) || !agent->tracing()) {
    if (agent->in_forked_child()) uninstall_tracing();  // fork switches tracing off in the child
    *filtered = true;
    return nullptr;
  }
  agent->apply_control_requests();
  if (agent->paused()) return nullptr;  // hooks stay (PY_START, exceptions); nothing recorded
  auto* code = reinterpret_cast<PyCodeObject*>(args[0]);
  CodeMeta* meta = code_meta(code);
  if (!meta || !meta->traced) {
    *filtered = true;
    return nullptr;
  }
  *frame = compat::current_frame(PyThreadState_Get());
  if (!*frame || compat::frame_code(*frame) != code) return nullptr;
  return meta;
}

// The frame's current line as sys.settrace reports it (the line of the instruction the frame
// points at). Exception events use this; they are rare.
int frame_line(compat::Frame frame) { return PyUnstable_InterpreterFrame_GetLine(frame); }

constexpr int32_t kLineUnknown = INT32_MIN;

// The first lookup of an instruction's line, cached in the code's table.
int first_line_at(CodeMeta& meta, long long offset) {
  const size_t index = static_cast<size_t>(offset) / 2;
  if (index > (1u << 24)) return PyCode_Addr2Line(meta.code, static_cast<int>(offset));
  if (index >= meta.line_by_instruction.size()) meta.line_by_instruction.resize(index + 1, kLineUnknown);
  return meta.line_by_instruction[index] = PyCode_Addr2Line(meta.code, static_cast<int>(offset));
}

// The same for start/resume/return/yield callbacks, whose offset argument is that instruction:
// looked up in the code's line table once per instruction and cached, since a line-table scan
// per call and return is a large part of their cost.
[[gnu::always_inline]] inline int line_at(CodeMeta& meta, PyObject* const* args, Py_ssize_t nargs) {
  long long offset;
  if (nargs < 2 || !PyLong_CheckExact(args[1]) || !compat::long_small_value(args[1], &offset) || offset < 0)
    return 0;
  const size_t index = static_cast<size_t>(offset) / 2;
  if (index < meta.line_by_instruction.size() && meta.line_by_instruction[index] != kLineUnknown)
    return meta.line_by_instruction[index];
  return first_line_at(meta, offset);
}

long local_events(const CodeMeta& meta) {
  long events = g_events.py_resume | g_events.py_return | g_events.py_yield | g_events.stop_iteration;
  if (!meta.lines_thinned) events |= g_events.line | g_events.jump;
  return events;
}

bool set_local_events(CodeMeta& meta) {
  const long events = local_events(meta);
  PyObject* result = PyObject_CallMethod(g_monitoring, "set_local_events", "iOl", g_tool,
                                         reinterpret_cast<PyObject*>(meta.code), events);
  if (!result) {
    PyErr_Clear();
    return false;
  }
  Py_DECREF(result);
  meta.local_events_set = true;
  return true;
}

[[gnu::always_inline]] inline bool enable_local_events(CodeMeta& meta) {
  return meta.local_events_set || set_local_events(meta);
}

PyObject* on_py_start(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (filtered) return disable();
  if (!meta) return none();
  if (!enable_local_events(*meta)) {
    Agent::instance()->stop("sys.monitoring.set_local_events failed");
    return none();
  }
  record_call(*meta, frame, line_at(*meta, args, nargs));
  return none();
}

// PY_RESUME and PY_THROW: a generator or coroutine continues. PY_RESUME is global too, so a
// generator suspended when tracing started (attach) is instrumented when it resumes.
PyObject* continue_frame(PyObject* const* args, Py_ssize_t nargs, bool can_disable) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (filtered && can_disable) return disable();
  if (!meta) return none();
  if (!enable_local_events(*meta)) {
    Agent::instance()->stop("sys.monitoring.set_local_events failed");
    return none();
  }
  record_call(*meta, frame, line_at(*meta, args, nargs));
  return none();
}

PyObject* on_resume(PyObject*, PyObject* const* args, Py_ssize_t nargs) { return continue_frame(args, nargs, true); }
// PY_THROW cannot be disabled.
PyObject* on_throw(PyObject*, PyObject* const* args, Py_ssize_t nargs) { return continue_frame(args, nargs, false); }

// PY_RETURN and PY_YIELD: (code, offset, value).
PyObject* on_return(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (meta && nargs >= 3) record_return(*meta, frame, line_at(*meta, args, nargs), args[2]);
  return none();
}

PyObject* on_unwind(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (meta) record_return(*meta, frame, frame_line(frame), nullptr);
  return none();
}

PyObject* on_line(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (filtered) return disable();
  if (meta && meta->lines_thinned) return none();  // set_local_events has just taken LINE off
  if (meta && nargs >= 2) {
    long long line;
    if (!PyLong_CheckExact(args[1]) || !compat::long_small_value(args[1], &line)) return none();
    record_line(*meta, frame, static_cast<int>(line));
  }
  return none();
}

// A backward jump that stays on one line (a one-line loop, a comprehension's next item) is a
// new line event for sys.settrace; every other jump is static per location, so DISABLE it.
PyObject* on_jump(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (filtered || nargs < 3) return disable();
  long from = PyLong_AsLong(args[1]);
  long to = PyLong_AsLong(args[2]);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return none();
  }
  if (to > from) return disable();
  auto* code = reinterpret_cast<PyCodeObject*>(args[0]);
  int to_line = PyCode_Addr2Line(code, static_cast<int>(to));
  if (to_line != PyCode_Addr2Line(code, static_cast<int>(from))) return disable();
  if (meta) record_line(*meta, frame, to_line);
  return none();
}

// RAISE and STOP_ITERATION: (code, offset, exception).
PyObject* on_raise(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (meta && nargs >= 3) record_exception(*meta, frame, frame_line(frame), args[2]);
  return none();
}

PyObject* on_exception_handled(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  compat::Frame frame = nullptr;
  bool filtered;
  CodeMeta* meta = traced_code(args, nargs, &frame, &filtered);
  if (meta && nargs >= 3) record_exception_handled(*meta, frame, frame_line(frame), args[2]);
  return none();
}

// Every callback, as --max-overhead measures it (src/overhead.h).
template <PyObject* (*Callback)(PyObject*, PyObject* const*, Py_ssize_t)>
PyObject* timed(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  overhead::CallbackTimer timer;
  return Callback(self, args, nargs);
}

#define PYREWIND_CALLBACK(name, function)                                                            \
  PyMethodDef name = {"pyrewind_" #function,                                                         \
                      reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(timed<function>)), \
                      METH_FASTCALL, nullptr}

PYREWIND_CALLBACK(k_py_start, on_py_start);
PYREWIND_CALLBACK(k_resume, on_resume);
PYREWIND_CALLBACK(k_throw, on_throw);
PYREWIND_CALLBACK(k_return, on_return);
PYREWIND_CALLBACK(k_unwind, on_unwind);
PYREWIND_CALLBACK(k_line, on_line);
PYREWIND_CALLBACK(k_jump, on_jump);
PYREWIND_CALLBACK(k_raise, on_raise);
PYREWIND_CALLBACK(k_exception_handled, on_exception_handled);

bool read_event(PyObject* events, const char* name, long* out) {
  PyObject* value = PyObject_GetAttrString(events, name);
  if (!value) return false;
  *out = PyLong_AsLong(value);
  Py_DECREF(value);
  return !PyErr_Occurred();
}

bool register_callback(long event, PyMethodDef* definition) {
  PyObject* function = definition ? PyCFunction_New(definition, nullptr) : Py_NewRef(Py_None);
  if (!function) return false;
  PyObject* event_id = PyLong_FromLong(event);
  PyObject* previous = event_id ? PyObject_CallMethod(g_monitoring, "register_callback", "iOO", g_tool, event_id,
                                                      function)
                                : nullptr;
  Py_XDECREF(event_id);
  Py_DECREF(function);
  if (!previous) return false;
  Py_DECREF(previous);
  return true;
}

// Code already running when tracing starts (attach) gets no PY_START: give every traced code
// object on a thread's stack its local events now.
void instrument_running_frames() {
  PyInterpreterState* interpreter = PyThreadState_Get()->interp;
  for (PyThreadState* thread = PyInterpreterState_ThreadHead(interpreter); thread;
       thread = PyThreadState_Next(thread)) {
    for (compat::Frame frame = compat::current_frame(thread); frame; frame = compat::frame_previous(frame)) {
      PyCodeObject* code = compat::frame_code(frame);
      CodeMeta* meta = code ? code_meta(code) : nullptr;
      if (meta && meta->traced) enable_local_events(*meta);
    }
  }
}

bool install(std::string* error) {
  PyObject* sys = PyImport_ImportModule("sys");
  Py_XDECREF(g_monitoring);  // from an earlier session
  g_monitoring = sys ? PyObject_GetAttrString(sys, "monitoring") : nullptr;
  Py_XDECREF(sys);
  if (!g_monitoring) {
    *error = "sys.monitoring is unavailable";
    return false;
  }
  Py_XDECREF(g_disable);
  g_disable = PyObject_GetAttrString(g_monitoring, "DISABLE");
  PyObject* events = PyObject_GetAttrString(g_monitoring, "events");
  bool ok = g_disable && events && read_event(events, "PY_START", &g_events.py_start) &&
            read_event(events, "PY_RESUME", &g_events.py_resume) && read_event(events, "PY_RETURN", &g_events.py_return) &&
            read_event(events, "PY_YIELD", &g_events.py_yield) && read_event(events, "LINE", &g_events.line) &&
            read_event(events, "JUMP", &g_events.jump) && read_event(events, "RAISE", &g_events.raise) &&
            read_event(events, "EXCEPTION_HANDLED", &g_events.exception_handled) &&
            read_event(events, "PY_UNWIND", &g_events.py_unwind) && read_event(events, "PY_THROW", &g_events.py_throw) &&
            read_event(events, "STOP_ITERATION", &g_events.stop_iteration);
  Py_XDECREF(events);
  if (!ok) {
    *error = "sys.monitoring.events is not as expected";
    return false;
  }
  for (int tool : kToolPreference) {
    PyObject* result = PyObject_CallMethod(g_monitoring, "use_tool_id", "is", tool, "pyrewind");
    if (result) {
      Py_DECREF(result);
      g_tool = tool;
      break;
    }
    PyErr_Clear();  // in use by another tool
  }
  if (g_tool < 0) {
    *error = "every sys.monitoring tool id is taken by other tools";
    return false;
  }
  ok = register_callback(g_events.py_start, &k_py_start) && register_callback(g_events.py_resume, &k_resume) &&
       register_callback(g_events.py_throw, &k_throw) && register_callback(g_events.py_return, &k_return) &&
       register_callback(g_events.py_yield, &k_return) && register_callback(g_events.py_unwind, &k_unwind) &&
       register_callback(g_events.line, &k_line) && register_callback(g_events.jump, &k_jump) &&
       register_callback(g_events.raise, &k_raise) && register_callback(g_events.stop_iteration, &k_raise) &&
       register_callback(g_events.exception_handled, &k_exception_handled);
  if (!ok) {
    *error = "sys.monitoring.register_callback failed";
    return false;
  }
  long global = g_events.py_start | g_events.py_resume | g_events.py_throw | g_events.py_unwind | g_events.raise |
                g_events.exception_handled;
  PyObject* result = PyObject_CallMethod(g_monitoring, "set_events", "il", g_tool, global);
  if (!result) {
    *error = "sys.monitoring.set_events failed";
    return false;
  }
  Py_DECREF(result);
  instrument_running_frames();
  PyErr_Clear();
  return true;
}

}  // namespace

// Sets each instrumented code object's local events: none while paused, its own otherwise.
void set_all_local_events(bool paused) {
  if (g_tool < 0) return;
  for_each_code_meta([paused](CodeMeta& meta) {
    if (!meta.local_events_set) return;
    PyObject* result = PyObject_CallMethod(g_monitoring, "set_local_events", "iOl", g_tool,
                                           reinterpret_cast<PyObject*>(meta.code), paused ? 0L : local_events(meta));
    if (result)
      Py_DECREF(result);
    else
      PyErr_Clear();
  });
}

void pause_tracing() { set_all_local_events(true); }
void resume_tracing() { set_all_local_events(false); }

void refilter_events(const std::vector<CodeMeta*>& now_untraced, bool some_now_traced) {
  if (g_tool < 0) return;
  for (CodeMeta* meta : now_untraced) {
    if (!meta->local_events_set) continue;
    PyObject* result = PyObject_CallMethod(g_monitoring, "set_local_events", "iOl", g_tool,
                                           reinterpret_cast<PyObject*>(meta->code), 0L);
    if (result) Py_DECREF(result);
    meta->local_events_set = false;
  }
  if (some_now_traced) {
    // PY_START returned DISABLE for that code when it was filtered: every DISABLE is undone
    // (filtered code returns it again at its next start), and running frames get their events.
    PyObject* result = PyObject_CallMethod(g_monitoring, "restart_events", nullptr);
    if (result) Py_DECREF(result);
    instrument_running_frames();
  }
  PyErr_Clear();
}

void thin_lines(CodeMeta& meta) {
  meta.lines_thinned = true;
  if (!meta.local_events_set || g_tool < 0) return;  // enable_local_events leaves lines out
  PyObject* result = PyObject_CallMethod(g_monitoring, "set_local_events", "iOl", g_tool,
                                         reinterpret_cast<PyObject*>(meta.code), local_events(meta));
  if (!result) {
    PyErr_Clear();
    return;
  }
  Py_DECREF(result);
}

bool install_tracing(std::string* error) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  bool ok = install(error);
  if (!ok) {
    PyErr_Clear();
    uninstall_tracing();
  }
  PyErr_Restore(type, value, traceback);
  return ok;
}

// Leaves sys.monitoring as it was: no events, no callbacks, tool id free.
void uninstall_tracing() {
  if (g_tool < 0 || !g_monitoring || g_uninstalling) return;
  g_uninstalling = true;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyObject* result = PyObject_CallMethod(g_monitoring, "set_events", "il", g_tool, 0L);
  Py_XDECREF(result);
  PyErr_Clear();
  for_each_code_meta([](CodeMeta& meta) {
    if (!meta.local_events_set) return;
    PyObject* done = PyObject_CallMethod(g_monitoring, "set_local_events", "iOl", g_tool,
                                         reinterpret_cast<PyObject*>(meta.code), 0L);
    Py_XDECREF(done);
    PyErr_Clear();
    meta.local_events_set = false;
  });
  for (long event : {g_events.py_start, g_events.py_resume, g_events.py_throw, g_events.py_return, g_events.py_yield,
                     g_events.py_unwind, g_events.line, g_events.jump, g_events.raise, g_events.stop_iteration,
                     g_events.exception_handled}) {
    if (event) register_callback(event, nullptr);
    PyErr_Clear();
  }
  result = PyObject_CallMethod(g_monitoring, "free_tool_id", "i", g_tool);
  Py_XDECREF(result);
  PyErr_Clear();
  g_tool = -1;
  PyErr_Restore(type, value, traceback);
  g_uninstalling = false;
}

}  // namespace pyrewind::agent
