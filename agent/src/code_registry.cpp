#include "src/code_registry.h"

#include <algorithm>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "src/agent.h"

namespace pyrewind::agent {
namespace {

Py_ssize_t g_extra_index = -1;
CodeMeta* g_first = nullptr;

void link(CodeMeta* meta) {
  meta->next = g_first;
  if (g_first) g_first->previous = meta;
  g_first = meta;
}

// Called by CPython when a code object dies (GIL held), for every extra slot: also empty ones.
void free_meta(void* opaque) {
  auto* meta = static_cast<CodeMeta*>(opaque);
  if (!meta) return;
  if (meta->previous) meta->previous->next = meta->next;
  else if (g_first == meta) g_first = meta->next;
  if (meta->next) meta->next->previous = meta->previous;
  delete meta;
}

std::string_view utf8_of(PyObject* text) {
  if (!text || !PyUnicode_Check(text)) return {};
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text, &size);
  if (!data) {
    PyErr_Clear();
    return {};
  }
  return {data, static_cast<size_t>(size)};
}

CodeMeta* lookup(PyCodeObject* code) { return static_cast<CodeMeta*>(compat::code_extra(code, g_extra_index)); }

CodeMeta* create(PyCodeObject* code, std::string_view qualified_name);

// Before 3.11, a class body's code is named after the bare class name; the body itself starts
// by storing its qualified name (__qualname__ = "Ledger.Entry"), the first str constant.
std::string_view class_body_qualified_name(PyCodeObject* code) {
  if (compat::code_uses_fast_locals(code) || !code->co_names || !PyTuple_Check(code->co_names) ||
      !code->co_consts || !PyTuple_Check(code->co_consts) || PyTuple_GET_SIZE(code->co_consts) == 0)
    return {};
  bool stores_qualname = false;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(code->co_names) && !stores_qualname; ++i) {
    PyObject* name = PyTuple_GET_ITEM(code->co_names, i);
    stores_qualname = PyUnicode_CheckExact(name) && PyUnicode_CompareWithASCIIString(name, "__qualname__") == 0;
  }
  PyObject* first = PyTuple_GET_ITEM(code->co_consts, 0);
  return stores_qualname && PyUnicode_CheckExact(first) ? utf8_of(first) : std::string_view();
}

// Before 3.11 code objects carry no qualified name; the function object gets it from a
// constant the compiler places right after the code object in the enclosing code's co_consts
// (LOAD_CONST code; LOAD_CONST "Ledger.add"; MAKE_FUNCTION). Register nested code objects
// with that name when their parent is first seen.
void register_nested(PyCodeObject* parent) {
  if (compat::code_qualified_name(parent) != nullptr) return;  // 3.11+: co_qualname exists
  PyObject* consts = parent->co_consts;
  if (!consts || !PyTuple_Check(consts)) return;
  const Py_ssize_t count = PyTuple_GET_SIZE(consts);
  for (Py_ssize_t i = 0; i + 1 < count; ++i) {
    PyObject* item = PyTuple_GET_ITEM(consts, i);
    PyObject* name = PyTuple_GET_ITEM(consts, i + 1);
    if (!PyCode_Check(item) || !PyUnicode_CheckExact(name)) continue;
    auto* nested = reinterpret_cast<PyCodeObject*>(item);
    if (!lookup(nested)) create(nested, utf8_of(name));
  }
}

// Fills the meta's slot_writes_* from the code's instructions and line table. Left unknown
// (every slot scanned) before 3.10, for frames wider than 64 slots, for code spanning more
// than kMaxLines lines, or when the instructions cannot be read.
void describe_slot_writes(CodeMeta* meta) {
  constexpr int64_t kMaxLines = 4096;
  meta->slot_writes_known = false;
  meta->slot_writes_by_line.clear();
  PyCodeObject* code = meta->code;
  const size_t slots = meta->name_ids.size();
  if (!compat::kLineEventsMarkEveryLineChange || slots > 64) return;
  uint64_t anywhere = 0;
  for (size_t slot = 0; slot < slots; ++slot)
    if (meta->kinds[slot] != compat::LocalKind::kPlain) anywhere |= uint64_t{1} << slot;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);  // may run inside an exception event
  auto release = [](PyObject* object) { Py_XDECREF(object); };
  std::unique_ptr<PyObject, decltype(release)> bytecode(compat::code_bytecode(code), release);
  PyErr_Clear();
  PyErr_Restore(type, value, traceback);
  if (!bytecode || !PyBytes_Check(bytecode.get())) return;
  const auto* units = reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(bytecode.get()));
  const Py_ssize_t size = PyBytes_GET_SIZE(bytecode.get()) & ~Py_ssize_t{1};
  std::vector<std::pair<int, uint64_t>> writes;  // (line, slots) per writing instruction
  int first = INT32_MAX, last = INT32_MIN;       // of those lines
  bool readable = true;
  for (Py_ssize_t offset = 0; offset < size && readable; offset += 2) {
    const uint64_t written = compat::instruction_slot_writes(units[offset], units[offset + 1]);
    if (!written) continue;
    // An argument above 255 (EXTENDED_ARG) cannot name one of 64 slots: not bytecode we know.
    readable = offset == 0 || units[offset - 2] != EXTENDED_ARG;
    const int line = PyCode_Addr2Line(code, static_cast<int>(offset));
    if (line < 0) {
      anywhere |= written;
      continue;
    }
    writes.emplace_back(line, written);
    first = std::min(first, line);
    last = std::max(last, line);
  }
  if (!readable) return;
  if (!writes.empty() && int64_t{last} - first >= kMaxLines) return;
  meta->slot_writes_first_line = writes.empty() ? 0 : first;
  meta->slot_writes_by_line.assign(writes.empty() ? 0 : static_cast<size_t>(last - first + 1), 0);
  for (const auto& [line, written] : writes) meta->slot_writes_by_line[static_cast<size_t>(line - first)] |= written;
  meta->slots_written_anywhere = anywhere;
  meta->slot_writes_known = true;
}

// What a traced code object's events need: its names as string ids, its slots' kinds and
// redaction (afresh, for code that becomes traced again). `qualified_name` may be empty (found
// here then).
void describe_traced(CodeMeta* meta, std::string_view qualified_name) {
  Agent& agent = *Agent::instance();
  meta->name_ids.clear();
  meta->kinds.clear();
  meta->redacted.clear();
  meta->plain_slots = false;
  PyCodeObject* code = meta->code;
  std::string_view file = utf8_of(code->co_filename);
  meta->file_id = agent.intern(file);
  if (qualified_name.empty()) qualified_name = utf8_of(compat::code_qualified_name(code));
  if (!compat::code_qualified_name(code)) {
    std::string_view class_name = class_body_qualified_name(code);
    if (!class_name.empty()) qualified_name = class_name;
  }
  if (qualified_name.empty()) qualified_name = utf8_of(code->co_name);
  meta->qualified_name_id = agent.intern(qualified_name);
  if (meta->fast_locals) {
    const int slots = compat::code_local_count(code);
    meta->name_ids.reserve(slots);
    meta->kinds.reserve(slots);
    meta->redacted.reserve(slots);
    for (int i = 0; i < slots; ++i) {
      std::string_view name = utf8_of(compat::code_local_name(code, i));
      meta->name_ids.push_back(agent.intern(name));
      meta->kinds.push_back(compat::code_local_kind(code, i));
      meta->redacted.push_back(agent.filters().redacts_name(name));
    }
    meta->plain_slots = true;
    for (int i = 0; i < slots; ++i)
      meta->plain_slots = meta->plain_slots && meta->kinds[i] == compat::LocalKind::kPlain && !meta->redacted[i];
    describe_slot_writes(meta);
  }
}

CodeMeta* create(PyCodeObject* code, std::string_view qualified_name) {
  Agent& agent = *Agent::instance();
  std::unique_ptr<CodeMeta> meta(new (std::nothrow) CodeMeta);
  if (!meta) return nullptr;
  meta->code = code;
  meta->id = agent.next_code_id();
  meta->traced = agent.filters().traces_file(utf8_of(code->co_filename));
  meta->fast_locals = compat::code_uses_fast_locals(code);
  meta->first_line = static_cast<uint32_t>(code->co_firstlineno);
  if (meta->traced) describe_traced(meta.get(), qualified_name);
  if (compat::code_set_extra(code, g_extra_index, meta.get()) != 0) {
    PyErr_Clear();
    return nullptr;
  }
  CodeMeta* result = meta.release();
  link(result);
  if (result->traced) register_nested(code);
  return result;
}

}  // namespace

namespace detail {
CodeMeta* first_code_meta() { return g_first; }
}  // namespace detail

void register_existing_functions() {
  if (compat::kCodeHasQualifiedName || g_extra_index < 0) return;
  constexpr size_t kMaxVisits = 200000;  // a few milliseconds, whatever the program holds
  size_t visits = 0;
  auto register_function = [&](PyObject* object) {
    if (Py_TYPE(object) == &PyStaticMethod_Type || Py_TYPE(object) == &PyClassMethod_Type) {
      PyObject* wrapped = PyObject_GetAttrString(object, "__func__");  // a C getter: no user code
      if (!wrapped) {
        PyErr_Clear();
        return;
      }
      object = wrapped;
      Py_DECREF(wrapped);  // still owned by the staticmethod/classmethod
    }
    if (!PyFunction_Check(object)) return;
    auto* function = reinterpret_cast<PyFunctionObject*>(object);
    PyObject* code = function->func_code;
    PyObject* qualified_name = function->func_qualname;
    if (!code || !PyCode_Check(code) || !qualified_name || !PyUnicode_CheckExact(qualified_name)) return;
    auto* code_object = reinterpret_cast<PyCodeObject*>(code);
    if (!lookup(code_object)) create(code_object, utf8_of(qualified_name));
  };
  PyObject* modules = PyImport_GetModuleDict();
  if (!modules || !PyDict_Check(modules)) return;
  Py_ssize_t module_position = 0;
  PyObject *module_name, *module;
  while (visits < kMaxVisits && PyDict_Next(modules, &module_position, &module_name, &module)) {
    if (!PyModule_Check(module)) continue;
    PyObject* globals = PyModule_GetDict(module);
    Py_ssize_t position = 0;
    PyObject *name, *value;
    while (globals && visits < kMaxVisits && PyDict_Next(globals, &position, &name, &value)) {
      ++visits;
      if (!PyType_Check(value)) {
        register_function(value);
        continue;
      }
      PyObject* members = reinterpret_cast<PyTypeObject*>(value)->tp_dict;
      Py_ssize_t member_position = 0;
      PyObject *member_name, *member;
      while (members && visits < kMaxVisits && PyDict_Next(members, &member_position, &member_name, &member)) {
        ++visits;
        register_function(member);
      }
    }
  }
}

bool init_code_registry(std::string* error) {
  if (g_extra_index >= 0) return true;
  g_extra_index = compat::request_code_extra_index(free_meta);
  if (g_extra_index < 0) {
    PyErr_Clear();
    *error = "no free code-object extra slot (another tool uses all of them)";
    return false;
  }
  return true;
}

void refilter_code_metas(std::vector<CodeMeta*>* now_untraced, size_t* now_traced) {
  const Filters& filters = Agent::instance()->filters();
  for (CodeMeta* meta = g_first; meta; meta = meta->next) {
    const bool traced = filters.traces_file(utf8_of(meta->code->co_filename));
    if (traced == meta->traced) continue;
    meta->traced = traced;
    if (!traced) {
      now_untraced->push_back(meta);
      continue;
    }
    ++*now_traced;
    // Its id stays: a definition announced while it was traced before describes it the same.
    describe_traced(meta, {});
  }
}

void release_code_metas() {
  while (CodeMeta* meta = g_first) {
    g_first = meta->next;
    compat::code_clear_extra(meta->code, g_extra_index);
    delete meta;
  }
}

CodeMeta* code_meta(PyCodeObject* code) {
  if (CodeMeta* meta = lookup(code)) return meta;
  try {
    return create(code, {});
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

}  // namespace pyrewind::agent
