// The agent's exported entry points:
//   pyrewind_agent_preload  `pyrewind run`: called by the preload shim before Python starts;
//                           tracing begins at the program's first line (an audit hook).
//   pyrewind_agent_start    `pyrewind attach`: called on a thread the injector hijacked for
//                           one call. It runs no Python there: it opens the session and starts
//                           the attach thread, which does the rest (see attach_main).
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "compat/compat.h"
#include "src/agent.h"
#include "src/backend.h"
#include "src/code_registry.h"

namespace pyrewind::agent {
namespace {

bool g_started_by_audit_hook = false;

std::string stdlib_directory() {
  PyObject* modules = PyImport_GetModuleDict();
  PyObject* os = modules ? PyDict_GetItemString(modules, "os") : nullptr;
  if (!os || !PyModule_Check(os)) return {};
  PyObject* file = PyModule_GetFilenameObject(os);
  if (!file) {
    PyErr_Clear();
    return {};
  }
  std::string path;
  if (const char* text = PyUnicode_AsUTF8(file)) path = text;
  PyErr_Clear();
  Py_DECREF(file);
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

uint32_t runtime_hexversion() {
  PyObject* hexversion = PySys_GetObject("hexversion");  // borrowed
  unsigned long value = hexversion ? PyLong_AsUnsignedLong(hexversion) : 0;
  if (PyErr_Occurred()) {
    PyErr_Clear();
    value = 0;
  }
  return static_cast<uint32_t>(value);
}

// The pseudo-file of a running program's own code: "<string>" for -c, "<stdin>" for a script
// read from stdin (sys.argv[0] is "-c", or "" / "-"); empty for a file or module.
std::string main_pseudo_file_from_argv() {
  PyObject* argv = PySys_GetObject("argv");  // borrowed
  if (!argv || !PyList_Check(argv) || PyList_GET_SIZE(argv) == 0) return {};
  PyObject* first = PyList_GET_ITEM(argv, 0);
  if (!PyUnicode_Check(first)) return {};
  if (PyUnicode_CompareWithASCIIString(first, "-c") == 0) return "<string>";
  if (PyUnicode_CompareWithASCIIString(first, "") == 0 || PyUnicode_CompareWithASCIIString(first, "-") == 0)
    return "<stdin>";
  return {};
}

// threading.main_thread().ident, read from the module's state without running Python code;
// 0 if threading is not imported.
unsigned long main_thread_ident_from_threading() {
  PyObject* modules = PyImport_GetModuleDict();
  PyObject* threading = modules ? PyDict_GetItemString(modules, "threading") : nullptr;
  if (!threading || !PyModule_Check(threading)) return 0;
  PyObject* main = PyDict_GetItemString(PyModule_GetDict(threading), "_main_thread");
  PyObject** dict = main ? _PyObject_GetDictPtr(main) : nullptr;
  PyObject* ident = dict && *dict && PyDict_CheckExact(*dict) ? PyDict_GetItemString(*dict, "_ident") : nullptr;
  if (!ident || !PyLong_CheckExact(ident)) return 0;
  const unsigned long value = PyLong_AsUnsignedLong(ident);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  return value;
}

// The program's main thread when threading is not imported: the oldest thread state.
unsigned long oldest_thread_ident() {
  PyThreadState* oldest = nullptr;
  for (PyThreadState* thread = PyInterpreterState_ThreadHead(PyThreadState_Get()->interp); thread;
       thread = PyThreadState_Next(thread))
    oldest = thread;
  return oldest ? oldest->thread_id : 0;
}

// With the GIL held. Installs tracing for the open session. `main_thread_ident` identifies the
// program's main thread (the calling thread for `run`; not the attach thread).
void start_tracing(Agent* agent, const std::string& main_pseudo_file, unsigned long main_thread_ident) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  if (!main_pseudo_file.empty()) agent->filters().set_main_pseudo_file(main_pseudo_file);
  agent->segment()->python_hexversion.store(runtime_hexversion(), std::memory_order_relaxed);
  agent->filters().set_stdlib_dir(stdlib_directory());
  agent->set_main_thread_ident(main_thread_ident);
  std::string error;
  if (!init_code_registry(&error)) {
    ring::set_agent_message(*agent->segment(), error.c_str());
    agent->segment()->agent_state.store(ring::kAgentStopped, std::memory_order_release);
  } else {
    register_existing_functions();
    agent->set_tracing(true);
    if (!install_tracing(&error)) agent->stop(("could not install tracing: " + error).c_str());
  }
  PyErr_Restore(type, value, traceback);
}

// Python raises these audit events right before it runs the program's main code, after site
// and everything else start-up runs: the moment `pyrewind run` starts tracing.
int audit_hook(const char* event, PyObject*, void*) {
  if (g_started_by_audit_hook || std::strncmp(event, "cpython.run_", 12) != 0) return 0;
  const char* what = event + 12;
  if (std::strcmp(what, "file") && std::strcmp(what, "module") && std::strcmp(what, "command") &&
      std::strcmp(what, "stdin"))
    return 0;
  g_started_by_audit_hook = true;
  Agent* agent = Agent::instance();
  if (!agent || !agent->session_open()) return 0;
  std::string pseudo_file;
  if (std::strcmp(what, "command") == 0) pseudo_file = "<string>";
  if (std::strcmp(what, "stdin") == 0) pseudo_file = "<stdin>";
  agent->set_checks_session_in_callbacks(true);
  start_tracing(agent, pseudo_file, PyThread_get_thread_ident());
  return 0;
}

// --- attach ---------------------------------------------------------------------------------

constexpr long kPollNs = 10'000'000;                    // the attach thread's check interval
constexpr uint64_t kInterpreterWaitNs = 10'000'000'000;  // for Python to finish initialising

std::atomic<bool> g_attach_thread_running{false};
// Set once the attach thread starts closing its session: a new attach may then wait for it.
std::atomic<bool> g_attach_thread_closing{false};

// The attach thread's last act.
void attach_thread_done() {
  g_attach_thread_closing.store(false, std::memory_order_relaxed);
  g_attach_thread_running.store(false, std::memory_order_release);
}

void sleep_poll() {
  timespec interval{0, kPollNs};
  nanosleep(&interval, nullptr);
}

// Returns once the collector asks the agent to stop, is gone, or Python is finalizing. Applies
// `pyrewind ctl` pause requests and filter changes meanwhile, so an idle program answers at
// once too (a busy one already does it in its own callbacks).
void watch_session(Agent& agent) {
  while (!agent.session_end_requested() && !compat::is_finalizing()) {
    const bool wanted = agent.segment()->pause_request.load(std::memory_order_relaxed) != 0;
    if ((wanted != agent.paused() || agent.filters_changed()) && Py_IsInitialized()) {
      PyGILState_STATE gil = PyGILState_Ensure();
      if (!compat::is_finalizing()) agent.apply_control_requests();
      PyGILState_Release(gil);
    }
    sleep_poll();
  }
}

// Starts `main` on a thread of the agent's own, with every signal blocked (signals belong to
// the program's threads). False if no thread could be made.
bool start_agent_thread(void* (*main)(void*)) {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_t thread;
  const int created = pthread_create(&thread, &attributes, main, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
  return created == 0;
}

// Ends a session in which Python was never touched (it did not become ready in time, or is
// finalizing): no trace function was installed, so only the ring needs letting go.
void abandon_session(Agent* agent, const char* reason) {
  ring::set_agent_message(*agent->segment(), reason);
  agent->segment()->agent_state.store(ring::kAgentStopped, std::memory_order_release);
  agent->close_session_without_python();
}

// The attach thread: waits for an initialised interpreter, takes the GIL only to install and
// later remove tracing, and otherwise sleeps, watching for the collector's stop request or its
// death. It never runs on a thread of the program's own.
void* attach_main(void*) {
  Agent* agent = Agent::instance();
  const uint64_t give_up = monotonic_ns() + kInterpreterWaitNs;
  while (!Py_IsInitialized() || compat::is_finalizing()) {
    if (monotonic_ns() > give_up) {
      abandon_session(agent, "Python is not running in this process (not initialised, or exiting)");
      attach_thread_done();
      return nullptr;
    }
    sleep_poll();
  }

  PyGILState_STATE gil = PyGILState_Ensure();
  unsigned long main_thread = main_thread_ident_from_threading();
  if (main_thread == 0) main_thread = oldest_thread_ident();
  start_tracing(agent, main_pseudo_file_from_argv(), main_thread);
  PyGILState_Release(gil);

  watch_session(*agent);

  g_attach_thread_closing.store(true, std::memory_order_relaxed);
  if (compat::is_finalizing()) {
    // The process is exiting. Taking the GIL now could block forever, and the program's
    // threads may be writing events without it being ours: switch tracing off, keep the
    // mapping (the threads complete their chunks as they exit) and let the process go.
    agent->set_tracing(false);
  } else {
    gil = PyGILState_Ensure();
    agent->close_session();
    PyGILState_Release(gil);
  }
  attach_thread_done();
  return nullptr;
}

}  // namespace
}  // namespace pyrewind::agent

// Called by the preload shim before Python initialises (from an ELF constructor).
extern "C" __attribute__((visibility("default"))) int pyrewind_agent_preload(const char* segment_name) {
  using namespace pyrewind::agent;
  std::string error;
  if (!Agent::open_session(segment_name, &error)) {
    std::fprintf(stderr, "pyrewind: agent cannot attach to %s: %s; not tracing\n", segment_name, error.c_str());
    return -1;
  }
  // Documented as safe before Py_Initialize(); hooks survive initialisation.
  if (PySys_AddAuditHook(audit_hook, nullptr) != 0) {
    std::fprintf(stderr, "pyrewind: cannot add the start-up audit hook; not tracing\n");
    return -1;
  }
  return 0;
}

// Called by `pyrewind attach` through ptrace, on whatever thread it stopped: no Python here.
// Returns 0 once the attach thread runs, else one of the pyrewind_agent_start_error codes
// (tools/pyrewind/cmd_attach.cpp turns them into messages).
extern "C" __attribute__((visibility("default"))) int pyrewind_agent_start(const char* segment_name) {
  using namespace pyrewind::agent;
  enum : int { kAlreadyRecording = 1, kSegmentUnusable = 2, kNoThread = 3 };
  // A re-attach right after a detach can find the previous attach thread finishing its last
  // steps after it reported DETACHED: give it up to 200 ms.
  for (int waited = 0; waited < 200 && g_attach_thread_closing.load(std::memory_order_relaxed); ++waited) {
    timespec millisecond{0, 1'000'000};
    nanosleep(&millisecond, nullptr);
  }
  if (!segment_name || g_attach_thread_running.exchange(true, std::memory_order_acq_rel)) return kAlreadyRecording;
  std::string error;
  if (!Agent::open_session(segment_name, &error)) {
    g_attach_thread_running.store(false, std::memory_order_release);
    Agent* agent = Agent::instance();
    return agent && agent->session_open() ? kAlreadyRecording : kSegmentUnusable;
  }
  if (!start_agent_thread(attach_main)) {
    Agent::instance()->close_session_without_python();
    attach_thread_done();
    return kNoThread;
  }
  return 0;
}
