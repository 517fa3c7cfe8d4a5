#include "tools/analysis/stats.h"

#include <algorithm>

#include "tools/reader/json.h"

namespace pyrewind::analysis {
namespace {

constexpr int kTypeDepth = 3;  // list[dict[str, list]]: deeper items are named by their kind only
constexpr size_t kMaxTupleItems = 8;

std::string type_name_at(const v1::Value& value, int depth);

// The union of the item types; every `stride`-th item from `first`.
std::string items_union(const v1::Container& c, size_t first, size_t stride, int depth) {
  TypeSet set;
  for (size_t i = first; i < static_cast<size_t>(c.items_size()); i += stride) {
    std::string name = type_name_at(c.items(static_cast<int>(i)), depth);
    if (!name.empty()) set.add(name);
  }
  return set.join();
}

std::string type_name_at(const v1::Value& value, int depth) {
  switch (value.kind_case()) {
    case v1::Value::kNone: return "None";
    case v1::Value::kBoolValue: return "bool";
    case v1::Value::kIntValue:
    case v1::Value::kBigInt: return "int";
    case v1::Value::kFloatValue: return "float";
    case v1::Value::kStrValue: return "str";
    case v1::Value::kBytesValue: return "bytes";
    case v1::Value::kObject: return value.object().type_name().empty() ? "object" : value.object().type_name();
    case v1::Value::kRedacted:
    case v1::Value::KIND_NOT_SET: return "";
    case v1::Value::kContainer: break;
  }
  const v1::Container& c = value.container();
  const std::string kind = reader::json::container_type(c.kind());
  if (c.items_size() == 0 || depth >= kTypeDepth) return kind;
  if (c.kind() == v1::CONTAINER_DICT)
    return kind + "[" + items_union(c, 0, 2, depth + 1) + ", " + items_union(c, 1, 2, depth + 1) + "]";
  if (c.kind() == v1::CONTAINER_TUPLE) {
    if (c.truncated() || static_cast<size_t>(c.items_size()) > kMaxTupleItems)
      return kind + "[" + items_union(c, 0, 1, depth + 1) + ", ...]";
    std::string out = kind + "[";
    for (int i = 0; i < c.items_size(); ++i) {
      if (i) out += ", ";
      out += type_name_at(c.items(i), depth + 1);
    }
    return out + "]";
  }
  return kind + "[" + items_union(c, 0, 1, depth + 1) + "]";
}

}  // namespace

void TypeSet::add(const std::string& name) {
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  if (names.size() < kMax)
    names.push_back(name);
  else
    more = true;
}

std::string TypeSet::join() const {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += " | ";
    out += name;
  }
  if (more) out += " | ...";
  return out;
}

std::string type_name(const v1::Value& value) { return type_name_at(value, 0); }

FunctionStats& StatsCollector::function(uint64_t code_id) {
  FunctionStats& f = functions_[code_id];
  f.code_id = code_id;
  return f;
}

void StatsCollector::begin(const Span& span) {
  ThreadState& t = threads_[span.thread];
  t.stack.push_back(Active{span.code->id, span.start_ns, 0});
  ++t.activations[span.code->id];
  FunctionStats& f = function(span.code->id);
  if (span.called) ++f.calls;
}

void StatsCollector::end(const Span& span, uint64_t time_ns) {
  ThreadState& t = threads_[span.thread];
  const Active active = t.stack.back();  // spans nest strictly (SpanBuilder)
  t.stack.pop_back();
  const uint64_t duration = time_ns - active.start_ns;
  FunctionStats& f = function(active.code_id);
  f.self_ns += duration - std::min(duration, active.children_ns);
  if (!t.stack.empty()) t.stack.back().children_ns += duration;
  auto it = t.activations.find(active.code_id);
  if (--it->second == 0) {
    t.activations.erase(it);
    f.total_ns += duration;
  }
}

void StatsCollector::record_types(const reader::Step& s) {
  if (s.kind == v1::EVENT_CALL) {
    FunctionStats& f = function(s.code->id);
    if (s.code->module_level) return;
    // A resume of a generator or coroutine re-enters at its last yield, not at the def line.
    if (s.line != s.code->first_line) {
      f.resumed = true;
      return;
    }
    s.frame->for_each_local([&](const std::string& name, const v1::Value& value) {
      const std::string type = type_name(value);
      if (type.empty()) return;
      auto it = std::find_if(f.arguments.begin(), f.arguments.end(),
                             [&](const auto& entry) { return entry.first == name; });
      if (it == f.arguments.end()) {
        if (f.arguments.size() >= 64) return;  // bounded: a code object with a huge closure
        it = f.arguments.insert(f.arguments.end(), {name, TypeSet{}});
      }
      it->second.add(type);
    });
  } else if (s.kind == v1::EVENT_RETURN && s.return_value && !s.code->module_level) {
    const std::string type = type_name(*s.return_value);
    if (!type.empty()) function(s.code->id).returns.add(type);
  }
}

void StatsCollector::on_step(const reader::Step& s) {
  ++events_;
  ThreadState& t = threads_[s.thread];
  const uint64_t now = std::max(s.time_ns, t.last_ns);  // as SpanBuilder: never back in time
  // The time since the thread's previous event belongs to the line its innermost frame is on.
  if (t.seen && !t.marks.empty())
    lines_[{t.marks.back().code_id, t.marks.back().line}].self_ns += now - t.last_ns;
  t.seen = true;
  t.last_ns = now;

  // A frame's current line runs until the frame's next event.
  while (!t.marks.empty() && t.marks.back().depth > s.depth) t.marks.pop_back();
  if (!t.marks.empty() && t.marks.back().depth == s.depth) {
    LineMark& mark = t.marks.back();
    if (mark.code_id == s.code->id && s.kind != v1::EVENT_CALL) {
      lines_[{mark.code_id, mark.line}].time_ns += now - mark.since_ns;
      mark.since_ns = now;
    } else {
      t.marks.pop_back();  // another frame at this level: the old one's end was not recorded
    }
  }
  if (s.kind == v1::EVENT_LINE) {
    ++lines_[{s.code->id, s.line}].hits;
    if (!t.marks.empty() && t.marks.back().depth == s.depth)
      t.marks.back().line = s.line;
    else
      t.marks.push_back(LineMark{s.depth, s.code->id, s.line, now});
  } else if (s.kind == v1::EVENT_RETURN && !t.marks.empty() && t.marks.back().depth == s.depth) {
    t.marks.pop_back();
  }
  record_types(s);
}

}  // namespace pyrewind::analysis
