// Opening a recording for a reading command, the same way in each: protobuf's complaints about
// invalid UTF-8 silenced (the reader repairs such strings itself), the reason printed when the
// file cannot be opened, and a warning when its end is missing or damaged (what is before the
// damage is still read).
#pragma once

#include <memory>
#include <string>

#include "tools/reader/recording.h"

namespace pyrewind::cli {

// nullptr when it cannot be opened (the command then exits with kExitBadRecording).
// `streamed`: the command reads every event anyway, so an unfinished file's summary is rebuilt
// from the chunk frames only (reader::OpenOptions::rebuild_summary = false).
std::unique_ptr<reader::Recording> open_recording(const std::string& file, bool streamed);

}  // namespace pyrewind::cli
