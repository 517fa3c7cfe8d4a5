// Every thread's Python stack in a live process, read from its memory while it runs: the
// interpreters of _PyRuntime, their thread states, each thread's frame chain, the code
// objects' names and line tables, and (optionally) local variables of builtin types.
//
// Nothing read is trusted: pointers are checked against the type objects they must point to,
// sizes are bounded, every chain walk has a limit and a cycle check. A structure that does not
// check out (torn by the running target) ends that thread's stack with an error; the rest of
// the snapshot stands.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "injector/inspect/python_process.h"
#include "injector/inspect/remote_memory.h"

namespace pyrewind::inspect {

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kContainer, kOther, kUnreadable };
  Kind kind = Kind::kUnreadable;
  std::string type;       // the type's name ("int", "list", "MyClass")
  uint64_t address = 0;
  bool boolean = false;
  std::string integer;    // kInt: decimal digits with a '-' when negative; "" when too large
  uint64_t int_bits = 0;  // kInt: magnitude in bits (what is shown when too large)
  double number = 0;
  std::string text;       // kStr: UTF-8; kBytes: the bytes (both cut to the string bound)
  uint64_t length = 0;    // kStr: characters; kBytes: bytes; kContainer: items
  bool truncated = false; // text is a prefix of the value
};

struct Local {
  std::string name;
  Value value;
};

struct Frame {
  uint64_t code = 0;      // the code object's address (reused once it is freed)
  std::string function;   // qualified name on 3.11+, the code's name before
  std::string file;
  int first_line = 0;     // the code's co_firstlineno
  int line = -1;          // -1: the instruction has no line
  // The outermost Python frame one C call of the evaluation loop runs (3.11+ runs calls
  // between Python functions inside one C call): where native stacks hold an eval-loop frame.
  bool eval_entry = false;
  std::vector<Local> locals;
};

struct ThreadStack {
  uint64_t thread_state = 0;  // PyThreadState address
  uint64_t pthread_id = 0;    // threading.get_ident()
  pid_t native_id = 0;        // the kernel's thread id; 0 when it could not be told
  int64_t interpreter_id = 0;
  std::string os_name;        // /proc/PID/task/TID/comm
  char os_state = '?';        // scheduler state: R running, S sleeping, D in uninterruptible I/O ...
  bool holds_gil = false;
  std::vector<Frame> frames;  // innermost first
  std::string error;          // why the stack ends early ("" when read to its end)
};

struct Snapshot {
  std::vector<ThreadStack> threads;
  bool gil_known = false;     // whether the GIL's holder could be read
  size_t errors() const;      // threads whose stack could not be read to the end
};

// A pending asyncio task (an _asyncio.Task, or a subclass) and where its coroutine waits.
struct AsyncTask {
  uint64_t address = 0;
  std::string name;
  bool running = false;          // its event loop runs it right now: its frames are in that thread's stack
  std::vector<Frame> frames;     // the coroutine it runs and what that awaits, recursively; innermost first
  uint64_t waiting_for = 0;      // the future it waits for (its fut_waiter), 0 when none
  std::string waiting_for_type;  // that future's type ("_asyncio.Future", "_asyncio.Task", ...)
  std::string waiting_for_task;  // when that future is a task: its name
  std::string error;             // why `frames` ends early ("" when read to the end)
};

struct AsyncioTasks {
  bool imported = false;         // the process imported asyncio (its tasks module)
  std::string unreadable;        // why the tasks could not be read ("" when they were)
  std::vector<AsyncTask> tasks;  // pending tasks
  size_t other_tasks = 0;        // tasks of another type (the pure-Python asyncio.tasks._PyTask): not shown
};

struct StackOptions {
  bool locals = false;
  size_t max_frames = 4096;    // per thread
  size_t max_threads = 4096;   // per interpreter
  size_t max_interpreters = 256;
  size_t max_string = 256;     // characters (or bytes) of a str/bytes value kept
  size_t max_tasks = 100000;   // asyncio tasks
  size_t max_awaits = 256;     // coroutines in one task's await chain
};

class StackReader {
 public:
  StackReader(const PythonTarget& target, Memory& memory) : target_(target), layout_(*target.layout), memory_(memory) {}

  // False (and `error`) when the interpreter state itself cannot be read (the process exited,
  // or Python is not initialised / finalised); threads that fail part way are kept, with
  // their own error.
  bool read(const StackOptions& options, Snapshot* out, std::string* error);

  // The pending asyncio tasks of the main interpreter (asyncio_tasks.cpp). A structure that
  // does not check out makes them all unreadable (`out->unreadable`), never half-shown.
  void read_asyncio(const StackOptions& options, AsyncioTasks* out);

 private:
  struct CodeInfo {
    uint64_t filename = 0, name = 0, linetable = 0;  // what the cache entry was decoded from
    int first_line = 0;
    std::string function, file, table;
    bool locals_read = false;              // the two below (read only when locals are wanted)
    std::vector<std::string> local_names;  // slots, in frame order ("" for an unreadable name)
    std::string local_kinds;               // per slot: 1 if it may hold a cell, else 0
    uint32_t first_traceable = 0;
  };

  bool read_pointer(uint64_t address, uint64_t* out);
  // False when the thread state itself does not check out (the chain cannot go on); else
  // `*next` is the next thread state.
  bool read_thread(uint64_t tstate, uint64_t interp, const StackOptions& options, ThreadStack* thread,
                   uint64_t* next);
  bool read_frame_object(uint64_t frame, const StackOptions& options, Frame* out, uint64_t* previous,
                         std::string* error);
  bool read_interpreter_frame(uint64_t frame, const StackOptions& options, Frame* out, bool* skip, bool* shim,
                              uint64_t* previous, std::string* error);
  const CodeInfo* code_info(uint64_t code, const StackOptions& options);
  void read_locals(const CodeInfo& code, uint64_t slots, const StackOptions& options, Frame* out);
  uint64_t type_of(uint64_t object);
  bool read_str(uint64_t object, size_t max_chars, std::string* out, uint64_t* length = nullptr,
                bool* truncated = nullptr);
  bool read_bytes(uint64_t object, size_t max_bytes, std::string* out, uint64_t* length = nullptr,
                  bool* truncated = nullptr);
  bool read_str_tuple(uint64_t tuple, size_t max_items, std::vector<std::string>* out);
  bool read_int(uint64_t object, Value* out);
  Value read_value(uint64_t object, const StackOptions& options);
  // asyncio_tasks.cpp: dicts, sets and instance attributes, read remotely.
  using Items = std::vector<std::pair<uint64_t, uint64_t>>;  // (key, value)
  bool keys_items(uint64_t keys, uint64_t values, Items* out);
  bool dict_items(uint64_t dict, Items* out);
  bool instance_items(uint64_t object, Items* out);
  uint64_t item_named(const Items& items, const std::string& name);
  bool set_items(uint64_t set, std::vector<uint64_t>* out);
  uint64_t module_global(const Items& modules, const std::string& module, const std::string& name);
  std::string type_name(uint64_t type);
  bool task_name(uint64_t name, std::string* out);
  bool read_coroutine(uint64_t coroutine, const StackOptions& options, Frame* frame, uint64_t* awaited,
                      std::string* error);
  bool is_task_type(uint64_t type, uint64_t task_type);
  bool read_task(uint64_t task, uint64_t task_type, const StackOptions& options, AsyncTask* out, bool* pending,
                 std::string* unreadable);
  void assign_native_ids(const std::vector<uint64_t>& pthreads, std::unordered_map<uint64_t, pid_t>* out);

  const PythonTarget& target_;
  const PythonLayout& layout_;
  Memory& memory_;
  // Code objects by address, revalidated on each use by their name, file and table pointers.
  std::unordered_map<uint64_t, CodeInfo> codes_;
};

}  // namespace pyrewind::inspect
