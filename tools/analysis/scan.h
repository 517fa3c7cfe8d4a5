// One pass over a recording for the span-based commands (export to trace formats, stats):
// every item of the timeline goes to a SpanBuilder in file order, every event inside the range
// to `on_step` right after, with a progress line; the pass stops early once the range is over.
// Samples (recordings of mode "sample") that the profile counts (samples.h) go to `on_sample`
// when given, else to the SpanBuilder as spans.
#pragma once

#include <functional>

#include "tools/analysis/progress.h"
#include "tools/analysis/spans.h"
#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

// `on_step` returns false to stop (the output failed). Ends with builder.finish(). The
// timeline's error() tells whether reading stopped at a damaged chunk.
void scan(const reader::Recording& recording, reader::Timeline& timeline, SpanBuilder& builder,
          Progress& progress, const std::function<bool(const reader::Step&)>& on_step,
          const std::function<bool(const reader::SampleStep&)>& on_sample = {});

}  // namespace pyrewind::analysis
