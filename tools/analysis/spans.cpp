#include "tools/analysis/spans.h"

#include <algorithm>

namespace pyrewind::analysis {

SpanEvent SpanEvent::of(const reader::Step& step) {
  SpanEvent e;
  e.seq = step.seq;
  e.time_ns = step.time_ns;
  e.thread = step.thread;
  e.kind = step.kind;
  e.depth = step.depth;
  e.line = step.line;
  e.code = step.code;
  return e;
}

std::string function_name(const reader::CodeInfo& code) {
  if (!code.qualified_name.empty()) return code.qualified_name;
  if (code.native) return "?";
  return "<unknown code " + std::to_string(code.id) + ">";
}

std::string code_location(const reader::CodeInfo& code, uint32_t line) {
  const std::string file = code.file.empty() ? "?" : code.file;
  if (code.native) return file;
  return file + ":" + std::to_string(line ? line : code.first_line);
}

void SpanBuilder::close_from(ThreadState& t, size_t index, uint64_t time_ns) {
  while (t.open.size() > index) {
    if (t.shown) sink_.end(t.open.back(), std::max(time_ns, t.open.back().start_ns));
    t.open.pop_back();
  }
}

void SpanBuilder::show(ThreadState& t, uint64_t time_ns) {
  t.shown = true;
  for (Span& span : t.open) {
    span.start_ns = time_ns;
    span.called = false;  // called before the range
    sink_.begin(span);
  }
}

bool SpanBuilder::on_event(const SpanEvent& e) {
  if (done_) return false;
  if (range_.over_at(e.seq)) {
    done_ = true;
    return false;
  }
  if (!range_.selects_thread(e.thread)) return false;
  ThreadState& t = threads_[e.thread];
  if (t.past_end) return false;
  const Where where = range_.locate(e.seq, e.time_ns);
  if (where == Where::kAfter) {
    t.past_end = true;
    return false;
  }
  const bool inside = where == Where::kInside;
  // Times never go back within a thread's output, even if a clock did.
  const uint64_t now = std::max(e.time_ns, t.last_ns);
  if (inside && !started_) {
    started_ = true;
    start_ns_ = range_.from && range_.from->is_time() ? range_.from->value : now;
  }

  // Levels the event shows to be gone: deeper ones, and this one when a new call starts here
  // or another code object runs at it.
  auto level = std::find_if(t.open.begin(), t.open.end(), [&](const Span& s) { return s.depth >= e.depth; });
  size_t keep = static_cast<size_t>(level - t.open.begin());
  if (level != t.open.end() && level->depth == e.depth && level->code == e.code && e.kind != v1::EVENT_CALL)
    ++keep;
  close_from(t, keep, now);

  // Frames running when the range starts show from its start, or from this thread's last
  // event before it when that is later.
  if (inside && !t.shown) show(t, std::max(t.last_ns, std::min(start_ns_, now)));
  if (t.open.empty() || t.open.back().depth != e.depth) {
    t.open.push_back(Span{e.thread, e.depth, e.code, e.line, now, e.kind == v1::EVENT_CALL});
    if (t.shown) sink_.begin(t.open.back());
  }
  if (e.kind == v1::EVENT_RETURN) close_from(t, t.open.size() - 1, now);

  t.last_ns = now;
  if (inside) last_ns_ = std::max(last_ns_, now);
  return inside;
}

void SpanBuilder::on_loss(uint32_t thread, uint64_t records) {
  if (done_ || !range_.selects_thread(thread)) return;
  auto it = threads_.find(thread);
  if (it != threads_.end() && it->second.shown && !it->second.past_end)
    sink_.lost(thread, it->second.last_ns, records);
}

void SpanBuilder::on_thread_end(uint32_t thread) {
  if (done_) return;
  auto it = threads_.find(thread);
  if (it != threads_.end() && !it->second.past_end) close_from(it->second, 0, it->second.last_ns);
}

void SpanBuilder::finish() {
  if (!started_) return;
  std::vector<uint32_t> order;
  for (const auto& [index, state] : threads_) order.push_back(index);
  std::sort(order.begin(), order.end());
  for (uint32_t index : order) {
    ThreadState& t = threads_[index];
    if (t.open.empty()) continue;
    // A thread with no event in range but frames running through it (blocked, waiting)
    // shows them over the whole range.
    if (!t.shown) show(t, std::max(start_ns_, t.last_ns));
    close_from(t, 0, last_ns_);
  }
  done_ = true;
}

}  // namespace pyrewind::analysis
