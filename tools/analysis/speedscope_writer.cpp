// speedscope's file format (https://www.speedscope.app/file-format-schema.json, shipped in the
// `speedscope` npm package): {"$schema", "profiles": [evented profiles, or sampled profiles of
// a sample recording], "shared": {"frames"}}.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "tools/analysis/trace_formats.h"
#include "tools/reader/json.h"

namespace pyrewind::analysis {
namespace {

namespace json = reader::json;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// One thread's events (or samples) until the end, in an anonymous temporary file.
struct Spool {
  std::unique_ptr<std::FILE, FileCloser> file;
  std::string pending;  // written to `file` in blocks
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  bool empty = true;
  uint64_t samples = 0;  // sampled profiles: how many, each weighing `weight_ns`
  uint64_t weight_ns = 0;
};

class SpeedscopeWriter : public TraceWriter {
 public:
  SpeedscopeWriter(const TraceSource& source, reader::OutputFile& out) : source_(source), out_(out) {}

  void begin(const Span& span) override { add(span.thread, 'O', frame_index(*span.code), span.start_ns); }
  void end(const Span& span, uint64_t time_ns) override { add(span.thread, 'C', frame_index(*span.code), time_ns); }

  bool finish(uint64_t) override {
    std::string& b = out_.buffer();
    b += "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"pyrewind\",\"name\":";
    json::append_string(b, program_label(source_.recording));
    b += ",\"activeProfileIndex\":0,\"profiles\":[";
    bool first = true;
    for (auto& [thread, spool] : spools_) {  // by thread index
      if (!flush(spool)) return false;
      if (!first) b += ',';
      first = false;
      b += spool.samples ? "\n{\"type\":\"sampled\",\"name\":" : "\n{\"type\":\"evented\",\"name\":";
      json::append_string(b, thread_label(source_.timeline, thread) + " (thread " + std::to_string(thread) + ")");
      b += ",\"unit\":\"nanoseconds\",\"startValue\":";
      b += std::to_string(spool.first_ns);
      b += ",\"endValue\":";
      b += std::to_string(spool.last_ns);
      b += spool.samples ? ",\"samples\":[" : ",\"events\":[";
      if (!out_.commit() || !copy(spool)) return false;
      b += "]";
      if (spool.samples) {
        b += ",\"weights\":[";
        const std::string weight = std::to_string(spool.weight_ns);
        for (uint64_t i = 0; i < spool.samples; ++i) {
          if (i) b += ',';
          b += weight;
          if (b.size() >= kSpoolBlock && !out_.commit()) return false;
        }
        b += "]";
      }
      b += "}";
    }
    b += "\n],\"shared\":{\"frames\":[";
    for (size_t i = 0; i < frames_.size(); ++i) {
      if (i) b += ',';
      b += '\n';
      b += frames_[i];
      if (!out_.commit()) return false;
    }
    b += "\n]}}\n";
    return out_.commit();
  }

 private:
  static constexpr size_t kSpoolBlock = 64 * 1024;

  size_t frame_index(const reader::CodeInfo& code) {
    auto [it, fresh] = frame_of_code_.emplace(code.id, frames_.size());
    if (fresh) {
      std::string frame = "{\"name\":";
      json::append_string(frame, function_name(code));
      if (!code.file.empty()) {
        frame += ",\"file\":";
        json::append_string(frame, code.file);
      }
      if (code.first_line) {
        frame += ",\"line\":";
        json::append_uint(frame, code.first_line);
      }
      frame += '}';
      frames_.push_back(std::move(frame));
    }
    return it->second;
  }

  bool takes_samples() const override { return true; }
  // [root, ..., leaf] frame indices; the profile runs from the first sample to the end of the
  // last one's period.
  void add_sample(const reader::SampleStep& sample, uint64_t weight_ns) override {
    if (sample.frames.empty()) return;
    Spool& s = spools_[sample.thread];
    if (s.empty) {
      s.first_ns = sample.time_ns;
      s.empty = false;
    } else {
      s.pending += ',';
    }
    s.last_ns = std::max(s.last_ns, sample.time_ns + weight_ns);
    s.weight_ns = weight_ns;
    ++s.samples;
    s.pending += '[';
    for (auto frame = sample.frames.rbegin(); frame != sample.frames.rend(); ++frame) {
      if (frame != sample.frames.rbegin()) s.pending += ',';
      s.pending += std::to_string(frame_index(*frame->code));
    }
    s.pending += ']';
    if (s.pending.size() >= kSpoolBlock) flush(s);
  }

  void add(uint32_t thread, char type, size_t frame, uint64_t at) {
    Spool& s = spools_[thread];
    if (s.empty) {
      s.first_ns = at;
      s.empty = false;
    } else {
      s.pending += ',';
    }
    s.last_ns = at;
    s.pending += "{\"type\":\"";
    s.pending += type;
    s.pending += "\",\"frame\":";
    s.pending += std::to_string(frame);
    s.pending += ",\"at\":";
    s.pending += std::to_string(at);
    s.pending += '}';
    if (s.pending.size() >= kSpoolBlock) flush(s);
  }

  bool fail(const char* what) {
    if (error_.empty()) error_ = std::string("temporary file: ") + what + ": " + std::strerror(errno);
    return false;
  }

  bool flush(Spool& s) {
    if (!error_.empty()) return false;
    if (s.pending.empty()) return true;
    if (!s.file) {
      s.file.reset(std::tmpfile());
      if (!s.file) return fail("cannot create");
    }
    if (std::fwrite(s.pending.data(), 1, s.pending.size(), s.file.get()) != s.pending.size()) return fail("write");
    s.pending.clear();
    return true;
  }

  bool copy(Spool& s) {
    if (!s.file) return true;
    if (std::fflush(s.file.get()) != 0 || std::fseek(s.file.get(), 0, SEEK_SET) != 0) return fail("write");
    char block[kSpoolBlock];
    size_t n;
    while ((n = std::fread(block, 1, sizeof block, s.file.get())) > 0)
      if (!out_.write(std::string_view(block, n))) return false;
    if (std::ferror(s.file.get())) return fail("read");
    s.file.reset();
    return true;
  }

  const TraceSource source_;
  reader::OutputFile& out_;
  std::map<uint32_t, Spool> spools_;
  std::unordered_map<uint64_t, size_t> frame_of_code_;
  std::vector<std::string> frames_;
};

}  // namespace

std::unique_ptr<TraceWriter> make_speedscope_writer(const TraceSource& source, reader::OutputFile& out) {
  return std::make_unique<SpeedscopeWriter>(source, out);
}

}  // namespace pyrewind::analysis
