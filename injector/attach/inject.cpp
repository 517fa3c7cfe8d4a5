#include "injector/attach/inject.h"

#include <dlfcn.h>
#include <libunwind-ptrace.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "injector/attach/elf_symbols.h"
#include "injector/attach/proc_info.h"
#include "injector/attach/remote_call.h"

namespace pyrewind::injector {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// libc functions that hold malloc's or the loader's locks while they run: a thread stopped
// inside one of them must not be made to call dlopen (it would wait on itself forever).
constexpr const char* kUnsafeFunctions[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign", "aligned_alloc",
    "valloc", "pvalloc", "malloc_trim", "malloc_usable_size", "mallinfo", "mallinfo2", "malloc_stats",
    "malloc_info", "mallopt", "dl_iterate_phdr", "dlopen", "dlclose", "dlsym", "dlvsym", "dladdr", "dladdr1",
    "dlinfo", "dlmopen", "fork", "_Fork", "vfork"};
constexpr int kUnwindFrames = 32;
constexpr size_t kStackScanBytes = 16384;
constexpr int kRtConsistent = 0;        // enum r_state in <link.h>
constexpr uint64_t kRStateOffset = 24;  // struct r_debug: int, link_map*, ElfW(Addr), r_state

struct Range {
  uint64_t begin, end;
  bool contains(uint64_t address) const { return address >= begin && address < end; }
};

struct Image {
  std::string path;
  std::unique_ptr<ElfFile> elf;
  uint64_t bias = 0;
};

bool is_libc(const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  return name == "libc.so.6" || (name.rfind("libc-", 0) == 0 && name.find(".so") != std::string::npos);
}

bool is_loader(const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  return name.rfind("ld-linux", 0) == 0 || name.rfind("ld-", 0) == 0;
}

std::optional<Image> find_image(pid_t pid, const std::vector<Mapping>& maps, bool (*match)(const std::string&),
                                std::string* error) {
  for (const Mapping& m : maps) {
    if (m.path.empty() || m.path[0] != '/' || !match(m.path)) continue;
    Image image;
    image.path = m.path;
    image.elf = ElfFile::open(path_in_process(pid, m.path), error);
    if (!image.elf) return std::nullopt;
    auto bias = load_bias(maps, m.path, *image.elf);
    if (!bias) continue;
    image.bias = *bias;
    return image;
  }
  return std::nullopt;
}

bool in_any(const std::vector<Range>& ranges, uint64_t address) {
  for (const Range& r : ranges)
    if (r.contains(address)) return true;
  return false;
}

// A quick look for a cheap "safe": neither the instruction pointer nor any word of the live
// top of the stack points into the dangerous code. Stale words can only make this say "maybe",
// never miss a real frame (its return address is on the stack), and "maybe" is settled by the
// precise unwind.
bool surely_safe(const RemoteThread& thread, const std::vector<Range>& loader, const std::vector<Range>& locked) {
  if (in_any(loader, thread.instruction_pointer()) || in_any(locked, thread.instruction_pointer())) return false;
  std::vector<uint64_t> words(kStackScanBytes / sizeof(uint64_t));
  if (!thread.read_memory(thread.stack_pointer(), words.data(), kStackScanBytes)) return false;
  for (uint64_t word : words)
    if (in_any(loader, word) || in_any(locked, word)) return false;
  return true;
}

// Why the stopped thread is not a safe place to call dlopen from, or "" if it is.
std::string unsafe_reason(RemoteThread& thread, const std::vector<Range>& loader, const std::vector<Range>& locked,
                          uint64_t r_debug) {
  int state = kRtConsistent;
  if (r_debug != 0 && thread.read_memory(r_debug + kRStateOffset, &state, sizeof state) && state != kRtConsistent)
    return "the dynamic loader is loading or unloading a library";
  if (surely_safe(thread, loader, locked)) return "";
  unw_addr_space_t space = unw_create_addr_space(&_UPT_accessors, 0);
  if (space) unw_set_caching_policy(space, UNW_CACHE_GLOBAL);
  void* context = space ? _UPT_create(thread.tid()) : nullptr;
  std::string reason;
  unw_cursor_t cursor;
  if (context && unw_init_remote(&cursor, space, context) == 0) {
    // Those functions hold their locks within a few frames of the top (the loader's deepest
    // paths are about 20 frames); the unwind itself is the costly part of an attach.
    for (int depth = 0; depth < kUnwindFrames && reason.empty(); ++depth) {
      unw_word_t ip = 0;
      if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0) break;
      for (const Range& r : loader)
        if (r.contains(ip)) reason = "the thread is inside the dynamic loader";
      for (const Range& r : locked)
        if (r.contains(ip)) reason = "the thread is inside malloc or the loader's API";
      if (unw_step(&cursor) <= 0) break;
    }
  } else {
    // No unwinding: judge by the instruction pointer alone.
    const uint64_t ip = thread.instruction_pointer();
    for (const Range& r : loader)
      if (r.contains(ip)) reason = "the thread is inside the dynamic loader";
    for (const Range& r : locked)
      if (r.contains(ip)) reason = "the thread is inside malloc or the loader's API";
  }
  if (context) _UPT_destroy(context);
  if (space) unw_destroy_addr_space(space);
  return reason;
}

InjectStatus status_for_errno(int error) {
  if (error == ESRCH || error == ENOENT) return InjectStatus::kNoProcess;
  if (error == EPERM || error == EACCES) return InjectStatus::kPermissionDenied;
  return InjectStatus::kFailed;
}

}  // namespace

InjectResult inject_agent(pid_t pid, const std::string& agent_path, const std::string& argument,
                          milliseconds timeout) {
  InjectResult result;
  int map_error = 0;
  auto maps = read_maps(pid, &map_error);
  if (!maps) {
    result.status = status_for_errno(map_error);
    result.detail = std::string("cannot read its memory map: ") + std::strerror(map_error);
    return result;
  }
  std::string error;
  std::optional<Image> libc = find_image(pid, *maps, is_libc, &error);
  if (!libc) {
    result.detail = "no C library found in the process" + (error.empty() ? std::string() : ": " + error);
    return result;
  }
  const auto dlopen_symbol = libc->elf->symbol("dlopen");
  const auto dlsym_symbol = libc->elf->symbol("dlsym");
  const auto dlerror_symbol = libc->elf->symbol("dlerror");
  if (!dlopen_symbol || !dlsym_symbol || !dlerror_symbol) {
    result.detail = libc->path + " exports no dlopen (glibc older than 2.34 is not supported)";
    return result;
  }
  std::vector<Range> loader_ranges, locked_ranges;
  uint64_t r_debug = 0;
  for (const Mapping& m : *maps)
    if (!m.path.empty() && is_loader(m.path) && m.perms.find('x') != std::string::npos)
      loader_ranges.push_back({m.start, m.end});
  if (std::optional<Image> loader = find_image(pid, *maps, is_loader, &error)) {
    if (auto symbol = loader->elf->symbol("_r_debug")) r_debug = loader->bias + symbol->value;
  }
  for (const auto& [name, symbol] : libc->elf->functions()) {
    if (std::find_if(std::begin(kUnsafeFunctions), std::end(kUnsafeFunctions),
                     [&](const char* unsafe) { return name == unsafe; }) != std::end(kUnsafeFunctions))
      locked_ranges.push_back({libc->bias + symbol.value, libc->bias + symbol.value + std::max<uint64_t>(symbol.size, 1)});
  }

  const auto started = Clock::now();
  const auto deadline = started + timeout;
  int seize_errno = 0;
  auto thread = RemoteThread::seize(pid, pid, milliseconds(2000), &error, &seize_errno);
  if (!thread) {
    result.status = seize_errno ? status_for_errno(seize_errno) : InjectStatus::kFailed;
    result.detail = error;
    return result;
  }
  // Find a moment when the thread holds none of the locks dlopen needs.
  while (true) {
    const std::string reason = unsafe_reason(*thread, loader_ranges, locked_ranges, r_debug);
    if (reason.empty()) break;
    if (Clock::now() > deadline) {
      result.status = InjectStatus::kUnsafe;
      result.detail = reason + ", for longer than " + std::to_string(timeout.count()) + " ms";
      return result;
    }
    if (!thread->run_briefly(milliseconds(2), &error)) {
      result.detail = error;
      return result;
    }
  }

  auto call = [&](uint64_t function, const std::vector<uint64_t>& args, uint64_t* out) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    return thread->call(function, args, std::max(left, milliseconds(500)), out, &error);
  };
  uint64_t path_address = 0, symbol_address = 0, argument_address = 0;
  const char* start_symbol = "pyrewind_agent_start";
  if (!thread->prepare(libc->bias + libc->elf->entry(), &error) ||
      !thread->push_data(agent_path.c_str(), agent_path.size() + 1, &path_address, &error) ||
      !thread->push_data(start_symbol, std::strlen(start_symbol) + 1, &symbol_address, &error) ||
      !thread->push_data(argument.c_str(), argument.size() + 1, &argument_address, &error)) {
    result.detail = error;
    return result;
  }
  uint64_t handle = 0;
  if (!call(libc->bias + dlopen_symbol->value, {path_address, RTLD_NOW}, &handle)) {
    result.detail = error;
    return result;
  }
  if (handle == 0) {
    uint64_t message_address = 0;
    char message[1024] = {};
    if (call(libc->bias + dlerror_symbol->value, {}, &message_address) && message_address != 0)
      thread->read_memory(message_address, message, sizeof message - 1);
    result.status = InjectStatus::kLoadFailed;
    result.detail = message[0] ? message : "dlopen failed (no dlerror message)";
    return result;
  }
  uint64_t start = 0;
  if (!call(libc->bias + dlsym_symbol->value, {handle, symbol_address}, &start)) {
    result.detail = error;
    return result;
  }
  if (start == 0) {
    result.status = InjectStatus::kLoadFailed;
    result.detail = agent_path + " has no " + start_symbol + " (not a pyrewind agent?)";
    return result;
  }
  uint64_t started_agent = 0;
  if (!call(start, {argument_address}, &started_agent)) {
    result.detail = error;
    return result;
  }
  result.start_result = static_cast<int>(static_cast<int32_t>(started_agent));
  result.status = result.start_result == 0 ? InjectStatus::kOk : InjectStatus::kStartFailed;
  thread.reset();  // restore and detach before measuring
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  return result;
}

}  // namespace pyrewind::injector
