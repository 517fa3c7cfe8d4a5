#include "injector/inspect/native_stacks.h"

#include <libunwind-ptrace.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "injector/attach/proc_info.h"

namespace pyrewind::inspect {
namespace {

constexpr auto kStopTimeout = std::chrono::milliseconds(1000);
constexpr size_t kMaxNativeFrames = 1024;
constexpr size_t kMaxCachedSymbols = 1 << 16;

bool is_eval_loop(const std::string& symbol) { return symbol == "_PyEval_EvalFrameDefault"; }

}  // namespace

std::unique_ptr<NativeStacks> NativeStacks::stop(pid_t pid, std::string* error, int* errno_out) {
  std::unique_ptr<NativeStacks> stacks(new NativeStacks());
  *errno_out = 0;
  for (pid_t tid : injector::thread_ids(pid)) {
    std::string why;
    int err = 0;
    auto thread = injector::RemoteThread::seize(pid, tid, kStopTimeout, &why, &err);
    if (thread) {
      stacks->threads_.push_back(std::move(thread));
    } else if (err != ESRCH) {  // a thread that exited meanwhile is simply gone
      *errno_out = err;
      *error = "cannot stop thread " + std::to_string(tid) + ": " + why;
      return nullptr;
    }
  }
  return stacks;
}

NativeStacks::~NativeStacks() {
  threads_.clear();  // each RemoteThread restores and detaches its thread
}

bool NativeStacks::unwind(NativeUnwinder& unwinder, pid_t tid, std::vector<NativeFrame>* frames,
                          std::string* error) const {
  frames->clear();
  bool stopped = false;
  for (const auto& thread : threads_) stopped = stopped || thread->tid() == tid;
  if (!stopped) {
    *error = "the thread was not stopped";
    return false;
  }
  return unwinder.unwind(tid, frames, error);
}

std::optional<bool> NativeStacks::in_system_call(pid_t tid) const {
  for (const auto& thread : threads_)
    if (thread->tid() == tid) return thread->in_system_call();
  return std::nullopt;
}

NativeUnwinder::NativeUnwinder(pid_t pid) : pid_(pid) {
  address_space_ = unw_create_addr_space(&_UPT_accessors, 0);
  if (address_space_) unw_set_caching_policy(static_cast<unw_addr_space_t>(address_space_), UNW_CACHE_GLOBAL);
}

NativeUnwinder::~NativeUnwinder() {
  if (address_space_) unw_destroy_addr_space(static_cast<unw_addr_space_t>(address_space_));
}

void NativeUnwinder::load_mappings() {
  mappings_.clear();
  std::ifstream maps("/proc/" + std::to_string(pid_) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode;
    std::getline(fields >> std::ws, path);
    const size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    Mapping m;
    m.begin = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    m.module = path.empty() || path[0] != '/' ? path : path.substr(path.rfind('/') + 1);
    mappings_.push_back(std::move(m));
  }
  mappings_fresh_ = true;
}

// An address outside every known mapping means the process mapped something new (dlopen):
// read the maps again, once per unwind, and forget what was cached about the old ones.
const NativeUnwinder::Mapping* NativeUnwinder::mapping_of(uint64_t address) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const Mapping& m : mappings_)
      if (address >= m.begin && address < m.end) return &m;
    if (mappings_fresh_) return nullptr;
    load_mappings();
    symbols_.clear();
    unw_flush_cache(static_cast<unw_addr_space_t>(address_space_), 0, 0);
  }
  return nullptr;
}

bool NativeUnwinder::unwind(pid_t tid, std::vector<NativeFrame>* frames, std::string* error) {
  frames->clear();
  if (!address_space_) {
    *error = "libunwind could not create an address space";
    return false;
  }
  mappings_fresh_ = false;
  void* context = _UPT_create(tid);
  if (!context) {
    *error = "libunwind could not read the thread";
    return false;
  }
  unw_cursor_t cursor;
  int rc = unw_init_remote(&cursor, static_cast<unw_addr_space_t>(address_space_), context);
  if (rc < 0) {
    _UPT_destroy(context);
    *error = "libunwind could not start unwinding (error " + std::to_string(rc) + ")";
    return false;
  }
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0) break;
    NativeFrame frame;
    frame.ip = ip;
    const Mapping* mapping = mapping_of(ip);
    if (mapping) frame.module = mapping->module;
    auto [known, inserted] = symbols_.try_emplace(ip);
    if (inserted) {
      if (symbols_.size() > kMaxCachedSymbols) {  // bounded: a JIT could show endless addresses
        symbols_.clear();
        known = symbols_.try_emplace(ip).first;
      }
      char name[512];
      unw_word_t offset = 0;
      if (unw_get_proc_name(&cursor, name, sizeof name, &offset) == 0) known->second = {name, offset};
    }
    frame.symbol = known->second.name;
    frame.offset = known->second.offset;
    frame.eval_loop = is_eval_loop(frame.symbol);
    frames->push_back(std::move(frame));
  } while (frames->size() < kMaxNativeFrames && unw_step(&cursor) > 0);
  _UPT_destroy(context);
  if (frames->empty()) {
    *error = "libunwind found no frame";
    return false;
  }
  return true;
}

std::vector<MergedFrame> merge_stacks(const std::vector<Frame>& python, const std::vector<NativeFrame>& native) {
  std::vector<MergedFrame> out;
  size_t next_python = 0;
  for (const NativeFrame& frame : native) {
    if (!frame.eval_loop || next_python >= python.size()) {
      out.push_back(MergedFrame{true, {}, frame});
      continue;
    }
    // The Python frames this C call of the eval loop runs, innermost first.
    while (next_python < python.size()) {
      const Frame& f = python[next_python++];
      out.push_back(MergedFrame{false, f, {}});
      if (f.eval_entry) break;
    }
  }
  for (; next_python < python.size(); ++next_python) out.push_back(MergedFrame{false, python[next_python], {}});
  return out;
}

}  // namespace pyrewind::inspect
