#include "injector/attach/attach_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pyrewind::injector {

AttachLock::Outcome AttachLock::acquire(pid_t pid, std::unique_ptr<AttachLock>* lock, std::string* error,
                                        const std::string& directory) {
  const std::string path = directory + "/pyrewind-attach-" + std::to_string(pid) + ".lock";
  for (int attempt = 0; attempt < 10; ++attempt) {
    // Open an existing file without O_CREAT first: in a sticky world-writable directory,
    // fs.protected_regular refuses O_CREAT on another user's file even to root. A read-only
    // descriptor is enough for flock, and nobody ever writes the file.
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == ENOENT) fd = UniqueFd(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) {
      if (errno == EEXIST || errno == ENOENT) continue;  // raced with another attach creating or removing it
      *error = "cannot open " + path + ": " + std::strerror(errno);
      return Outcome::kUnavailable;
    }
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return Outcome::kBusy;
      *error = "cannot lock " + path + ": " + std::strerror(errno);
      return Outcome::kUnavailable;
    }
    // The previous holder unlinks the file before it lets go: if what we locked is no longer
    // the file at `path`, a newer attach may hold that one; start over.
    struct stat held {}, current {};
    if (fstat(fd.get(), &held) == 0 && stat(path.c_str(), &current) == 0 && held.st_ino == current.st_ino &&
        held.st_dev == current.st_dev) {
      lock->reset(new AttachLock(path, std::move(fd)));
      return Outcome::kAcquired;
    }
  }
  *error = "cannot lock " + path + ": it keeps changing";
  return Outcome::kUnavailable;
}

AttachLock::~AttachLock() { unlink(path_.c_str()); }

}  // namespace pyrewind::injector
