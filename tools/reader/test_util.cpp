#include "tools/reader/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pyrewind::testing {
namespace {

void remove_tree(const std::string& path) {
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      struct stat st {};
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(child);
      else
        unlink(child.c_str());
    }
    closedir(d);
  }
  rmdir(path.c_str());
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/pyrewind-reader-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() { remove_tree(path_); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

v1::RecordingHeader test_header() {
  v1::RecordingHeader h;
  h.set_python_implementation("cpython");
  h.set_python_version("3.12.1");
  h.set_python_hexversion(0x030c01f0);
  h.set_pid(4242);
  h.add_argv("python3");
  h.add_argv("app.py");
  h.add_argv("arg with space");
  h.set_cwd("/home/user/project");
  h.set_start_wall_time_ns(1700000000123456789ull);
  h.set_start_monotonic_ns(0);  // event times below are small numbers
  h.set_host("testhost");
  h.set_executable("/usr/bin/python3");
  h.set_mode("trace");
  h.set_pyrewind_version("0.1.0");
  return h;
}

v1::Value none() {
  v1::Value v;
  v.set_none(true);
  return v;
}
v1::Value boolean(bool b) {
  v1::Value v;
  v.set_bool_value(b);
  return v;
}
v1::Value integer(int64_t i) {
  v1::Value v;
  v.set_int_value(i);
  return v;
}
v1::Value real(double d) {
  v1::Value v;
  v.set_float_value(d);
  return v;
}
v1::Value text(const std::string& s) {
  v1::Value v;
  v.mutable_str_value()->set_text(s);
  v.mutable_str_value()->set_length(s.size());
  return v;
}
v1::Value list(uint64_t id, std::vector<v1::Value> items, uint64_t length) {
  v1::Value v;
  v1::Container* c = v.mutable_container();
  c->set_kind(v1::CONTAINER_LIST);
  c->set_id(id);
  c->set_length(length == UINT64_MAX ? items.size() : length);
  for (auto& item : items) *c->add_items() = std::move(item);
  c->set_truncated(c->length() > static_cast<uint64_t>(c->items_size()));
  return v;
}
v1::Value dict(uint64_t id, std::vector<std::pair<v1::Value, v1::Value>> items) {
  v1::Value v;
  v1::Container* c = v.mutable_container();
  c->set_kind(v1::CONTAINER_DICT);
  c->set_id(id);
  c->set_length(items.size());
  for (auto& [k, val] : items) {
    *c->add_items() = std::move(k);
    *c->add_items() = std::move(val);
  }
  return v;
}
v1::Value object(const std::string& type, uint64_t id) {
  v1::Value v;
  v.mutable_object()->set_type_name(type);
  v.mutable_object()->set_id(id);
  return v;
}
v1::Value redacted() {
  v1::Value v;
  v.set_redacted(true);
  return v;
}

v1::Binding slot(uint32_t s, const v1::Value& value) {
  v1::Binding b;
  b.set_slot(s);
  *b.mutable_value() = value;
  return b;
}
v1::Binding named(const std::string& name, const v1::Value& value) {
  v1::Binding b;
  b.set_name(name);
  *b.mutable_value() = value;
  return b;
}
v1::Binding unbound_slot(uint32_t s) {
  v1::Binding b;
  b.set_slot(s);
  b.set_unbound(true);
  return b;
}
v1::Binding unbound_name(const std::string& name) {
  v1::Binding b;
  b.set_name(name);
  b.set_unbound(true);
  return b;
}

RecordingBuilder::RecordingBuilder(const std::string& path, const v1::RecordingHeader& header,
                                   const collector::OutputOptions& output) {
  std::string error;
  writer_ = collector::RecordingWriter::create(path, header, &error, output);
  if (!writer_) throw std::runtime_error("cannot create recording: " + error);
}

uint64_t RecordingBuilder::str(const std::string& s) {
  auto it = strings_.find(s);
  if (it != strings_.end()) return it->second;
  uint64_t id = next_string_++;
  strings_[s] = id;
  v1::Packet p;
  p.mutable_string_def()->set_id(id);
  p.mutable_string_def()->set_text(s);
  writer_->add_string(id, p.SerializeAsString());
  return id;
}

uint64_t RecordingBuilder::code(const std::string& file, const std::string& qualname, uint32_t first_line,
                                const std::vector<std::string>& local_names, bool module_level, bool native) {
  uint64_t id = 1000 + next_code_++;
  v1::Packet p;
  v1::CodeDef* c = p.mutable_code_def();
  c->set_id(id);
  c->set_file_name_id(str(file));
  c->set_qualified_name_id(str(qualname));
  c->set_first_line(first_line);
  for (const auto& n : local_names) c->add_local_name_ids(str(n));
  c->set_module_level(module_level);
  c->set_native(native);
  std::vector<uint64_t> ids(c->local_name_ids().begin(), c->local_name_ids().end());
  writer_->add_code(id, c->file_name_id(), c->qualified_name_id(), ids.data(), ids.size(), p.SerializeAsString());
  return id;
}

void RecordingBuilder::thread(uint32_t index, uint64_t native_id, const std::string& name) {
  v1::Packet p;
  p.mutable_thread_start()->set_thread(index);
  p.mutable_thread_start()->set_native_id(native_id);
  p.mutable_thread_start()->set_name(name);
  p.mutable_thread_start()->set_ident(native_id * 16);
  writer_->add_thread(index, native_id, name, p.SerializeAsString());
}

void RecordingBuilder::end_thread(uint32_t index) {
  v1::Packet p;
  p.mutable_thread_end()->set_thread(index);
  writer_->end_thread(index, p.SerializeAsString());
}

void RecordingBuilder::event(const v1::Event& e) {
  v1::Packet p;
  *p.mutable_event() = e;
  collector::EventMeta meta;
  meta.thread = e.thread();
  meta.time_ns = e.time_ns();
  meta.code_id = e.code_id();
  meta.kind = static_cast<uint32_t>(e.kind());
  writer_->add_event(meta, p.SerializeAsString());
  ++events_;
}

static v1::Event base_event(v1::EventKind kind, uint32_t thread, uint64_t time, uint64_t code, uint32_t line,
                            uint32_t depth) {
  v1::Event e;
  e.set_kind(kind);
  e.set_thread(thread);
  e.set_time_ns(time);
  e.set_code_id(code);
  e.set_line(line);
  e.set_depth(depth);
  return e;
}

void RecordingBuilder::call(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
                            std::vector<v1::Binding> locals) {
  v1::Event e = base_event(v1::EVENT_CALL, thread, time, code, line, depth);
  for (auto& b : locals) *e.add_locals() = std::move(b);
  event(e);
}

void RecordingBuilder::line(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
                            std::vector<v1::Binding> delta, bool full_state) {
  v1::Event e = base_event(v1::EVENT_LINE, thread, time, code, line, depth);
  for (auto& b : delta) *e.add_locals() = std::move(b);
  e.set_full_state(full_state);
  event(e);
}

void RecordingBuilder::ret(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
                           const v1::Value* value) {
  v1::Event e = base_event(v1::EVENT_RETURN, thread, time, code, line, depth);
  if (value) *e.mutable_value() = *value;
  event(e);
}

void RecordingBuilder::exception(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
                                 v1::EventKind kind, const std::string& type, const std::string& message) {
  v1::Event e = base_event(kind, thread, time, code, line, depth);
  e.mutable_exception()->set_type_name(type);
  e.mutable_exception()->set_message(message);
  event(e);
}

void RecordingBuilder::raw_event(uint32_t thread, uint64_t time, const std::string& bytes) {
  collector::EventMeta meta;
  meta.thread = thread;
  meta.time_ns = time;
  meta.kind = v1::EVENT_LINE;
  writer_->add_event(meta, bytes);
  ++events_;
}

void RecordingBuilder::loss(uint32_t thread, uint64_t records, uint64_t bytes) {
  v1::Packet p;
  p.mutable_loss()->set_thread(thread);
  p.mutable_loss()->set_dropped_records(records);
  p.mutable_loss()->set_dropped_bytes(bytes);
  writer_->add_loss(thread, records, bytes, p.SerializeAsString());
}

void RecordingBuilder::sample(uint32_t thread, uint64_t time, const std::vector<uint64_t>& codes,
                              const std::vector<uint32_t>& lines, bool gil, bool idle) {
  v1::Packet p;
  v1::Sample& s = *p.mutable_sample();
  s.set_thread(thread);
  s.set_time_ns(time);
  for (uint64_t code : codes) s.add_code_ids(code);
  for (uint32_t line : lines) s.add_lines(line);
  s.set_gil(gil);
  s.set_idle(idle);
  writer_->add_sample(thread, time, codes.data(), codes.size(), p.SerializeAsString());
}

void RecordingBuilder::status(const std::string& message) {
  v1::Packet p;
  p.mutable_agent_status()->set_state(v1::AgentStatus::STATE_STOPPED);
  p.mutable_agent_status()->set_message(message);
  writer_->add_status(message, p.SerializeAsString());
}

bool RecordingBuilder::finish(int exit_status, bool exited) {
  v1::RecordingSummary extras;
  extras.set_exit_status(exit_status);
  extras.set_target_exited(exited);
  return writer_->finish(extras);
}

uint64_t write_sample(const std::string& path, bool finish) {
  RecordingBuilder b(path);
  // main thread: module code calling fib-like function, with a worker thread interleaved.
  uint64_t mod = b.code("/app/app.py", "<module>", 1, {}, true);
  uint64_t add = b.code("/app/app.py", "Ledger.add", 10, {"self", "amount", "total"});
  uint64_t work = b.code("/app/worker.py", "work", 3, {"n", "i", "acc"});
  b.thread(0, 1000, "MainThread");
  b.call(0, 10, mod, 1, 0, {});
  b.line(0, 20, mod, 1, 0, {});
  b.line(0, 30, mod, 2, 0, {named("x", integer(1))});
  b.line(0, 40, mod, 3, 0, {named("y", text("hi")), named("x", integer(2))});
  b.call(0, 50, add, 10, 1, {slot(0, object("Ledger", 0x7f00)), slot(1, integer(5))});
  b.line(0, 60, add, 11, 1, {});
  b.writer().flush_chunk();  // chunk boundary inside a frame
  b.line(0, 70, add, 12, 1, {slot(2, integer(5))});
  b.exception(0, 75, add, 12, 1, v1::EVENT_EXCEPTION, "ValueError", "bad amount");
  b.exception(0, 76, add, 12, 1, v1::EVENT_EXCEPTION_HANDLED, "ValueError", "bad amount");
  v1::Value five = integer(5);
  b.ret(0, 80, add, 13, 1, &five);
  b.thread(1, 1001, "worker");
  b.call(1, 85, work, 3, 0, {slot(0, integer(3))});
  b.line(1, 86, work, 4, 0, {});
  b.line(0, 90, mod, 4, 0, {named("z", list(0x1234, {integer(1), integer(2)}))});
  b.line(1, 95, work, 5, 0, {slot(1, integer(0)), slot(2, integer(0))});
  b.writer().flush_chunk();
  b.loss(1, 7, 700);
  b.line(1, 120, work, 5, 0, {slot(1, integer(2)), slot(2, integer(3))}, true);
  b.ret(1, 130, work, 6, 0, nullptr);
  b.end_thread(1);
  b.line(0, 140, mod, 5, 0, {unbound_name("x")});
  b.status("tracing stopped: test");
  b.ret(0, 150, mod, 5, 0, nullptr);
  uint64_t n = b.events();
  if (finish) {
    if (!b.finish(3)) throw std::runtime_error("finish failed: " + b.writer().error());
  }
  return n;
}

}  // namespace pyrewind::testing
