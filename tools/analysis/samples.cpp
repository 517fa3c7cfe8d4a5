#include "tools/analysis/samples.h"

#include <algorithm>

namespace pyrewind::analysis {

SampleSelection::SampleSelection(const reader::Recording& recording, const Range& range)
    : range_(range),
      idle_counted_(recording.header().sample_idle()),
      period_ns_(recording.header().sample_rate_hz() ? 1000000000ull / recording.header().sample_rate_hz() : 0) {}

bool SampleSelection::counts(const reader::SampleStep& sample) const {
  return (idle_counted_ || !sample.idle) && range_.selects_thread(sample.thread) &&
         range_.locate(sample.index, sample.time_ns) == Where::kInside;
}

void SampleStats::add(const reader::SampleStep& sample) {
  ++samples_;
  seen_functions_.clear();
  seen_lines_.clear();
  for (size_t i = 0; i < sample.frames.size(); ++i) {
    const reader::SampleFrame& frame = sample.frames[i];
    SampleCounts& function = functions_[frame.code->id];
    const std::pair<uint64_t, uint32_t> key{frame.code->id, frame.line};
    SampleCounts& line = lines_[key];
    if (i == 0) ++function.own, ++line.own;
    if (seen_functions_.insert(frame.code->id).second) ++function.total;
    if (std::find(seen_lines_.begin(), seen_lines_.end(), key) == seen_lines_.end()) {
      seen_lines_.push_back(key);
      ++line.total;
    }
  }
}

void SampleSpans::add(const reader::SampleStep& sample) {
  if (sample.frames.empty()) return;  // nothing to say where the thread's spans end
  std::vector<const reader::CodeInfo*>& previous = stacks_[sample.thread];
  const size_t depth = sample.frames.size();
  auto code_at = [&](size_t level) { return sample.frames[depth - 1 - level].code; };  // level 0: outermost
  size_t first_change = 0;
  while (first_change < depth && first_change < previous.size() && previous[first_change] == code_at(first_change))
    ++first_change;
  if (first_change == depth && previous.size() == depth) return;
  // An event at a level closes the spans above it and replaces a span of another code there;
  // the levels after it open new spans. A stack that only got shorter needs its innermost level.
  SpanEvent event;
  event.seq = sample.index;
  event.time_ns = sample.time_ns;
  event.thread = sample.thread;
  event.kind = v1::EVENT_LINE;
  for (size_t level = std::min(first_change, depth - 1); level < depth; ++level) {
    event.depth = static_cast<uint32_t>(level);
    event.code = code_at(level);
    event.line = sample.frames[depth - 1 - level].line;
    builder_.on_event(event);
  }
  previous.resize(depth);
  for (size_t level = 0; level < depth; ++level) previous[level] = code_at(level);
}

}  // namespace pyrewind::analysis
