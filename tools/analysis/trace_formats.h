// Writers of the span-based export formats. Each is a SpanSink that streams to an OutputFile;
// finish() writes what only the end can tell. Memory: per code object and per thread, never
// per event.
//
//   chrome      Trace Event Format (JSON object form): per thread "B"/"E" pairs named after
//               the function with {"file","line"} args, thread_name metadata, an instant event
//               "records lost" where records were dropped; ts in microseconds since the start.
//               Opens in ui.perfetto.dev and chrome://tracing.
//   perfetto    Perfetto's protobuf trace (a Trace message: TracePackets on one sequence): a
//               process track, a track per thread, TrackEvent slice begin/end with interned
//               names and source locations (file, function, line); timestamps in ns since
//               the start.
//   speedscope  speedscope's file format: one evented profile per thread, unit nanoseconds,
//               frames {name, file, line}. The events of each thread are spooled to a
//               temporary file until the end (profiles are written one after another).
//   collapsed   folded stacks, "outer;inner;leaf WEIGHT" per line, WEIGHT the self time in
//               nanoseconds, frames named "function (file:line)"; identical stacks are summed
//               (in bounded batches: a stack can appear on several lines, which flamegraph.pl
//               and inferno add up).
//   pprof       profile.proto, gzipped (go tool pprof, Pyroscope, Parca, Cloud Profiler): one
//               sample per distinct stack, valued in nanoseconds of its leaf's self time;
//               summed in memory per distinct stack, written at the end.
//
// Sample recordings: speedscope writes one "sampled" profile per thread (each sample's stack,
// root first, weighing the sampling period in ns), collapsed the sampled stacks with WEIGHT
// their number of samples; chrome and perfetto get the samples as spans (samples.h). Samples
// with no Python frame are left out.
#pragma once

#include <memory>
#include <string>

#include "tools/analysis/spans.h"
#include "tools/reader/output.h"
#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

class TraceWriter : public SpanSink {
 public:
  // Completes the output (`end_ns`: the last timestamp in range). False when writing failed:
  // the OutputFile's error(), or error() here for the writer's own temporary files.
  virtual bool finish(uint64_t end_ns) = 0;
  const std::string& error() const { return error_; }
  // Writers with a sampled form of their format take samples as they are (each weighing
  // `weight_ns`); the others get them as spans.
  virtual bool takes_samples() const { return false; }
  virtual void add_sample(const reader::SampleStep& sample, uint64_t weight_ns) { (void)sample, (void)weight_ns; }

 protected:
  std::string error_;
};

// The recording and its timeline give the writers the process and thread names.
struct TraceSource {
  const reader::Recording& recording;
  const reader::Timeline& timeline;
};

std::unique_ptr<TraceWriter> make_chrome_writer(const TraceSource& source, reader::OutputFile& out);
std::unique_ptr<TraceWriter> make_perfetto_writer(const TraceSource& source, reader::OutputFile& out);
std::unique_ptr<TraceWriter> make_speedscope_writer(const TraceSource& source, reader::OutputFile& out);
std::unique_ptr<TraceWriter> make_collapsed_writer(const TraceSource& source, reader::OutputFile& out);
std::unique_ptr<TraceWriter> make_pprof_writer(const TraceSource& source, reader::OutputFile& out);

// "MainThread", or "thread N" when the recording never named it; "... (pid N)" for a thread
// of another process than the recording's (sample --subprocesses).
std::string thread_label(const reader::Timeline& timeline, uint32_t thread);
// The program's name for a process track: the script of argv, or the executable.
std::string program_label(const reader::Recording& recording);

}  // namespace pyrewind::analysis
