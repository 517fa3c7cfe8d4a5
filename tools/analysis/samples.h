// Profiles of sampled recordings (mode "sample", `pyrewind sample`): which samples count, their
// weight, per-function and per-line sample counts, and sampled stacks turned into spans for the
// formats that only know spans (chrome, perfetto).
//
//   own     samples in which the function (line) was the innermost frame
//   total   samples in which it was anywhere on the stack, once per sample even when recursive
//   time    samples x the sampling period
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tools/analysis/range.h"
#include "tools/analysis/spans.h"
#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::analysis {

// The samples a profile counts: inside the range (a seq position is a sample index), of a
// selected thread, and not idle unless the recording was made with --idle (idle samples are
// recorded either way, flagged).
class SampleSelection {
 public:
  SampleSelection(const reader::Recording& recording, const Range& range);
  bool counts(const reader::SampleStep& sample) const;
  uint64_t period_ns() const { return period_ns_; }  // each sample's weight

 private:
  Range range_;
  bool idle_counted_;
  uint64_t period_ns_;
};

struct SampleCounts {
  uint64_t own = 0;
  uint64_t total = 0;
};

class SampleStats {
 public:
  void add(const reader::SampleStep& sample);

  uint64_t samples() const { return samples_; }
  const std::unordered_map<uint64_t, SampleCounts>& functions() const { return functions_; }  // by code id
  const std::map<std::pair<uint64_t, uint32_t>, SampleCounts>& lines() const { return lines_; }  // (code id, line)

 private:
  uint64_t samples_ = 0;
  std::unordered_map<uint64_t, SampleCounts> functions_;
  std::map<std::pair<uint64_t, uint32_t>, SampleCounts> lines_;
  std::unordered_set<uint64_t> seen_functions_;
  std::vector<std::pair<uint64_t, uint32_t>> seen_lines_;
};

// Feeds samples to a SpanBuilder as the events that would change its open spans: frames that
// stayed the same from a thread's previous sample stay one span, the others end and begin at
// this sample's time.
class SampleSpans {
 public:
  explicit SampleSpans(SpanBuilder& builder) : builder_(builder) {}
  void add(const reader::SampleStep& sample);

 private:
  SpanBuilder& builder_;
  std::unordered_map<uint32_t, std::vector<const reader::CodeInfo*>> stacks_;  // outermost first
};

}  // namespace pyrewind::analysis
