// Perfetto's trace format (protos/perfetto/trace in the Perfetto repository): a Trace message
// is a sequence of `packet` fields, so packets are appended one by one. Field numbers are
// listed below; tools/analysis/testdata/perfetto_subset.proto declares the same subset and
// the tests decode our output with it.
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "proto/wire/proto_writer.h"
#include "tools/analysis/trace_formats.h"

namespace pyrewind::analysis {
namespace {

namespace perfetto {
namespace Trace { constexpr uint32_t kPacket = 1; }
namespace TracePacket {
constexpr uint32_t kTimestamp = 8, kTrustedPacketSequenceId = 10, kTrackEvent = 11, kInternedData = 12,
                   kSequenceFlags = 13, kTrackDescriptor = 60;
constexpr uint32_t kSeqIncrementalStateCleared = 1, kSeqNeedsIncrementalState = 2;
}  // namespace TracePacket
namespace TrackDescriptor { constexpr uint32_t kUuid = 1, kName = 2, kProcess = 3, kThread = 4, kParentUuid = 5; }
namespace ProcessDescriptor { constexpr uint32_t kPid = 1, kCmdline = 2, kProcessName = 6; }
namespace ThreadDescriptor { constexpr uint32_t kPid = 1, kTid = 2, kThreadName = 5; }
namespace TrackEvent {
constexpr uint32_t kDebugAnnotations = 4, kType = 9, kNameIid = 10, kTrackUuid = 11, kSourceLocationIid = 34;
constexpr uint32_t kTypeSliceBegin = 1, kTypeSliceEnd = 2, kTypeInstant = 3;
}  // namespace TrackEvent
namespace InternedData { constexpr uint32_t kEventNames = 2, kSourceLocations = 4; }
namespace EventName { constexpr uint32_t kIid = 1, kName = 2; }
namespace SourceLocation { constexpr uint32_t kIid = 1, kFileName = 2, kFunctionName = 3, kLineNumber = 4; }
namespace DebugAnnotation { constexpr uint32_t kUintValue = 3, kName = 10; }
}  // namespace perfetto

// Every packet of this file is on one sequence; the id is ours to choose (non-zero).
constexpr uint32_t kSequenceId = 1;
constexpr uint64_t kProcessTrackUuid = 1;
uint64_t thread_track_uuid(uint32_t thread) { return 2 + uint64_t{thread}; }
constexpr uint64_t kLossNameIid = 1;  // code objects' names follow

class PerfettoWriter : public TraceWriter {
 public:
  PerfettoWriter(const TraceSource& source, reader::OutputFile& out) : source_(source), out_(out) {
    const auto& header = source.recording.header();
    const std::string name = program_label(source.recording);
    size_t size = name.size();
    for (const std::string& arg : header.argv()) size += arg.size() + 8;
    auto w = start_packet(size);
    auto track = w.begin_nested(perfetto::TracePacket::kTrackDescriptor);
    w.varint_field(perfetto::TrackDescriptor::kUuid, kProcessTrackUuid);
    auto process = w.begin_nested(perfetto::TrackDescriptor::kProcess);
    w.varint_field(perfetto::ProcessDescriptor::kPid, header.pid());
    for (const std::string& arg : header.argv())
      w.bytes_field(perfetto::ProcessDescriptor::kCmdline, arg.data(), arg.size());
    w.bytes_field(perfetto::ProcessDescriptor::kProcessName, name.data(), name.size());
    w.end_nested(process);
    w.end_nested(track);
    end_packet(w);
  }

  void begin(const Span& span) override {
    declare_thread(span.thread);
    const reader::CodeInfo& code = *span.code;
    const std::string name = function_name(code);
    auto it = iids_.find(code.id);
    const bool fresh = it == iids_.end();
    if (fresh) it = iids_.emplace(code.id, kLossNameIid + 1 + iids_.size()).first;
    auto w = start_packet(fresh ? name.size() * 2 + code.file.size() : 0);
    w.varint_field(perfetto::TracePacket::kTimestamp, span.start_ns);
    if (fresh) {
      auto interned = w.begin_nested(perfetto::TracePacket::kInternedData);
      auto event_name = w.begin_nested(perfetto::InternedData::kEventNames);
      w.varint_field(perfetto::EventName::kIid, it->second);
      w.bytes_field(perfetto::EventName::kName, name.data(), name.size());
      w.end_nested(event_name);
      auto location = w.begin_nested(perfetto::InternedData::kSourceLocations);
      w.varint_field(perfetto::SourceLocation::kIid, it->second);
      w.bytes_field(perfetto::SourceLocation::kFileName, code.file.data(), code.file.size());
      w.bytes_field(perfetto::SourceLocation::kFunctionName, name.data(), name.size());
      w.varint_field(perfetto::SourceLocation::kLineNumber, code.first_line);
      w.end_nested(location);
      w.end_nested(interned);
    }
    auto event = w.begin_nested(perfetto::TracePacket::kTrackEvent);
    w.varint_field(perfetto::TrackEvent::kType, perfetto::TrackEvent::kTypeSliceBegin);
    w.varint_field(perfetto::TrackEvent::kTrackUuid, thread_track_uuid(span.thread));
    w.varint_field(perfetto::TrackEvent::kNameIid, it->second);
    w.varint_field(perfetto::TrackEvent::kSourceLocationIid, it->second);
    w.end_nested(event);
    end_packet(w);
  }

  void end(const Span& span, uint64_t time_ns) override {
    auto w = start_packet(0);
    w.varint_field(perfetto::TracePacket::kTimestamp, time_ns);
    auto event = w.begin_nested(perfetto::TracePacket::kTrackEvent);
    w.varint_field(perfetto::TrackEvent::kType, perfetto::TrackEvent::kTypeSliceEnd);
    w.varint_field(perfetto::TrackEvent::kTrackUuid, thread_track_uuid(span.thread));
    w.end_nested(event);
    end_packet(w);
  }

  void lost(uint32_t thread, uint64_t time_ns, uint64_t records) override {
    static constexpr char kName[] = "records lost";
    static constexpr char kCount[] = "dropped_records";
    declare_thread(thread);  // a thread can lose records before any span of it is shown
    auto w = start_packet(0);
    w.varint_field(perfetto::TracePacket::kTimestamp, time_ns);
    if (!loss_interned_) {
      auto interned = w.begin_nested(perfetto::TracePacket::kInternedData);
      auto event_name = w.begin_nested(perfetto::InternedData::kEventNames);
      w.varint_field(perfetto::EventName::kIid, kLossNameIid);
      w.bytes_field(perfetto::EventName::kName, kName, sizeof kName - 1);
      w.end_nested(event_name);
      w.end_nested(interned);
      loss_interned_ = true;
    }
    auto event = w.begin_nested(perfetto::TracePacket::kTrackEvent);
    w.varint_field(perfetto::TrackEvent::kType, perfetto::TrackEvent::kTypeInstant);
    w.varint_field(perfetto::TrackEvent::kTrackUuid, thread_track_uuid(thread));
    w.varint_field(perfetto::TrackEvent::kNameIid, kLossNameIid);
    auto annotation = w.begin_nested(perfetto::TrackEvent::kDebugAnnotations);
    w.bytes_field(perfetto::DebugAnnotation::kName, kCount, sizeof kCount - 1);
    w.varint_field(perfetto::DebugAnnotation::kUintValue, records);
    w.end_nested(annotation);
    w.end_nested(event);
    end_packet(w);
  }

  bool finish(uint64_t) override { return error_.empty() && out_.commit(); }

 private:
  // A packet's bytes, written into buffer_ (sized for `strings` bytes of text plus the
  // fixed fields) and then appended to the output as one Trace.packet field.
  wire::ProtoWriter start_packet(size_t strings) {
    buffer_.resize(256 + strings);
    return wire::ProtoWriter(buffer_.data(), buffer_.size());
  }

  void end_packet(wire::ProtoWriter& w) {
    w.varint_field(perfetto::TracePacket::kTrustedPacketSequenceId, kSequenceId);
    w.varint_field(perfetto::TracePacket::kSequenceFlags,
                   first_packet_ ? perfetto::TracePacket::kSeqIncrementalStateCleared
                                 : perfetto::TracePacket::kSeqNeedsIncrementalState);
    first_packet_ = false;
    // start_packet() sizes the buffer for every packet written here; a packet that still did
    // not fit would be corrupt, so it is an error rather than dropped silently.
    if (w.overflowed()) {
      if (error_.empty()) error_ = "internal error: a Perfetto packet did not fit its buffer";
      return;
    }
    uint8_t head[16];
    size_t n = wire::ProtoWriter::encode_varint((perfetto::Trace::kPacket << 3) | wire::kLengthDelimited, head);
    n += wire::ProtoWriter::encode_varint(w.size(), head + n);
    std::string& b = out_.buffer();
    b.append(reinterpret_cast<const char*>(head), n);
    b.append(reinterpret_cast<const char*>(w.data()), w.size());
    out_.commit();
  }

  // A thread's track is described before its first event.
  void declare_thread(uint32_t thread) {
    if (!declared_.insert(thread).second) return;
    const reader::ThreadInfo* info = source_.timeline.thread(thread);
    const std::string name = thread_label(source_.timeline, thread);
    auto w = start_packet(name.size());
    auto track = w.begin_nested(perfetto::TracePacket::kTrackDescriptor);
    w.varint_field(perfetto::TrackDescriptor::kUuid, thread_track_uuid(thread));
    w.varint_field(perfetto::TrackDescriptor::kParentUuid, kProcessTrackUuid);
    auto descriptor = w.begin_nested(perfetto::TrackDescriptor::kThread);
    w.varint_field(perfetto::ThreadDescriptor::kPid, source_.recording.header().pid());
    // The OS thread id when known, so the track lines up with system traces of the process.
    w.varint_field(perfetto::ThreadDescriptor::kTid, info && info->native_id ? info->native_id : thread);
    w.bytes_field(perfetto::ThreadDescriptor::kThreadName, name.data(), name.size());
    w.end_nested(descriptor);
    w.end_nested(track);
    end_packet(w);
  }

  const TraceSource source_;
  reader::OutputFile& out_;
  std::vector<uint8_t> buffer_;
  std::unordered_map<uint64_t, uint64_t> iids_;  // code id -> event name and source location iid
  std::unordered_set<uint32_t> declared_;
  bool first_packet_ = true;
  bool loss_interned_ = false;
};

}  // namespace

std::unique_ptr<TraceWriter> make_perfetto_writer(const TraceSource& source, reader::OutputFile& out) {
  return std::make_unique<PerfettoWriter>(source, out);
}

}  // namespace pyrewind::analysis
