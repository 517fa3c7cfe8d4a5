// `pyrewind stats FILE [--format text|json] [--from T] [--to T] [--thread N] [-o OUT]`: a
// profile of the recording (tools/analysis/stats.h), in one streaming pass:
//   functions  calls, total and self time, observed argument and return types
//   lines      hits, time (with the calls the line made) and self time, per code object
//   coverage   per file, the lines that ran
// JSON: {"events", "functions": [{"function","file","line","calls","total_ns","self_ns",
// "arguments": [{"name","types"}], "returns", "generator"}], "lines": [{"file","line",
// "function","hits","time_ns","self_ns"}], "coverage": [{"file","lines"}]}; a type list that
// was cut ends with "...". Functions by total time, the longest first; lines by file and line.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tools/analysis/progress.h"
#include "tools/analysis/range.h"
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

void write_json(std::string& out, const Report& r) {
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
  out += "]}\n";
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
  analysis::StatsCollector stats;
  analysis::SpanBuilder builder(range, stats);
  {
    analysis::Progress progress("reading", recording->data_end() - recording->data_begin());
    analysis::scan(*recording, timeline, builder, progress, [&](const reader::Step& step) {
      stats.on_step(step);
      return true;
    });
  }
  if (!timeline.error().empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; the statistics cover the %llu events before it\n",
                 options.file.c_str(), timeline.error().c_str(),
                 static_cast<unsigned long long>(timeline.events_read()));
  if (!builder.started())
    std::fprintf(stderr, "pyrewind: warning: %s: no events in the range selected\n", options.file.c_str());

  const Report report = make_report(stats, timeline);
  if (options.format == "json")
    write_json(out.buffer(), report);
  else
    write_text(out.buffer(), report, options.file);
  if (!out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
