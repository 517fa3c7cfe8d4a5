#include "collector/src/packet_translator.h"

#include <cstring>
#include <string_view>

#include "collector/src/packet_validator.h"
#include "proto/wire/fields.h"
#include "proto/wire/proto_reader.h"
#include "proto/wire/proto_writer.h"

namespace pyrewind::collector {

namespace {

namespace f = wire::fields;

constexpr size_t kMaxCorruptionSamples = 8;
constexpr size_t kMaxStatusMessages = 16;
constexpr const char* kRingLossReason = "dropped in the shared-memory ring (buffer full or record too large)";

std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Packed or unpacked repeated varint field; `field` was validated.
void append_varints(const wire::Field& field, std::vector<uint64_t>* out) {
  if (field.wire_type == wire::kVarint) {
    out->push_back(field.varint);
    return;
  }
  const uint8_t* p = field.bytes;
  const uint8_t* end = field.bytes + field.size;
  uint64_t value;
  while (p != end && (p = wire::read_varint_at(p, end, &value))) out->push_back(value);
}

// The general path of PacketTranslator::handle_event(), for events scan_plain_event() does not
// take: one pass over the fields that validates each, notes what the rewrite needs in `fields`
// and copies the kept fields' bytes to `*out` (advanced past them).
bool read_event(const uint8_t* data, size_t size, EventFields* fields, ValidationFacts* facts, uint8_t** out) {
  wire::ProtoReader reader(data, size);
  wire::Field field;
  // Kept fields are copied in runs: the agent's fields are contiguous but for the time delta.
  const uint8_t* run = data;
  auto skip_field = [&](const wire::Field& skipped) {
    const size_t n = static_cast<size_t>(skipped.start - run);
    std::memcpy(*out, run, n);
    *out += n;
    run = skipped.end;
  };
  while (reader.next(field)) {
    if (!validate_field(MessageType::kEvent, field, 2, facts)) return false;
    switch (field.number) {
      case f::Event::kTimeDeltaNs:
        fields->time_delta_ns = field.varint;  // last one wins, as in protobuf
        skip_field(field);
        break;
      case f::Event::kThread:
      case f::Event::kTimeNs:
        skip_field(field);  // file-only fields: the collector states them
        break;
      case f::Event::kKind:
        fields->kind = field.varint;
        break;
      case f::Event::kCodeId:
        fields->code_id = field.varint;
        break;
      case f::Event::kFullState:
        fields->full_state = field.varint != 0;
        break;
      default:
        break;
    }
  }
  const size_t n = static_cast<size_t>(data + size - run);
  std::memcpy(*out, run, n);
  *out += n;
  return reader.ok();
}

}  // namespace

PacketTranslator::PacketTranslator(RecordingWriter& writer) : writer_(writer) {}

bool PacketTranslator::take_written_flag() {
  const bool written = written_;
  written_ = false;
  return written;
}

// After a write error (disk full) the ring is still drained, so the agent never stalls or
// drops on the program's side, but nothing more reaches the file.
bool PacketTranslator::writable() {
  if (writer_.failed()) {
    ++stats_.discarded_packets;
    return false;
  }
  written_ = true;
  return true;
}

void PacketTranslator::on_chunk_start(uint32_t writer_id, uint64_t base_time_ns, uint64_t dropped_records,
                                      uint64_t dropped_bytes) {
  clock_ = &clocks_[writer_id];  // node-based map: the pointer stays valid
  clock_writer_ = writer_id;
  clock_->time_ns = base_time_ns;
  if (dropped_records != 0 || dropped_bytes != 0) {
    stats_.dropped_records += dropped_records;
    stats_.dropped_bytes += dropped_bytes;
    write_loss(writer_id, dropped_records, dropped_bytes, kRingLossReason);
  }
}

bool PacketTranslator::saw_status_message(const std::string& message) const {
  for (const std::string& seen : status_messages_) {
    if (seen == message) return true;
  }
  return false;
}

void PacketTranslator::on_corruption(uint32_t chunk_index, const std::string& reason) {
  ++stats_.corrupt_chunks;
  if (corruption_samples_.size() < kMaxCorruptionSamples) {
    corruption_samples_.push_back("chunk " + std::to_string(chunk_index) + ": " + reason);
  }
}

void PacketTranslator::on_packet(uint32_t writer_id, const uint8_t* data, size_t size) {
  ++stats_.packets;
  // Most packets are events: their tag, length and body, read without a ProtoReader.
  constexpr uint8_t kEventTag = (f::Packet::kEvent << 3) | wire::kLengthDelimited;
  const uint8_t* event = nullptr;
  if (size > 0 && data[0] == kEventTag && wire::read_length_delimited(data + 1, data + size, &event) == data + size) {
    if (!handle_event(writer_id, event, static_cast<size_t>(data + size - event))) ++stats_.malformed_packets;
    return;
  }
  // A Packet is a oneof: exactly one length-delimited body field.
  wire::ProtoReader reader(data, size);
  wire::Field body;
  wire::Field extra;
  if (!reader.next(body) || body.wire_type != wire::kLengthDelimited || reader.next(extra) || !reader.ok()) {
    ++stats_.malformed_packets;
    return;
  }
  bool ok = true;
  switch (body.number) {
    case f::Packet::kEvent:
      ok = handle_event(writer_id, body.bytes, body.size);
      break;
    case f::Packet::kStringDef:
      ok = handle_string(data, size, body.bytes, body.size);
      break;
    case f::Packet::kCodeDef:
      ok = handle_code(data, size, body.bytes, body.size);
      break;
    case f::Packet::kThreadStart:
      ok = handle_thread_start(data, size, body.bytes, body.size);
      break;
    case f::Packet::kThreadEnd:
      ok = handle_thread_end(data, size, body.bytes, body.size);
      break;
    case f::Packet::kLoss:
      ok = handle_loss(writer_id, body.bytes, body.size);
      break;
    case f::Packet::kAgentStatus:
      ok = handle_status(data, size, body.bytes, body.size);
      break;
    default:
      ++stats_.unknown_packets;
      return;
  }
  if (!ok) ++stats_.malformed_packets;
}

// Validates the event, notes what the rewrite needs, and copies the kept fields' bytes behind
// room for the Packet header, which is filled in last.
bool PacketTranslator::handle_event(uint32_t writer_id, const uint8_t* data, size_t size) {
  constexpr size_t kHeaderRoom = 1 + 10;                // Packet.event tag + length varint
  constexpr size_t kTrailer = 1 + 5 + 1 + 10;           // thread + time_ns fields
  if (buffer_.size() < kHeaderRoom + size + kTrailer) buffer_.resize(kHeaderRoom + size + kTrailer);
  uint8_t* const body = buffer_.data() + kHeaderRoom;
  uint8_t* out = body;

  EventFields fields;
  ValidationFacts facts;
  if (scan_plain_event(data, size, &fields)) {
    // Most events: the bytes around the time delta, as they are.
    const uint8_t* delta_begin = fields.delta_begin ? fields.delta_begin : data + size;
    const uint8_t* delta_end = fields.delta_begin ? fields.delta_end : data + size;
    const size_t before = static_cast<size_t>(delta_begin - data);
    const size_t after = static_cast<size_t>(data + size - delta_end);
    std::memcpy(out, data, before);
    std::memcpy(out + before, delta_end, after);
    out += before + after;
  } else if (!read_event(data, size, &fields, &facts, &out)) {
    return false;
  }
  const uint64_t kind = fields.kind;
  const uint64_t code_id = fields.code_id;
  const uint64_t delta = fields.time_delta_ns;
  const bool full_state = fields.full_state;
  if (kind < static_cast<uint64_t>(wire::EventKind::kCall) ||
      kind > static_cast<uint64_t>(wire::EventKind::kExceptionHandled)) {
    return false;
  }
  // A delta refers to the binding's value at the frame's previous event: a CALL or a full
  // state has none to refer to.
  if (facts.container_deltas != 0 && (kind != static_cast<uint64_t>(wire::EventKind::kLine) || full_state))
    return false;

  if (writer_id != clock_writer_ || clock_ == nullptr) {
    clock_ = &clocks_[writer_id];
    clock_writer_ = writer_id;
  }
  WriterClock& clock = *clock_;
  if (delta > UINT64_MAX - clock.time_ns) return false;  // a time beyond any real recording
  clock.time_ns += delta;
  if (!clock.has_events) {
    clock.has_events = true;
    threads_seen_.insert(writer_id);
  }
  if (!writable()) return true;

  const uint64_t time_ns = clock.time_ns;
  out += wire::ProtoWriter::encode_varint((f::Event::kThread << 3) | wire::kVarint, out);
  out += wire::ProtoWriter::encode_varint(writer_id, out);
  out += wire::ProtoWriter::encode_varint((f::Event::kTimeNs << 3) | wire::kVarint, out);
  out += wire::ProtoWriter::encode_varint(time_ns, out);
  const size_t body_size = static_cast<size_t>(out - body);

  uint8_t header[kHeaderRoom];
  size_t header_size = wire::ProtoWriter::encode_varint((f::Packet::kEvent << 3) | wire::kLengthDelimited, header);
  header_size += wire::ProtoWriter::encode_varint(body_size, header + header_size);
  uint8_t* const packet = body - header_size;
  std::memcpy(packet, header, header_size);

  EventMeta meta;
  meta.thread = writer_id;
  meta.time_ns = time_ns;
  meta.code_id = code_id;
  meta.kind = static_cast<uint32_t>(kind);
  writer_.add_event(meta, as_view(packet, header_size + body_size));
  ++stats_.events;
  return true;
}

bool PacketTranslator::handle_string(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size) {
  if (!validate_message(MessageType::kStringDef, data, size)) return false;
  uint64_t id = 0;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    if (field.number == f::StringDef::kId) id = field.varint;
  }
  if (id == 0) return false;  // 0 means "none" and is never defined
  if (!strings_.insert(id).second) {
    ++stats_.duplicate_defs;
    return true;
  }
  if (!writable()) return true;
  writer_.add_string(id, as_view(packet, packet_size));
  ++stats_.strings;
  return true;
}

bool PacketTranslator::handle_code(const uint8_t* packet, size_t packet_size, const uint8_t* data, size_t size) {
  if (!validate_message(MessageType::kCodeDef, data, size)) return false;
  uint64_t id = 0;
  uint64_t file_name_id = 0;
  uint64_t qualified_name_id = 0;
  local_name_ids_.clear();
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case f::CodeDef::kId:
        id = field.varint;
        break;
      case f::CodeDef::kFileNameId:
        file_name_id = field.varint;
        break;
      case f::CodeDef::kQualifiedNameId:
        qualified_name_id = field.varint;
        break;
      case f::CodeDef::kLocalNameIds:
        append_varints(field, &local_name_ids_);
        break;
      default:
        break;
    }
  }
  if (id == 0) return false;
  if (!codes_.insert(id).second) {
    ++stats_.duplicate_defs;
    return true;
  }
  if (!writable()) return true;
  writer_.add_code(id, file_name_id, qualified_name_id, local_name_ids_.data(), local_name_ids_.size(),
                   as_view(packet, packet_size));
  ++stats_.codes;
  return true;
}

bool PacketTranslator::handle_thread_start(const uint8_t* packet, size_t packet_size, const uint8_t* data,
                                           size_t size) {
  if (!validate_message(MessageType::kThreadStart, data, size)) return false;
  uint64_t thread = 0;
  uint64_t native_id = 0;
  std::string_view name;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case f::ThreadStart::kThread:
        thread = field.varint;
        break;
      case f::ThreadStart::kNativeId:
        native_id = field.varint;
        break;
      case f::ThreadStart::kName:
        name = as_view(field.bytes, field.size);
        break;
      default:
        break;
    }
  }
  if (thread > UINT32_MAX) return false;
  const auto index = static_cast<uint32_t>(thread);
  if (!threads_started_.insert(index).second) {
    ++stats_.duplicate_defs;
    return true;
  }
  threads_seen_.insert(index);
  if (!writable()) return true;
  writer_.add_thread(index, native_id, name, as_view(packet, packet_size));
  ++stats_.threads_started;
  return true;
}

bool PacketTranslator::handle_thread_end(const uint8_t* packet, size_t packet_size, const uint8_t* data,
                                         size_t size) {
  if (!validate_message(MessageType::kThreadEnd, data, size)) return false;
  uint64_t thread = 0;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    if (field.number == f::ThreadEnd::kThread) thread = field.varint;
  }
  if (thread > UINT32_MAX) return false;
  const auto index = static_cast<uint32_t>(thread);
  if (!threads_ended_.insert(index).second) {
    ++stats_.duplicate_defs;
    return true;
  }
  if (!writable()) return true;
  writer_.end_thread(index, as_view(packet, packet_size));
  ++stats_.threads_ended;
  return true;
}

// A Loss the agent itself reports (it dropped something before the ring). Re-encoded so the
// thread is always stated: a ring Loss may leave it implicit in its stream.
bool PacketTranslator::handle_loss(uint32_t writer_id, const uint8_t* data, size_t size) {
  if (!validate_message(MessageType::kLoss, data, size)) return false;
  uint64_t thread = writer_id;
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::string reason;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case f::Loss::kThread:
        thread = field.varint;
        break;
      case f::Loss::kDroppedRecords:
        records = field.varint;
        break;
      case f::Loss::kDroppedBytes:
        bytes = field.varint;
        break;
      case f::Loss::kReason:
        reason.assign(reinterpret_cast<const char*>(field.bytes), field.size);
        break;
      default:
        break;
    }
  }
  if (thread > UINT32_MAX) return false;
  stats_.dropped_records += records;
  stats_.dropped_bytes += bytes;
  write_loss(static_cast<uint32_t>(thread), records, bytes, reason);
  return true;
}

void PacketTranslator::write_loss(uint32_t thread, uint64_t records, uint64_t bytes, const std::string& reason) {
  ++stats_.loss_packets;
  if (!writable()) return;
  // Packet{loss: Loss{...}}; a nested length prefix of 4 bytes keeps this a single pass.
  buffer_.resize(64 + reason.size());
  wire::ProtoWriter out(buffer_.data(), buffer_.size());
  auto loss = out.begin_nested(f::Packet::kLoss);
  out.varint_field(f::Loss::kThread, thread);
  out.varint_field(f::Loss::kDroppedRecords, records);
  out.varint_field(f::Loss::kDroppedBytes, bytes);
  if (!reason.empty()) out.bytes_field(f::Loss::kReason, reason.data(), reason.size());
  out.end_nested(loss);
  if (out.overflowed()) return;  // cannot happen: sized above
  writer_.add_loss(thread, records, bytes, as_view(buffer_.data(), out.size()));
}

bool PacketTranslator::handle_status(const uint8_t* packet, size_t packet_size, const uint8_t* data,
                                     size_t size) {
  if (!validate_message(MessageType::kAgentStatus, data, size)) return false;
  std::string_view message;
  wire::ProtoReader reader(data, size);
  wire::Field field;
  while (reader.next(field)) {
    if (field.number == f::AgentStatus::kMessage) message = as_view(field.bytes, field.size);
  }
  if (!message.empty() && status_messages_.size() < kMaxStatusMessages) status_messages_.emplace_back(message);
  if (!writable()) return true;
  writer_.add_status(message, as_view(packet, packet_size));
  ++stats_.statuses;
  return true;
}

}  // namespace pyrewind::collector
