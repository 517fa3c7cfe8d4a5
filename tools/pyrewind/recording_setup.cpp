#include "tools/pyrewind/recording_setup.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cstdarg>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <vector>

#include "collector/src/packet_validator.h"
#include "collector/src/session.h"
#include "injector/attach/proc_info.h"
#include "proto/recording/format.h"

#ifndef PYREWIND_VERSION
#define PYREWIND_VERSION "unknown"
#endif

namespace pyrewind::cli {
namespace {

// Locals whose names contain one of these, ignoring case, are recorded as redacted (e.g.
// `db_password`, `API_KEY`, `auth_header`, `refresh_token`). The agent matches each pattern as
// a case-insensitive substring of the variable's name. `--redact` replaces the list,
// `--no-redact` turns redaction off.
constexpr const char* kDefaultRedactPatterns[] = {"password", "passwd",     "secret",     "token",       "api_key",
                                                  "apikey",   "auth",       "credential", "private_key"};

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

bool build_agent_config(const TraceOptions& trace, ring::AgentConfig* config, std::string* error) {
  *config = ring::AgentConfig{};
  if (trace.capture_locals) config->flags |= ring::kCaptureLocals;
  if (trace.call_repr) config->flags |= ring::kCallRepr;
  if (trace.redact) config->flags |= ring::kRedact;
  if (trace.default_excludes) config->flags |= ring::kDefaultExcludes;
  config->max_string_chars = trace.max_string;
  config->max_items = trace.max_items;
  config->max_depth = trace.max_depth;
  config->max_overhead_percent = trace.max_overhead_percent;
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

uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// CLOCK_REALTIME at the moment CLOCK_MONOTONIC read `monotonic_ns`.
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

volatile sig_atomic_t g_trigger_requested = 0;

void on_trigger_signal(int) { g_trigger_requested = 1; }

// "64M", "1G", "500000" (bytes, K/M/G = 1024-based, optional B or iB) or "30s", "250ms", "5min",
// "2h" (a duration).
bool parse_ring(const std::string& text, uint64_t* bytes, uint64_t* ns) {
  size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) ++digits;
  if (digits == 0) return false;
  char* end = nullptr;
  const double value = std::strtod(text.substr(0, digits).c_str(), &end);
  if (!end || *end != '\0' || !(value > 0) || value > 1e15) return false;
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, double> kDurations[] = {{"ms", 1e6}, {"s", 1e9}, {"min", 60e9}, {"h", 3600e9}};
  for (const auto& [name, scale] : kDurations)
    if (unit == name) {
      *ns = static_cast<uint64_t>(value * scale);
      return *ns > 0;
    }
  static const std::pair<const char*, double> kSizes[] = {
      {"", 1},           {"b", 1},           {"k", 1024.0},      {"kb", 1024.0}, {"kib", 1024.0},
      {"m", 1048576.0},  {"mb", 1048576.0},  {"mib", 1048576.0}, {"g", 1073741824.0},
      {"gb", 1073741824.0}, {"gib", 1073741824.0}};
  for (const auto& [name, scale] : kSizes)
    if (unit == name) {
      *bytes = static_cast<uint64_t>(value * scale);
      return *bytes > 0;
    }
  return false;
}

}  // namespace

bool series_output(const SeriesOptions& series, RecordingLimits* limits, collector::OutputOptions* out,
                   std::string* error) {
  *out = collector::OutputOptions{};
  if (!series.ring.empty() && !parse_ring(series.ring, &out->ring_bytes, &out->ring_ns)) {
    *error = "--ring " + series.ring + ": expected a size (64M, 1G) or a duration (30s, 500ms, 5min, 2h)";
    return false;
  }
  const bool ring = !series.ring.empty();
  if (ring && series.rotate_bytes > 0) {
    *error = "--ring and --rotate exclude each other (each flight-recorder window is a file of its own)";
    return false;
  }
  if (!ring && !series.trigger_on.empty()) {
    *error = "--trigger-on needs --ring (a flight recorder)";
    return false;
  }
  for (const std::string& type : series.trigger_on)
    if (type.empty()) {
      *error = "--trigger-on needs an exception type name";
      return false;
    }
  out->rotate_bytes = series.rotate_bytes;
  if (series.rotate_bytes > 0 && series.rotate_bytes < 4096) {
    *error = "--rotate must be at least 4K";
    return false;
  }
  if (series.rotate_bytes > 0 || ring) {
    if (limits->max_bytes > 0 && series.rotate_bytes > 0 && limits->max_bytes < 2 * series.rotate_bytes) {
      *error = "--max-size must be at least twice --rotate (the file being written and the one before it)";
      return false;
    }
    out->max_total_bytes = limits->max_bytes;
    limits->max_bytes = 0;
  }
  return true;
}

FlightTrigger::FlightTrigger(bool active) : active_(active) {
  if (!active_) return;
  struct sigaction action {};
  action.sa_handler = on_trigger_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, &previous_);
}

FlightTrigger::~FlightTrigger() {
  if (active_) sigaction(SIGUSR1, &previous_, nullptr);
}

void FlightTrigger::check(collector::Session& session, collector::RecordingWriter& writer, LiveSessionFile& live,
                          bool quiet) {
  if (!active_) return;
  if (g_trigger_requested) {
    g_trigger_requested = 0;
    session.poll();  // its scan starts after the signal
    if (!writer.write_window("SIGUSR1 (pyrewind trigger)") && !quiet && !writer.failed())
      say("flight recorder: triggered, but nothing new was recorded since the last window");
  }
  const uint64_t windows = writer.windows_written();
  if (windows == reported_) return;
  reported_ = windows;
  const std::string path = absolute_path(writer.current_path());
  live.set_windows(windows, path);
  if (!quiet) say("flight recorder: wrote window %llu to %s", static_cast<unsigned long long>(windows), path.c_str());
}

// Ends pyrewind the way the program ended: by the same signal, without a core dump of our
// own (the program's, if any, was already written).
int die_by_signal(int sig) {
  std::fflush(stdout);
  std::fflush(stderr);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(sig, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  return 128 + sig;  // only if the signal does not terminate (it always should)
}

void say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("pyrewind: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

std::unique_ptr<ring::OwnedSegment> create_ring(const TraceOptions& trace, uint32_t target_pid, int* exit_code) {
  ring::SegmentOptions options;
  options.segment_bytes = trace.buffer_bytes;
  options.chunk_bytes = kChunkBytes;
  options.target_pid = target_pid;
  std::string error;
  if (!build_agent_config(trace, &options.config, &error)) {
    say("%s", error.c_str());
    *exit_code = kExitUsage;
    return nullptr;
  }
  ring::OwnedSegment::sweep_stale();
  std::unique_ptr<ring::OwnedSegment> segment = ring::OwnedSegment::create(options, &error);
  if (segment == nullptr) {
    say("cannot create the shared-memory ring: %s (try a smaller --buffer-size)", error.c_str());
    *exit_code = kExitInternal;
  }
  return segment;
}

v1::RecordingHeader base_header(uint64_t start_monotonic_ns, const char* mode) {
  v1::RecordingHeader header;
  header.set_format_version(recording::kFormatVersion);
  header.set_start_monotonic_ns(start_monotonic_ns);
  header.set_start_wall_time_ns(wall_time_at(start_monotonic_ns));
  header.set_host(collector::to_valid_utf8(host_name()));
  header.set_mode(mode);
  header.set_pyrewind_version(PYREWIND_VERSION);
  return header;
}

v1::RecordingHeader base_header(const ring::OwnedSegment& segment, const TraceOptions& trace, const char* mode) {
  v1::RecordingHeader header = base_header(segment.header()->start_monotonic_ns, mode);
  header.set_locals_omitted(!trace.capture_locals);
  return header;
}

LimitWatch::LimitWatch(const RecordingLimits& limits, collector::RecordingWriter& writer,
                       ring::SegmentHeader& ring_header, bool quiet)
    : limits_(limits), writer_(writer), ring_header_(ring_header), quiet_(quiet),
      start_ns_(collector::monotonic_now_ns()) {
  writer_.set_size_limit(limits.max_bytes);
}

bool LimitWatch::check() {
  if (!reason_.empty()) return true;
  char text[160];
  if (writer_.failed()) {
    // Disk full or an I/O error, reported at the end: tracing on would cost the program for
    // nothing.
    reason_ = "writing the recording failed: " + writer_.error();
    ring_header_.stop_request.store(1, std::memory_order_release);
    return true;
  }
  if (writer_.size_limit_reached()) {
    std::snprintf(text, sizeof text, "--max-size %llu bytes reached", static_cast<unsigned long long>(limits_.max_bytes));
  } else if (limits_.max_seconds > 0 &&
             static_cast<double>(collector::monotonic_now_ns() - start_ns_) / 1e9 >= limits_.max_seconds) {
    std::snprintf(text, sizeof text, "--max-duration %g s reached", limits_.max_seconds);
  } else {
    return false;
  }
  reason_ = text;
  ring_header_.stop_request.store(1, std::memory_order_release);
  if (!quiet_) say("%s: recording stopped after %llu events; the program runs on untraced", reason_.c_str(),
                   static_cast<unsigned long long>(writer_.events_written()));
  return true;
}

struct LiveSampler::Target {
  explicit Target(pid_t pid) : memory(pid) {}
  inspect::ProcessMemory memory;
  inspect::LocateResult located;
};

// Ids far above any the agent hands out (it counts from 1).
constexpr uint64_t kSamplerFirstId = uint64_t{1} << 40;

LiveSampler::LiveSampler(pid_t pid, collector::RecordingWriter& writer, ring::SegmentHeader& header, bool quiet)
    : pid_(pid), writer_(writer), header_(header), quiet_(quiet) {}

LiveSampler::~LiveSampler() = default;

bool LiveSampler::start(uint32_t rate_hz, const char* why) {
  rate_hz = std::max<uint32_t>(rate_hz, 1);
  if (active()) {  // a new rate
    period_ns_ = 1000000000ull / rate_hz;
    writer_.set_sample_rate(rate_hz);
    return true;
  }
  target_ = std::make_unique<Target>(pid_);
  target_->located = inspect::locate_python(pid_, target_->memory);
  if (target_->located.status != inspect::LocateStatus::kOk) {
    if (!quiet_) say("cannot sample process %d (%s): %s", pid_, why, target_->located.message.c_str());
    target_.reset();
    return false;
  }
  reader_ = std::make_unique<inspect::StackReader>(target_->located.target, target_->memory);
  if (!recorder_) {
    SampleIds ids;
    ids.first_id = kSamplerFirstId;
    ids.new_thread_index = [this](pid_t native_id) -> std::pair<uint32_t, bool> {
      if (auto known = writer_.thread_with_native_id(static_cast<uint64_t>(native_id))) return {*known, true};
      return {header_.next_writer_id.fetch_add(1, std::memory_order_relaxed), false};
    };
    recorder_ = std::make_unique<SampleRecorder>(writer_, std::move(ids));
  }
  period_ns_ = 1000000000ull / rate_hz;
  writer_.set_sample_rate(rate_hz);
  // The state first, so the agent tells why it pauses.
  header_.sampling.store(ring::kSamplingActive, std::memory_order_release);
  header_.pause_request.store(1, std::memory_order_release);
  next_sample_ns_ = monotonic_ns();
  if (!quiet_) say("process %d: line tracing paused, sampling its stacks %u times a second (%s)", pid_, rate_hz, why);
  return true;
}

void LiveSampler::stop(bool resume) {
  if (active()) {
    reader_.reset();
    target_.reset();
    recorder_->flush();
    header_.sampling.store(ring::kSamplingOff, std::memory_order_release);
    if (!quiet_) say("process %d: sampling stopped after %llu samples", pid_, static_cast<unsigned long long>(counts_.samples));
  }
  header_.pause_request.store(resume ? 0 : 1, std::memory_order_release);
}

void LiveSampler::poll() {
  if (!active() && header_.sampling.load(std::memory_order_acquire) == ring::kSamplingWanted &&
      !start(100, "the agent is over its --max-overhead budget"))
    header_.sampling.store(ring::kSamplingRefused, std::memory_order_release);
  if (!active()) return;
  // Samples start once the agent has paused, so that they never overlap its events.
  if (header_.agent_state.load(std::memory_order_acquire) != ring::kAgentPaused) return;
  const uint64_t now = monotonic_ns();
  if (now < next_sample_ns_) return;
  // A late tick is taken at once; whole periods missed are skipped, not caught up.
  next_sample_ns_ = std::max(next_sample_ns_ + period_ns_, now);
  if (!sample_once(*reader_, *recorder_, nullptr, 0, header_.start_monotonic_ns, &counts_) && injector::process_alive(pid_))
    ++counts_.dropped;
}

bool LiveFilters::add(const std::string& kind, const std::string& glob, std::string* error) {
  TraceOptions trace = trace_;
  (kind == "include" ? trace.include : trace.exclude).push_back(glob);
  ring::AgentConfig config;
  if (!build_agent_config(trace, &config, error)) return false;
  trace_ = std::move(trace);
  // Sequence lock: odd while the patterns are rewritten; the agent copies them only between
  // two equal even values.
  std::atomic<uint32_t>& generation = header_.filters_generation;
  const uint32_t before = generation.load(std::memory_order_relaxed);
  generation.store(before + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  ring::AgentConfig& live = header_.config;
  live.include_count = config.include_count;
  live.exclude_count = config.exclude_count;
  live.redact_count = config.redact_count;
  live.patterns_bytes = config.patterns_bytes;
  std::memcpy(live.patterns, config.patterns, sizeof live.patterns);
  generation.store(before + 2, std::memory_order_release);
  return true;
}

uint64_t LiveFilters::applied() const { return header_.filters_applied.load(std::memory_order_acquire) / 2; }

void apply_control_request(LiveSessionFile& live, LiveSampler& sampler, LiveFilters& filters, bool quiet) {
  live.set_filter_changes(filters.applied());
  const std::string request = live.take_control_request();
  if (request == "pause" || request == "resume") {
    sampler.stop(request == "resume");
  } else if (request.rfind("sample ", 0) == 0) {
    const long rate = std::strtol(request.c_str() + 7, nullptr, 10);
    sampler.start(static_cast<uint32_t>(std::clamp<long>(rate, 1, 20000)), "pyrewind ctl");
  } else if (request.rfind("include ", 0) == 0 || request.rfind("exclude ", 0) == 0) {
    const std::string kind = request.substr(0, 7), glob = request.substr(8);
    std::string error;
    if (!filters.add(kind, glob, &error) && !quiet) say("ctl %s %s: %s", kind.c_str(), glob.c_str(), error.c_str());
  }
}

std::string session_state_name(const ring::SegmentHeader& header, const LiveSampler& sampler) {
  const uint32_t state = header.agent_state.load(std::memory_order_acquire);
  if (sampler.active() && state == ring::kAgentPaused) return "sampling";
  return agent_state_name(state);
}

const char* agent_state_name(uint32_t agent_state) {
  switch (agent_state) {
    case ring::kAgentTracing: return "tracing";
    case ring::kAgentStopped: return "stopped";
    case ring::kAgentPaused: return "paused";
    case ring::kAgentDetached: return "detached";
    default: return "starting";
  }
}

std::string absolute_path(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  return getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + path : path;
}

}  // namespace pyrewind::cli
