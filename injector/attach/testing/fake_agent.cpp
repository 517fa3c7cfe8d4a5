// A fake pyrewind agent for testing `pyrewind attach` without a real one: it speaks the
// segment protocol (maps the ring, reports TRACING, waits for the stop request or the
// collector's death, reports DETACHED, unmaps) and records nothing. Like the real agent it
// refuses a second session while one is open (start returns 1).
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "proto/ring/segment.h"

namespace {

std::atomic<bool> g_session_open{false};

void* session_main(void* arg) {
  auto* segment = static_cast<pyrewind::ring::AttachedSegment*>(arg);
  pyrewind::ring::SegmentHeader& header = *segment->header();
  header.agent_state.store(pyrewind::ring::kAgentTracing, std::memory_order_release);
  while (header.stop_request.load(std::memory_order_acquire) == 0) {
    const uint32_t collector = header.collector_pid.load(std::memory_order_relaxed);
    if (collector != 0 && kill(static_cast<pid_t>(collector), 0) != 0 && errno == ESRCH) break;
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
  }
  header.agent_state.store(pyrewind::ring::kAgentDetached, std::memory_order_release);
  delete segment;
  g_session_open.store(false, std::memory_order_release);
  return nullptr;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int pyrewind_agent_start(const char* segment_name) {
  if (segment_name == nullptr || g_session_open.exchange(true, std::memory_order_acq_rel)) return 1;
  std::string error;
  std::unique_ptr<pyrewind::ring::AttachedSegment> segment = pyrewind::ring::AttachedSegment::open(segment_name, &error);
  if (!segment) {
    g_session_open.store(false, std::memory_order_release);
    return 2;
  }
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  const int created = pthread_create(&thread, &attributes, session_main, segment.get());
  pthread_attr_destroy(&attributes);
  if (created != 0) {
    g_session_open.store(false, std::memory_order_release);
    return 3;
  }
  segment.release();  // the session thread owns it now
  return 0;
}
