// What `run` and `attach` share: the agent configuration built from the trace options, the
// shared-memory ring's sizes, the recording header's common fields, and pyrewind's messages.
#pragma once

#include <cstdint>
#include <string>

#include "pyrewind/v1/recording.pb.h"
#include "proto/ring/layout.h"
#include "tools/pyrewind/commands.h"

namespace pyrewind::cli {

// The agent bounds one encoded event (locals included) to this; a ring chunk must hold it
// with its framing, hence the chunk size.
constexpr uint32_t kMaxEventBytes = 32768;
constexpr uint32_t kChunkBytes = 65536;
static_assert(ring::chunk_payload_bytes(kChunkBytes) >= kMaxEventBytes + 16);

// "pyrewind: <message>" on stderr.
void say(const char* format, ...) __attribute__((format(printf, 1, 2)));

bool build_agent_config(const TraceOptions& trace, ring::AgentConfig* config, std::string* error);

// CLOCK_REALTIME at the moment CLOCK_MONOTONIC read `monotonic_ns`.
uint64_t wall_time_at(uint64_t monotonic_ns);
std::string host_name();

}  // namespace pyrewind::cli
