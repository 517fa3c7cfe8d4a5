#include "src/thread_state.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <new>

#include "proto/wire/fields.h"
#include "proto/wire/proto_writer.h"
#include "src/agent.h"
#include "src/code_registry.h"

namespace pyrewind::agent {
namespace f = wire::fields;

__thread ThreadState* detail::t_state __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {
using detail::t_state;

// Owned by the thread; destroyed at thread exit, which completes the thread's last chunk.
thread_local std::unique_ptr<ThreadState> t_owner;
__thread bool t_failed __attribute__((tls_model("initial-exec"))) = false;

// Every live ThreadState, so that a detach can complete the chunks of all threads. Guarded by
// the mutex, not the GIL: threads exit (and destroy their state) without holding the GIL.
std::mutex g_registry_mutex;
ThreadState* g_registry = nullptr;

bool mark(std::vector<uint8_t>& set, uint64_t id) {
  if (id >= set.size()) set.resize(id + 1 + id / 2);
  if (set[id]) return false;
  set[id] = true;
  return true;
}

// Python's name for this thread (threading.Thread.name), read from the Thread object's
// __dict__ without calling any Python code; empty if unknown.
std::string python_thread_name() {
  PyObject* modules = PyImport_GetModuleDict();
  PyObject* threading = modules ? PyDict_GetItemString(modules, "threading") : nullptr;
  if (!threading || !PyModule_Check(threading)) return {};
  PyObject* active = PyDict_GetItemString(PyModule_GetDict(threading), "_active");
  if (!active || !PyDict_CheckExact(active)) return {};
  PyObject* ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
  if (!ident) {
    PyErr_Clear();
    return {};
  }
  PyObject* thread = PyDict_GetItem(active, ident);
  Py_DECREF(ident);
  if (!thread) return {};
  PyObject** dict_slot = _PyObject_GetDictPtr(thread);
  if (!dict_slot || !*dict_slot || !PyDict_CheckExact(*dict_slot)) return {};
  PyObject* name = PyDict_GetItemString(*dict_slot, "_name");
  if (!name || !PyUnicode_CheckExact(name)) return {};
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(name, &size);
  if (!text) {
    PyErr_Clear();
    return {};
  }
  return std::string(text, static_cast<size_t>(std::min<Py_ssize_t>(size, 256)));
}

}  // namespace

ThreadState* ThreadState::create_current() {
  Agent* agent = Agent::instance();
  if (t_failed || !agent || agent->in_forked_child() || !agent->session_open()) return nullptr;
  t_state = nullptr;
  t_owner.reset();  // a state closed by a previous session's detach
  const uint32_t payload = ring::chunk_payload_bytes(agent->segment()->chunk_bytes);
  // A record must fit in one chunk with its framing.
  const size_t scratch = std::min<size_t>(agent->limits().max_event_bytes, payload - 16);
  t_owner.reset(new (std::nothrow) ThreadState(agent->segment(), agent->next_writer_id(), scratch));
  if (!t_owner || !t_owner->scratch_ || !t_owner->walked) {
    t_owner.reset();
    t_failed = true;
    return nullptr;
  }
  t_state = t_owner.get();
  t_state->write_thread_start();
  return t_state;
}

ThreadState::ThreadState(ring::SegmentHeader* segment, uint32_t writer_id, size_t scratch_size)
    : walked(new (std::nothrow) WalkedSlot[kMaxWalkedSlots]),
      writer_(segment, writer_id),
      scratch_(new (std::nothrow) uint8_t[scratch_size]),
      scratch_size_(scratch_size) {
  stack.reserve(64);
  fingerprints.resize(1024);
  items_shadows.resize(1024);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  next_ = g_registry;
  if (g_registry) g_registry->previous_ = this;
  g_registry = this;
}

ThreadState::~ThreadState() {
  // Runs at thread exit without the GIL, or when a closed state is replaced. A forked child
  // must not take the mutex (another thread of the parent may have held it at fork) and
  // never writes to the parent's ring anyway.
  if (t_state == this) t_state = nullptr;
  Agent* agent = Agent::instance();
  if (agent && agent->in_forked_child()) return;
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  if (previous_) previous_->next_ = next_;
  else if (g_registry == this) g_registry = next_;
  if (next_) next_->previous_ = previous_;
  if (closed_) return;
  wire::ProtoWriter writer(scratch_.get(), scratch_size_);
  auto end = writer.begin_nested(f::Packet::kThreadEnd);
  writer.varint_field(f::ThreadEnd::kThread, index());
  writer.end_nested(end);
  writer_.append(writer.data(), writer.size(), last_time_ns);
  writer_.finish();
}

void ThreadState::close_all() {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (ThreadState* state = g_registry; state; state = state->next_) {
    if (state->closed_) continue;
    // The thread's destructor may run after the segment is unmapped (at thread or process
    // exit), and a writer whose drop counts found no free chunk would try again then.
    state->writer_.close();
    state->closed_ = true;
  }
}

void ThreadState::restart_all() {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (ThreadState* state = g_registry; state; state = state->next_) {
    if (state->closed_) continue;
    state->stack.clear();
    state->slots_used = 0;
  }
}

void ThreadState::rescan_all() {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (ThreadState* state = g_registry; state; state = state->next_)
    for (FrameShadow& frame : state->stack) frame.scan_every_slot = true;
}

bool ThreadState::commit(size_t size, uint64_t time_base_ns) {
  bool written = writer_.append(scratch_.get(), size, time_base_ns);
  if (writer_.take_drop_flag()) {
    // The collector lost records of this thread: make every frame's next event complete, and
    // re-announce definitions, which may have been among the lost.
    for (auto& frame : stack) frame.full_state_due = true;
    announced_codes_.assign(announced_codes_.size(), 0);
    announced_strings_.assign(announced_strings_.size(), 0);
    thread_start_due_ = true;
  }
  return written;
}

bool ThreadState::write_thread_start() {
  wire::ProtoWriter writer(scratch_.get(), scratch_size_);
  auto start = writer.begin_nested(f::Packet::kThreadStart);
  writer.varint_field(f::ThreadStart::kThread, index());
  writer.varint_field(f::ThreadStart::kNativeId, static_cast<uint64_t>(syscall(SYS_gettid)));
  std::string name = python_thread_name();
  if (name.empty() && PyThread_get_thread_ident() == Agent::instance()->main_thread_ident()) name = "MainThread";
  if (!name.empty()) writer.bytes_field(f::ThreadStart::kName, name.data(), name.size());
  writer.varint_field(f::ThreadStart::kIdent, PyThread_get_thread_ident());
  writer.end_nested(start);
  thread_start_due_ = writer.overflowed() || !commit(writer.size(), last_time_ns);
  return !thread_start_due_;
}

bool ThreadState::announce_string(uint64_t id) {
  if (id == 0 || (id < announced_strings_.size() && announced_strings_[id])) return true;
  const std::string& text = Agent::instance()->string_text(id);
  wire::ProtoWriter writer(scratch_.get(), scratch_size_);
  auto def = writer.begin_nested(f::Packet::kStringDef);
  writer.varint_field(f::StringDef::kId, id);
  writer.bytes_field(f::StringDef::kText, text.data(), std::min<size_t>(text.size(), scratch_size_ / 2));
  writer.end_nested(def);
  if (writer.overflowed() || !commit(writer.size(), last_time_ns)) return false;
  mark(announced_strings_, id);
  return true;
}

bool ThreadState::announce_code(const CodeMeta& meta) {
  if (thread_start_due_ && !write_thread_start()) return false;
  if (!announce_string(meta.file_id) || !announce_string(meta.qualified_name_id)) return false;
  for (uint64_t id : meta.name_ids)
    if (!announce_string(id)) return false;
  wire::ProtoWriter writer(scratch_.get(), scratch_size_);
  auto def = writer.begin_nested(f::Packet::kCodeDef);
  writer.varint_field(f::CodeDef::kId, meta.id);
  writer.varint_field(f::CodeDef::kFileNameId, meta.file_id);
  writer.varint_field(f::CodeDef::kQualifiedNameId, meta.qualified_name_id);
  writer.varint_field(f::CodeDef::kFirstLine, meta.first_line);
  if (!meta.name_ids.empty()) {
    auto packed = writer.begin_nested(f::CodeDef::kLocalNameIds);
    for (uint64_t id : meta.name_ids) writer.raw_varint(id);
    writer.end_nested(packed);
  }
  if (!meta.fast_locals) writer.bool_field(f::CodeDef::kModuleLevel, true);
  writer.end_nested(def);
  if (writer.overflowed() || !commit(writer.size(), last_time_ns)) return false;
  mark(announced_codes_, meta.id);
  return true;
}

}  // namespace pyrewind::agent
