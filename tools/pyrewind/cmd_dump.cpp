// `pyrewind dump PID [--locals] [--native] [--json]`: every thread's Python stack of a running
// process, read from its memory while it runs (injector/inspect/): no ptrace stop, no code run
// in it, so it works on a deadlocked interpreter too. Then the pending asyncio tasks, each with
// the chain of coroutines it awaits in. --native stops the threads for the
// moment it takes to unwind their C stacks too (libunwind), merged with the Python frames.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "injector/attach/proc_info.h"
#include "injector/inspect/native_stacks.h"
#include "injector/inspect/python_process.h"
#include "injector/inspect/python_stacks.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/sampling.h"
#include "tools/reader/json.h"
#include "tools/reader/python_text.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;
using inspect::Value;

// The running target can change a stack while it is read; a snapshot in which a thread did
// not check out is taken again, up to this many times, and the best one shown.
constexpr int kAttempts = 3;

std::string command_line(pid_t pid) {
  std::string text;
  for (const std::string& arg : process_arguments(pid)) text += (text.empty() ? "" : " ") + arg;
  return text;
}

std::string value_text(const Value& value) {
  switch (value.kind) {
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return value.boolean ? "True" : "False";
    case Value::Kind::kInt:
      return value.integer.empty() ? "<int of " + std::to_string(value.int_bits) + " bits>" : value.integer;
    case Value::Kind::kFloat:
      return json::python_float_repr(value.number);
    case Value::Kind::kStr:
    case Value::Kind::kBytes: {
      std::string text = reader::python_quoted(value.text, value.kind == Value::Kind::kBytes);
      if (value.truncated)
        text += "... (" + std::to_string(value.length) + (value.kind == Value::Kind::kStr ? " chars)" : " bytes)");
      return text;
    }
    case Value::Kind::kContainer:
      return "<" + value.type + " of " + std::to_string(value.length) + (value.length == 1 ? " item" : " items") +
             " at " + reader::hex_address(value.address) + ">";
    case Value::Kind::kOther:
      return "<" + value.type + " at " + reader::hex_address(value.address) + ">";
    case Value::Kind::kUnreadable:
      break;
  }
  return "<unreadable" + (value.type.empty() ? "" : " " + value.type) + " at " + reader::hex_address(value.address) + ">";
}

void append_value_json(std::string& o, const Value& value) {
  o += "\"type\":";
  json::append_string(o, value.kind == Value::Kind::kUnreadable ? "unreadable" : value.type);
  o += ",\"value\":";
  switch (value.kind) {
    case Value::Kind::kNone:
      o += "null";
      break;
    case Value::Kind::kBool:
      o += value.boolean ? "true" : "false";
      break;
    case Value::Kind::kInt: {
      // A number while it fits in an int64 (a string beyond 2^53, json.h), else the digits.
      errno = 0;
      char* end = nullptr;
      const long long small = value.integer.empty() ? 0 : std::strtoll(value.integer.c_str(), &end, 10);
      if (value.integer.empty())
        o += "null,\"bits\":" + std::to_string(value.int_bits);
      else if (errno == 0 && end && *end == '\0')
        json::append_int(o, small);
      else
        json::append_string(o, value.integer);
      break;
    }
    case Value::Kind::kFloat:
      json::append_float(o, value.number);
      break;
    case Value::Kind::kStr:
      json::append_string(o, value.text);
      break;
    case Value::Kind::kBytes:
      json::append_hex(o, value.text);
      break;
    case Value::Kind::kContainer:
    case Value::Kind::kOther:
    case Value::Kind::kUnreadable:
      o += "null";
      break;
  }
  if (value.kind == Value::Kind::kStr || value.kind == Value::Kind::kBytes || value.kind == Value::Kind::kContainer) {
    o += ",\"len\":";
    json::append_uint(o, value.length);
  }
  if (value.truncated) o += ",\"truncated\":true";
  if (value.kind == Value::Kind::kContainer || value.kind == Value::Kind::kOther ||
      value.kind == Value::Kind::kUnreadable) {
    o += ",\"address\":";
    json::append_string(o, reader::hex_address(value.address));
  }
}

// With --native: each thread's merged stack, by native thread id.
using NativeByThread = std::map<pid_t, std::vector<inspect::MergedFrame>>;

std::string native_text(const inspect::NativeFrame& frame) {
  std::string o = frame.symbol.empty() ? reader::hex_address(frame.ip) : frame.symbol;
  o += " (" + (frame.module.empty() ? std::string("?") : frame.module) + ") [native]";
  return o;
}

void append_native_json(std::string& o, const inspect::NativeFrame& frame) {
  o += "{\"native\":true,\"symbol\":";
  json::append_string(o, frame.symbol);
  o += ",\"offset\":";
  json::append_uint(o, frame.offset);
  o += ",\"module\":";
  json::append_string(o, frame.module);
  o += ",\"ip\":";
  json::append_string(o, reader::hex_address(frame.ip));
  o += "}";
}

const char* activity(const inspect::ThreadStack& thread) {
  if (thread.os_state == '?') return "unknown";
  return thread.os_state == 'R' ? "active" : "idle";
}

void append_frame_json(std::string& o, const inspect::Frame& frame) {
  o += "{\"function\":";
  json::append_string(o, frame.function);
  o += ",\"file\":";
  json::append_string(o, frame.file);
  o += ",\"line\":";
  if (frame.line >= 0)
    json::append_int(o, frame.line);
  else
    o += "null";
  if (!frame.locals.empty()) {
    o += ",\"locals\":[";
    for (size_t l = 0; l < frame.locals.size(); ++l) {
      if (l) o += ",";
      o += "{\"name\":";
      json::append_string(o, frame.locals[l].name);
      o += ",";
      append_value_json(o, frame.locals[l].value);
      o += "}";
    }
    o += "]";
  }
  o += "}";
}

// "tasks": the pending asyncio tasks ([] without asyncio), "tasks_error" when unreadable.
void append_tasks_json(std::string& o, const inspect::AsyncioTasks& asyncio) {
  o += ",\"tasks\":[";
  for (size_t i = 0; i < asyncio.tasks.size(); ++i) {
    const inspect::AsyncTask& task = asyncio.tasks[i];
    if (i) o += ",";
    o += "{\"name\":";
    json::append_string(o, task.name);
    o += ",\"address\":";
    json::append_string(o, reader::hex_address(task.address));
    o += ",\"running\":";
    o += task.running ? "true" : "false";
    o += ",\"waiting_for\":";
    if (task.waiting_for == 0) {
      o += "null";
    } else {
      o += "{\"type\":";
      json::append_string(o, task.waiting_for_type);
      o += ",\"address\":";
      json::append_string(o, reader::hex_address(task.waiting_for));
      if (!task.waiting_for_task.empty()) {
        o += ",\"task\":";
        json::append_string(o, task.waiting_for_task);
      }
      o += "}";
    }
    o += ",\"frames\":[";
    for (size_t f = 0; f < task.frames.size(); ++f) {
      if (f) o += ",";
      append_frame_json(o, task.frames[f]);
    }
    o += "]";
    if (!task.error.empty()) {
      o += ",\"error\":";
      json::append_string(o, task.error);
    }
    o += "}";
  }
  o += "]";
  if (!asyncio.unreadable.empty()) {
    o += ",\"tasks_error\":";
    json::append_string(o, asyncio.unreadable);
  }
  if (asyncio.other_tasks > 0) {
    o += ",\"tasks_not_shown\":";
    json::append_uint(o, asyncio.other_tasks);
  }
}

std::string render_json(const inspect::PythonTarget& target, const inspect::Snapshot& snapshot,
                        const inspect::AsyncioTasks& asyncio, const NativeByThread& native) {
  std::string o = "{\"pid\":";
  json::append_int(o, target.pid);
  o += ",\"command\":";
  json::append_string(o, command_line(target.pid));
  o += ",\"python\":";
  json::append_string(o, target.version);
  o += ",\"image\":";
  json::append_string(o, target.image);
  o += ",\"threads\":[";
  for (size_t i = 0; i < snapshot.threads.size(); ++i) {
    const inspect::ThreadStack& t = snapshot.threads[i];
    if (i) o += ",";
    o += "{\"native_id\":";
    if (t.native_id > 0)
      json::append_int(o, t.native_id);
    else
      o += "null";
    o += ",\"ident\":";
    json::append_uint(o, t.pthread_id);
    o += ",\"name\":";
    json::append_string(o, t.os_name);
    o += ",\"interpreter\":";
    json::append_int(o, t.interpreter_id);
    o += ",\"state\":";
    json::append_string(o, activity(t));
    o += ",\"holds_gil\":";
    o += snapshot.gil_known ? (t.holds_gil ? "true" : "false") : "null";
    o += ",\"frames\":[";
    if (auto merged = native.find(t.native_id); merged != native.end()) {
      for (size_t f = 0; f < merged->second.size(); ++f) {
        if (f) o += ",";
        if (merged->second[f].native)
          append_native_json(o, merged->second[f].c_frame);
        else
          append_frame_json(o, merged->second[f].python);
      }
    } else {
      for (size_t f = 0; f < t.frames.size(); ++f) {
        if (f) o += ",";
        append_frame_json(o, t.frames[f]);
      }
    }
    o += "]";
    if (!t.error.empty()) {
      o += ",\"error\":";
      json::append_string(o, t.error);
    }
    o += "}";
  }
  o += "]";
  append_tasks_json(o, asyncio);
  o += "}\n";
  return o;
}

void append_frame_text(std::string& o, const inspect::Frame& frame) {
  o += "    " + frame.function + " (" + frame.file;
  if (frame.line >= 0) o += ":" + std::to_string(frame.line);
  o += ")\n";
  for (const inspect::Local& local : frame.locals) o += "        " + local.name + " = " + value_text(local.value) + "\n";
}

// After the threads: each pending asyncio task, its await chain innermost first.
void append_tasks_text(std::string& o, const inspect::AsyncioTasks& asyncio) {
  if (!asyncio.unreadable.empty()) {
    o += "\nasyncio tasks: not readable (" + asyncio.unreadable + ")\n";
    return;
  }
  if (!asyncio.imported) return;
  o += "\nasyncio tasks: " + std::to_string(asyncio.tasks.size()) + " pending\n";
  if (asyncio.other_tasks > 0)
    o += "    (" + std::to_string(asyncio.other_tasks) + " not of the C Task type, e.g. pure-Python tasks: not shown)\n";
  for (const inspect::AsyncTask& task : asyncio.tasks) {
    o += "\nTask \"" + task.name + "\"";
    if (task.running) o += " (running)";
    if (!task.waiting_for_task.empty())
      o += " waiting for task \"" + task.waiting_for_task + "\"";
    else if (task.waiting_for != 0)
      o += " waiting for " + task.waiting_for_type + " at " + reader::hex_address(task.waiting_for);
    o += "\n";
    for (const inspect::Frame& frame : task.frames) append_frame_text(o, frame);
    if (!task.error.empty()) o += "    (await chain incomplete: " + task.error + ")\n";
  }
}

std::string render_text(const inspect::PythonTarget& target, const inspect::Snapshot& snapshot,
                        const inspect::AsyncioTasks& asyncio, const NativeByThread& native) {
  std::string o = "Process " + std::to_string(target.pid) + ": " + command_line(target.pid) + "\n";
  o += "Python " + target.version + " (" + target.image + ")\n";
  for (const inspect::ThreadStack& t : snapshot.threads) {
    o += "\nThread ";
    o += t.native_id > 0 ? std::to_string(t.native_id) : reader::hex_address(t.pthread_id);
    o += " (";
    o += activity(t);
    if (t.holds_gil) o += ", holds GIL";
    o += ")";
    if (!t.os_name.empty()) o += " \"" + t.os_name + "\"";
    if (t.interpreter_id != 0) o += " interpreter " + std::to_string(t.interpreter_id);
    o += "\n";
    if (auto merged = native.find(t.native_id); merged != native.end()) {
      for (const inspect::MergedFrame& frame : merged->second) {
        if (frame.native)
          o += "    " + native_text(frame.c_frame) + "\n";
        else
          append_frame_text(o, frame.python);
      }
    } else {
      for (const inspect::Frame& frame : t.frames) append_frame_text(o, frame);
    }
    if (t.frames.empty() && t.error.empty()) o += "    (no Python frames)\n";
    if (!t.error.empty()) o += "    (stack incomplete: " + t.error + ")\n";
  }
  append_tasks_text(o, asyncio);
  return o;
}

}  // namespace

int dump_command(const DumpOptions& options) {
  const pid_t pid = options.pid;
  inspect::ProcessMemory memory(pid);
  const inspect::LocateResult located = inspect::locate_python(pid, memory);
  if (located.status != inspect::LocateStatus::kOk) return locate_failure(located);

  inspect::StackOptions stack_options;
  stack_options.locals = options.locals;
  stack_options.max_string = options.max_string;
  // --native: every thread held still while both its stacks are read, so they agree.
  std::unique_ptr<inspect::NativeStacks> stopped;
  std::map<pid_t, char> running_states;  // as the threads were before we stopped them
  if (options.native) {
    for (pid_t tid : injector::thread_ids(pid)) running_states[tid] = injector::thread_state(pid, tid);
    std::string why;
    int err = 0;
    stopped = inspect::NativeStacks::stop(pid, &why, &err);
    if (!stopped) {
      std::fprintf(stderr, "pyrewind: --native: %s\n", why.c_str());
      return err == EPERM ? kExitPermission : err == ESRCH ? kExitNoProcess : kExitTargetNotRunning;
    }
  }
  inspect::StackReader reader(located.target, memory);
  inspect::Snapshot best;
  bool have_snapshot = false;
  std::string error;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    inspect::Snapshot snapshot;
    if (!reader.read(stack_options, &snapshot, &error)) continue;
    if (!have_snapshot || snapshot.errors() < best.errors()) best = std::move(snapshot);
    have_snapshot = true;
    if (best.errors() == 0) break;
  }
  if (!have_snapshot) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      std::fprintf(stderr, "pyrewind: process %d exited during the dump\n", static_cast<int>(pid));
      return kExitNoProcess;
    }
    std::fprintf(stderr, "pyrewind: %s\n", error.c_str());
    return kExitTargetNotRunning;
  }
  // The tasks change as they run: a read that does not check out is taken again too.
  inspect::AsyncioTasks asyncio;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    reader.read_asyncio(stack_options, &asyncio);
    if (asyncio.unreadable.empty()) break;
  }
  NativeByThread native;
  if (stopped) {
    inspect::NativeUnwinder unwinder(pid);
    for (inspect::ThreadStack& t : best.threads) {
      if (auto state = running_states.find(t.native_id); state != running_states.end()) t.os_state = state->second;
      std::vector<inspect::NativeFrame> frames;
      std::string why;
      if (t.native_id > 0 && stopped->unwind(unwinder, t.native_id, &frames, &why))
        native[t.native_id] = inspect::merge_stacks(t.frames, frames);
    }
    stopped.reset();  // the threads run on before anything is written
  }
  const std::string text = options.json ? render_json(located.target, best, asyncio, native)
                                        : render_text(located.target, best, asyncio, native);
  if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    std::fprintf(stderr, "pyrewind: cannot write the dump: %s\n", std::strerror(errno));
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
