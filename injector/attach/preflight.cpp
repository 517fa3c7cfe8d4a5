#include "injector/attach/preflight.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

#include "injector/attach/elf_symbols.h"
#include "injector/attach/proc_info.h"

namespace pyrewind::injector {
namespace {

constexpr int kCapSysPtrace = 19;

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

bool may_ptrace(const ProcessStatus& target) {
  int error = 0;
  auto ours = read_status(getpid(), &error);
  if (!ours) return false;
  if (ours->cap_effective & (1ull << kCapSysPtrace)) return true;
  // Without the capability the kernel wants our uid to match all of the target's, and our gid
  // all of its gids (ptrace_may_access).
  const uid_t uid = ours->uids[1];
  const gid_t gid = ours->gids[1];
  for (int i = 0; i < 3; ++i)
    if (target.uids[i] != uid || target.gids[i] != gid) return false;
  return true;
}

}  // namespace

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

PythonProcess preflight(pid_t pid) {
  PythonProcess process;
  int error = 0;
  auto status = read_status(pid, &error);
  if (!status || (kill(pid, 0) != 0 && errno == ESRCH))
    return fail(process, PreflightStatus::kNoProcess, "no such process: " + std::to_string(pid));
  process.uid = status->uids[1];
  process.gid = status->gids[1];
  process.groups = status->groups;
  if (status->state == 'Z' || status->state == 'X')
    return fail(process, PreflightStatus::kExiting, "process " + std::to_string(pid) + " is exiting");
  if (status->state == 'T')
    return fail(process, PreflightStatus::kStopped,
                "process " + std::to_string(pid) + " is stopped (SIGSTOP); resume it with `kill -CONT " +
                    std::to_string(pid) + "` and attach again");
  if (status->state == 't')
    return fail(process, PreflightStatus::kStopped,
                "process " + std::to_string(pid) + " is stopped under a debugger (ptrace); detach the debugger first");
  if (in_other_namespace(pid, "pid"))
    return fail(process, PreflightStatus::kOtherNamespace,
                "process " + std::to_string(pid) +
                    " is in another PID namespace (a container); attaching across namespaces is not supported yet: "
                    "run pyrewind inside the container");
  if (in_other_namespace(pid, "mnt"))
    return fail(process, PreflightStatus::kOtherNamespace,
                "process " + std::to_string(pid) +
                    " is in another mount namespace (a container); attaching across namespaces is not supported yet: "
                    "run pyrewind inside the container");
  if (!may_ptrace(*status))
    return fail(process, PreflightStatus::kPermissionDenied,
                "permission denied: process " + std::to_string(pid) + " belongs to uid " +
                    std::to_string(status->uids[1]) +
                    "; run pyrewind as that user, or as root / with CAP_SYS_PTRACE (ptrace access is needed)");
  const int scope = yama_ptrace_scope();
  if (scope >= 2 && !(read_status(getpid(), &error).value_or(ProcessStatus{}).cap_effective & (1ull << kCapSysPtrace)))
    return fail(process, PreflightStatus::kPermissionDenied,
                "permission denied: kernel.yama.ptrace_scope is " + std::to_string(scope) +
                    ", which allows ptrace attach only with CAP_SYS_PTRACE" + (scope == 3 ? " (3: not at all)" : "") +
                    "; run pyrewind as root, or lower it: sysctl kernel.yama.ptrace_scope=1");

  auto maps = read_maps(pid, &error);
  if (!maps)
    return fail(process, error == EACCES ? PreflightStatus::kPermissionDenied : PreflightStatus::kNoProcess,
                "cannot read /proc/" + std::to_string(pid) + "/maps: " + std::strerror(error));
  // The interpreter is in libpython (shared builds) or the executable itself (static builds).
  static const std::regex libpython(R"(/libpython(\d+)\.(\d+)[^/]*\.so[^/]*$)");
  std::string exe;
  for (const Mapping& m : *maps) {
    std::smatch match;
    if (m.offset == 0 && std::regex_search(m.path, match, libpython)) {
      process.image = m.path;
      process.major = std::stoi(match[1]);
      process.minor = std::stoi(match[2]);
      break;
    }
  }
  char link[4096] = {};
  const ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), link, sizeof link - 1);
  if (n > 0) exe = std::string(link, static_cast<size_t>(n));
  if (process.image.empty()) process.image = exe;
  std::string elf_error;
  auto elf = ElfFile::open(path_in_process(pid, process.image), &elf_error);
  const bool has_python = elf && (elf->symbol("Py_Initialize") || elf->symbol("Py_InitializeEx"));
  if (!has_python)
    return fail(process, PreflightStatus::kNotPython,
                "process " + std::to_string(pid) + " (" + exe + ") is not a Python process: no CPython interpreter in it");
  // 3.11+: the Py_Version constant; earlier ones are told by libpython's name.
  if (auto symbol = elf->symbol("Py_Version")) {
    if (auto bias = load_bias(*maps, process.image, *elf)) {
      uint32_t hex = 0;
      if (read_remote(pid, *bias + symbol->value, &hex, sizeof hex)) {
        process.hexversion = hex;
        process.major = static_cast<int>(hex >> 24);
        process.minor = static_cast<int>((hex >> 16) & 0xff);
      }
    }
  }
  if (process.major == 0)
    return fail(process, PreflightStatus::kUnknownVersion,
                "cannot tell the Python version of process " + std::to_string(pid) + " (" + exe +
                    "): statically linked interpreters older than 3.11 are not supported for attach");
  process.status = PreflightStatus::kOk;
  return process;
}

}  // namespace pyrewind::injector
