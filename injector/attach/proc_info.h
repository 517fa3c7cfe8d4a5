// What /proc says about a process, read without ptrace: its mappings, threads, scheduler
// state, credentials and namespaces.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pyrewind::injector {

struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // file offset of `start`
  std::string perms;    // "r-xp"
  dev_t device = 0;     // of the mapped file (0 for anonymous mappings)
  uint64_t inode = 0;
  std::string path;     // "" for anonymous mappings
};

// nullopt if the process is gone (or /proc/PID/maps is unreadable: see `error`).
std::optional<std::vector<Mapping>> read_maps(pid_t pid, int* error);

struct ProcessStatus {
  char state = '?';        // R S D T t Z X ... from /proc/PID/stat
  pid_t parent = 0;
  pid_t tracer = 0;        // TracerPid: a debugger (or strace) attached
  uid_t uids[4] = {};      // real, effective, saved, filesystem
  gid_t gids[4] = {};
  std::vector<gid_t> groups;
  uint64_t cap_effective = 0;
};

// nullopt if the process does not exist (errno in `error`).
std::optional<ProcessStatus> read_status(pid_t pid, int* error);

// Seconds since the process was created, or a negative value if it is gone.
double process_age_seconds(pid_t pid);

// glibc's C library (libc.so.6, or libc-2.x.so before glibc 2.34).
bool is_libc_path(const std::string& path);

// True once the C library's code is mapped. Right after exec the dynamic loader is still
// mapping the program's libraries for a few milliseconds, and it is not.
bool libc_code_mapped(const std::vector<Mapping>& maps);

// The scheduler state of one thread ('?' if it is gone).
char thread_state(pid_t pid, pid_t tid);

// False when the process is gone or a zombie: reading it can only fail from now on.
bool process_alive(pid_t pid);

// The threads of `pid` (ids from /proc/PID/task), main thread first.
std::vector<pid_t> thread_ids(pid_t pid);

// True if `ancestor` is `pid`'s parent, grandparent, ... (Yama scope 1 allows only those).
bool is_descendant(pid_t pid, pid_t ancestor);

// True when `pid` lives in a different namespace of `kind` ("pid", "mnt") than we do.
bool in_other_namespace(pid_t pid, const char* kind);

// The value of /proc/sys/kernel/yama/ptrace_scope, or -1 without Yama.
int yama_ptrace_scope();

// Where the symbolic link /proc/PID/<entry> ("exe", "cwd") points; "" when it cannot be read.
std::string proc_link(pid_t pid, const char* entry);

// A path as the target process sees it, openable by us: /proc/PID/root/<path>.
std::string path_in_process(pid_t pid, const std::string& path);

// The exact file behind a mapping, even when it was replaced or deleted on disk or lives in
// another mount namespace: /proc/PID/map_files/START-END (needs CAP_SYS_ADMIN).
std::string mapped_file(pid_t pid, const Mapping& mapping);

}  // namespace pyrewind::injector
