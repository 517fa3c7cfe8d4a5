#include "collector/src/session.h"

#include <time.h>

#include <algorithm>

#include "collector/src/packet_validator.h"

namespace pyrewind::collector {

uint64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Session::Session(ring::OwnedSegment& segment, RecordingWriter& writer, SessionOptions options)
    : segment_(segment),
      writer_(writer),
      options_(options),
      drainer_(std::make_unique<ring::Drainer>(segment.header(), segment.size())),
      translator_(writer),
      interval_ns_(options.max_poll_interval_ns),
      last_flush_ns_(monotonic_now_ns()) {
  if (!drainer_->valid()) error_ = "invalid shared memory segment: " + drainer_->error();
}

Session::~Session() = default;

bool Session::valid() const { return drainer_->valid(); }

const ring::DrainStats& Session::drain_stats() const { return drainer_->stats(); }

uint32_t Session::agent_state() const {
  return segment_.header()->agent_state.load(std::memory_order_acquire);
}

std::string Session::agent_message() const { return ring::agent_message(*segment_.header()); }

void Session::check_agent() {
  if (agent_seen_) return;
  if (agent_state() != ring::kAgentNone) {
    agent_seen_ = true;
    // The agent has mapped the segment: nobody else needs the name any more.
    segment_.unlink();
  }
}

size_t Session::poll() {
  if (!valid()) return 0;
  const uint64_t now = monotonic_now_ns();
  segment_.header()->collector_heartbeat_ns.store(now, std::memory_order_relaxed);
  const size_t packets = drainer_->poll(translator_);
  check_agent();

  if (now - last_flush_ns_ >= options_.flush_interval_ns) {
    last_flush_ns_ = now;
    if (translator_.take_written_flag() && !writer_.failed()) writer_.flush_chunk();
  }

  if (packets > 0) {
    interval_ns_ = std::max(options_.min_poll_interval_ns, interval_ns_ / 2);
  } else {
    interval_ns_ = std::min(options_.max_poll_interval_ns, interval_ns_ * 2);
  }
  return packets;
}

void Session::run(const std::function<bool(uint64_t timeout_ns)>& wait_for_target) {
  while (true) {
    poll();
    if (wait_for_target(interval_ns_)) return;
  }
}

void Session::drain_remaining() {
  // The target is gone, so the ring only shrinks; loop until a pass finds nothing. The
  // deadline guards against a forked child of the target that still writes.
  const uint64_t deadline = monotonic_now_ns() + options_.final_drain_timeout_ns;
  while (valid() && poll() > 0 && monotonic_now_ns() < deadline) {
  }
  check_agent();
  segment_.unlink();
}

bool Session::finish(const SessionEnd& end) {
  if (finished_) return !writer_.failed();
  finished_ = true;
  drain_remaining();
  if (writer_.failed()) return false;  // keep the file as it is: whole chunks up to the error

  v1::RecordingSummary extras;
  extras.set_exit_status(end.exit_status);
  extras.set_target_exited(end.target_exited);
  extras.set_stop_reason(to_valid_utf8(end.stop_reason));
  if (agent_state() == ring::kAgentStopped) {
    // Written by the agent into shared memory: make sure it is the UTF-8 a proto3 string needs.
    const std::string message = to_valid_utf8(agent_message());
    // The writer adds the AgentStatus messages of the stream itself: do not say it twice.
    if (!message.empty() && !translator_.saw_status_message(message)) extras.add_agent_messages(message);
  }
  return writer_.finish(extras);
}

std::string Session::writer_error() const { return writer_.failed() ? writer_.error() : std::string(); }

}  // namespace pyrewind::collector
