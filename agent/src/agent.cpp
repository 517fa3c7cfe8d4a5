#include "src/agent.h"

#include <pthread.h>
#include <signal.h>
#include <x86intrin.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "compat/compat.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_writer.h"
#include "src/backend.h"
#include "src/code_registry.h"
#include "src/overhead.h"
#include "src/recorder.h"
#include "src/thread_state.h"

namespace pyrewind::agent {
namespace f = wire::fields;

Agent* Agent::instance_ = nullptr;

namespace {

bool kernel_clock_is_tsc() {
  FILE* file = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (!file) return false;
  char name[32] = {};
  bool tsc = std::fgets(name, sizeof name, file) && std::strncmp(name, "tsc", 3) == 0 && (name[3] == '\n' || !name[3]);
  std::fclose(file);
  return tsc;
}

}  // namespace

// No collector heartbeat for this long: the collector is gone (hung, or its pid reused).
constexpr uint64_t kCollectorSilenceNs = 10'000'000'000;

uint64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

Agent* Agent::open_session(const char* segment_name, std::string* error) {
  if (!instance_) {
    instance_ = new (std::nothrow) Agent;  // lives as long as the process: callbacks may outlive any owner
    if (!instance_) {
      *error = "out of memory";
      return nullptr;
    }
    pthread_atfork(nullptr, nullptr, [] {
      if (!instance_) return;
      instance_->forked_child_.store(true, std::memory_order_relaxed);
      instance_->tracing_.store(false, std::memory_order_relaxed);  // the child never writes to our ring
    });
  }
  if (instance_->session_open()) {
    *error = "this process is already being recorded";
    return nullptr;
  }
  return instance_->begin(segment_name, error) ? instance_ : nullptr;
}

bool Agent::begin(const char* segment_name, std::string* error) {
  std::unique_ptr<ring::AttachedSegment> segment = ring::AttachedSegment::open(segment_name, error);
  if (!segment) return false;
  ring::SegmentHeader* header = segment->header();
  if (header->target_pid != 0 && header->target_pid != static_cast<uint32_t>(getpid())) {
    *error = "the segment belongs to another process";
    return false;
  }
  const ring::AgentConfig& config = header->config;
  CaptureLimits limits;
  limits.capture_locals = (config.flags & ring::kCaptureLocals) != 0;
  limits.call_repr = (config.flags & ring::kCallRepr) != 0;
  // The config is untrusted: clamp every limit to something the agent can honour.
  limits.max_string = std::clamp<uint32_t>(config.max_string_chars, 1, 1u << 20);
  limits.max_items = std::min<uint32_t>(config.max_items, 1u << 16);
  limits.max_depth = std::min<uint32_t>(config.max_depth, 64);
  limits.max_event_bytes = std::clamp<uint32_t>(config.max_event_bytes, 1024, 1u << 20);
  limits.max_overhead_percent = std::min<uint32_t>(config.max_overhead_percent, 10000);
  Filters filters;
  if (!filters.load(config, error)) return false;
  limits_ = limits;
  filters_ = std::move(filters);
  filters_generation_ = header->filters_generation.load(std::memory_order_acquire);
  origin_ns_ = header->start_monotonic_ns;
  use_tsc_ = kernel_clock_is_tsc();
  tsc_origin_ = __rdtsc();
  tsc_origin_ns_ = monotonic_ns();
  tsc_scale_.store(0, std::memory_order_relaxed);
  segment_ = std::move(segment);
  return true;
}

void Agent::close_session() {
  if (!segment_) return;
  tracing_.store(false, std::memory_order_relaxed);
  uninstall_tracing();
  ThreadState::close_all();
  release_code_metas();
  reset_recorder();
  overhead::reset();
  paused_.store(false, std::memory_order_relaxed);
  segment()->agent_state.store(ring::kAgentDetached, std::memory_order_release);
  segment_.reset();
}

void Agent::close_session_without_python() {
  if (!segment_) return;
  tracing_.store(false, std::memory_order_relaxed);
  ThreadState::close_all();
  segment()->agent_state.store(ring::kAgentDetached, std::memory_order_release);
  segment_.reset();
}

void Agent::set_tracing(bool on) {
  tracing_.store(on, std::memory_order_relaxed);
  if (on) {
    segment()->agent_pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
    segment()->agent_state.store(ring::kAgentTracing, std::memory_order_release);
  }
}

void Agent::calibrate_tsc() {
  const uint64_t ticks = __rdtsc() - tsc_origin_;
  const uint64_t elapsed = monotonic_ns() - tsc_origin_ns_;
  if (elapsed < 1000000 || ticks == 0) return;  // under 1 ms the ratio is too coarse
  tsc_scale_.store(static_cast<uint64_t>((static_cast<unsigned __int128>(elapsed) << 32) / ticks),
                   std::memory_order_relaxed);
}

uint64_t Agent::now_ns_calibrating(uint32_t& calls_since_calibration) {
  // Recalibrating over an ever longer baseline keeps the TSC clock within microseconds.
  calls_since_calibration = 0;
  if (use_tsc_) calibrate_tsc();
  const uint64_t now = monotonic_ns();
  return now > origin_ns_ ? now - origin_ns_ : 0;
}

uint32_t Agent::next_writer_id() { return segment()->next_writer_id.fetch_add(1, std::memory_order_relaxed); }

uint64_t Agent::intern(std::string_view text) {
  if (text.empty()) return 0;
  auto [it, inserted] = string_ids_.try_emplace(std::string(text), strings_.size());
  if (inserted) strings_.emplace_back(text);
  return it->second;
}

namespace {

void write_status(wire::AgentState state, const char* message) {
  ThreadState* thread = ThreadState::current();
  if (!thread) return;
  wire::ProtoWriter writer(thread->scratch(), thread->scratch_size());
  auto status = writer.begin_nested(f::Packet::kAgentStatus);
  writer.varint_field(f::AgentStatus::kState, static_cast<uint32_t>(state));
  writer.bytes_field(f::AgentStatus::kMessage, message, std::min<size_t>(std::strlen(message), 1024));
  writer.varint_field(f::AgentStatus::kTimeNs, Agent::instance()->now_ns(thread->clock_calls));
  writer.end_nested(status);
  if (!writer.overflowed()) thread->commit(writer.size(), thread->last_time_ns);
}

}  // namespace

void Agent::stop(const char* reason) {
  if (!tracing()) return;
  tracing_.store(false, std::memory_order_relaxed);
  uninstall_tracing();
  write_status(wire::AgentState::kStopped, reason);
  ring::set_agent_message(*segment(), reason);
  segment()->agent_state.store(ring::kAgentStopped, std::memory_order_release);
}

bool Agent::session_end_requested() const {
  const ring::SegmentHeader& header = *segment();
  if (header.stop_request.load(std::memory_order_acquire) != 0) return true;
  const uint32_t pid = header.collector_pid.load(std::memory_order_relaxed);
  if (pid != 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  const uint64_t heartbeat = header.collector_heartbeat_ns.load(std::memory_order_relaxed);
  return heartbeat != 0 && monotonic_ns() > heartbeat + kCollectorSilenceNs;
}

void Agent::warn(const char* message) { write_status(wire::AgentState::kWarning, message); }

void Agent::apply_filter_change() {
  ring::SegmentHeader& header = *segment();
  const uint32_t generation = header.filters_generation.load(std::memory_order_acquire);
  if (generation & 1) return;  // the collector is writing: the next callback looks again
  auto config = std::make_unique<ring::AgentConfig>();
  std::memcpy(config.get(), &header.config, sizeof *config);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (header.filters_generation.load(std::memory_order_relaxed) != generation) return;  // torn copy
  filters_generation_ = generation;
  header.filters_applied.store(generation, std::memory_order_release);  // applied, or refused with a message
  Filters filters = filters_;  // keeps what Python told it (stdlib directory, the program's name)
  std::string error;
  if (!filters.load(*config, &error)) {
    warn(("file filters not changed: " + error).c_str());
    return;
  }
  filters_ = std::move(filters);
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);  // nothing of ours may reach the program
  std::vector<CodeMeta*> now_untraced;
  size_t now_traced = 0;
  refilter_code_metas(&now_untraced, &now_traced);
  refilter_events(now_untraced, now_traced > 0);
  ThreadState::rescan_all();
  PyErr_Restore(type, value, traceback);
  warn(("file filters changed by `pyrewind ctl`: " + std::to_string(now_traced) + " code objects seen so far traced now, " +
        std::to_string(now_untraced.size()) + " no longer")
           .c_str());
}

bool Agent::request_sampling() {
  uint32_t off = ring::kSamplingOff;
  return segment()->sampling.compare_exchange_strong(off, ring::kSamplingWanted, std::memory_order_acq_rel);
}

bool Agent::sampling_refused() const {
  return segment()->sampling.load(std::memory_order_acquire) == ring::kSamplingRefused;
}

void Agent::set_paused(bool paused) {
  if (!tracing()) return;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);  // nothing of ours may reach the program
  if (paused) {
    warn(segment()->sampling.load(std::memory_order_acquire) == ring::kSamplingActive
             ? "line tracing paused: pyrewind samples the stacks from outside instead"
             : "recording paused by `pyrewind ctl`");
    paused_.store(true, std::memory_order_relaxed);
    pause_tracing();
    segment()->agent_state.store(ring::kAgentPaused, std::memory_order_release);
  } else {
    paused_.store(false, std::memory_order_relaxed);
    ThreadState::restart_all();
    resume_tracing();
    warn("recording resumed by `pyrewind ctl`: each frame starts afresh (its first event is a full state)");
    segment()->agent_state.store(ring::kAgentTracing, std::memory_order_release);
  }
  PyErr_Restore(type, value, traceback);
}

}  // namespace pyrewind::agent
