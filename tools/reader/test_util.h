// Helpers for the reader tests: building realistic recordings with the real writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collector/src/recording_writer.h"
#include "pyrewind/v1/recording.pb.h"
#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::testing {

// A directory removed (recursively) with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

v1::RecordingHeader test_header();

// Value constructors.
v1::Value none();
v1::Value boolean(bool b);
v1::Value integer(int64_t i);
v1::Value real(double d);
v1::Value text(const std::string& s);
v1::Value list(uint64_t id, std::vector<v1::Value> items, uint64_t length = UINT64_MAX);
v1::Value dict(uint64_t id, std::vector<std::pair<v1::Value, v1::Value>> items);
v1::Value object(const std::string& type, uint64_t id);
v1::Value redacted();

v1::Binding slot(uint32_t slot, const v1::Value& value);
v1::Binding named(const std::string& name, const v1::Value& value);
v1::Binding unbound_slot(uint32_t slot);
v1::Binding unbound_name(const std::string& name);

// Drives a RecordingWriter the way the collector does: every packet serialized, definitions
// announced before use.
class RecordingBuilder {
 public:
  explicit RecordingBuilder(const std::string& path, const v1::RecordingHeader& header = test_header(),
                            const collector::OutputOptions& output = {});
  collector::RecordingWriter& writer() { return *writer_; }
  std::unique_ptr<collector::RecordingWriter>& writer_ptr() { return writer_; }

  // Interns a string (StringDef packet) and returns its id.
  uint64_t str(const std::string& s);
  // Defines a code object; returns its id.
  // `native`: a C function (sample --native), `file` its module.
  uint64_t code(const std::string& file, const std::string& qualname, uint32_t first_line,
                const std::vector<std::string>& local_names, bool module_level = false, bool native = false);
  void thread(uint32_t index, uint64_t native_id, const std::string& name);
  void end_thread(uint32_t index);

  // Events. `time` is absolute ns since the start.
  void call(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
            std::vector<v1::Binding> locals);
  void line(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
            std::vector<v1::Binding> delta, bool full_state = false);
  void ret(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
           const v1::Value* value);
  void exception(uint32_t thread, uint64_t time, uint64_t code, uint32_t line, uint32_t depth,
                 v1::EventKind kind, const std::string& type, const std::string& message);
  void event(const v1::Event& event);
  void raw_event(uint32_t thread, uint64_t time, const std::string& bytes);  // not a valid Packet
  void loss(uint32_t thread, uint64_t records, uint64_t bytes);
  // A sampled stack: code ids and lines innermost first.
  void sample(uint32_t thread, uint64_t time, const std::vector<uint64_t>& codes, const std::vector<uint32_t>& lines,
              bool gil = false, bool idle = false);
  void status(const std::string& message);

  bool finish(int exit_status = 0, bool exited = true);
  uint64_t events() const { return events_; }

 private:
  std::unique_ptr<collector::RecordingWriter> writer_;
  std::map<std::string, uint64_t> strings_;
  uint64_t next_string_ = 1;
  uint64_t next_code_ = 1;
  uint64_t events_ = 0;
};

// A small recording with two threads, nested calls, deltas, returns, exceptions, a loss and an
// agent message, spread over several chunks (flush_chunk between phases).
// Returns the number of events written.
uint64_t write_sample(const std::string& path, bool finish = true);

}  // namespace pyrewind::testing
