#include "injector/attach/stack_unwind.h"

#include <libunwind-ptrace.h>
#include <sys/uio.h>

#include <cstring>
#include <memory>
#include <unordered_map>

namespace pyrewind::injector {
namespace {

constexpr uint64_t kPageBytes = 4096;

// libunwind-ptrace reads the target's memory a word per PTRACE_PEEKDATA: the unwind tables'
// binary search alone took thousands of system calls (5 ms) in a Python process. This reads
// whole pages with process_vm_readv instead, once per unwind. The tables do not change, and
// the stack does not while the thread is stopped.
class PageCache {
 public:
  explicit PageCache(pid_t pid) : pid_(pid) {}
  bool read_word(uint64_t address, unw_word_t* value) {
    if ((address & (kPageBytes - 1)) > kPageBytes - sizeof *value) return false;  // straddles pages
    const uint8_t* page = find(address & ~(kPageBytes - 1));
    if (page == nullptr) return false;
    std::memcpy(value, page + (address & (kPageBytes - 1)), sizeof *value);
    return true;
  }

 private:
  const uint8_t* find(uint64_t base) {
    auto it = pages_.find(base);
    if (it == pages_.end()) {
      auto page = std::make_unique<uint8_t[]>(kPageBytes);
      iovec local{page.get(), kPageBytes};
      iovec remote{reinterpret_cast<void*>(base), kPageBytes};
      if (process_vm_readv(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(kPageBytes)) page.reset();
      it = pages_.emplace(base, std::move(page)).first;
    }
    return it->second.get();
  }

  pid_t pid_;
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;
};

// libunwind passes the _UPT context as `arg` to every accessor, also from inside
// _UPT_find_proc_info, so the cache of the unwind in progress is found here.
thread_local PageCache* t_cache = nullptr;

int cached_access_mem(unw_addr_space_t space, unw_word_t address, unw_word_t* value, int write, void* arg) {
  if (!write && t_cache != nullptr && t_cache->read_word(address, value)) return 0;
  return _UPT_access_mem(space, address, value, write, arg);
}

}  // namespace

std::vector<uint64_t> unwind_stack(pid_t pid, pid_t tid, uint64_t instruction_pointer, int max_frames) {
  static unw_accessors_t accessors = [] {
    unw_accessors_t a = _UPT_accessors;
    a.access_mem = cached_access_mem;
    return a;
  }();
  std::vector<uint64_t> frames;
  PageCache cache(pid);
  t_cache = &cache;
  unw_addr_space_t space = unw_create_addr_space(&accessors, 0);
  if (space) unw_set_caching_policy(space, UNW_CACHE_GLOBAL);
  void* context = space ? _UPT_create(tid) : nullptr;
  unw_cursor_t cursor;
  if (context && unw_init_remote(&cursor, space, context) == 0) {
    for (int depth = 0; depth < max_frames; ++depth) {
      unw_word_t ip = 0;
      if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0) break;
      frames.push_back(ip);
      if (unw_step(&cursor) <= 0) break;
    }
  }
  if (context) _UPT_destroy(context);
  if (space) unw_destroy_addr_space(space);
  t_cache = nullptr;
  if (frames.empty()) frames.push_back(instruction_pointer);
  return frames;
}

}  // namespace pyrewind::injector
