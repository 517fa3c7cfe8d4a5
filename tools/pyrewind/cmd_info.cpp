// `pyrewind info FILE [--json]`: what a recording holds, from its header and summary.
#include <signal.h>
#include <string.h>
#include <time.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/json.h"
#include "tools/reader/recording.h"

namespace pyrewind::cli {
namespace {

namespace json = reader::json;

constexpr uint32_t kKinds[] = {v1::EVENT_CALL, v1::EVENT_LINE, v1::EVENT_RETURN, v1::EVENT_EXCEPTION,
                               v1::EVENT_EXCEPTION_HANDLED};

std::string iso8601_utc(uint64_t wall_ns) {
  if (wall_ns == 0) return "";
  time_t secs = static_cast<time_t>(wall_ns / 1000000000ull);
  struct tm tm {};
  if (!gmtime_r(&secs, &tm)) return "";
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03uZ", static_cast<unsigned>(wall_ns / 1000000ull % 1000));
  return buf;
}

std::string human_bytes(uint64_t n) {
  char buf[64];
  if (n < 1024)
    snprintf(buf, sizeof buf, "%" PRIu64 " bytes", n);
  else if (n < (1ull << 20))
    snprintf(buf, sizeof buf, "%.1f KiB (%" PRIu64 " bytes)", n / 1024.0, n);
  else if (n < (1ull << 30))
    snprintf(buf, sizeof buf, "%.1f MiB (%" PRIu64 " bytes)", n / 1048576.0, n);
  else
    snprintf(buf, sizeof buf, "%.2f GiB (%" PRIu64 " bytes)", n / 1073741824.0, n);
  return buf;
}

std::string seconds(uint64_t ns) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.3f s", ns / 1e9);
  return buf;
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// "exit code 0", "killed by SIGKILL (signal 9)" or why it is unknown.
std::string exit_text(const reader::Recording& rec) {
  const v1::RecordingSummary& s = rec.summary();
  if (!rec.finished()) return "unknown (the recording was not finished)";
  if (!s.target_exited()) return "unknown (the program had not exited when the recording ended)";
  if (s.exit_status() >= 0) return "exit code " + std::to_string(s.exit_status());
  int sig = -s.exit_status();
  return "killed by " + signal_name(sig) + " (signal " + std::to_string(sig) + ")";
}

// A shell-like rendering of argv for humans.
std::string quote_argv(const v1::RecordingHeader& h) {
  std::string out;
  for (const std::string& arg : h.argv()) {
    if (!out.empty()) out.push_back(' ');
    bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    out.push_back('\'');
    for (char c : arg) {
      if (c == '\'')
        out += "'\\''";
      else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        out += '?';  // keep control characters off the terminal
      else
        out.push_back(c);
    }
    out.push_back('\'');
  }
  return out;
}

// Printable for a terminal: control characters replaced.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

uint64_t kind_count(const v1::RecordingSummary& s, uint32_t kind) {
  return kind < static_cast<uint32_t>(s.event_count_by_kind_size()) ? s.event_count_by_kind(static_cast<int>(kind)) : 0;
}

const char* status_word(const reader::Recording& rec) {
  return rec.finished() ? "complete" : rec.damaged() ? "damaged" : "recovered";
}

// A sample recording has no events: its counts, rate and drops, and samples per thread.
void print_samples(FILE* out, const reader::Recording& rec) {
  const v1::RecordingHeader& h = rec.header();
  const v1::RecordingSummary& s = rec.summary();
  fprintf(out, "Samples:       %" PRIu64 ", every thread %u times a second%s\n", s.sample_count(), h.sample_rate_hz(),
          h.sample_idle() ? "; idle samples counted in profiles (--idle)" : "");
  if (rec.finished())
    fprintf(out, "Dropped:       %" PRIu64 " samples (stack changed while read)\n", s.dropped_samples());
  else
    fprintf(out, "Dropped:       unknown (counted in the summary, which was not written)\n");
  fprintf(out, "Threads:       %d\n", s.threads_size());
  if (s.threads_size() > 0) {
    fprintf(out, "  %5s  %10s  %12s  %s\n", "index", "native id", "samples", "name");
    for (const auto& t : s.threads())
      fprintf(out, "  %5u  %10" PRIu64 "  %12" PRIu64 "  %s%s\n", t.thread(), t.native_id(), t.samples(),
              printable(t.name()).c_str(), t.pid() ? (" (pid " + std::to_string(t.pid()) + ")").c_str() : "");
  }
}

void print_text(FILE* out, const reader::Recording& rec) {
  const v1::RecordingHeader& h = rec.header();
  const v1::RecordingSummary& s = rec.summary();
  fprintf(out, "File:          %s\n", printable(rec.path()).c_str());
  const std::vector<std::string> parts = rec.part_paths();
  if (parts.size() > 1)
    fprintf(out, "Series:        %zu files, %s to %s\n", parts.size(), printable(parts.front()).c_str(),
            printable(parts.back()).c_str());
  fprintf(out, "Size:          %s, %d %s, format version %u\n", human_bytes(rec.file_size()).c_str(),
          s.chunks_size(), s.chunks_size() == 1 ? "chunk" : "chunks", rec.format_version());
  if (rec.finished())
    fprintf(out, "Status:        complete\n");
  else
    fprintf(out, "Status:        %s: %s\n", status_word(rec), printable(rec.damage()).c_str());
  fprintf(out, "Python:        %s %s", printable(h.python_implementation().empty() ? "python" : h.python_implementation()).c_str(),
          printable(h.python_version()).c_str());
  if (h.python_hexversion()) fprintf(out, " (hexversion 0x%08x)", h.python_hexversion());
  fprintf(out, "\n");
  fprintf(out, "Executable:    %s\n", printable(h.executable()).c_str());
  fprintf(out, "Command:       %s\n", quote_argv(h).c_str());
  fprintf(out, "PID:           %" PRIu64 "\n", h.pid());
  fprintf(out, "Working dir:   %s\n", printable(h.cwd()).c_str());
  fprintf(out, "Host:          %s\n", printable(h.host()).c_str());
  std::string start = iso8601_utc(h.start_wall_time_ns());
  fprintf(out, "Started:       %s\n", start.empty() ? "unknown" : start.c_str());
  fprintf(out, "Duration:      %s\n", seconds(s.duration_ns()).c_str());
  fprintf(out, "Exit status:   %s\n", exit_text(rec).c_str());
  if (!s.stop_reason().empty())
    fprintf(out, "Stopped early: %s; nothing was recorded after that\n", printable(s.stop_reason()).c_str());
  if (!h.mode().empty() || !h.pyrewind_version().empty())
    fprintf(out, "Recorded by:   pyrewind %s, mode %s\n", printable(h.pyrewind_version()).c_str(),
            printable(h.mode()).c_str());
  fprintf(out, "Code objects:  %" PRIu64 "\n", s.code_count());
  if (h.mode() == "sample") {
    print_samples(out, rec);
    return;
  }
  fprintf(out, "Events:        %" PRIu64 "\n", s.event_count());
  for (uint32_t k : kKinds)
    fprintf(out, "  %-18s %" PRIu64 "\n", reader::event_kind_name(k), kind_count(s, k));
  if (s.dropped_records() == 0 && s.dropped_bytes() == 0)
    fprintf(out, "Losses:        none\n");
  else
    fprintf(out, "Losses:        %" PRIu64 " records (%s) dropped\n", s.dropped_records(),
            human_bytes(s.dropped_bytes()).c_str());
  if (s.sample_count() > 0)
    fprintf(out, "Samples:       %" PRIu64 ", taken while line tracing was paused for sampling\n", s.sample_count());
  fprintf(out, "Threads:       %d\n", s.threads_size());
  if (s.threads_size() > 0) {
    fprintf(out, "  %5s  %10s  %12s  %10s  %s\n", "index", "native id", "events", "dropped", "name");
    for (const auto& t : s.threads())
      fprintf(out, "  %5u  %10" PRIu64 "  %12" PRIu64 "  %10" PRIu64 "  %s\n", t.thread(), t.native_id(), t.events(),
              t.dropped_records(), printable(t.name()).c_str());
  }
  if (s.agent_messages_size() > 0) {
    fprintf(out, "Agent messages:\n");
    for (const auto& m : s.agent_messages()) fprintf(out, "  %s\n", printable(m).c_str());
  }
}

void print_json(FILE* out, const reader::Recording& rec) {
  const v1::RecordingHeader& h = rec.header();
  const v1::RecordingSummary& s = rec.summary();
  std::string o = "{\"file\":";
  json::append_string(o, rec.path());
  o += ",\"files\":[";
  const std::vector<std::string> parts = rec.part_paths();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) o += ",";
    json::append_string(o, parts[i]);
  }
  o += "],\"file_size\":";
  json::append_uint(o, rec.file_size());
  o += ",\"format_version\":";
  json::append_uint(o, rec.format_version());
  o += ",\"status\":\"";
  o += status_word(rec);
  o += "\",\"damage\":";
  if (rec.finished())
    o += "null";
  else
    json::append_string(o, rec.damage());
  o += ",\"python\":{\"implementation\":";
  json::append_string(o, h.python_implementation());
  o += ",\"version\":";
  json::append_string(o, h.python_version());
  o += ",\"hexversion\":";
  json::append_uint(o, h.python_hexversion());
  o += "},\"pid\":";
  json::append_uint(o, h.pid());
  o += ",\"argv\":[";
  for (int i = 0; i < h.argv_size(); ++i) {
    if (i) o.push_back(',');
    json::append_string(o, h.argv(i));
  }
  o += "],\"cwd\":";
  json::append_string(o, h.cwd());
  o += ",\"host\":";
  json::append_string(o, h.host());
  o += ",\"executable\":";
  json::append_string(o, h.executable());
  o += ",\"mode\":";
  json::append_string(o, h.mode());
  o += ",\"pyrewind_version\":";
  json::append_string(o, h.pyrewind_version());
  o += ",\"start_time\":";
  std::string start = iso8601_utc(h.start_wall_time_ns());
  if (start.empty())
    o += "null";
  else
    json::append_string(o, start);
  o += ",\"start_wall_time_ns\":";
  json::append_uint(o, h.start_wall_time_ns());
  o += ",\"duration_ns\":";
  json::append_uint(o, s.duration_ns());
  o += ",\"exit\":";
  if (!rec.finished() || !s.target_exited()) {
    o += "null";
  } else if (s.exit_status() >= 0) {
    o += "{\"code\":" + std::to_string(s.exit_status()) + "}";
  } else {
    o += "{\"signal\":" + std::to_string(-s.exit_status()) + ",\"signal_name\":";
    json::append_string(o, signal_name(-s.exit_status()));
    o += "}";
  }
  o += ",\"stop_reason\":";
  if (s.stop_reason().empty())
    o += "null";
  else
    json::append_string(o, s.stop_reason());
  o += ",\"code_count\":";
  json::append_uint(o, s.code_count());
  o += ",\"chunk_count\":";
  json::append_uint(o, static_cast<uint64_t>(s.chunks_size()));
  o += ",\"event_count\":";
  json::append_uint(o, s.event_count());
  o += ",\"events_by_kind\":{";
  bool first = true;
  for (uint32_t k : kKinds) {
    if (!first) o.push_back(',');
    first = false;
    o += "\"";
    o += reader::event_kind_name(k);
    o += "\":";
    json::append_uint(o, kind_count(s, k));
  }
  o += "},\"dropped_records\":";
  json::append_uint(o, s.dropped_records());
  o += ",\"dropped_bytes\":";
  json::append_uint(o, s.dropped_bytes());
  const bool sampled = h.mode() == "sample";
  if (!sampled && s.sample_count() > 0) {  // `ctl ... sample on`, or --max-overhead's fallback
    o += ",\"sample_count\":";
    json::append_uint(o, s.sample_count());
  }
  if (sampled) {
    o += ",\"sample_count\":";
    json::append_uint(o, s.sample_count());
    o += ",\"dropped_samples\":";
    json::append_uint(o, s.dropped_samples());
    o += ",\"sample_rate_hz\":";
    json::append_uint(o, h.sample_rate_hz());
    o += h.sample_idle() ? ",\"sample_idle\":true" : ",\"sample_idle\":false";
  }
  o += ",\"threads\":[";
  for (int i = 0; i < s.threads_size(); ++i) {
    const auto& t = s.threads(i);
    if (i) o.push_back(',');
    o += "{\"index\":";
    json::append_uint(o, t.thread());
    o += ",\"native_id\":";
    json::append_uint(o, t.native_id());
    o += ",\"name\":";
    json::append_string(o, t.name());
    if (t.pid()) {
      o += ",\"pid\":";
      json::append_uint(o, t.pid());
    }
    o += ",\"events\":";
    json::append_uint(o, t.events());
    o += ",\"dropped_records\":";
    json::append_uint(o, t.dropped_records());
    o += ",\"first_time_ns\":";
    json::append_uint(o, t.first_time_ns());
    o += ",\"last_time_ns\":";
    json::append_uint(o, t.last_time_ns());
    if (sampled) {
      o += ",\"samples\":";
      json::append_uint(o, t.samples());
    }
    o += "}";
  }
  o += "],\"agent_messages\":[";
  for (int i = 0; i < s.agent_messages_size(); ++i) {
    if (i) o.push_back(',');
    json::append_string(o, s.agent_messages(i));
  }
  o += "]}\n";
  fputs(o.c_str(), out);
}

}  // namespace

int info_command(const InfoOptions& options) {
  auto recording = open_recording(options.file, /*streamed=*/false);
  if (!recording) return kExitBadRecording;
  ::signal(SIGPIPE, SIG_IGN);  // report a closed pipe as a write error instead of dying
  if (options.json)
    print_json(stdout, *recording);
  else
    print_text(stdout, *recording);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "pyrewind: cannot write standard output: %s\n", strerror(errno));
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
