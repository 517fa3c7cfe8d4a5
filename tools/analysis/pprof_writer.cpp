// pprof's profile.proto (github.com/google/pprof, proto/profile.proto), gzipped: what `go tool
// pprof`, Pyroscope, Parca and Google Cloud Profiler read. Each distinct stack is a pprof
// sample (its locations leaf first, as pprof wants them). From a trace, the recorded calls:
// a location per function, valued with the time spent in the leaf in nanoseconds ("wall").
// From a sample recording, the samples: a location per function and line, valued with their
// count ("samples") and count times the period ("wall", nanoseconds).
// A profile is one message, so the stacks are summed in memory (by distinct stack) and written
// at the end. tools/analysis/testdata/profile_subset.proto declares the fields used here.
#include <zlib.h>

#include <map>
#include <unordered_map>
#include <vector>

#include "tools/analysis/trace_formats.h"

namespace pyrewind::analysis {
namespace {

namespace field {
namespace Profile {
constexpr uint32_t kSampleType = 1, kSample = 2, kLocation = 4, kFunction = 5, kStringTable = 6, kTimeNanos = 9,
                   kDurationNanos = 10, kPeriodType = 11, kPeriod = 12;
}
namespace ValueType { constexpr uint32_t kType = 1, kUnit = 2; }
namespace Sample { constexpr uint32_t kLocationId = 1, kValue = 2; }
namespace Location { constexpr uint32_t kId = 1, kLine = 4; }
namespace Line { constexpr uint32_t kFunctionId = 1, kLine = 2; }
namespace Function { constexpr uint32_t kId = 1, kName = 2, kSystemName = 3, kFilename = 4, kStartLine = 5; }
}  // namespace field

// Protobuf wire encoding into a growing string (the profile's size is known only at the end).
class Message {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      data_ += static_cast<char>(v | 0x80);
      v >>= 7;
    }
    data_ += static_cast<char>(v);
  }
  void uint_field(uint32_t field, uint64_t v) {
    varint(uint64_t{field} << 3);
    varint(v);
  }
  void bytes_field(uint32_t field, const std::string& bytes) {
    varint(uint64_t{field} << 3 | 2);
    varint(bytes.size());
    data_ += bytes;
  }
  void message_field(uint32_t field, const Message& m) { bytes_field(field, m.data_); }
  void packed_field(uint32_t field, const std::vector<uint64_t>& values) {
    Message packed;
    for (uint64_t v : values) packed.varint(v);
    bytes_field(field, packed.data_);
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

class PprofWriter : public TraceWriter {
 public:
  PprofWriter(const TraceSource& source, reader::OutputFile& out) : source_(source), out_(out) {}

  void begin(const Span& span) override {
    Stack& s = stacks_[span.thread];
    account(s, span.start_ns);
    s.codes.push_back(span.code);
    first_ns_ = std::min(first_ns_, span.start_ns);
  }

  bool takes_samples() const override { return true; }
  void add_sample(const reader::SampleStep& sample, uint64_t weight_ns) override {
    if (sample.frames.empty()) return;
    key_.clear();
    for (auto frame = sample.frames.rbegin(); frame != sample.frames.rend(); ++frame)
      key_.push_back(location_id(frame->code, frame->line));
    Value& v = totals_[key_];
    ++v.count;
    v.ns += weight_ns;
    period_ns_ = weight_ns;
    sampled_ = true;
    first_ns_ = std::min(first_ns_, sample.time_ns);
    last_ns_ = std::max(last_ns_, sample.time_ns);
  }

  void end(const Span& span, uint64_t time_ns) override {
    Stack& s = stacks_[span.thread];
    account(s, time_ns);
    if (!s.codes.empty()) s.codes.pop_back();
    last_ns_ = std::max(last_ns_, time_ns);
  }

  bool finish(uint64_t end_ns) override {
    last_ns_ = std::max(last_ns_, end_ns);
    Message profile;
    auto value_type = [&](const char* type, const char* unit) {
      Message m;
      m.uint_field(field::ValueType::kType, string_id(type));
      m.uint_field(field::ValueType::kUnit, string_id(unit));
      return m;
    };
    if (sampled_) profile.message_field(field::Profile::kSampleType, value_type("samples", "count"));
    profile.message_field(field::Profile::kSampleType, value_type("wall", "nanoseconds"));
    for (const auto& [stack, value] : totals_) {
      Message sample;
      std::vector<uint64_t> locations(stack.rbegin(), stack.rend());  // leaf first
      sample.packed_field(field::Sample::kLocationId, locations);
      if (sampled_)
        sample.packed_field(field::Sample::kValue, {value.count, value.ns});
      else
        sample.packed_field(field::Sample::kValue, {value.ns});
      profile.message_field(field::Profile::kSample, sample);
    }
    for (const auto& [where, id] : location_ids_) {
      const auto& [code, line_number] = where;
      Message line;
      line.uint_field(field::Line::kFunctionId, function_id(code));
      line.uint_field(field::Line::kLine, line_number);
      Message location;
      location.uint_field(field::Location::kId, id);
      location.message_field(field::Location::kLine, line);
      profile.message_field(field::Profile::kLocation, location);
    }
    for (const auto& [code, id] : function_ids_) {
      Message function;
      function.uint_field(field::Function::kId, id);
      function.uint_field(field::Function::kName, string_id(function_name(*code)));
      function.uint_field(field::Function::kSystemName, string_id(function_name(*code)));
      function.uint_field(field::Function::kFilename, string_id(code->file.empty() ? "?" : code->file));
      function.uint_field(field::Function::kStartLine, code->first_line);
      profile.message_field(field::Profile::kFunction, function);
    }
    const uint64_t period_type = string_id("wall");
    const uint64_t period_unit = string_id("nanoseconds");
    for (const std::string& s : strings_) profile.bytes_field(field::Profile::kStringTable, s);
    const uint64_t start = first_ns_ == UINT64_MAX ? 0 : first_ns_;
    profile.uint_field(field::Profile::kTimeNanos, source_.recording.header().start_wall_time_ns() + start);
    profile.uint_field(field::Profile::kDurationNanos, last_ns_ > start ? last_ns_ - start : 0);
    Message period;
    period.uint_field(field::ValueType::kType, period_type);
    period.uint_field(field::ValueType::kUnit, period_unit);
    profile.message_field(field::Profile::kPeriodType, period);
    profile.uint_field(field::Profile::kPeriod, sampled_ ? period_ns_ : 1);
    return gzip(profile.data());
  }

 private:
  struct Stack {
    std::vector<const reader::CodeInfo*> codes;  // outermost first
    uint64_t since_ns = 0;                       // when it last changed
  };

  // The leaf of `s` ran from since_ns to now: its stack gets that time.
  void account(Stack& s, uint64_t now_ns) {
    if (!s.codes.empty() && now_ns > s.since_ns) {
      key_.clear();
      for (const reader::CodeInfo* code : s.codes) key_.push_back(location_id(code, code->first_line));
      totals_[key_].ns += now_ns - s.since_ns;
    }
    s.since_ns = now_ns;
  }

  // Ids start at 1: 0 means none.
  uint64_t location_id(const reader::CodeInfo* code, uint32_t line) {
    function_id(code);
    auto [it, fresh] = location_ids_.try_emplace({code, line}, location_ids_.size() + 1);
    return it->second;
  }
  uint64_t function_id(const reader::CodeInfo* code) {
    auto [it, fresh] = function_ids_.try_emplace(code, function_ids_.size() + 1);
    return it->second;
  }

  uint64_t string_id(const std::string& s) {
    if (strings_.empty()) {
      strings_.push_back("");  // index 0 is the empty string, by the format's rule
      string_ids_.emplace("", 0);
    }
    auto [it, fresh] = string_ids_.try_emplace(s, strings_.size());
    if (fresh) strings_.push_back(s);
    return it->second;
  }

  bool gzip(const std::string& data) {
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      error_ = "zlib could not start";
      return false;
    }
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string chunk(1 << 16, '\0');
    int rc;
    do {
      z.next_out = reinterpret_cast<Bytef*>(chunk.data());
      z.avail_out = static_cast<uInt>(chunk.size());
      rc = deflate(&z, Z_FINISH);
      if (!out_.write(std::string_view(chunk.data(), chunk.size() - z.avail_out))) break;
    } while (rc == Z_OK || rc == Z_BUF_ERROR);
    deflateEnd(&z);
    if (rc != Z_STREAM_END && !out_.failed()) error_ = "zlib failed to compress the profile";
    return rc == Z_STREAM_END;
  }

  const TraceSource source_;  // a copy: the caller's may be a temporary
  reader::OutputFile& out_;
  std::unordered_map<uint32_t, Stack> stacks_;
  struct Value {
    uint64_t count = 0;  // samples
    uint64_t ns = 0;
  };
  std::map<std::vector<uint64_t>, Value> totals_;  // stack of location ids, outermost first
  std::vector<uint64_t> key_;
  std::map<std::pair<const reader::CodeInfo*, uint32_t>, uint64_t> location_ids_;
  std::map<const reader::CodeInfo*, uint64_t> function_ids_;
  bool sampled_ = false;  // a sample recording: values are (samples, ns)
  uint64_t period_ns_ = 0;
  std::vector<std::string> strings_;
  std::unordered_map<std::string, uint64_t> string_ids_;
  uint64_t first_ns_ = UINT64_MAX;
  uint64_t last_ns_ = 0;
};

}  // namespace

std::unique_ptr<TraceWriter> make_pprof_writer(const TraceSource& source, reader::OutputFile& out) {
  return std::make_unique<PprofWriter>(source, out);
}

}  // namespace pyrewind::analysis
