#include "injector/attach/preflight.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <regex>

#include "injector/attach/elf_symbols.h"

namespace pyrewind::injector {
namespace {

constexpr int kCapSysPtrace = 19;
constexpr uint64_t kMaxBssScan = 4ull << 20;
// How long after its start a process may still be loading its libraries.
constexpr double kStartupSeconds = 2.0;

bool read_remote(pid_t pid, uint64_t address, void* out, size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

PythonProcess fail(PythonProcess process, PreflightStatus status, std::string message) {
  process.status = status;
  process.message = std::move(message);
  return process;
}

// A process not ready to attach to yet is worth waiting for while it is alive and young.
bool still_starting(pid_t pid) {
  const double age = process_age_seconds(pid);
  return age >= 0 && age <= kStartupSeconds && process_alive(pid);
}

PythonProcess fail_exiting(const PythonProcess& process, const std::string& pid_text) {
  return fail(process, PreflightStatus::kExiting, "process " + pid_text + " is exiting; nothing left to record");
}

bool has_cap_sys_ptrace(const ProcessStatus& status) { return (status.cap_effective >> kCapSysPtrace) & 1; }

std::string comm(pid_t pid) {
  char name[64] = {};
  FILE* file = std::fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "r");
  if (file == nullptr) return "?";
  if (std::fgets(name, sizeof name, file) == nullptr) name[0] = '\0';
  std::fclose(file);
  name[std::strcspn(name, "\n")] = '\0';
  return name;
}

// Parses "D.D[D].D[D][a|b|rc N][+]" at `text`; returns its length, 0 if it is not one.
size_t parse_version(const char* text, size_t size, VersionBanner* out) {
  size_t at = 0;
  auto number = [&](int* value, size_t max_digits) {
    const size_t begin = at;
    *value = 0;
    while (at < size && at - begin < max_digits && std::isdigit(static_cast<unsigned char>(text[at])))
      *value = *value * 10 + (text[at++] - '0');
    return at > begin;
  };
  auto dot = [&] { return at < size && text[at] == '.' && ++at; };
  if (!number(&out->major, 1) || !dot() || !number(&out->minor, 2) || !dot() || !number(&out->micro, 2)) return 0;
  uint32_t level = 0xF, serial = 0;
  const char* suffixes[] = {"rc", "a", "b"};
  const uint32_t levels[] = {0xC, 0xA, 0xB};
  for (size_t i = 0; i < 3; ++i) {
    const size_t n = std::strlen(suffixes[i]);
    if (at + n < size && std::memcmp(text + at, suffixes[i], n) == 0 && std::isdigit(static_cast<unsigned char>(text[at + n]))) {
      at += n;
      int value = 0;
      number(&value, 2);
      level = levels[i];
      serial = static_cast<uint32_t>(value);
      break;
    }
  }
  if (at < size && text[at] == '+') ++at;
  out->hexversion = static_cast<uint32_t>(out->major) << 24 | static_cast<uint32_t>(out->minor) << 16 |
                    static_cast<uint32_t>(out->micro) << 8 | level << 4 | serial;
  out->version.assign(text, at);
  return at;
}

// Where the interpreter is: libpython (shared builds; the name tells the minor version) or the
// executable itself (static builds).
std::string interpreter_image(pid_t pid, const std::vector<Mapping>& maps, int* major, int* minor) {
  static const std::regex libpython(R"(/libpython(\d+)\.(\d+)[^/]*\.so[^/]*$)");
  for (const Mapping& m : maps) {
    std::smatch match;
    if (m.offset == 0 && std::regex_search(m.path, match, libpython)) {
      *major = std::stoi(match[1]);
      *minor = std::stoi(match[2]);
      return m.path;
    }
  }
  return proc_link(pid, "exe");
}

}  // namespace

std::optional<VersionBanner> find_version_banner(const char* data, size_t size) {
  for (size_t i = 0; i + 8 < size; ++i) {
    if ((data[i] != '2' && data[i] != '3') || data[i + 1] != '.' || (i > 0 && std::isdigit(static_cast<unsigned char>(data[i - 1]))))
      continue;
    VersionBanner banner;
    const size_t length = parse_version(data + i, size - i, &banner);
    if (length == 0) continue;
    // " (build info, at most 80 chars) " then the compiler, which starts with '[' or "\n[".
    size_t at = i + length;
    if (at + 2 >= size || data[at] != ' ' || data[at + 1] != '(') continue;
    const char* close = static_cast<const char*>(std::memchr(data + at + 2, ')', std::min<size_t>(82, size - at - 2)));
    if (close == nullptr) continue;
    at = static_cast<size_t>(close - data) + 1;
    if (at < size && data[at] == ' ') ++at;
    if (at < size && data[at] == '\n') ++at;
    if (at < size && data[at] == '[') return banner;
  }
  return std::nullopt;
}

bool readable_by(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
  if (uid == 0) return true;
  auto allowed = [&](const struct stat& st, mode_t user_bit, mode_t group_bit, mode_t other_bit) {
    if (st.st_uid == uid) return (st.st_mode & user_bit) != 0;
    if (st.st_gid == gid || std::find(groups.begin(), groups.end(), st.st_gid) != groups.end())
      return (st.st_mode & group_bit) != 0;
    return (st.st_mode & other_bit) != 0;
  };
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !allowed(st, S_IRUSR, S_IRGRP, S_IROTH)) return false;
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (stat(dir.c_str(), &st) != 0 || !allowed(st, S_IXUSR, S_IXGRP, S_IXOTH)) return false;
  }
  return true;
}

std::string ptrace_denial(const PtraceCheck& check) {
  const std::string pid = std::to_string(check.target_pid);
  const bool capable = has_cap_sys_ptrace(check.tracer);
  // Yama first: its refusals hold even for a process of our own user.
  switch (check.yama_scope) {
    case 3:
      return "permission denied: kernel.yama.ptrace_scope is 3, which forbids every ptrace attach until the next "
             "reboot; reboot with a lower setting (sysctl kernel.yama.ptrace_scope=1 in /etc/sysctl.d)";
    case 2:
      if (!capable)
        return "permission denied: kernel.yama.ptrace_scope is 2, which allows ptrace attach only with CAP_SYS_PTRACE; "
               "run pyrewind as root, or lower it: sudo sysctl kernel.yama.ptrace_scope=1";
      break;
    case 1:
      if (!capable && !check.tracer_is_ancestor)
        return "permission denied: kernel.yama.ptrace_scope is 1, which lets a user ptrace only its own child "
               "processes; run pyrewind as root (or with CAP_SYS_PTRACE), or allow it: sudo sysctl "
               "kernel.yama.ptrace_scope=0";
      break;
    default:
      break;
  }
  if (capable) return "";
  // The kernel compares our real ids with all of the target's (ptrace_may_access).
  const uid_t uid = check.tracer.uids[0];
  const gid_t gid = check.tracer.gids[0];
  bool same = true;
  for (int i = 0; i < 3; ++i) same = same && check.target.uids[i] == uid && check.target.gids[i] == gid;
  if (!same)
    return "permission denied: process " + pid + " runs as uid " + std::to_string(check.target.uids[1]) +
           " (gid " + std::to_string(check.target.gids[1]) + "), pyrewind as uid " + std::to_string(uid) +
           " without CAP_SYS_PTRACE, so ptrace is not allowed; run pyrewind as that user (sudo -u '#" +
           std::to_string(check.target.uids[1]) + "' pyrewind attach ...), or as root";
  if (!check.target_dumpable)
    return "permission denied: process " + pid +
           " is not dumpable (it changed its credentials or called prctl(PR_SET_DUMPABLE, 0)), so only "
           "CAP_SYS_PTRACE may ptrace it; run pyrewind as root";
  return "";
}

// 3.11+: the Py_Version constant. Before: the banner Py_GetVersion() wrote into .bss at
// start-up, else the library's name (already in `process`). True once the major version is known.
bool read_python_version(pid_t pid, const MappedImage& image, PythonProcess* process) {
  if (auto symbol = image.elf->exported("Py_Version")) {
    uint32_t hex = 0;
    if (read_remote(pid, image.bias + symbol->value, &hex, sizeof hex) && (hex >> 24) >= 2) {
      process->hexversion = hex;
      process->major = static_cast<int>(hex >> 24);
      process->minor = static_cast<int>((hex >> 16) & 0xff);
      process->version = std::to_string(process->major) + "." + std::to_string(process->minor) + "." +
                         std::to_string((hex >> 8) & 0xff);
      return true;
    }
  }
  if (auto bss = image.elf->section(".bss"); bss && bss->size <= kMaxBssScan) {
    std::string copy(bss->size, '\0');
    if (read_remote(pid, image.bias + bss->address, copy.data(), copy.size())) {
      if (auto banner = find_version_banner(copy.data(), copy.size())) {
        process->major = banner->major;
        process->minor = banner->minor;
        process->hexversion = banner->hexversion;
        process->version = banner->version;
        return true;
      }
    }
  }
  return process->major != 0;
}

PythonProcess preflight(pid_t pid) {
  PythonProcess process;
  const std::string pid_text = std::to_string(pid);
  int error = 0;
  auto status = read_status(pid, &error);
  if (!status || (kill(pid, 0) != 0 && errno == ESRCH))
    return fail(process, PreflightStatus::kNoProcess, "no such process: " + pid_text + " (check the PID with ps)");
  process.uid = status->uids[1];
  process.gid = status->gids[1];
  process.groups = status->groups;
  if (status->state == 'Z' || status->state == 'X') return fail_exiting(process, pid_text);
  if (status->state == 'T')
    return fail(process, PreflightStatus::kStopped,
                "process " + pid_text + " is stopped (SIGSTOP); resume it with `kill -CONT " + pid_text +
                    "` and attach again");
  if (status->state == 't' || status->tracer != 0) {
    const std::string tracer = status->tracer != 0
                                   ? " by process " + std::to_string(status->tracer) + " (" + comm(status->tracer) + ")"
                                   : "";
    return fail(process, status->state == 't' ? PreflightStatus::kStopped : PreflightStatus::kPermissionDenied,
                "process " + pid_text + (status->state == 't' ? " is stopped under a debugger" : " is being traced") +
                    tracer + "; only one ptrace user at a time: detach the debugger (or strace) first");
  }
  if (in_other_namespace(pid, "pid"))
    return fail(process, PreflightStatus::kOtherNamespace,
                "process " + pid_text +
                    " is in another PID namespace (a container); attaching across namespaces is not supported yet: "
                    "run pyrewind inside the container");
  if (in_other_namespace(pid, "mnt"))
    return fail(process, PreflightStatus::kOtherNamespace,
                "process " + pid_text +
                    " is in another mount namespace (a container); attaching across namespaces is not supported yet: "
                    "run pyrewind inside the container");
  PtraceCheck check;
  auto ours = read_status(getpid(), &error);
  if (ours) check.tracer = *ours;
  check.target = *status;
  check.target_pid = pid;
  check.yama_scope = yama_ptrace_scope();
  struct stat proc_entry {};
  check.target_dumpable = stat(("/proc/" + pid_text).c_str(), &proc_entry) != 0 || proc_entry.st_uid == status->uids[1];
  check.tracer_is_ancestor = check.yama_scope == 1 && is_descendant(pid, getpid());
  if (std::string denial = ptrace_denial(check); !denial.empty())
    return fail(process, PreflightStatus::kPermissionDenied, denial);

  auto maps = read_maps(pid, &error);
  // A process that has just exec'd is still loading its libraries: wait for that (bounded by
  // its age) rather than call it "not Python" or fail to find its C library.
  while (maps && !libc_code_mapped(*maps) && still_starting(pid)) {
    usleep(2000);
    maps = read_maps(pid, &error);
  }
  if (!process_alive(pid)) return fail_exiting(process, pid_text);
  if (!maps)
    return fail(process, error == EACCES ? PreflightStatus::kPermissionDenied : PreflightStatus::kNoProcess,
                "cannot read /proc/" + pid_text + "/maps: " + std::strerror(error));
  process.image = interpreter_image(pid, *maps, &process.major, &process.minor);
  std::string elf_error;
  std::optional<MappedImage> image = open_mapped_image(pid, *maps, process.image, &elf_error);
  const bool has_python =
      image && (image->elf->exported("Py_Initialize") || image->elf->exported("Py_InitializeEx")) &&
      image->elf->exported("Py_GetVersion");
  if (!has_python)
    return fail(process, PreflightStatus::kNotPython,
                "process " + pid_text + " (" + comm(pid) + ", " + process.image +
                    ") is not a Python process: no CPython interpreter in it");
  // A process that has just started may not have written its version banner yet: retry while
  // it is young, as for the libraries above.
  while (!read_python_version(pid, *image, &process) && still_starting(pid)) usleep(2000);
  if (process.major == 0 && !process_alive(pid)) return fail_exiting(process, pid_text);
  if (process.major == 0)
    return fail(process, PreflightStatus::kUnknownVersion,
                "cannot tell the Python version of process " + pid_text + " (" + process.image +
                    "): no Py_Version symbol, no version banner in memory (not initialised yet?), no libpython "
                    "name; attach again once it runs, or record it from the start with `pyrewind run`");
  if (process.version.empty()) process.version = std::to_string(process.major) + "." + std::to_string(process.minor);
  process.status = PreflightStatus::kOk;
  return process;
}

}  // namespace pyrewind::injector
