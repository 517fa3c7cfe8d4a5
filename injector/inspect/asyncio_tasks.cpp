// The pending asyncio tasks of a live process, read from its memory: sys.modules ->
// asyncio.tasks' globals -> the registries of tasks (a WeakSet of scheduled tasks, and 3.12+ a
// set of eager ones) -> each _asyncio.Task's coroutine, and what that coroutine awaits, down
// to the future the task waits for.
//
// The C Task's fields come from a layout mirrored from CPython's source (layout_probe.c), not
// from a header: every task is checked (its state, name and coroutine must be what they claim)
// and one that does not check out makes the tasks "not readable", never shown wrong.
#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "injector/inspect/python_stacks.h"
#include "injector/inspect/remote_block.h"

namespace pyrewind::inspect {
namespace {

constexpr size_t kMaxEntries = 1 << 18;  // of one dict or set read here
constexpr size_t kMaxKeyChars = 256;     // a module or attribute name compared
constexpr size_t kMaxTaskName = 1024;
constexpr int kMaxTypeDepth = 32;        // of a task type's base classes
constexpr int32_t kMaxStackSlots = 1 << 20;
constexpr int kStatePending = 0;         // fut_state STATE_PENDING

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

// The (key, value) entries of a dict's keys object: combined (values inside the entries) or
// split (`values`: the value array, by entry index). Deleted entries (NULL key) are left out.
bool StackReader::keys_items(uint64_t keys, uint64_t values, Items* out) {
  Block header;
  if (!plausible_user_address(keys) ||
      !header.read(memory_, keys,
                   {layout_.keys_size, layout_.keys_log2_index_bytes, layout_.keys_kind, layout_.keys_nentries}))
    return false;
  const auto count = header.get<int64_t>(layout_.keys_nentries);
  uint64_t index_bytes = 0;
  if (present(layout_.keys_size)) {
    const auto size = header.get<int64_t>(layout_.keys_size);
    if (size <= 0 || size > int64_t{1} << 40) return false;
    index_bytes = static_cast<uint64_t>(size) * (size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8);
  } else {
    const auto log2 = header.get<uint8_t>(layout_.keys_log2_index_bytes);
    if (log2 > 40) return false;
    index_bytes = uint64_t{1} << log2;
  }
  if (count < 0 || static_cast<uint64_t>(count) > kMaxEntries) return false;
  const bool general = !present(layout_.keys_kind) || header.get<uint8_t>(layout_.keys_kind) == layout_.keys_kind_general;
  const uint32_t size = general ? layout_.entry_size : layout_.unicode_entry_size;
  const uint32_t key_at = general ? layout_.entry_key : layout_.unicode_entry_key;
  const uint32_t value_at = general ? layout_.entry_value : layout_.unicode_entry_value;
  std::vector<unsigned char> entries(static_cast<size_t>(count) * size);
  if (!memory_.read(keys + layout_.keys_indices + index_bytes, entries.data(), entries.size())) return false;
  std::vector<uint64_t> split(values ? static_cast<size_t>(count) : 0);
  if (values && !memory_.read(values + layout_.values_items, split.data(), split.size() * sizeof(uint64_t)))
    return false;
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) {
    uint64_t key = 0, value = 0;
    std::memcpy(&key, entries.data() + i * size + key_at, sizeof key);
    std::memcpy(&value, entries.data() + i * size + value_at, sizeof value);
    if (values) value = split[i];
    if (key != 0 && value != 0) out->emplace_back(key, value);
  }
  return true;
}

bool StackReader::dict_items(uint64_t dict, Items* out) {
  Block block;
  if (type_of(dict) != target_.types.dict || !block.read(memory_, dict, {layout_.dict_keys, layout_.dict_values}))
    return false;
  return keys_items(block.get<uint64_t>(layout_.dict_keys), block.get<uint64_t>(layout_.dict_values), out);
}

// The attributes of an instance of a Python class, wherever this version keeps them.
bool StackReader::instance_items(uint64_t object, Items* out) {
  const uint64_t type = type_of(object);
  Block block;
  if (type == 0 || !block.read(memory_, type,
                               {layout_.type_flags, layout_.type_dictoffset, layout_.type_basicsize,
                                layout_.heap_type_cached_keys}))
    return false;
  const auto flags = block.get<uint64_t>(layout_.type_flags);
  if (layout_.instance_dict == PYREWIND_DICT_AT_DICTOFFSET || !(flags & layout_.managed_dict_flag)) {
    const auto offset = block.get<int64_t>(layout_.type_dictoffset);
    uint64_t dict = 0;
    return offset > 0 && offset < kMaxStackSlots && read_pointer(object + offset, &dict) && dict_items(dict, out);
  }
  uint64_t slot = 0, values = 0;
  if (!read_pointer(object + layout_.managed_dict_offset, &slot)) return false;
  switch (layout_.instance_dict) {
    case PYREWIND_VALUES_BELOW_OBJECT:
      if (slot == 0 && !read_pointer(object + layout_.managed_dict_offset - sizeof(uint64_t), &values)) return false;
      break;
    case PYREWIND_VALUES_TAGGED:
      if (slot & 1) values = slot + 1, slot = 0;
      break;
    case PYREWIND_VALUES_INLINE:
      if (slot == 0 && (flags & layout_.inline_values_flag)) {
        uint8_t valid = 0;
        values = object + static_cast<uint64_t>(block.get<int64_t>(layout_.type_basicsize));
        if (!memory_.read_value(values + layout_.values_valid, &valid) || !valid) return false;
      }
      break;
  }
  if (slot != 0) return dict_items(slot, out);
  if (values == 0) return true;  // no attributes yet
  return keys_items(block.get<uint64_t>(layout_.heap_type_cached_keys), values, out);
}

uint64_t StackReader::item_named(const Items& items, const std::string& name) {
  std::string key;
  for (const auto& [key_object, value] : items)
    if (read_str(key_object, kMaxKeyChars, &key) && key == name) return value;
  return 0;
}

// A set's members; dummies (deleted entries) are left to the caller's type checks.
bool StackReader::set_items(uint64_t set, std::vector<uint64_t>* out) {
  Block block;
  const uint64_t type = type_of(set);
  if ((type != target_.types.set && type != target_.types.frozenset) ||
      !block.read(memory_, set, {layout_.set_mask, layout_.set_table}))
    return false;
  const auto mask = block.get<int64_t>(layout_.set_mask);
  if (mask < 0 || static_cast<uint64_t>(mask) >= kMaxEntries) return false;
  const size_t slots = static_cast<size_t>(mask) + 1;
  std::vector<unsigned char> table(slots * layout_.set_entry_size);
  if (!memory_.read(block.get<uint64_t>(layout_.set_table), table.data(), table.size())) return false;
  for (size_t i = 0; i < slots; ++i) {
    uint64_t key = 0;
    std::memcpy(&key, table.data() + i * layout_.set_entry_size + layout_.set_entry_key, sizeof key);
    if (key != 0) out->push_back(key);
  }
  return true;
}

// sys.modules[module].name, or 0 (not imported, no such global, or unreadable).
uint64_t StackReader::module_global(const Items& modules, const std::string& module, const std::string& name) {
  const uint64_t object = item_named(modules, module);
  uint64_t dict = 0;
  Items globals;
  if (type_of(object) != target_.types.module || !read_pointer(object + layout_.module_dict, &dict) ||
      !dict_items(dict, &globals))
    return 0;
  return item_named(globals, name);
}

std::string StackReader::type_name(uint64_t type) {
  uint64_t name = 0;
  std::string text;
  if (!read_pointer(type + layout_.type_name, &name) || !memory_.read_c_string(name, 256, &text)) return "?";
  return text;
}

// A task's name: a str, or (3.12+, until asked for) an int n that stands for "Task-n".
bool StackReader::task_name(uint64_t name, std::string* out) {
  if (read_str(name, kMaxTaskName, out)) return true;
  Value number;
  if (type_of(name) != target_.types.int_ || !read_int(name, &number) || number.integer.empty()) return false;
  *out = "Task-" + number.integer;
  return true;
}

// One coroutine (or generator) of an await chain: its frame, and (`awaited`, else 0) the object
// it is suspended awaiting, as CPython's _PyGen_yf tells it for this version.
bool StackReader::read_coroutine(uint64_t coroutine, const StackOptions& options, Frame* frame, uint64_t* awaited,
                                 std::string* error) {
  *awaited = 0;
  uint64_t previous = 0;
  if (layout_.frame_model == PYREWIND_FRAME_OBJECTS) {
    uint64_t frame_object = 0;
    if (!read_pointer(coroutine + layout_.gen_frame, &frame_object)) {
      *error = "a coroutine is unreadable";
      return false;
    }
    if (frame_object == 0) {
      *error = "a coroutine of the chain has finished";
      return false;
    }
    if (!read_frame_object(frame_object, options, frame, &previous, error)) return false;
    Block block;
    if (!block.read(memory_, frame_object,
                    {layout_.frame_code, layout_.frame_instruction, layout_.frame_stack_top, layout_.frame_valuestack,
                     layout_.frame_state}))
      return true;
    const auto lasti = block.get<int32_t>(layout_.frame_instruction);
    uint64_t top = 0;  // the address just past the value stack's top
    if (layout_.yield_from_check == PYREWIND_YF_STACKTOP_POINTER) {
      top = block.get<uint64_t>(layout_.frame_stack_top);
    } else if (block.get<int8_t>(layout_.frame_state) == layout_.state_awaiting) {
      const auto depth = block.get<int32_t>(layout_.frame_stack_top);
      if (depth > 0 && depth < kMaxStackSlots)
        top = block.get<uint64_t>(layout_.frame_valuestack) + static_cast<uint64_t>(depth) * sizeof(uint64_t);
    }
    if (top == 0 || lasti < 0) return true;
    // The instruction after the last one run (f_lasti, in bytes or in code units).
    const int64_t next = int64_t{lasti} * layout_.frame_lasti_unit + layout_.code_unit_size;
    uint64_t bytecode = 0;
    uint8_t opcode = 0;
    int64_t size = 0;
    if (read_pointer(block.get<uint64_t>(layout_.frame_code) + layout_.code_code, &bytecode) &&
        type_of(bytecode) == target_.types.bytes && memory_.read_value(bytecode + layout_.var_object_size, &size) &&
        next < size && memory_.read_value(bytecode + layout_.bytes_data + static_cast<uint64_t>(next), &opcode) &&
        opcode == layout_.opcode_yield_from)
      read_pointer(top - sizeof(uint64_t), awaited);
    return true;
  }

  const uint64_t interpreter_frame = coroutine + layout_.gen_iframe;
  int8_t state = 0;
  if (!memory_.read_value(coroutine + layout_.gen_frame_state, &state)) {
    *error = "a coroutine is unreadable";
    return false;
  }
  if (state >= layout_.state_completed) {
    *error = "a coroutine of the chain has finished";
    return false;
  }
  bool skip = false, shim = false;
  if (!read_interpreter_frame(interpreter_frame, options, frame, &skip, &shim, &previous, error)) return false;
  if (skip) {
    *error = "a coroutine's frame does not check out";
    return false;
  }
  if (state != layout_.state_awaiting) return true;
  Block block;
  if (!block.read(memory_, interpreter_frame, {layout_.frame_instruction, layout_.frame_stack_top})) return true;
  if (layout_.yield_from_check == PYREWIND_YF_NEXT_RESUME) {
    uint8_t next[2] = {};  // the code unit after the last one run: opcode, argument
    if (!memory_.read(block.get<uint64_t>(layout_.frame_instruction) + layout_.code_unit_size, next, sizeof next) ||
        (next[0] != layout_.opcode_resume && next[0] != layout_.opcode_resume_variant) || next[1] < 2)
      return true;
  }
  const auto top = block.get<int32_t>(layout_.frame_stack_top);
  if (top > 0 && top < kMaxStackSlots)
    read_pointer(interpreter_frame + layout_.frame_localsplus + static_cast<uint64_t>(top - 1) * sizeof(uint64_t),
                 awaited);
  return true;
}

bool StackReader::is_task_type(uint64_t type, uint64_t task_type) {
  for (int depth = 0; type != 0 && depth < kMaxTypeDepth; ++depth) {
    if (type == task_type) return true;
    if (!read_pointer(type + layout_.type_base, &type)) return false;
  }
  return false;
}

// False, with `unreadable` saying why, when the task's fields do not check out (a layout that
// does not match this build of _asyncio, or a torn read); `*pending` false for a done task.
bool StackReader::read_task(uint64_t task, uint64_t task_type, const StackOptions& options, AsyncTask* out,
                            bool* pending, std::string* unreadable) {
  Block block;
  if (!block.read(memory_, task, {layout_.task_state, layout_.task_fut_waiter, layout_.task_coro, layout_.task_name})) {
    *unreadable = "task at " + hex(task) + " is unreadable";
    return false;
  }
  const auto state = block.get<int32_t>(layout_.task_state);
  const auto coroutine = block.get<uint64_t>(layout_.task_coro);
  out->address = task;
  if (state < 0 || state > 2) {
    *unreadable = "task at " + hex(task) + " has no valid state (" + std::to_string(state) + ")";
    return false;
  }
  *pending = state == kStatePending;
  if (!*pending) return true;
  if (!task_name(block.get<uint64_t>(layout_.task_name), &out->name)) {
    *unreadable = "the name of the task at " + hex(task) + " is neither a str nor an int";
    return false;
  }
  const uint64_t coroutine_type = type_of(coroutine);
  if (coroutine_type == 0) {
    *unreadable = "task \"" + out->name + "\" has no readable coroutine";
    return false;
  }
  if (const uint64_t waiter = block.get<uint64_t>(layout_.task_fut_waiter); waiter != 0) {
    const uint64_t waiter_type = type_of(waiter);
    if (waiter_type == 0) {
      *unreadable = "task \"" + out->name + "\" waits for an unreadable object";
      return false;
    }
    out->waiting_for = waiter;
    out->waiting_for_type = type_name(waiter_type);
    uint64_t name = 0;
    if (is_task_type(waiter_type, task_type) &&
        !(read_pointer(waiter + layout_.task_name, &name) && task_name(name, &out->waiting_for_task))) {
      *unreadable = "task \"" + out->name + "\" waits for a task whose name is unreadable";
      return false;
    }
  }
  // The chain: coroutines (and generator-based ones) for as long as each awaits another.
  std::unordered_set<uint64_t> seen;
  for (uint64_t current = coroutine; current != 0;) {
    const uint64_t type = type_of(current);
    if (type != target_.types.coroutine && type != target_.types.generator) {
      if (current == coroutine) out->error = "it runs a " + type_name(type) + ", not a Python coroutine";
      break;
    }
    if (out->frames.size() >= options.max_awaits) {
      out->error = "more than " + std::to_string(options.max_awaits) + " awaits; the innermost are not shown";
      break;
    }
    if (!seen.insert(current).second) {
      out->error = "the await chain loops (changed while read)";
      break;
    }
    Frame frame;
    uint64_t awaited = 0;
    if (!read_coroutine(current, options, &frame, &awaited, &out->error)) break;
    out->frames.push_back(std::move(frame));
    current = awaited;
  }
  std::reverse(out->frames.begin(), out->frames.end());
  return true;
}

void StackReader::read_asyncio(const StackOptions& options, AsyncioTasks* out) {
  *out = AsyncioTasks{};
  uint64_t interp = 0, modules_dict = 0;
  Items modules;
  if (!read_pointer(target_.runtime + layout_.runtime_interpreters_head, &interp) ||
      !read_pointer(interp + layout_.interp_modules, &modules_dict) || !dict_items(modules_dict, &modules)) {
    out->unreadable = "sys.modules is unreadable";
    return;
  }
  const uint64_t tasks_module = item_named(modules, "asyncio.tasks");
  if (tasks_module == 0) return;
  out->imported = true;
  uint64_t globals_dict = 0;
  Items globals;
  if (type_of(tasks_module) != target_.types.module ||
      !read_pointer(tasks_module + layout_.module_dict, &globals_dict) || !dict_items(globals_dict, &globals)) {
    out->unreadable = "the asyncio.tasks module is unreadable";
    return;
  }

  // The registries, by the names each version gives them: _all_tasks (3.9-3.11) or
  // _scheduled_tasks (3.12+), WeakSets; _eager_tasks (3.12+), a set of the tasks themselves.
  std::vector<uint64_t> candidates;
  for (const char* name : {"_all_tasks", "_scheduled_tasks"}) {
    const uint64_t weak_set = item_named(globals, name);
    if (weak_set == 0) continue;
    Items attributes;
    std::vector<uint64_t> references;
    if (!instance_items(weak_set, &attributes) || !set_items(item_named(attributes, "data"), &references)) {
      out->unreadable = std::string("asyncio.tasks.") + name + " is unreadable";
      return;
    }
    for (uint64_t reference : references) {
      uint64_t referent = 0;
      if (type_of(reference) == target_.types.weakref && read_pointer(reference + layout_.weakref_object, &referent) &&
          referent != target_.types.none)
        candidates.push_back(referent);
    }
  }
  if (const uint64_t eager = item_named(globals, "_eager_tasks"); eager != 0 && !set_items(eager, &candidates)) {
    out->unreadable = "asyncio.tasks._eager_tasks is unreadable";
    return;
  }

  // The C Task type: _asyncio.Task (absent when asyncio runs without its C accelerator).
  const uint64_t task_type = module_global(modules, "_asyncio", "Task");
  int64_t task_type_size = 0;
  if (task_type != 0 && (type_name(task_type) != "_asyncio.Task" ||
                         !memory_.read_value(task_type + layout_.type_basicsize, &task_type_size) ||
                         task_type_size < static_cast<int64_t>(layout_.task_size))) {
    out->unreadable = "_asyncio.Task is not the C Task type this pyrewind knows (" + type_name(task_type) + ", " +
                      std::to_string(task_type_size) + " bytes)";
    return;
  }
  std::unordered_set<uint64_t> running;
  Items current;
  if (dict_items(module_global(modules, "asyncio.tasks", "_current_tasks"), &current))
    for (const auto& [loop, task] : current) running.insert(task);

  std::unordered_set<uint64_t> seen;
  for (uint64_t task : candidates) {
    if (!seen.insert(task).second) continue;
    if (task_type == 0 || !is_task_type(type_of(task), task_type)) {
      ++out->other_tasks;
      continue;
    }
    if (out->tasks.size() >= options.max_tasks) {
      out->unreadable = "more than " + std::to_string(options.max_tasks) + " tasks";
      out->tasks.clear();
      return;
    }
    AsyncTask read;
    bool pending = false;
    if (!read_task(task, task_type, options, &read, &pending, &out->unreadable)) {
      out->tasks.clear();
      return;
    }
    if (!pending) continue;  // done or cancelled, not collected yet
    read.running = running.count(task) != 0;
    out->tasks.push_back(std::move(read));
  }
  // The registries are hash sets: shown in an order that does not depend on addresses.
  std::sort(out->tasks.begin(), out->tasks.end(), [](const AsyncTask& a, const AsyncTask& b) {
    return a.name != b.name ? a.name < b.name : a.address < b.address;
  });
}

}  // namespace pyrewind::inspect
