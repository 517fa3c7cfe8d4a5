#include "tools/analysis/scan.h"

#include "tools/analysis/samples.h"

namespace pyrewind::analysis {

void scan(const reader::Recording& recording, reader::Timeline& timeline, SpanBuilder& builder,
          Progress& progress, const std::function<bool(const reader::Step&)>& on_step,
          const std::function<bool(const reader::SampleStep&)>& on_sample) {
  const SampleSelection selection(recording, builder.range());
  SampleSpans spans(builder);
  while (!builder.done() && timeline.next()) {
    progress.update(timeline.chunk().offset - recording.data_begin());
    switch (timeline.type()) {
      case reader::ItemType::kEvent:
        if (builder.on_event(SpanEvent::of(timeline.step())) && !on_step(timeline.step())) return;
        break;
      case reader::ItemType::kLoss:
        builder.on_loss(timeline.loss().thread(), timeline.loss().dropped_records());
        break;
      case reader::ItemType::kSample:
        if (!selection.counts(timeline.sample())) break;
        if (!on_sample)
          spans.add(timeline.sample());
        else if (!on_sample(timeline.sample()))
          return;
        break;
      case reader::ItemType::kThreadEnd:
        builder.on_thread_end(timeline.thread_end().thread());
        break;
      default:
        break;
    }
  }
  builder.finish();
}

}  // namespace pyrewind::analysis
