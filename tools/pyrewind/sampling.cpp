#include "tools/pyrewind/sampling.h"

#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <fstream>
#include <iterator>
#include <tuple>
#include <utility>

#include "collector/src/packet_validator.h"
#include "injector/attach/proc_info.h"
#include "tools/pyrewind/commands.h"

namespace pyrewind::cli {

int locate_failure(const inspect::LocateResult& located) {
  std::fprintf(stderr, "pyrewind: %s\n", located.message.c_str());
  switch (located.status) {
    case inspect::LocateStatus::kNoProcess:
      return kExitNoProcess;
    case inspect::LocateStatus::kPermissionDenied:
      return kExitPermission;
    case inspect::LocateStatus::kNotPython:
      return kExitNotPython;
    case inspect::LocateStatus::kUnsupported:
    case inspect::LocateStatus::kOk:
      break;
  }
  return kExitUnsupportedTarget;
}

namespace {
volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }
}  // namespace

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

bool stop_requested() { return g_stop != 0; }

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::vector<std::string> process_arguments(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    args.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

Ticker::Ticker(uint32_t hz) : period_ns_(1000000000ull / (hz ? hz : 1)), next_ns_(monotonic_ns()) {}

void Ticker::wait() {
  next_ns_ += period_ns_;
  // A tick a little late is taken at once; whole periods missed are skipped.
  const uint64_t now = monotonic_ns();
  if (next_ns_ + period_ns_ <= now) next_ns_ = now - (now - next_ns_) % period_ns_;
  timespec at{static_cast<time_t>(next_ns_ / 1000000000ull), static_cast<long>(next_ns_ % 1000000000ull)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
}

std::vector<pid_t> descendant_pids(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // parent -> child
  if (DIR* proc = opendir("/proc")) {
    while (const dirent* entry = readdir(proc)) {
      char* end = nullptr;
      const long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      std::ifstream stat_file(std::string("/proc/") + entry->d_name + "/stat");
      std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so after the last ')'.
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      char state = 0;
      long parent = 0;
      if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &parent) == 2 && parent > 0)
        children.emplace(static_cast<pid_t>(parent), static_cast<pid_t>(pid));
    }
    closedir(proc);
  }
  std::vector<pid_t> found;
  std::vector<pid_t> pending{root};
  while (!pending.empty()) {
    const pid_t parent = pending.back();
    pending.pop_back();
    auto [begin, end] = children.equal_range(parent);
    for (auto it = begin; it != end; ++it) {
      found.push_back(it->second);
      pending.push_back(it->second);
    }
  }
  return found;
}

uint64_t CodeTable::intern(const inspect::Frame& frame, bool* is_new) {
  *is_new = false;
  if (auto it = by_address_.find(frame.code); it != by_address_.end()) {
    const Code& known = codes_[it->second - first_id_];
    if (known.first_line == frame.first_line && known.function == frame.function && known.file == frame.file)
      return it->second;
  }
  auto [it, inserted] = by_key_.try_emplace({frame.file, frame.function, frame.first_line}, first_id_ + codes_.size());
  if (inserted) {
    codes_.push_back({frame.function, frame.file, frame.first_line});
    *is_new = true;
  }
  by_address_[frame.code] = it->second;
  return it->second;
}

uint64_t CodeTable::intern_native(const std::string& module, const std::string& symbol, bool* is_new) {
  auto [it, inserted] = by_key_.try_emplace({module, symbol, -1}, first_id_ + codes_.size());
  *is_new = inserted;
  if (inserted) codes_.push_back({symbol, module, -1});
  return it->second;
}

SampleRecorder::SampleRecorder(collector::RecordingWriter& writer, SampleIds ids)
    : writer_(writer), ids_(std::move(ids)), codes_(ids_.first_id) {}

void SampleRecorder::add(const inspect::ThreadStack& thread, pid_t pid,
                         const std::vector<inspect::MergedFrame>* merged, bool gil_known, uint64_t time_ns) {
  v1::Sample& sample = *packet_.mutable_sample();
  sample.Clear();
  auto add_python = [&](const inspect::Frame& frame) {
    sample.add_code_ids(code_id(frame));
    sample.add_lines(frame.line > 0 ? static_cast<uint32_t>(frame.line) : 0);
  };
  if (merged) {
    for (const inspect::MergedFrame& frame : *merged) {
      if (!frame.native) {
        add_python(frame.python);
        continue;
      }
      sample.add_code_ids(native_code_id(frame.c_frame));
      sample.add_lines(0);
    }
  } else {
    for (const inspect::Frame& frame : thread.frames) add_python(frame);
  }
  const uint32_t index = thread_index(thread, pid);
  sample.set_thread(index);
  sample.set_time_ns(time_ns);
  sample.set_gil(gil_known && thread.holds_gil);
  sample.set_idle(is_idle(thread));
  packet_.SerializeToString(&bytes_);
  writer_.add_sample(index, time_ns, sample.code_ids().data(), static_cast<size_t>(sample.code_ids_size()), bytes_);
}

uint64_t SampleRecorder::string_id(const std::string& text) {
  auto [it, inserted] = strings_.try_emplace(text, ids_.first_id + strings_.size());
  if (inserted) {
    v1::Packet def;
    def.mutable_string_def()->set_id(it->second);
    def.mutable_string_def()->set_text(collector::to_valid_utf8(text));
    writer_.add_string(it->second, def.SerializeAsString());
  }
  return it->second;
}

void SampleRecorder::define_code(uint64_t id, const std::string& file, const std::string& name, int first_line,
                                 bool native) {
  const uint64_t file_id = string_id(file), name_id = string_id(name);
  v1::Packet def;
  v1::CodeDef& code = *def.mutable_code_def();
  code.set_id(id);
  code.set_file_name_id(file_id);
  code.set_qualified_name_id(name_id);
  code.set_first_line(first_line > 0 ? static_cast<uint32_t>(first_line) : 0);
  code.set_native(native);
  writer_.add_code(id, file_id, name_id, nullptr, 0, def.SerializeAsString());
}

uint64_t SampleRecorder::code_id(const inspect::Frame& frame) {
  bool is_new = false;
  const uint64_t id = codes_.intern(frame, &is_new);
  if (is_new) define_code(id, frame.file, frame.function, frame.first_line, false);
  return id;
}

uint64_t SampleRecorder::native_code_id(const inspect::NativeFrame& frame) {
  bool is_new = false;
  const uint64_t id = codes_.intern_native(frame.module, frame.symbol, &is_new);
  if (is_new) define_code(id, frame.module, frame.symbol, 0, true);
  return id;
}

uint32_t SampleRecorder::thread_index(const inspect::ThreadStack& stack, pid_t pid) {
  auto [it, inserted] = threads_.try_emplace({pid, stack.pthread_id});
  Thread& t = it->second;
  const bool reused = !inserted && t.native_id && stack.native_id && t.native_id != stack.native_id;
  if (!inserted && !reused && (t.announced_elsewhere || t.name == stack.os_name) && (t.native_id || !stack.native_id))
    return t.index;
  if (inserted || reused) {
    t.announced_elsewhere = false;
    if (ids_.new_thread_index) {
      std::tie(t.index, t.announced_elsewhere) = ids_.new_thread_index(stack.native_id);
    } else {
      t.index = next_thread_++;
    }
  }
  t.native_id = stack.native_id;
  t.name = stack.os_name;
  if (t.announced_elsewhere) return t.index;
  v1::Packet start;
  v1::ThreadStart& s = *start.mutable_thread_start();
  s.set_thread(t.index);
  s.set_native_id(static_cast<uint64_t>(t.native_id));
  s.set_name(collector::to_valid_utf8(t.name));
  s.set_ident(stack.pthread_id);
  s.set_pid(static_cast<uint64_t>(pid));
  writer_.add_thread(t.index, static_cast<uint64_t>(t.native_id), t.name, start.SerializeAsString(),
                     static_cast<uint64_t>(pid));
  return t.index;
}

std::unique_ptr<inspect::NativeStacks> stop_threads(pid_t pid, int* exit_code, std::string* error) {
  int err = 0;
  auto stopped = inspect::NativeStacks::stop(pid, error, &err);
  if (!stopped) *exit_code = err == EPERM ? kExitPermission : err == ESRCH ? kExitNoProcess : kExitTargetNotRunning;
  return stopped;
}

bool sample_once(inspect::StackReader& reader, SampleRecorder& recorder, NativeSampling* native, pid_t recorded_pid,
                 uint64_t start_ns, SampleCounts* counts) {
  static const inspect::StackOptions kOptions;  // no locals
  std::unique_ptr<inspect::NativeStacks> stopped;
  if (native) {
    int exit_code = 0;
    std::string why;
    stopped = stop_threads(native->pid, &exit_code, &why);
    if (!stopped) return false;
  }
  inspect::Snapshot snapshot;
  std::string error;
  const uint64_t time_ns = monotonic_ns() - start_ns;
  if (!reader.read(kOptions, &snapshot, &error)) return false;
  std::vector<std::vector<inspect::MergedFrame>> merged(snapshot.threads.size());
  if (stopped) {
    for (size_t i = 0; i < snapshot.threads.size(); ++i) {
      inspect::ThreadStack& thread = snapshot.threads[i];
      // Idle: stopped inside a system call. The scheduler state would show a sleeper that the
      // previous tick's stop woke as running until it is back in its call, on a busy machine
      // for a whole period.
      if (auto in_call = stopped->in_system_call(thread.native_id)) thread.os_state = *in_call ? 'S' : 'R';
      if (!thread.error.empty()) continue;
      std::vector<inspect::NativeFrame> frames;
      std::string why = "no native thread id";
      if (thread.native_id > 0 && stopped->unwind(native->unwinder, thread.native_id, &frames, &why))
        merged[i] = inspect::merge_stacks(thread.frames, frames);
      else
        thread.error = why;
    }
    stopped.reset();  // the threads run on before anything is written
  }
  for (size_t i = 0; i < snapshot.threads.size(); ++i) {
    const inspect::ThreadStack& thread = snapshot.threads[i];
    if (!thread.error.empty()) {
      ++counts->dropped;
      continue;
    }
    recorder.add(thread, recorded_pid, native ? &merged[i] : nullptr, snapshot.gil_known, time_ns);
    ++counts->samples;
  }
  if (time_ns - counts->flushed_ns >= kSampleFlushIntervalNs) {
    counts->flushed_ns = time_ns;
    recorder.flush();
  }
  return true;
}

}  // namespace pyrewind::cli
