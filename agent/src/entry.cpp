// The agent's exported entry points.
#include <cstdio>
#include <cstring>
#include <string>

#include "compat/compat.h"
#include "src/agent.h"
#include "src/backend.h"
#include "src/code_registry.h"

namespace pyrewind::agent {
namespace {

bool g_started = false;

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

// Called with the GIL held on the thread that will run the program.
void start_tracing(const char* run_kind) {
  Agent* agent = Agent::instance();
  if (std::strcmp(run_kind, "command") == 0) agent->filters().set_main_pseudo_file("<string>");
  if (std::strcmp(run_kind, "stdin") == 0) agent->filters().set_main_pseudo_file("<stdin>");
  agent->segment()->python_hexversion.store(runtime_hexversion(), std::memory_order_relaxed);
  agent->filters().set_stdlib_dir(stdlib_directory());
  agent->set_main_thread_ident(PyThread_get_thread_ident());
  std::string error;
  if (!init_code_registry(&error)) {
    ring::set_agent_message(*agent->segment(), error.c_str());
    agent->segment()->agent_state.store(ring::kAgentStopped, std::memory_order_release);
    return;
  }
  agent->set_tracing(true);
  if (!install_tracing(&error)) agent->stop(("could not install tracing: " + error).c_str());
}

// Python raises these audit events right before it runs the program's main code, after site
// and everything else start-up runs: the moment `pyrewind run` starts tracing.
int audit_hook(const char* event, PyObject*, void*) {
  if (g_started || std::strncmp(event, "cpython.run_", 12) != 0) return 0;
  const char* what = event + 12;
  if (std::strcmp(what, "file") && std::strcmp(what, "module") && std::strcmp(what, "command") &&
      std::strcmp(what, "stdin"))
    return 0;
  g_started = true;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  start_tracing(what);
  PyErr_Restore(type, value, traceback);
  return 0;
}

}  // namespace
}  // namespace pyrewind::agent

// Called by the preload shim before Python initialises (from an ELF constructor).
extern "C" __attribute__((visibility("default"))) int pyrewind_agent_preload(const char* segment_name) {
  using namespace pyrewind::agent;
  std::string error;
  if (!Agent::create(segment_name, &error)) {
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
