// `pyrewind stats FILE [--format text|json] [--from T] [--to T] [--thread N] [-o OUT]`: a
// profile of the recording (tools/analysis/stats.h), in one streaming pass:
//   functions  calls, total and self time, observed argument and return types
//   lines      hits, time (with the calls the line made) and self time, per code object
//   coverage   per file, the lines that ran
// JSON: {"events", "functions": [{"function","file","line","calls","total_ns","self_ns",
// "arguments": [{"name","types"}], "returns", "generator"}], "lines": [{"file","line",
// "function","hits","time_ns","self_ns"}], "coverage": [{"file","lines"}]}; a type list that
// was cut ends with "...". Functions by total time, the longest first; lines by file and line.
//
// A sample recording (mode "sample") gets a sampled profile instead (tools/analysis/samples.h):
// JSON {"samples", "period_ns", "dropped_samples", "functions": [{"function","file","line",
// "own_samples","total_samples","self_ns","total_ns"}], "lines": [{"file","line","function",
// "own_samples","total_samples","self_ns","total_ns"}]}, functions by own samples, the most
// first, then by total; lines by own samples too. A C function (sample --native) has
// "native": true, its module as "file" and line 0.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tools/analysis/progress.h"
#include "tools/analysis/range.h"
#include "tools/analysis/samples.h"
#include "tools/analysis/scan.h"
#include "tools/analysis/stats.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/json.h"
#include "tools/reader/output.h"
#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;
using analysis::FunctionStats;
using analysis::LineStats;
using analysis::TypeSet;

struct Report {
  uint64_t events = 0;
  std::vector<std::pair<const reader::CodeInfo*, const FunctionStats*>> functions;
  std::vector<std::pair<const reader::CodeInfo*, std::pair<uint32_t, const LineStats*>>> lines;
  std::map<std::string, std::set<uint32_t>> coverage;  // file -> lines that ran
};

Report make_report(const analysis::StatsCollector& stats, const reader::Timeline& timeline) {
  Report r;
  r.events = stats.events();
  for (const auto& [id, f] : stats.functions()) r.functions.emplace_back(timeline.code(id), &f);
  std::sort(r.functions.begin(), r.functions.end(), [](const auto& a, const auto& b) {
    if (a.second->total_ns != b.second->total_ns) return a.second->total_ns > b.second->total_ns;
    return analysis::function_name(*a.first) < analysis::function_name(*b.first);
  });
  for (const auto& [key, line] : stats.lines()) {
    const reader::CodeInfo* code = timeline.code(key.first);
    r.lines.push_back({code, {key.second, &line}});
    if (line.hits) r.coverage[code->file].insert(key.second);
  }
  std::sort(r.lines.begin(), r.lines.end(), [](const auto& a, const auto& b) {
    if (a.first->file != b.first->file) return a.first->file < b.first->file;
    if (a.second.first != b.second.first) return a.second.first < b.second.first;
    return analysis::function_name(*a.first) < analysis::function_name(*b.first);
  });
  return r;
}

void append_types(std::string& out, const TypeSet& types) {
  out += '[';
  for (size_t i = 0; i < types.names.size(); ++i) {
    if (i) out += ',';
    json::append_string(out, types.names[i]);
  }
  if (types.more) out += types.names.empty() ? "\"...\"" : ",\"...\"";
  out += ']';
}

// `sampled`: the JSON profile of the recording's samples, added as "sampled" ("": none).
void write_json(std::string& out, const Report& r, const std::string& sampled) {
  out += "{\"events\":";
  json::append_uint(out, r.events);
  out += ",\"functions\":[";
  for (size_t i = 0; i < r.functions.size(); ++i) {
    const auto& [code, f] = r.functions[i];
    out += i ? ",\n" : "\n";
    out += "{\"function\":";
    json::append_string(out, analysis::function_name(*code));
    out += ",\"file\":";
    json::append_string(out, code->file);
    out += ",\"line\":";
    json::append_uint(out, code->first_line);
    out += ",\"calls\":";
    json::append_uint(out, f->calls);
    out += ",\"total_ns\":";
    json::append_uint(out, f->total_ns);
    out += ",\"self_ns\":";
    json::append_uint(out, f->self_ns);
    out += ",\"arguments\":[";
    for (size_t a = 0; a < f->arguments.size(); ++a) {
      if (a) out += ',';
      out += "{\"name\":";
      json::append_string(out, f->arguments[a].first);
      out += ",\"types\":";
      append_types(out, f->arguments[a].second);
      out += '}';
    }
    out += "],\"returns\":";
    append_types(out, f->returns);
    out += f->resumed ? ",\"generator\":true}" : ",\"generator\":false}";
  }
  out += "],\"lines\":[";
  for (size_t i = 0; i < r.lines.size(); ++i) {
    const auto& [code, entry] = r.lines[i];
    out += i ? ",\n" : "\n";
    out += "{\"file\":";
    json::append_string(out, code->file);
    out += ",\"line\":";
    json::append_uint(out, entry.first);
    out += ",\"function\":";
    json::append_string(out, analysis::function_name(*code));
    out += ",\"hits\":";
    json::append_uint(out, entry.second->hits);
    out += ",\"time_ns\":";
    json::append_uint(out, entry.second->time_ns);
    out += ",\"self_ns\":";
    json::append_uint(out, entry.second->self_ns);
    out += '}';
  }
  out += "],\"coverage\":[";
  bool first = true;
  for (const auto& [file, lines] : r.coverage) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"file\":";
    json::append_string(out, file);
    out += ",\"lines\":[";
    bool first_line = true;
    for (uint32_t line : lines) {
      if (!first_line) out += ',';
      first_line = false;
      json::append_uint(out, line);
    }
    out += "]}";
  }
  out += ']';
  if (!sampled.empty()) out += ",\"sampled\":" + sampled;
  out += "}\n";
}

std::string milliseconds(uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ns) / 1e6);
  return text;
}

// "1-5, 8, 10-12"
std::string line_ranges(const std::set<uint32_t>& lines) {
  std::string out;
  for (auto it = lines.begin(); it != lines.end();) {
    const uint32_t first = *it;
    uint32_t last = first;
    while (++it != lines.end() && *it == last + 1) last = *it;
    if (!out.empty()) out += ", ";
    out += std::to_string(first);
    if (last != first) out += "-" + std::to_string(last);
  }
  return out;
}

void write_text(std::string& out, const Report& r, const std::string& file) {
  char row[128];
  out += "pyrewind stats: " + file + ", " + std::to_string(r.events) + " events\n\nfunctions, by total time\n";
  std::snprintf(row, sizeof row, "%10s %12s %12s  %s\n", "calls", "total ms", "self ms", "function");
  out += row;
  for (const auto& [code, f] : r.functions) {
    std::snprintf(row, sizeof row, "%10llu %12s %12s  ", static_cast<unsigned long long>(f->calls),
                  milliseconds(f->total_ns).c_str(), milliseconds(f->self_ns).c_str());
    out += row + analysis::function_name(*code) + "  (" + code->file + ":" + std::to_string(code->first_line) + ")\n";
  }
  out += "\nlines\n";
  std::snprintf(row, sizeof row, "%10s %12s %12s  %s\n", "hits", "time ms", "self ms", "line");
  out += row;
  for (const auto& [code, entry] : r.lines) {
    std::snprintf(row, sizeof row, "%10llu %12s %12s  ", static_cast<unsigned long long>(entry.second->hits),
                  milliseconds(entry.second->time_ns).c_str(), milliseconds(entry.second->self_ns).c_str());
    out += row + code->file + ":" + std::to_string(entry.first) + "  " + analysis::function_name(*code) + "\n";
  }
  out += "\ncoverage, lines that ran\n";
  for (const auto& [path, lines] : r.coverage)
    out += "  " + path + ": " + std::to_string(lines.size()) + " lines: " + line_ranges(lines) + "\n";
  out += "\ntypes\n";
  for (const auto& [code, f] : r.functions) {
    if (code->module_level) continue;
    out += "  " + analysis::function_name(*code) + "(";
    for (size_t a = 0; a < f->arguments.size(); ++a) {
      if (a) out += ", ";
      out += f->arguments[a].first + ": " + f->arguments[a].second.join();
    }
    out += ")";
    if (!f->returns.names.empty()) out += " -> " + f->returns.join();
    out += f->resumed ? "  (generator)\n" : "\n";
  }
}

struct NoSpans : analysis::SpanSink {
  void begin(const analysis::Span&) override {}
  void end(const analysis::Span&, uint64_t) override {}
};

// The rows of a sampled profile, by own samples then total samples, the most first.
template <class Key>
std::vector<std::pair<Key, analysis::SampleCounts>> by_samples(const auto& counts, const auto& name_of) {
  std::vector<std::pair<Key, analysis::SampleCounts>> rows(counts.begin(), counts.end());
  std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    if (a.second.own != b.second.own) return a.second.own > b.second.own;
    if (a.second.total != b.second.total) return a.second.total > b.second.total;
    return name_of(a.first) < name_of(b.first);
  });
  return rows;
}

void write_sampled(std::string& out, const analysis::SampleStats& stats, const reader::Timeline& timeline,
                   const reader::Recording& recording, uint64_t period_ns, bool as_json, const std::string& file) {
  using LineKey = std::pair<uint64_t, uint32_t>;
  auto function_of = [&](uint64_t id) { return analysis::function_name(*timeline.code(id)); };
  auto line_of = [&](const LineKey& key) { return analysis::code_location(*timeline.code(key.first), key.second); };
  const auto functions = by_samples<uint64_t>(stats.functions(), function_of);
  const auto lines = by_samples<LineKey>(stats.lines(), line_of);
  const uint64_t dropped = recording.summary().dropped_samples();
  if (as_json) {
    auto counts = [&](const analysis::SampleCounts& c) {
      out += ",\"own_samples\":";
      json::append_uint(out, c.own);
      out += ",\"total_samples\":";
      json::append_uint(out, c.total);
      out += ",\"self_ns\":";
      json::append_uint(out, c.own * period_ns);
      out += ",\"total_ns\":";
      json::append_uint(out, c.total * period_ns);
      out += '}';
    };
    out += "{\"samples\":";
    json::append_uint(out, stats.samples());
    out += ",\"period_ns\":";
    json::append_uint(out, period_ns);
    out += ",\"dropped_samples\":";
    json::append_uint(out, dropped);
    out += ",\"functions\":[";
    for (size_t i = 0; i < functions.size(); ++i) {
      const reader::CodeInfo& code = *timeline.code(functions[i].first);
      out += i ? ",\n" : "\n";
      out += "{\"function\":";
      json::append_string(out, analysis::function_name(code));
      out += ",\"file\":";
      json::append_string(out, code.file);
      out += ",\"line\":";
      json::append_uint(out, code.first_line);
      if (code.native) out += ",\"native\":true";
      counts(functions[i].second);
    }
    out += "],\"lines\":[";
    for (size_t i = 0; i < lines.size(); ++i) {
      const reader::CodeInfo& code = *timeline.code(lines[i].first.first);
      out += i ? ",\n" : "\n";
      out += "{\"file\":";
      json::append_string(out, code.file);
      out += ",\"line\":";
      json::append_uint(out, lines[i].first.second);
      out += ",\"function\":";
      json::append_string(out, analysis::function_name(code));
      counts(lines[i].second);
    }
    out += "]}\n";
    return;
  }
  char row[160];
  std::snprintf(row, sizeof row, ", %llu samples of %s ms each (%llu dropped)\n",
                static_cast<unsigned long long>(stats.samples()), milliseconds(period_ns).c_str(),
                static_cast<unsigned long long>(dropped));
  out += "pyrewind stats: " + file + row + "\nfunctions, by own samples\n";
  const double n = stats.samples() ? static_cast<double>(stats.samples()) : 1;
  auto counts = [&](const analysis::SampleCounts& c) {
    std::snprintf(row, sizeof row, "%6.1f%% %6.1f%% %10llu %10llu %12s %12s  ", 100.0 * static_cast<double>(c.own) / n,
                  100.0 * static_cast<double>(c.total) / n, static_cast<unsigned long long>(c.own),
                  static_cast<unsigned long long>(c.total), milliseconds(c.own * period_ns).c_str(),
                  milliseconds(c.total * period_ns).c_str());
    out += row;
  };
  std::snprintf(row, sizeof row, "%7s %7s %10s %10s %12s %12s  %s\n", "own%", "total%", "own", "total", "self ms",
                "total ms", "function");
  out += row;
  for (const auto& [id, c] : functions) {
    const reader::CodeInfo& code = *timeline.code(id);
    counts(c);
    out += analysis::function_name(code) + "  (" + analysis::code_location(code) + ")\n";
  }
  out += "\nlines, by own samples\n";
  std::snprintf(row, sizeof row, "%7s %7s %10s %10s %12s %12s  %s\n", "own%", "total%", "own", "total", "self ms",
                "total ms", "line");
  out += row;
  for (const auto& [key, c] : lines) {
    counts(c);
    out += line_of(key) + "  " + function_of(key.first) + "\n";
  }
}

// The profile of a sample recording into `out` (warnings on stderr).
void sampled_profile(const StatsOptions& options, const analysis::Range& range, const reader::Recording& recording,
                     reader::Timeline& timeline, std::string& out) {
  analysis::SampleStats samples;
  NoSpans no_spans;  // a sample recording has no events: the builder only keeps the range
  analysis::SpanBuilder builder(range, no_spans);
  {
    analysis::Progress progress("reading", recording.data_end() - recording.data_begin());
    analysis::scan(recording, timeline, builder, progress, [](const reader::Step&) { return true; },
                   [&](const reader::SampleStep& sample) {
                     samples.add(sample);
                     return true;
                   });
  }
  if (!timeline.error().empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; the statistics cover the %llu samples before it\n",
                 options.file.c_str(), timeline.error().c_str(),
                 static_cast<unsigned long long>(timeline.samples_read()));
  if (samples.samples() == 0)
    std::fprintf(stderr, "pyrewind: warning: %s: no samples in the range selected\n", options.file.c_str());
  write_sampled(out, samples, timeline, recording, analysis::SampleSelection(recording, range).period_ns(),
                options.format == "json", options.file);
}

// The profile of a traced recording into `out` (warnings on stderr).
void traced_profile(const StatsOptions& options, const analysis::Range& range, const reader::Recording& recording,
                    reader::Timeline& timeline, std::string& out) {
  analysis::StatsCollector stats;
  analysis::SpanBuilder builder(range, stats);
  // Samples taken while line tracing was paused for sampling (`ctl ... sample on`, or
  // --max-overhead's fallback).
  analysis::SampleStats samples;
  {
    analysis::Progress progress("reading", recording.data_end() - recording.data_begin());
    analysis::scan(
        recording, timeline, builder, progress,
        [&](const reader::Step& step) {
          stats.on_step(step);
          return true;
        },
        [&](const reader::SampleStep& sample) {
          samples.add(sample);
          return true;
        });
  }
  if (!timeline.error().empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; the statistics cover the %llu events before it\n",
                 options.file.c_str(), timeline.error().c_str(),
                 static_cast<unsigned long long>(timeline.events_read()));
  if (!builder.started())
    std::fprintf(stderr, "pyrewind: warning: %s: no events in the range selected\n", options.file.c_str());

  const bool as_json = options.format == "json";
  std::string sampled;
  if (samples.samples() > 0) {
    const uint32_t rate_hz = recording.summary().sample_rate_hz();
    write_sampled(sampled, samples, timeline, recording, rate_hz ? 1000000000ull / rate_hz : 0, as_json, options.file);
    if (as_json) sampled.pop_back();  // its line break: it becomes a member of the traced profile
  }
  const Report report = make_report(stats, timeline);
  if (as_json) {
    write_json(out, report, sampled);
  } else {
    write_text(out, report, options.file);
    if (!sampled.empty()) out += "\nsampled while line tracing was paused for sampling:\n" + sampled;
  }
}

}  // namespace

int stats_command(const StatsOptions& options) {
  analysis::Range range;
  std::string error;
  if (!analysis::Range::parse(options.from, options.to, options.thread, &range, &error)) {
    std::fprintf(stderr, "pyrewind: %s\n", error.c_str());
    return kExitUsage;
  }
  auto recording = open_recording(options.file, /*streamed=*/true);
  if (!recording) return kExitBadRecording;

  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe comes back as EPIPE, reported below
  reader::OutputFile out;
  if (!out.open(options.output)) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }

  reader::Timeline timeline(*recording);
  if (recording->header().mode() == "sample")
    sampled_profile(options, range, *recording, timeline, out.buffer());
  else
    traced_profile(options, range, *recording, timeline, out.buffer());
  if (!out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
