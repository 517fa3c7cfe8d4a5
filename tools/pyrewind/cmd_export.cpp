// `pyrewind export FILE --format jsonl [-o OUT]`: one JSON object per event, streamed.
// `--format chrome|perfetto|speedscope|collapsed|pprof [--from T] [--to T] [--thread N]`: the calls
// as spans, in a profiler's or trace viewer's format (tools/analysis/trace_formats.h).
//
// Each line: {"seq","t_ns","tid","event","file","func","line","depth", then per kind:
//   call, line            "locals": the frame's complete reconstructed locals
//   return                "value" (omitted when the frame unwinds by an exception)
//   exception(_handled)   "exception": {"type","message"}}
// A Loss becomes {"event":"loss","tid","dropped_records","dropped_bytes"(,"reason")} at its
// place in the stream; it has no "seq" (it is not an event; the events it stands for were
// never recorded). Value forms: tools/reader/json.h. A Sample (recordings of mode "sample")
// becomes {"sample": index, "t_ns", "tid", "gil", "idle", "stack": [{"func","file","line"}]},
// innermost frame first; a C frame (sample --native) is {"func": symbol, "file": module,
// "line": 0, "native": true}.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tools/analysis/progress.h"
#include "tools/analysis/range.h"
#include "tools/analysis/samples.h"
#include "tools/analysis/scan.h"
#include "tools/analysis/trace_formats.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/json.h"
#include "tools/reader/output.h"
#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::cli {
namespace {

using reader::ItemType;
namespace json = reader::json;

void append_event(std::string& out, const reader::Step& s, bool with_locals) {
  out += "{\"seq\":";
  json::append_uint(out, s.seq);
  out += ",\"t_ns\":";
  json::append_uint(out, s.time_ns);
  out += ",\"tid\":";
  json::append_uint(out, s.thread);
  out += ",\"event\":\"";
  out += reader::event_kind_name(s.kind);
  out += "\",\"file\":";
  if (s.code->file.empty())
    out += "null";
  else
    json::append_string(out, s.code->file);
  out += ",\"func\":";
  if (s.code->qualified_name.empty())
    out += "null";
  else
    json::append_string(out, s.code->qualified_name);
  out += ",\"line\":";
  json::append_uint(out, s.line);
  out += ",\"depth\":";
  json::append_uint(out, s.depth);
  switch (s.kind) {
    case v1::EVENT_CALL:
    case v1::EVENT_LINE: {
      // A recording made with --no-locals has no bindings; one that has them anyway shows them.
      if (!with_locals && s.frame->local_count() == 0) break;
      if (s.event && s.event->locals_incomplete()) out += ",\"locals_incomplete\":true";
      out += ",\"locals\":{";
      bool first = true;
      s.frame->for_each_local([&](const std::string& name, const v1::Value& value) {
        if (!first) out.push_back(',');
        first = false;
        json::append_string(out, name);
        out.push_back(':');
        json::append_value(out, value);
      });
      out.push_back('}');
      break;
    }
    case v1::EVENT_RETURN:
      if (s.return_value) {
        out += ",\"value\":";
        json::append_value(out, *s.return_value);
      }
      break;
    case v1::EVENT_EXCEPTION:
    case v1::EVENT_EXCEPTION_HANDLED:
      if (s.exception) {
        out += ",\"exception\":";
        json::append_exception(out, *s.exception);
      }
      break;
    default:
      break;
  }
  out += "}\n";
}

// {"sample","t_ns","tid","gil","idle","stack":[{"func","file","line"}]}, innermost frame first.
void append_sample(std::string& out, const reader::SampleStep& s) {
  out += "{\"sample\":";
  json::append_uint(out, s.index);
  out += ",\"t_ns\":";
  json::append_uint(out, s.time_ns);
  out += ",\"tid\":";
  json::append_uint(out, s.thread);
  out += s.gil ? ",\"gil\":true" : ",\"gil\":false";
  out += s.idle ? ",\"idle\":true" : ",\"idle\":false";
  out += ",\"stack\":[";
  for (size_t i = 0; i < s.frames.size(); ++i) {
    const reader::CodeInfo& code = *s.frames[i].code;
    if (i) out.push_back(',');
    out += "{\"func\":";
    json::append_string(out, code.qualified_name);
    out += ",\"file\":";
    json::append_string(out, code.file);
    out += ",\"line\":";
    json::append_uint(out, s.frames[i].line);
    if (code.native) out += ",\"native\":true";
    out.push_back('}');
  }
  out += "]}\n";
}

void append_loss(std::string& out, const v1::Loss& loss) {
  out += "{\"event\":\"loss\",\"tid\":";
  json::append_uint(out, loss.thread());
  out += ",\"dropped_records\":";
  json::append_uint(out, loss.dropped_records());
  out += ",\"dropped_bytes\":";
  json::append_uint(out, loss.dropped_bytes());
  if (!loss.reason().empty()) {
    out += ",\"reason\":";
    json::append_string(out, loss.reason());
  }
  out += "}\n";
}

using WriterFactory = std::unique_ptr<analysis::TraceWriter> (*)(const analysis::TraceSource&,
                                                                  reader::OutputFile&);

WriterFactory span_writer(const std::string& format) {
  if (format == "chrome") return analysis::make_chrome_writer;
  if (format == "perfetto") return analysis::make_perfetto_writer;
  if (format == "speedscope") return analysis::make_speedscope_writer;
  if (format == "collapsed") return analysis::make_collapsed_writer;
  if (format == "pprof") return analysis::make_pprof_writer;
  return nullptr;
}

}  // namespace

int export_command(const ExportOptions& options) {
  const WriterFactory make_writer = span_writer(options.format);
  const bool ranged = !options.from.empty() || !options.to.empty() || options.thread >= 0;
  if (ranged && !make_writer) {
    std::fprintf(stderr, "pyrewind: --from, --to and --thread apply to the formats chrome, perfetto, speedscope, "
                         "collapsed and pprof, not to %s\n", options.format.c_str());
    return kExitUsage;
  }
  if (options.format == "memoryviz") return memoryviz_command(options);
  if (options.format != "jsonl" && !make_writer) {
    std::fprintf(stderr, "pyrewind: unsupported export format '%s' (supported: jsonl, memoryviz, chrome, perfetto, "
                         "speedscope, collapsed, pprof)\n", options.format.c_str());
    return kExitUsage;
  }
  analysis::Range range;
  std::string error;
  if (make_writer && !analysis::Range::parse(options.from, options.to, options.thread, &range, &error)) {
    std::fprintf(stderr, "pyrewind: %s\n", error.c_str());
    return kExitUsage;
  }
  auto recording = open_recording(options.file, /*streamed=*/true);
  if (!recording) return kExitBadRecording;

  // A closed pipe must come back as EPIPE, reported below, not kill us silently.
  ::signal(SIGPIPE, SIG_IGN);
  reader::OutputFile out;
  if (!out.open(options.output)) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }

  reader::Timeline timeline(*recording);
  analysis::Progress progress("exporting", recording->data_end() - recording->data_begin());
  if (make_writer) {
    const auto writer = make_writer(analysis::TraceSource{*recording, timeline}, out);
    analysis::SpanBuilder builder(range, *writer);
    // The writers write as spans begin and end; a failed output only needs to stop the pass.
    const auto step = [&](const reader::Step&) { return !out.failed(); };
    bool sampled = false;
    if (writer->takes_samples()) {
      const uint64_t weight_ns = analysis::SampleSelection(*recording, range).period_ns();
      analysis::scan(*recording, timeline, builder, progress, step, [&](const reader::SampleStep& sample) {
        writer->add_sample(sample, weight_ns);
        sampled = true;
        return !out.failed();
      });
    } else {
      analysis::scan(*recording, timeline, builder, progress, step);
    }
    progress.done();
    // A failed output is reported by close() below; the writer's own files, here.
    if (!writer->finish(builder.last_time_ns()) && !writer->error().empty()) {
      std::fprintf(stderr, "pyrewind: %s\n", writer->error().c_str());
      return kExitIoError;
    }
    if (!builder.started() && !sampled)
      std::fprintf(stderr, "pyrewind: warning: %s: no events in the range selected\n", options.file.c_str());
  } else {
    std::string& buffer = out.buffer();
    const bool with_locals = !recording->header().locals_omitted();
    while (timeline.next()) {
      progress.update(timeline.chunk().offset - recording->data_begin());
      if (timeline.type() == ItemType::kEvent)
        append_event(buffer, timeline.step(), with_locals);
      else if (timeline.type() == ItemType::kLoss)
        append_loss(buffer, timeline.loss());
      else if (timeline.type() == ItemType::kSample)
        append_sample(buffer, timeline.sample());
      else
        continue;
      if (!out.commit()) break;
    }
    progress.done();
  }
  if (!out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  if (!timeline.error().empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; exported the %llu events before it\n", options.file.c_str(),
                 timeline.error().c_str(), static_cast<unsigned long long>(timeline.events_read()));
  if (timeline.skipped_packets())
    std::fprintf(stderr, "pyrewind: warning: %s: %llu packets could not be decoded and were skipped\n",
                 options.file.c_str(), static_cast<unsigned long long>(timeline.skipped_packets()));
  return kExitOk;
}

}  // namespace pyrewind::cli
