// One `pyrewind attach` per target at a time: an flock on /dev/shm/pyrewind-attach-<pid>.lock,
// held for the whole attach. The kernel drops it when the holder exits, however it exits, so
// a crashed attach never blocks the next one. (The agent refuses a second recording too; this
// lock turns the common case into an early, clear error before anything touches the target.)
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "injector/launch/process_util.h"

namespace pyrewind::injector {

class AttachLock {
 public:
  enum class Outcome { kAcquired, kBusy, kUnavailable };

  // kBusy: another attach holds it. kUnavailable (`error` says why): the lock file cannot be
  // used (e.g. /dev/shm is not writable for us); the caller may go on without it.
  static Outcome acquire(pid_t pid, std::unique_ptr<AttachLock>* lock, std::string* error,
                         const std::string& directory = "/dev/shm");
  // Removes the file while still holding the lock (see acquire() for why that is safe).
  ~AttachLock();
  AttachLock(const AttachLock&) = delete;
  AttachLock& operator=(const AttachLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  AttachLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace pyrewind::injector
