#include "tools/pyrewind/recording_input.h"

#include <sys/resource.h>

#include <cstdio>

namespace pyrewind::cli {

std::unique_ptr<reader::Recording> open_recording(const std::string& file, bool streamed) {
  reader::quiet_protobuf_utf8_errors();
  // A series keeps each of its files open: allow as many as the system lets this process.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  std::string error;
  reader::OpenOptions options;
  options.rebuild_summary = !streamed;
  auto recording = reader::Recording::open(file, &error, options);
  if (!recording) {
    std::fprintf(stderr, "pyrewind: %s: %s\n", file.c_str(), error.c_str());
    return nullptr;
  }
  if (!recording->finished())
    std::fprintf(stderr, "pyrewind: warning: %s: %s\n", file.c_str(), recording->damage().c_str());
  return recording;
}

}  // namespace pyrewind::cli
