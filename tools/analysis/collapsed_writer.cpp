// Folded stacks, the input of flamegraph.pl (stackcollapse output) and inferno-flamegraph.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "tools/analysis/trace_formats.h"

namespace pyrewind::analysis {
namespace {

class CollapsedWriter : public TraceWriter {
 public:
  explicit CollapsedWriter(reader::OutputFile& out) : out_(out) {}

  void begin(const Span& span) override {
    Stack& s = stacks_[span.thread];
    account(s, span.start_ns);
    s.ends.push_back(s.path.size());
    if (!s.path.empty()) s.path += ';';
    s.path += frame_name(*span.code);
  }

  void end(const Span& span, uint64_t time_ns) override {
    Stack& s = stacks_[span.thread];
    account(s, time_ns);
    s.path.resize(s.ends.back());
    s.ends.pop_back();
  }

  bool finish(uint64_t) override { return flush(); }

  bool takes_samples() const override { return true; }
  void add_sample(const reader::SampleStep& sample, uint64_t) override {
    if (sample.frames.empty()) return;
    path_.clear();
    for (auto frame = sample.frames.rbegin(); frame != sample.frames.rend(); ++frame) {
      if (!path_.empty()) path_ += ';';
      path_ += frame_name(*frame->code);
    }
    add(path_, 1);
  }

 private:
  // Stacks summed before they are written, bounded in number and in bytes (deep recursion
  // makes long stacks); a stack seen again after a flush gets another line.
  static constexpr size_t kMaxPending = 1 << 16;
  static constexpr size_t kMaxPendingBytes = 64 << 20;

  struct Stack {
    std::string path;          // "outer;inner"
    std::vector<size_t> ends;  // path length before each frame was pushed
    uint64_t since_ns = 0;     // when the path last changed
  };

  // "function (file:line)", without the separators of the format (';' and line breaks); a
  // trailing number would be read as the weight if the frame stood alone, so the name always
  // ends with ')'.
  const std::string& frame_name(const reader::CodeInfo& code) {
    auto [it, fresh] = names_.emplace(code.id, std::string());
    if (fresh) {
      std::string name = function_name(code) + " (" + code_location(code) + ")";
      std::replace(name.begin(), name.end(), ';', ':');
      std::replace(name.begin(), name.end(), '\n', ' ');
      std::replace(name.begin(), name.end(), '\r', ' ');
      it->second = std::move(name);
    }
    return it->second;
  }

  void account(Stack& s, uint64_t now_ns) {
    if (!s.path.empty() && now_ns > s.since_ns) add(s.path, now_ns - s.since_ns);
    s.since_ns = now_ns;
  }

  void add(const std::string& path, uint64_t weight) {
    auto [it, fresh] = pending_.try_emplace(path, 0);
    it->second += weight;
    if (fresh) pending_bytes_ += path.size();
    if (pending_.size() >= kMaxPending || pending_bytes_ >= kMaxPendingBytes) flush();
  }

  bool flush() {
    std::vector<std::pair<std::string, uint64_t>> lines(pending_.begin(), pending_.end());
    pending_.clear();
    pending_bytes_ = 0;
    std::sort(lines.begin(), lines.end());
    std::string& b = out_.buffer();
    for (const auto& [path, weight] : lines) {
      b += path;
      b += ' ';
      b += std::to_string(weight);
      b += '\n';
      if (!out_.commit()) return false;
    }
    return true;
  }

  reader::OutputFile& out_;
  std::unordered_map<uint32_t, Stack> stacks_;
  std::unordered_map<uint64_t, std::string> names_;
  std::unordered_map<std::string, uint64_t> pending_;
  size_t pending_bytes_ = 0;
  std::string path_;  // of the sample being added
};

}  // namespace

std::unique_ptr<TraceWriter> make_collapsed_writer(const TraceSource&, reader::OutputFile& out) {
  return std::make_unique<CollapsedWriter>(out);
}

}  // namespace pyrewind::analysis
