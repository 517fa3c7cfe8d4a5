#include "src/filters.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "proto/ring/layout.h"

namespace pyrewind::agent {
namespace {

bool glob_matches(const std::string& pattern, const std::string& path) {
  if (fnmatch(pattern.c_str(), path.c_str(), 0) == 0) return true;
  // A relative pattern ("app/*.py") also matches at any directory boundary.
  if (!pattern.empty() && pattern[0] != '/' && pattern[0] != '*') {
    std::string anywhere = "*/" + pattern;
    return fnmatch(anywhere.c_str(), path.c_str(), 0) == 0;
  }
  return false;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

bool Filters::load(const ring::AgentConfig& config, std::string* error) {
  default_excludes_ = (config.flags & ring::kDefaultExcludes) != 0;
  redact_ = (config.flags & ring::kRedact) != 0;
  const uint32_t used = config.patterns_bytes;
  if (used > sizeof(config.patterns)) {
    *error = "configuration: pattern block too large";
    return false;
  }
  const uint64_t total = uint64_t{config.include_count} + config.exclude_count + config.redact_count;
  std::vector<std::string> patterns;
  size_t offset = 0;
  while (offset < used && patterns.size() < total) {
    const void* nul = std::memchr(config.patterns + offset, '\0', used - offset);
    if (!nul) break;
    size_t length = static_cast<const char*>(nul) - (config.patterns + offset);
    patterns.emplace_back(config.patterns + offset, length);
    offset += length + 1;
  }
  if (patterns.size() != total) {
    *error = "configuration: pattern block does not match its counts";
    return false;
  }
  auto next = patterns.begin();
  redact_lowercase_.clear();
  includes_.assign(next, next + config.include_count);
  next += config.include_count;
  excludes_.assign(next, next + config.exclude_count);
  next += config.exclude_count;
  for (; next != patterns.end(); ++next)
    if (!next->empty()) redact_lowercase_.push_back(lowercase(*next));
  return true;
}

void Filters::set_stdlib_dir(std::string dir) {
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  stdlib_dir_ = std::move(dir);
}

bool Filters::default_excluded(std::string_view path) const {
  if (!path.empty() && path[0] == '<') return path != main_pseudo_file_;
  if (!stdlib_dir_.empty() && path.substr(0, stdlib_dir_.size()) == stdlib_dir_) return true;
  return path.find("/site-packages/") != std::string_view::npos ||
         path.find("/dist-packages/") != std::string_view::npos;
}

bool Filters::traces_file(std::string_view path_view) const {
  const std::string path(path_view);
  for (const auto& pattern : excludes_)
    if (glob_matches(pattern, path)) return false;
  bool included = false;
  for (const auto& pattern : includes_)
    if (glob_matches(pattern, path)) {
      included = true;
      break;
    }
  if (included) return true;
  if (!includes_.empty()) return false;
  return !(default_excludes_ && default_excluded(path_view));
}

bool Filters::redacts_name(std::string_view name) const {
  if (!redact_) return false;
  const std::string lower = lowercase(name);
  for (const auto& pattern : redact_lowercase_)
    if (lower.find(pattern) != std::string::npos) return true;
  return false;
}

}  // namespace pyrewind::agent
