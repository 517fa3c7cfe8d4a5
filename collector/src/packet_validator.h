// Schema-aware validation of protobuf messages read from the ring (untrusted bytes).
//
// The collector copies most event bytes verbatim into the recording, and readers parse a whole
// file chunk as one PacketBatch with libprotobuf: a single malformed nested message (bad wire
// type, truncated length, invalid UTF-8 in a proto3 `string`, nesting deeper than protobuf's
// recursion limit) would make the whole chunk unreadable. So every message the collector
// passes on is checked here against the trace.proto schema first, down to the last nested
// Value. Unknown fields are allowed (forward compatibility) as long as they are well-formed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/wire/proto_reader.h"

namespace pyrewind::collector {

enum class MessageType : uint8_t {
  kStringDef,
  kCodeDef,
  kThreadStart,
  kThreadEnd,
  kEvent,
  kBinding,
  kExceptionInfo,
  kValue,
  kBigInt,
  kText,
  kBlob,
  kContainer,
  kObjectRef,
  kLoss,
  kAgentStatus,
  kBindingValue,      // a Binding's value: its container may be a delta (Container.reused_items)
  kBindingContainer,
};

// What validation found that the caller must judge in context.
struct ValidationFacts {
  uint64_t container_deltas = 0;  // binding values sent as deltas: only valid in a LINE event
                                  // without full_state
};

// Nesting levels allowed inside one Packet (the Packet itself is level 1). libprotobuf refuses
// messages nested deeper than 100 levels; a file chunk adds the PacketBatch level, and this
// margin keeps every accepted packet parseable.
constexpr int kMaxPacketNesting = 96;

// True when `data` is a well-formed message of `type`. `nesting` is the level `data` sits at.
// A container delta (Container.reused_items) is well-formed only as a binding's value, and
// reuses at most `length` items; `facts`, if given, counts the deltas seen.
bool validate_message(MessageType type, const uint8_t* data, size_t size, int nesting = 2,
                      ValidationFacts* facts = nullptr);

// True when `field`, read by ProtoReader from a message of `type` at level `nesting`, is valid
// for that message (the wire type its schema wants; UTF-8 strings; valid nested messages).
// Lets a caller that walks a message's fields anyway validate in the same pass.
bool validate_field(MessageType type, const wire::Field& field, int nesting = 2, ValidationFacts* facts = nullptr);

// What the collector's rewrite needs of an Event body (packet_translator.h).
struct EventFields {
  uint64_t kind = 0;
  uint64_t code_id = 0;
  uint64_t time_delta_ns = 0;
  bool full_state = false;
  const uint8_t* delta_begin = nullptr;  // the time_delta_ns field's bytes, if any
  const uint8_t* delta_end = nullptr;
};

// The collector's per-event fast path. True when `data` is an Event body in the shape the agent
// writes for most events: one-byte tags; kind, one time delta, code id, line, depth, full
// state and locals-incomplete flags; bindings of a slot with an unbound flag or a None, bool,
// int, float or redacted value; a return value of those kinds. Such a body is valid (as
// validate_message(kEvent) finds it, with no container delta) and `out` describes it. False
// says nothing about validity: the general path decides.
bool scan_plain_event(const uint8_t* data, size_t size, EventFields* out);

// RFC 3629 UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), which is what
// libprotobuf requires of proto3 `string` fields.
bool valid_utf8(const uint8_t* data, size_t size);

// `text` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, for
// text from outside (argv, paths, messages in shared memory) that goes into a proto3 string.
std::string to_valid_utf8(std::string_view text);

}  // namespace pyrewind::collector
