// `pyrewind html FILE -o page.html [--from T] [--to T] [--thread N] [--max-steps N]`: one
// self-contained page to step through a range of the recording (tools/html/page.h); and
// `export --format memoryviz`, the state of one step for MemoryViz.
#include <signal.h>

#include <cstdio>
#include <string>
#include <utility>

#include "tools/analysis/range.h"
#include "tools/html/memoryviz.h"
#include "tools/html/page.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/output.h"
#include "tools/reader/recording.h"

namespace pyrewind::cli {

int html_command(const HtmlOptions& options) {
  html::PageOptions page;
  page.max_steps = options.max_steps;
  if (options.thread >= 0) page.thread = static_cast<uint32_t>(options.thread);
  for (auto [text, position] : {std::pair{&options.from, &page.from}, std::pair{&options.to, &page.to}}) {
    if (text->empty()) continue;
    std::string error;
    analysis::Position parsed;
    if (!analysis::parse_position(*text, &parsed, &error)) {
      std::fprintf(stderr, "pyrewind: %s\n", error.c_str());
      return kExitUsage;
    }
    *position = parsed;
  }

  auto recording = open_recording(options.file, /*streamed=*/true);
  if (!recording) return kExitBadRecording;

  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe comes back as EPIPE, reported below
  reader::OutputFile out;
  if (!out.open(options.output)) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  html::PageResult result;
  if (!html::write_page(*recording, page, out, &result) || !out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  if (!result.read_error.empty())
    std::fprintf(stderr, "pyrewind: warning: %s: %s; the page shows the steps before it\n", options.file.c_str(),
                 result.read_error.c_str());
  if (result.skipped_packets)
    std::fprintf(stderr, "pyrewind: warning: %s: %llu packets could not be decoded and were skipped\n",
                 options.file.c_str(), static_cast<unsigned long long>(result.skipped_packets));
  if (result.limited)
    std::fprintf(stderr, "pyrewind: warning: %s\n", html::limit_message(options.file, page, result).c_str());
  if (result.steps == 0)
    std::fprintf(stderr, "pyrewind: warning: %s: no steps in the range selected; the page is empty\n",
                 options.file.c_str());
  return kExitOk;
}

// `pyrewind export FILE --format memoryviz --step SEQ [-o OUT]` (tools/html/memoryviz.h).
int memoryviz_command(const ExportOptions& options) {
  if (options.step < 0) {
    std::fprintf(stderr, "pyrewind: --format memoryviz needs --step SEQ: the step whose state to draw\n");
    return kExitUsage;
  }
  auto recording = open_recording(options.file, /*streamed=*/true);
  if (!recording) return kExitBadRecording;
  std::string document;
  std::string error;
  switch (html::memoryviz_at(*recording, static_cast<uint64_t>(options.step), &document, &error)) {
    case html::StepLookup::kFound:
      break;
    case html::StepLookup::kNoSuchStep:
      std::fprintf(stderr, "pyrewind: %s: %s\n", options.file.c_str(), error.c_str());
      return kExitUsage;
    case html::StepLookup::kUnreadable:
      std::fprintf(stderr, "pyrewind: %s: %s\n", options.file.c_str(), error.c_str());
      return kExitBadRecording;
  }
  ::signal(SIGPIPE, SIG_IGN);
  reader::OutputFile out;
  if (!out.open(options.output) || !out.write(document) || !out.close()) {
    std::fprintf(stderr, "pyrewind: %s\n", out.error().c_str());
    return kExitIoError;
  }
  return kExitOk;
}

}  // namespace pyrewind::cli
