// Trace Event Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
#include <unordered_set>

#include "tools/analysis/trace_formats.h"
#include "tools/reader/json.h"

namespace pyrewind::analysis {
namespace {

namespace json = reader::json;

// Microseconds with the nanoseconds as three decimals.
void append_us(std::string& out, uint64_t ns) {
  json::append_uint(out, ns / 1000);
  const unsigned frac = static_cast<unsigned>(ns % 1000);
  if (frac == 0) return;
  char digits[5] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                    static_cast<char>('0' + frac % 10), 0};
  out += digits;
}

class ChromeWriter : public TraceWriter {
 public:
  ChromeWriter(const TraceSource& source, reader::OutputFile& out)
      : source_(source), out_(out), pid_(source.recording.header().pid()) {
    std::string& b = out_.buffer();
    b += "{\"traceEvents\":[\n";
    b += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":";
    json::append_uint(b, pid_);
    b += ",\"tid\":0,\"args\":{\"name\":";
    json::append_string(b, program_label(source.recording));
    b += "}}";
    out_.commit();
  }

  void begin(const Span& span) override {
    std::string& b = event_head("B", span.thread, span.start_ns);
    b += ",\"name\":";
    json::append_string(b, function_name(*span.code));
    b += ",\"cat\":\"python\",\"args\":{\"file\":";
    json::append_string(b, span.code->file);
    b += ",\"line\":";
    json::append_uint(b, span.code->first_line);
    if (!span.called) b += ",\"running_before\":true";
    b += "}}";
    out_.commit();
  }

  void end(const Span& span, uint64_t time_ns) override {
    std::string& b = event_head("E", span.thread, time_ns);
    b += '}';
    out_.commit();
  }

  void lost(uint32_t thread, uint64_t time_ns, uint64_t records) override {
    std::string& b = event_head("i", thread, time_ns);
    b += ",\"s\":\"t\",\"name\":\"records lost\",\"args\":{\"dropped_records\":";
    json::append_uint(b, records);
    b += "}}";
    out_.commit();
  }

  bool finish(uint64_t) override {
    std::string& b = out_.buffer();
    b += "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"exporter\":\"pyrewind\",\"python\":";
    json::append_string(b, source_.recording.header().python_version());
    b += "}}\n";
    return out_.commit();
  }

 private:
  // Starts an event object (without its closing brace); the first event of a thread is
  // preceded by its name.
  std::string& event_head(const char* phase, uint32_t thread, uint64_t time_ns) {
    std::string& b = out_.buffer();
    if (named_.insert(thread).second) {
      b += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":";
      json::append_uint(b, pid_);
      b += ",\"tid\":";
      json::append_uint(b, thread);
      b += ",\"args\":{\"name\":";
      json::append_string(b, thread_label(source_.timeline, thread));
      b += "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":";
      json::append_uint(b, pid_);
      b += ",\"tid\":";
      json::append_uint(b, thread);
      b += ",\"args\":{\"sort_index\":";
      json::append_uint(b, thread);
      b += "}}";
    }
    b += ",\n{\"ph\":\"";
    b += phase;
    b += "\",\"pid\":";
    json::append_uint(b, pid_);
    b += ",\"tid\":";
    json::append_uint(b, thread);
    b += ",\"ts\":";
    append_us(b, time_ns);
    return b;
  }

  const TraceSource source_;
  reader::OutputFile& out_;
  const uint64_t pid_;
  std::unordered_set<uint32_t> named_;
};

}  // namespace

std::unique_ptr<TraceWriter> make_chrome_writer(const TraceSource& source, reader::OutputFile& out) {
  return std::make_unique<ChromeWriter>(source, out);
}

std::string thread_label(const reader::Timeline& timeline, uint32_t thread) {
  const reader::ThreadInfo* info = timeline.thread(thread);
  std::string label = info && !info->name.empty() ? info->name : "thread " + std::to_string(thread);
  if (info && info->pid) label += " (pid " + std::to_string(info->pid) + ")";
  return label;
}

std::string program_label(const reader::Recording& recording) {
  const auto& header = recording.header();
  auto base = [](const std::string& path) { return path.substr(path.rfind('/') + 1); };
  // argv is the interpreter's command line: python3 [options] script|-m module|-c code [args].
  const auto& argv = header.argv();
  for (int i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "-m" && i + 1 < argv.size()) return argv[i + 1];
    if (arg == "-c" || arg == "-") break;
    if (arg == "-W" || arg == "-X" || arg == "--check-hash-based-pycs") {
      ++i;  // the option's value
      continue;
    }
    if (!arg.empty() && arg.front() != '-') return base(arg);
  }
  if (!argv.empty()) return base(argv[0]);
  if (!header.executable().empty()) return base(header.executable());
  return "python";
}

}  // namespace pyrewind::analysis
