#include "tools/pyrewind/recording_setup.h"

#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <vector>

namespace pyrewind::cli {
namespace {

// Locals whose names contain one of these, ignoring case, are recorded as redacted (e.g.
// `db_password`, `API_KEY`, `auth_header`, `refresh_token`). The agent matches each pattern as
// a case-insensitive substring of the variable's name. `--redact` replaces the list,
// `--no-redact` turns redaction off.
constexpr const char* kDefaultRedactPatterns[] = {"password", "passwd",     "secret",     "token",       "api_key",
                                                  "apikey",   "auth",       "credential", "private_key"};

}  // namespace

void say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("pyrewind: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

namespace {

bool append_patterns(const std::vector<std::string>& patterns, const char* option, ring::AgentConfig* config,
                     std::string* error) {
  for (const std::string& pattern : patterns) {
    if (pattern.empty()) {
      *error = std::string("empty ") + option + " pattern";
      return false;
    }
    const size_t need = pattern.size() + 1;  // NUL-terminated
    if (need > sizeof(config->patterns) - config->patterns_bytes) {
      *error = "the --include, --exclude and --redact patterns need more than the " +
               std::to_string(sizeof(config->patterns)) + " bytes the agent accepts";
      return false;
    }
    std::memcpy(config->patterns + config->patterns_bytes, pattern.c_str(), need);
    config->patterns_bytes += static_cast<uint32_t>(need);
  }
  return true;
}

}  // namespace

bool build_agent_config(const TraceOptions& trace, ring::AgentConfig* config, std::string* error) {
  *config = ring::AgentConfig{};
  if (trace.capture_locals) config->flags |= ring::kCaptureLocals;
  if (trace.call_repr) config->flags |= ring::kCallRepr;
  if (trace.redact) config->flags |= ring::kRedact;
  if (trace.default_excludes) config->flags |= ring::kDefaultExcludes;
  config->max_string_chars = trace.max_string;
  config->max_items = trace.max_items;
  config->max_depth = trace.max_depth;
  config->max_event_bytes = kMaxEventBytes;

  std::vector<std::string> redact;
  if (trace.redact) {
    redact = trace.redact_patterns;
    if (redact.empty()) redact.assign(std::begin(kDefaultRedactPatterns), std::end(kDefaultRedactPatterns));
  }
  if (!append_patterns(trace.include, "--include", config, error) ||
      !append_patterns(trace.exclude, "--exclude", config, error) ||
      !append_patterns(redact, "--redact", config, error)) {
    return false;
  }
  config->include_count = static_cast<uint32_t>(trace.include.size());
  config->exclude_count = static_cast<uint32_t>(trace.exclude.size());
  config->redact_count = static_cast<uint32_t>(redact.size());
  return true;
}

namespace {

uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

uint64_t wall_time_at(uint64_t monotonic_ns) {
  const uint64_t mono = clock_ns(CLOCK_MONOTONIC);
  const uint64_t real = clock_ns(CLOCK_REALTIME);
  const uint64_t since = mono > monotonic_ns ? mono - monotonic_ns : 0;
  return real > since ? real - since : 0;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

}  // namespace pyrewind::cli
