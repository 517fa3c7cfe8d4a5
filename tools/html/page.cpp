#include "tools/html/page.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "tools/html/page_assets.h"
#include "tools/html/page_data.h"
#include "tools/reader/json.h"
#include "tools/reader/timeline.h"

namespace pyrewind::html {
namespace json = reader::json;

namespace {

// Sources bigger than this are not embedded: the page would not be self-contained any more in
// practice (a generated file, a data file run as a script).
constexpr off_t kMaxSourceBytes = 4 << 20;

// Data goes inside <script> elements, where "</script>" ends the element and "<!--" changes
// how the end is found: every '<' (only possible inside JSON strings) is written as \u003c.
bool write_script_text(reader::OutputFile& out, std::string_view text) {
  size_t start = 0;
  for (size_t at = text.find('<'); at != std::string_view::npos; at = text.find('<', start)) {
    if (!out.write(text.substr(start, at - start)) || !out.write("\\u003c")) return false;
    start = at + 1;
  }
  return out.write(text.substr(start));
}

bool in_range_start(const analysis::Position& from, const reader::Step& s) {
  return from.is_time() ? s.time_ns >= from.value : s.seq >= from.value;
}

bool past_range_end(const analysis::Position& to, const reader::Step& s) {
  return to.is_time() ? s.time_ns > to.value : s.seq > to.value;
}

// The source of `path` (relative paths are the program's, relative to its working directory)
// as {"path":...,"lines":[...]} or {"path":...,"unavailable":"why"}, with "changed":true when
// the file was modified after the recording started (the lines shown may not be those run).
void append_source(std::string& out, const std::string& path, const v1::RecordingHeader& header) {
  out += "{\"path\":";
  json::append_string(out, path);
  auto unavailable = [&](const std::string& why) {
    out += ",\"unavailable\":";
    json::append_string(out, why);
    out.push_back('}');
  };
  if (path.empty() || path.front() == '<') return unavailable("no source file (code compiled from a string)");
  const std::string full = path.front() == '/' || header.cwd().empty() ? path : header.cwd() + "/" + path;
  const int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unavailable(std::strerror(errno));
  struct stat st {};
  std::string text;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= kMaxSourceBytes;
  if (ok) {
    text.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
  }
  ::close(fd);
  if (!ok) return unavailable(S_ISREG(st.st_mode) ? "the file is too large to embed" : "not a regular file");

  const uint64_t modified_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + st.st_mtim.tv_nsec;
  if (header.start_wall_time_ns() && modified_ns > header.start_wall_time_ns()) out += ",\"changed\":true";
  out += ",\"lines\":[";
  size_t start = 0;
  bool first = true;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!first) out.push_back(',');
    first = false;
    json::append_string(out, line);
    start = end + 1;
  }
  out += "]}";
}

void append_meta(std::string& out, const reader::Recording& recording, const PageOptions& options,
                 const PageResult& result) {
  const v1::RecordingHeader& h = recording.header();
  const std::string& path = recording.path();
  out += "\"recording\":";
  json::append_string(out, path.substr(path.find_last_of('/') + 1));
  out += ",\"python\":";
  json::append_string(out, h.python_version());
  out += ",\"argv\":[";
  for (int i = 0; i < h.argv_size(); ++i) {
    if (i) out.push_back(',');
    json::append_string(out, h.argv(i));
  }
  out += "],\"start_wall_ns\":";
  json::append_uint(out, h.start_wall_time_ns());
  out += ",\"events\":";
  json::append_uint(out, recording.summary().event_count());
  out += ",\"locals_omitted\":";
  out += h.locals_omitted() ? "true" : "false";
  out += ",\"thread_filter\":";
  if (options.thread)
    json::append_uint(out, *options.thread);
  else
    out += "null";
  out += ",\"warnings\":[";
  bool first = true;
  auto warn = [&](const std::string& text) {
    if (!first) out.push_back(',');
    first = false;
    json::append_string(out, text);
  };
  if (!recording.damage().empty()) warn("The recording is incomplete: " + recording.damage() + ".");
  if (!result.read_error.empty())
    warn("The recording is damaged (" + result.read_error + "); the steps before the damage are shown.");
  if (result.limited) warn(limit_message(recording.path(), options, result));
  out.push_back(']');
}

}  // namespace

std::string limit_message(const std::string& recording_path, const PageOptions& options, const PageResult& result) {
  return "The range holds more than " + std::to_string(options.max_steps) + " steps: this page shows seq " +
         std::to_string(result.first_seq) + " to " + std::to_string(result.last_seq) +
         ". Choose the part to show with --from/--to (a seq, or a time since the start such as 1.5s), e.g. "
         "pyrewind html " + recording_path + " --from " + std::to_string(result.next_seq) + " -o next.html, "
         "or raise --max-steps.";
}

bool write_page(const reader::Recording& recording, const PageOptions& options, reader::OutputFile& out,
                PageResult* result) {
  *result = PageResult{};
  if (!out.write(kPageHead)) return false;
  if (!out.write("<script type=\"application/json\" id=\"pyrewind-steps\">[")) return false;

  // Seqs grow in file order, times only per thread: a time range ends after the last chunk
  // that holds an event before its end.
  uint64_t last_chunk = UINT64_MAX;
  if (options.to && options.to->is_time()) {
    const auto& chunks = recording.summary().chunks();
    last_chunk = 0;
    for (int i = 0; i < chunks.size(); ++i)
      if (chunks[i].first_time_ns() <= options.to->value) last_chunk = static_cast<uint64_t>(i);
  }

  PageEncoder encoder;
  reader::Timeline timeline(recording);
  std::string steps;
  while (timeline.next()) {
    if (timeline.type() != reader::ItemType::kEvent) continue;
    const reader::Step& s = timeline.step();
    if (options.to && past_range_end(*options.to, s)) {
      if (!options.to->is_time() || timeline.chunk().index > last_chunk) break;
      continue;
    }
    if ((options.from && !in_range_start(*options.from, s)) || (options.thread && s.thread != *options.thread))
      continue;
    if (result->steps == options.max_steps) {
      result->limited = true;
      result->next_seq = s.seq;
      break;
    }
    if (result->steps++ == 0)
      result->first_seq = s.seq;
    else
      steps.push_back(',');
    result->last_seq = s.seq;
    encoder.append_step(steps, timeline, s);
    if (steps.size() >= 64 * 1024) {
      if (!write_script_text(out, steps)) return false;
      steps.clear();
    }
  }
  result->read_error = timeline.error();
  result->skipped_packets = timeline.skipped_packets();
  encoder.finish(timeline);
  if (!write_script_text(out, steps) ||
      !out.write("]</script>\n<script type=\"application/json\" id=\"pyrewind-tables\">"))
    return false;

  std::string tables = "{";
  append_meta(tables, recording, options, *result);
  tables.push_back(',');
  encoder.append_tables(tables);
  tables += ",\"files\":[";
  for (size_t i = 0; i < encoder.file_paths().size(); ++i) {
    if (i) tables.push_back(',');
    append_source(tables, encoder.file_paths()[i], recording.header());
  }
  tables += "]}";
  return write_script_text(out, tables) && out.write("</script>\n") && out.write(kPageTail);
}

}  // namespace pyrewind::html
