#include "injector/inspect/python_stacks.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <unordered_set>

#include "injector/attach/proc_info.h"
#include "injector/inspect/line_table.h"
#include "injector/inspect/remote_block.h"

namespace pyrewind::inspect {
namespace {

// Bounds on what a value in a live process may claim to be; beyond them it is garbage.
constexpr int64_t kMaxObjectSize = int64_t{1} << 40;
constexpr size_t kMaxNameChars = 1024;       // a function or variable name
constexpr size_t kMaxPathChars = 4096;       // a file name
constexpr size_t kMaxLineTable = 1 << 20;    // bytes of one code object's line table
constexpr size_t kMaxLocals = 1 << 16;       // slots of one frame
constexpr size_t kMaxIntDigits = 64;         // ~1900 bits: larger ints are shown by size only
constexpr size_t kMaxTypeName = 256;
constexpr size_t kMaxCachedCodes = 1 << 16;  // then the cache starts over
// Bytes of glibc's struct pthread searched for the thread id (at 720 in glibc 2.28-2.40). Not
// more: a thread's struct pthread ends its stack mapping, ~2.3 KiB after its start.
constexpr size_t kPthreadScan = 1024;

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | ((c >> 18) & 0x07));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

// Decimal form of a magnitude in little-endian base-2^bits digits.
std::string decimal(std::vector<uint32_t> digits, uint32_t bits) {
  std::string reversed;
  while (!digits.empty()) {
    uint64_t remainder = 0;
    for (size_t i = digits.size(); i-- > 0;) {
      const uint64_t current = remainder << bits | digits[i];
      digits[i] = static_cast<uint32_t>(current / 1000000000);
      remainder = current % 1000000000;
    }
    while (!digits.empty() && digits.back() == 0) digits.pop_back();
    for (int i = 0; i < 9 && (remainder != 0 || !digits.empty()); ++i) {
      reversed += static_cast<char>('0' + remainder % 10);
      remainder /= 10;
    }
  }
  if (reversed.empty()) reversed = "0";
  return {reversed.rbegin(), reversed.rend()};
}

std::string read_comm(pid_t pid, pid_t tid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(file, name);
  return name;
}

}  // namespace

size_t Snapshot::errors() const {
  return static_cast<size_t>(
      std::count_if(threads.begin(), threads.end(), [](const ThreadStack& t) { return !t.error.empty(); }));
}

bool StackReader::read_pointer(uint64_t address, uint64_t* out) {
  return memory_.read_value(address, out);
}

uint64_t StackReader::type_of(uint64_t object) {
  uint64_t type = 0;
  if (!plausible_user_address(object) || !read_pointer(object + layout_.object_type, &type)) return 0;
  return plausible_user_address(type) ? type : 0;
}

bool StackReader::read_str(uint64_t object, size_t max_chars, std::string* out, uint64_t* length, bool* truncated) {
  Block header;
  if (type_of(object) != target_.types.str ||
      !header.read(memory_, object, {layout_.unicode_length, layout_.unicode_state}))
    return false;
  const auto chars = header.get<int64_t>(layout_.unicode_length);
  const auto state = header.get<uint32_t>(layout_.unicode_state);
  const uint32_t kind = (state >> layout_.unicode_kind_shift) & 7;
  const bool compact = (state >> layout_.unicode_compact_bit) & 1;
  const bool ascii = (state >> layout_.unicode_ascii_bit) & 1;
  // Strings made by str subclasses keep their characters elsewhere ("legacy"): not read.
  if (chars < 0 || chars > kMaxObjectSize || !compact || (kind != 1 && kind != 2 && kind != 4)) return false;
  const size_t n = std::min<size_t>(static_cast<size_t>(chars), max_chars);
  std::vector<unsigned char> data(n * kind);
  if (!memory_.read(object + (ascii ? layout_.unicode_ascii_data : layout_.unicode_compact_data), data.data(),
                    data.size()))
    return false;
  out->clear();
  for (size_t i = 0; i < n; ++i) {
    uint32_t c = 0;
    std::memcpy(&c, data.data() + i * kind, kind);  // little-endian UCS1/2/4
    append_utf8(*out, c);
  }
  if (length) *length = static_cast<uint64_t>(chars);
  if (truncated) *truncated = n < static_cast<size_t>(chars);
  return true;
}

bool StackReader::read_bytes(uint64_t object, size_t max_bytes, std::string* out, uint64_t* length,
                             bool* truncated) {
  int64_t size = 0;
  if (type_of(object) != target_.types.bytes || !memory_.read_value(object + layout_.var_object_size, &size) ||
      size < 0 || size > kMaxObjectSize)
    return false;
  out->resize(std::min<size_t>(static_cast<size_t>(size), max_bytes));
  if (!memory_.read(object + layout_.bytes_data, out->data(), out->size())) return false;
  if (length) *length = static_cast<uint64_t>(size);
  if (truncated) *truncated = out->size() < static_cast<size_t>(size);
  return true;
}

bool StackReader::read_str_tuple(uint64_t tuple, size_t max_items, std::vector<std::string>* out) {
  int64_t size = 0;
  if (type_of(tuple) != target_.types.tuple || !memory_.read_value(tuple + layout_.var_object_size, &size) ||
      size < 0 || static_cast<uint64_t>(size) > max_items)
    return false;
  std::vector<uint64_t> items(static_cast<size_t>(size));
  if (!memory_.read(tuple + layout_.tuple_items, items.data(), items.size() * sizeof(uint64_t))) return false;
  for (uint64_t item : items) {
    std::string name;
    if (!read_str(item, kMaxNameChars, &name)) name.clear();
    out->push_back(std::move(name));
  }
  return true;
}

const StackReader::CodeInfo* StackReader::code_info(uint64_t code, const StackOptions& options) {
  const uint32_t name_field = present(layout_.code_qualname) ? layout_.code_qualname : layout_.code_name;
  // The type is read with the fields (one read per frame instead of two: sampling's hot path).
  Block header;
  if (!plausible_user_address(code) ||
      !header.read(memory_, code,
                   {layout_.object_type, layout_.code_filename, name_field, layout_.code_linetable,
                         layout_.code_firstlineno, layout_.code_firsttraceable, layout_.code_nlocals,
                         layout_.code_varnames, layout_.code_cellvars, layout_.code_freevars,
                         layout_.code_nlocalsplus, layout_.code_localsplusnames, layout_.code_localspluskinds}) ||
      header.get<uint64_t>(layout_.object_type) != target_.types.code)
    return nullptr;
  const auto filename = header.get<uint64_t>(layout_.code_filename);
  const auto name = header.get<uint64_t>(name_field);
  const auto linetable = header.get<uint64_t>(layout_.code_linetable);
  const auto first_line = header.get<int32_t>(layout_.code_firstlineno);

  auto found = codes_.find(code);
  if (found != codes_.end() && found->second.filename == filename && found->second.name == name &&
      found->second.linetable == linetable && found->second.first_line == first_line &&
      (!options.locals || found->second.locals_read))
    return &found->second;

  CodeInfo info;
  info.filename = filename;
  info.name = name;
  info.linetable = linetable;
  info.first_line = first_line;
  info.first_traceable = static_cast<uint32_t>(std::max(0, header.get<int32_t>(layout_.code_firsttraceable)));
  bool table_truncated = false;
  if (!read_str(filename, kMaxPathChars, &info.file) || !read_str(name, kMaxNameChars, &info.function) ||
      !read_bytes(linetable, kMaxLineTable, &info.table, nullptr, &table_truncated))
    return nullptr;
  if (options.locals) {
    bool ok = false;
    if (present(layout_.code_localsplusnames)) {
      const auto count = header.get<int32_t>(layout_.code_nlocalsplus);
      ok = read_str_tuple(header.get<uint64_t>(layout_.code_localsplusnames), kMaxLocals, &info.local_names) &&
           read_bytes(header.get<uint64_t>(layout_.code_localspluskinds), kMaxLocals, &info.local_kinds) &&
           info.local_names.size() == static_cast<size_t>(count) && info.local_kinds.size() == info.local_names.size();
      for (char& kind : info.local_kinds)  // 1: the slot may hold a cell (captured variable)
        kind = (static_cast<uint8_t>(kind) & (layout_.fast_cell | layout_.fast_free)) ? 1 : 0;
    } else {
      // 3.9/3.10: plain locals, then cell and free variables, whose slots hold cells.
      const auto plain = header.get<int32_t>(layout_.code_nlocals);
      std::vector<std::string> cells;
      ok = read_str_tuple(header.get<uint64_t>(layout_.code_varnames), kMaxLocals, &info.local_names) &&
           info.local_names.size() == static_cast<size_t>(plain) &&
           read_str_tuple(header.get<uint64_t>(layout_.code_cellvars), kMaxLocals, &cells) &&
           read_str_tuple(header.get<uint64_t>(layout_.code_freevars), kMaxLocals, &cells);
      info.local_kinds.assign(info.local_names.size(), 0);
      info.local_kinds.append(cells.size(), 1);
      info.local_names.insert(info.local_names.end(), cells.begin(), cells.end());
    }
    info.locals_read = ok;
    if (!ok) {
      info.local_names.clear();
      info.local_kinds.clear();
    }
  }
  if (codes_.size() >= kMaxCachedCodes) codes_.clear();
  return &(codes_[code] = std::move(info));
}

bool StackReader::read_int(uint64_t object, Value* out) {
  size_t count = 0;
  bool negative = false;
  if (present(layout_.long_tag_shift)) {
    uint64_t tag = 0;
    if (!memory_.read_value(object + layout_.long_tag, &tag)) return false;
    count = static_cast<size_t>(tag >> layout_.long_tag_shift);
    negative = (tag & 3) == 2;
  } else {
    int64_t size = 0;
    if (!memory_.read_value(object + layout_.var_object_size, &size)) return false;
    negative = size < 0;
    count = static_cast<size_t>(negative ? -size : size);
  }
  if (count > static_cast<size_t>(kMaxObjectSize)) return false;
  out->int_bits = count * layout_.long_digit_bits;
  if (count > kMaxIntDigits) return true;  // shown by its size only
  std::vector<uint32_t> digits(count);
  if (layout_.long_digit_size != sizeof(uint32_t) ||
      !memory_.read(object + layout_.long_digits, digits.data(), count * sizeof(uint32_t)))
    return false;
  const uint32_t mask = (uint32_t{1} << layout_.long_digit_bits) - 1;
  for (uint32_t& digit : digits) digit &= mask;
  while (!digits.empty() && digits.back() == 0) digits.pop_back();
  out->int_bits = 0;
  if (!digits.empty()) {
    uint32_t top = digits.back(), top_bits = 0;
    while (top) ++top_bits, top >>= 1;
    out->int_bits = (digits.size() - 1) * layout_.long_digit_bits + top_bits;
  }
  const bool minus = negative && !digits.empty();
  out->integer = decimal(std::move(digits), layout_.long_digit_bits);
  if (minus) out->integer.insert(0, 1, '-');
  return true;
}

Value StackReader::read_value(uint64_t object, const StackOptions& options) {
  Value value;
  value.address = object;
  const TypeAddresses& types = target_.types;
  if (object == types.none) {
    value.kind = Value::Kind::kNone;
    value.type = "NoneType";
    return value;
  }
  const uint64_t type = type_of(object);
  if (type == 0) return value;
  bool ok = true;
  if (type == types.bool_) {
    value.kind = Value::Kind::kBool;
    value.type = "bool";
    value.boolean = object == types.true_;
    ok = object == types.true_ || object == types.false_;
  } else if (type == types.int_) {
    value.kind = Value::Kind::kInt;
    value.type = "int";
    ok = read_int(object, &value);
  } else if (type == types.float_) {
    value.kind = Value::Kind::kFloat;
    value.type = "float";
    ok = memory_.read_value(object + layout_.float_value, &value.number);
  } else if (type == types.str) {
    value.kind = Value::Kind::kStr;
    value.type = "str";
    ok = read_str(object, options.max_string, &value.text, &value.length, &value.truncated);
  } else if (type == types.bytes) {
    value.kind = Value::Kind::kBytes;
    value.type = "bytes";
    ok = read_bytes(object, options.max_string, &value.text, &value.length, &value.truncated);
  } else if (type == types.list || type == types.tuple || type == types.dict || type == types.set ||
             type == types.frozenset) {
    value.kind = Value::Kind::kContainer;
    uint32_t length_field = layout_.var_object_size;
    if (type == types.list) {
      value.type = "list";
    } else if (type == types.tuple) {
      value.type = "tuple";
    } else if (type == types.dict) {
      value.type = "dict";
      length_field = layout_.dict_used;
    } else {
      value.type = type == types.set ? "set" : "frozenset";
      length_field = layout_.set_used;
    }
    int64_t length = 0;
    ok = memory_.read_value(object + length_field, &length) && length >= 0 && length <= kMaxObjectSize;
    value.length = static_cast<uint64_t>(length);
  } else {
    value.kind = Value::Kind::kOther;
    uint64_t name = 0;
    ok = read_pointer(type + layout_.type_name, &name) && memory_.read_c_string(name, kMaxTypeName, &value.type) &&
         !value.type.empty();
  }
  if (!ok) {
    const std::string type_name = value.type;
    value = Value{};
    value.address = object;
    value.type = type_name;
  }
  return value;
}

void StackReader::read_locals(const CodeInfo& code, uint64_t slots, const StackOptions& options, Frame* out) {
  const size_t count = code.local_names.size();
  if (count == 0 || code.local_kinds.size() != count) return;
  std::vector<uint64_t> values(count);
  if (!memory_.read(slots, values.data(), count * sizeof(uint64_t))) return;
  for (size_t i = 0; i < count; ++i) {
    uint64_t object = values[i];
    if (object == 0 || code.local_names[i].empty()) continue;  // unbound
    if (code.local_kinds[i] == 1 && type_of(object) == target_.types.cell) {
      if (!read_pointer(object + layout_.cell_ref, &object) || object == 0) continue;
    }
    out->locals.push_back({code.local_names[i], read_value(object, options)});
  }
}

bool StackReader::read_frame_object(uint64_t frame, const StackOptions& options, Frame* out, uint64_t* previous,
                                    std::string* error) {
  Block block;
  if (!plausible_user_address(frame) ||
      !block.read(memory_, frame,
                  {layout_.object_type, layout_.frame_previous, layout_.frame_code, layout_.frame_instruction}) ||
      block.get<uint64_t>(layout_.object_type) != target_.types.frame) {
    *error = "frame object at " + std::to_string(frame) + " does not check out";
    return false;
  }
  *previous = block.get<uint64_t>(layout_.frame_previous);
  const uint64_t code = block.get<uint64_t>(layout_.frame_code);
  const auto lasti = block.get<int32_t>(layout_.frame_instruction);
  const CodeInfo* info = code_info(code, options);
  if (info == nullptr) {
    *error = "the code object of a frame does not check out";
    return false;
  }
  out->code = code;
  out->function = info->function;
  out->file = info->file;
  out->first_line = info->first_line;
  const int64_t address = lasti < 0 ? -1 : int64_t{lasti} * layout_.frame_lasti_unit;
  out->line = line_for_address(static_cast<pyrewind_line_table_format>(layout_.line_table_format), info->table,
                               info->first_line, address);
  if (options.locals) read_locals(*info, frame + layout_.frame_localsplus, options, out);
  return true;
}

bool StackReader::read_interpreter_frame(uint64_t frame, const StackOptions& options, Frame* out, bool* skip,
                                         bool* shim, uint64_t* previous, std::string* error) {
  Block block;
  if (!block.read(memory_, frame,
                  {layout_.frame_previous, layout_.frame_code, layout_.frame_instruction, layout_.frame_owner,
                   layout_.frame_is_entry})) {
    *error = "a frame is unreadable";
    return false;
  }
  *previous = block.get<uint64_t>(layout_.frame_previous);
  out->eval_entry = present(layout_.frame_is_entry) && block.get<uint8_t>(layout_.frame_is_entry) != 0;
  const uint64_t code = block.get<uint64_t>(layout_.frame_code);
  const int owner = block.get<int8_t>(layout_.frame_owner);
  // Shim frames the interpreter pushes for calls from C, and 3.13 frames of non-code
  // executables, are not Python code.
  *shim = owner == layout_.owner_cstack;
  *skip = *shim || code == target_.types.none;
  if (*skip) return true;
  const CodeInfo* info = code_info(code, options);
  if (info == nullptr) {
    *error = "the code object of a frame does not check out";
    return false;
  }
  const auto instruction = block.get<uint64_t>(layout_.frame_instruction);
  const int64_t index =
      (static_cast<int64_t>(instruction) - static_cast<int64_t>(code + layout_.code_code_adaptive)) /
      static_cast<int64_t>(layout_.code_unit_size);
  if (index < -1 || index > kMaxObjectSize) {
    *error = "a frame's instruction pointer is outside its code";
    return false;
  }
  // A frame pushed but not started yet (its RESUME not reached) has no line.
  if (owner != layout_.owner_generator && index < static_cast<int64_t>(info->first_traceable)) {
    *skip = true;
    return true;
  }
  out->code = code;
  out->function = info->function;
  out->file = info->file;
  out->first_line = info->first_line;
  out->line = line_for_address(static_cast<pyrewind_line_table_format>(layout_.line_table_format), info->table,
                               info->first_line, index * layout_.code_unit_size);
  if (options.locals) read_locals(*info, frame + layout_.frame_localsplus, options, out);
  return true;
}

bool StackReader::read_thread(uint64_t tstate, uint64_t interp, const StackOptions& options, ThreadStack* thread,
                              uint64_t* next) {
  Block block;
  thread->thread_state = tstate;
  if (!block.read(memory_, tstate,
                  {layout_.tstate_next, layout_.tstate_interp, layout_.tstate_thread_id,
                        layout_.tstate_native_thread_id, layout_.tstate_frame, layout_.tstate_cframe}) ||
      block.get<uint64_t>(layout_.tstate_interp) != interp) {
    thread->error = "thread state does not check out (changed while read)";
    return false;
  }
  *next = block.get<uint64_t>(layout_.tstate_next);
  thread->pthread_id = block.get<uint64_t>(layout_.tstate_thread_id);
  thread->native_id = static_cast<pid_t>(block.get<uint64_t>(layout_.tstate_native_thread_id));
  uint64_t frame = 0;
  if (present(layout_.tstate_frame)) {
    frame = block.get<uint64_t>(layout_.tstate_frame);
  } else {
    const auto cframe = block.get<uint64_t>(layout_.tstate_cframe);
    if (cframe != 0 && !read_pointer(cframe + layout_.cframe_current_frame, &frame)) {
      thread->error = "the thread's current frame is unreadable";
      return true;
    }
  }
  std::unordered_set<uint64_t> seen;
  while (frame != 0) {
    if (thread->frames.size() >= options.max_frames) {
      thread->error = "more than " + std::to_string(options.max_frames) + " frames; the outermost are not shown";
      break;
    }
    if (!seen.insert(frame).second) {
      thread->error = "the frame chain loops (changed while read)";
      break;
    }
    Frame current;
    uint64_t previous = 0;
    bool skip = false, shim = false;
    const bool ok = layout_.frame_model == PYREWIND_FRAME_OBJECTS
                        ? read_frame_object(frame, options, &current, &previous, &thread->error)
                        : read_interpreter_frame(frame, options, &current, &skip, &shim, &previous, &thread->error);
    if (!ok) break;
    if (layout_.frame_model == PYREWIND_FRAME_OBJECTS) current.eval_entry = true;  // one C call each
    // 3.12+: the shim frame a C call of the eval loop starts with ends the frames it runs.
    if (shim && !thread->frames.empty()) thread->frames.back().eval_entry = true;
    if (!skip) thread->frames.push_back(std::move(current));
    frame = previous;
  }
  if (!thread->frames.empty() && thread->error.empty()) thread->frames.back().eval_entry = true;
  return true;
}

// 3.9/3.10 record only pthread_self() per thread. glibc's struct pthread (at that address)
// holds the kernel's thread id at a fixed offset: the offset where the most threads hold
// distinct ids of the process's live tasks. Not all of them need to: a thread that is starting
// or exiting may have a thread state whose task is not (or no longer) there.
void StackReader::assign_native_ids(const std::vector<uint64_t>& pthreads, std::unordered_map<uint64_t, pid_t>* out) {
  const std::vector<pid_t> tasks = injector::thread_ids(target_.pid);
  const std::unordered_set<pid_t> task_set(tasks.begin(), tasks.end());
  std::vector<uint64_t> readable;
  std::vector<std::vector<int32_t>> images;
  for (uint64_t pthread : pthreads) {
    std::vector<int32_t> words(kPthreadScan / sizeof(int32_t));
    if (!memory_.read(pthread, words.data(), kPthreadScan)) continue;
    readable.push_back(pthread);
    images.push_back(std::move(words));
  }
  if (images.empty()) return;
  size_t best_word = 0, best_count = 0;
  for (size_t word = 0; word < images[0].size(); ++word) {
    std::unordered_set<pid_t> ids;
    size_t count = 0;
    for (const auto& image : images) count += task_set.count(image[word]) && ids.insert(image[word]).second;
    if (count > best_count) best_word = word, best_count = count;
  }
  if (best_count == 0 || best_count * 2 < images.size()) return;  // no offset stands out
  for (size_t i = 0; i < readable.size(); ++i)
    if (task_set.count(images[i][best_word])) (*out)[readable[i]] = images[i][best_word];
}

bool StackReader::read(const StackOptions& options, Snapshot* out, std::string* error) {
  *out = Snapshot{};
  uint64_t interp = 0;
  if (!read_pointer(target_.runtime + layout_.runtime_interpreters_head, &interp)) {
    *error = "cannot read the interpreter state of process " + std::to_string(target_.pid) + " (did it exit?)";
    return false;
  }
  if (interp == 0) {
    *error = "process " + std::to_string(target_.pid) + " has no Python interpreter running (not initialised yet, "
             "or finalised)";
    return false;
  }
  out->gil_known = true;
  std::unordered_set<uint64_t> seen_interps;
  for (size_t n = 0; interp != 0 && n < options.max_interpreters && seen_interps.insert(interp).second; ++n) {
    Block block;
    if (!block.read(memory_, interp,
                    {layout_.interp_next, layout_.interp_id, layout_.interp_threads_head,
                          layout_.interp_gil_pointer})) {
      if (n == 0) {
        *error = "cannot read the interpreter state of process " + std::to_string(target_.pid);
        return false;
      }
      break;
    }
    // The GIL this interpreter's threads take: the runtime's (<= 3.11) or its own (3.12+).
    uint64_t gil = present(layout_.runtime_gil) ? target_.runtime + layout_.runtime_gil
                                                : block.get<uint64_t>(layout_.interp_gil_pointer);
    Block gil_state;
    if (!gil_state.read(memory_, gil, {layout_.gil_locked, layout_.gil_last_holder})) out->gil_known = false;
    const auto locked = gil_state.get<int32_t>(layout_.gil_locked);
    const auto holder = gil_state.get<uint64_t>(layout_.gil_last_holder);
    std::unordered_set<uint64_t> seen_threads;
    uint64_t tstate = block.get<uint64_t>(layout_.interp_threads_head);
    for (size_t t = 0; tstate != 0 && t < options.max_threads && seen_threads.insert(tstate).second; ++t) {
      ThreadStack thread;
      thread.interpreter_id = block.get<int64_t>(layout_.interp_id);
      thread.holds_gil = locked != 0 && holder == tstate;
      uint64_t next = 0;
      const bool linked = read_thread(tstate, interp, options, &thread, &next);
      out->threads.push_back(std::move(thread));
      if (!linked) break;
      tstate = next;
    }
    interp = block.get<uint64_t>(layout_.interp_next);
  }

  if (!present(layout_.tstate_native_thread_id)) {
    std::vector<uint64_t> pthreads;
    for (const ThreadStack& thread : out->threads)
      if (plausible_user_address(thread.pthread_id, kPthreadScan)) pthreads.push_back(thread.pthread_id);
    std::unordered_map<uint64_t, pid_t> ids;
    assign_native_ids(pthreads, &ids);
    for (ThreadStack& thread : out->threads)
      if (auto found = ids.find(thread.pthread_id); found != ids.end()) thread.native_id = found->second;
  }
  for (ThreadStack& thread : out->threads) {
    if (thread.native_id <= 0) continue;
    thread.os_state = injector::thread_state(target_.pid, thread.native_id);
    thread.os_name = read_comm(target_.pid, thread.native_id);
  }
  return true;
}

}  // namespace pyrewind::inspect
