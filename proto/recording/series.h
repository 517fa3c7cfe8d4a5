// Names of the files of a recording series (`--rotate`, and the windows of `--ring`): part 0 is
// the path given (app.rwd), part N >= 1 is app.N.rwd (a name without the .rwd extension gets
// ".N" appended: out.bin -> out.bin.3).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pyrewind::recording {

constexpr std::string_view kRecordingExtension = ".rwd";

inline bool has_recording_extension(std::string_view path) {
  return path.size() > kRecordingExtension.size() &&
         path.substr(path.size() - kRecordingExtension.size()) == kRecordingExtension;
}

inline std::string series_part_path(const std::string& base, uint64_t part) {
  if (part == 0) return base;
  if (!has_recording_extension(base)) return base + "." + std::to_string(part);
  return base.substr(0, base.size() - kRecordingExtension.size()) + "." + std::to_string(part) +
         std::string(kRecordingExtension);
}

// The part number N >= 1 when `name` is part N of the series of `base` (both file names without
// a directory), else 0. Digits only, no leading zero, at most 9 of them.
inline uint64_t series_part_number(std::string_view base, std::string_view name) {
  std::string_view stem = base, suffix;
  if (has_recording_extension(base)) {
    stem = base.substr(0, base.size() - kRecordingExtension.size());
    suffix = kRecordingExtension;
  }
  if (name.size() <= stem.size() + 1 + suffix.size() || name.substr(0, stem.size()) != stem ||
      name[stem.size()] != '.' || name.substr(name.size() - suffix.size()) != suffix)
    return 0;
  const std::string_view digits = name.substr(stem.size() + 1, name.size() - stem.size() - 1 - suffix.size());
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return 0;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace pyrewind::recording
