#include "injector/attach/inject.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "injector/attach/elf_symbols.h"
#include "injector/attach/proc_info.h"
#include "injector/attach/remote_call.h"
#include "injector/attach/stack_unwind.h"

namespace pyrewind::injector {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// libc functions that hold malloc's, the loader's or the thread-stack cache's locks while
// they run: a thread stopped inside one of them must not be made to call dlopen or the
// agent's pthread_create (it would wait on itself forever).
constexpr const char* kUnsafeFunctions[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign", "aligned_alloc",
    "valloc", "pvalloc", "malloc_trim", "malloc_usable_size", "mallinfo", "mallinfo2", "malloc_stats",
    "malloc_info", "mallopt", "_int_malloc", "_int_free", "_int_realloc", "_int_memalign", "malloc_consolidate",
    "sysmalloc", "dl_iterate_phdr", "dlopen", "dlclose", "dlsym", "dlvsym", "dladdr", "dladdr1", "dlinfo", "dlmopen",
    "dlerror", "fork", "_Fork", "vfork", "pthread_create", "pthread_join", "pthread_detach", "pthread_exit"};
constexpr int kUnwindFrames = 32;
constexpr uint64_t kStackScanBytes = 16384;
constexpr milliseconds kSafeSpotTimeout{2000};
constexpr milliseconds kSafeSpotRetry{2};
constexpr int kRtConsistent = 0;        // enum r_state in <link.h>
constexpr uint64_t kRStateOffset = 24;  // struct r_debug: int, link_map*, ElfW(Addr), r_state
constexpr size_t kSyscallSearchBytes = 64;

struct Range {
  uint64_t begin, end;
  bool contains(uint64_t address) const { return address >= begin && address < end; }
};

bool in_any(const std::vector<Range>& ranges, uint64_t address) {
  return std::any_of(ranges.begin(), ranges.end(), [address](const Range& r) { return r.contains(address); });
}

std::string file_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

bool is_loader(const std::string& path) { return file_name(path).rfind("ld-", 0) == 0; }

std::optional<MappedImage> find_image(pid_t pid, const std::vector<Mapping>& maps, bool (*match)(const std::string&),
                                      std::string* error) {
  for (const Mapping& m : maps)
    if (m.offset == 0 && !m.path.empty() && m.path[0] == '/' && match(m.path))
      return open_mapped_image(pid, maps, m.path, error);
  return std::nullopt;
}

bool read_remote(pid_t pid, uint64_t address, void* out, size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

// A NUL-terminated string, read a page at a time (the next page may not be mapped).
std::string read_remote_string(pid_t pid, uint64_t address, size_t max) {
  std::string text;
  while (text.size() < max) {
    char chunk[4096];
    const size_t n = std::min<size_t>({sizeof chunk, 4096 - (address & 4095), max - text.size()});
    if (!read_remote(pid, address, chunk, n)) break;
    const size_t length = strnlen(chunk, n);
    text.append(chunk, length);
    if (length < n) break;
    address += n;
  }
  return text;
}

// A `syscall` instruction (0f 05) to single-step the thread over: the one inside libc's
// syscall(3) wrapper. Executing from its first byte decodes it as `syscall` whatever
// surrounds it, so no disassembly is needed.
uint64_t find_syscall_instruction(pid_t pid, const MappedImage& libc) {
  const auto symbol = libc.elf->exported("syscall");
  if (!symbol) return 0;
  uint8_t code[kSyscallSearchBytes];
  const uint64_t start = libc.bias + symbol->value;
  if (!read_remote(pid, start, code, sizeof code)) return 0;
  for (size_t i = 0; i + 1 < sizeof code; ++i)
    if (code[i] == 0x0f && code[i + 1] == 0x05) return start + i;
  return 0;
}

// The main thread, unless it cannot take a call soon (it exited while others run on, is
// stopped, or is in an uninterruptible wait): then another thread that runs or sleeps.
pid_t choose_thread(pid_t pid) {
  const std::vector<pid_t> threads = thread_ids(pid);
  for (pid_t tid : threads) {
    const char state = thread_state(pid, tid);
    if (state == 'R' || state == 'S') return tid;
  }
  return pid;
}

// A quick look for a cheap "safe": neither the instruction pointer nor any word of the live
// top of the stack points into the dangerous code. Stale words can only make this say "maybe",
// never miss a real frame near the top (its return address is on the stack), and "maybe" is
// settled by the precise unwind.
bool surely_safe(pid_t pid, const RemoteThread& thread, uint64_t stack_end, const std::vector<Range>& loader,
                 const std::vector<Range>& locked) {
  const uint64_t ip = thread.instruction_pointer();
  if (in_any(loader, ip) || in_any(locked, ip)) return false;
  const uint64_t sp = thread.stack_pointer();
  if (stack_end <= sp) return false;
  std::vector<uint64_t> words(std::min(kStackScanBytes, stack_end - sp) / sizeof(uint64_t));
  if (!read_remote(pid, sp, words.data(), words.size() * sizeof(uint64_t))) return false;
  return std::none_of(words.begin(), words.end(),
                      [&](uint64_t word) { return in_any(loader, word) || in_any(locked, word); });
}

// Why the stopped thread is not a safe place to call dlopen from, or "" if it is.
std::string unsafe_reason(pid_t pid, RemoteThread& thread, const std::vector<Mapping>& maps,
                          const std::vector<Range>& loader, const std::vector<Range>& locked, uint64_t r_debug) {
  int state = kRtConsistent;
  if (r_debug != 0 && read_remote(pid, r_debug + kRStateOffset, &state, sizeof state) && state != kRtConsistent)
    return "the dynamic loader is loading or unloading a library";
  uint64_t stack_end = 0;
  for (const Mapping& m : maps)
    if (thread.stack_pointer() >= m.start && thread.stack_pointer() < m.end) stack_end = m.end;
  if (surely_safe(pid, thread, stack_end, loader, locked)) return "";

  // Those functions hold their locks within a few frames of the top (the loader's deepest
  // paths are about 20 frames).
  const std::vector<uint64_t> frames = unwind_stack(pid, thread.tid(), thread.instruction_pointer(), kUnwindFrames);
  for (uint64_t ip : frames) {
    if (in_any(loader, ip)) return "the thread is inside the dynamic loader";
    if (in_any(locked, ip)) return "the thread is inside malloc, the loader's API or thread creation";
  }
  return "";
}

InjectStatus status_for_errno(int error) {
  if (error == ESRCH || error == ENOENT) return InjectStatus::kNoProcess;
  if (error == EPERM || error == EACCES) return InjectStatus::kPermissionDenied;
  return InjectStatus::kFailed;
}

InjectResult failure(InjectStatus status, std::string detail) {
  InjectResult result;
  result.status = status;
  result.detail = std::move(detail);
  return result;
}

}  // namespace

InjectResult inject_agent(pid_t pid, const std::string& agent_path, const std::string& argument,
                          milliseconds timeout) {
  int map_error = 0;
  auto maps = read_maps(pid, &map_error);
  if (!maps)
    return failure(status_for_errno(map_error), std::string("cannot read its memory map: ") + std::strerror(map_error));
  std::string error;
  std::optional<MappedImage> libc = find_image(pid, *maps, is_libc_path, &error);
  if (!libc) {
    // An exiting process has already dropped its mappings.
    if (maps->empty()) return failure(InjectStatus::kNoProcess, "it exited");
    return failure(InjectStatus::kFailed, "no C library found in the process" + (error.empty() ? "" : ": " + error));
  }
  const auto dlopen_symbol = libc->elf->exported("dlopen");
  const auto dlsym_symbol = libc->elf->exported("dlsym");
  const auto dlerror_symbol = libc->elf->exported("dlerror");
  if (!dlopen_symbol || !dlsym_symbol || !dlerror_symbol)
    return failure(InjectStatus::kFailed, libc->path + " exports no dlopen (glibc older than 2.34 is not supported)");
  const uint64_t syscall_instruction = find_syscall_instruction(pid, *libc);
  if (syscall_instruction == 0)
    return failure(InjectStatus::kFailed, "no system call instruction found in " + libc->path);

  std::vector<Range> loader_ranges, locked_ranges;
  uint64_t r_debug = 0;
  for (const Mapping& m : *maps)
    if (!m.path.empty() && is_loader(m.path) && m.perms.find('x') != std::string::npos)
      loader_ranges.push_back({m.start, m.end});
  if (std::optional<MappedImage> loader = find_image(pid, *maps, is_loader, &error)) {
    if (auto symbol = loader->elf->symbol("_r_debug")) r_debug = loader->bias + symbol->value;
  }
  for (const auto& [name, symbol] : libc->elf->functions()) {
    if (std::find(std::begin(kUnsafeFunctions), std::end(kUnsafeFunctions), name) != std::end(kUnsafeFunctions))
      locked_ranges.push_back({libc->bias + symbol.value, libc->bias + symbol.value + std::max<uint64_t>(symbol.size, 1)});
  }

  // A process that exited meanwhile (gone, or a zombie, which ptrace refuses with EPERM) is
  // reported as such, not as the failure its exit caused.
  auto gone_or = [pid](InjectStatus status) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return InjectStatus::kNoProcess;
    int error = 0;
    const auto now = read_status(pid, &error);
    return !now || now->state == 'Z' || now->state == 'X' ? InjectStatus::kNoProcess : status;
  };
  const auto started = Clock::now();
  const auto deadline = started + timeout;
  const pid_t tid = choose_thread(pid);
  int seize_errno = 0;
  auto thread = RemoteThread::seize(pid, tid, std::min(timeout, milliseconds(2000)), &error, &seize_errno);
  if (!thread) return failure(gone_or(seize_errno ? status_for_errno(seize_errno) : InjectStatus::kFailed), error);

  // Find a moment when the thread holds none of the locks dlopen needs.
  const auto safe_deadline = std::min(deadline, started + kSafeSpotTimeout);
  while (true) {
    const std::string reason = unsafe_reason(pid, *thread, *maps, loader_ranges, locked_ranges, r_debug);
    if (reason.empty()) break;
    if (Clock::now() > safe_deadline)
      return failure(InjectStatus::kUnsafe,
                     reason + ", every time it was looked at for " +
                         std::to_string(std::chrono::duration_cast<milliseconds>(Clock::now() - started).count()) +
                         " ms");
    if (!thread->run_briefly(kSafeSpotRetry, &error)) return failure(gone_or(InjectStatus::kFailed), error);
  }

  auto call = [&](uint64_t function, const std::vector<uint64_t>& args, uint64_t* out) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    return thread->call(function, args, std::max(left, milliseconds(100)), out, &error);
  };
  uint64_t path_address = 0, symbol_address = 0, argument_address = 0;
  if (!thread->prepare(syscall_instruction, &error) ||
      !thread->push_data(agent_path.c_str(), agent_path.size() + 1, &path_address, &error) ||
      !thread->push_data(kAgentStartSymbol, std::strlen(kAgentStartSymbol) + 1, &symbol_address, &error) ||
      !thread->push_data(argument.c_str(), argument.size() + 1, &argument_address, &error))
    return failure(gone_or(InjectStatus::kFailed), error);

  InjectResult result;
  result.tid = tid;
  if (!call(libc->bias + dlopen_symbol->value, {path_address, RTLD_NOW}, &result.handle))
    return failure(gone_or(InjectStatus::kFailed), "dlopen: " + error);
  if (result.handle == 0) {
    uint64_t message_address = 0;
    std::string message;
    if (call(libc->bias + dlerror_symbol->value, {}, &message_address) && message_address != 0)
      message = read_remote_string(pid, message_address, 1024);
    return failure(InjectStatus::kLoadFailed, message.empty() ? "dlopen failed (no dlerror message)" : message);
  }
  uint64_t start = 0;
  if (!call(libc->bias + dlsym_symbol->value, {result.handle, symbol_address}, &start))
    return failure(gone_or(InjectStatus::kFailed), "dlsym: " + error);
  if (start == 0)
    return failure(InjectStatus::kLoadFailed,
                   agent_path + " has no " + kAgentStartSymbol + " function (not a pyrewind agent?)");
  uint64_t started_agent = 0;
  if (!call(start, {argument_address}, &started_agent))
    return failure(gone_or(InjectStatus::kFailed), std::string(kAgentStartSymbol) + ": " + error);
  result.start_result = static_cast<int32_t>(started_agent);
  result.status = result.start_result == 0 ? InjectStatus::kOk : InjectStatus::kStartFailed;
  thread.reset();  // restore and detach before measuring
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  return result;
}

}  // namespace pyrewind::injector
