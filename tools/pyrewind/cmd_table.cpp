// `pyrewind table FILE --at FILE:LINE [--vars a,b] [--format text|json] [-o OUT]`: the
// accumulation table of a loop (tools/analysis/accumulation.h), one table per run of the loop.
//
// JSON: {"loop": {"file","line"}, "runs": [{"function","file","thread","first_step",
// "last_step","columns":[...],"rows":[{"iteration","step","break","values":{name: value}}],
// "rows_dropped"}], "runs_dropped"}; values as in the JSONL export, an unbound name absent.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/analysis/accumulation.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/json.h"
#include "tools/reader/output.h"
#include "tools/reader/python_text.h"
#include "tools/reader/timeline.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  std::string name;
  while (std::getline(in, name, ','))
    if (const size_t first = name.find_first_not_of(" "); first != std::string::npos)
      names.push_back(name.substr(first, name.find_last_not_of(" ") - first + 1));
  return names;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_json(std::string& out, const analysis::LoopSpec& spec, const std::vector<analysis::LoopRun>& runs,
                uint64_t runs_dropped) {
  out += "{\"loop\":{\"file\":";
  json::append_string(out, spec.file);
  out += ",\"line\":";
  json::append_uint(out, spec.line);
  out += "},\"runs\":[";
  for (size_t r = 0; r < runs.size(); ++r) {
    const analysis::LoopRun& run = runs[r];
    out += r ? ",{" : "{";
    out += "\"function\":";
    json::append_string(out, run.function);
    out += ",\"file\":";
    json::append_string(out, run.file);
    out += ",\"thread\":";
    json::append_uint(out, run.thread);
    out += ",\"first_step\":";
    json::append_uint(out, run.first_seq);
    out += ",\"last_step\":";
    json::append_uint(out, run.last_seq);
    out += ",\"columns\":[";
    for (size_t c = 0; c < run.columns.size(); ++c) {
      if (c) out += ',';
      json::append_string(out, run.columns[c]);
    }
    out += "],\"rows\":[";
    for (size_t i = 0; i < run.rows.size(); ++i) {
      const analysis::LoopRow& row = run.rows[i];
      out += i ? ",{\"iteration\":" : "{\"iteration\":";
      json::append_uint(out, i);
      out += ",\"step\":";
      json::append_uint(out, row.seq);
      out += row.at_break ? ",\"break\":true" : ",\"break\":false";
      out += ",\"values\":{";
      bool first = true;
      for (const std::string& name : run.columns) {
        auto it = row.values.find(name);
        if (it == row.values.end()) continue;
        if (!first) out += ',';
        first = false;
        json::append_string(out, name);
        out += ':';
        json::append_value(out, it->second);
      }
      out += "}}";
    }
    out += "],\"rows_dropped\":";
    json::append_uint(out, run.rows_dropped);
    out += '}';
  }
  out += "],\"runs_dropped\":";
  json::append_uint(out, runs_dropped);
  out += "}\n";
}

void write_text(std::string& out, const analysis::LoopSpec& spec, const std::vector<analysis::LoopRun>& runs,
                uint64_t runs_dropped) {
  if (runs.empty()) {
    out += "The loop at " + spec.file + ":" + std::to_string(spec.line) + " never ran in this recording.\n";
    return;
  }
  for (size_t r = 0; r < runs.size(); ++r) {
    const analysis::LoopRun& run = runs[r];
    if (r) out += '\n';
    out += "Loop at " + run.file + ":" + std::to_string(spec.line) + " in " +
           (run.function.empty() ? std::string("<unknown>") : run.function) + " (thread " + std::to_string(run.thread) +
           ", steps " + std::to_string(run.first_seq) + "-" + std::to_string(run.last_seq) + ")\n";
    // Cells as repr(), N/A where unbound (PyTA's notation); columns as wide as their widest cell.
    std::vector<std::vector<std::string>> cells;
    std::vector<std::string> header = {"iteration"};
    for (const std::string& c : run.columns) header.push_back(c);
    cells.push_back(header);
    for (size_t i = 0; i < run.rows.size(); ++i) {
      const analysis::LoopRow& row = run.rows[i];
      std::vector<std::string> line = {std::to_string(i) + (row.at_break ? " (break)" : "")};
      for (const std::string& name : run.columns) {
        auto it = row.values.find(name);
        line.push_back(it == row.values.end() ? "N/A" : reader::python_repr(it->second));
      }
      cells.push_back(std::move(line));
    }
    std::vector<size_t> width(header.size(), 0);
    for (const auto& line : cells)
      for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
    for (size_t n = 0; n < cells.size(); ++n) {
      std::string text;
      for (size_t c = 0; c < cells[n].size(); ++c) {
        if (c) text += " | ";
        text += cells[n][c] + std::string(width[c] - cells[n][c].size(), ' ');
      }
      while (!text.empty() && text.back() == ' ') text.pop_back();
      out += text + "\n";
      if (n == 0) {
        std::string rule;
        for (size_t c = 0; c < width.size(); ++c) rule += (c ? "-+-" : "") + std::string(width[c], '-');
        out += rule + "\n";
      }
    }
    if (run.rows_dropped) out += "(" + std::to_string(run.rows_dropped) + " more iterations not shown)\n";
  }
  if (runs_dropped) out += "\n(" + std::to_string(runs_dropped) + " more runs of the loop not shown)\n";
}

}  // namespace

int table_command(const TableOptions& options) {
  analysis::LoopSpec spec;
  const size_t colon = options.at.rfind(':');
  char* end = nullptr;
  const unsigned long line = colon == std::string::npos ? 0 : std::strtoul(options.at.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || colon == 0 || line == 0 || line > UINT32_MAX || (end && *end)) {
    std::fprintf(stderr, "pyrewind: --at wants FILE:LINE, the loop's header line (e.g. app.py:12), not '%s'\n",
                 options.at.c_str());
    return kExitUsage;
  }
  spec.file = options.at.substr(0, colon);
  spec.line = static_cast<uint32_t>(line);
  spec.names = split_names(options.vars);
  spec.max_rows = options.max_rows;

  auto recording = open_recording(options.file, /*streamed=*/true);
  if (!recording) return kExitBadRecording;

  // The loop's body from the source, found from the first code object in that file.
  reader::Timeline timeline(*recording);
  std::unique_ptr<analysis::AccumulationTable> table;
  while (timeline.next()) {
    if (timeline.type() != reader::ItemType::kEvent) continue;
    const reader::Step& s = timeline.step();
    if (!table && s.kind == v1::EVENT_LINE && s.line == spec.line) {
      const std::string& file = s.code->file;
      if (file == spec.file || (file.size() > spec.file.size() && file.compare(file.size() - spec.file.size(),
                                                                               spec.file.size(), spec.file) == 0 &&
                                file[file.size() - spec.file.size() - 1] == '/'))
        table = std::make_unique<analysis::AccumulationTable>(spec, analysis::block_last_line(read_lines(file), spec.line));
    }
    if (table) table->on_step(timeline);
  }
  if (!timeline.error().empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; the table covers the %llu events before it\n",
                 options.file.c_str(), timeline.error().c_str(),
                 static_cast<unsigned long long>(timeline.events_read()));
  std::vector<analysis::LoopRun> runs;
  uint64_t runs_dropped = 0;
  if (table) {
    runs = table->finish();
    runs_dropped = table->runs_dropped();
  }

  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe comes back as EPIPE, reported below
  reader::OutputFile out;
  if (!out.open(options.output)) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  if (options.format == "json")
    write_json(out.buffer(), spec, runs, runs_dropped);
  else
    write_text(out.buffer(), spec, runs, runs_dropped);
  if (!out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
