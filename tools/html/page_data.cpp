#include "tools/html/page_data.h"

#include <algorithm>

#include "tools/reader/json.h"

namespace pyrewind::html {
namespace json = reader::json;

namespace {

constexpr int64_t kMaxExactDouble = int64_t{1} << 53;

template <class T>
void append_index_list(std::string& out, const std::vector<T>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    json::append_uint(out, items[i]);
  }
  out.push_back(']');
}

}  // namespace

void append_page_value(std::string& out, const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kNone:
      out += "null";
      return;
    case v1::Value::kBoolValue:
      out += value.bool_value() ? "true" : "false";
      return;
    case v1::Value::kIntValue: {
      const int64_t i = value.int_value();
      if (i > -kMaxExactDouble && i < kMaxExactDouble) {
        json::append_int(out, i);
      } else {
        out += "{\"t\":\"int\",\"v\":\"";
        out += std::to_string(i);
        out += "\"}";
      }
      return;
    }
    case v1::Value::kBigInt: {
      const v1::BigInt& b = value.big_int();
      if (b.truncated()) {
        out += "{\"t\":\"int\",\"bits\":";
        json::append_uint(out, b.bit_length());
        out.push_back('}');
      } else {
        out += "{\"t\":\"int\",\"v\":\"";
        out += json::decimal_from_le(b.negative(), b.magnitude_le());
        out += "\"}";
      }
      return;
    }
    case v1::Value::kFloatValue:
      out += "{\"t\":\"float\",\"v\":\"";
      out += json::python_float_repr(value.float_value());
      out += "\"}";
      return;
    case v1::Value::kStrValue: {
      const v1::Text& t = value.str_value();
      if (!t.truncated()) {
        json::append_string(out, t.text());
        return;
      }
      out += "{\"t\":\"str\",\"v\":";
      json::append_string(out, t.text());
      out += ",\"n\":";
      json::append_uint(out, t.length());
      out.push_back('}');
      return;
    }
    case v1::Value::kBytesValue: {
      const v1::Blob& b = value.bytes_value();
      out += "{\"t\":\"bytes\",\"v\":";
      json::append_hex(out, b.data());
      out += ",\"n\":";
      json::append_uint(out, b.length());
      if (b.truncated()) out += ",\"x\":1";
      out.push_back('}');
      return;
    }
    case v1::Value::kContainer: {
      const v1::Container& c = value.container();
      out += "{\"t\":\"";
      out += json::container_type(c.kind());
      out += "\",\"id\":";
      json::append_uint(out, c.id());
      out += ",\"n\":";
      json::append_uint(out, c.length());
      out += ",\"v\":[";
      for (int i = 0; i < c.items_size(); ++i) {
        if (i) out.push_back(',');
        append_page_value(out, c.items(i));
      }
      out.push_back(']');
      if (c.truncated()) out += ",\"x\":1";
      out.push_back('}');
      return;
    }
    case v1::Value::kObject: {
      const v1::ObjectRef& o = value.object();
      out += "{\"t\":";
      json::append_string(out, o.type_name().empty() ? "object" : o.type_name());
      out += ",\"id\":";
      json::append_uint(out, o.id());
      out += ",\"o\":1";
      if (!o.repr().empty()) {
        out += ",\"r\":";
        json::append_string(out, o.repr());
      }
      out.push_back('}');
      return;
    }
    case v1::Value::kRedacted:
      out += "{\"t\":\"redacted\"}";
      return;
    default:
      out += "{\"t\":\"unknown\"}";
      return;
  }
}

uint32_t PageEncoder::intern_name(const std::string& name) {
  auto [it, added] = name_index_.try_emplace(name, static_cast<uint32_t>(names_.size()));
  if (added) names_.push_back(&it->first);
  return it->second;
}

uint32_t PageEncoder::intern_value(const v1::Value& value) {
  scratch_.clear();
  append_page_value(scratch_, value);
  auto [it, added] = value_index_.try_emplace(scratch_, static_cast<uint32_t>(values_.size()));
  if (added) values_.push_back(&it->first);
  return it->second;
}

uint32_t PageEncoder::code_index(uint64_t code_id) {
  auto [it, added] = code_index_.try_emplace(code_id, static_cast<uint32_t>(codes_.size()));
  if (added) codes_.push_back(code_id);
  return it->second;
}

PageEncoder::ShownFrame PageEncoder::shown(const reader::Frame& frame) {
  ShownFrame s;
  s.code_id = frame.code()->id;
  s.depth = frame.depth();
  s.complete = frame.locals_complete();
  frame.for_each_local([&](const std::string& name, const v1::Value& value) {
    s.names.push_back(intern_name(name));
    s.values.push_back(intern_value(value));
  });
  return s;
}

void PageEncoder::append_frame(std::string& out, const ShownFrame& frame) {
  out.push_back('[');
  json::append_uint(out, code_index(frame.code_id));
  out.push_back(',');
  json::append_uint(out, frame.depth);
  out += frame.complete ? ",1," : ",0,";
  append_index_list(out, frame.names);
  out.push_back(',');
  append_index_list(out, frame.values);
  out.push_back(']');
}

void PageEncoder::append_step(std::string& out, const reader::Timeline& timeline, const reader::Step& step) {
  auto [stack_it, new_thread] = stacks_.try_emplace(step.thread);
  if (new_thread) threads_.push_back(step.thread);
  std::vector<ShownFrame>& previous = stack_it->second;

  // The stack to show: the thread's frames below the event's, then the event's frame.
  std::vector<const reader::Frame*> now;
  if (const reader::ThreadInfo* t = timeline.thread(step.thread))
    for (const reader::Frame& f : t->stack)
      if (&f != step.frame) now.push_back(&f);
  now.push_back(step.frame);

  // Frames stay when code and depth match, except that a call always enters a new frame, and
  // a frame shown returning at the previous step is gone.
  const size_t top = now.size() - 1;
  size_t keep = 0;
  const size_t limit = std::min(previous.size() - (previous_returned_.count(step.thread) ? 1 : 0), now.size());
  while (keep < limit && previous[keep].code_id == now[keep]->code()->id && previous[keep].depth == now[keep]->depth() &&
         !(keep == top && step.kind == v1::EVENT_CALL))
    ++keep;
  previous.resize(keep);

  std::string changes;
  for (size_t i = 0; i < keep; ++i) {
    ShownFrame& was = previous[i];
    if (i == top) {
      ShownFrame is = shown(*now[i]);
      if (is.complete == was.complete && is.names == was.names && is.values == was.values) continue;
      if (!changes.empty()) changes.push_back(',');
      changes.push_back('[');
      json::append_uint(changes, i);
      changes += is.complete ? ",1," : ",0,";
      if (is.names == was.names) {
        changes.push_back('[');
        bool first = true;
        for (size_t slot = 0; slot < is.values.size(); ++slot) {
          if (is.values[slot] == was.values[slot]) continue;
          if (!first) changes.push_back(',');
          first = false;
          changes.push_back('[');
          json::append_uint(changes, slot);
          changes.push_back(',');
          json::append_uint(changes, is.values[slot]);
          changes.push_back(']');
        }
        changes.push_back(']');
      } else {
        append_index_list(changes, is.names);
        changes.push_back(',');
        append_index_list(changes, is.values);
      }
      changes.push_back(']');
      was = std::move(is);
    } else if (now[i]->locals_complete() != was.complete) {
      // Only the event's frame gets bindings; the others can only lose completeness (a loss).
      was.complete = now[i]->locals_complete();
      if (!changes.empty()) changes.push_back(',');
      changes.push_back('[');
      json::append_uint(changes, i);
      changes += was.complete ? ",1,[]]" : ",0,[]]";
    }
  }

  out.push_back('[');
  json::append_uint(out, step.seq);
  out.push_back(',');
  json::append_uint(out, step.time_ns);
  out.push_back(',');
  json::append_uint(out, step.thread);
  out.push_back(',');
  json::append_uint(out, step.kind);
  out.push_back(',');
  json::append_uint(out, code_index(step.code->id));
  out.push_back(',');
  json::append_uint(out, step.line);
  out.push_back(',');
  json::append_uint(out, keep);
  out.push_back(',');
  if (keep == now.size()) {
    out.push_back('0');
  } else {
    out.push_back('[');
    for (size_t i = keep; i < now.size(); ++i) {
      previous.push_back(shown(*now[i]));
      if (i > keep) out.push_back(',');
      append_frame(out, previous.back());
    }
    out.push_back(']');
  }
  out.push_back(',');
  if (changes.empty()) {
    out.push_back('0');
  } else {
    out.push_back('[');
    out += changes;
    out.push_back(']');
  }
  if (step.kind == v1::EVENT_RETURN) {
    previous_returned_.insert(step.thread);
    if (step.return_value) {
      out.push_back(',');
      json::append_uint(out, intern_value(*step.return_value));
    }
  } else {
    previous_returned_.erase(step.thread);
    if (step.exception) {
      out += ",[";
      json::append_string(out, step.exception->type_name());
      out.push_back(',');
      json::append_string(out, step.exception->message());
      out.push_back(']');
    }
  }
  out.push_back(']');
}

void PageEncoder::finish(const reader::Timeline& timeline) {
  std::unordered_map<std::string, uint32_t> file_index;
  codes_json_.clear();
  for (size_t i = 0; i < codes_.size(); ++i) {
    const reader::CodeInfo* code = timeline.code(codes_[i]);
    const std::string file = code ? code->file : std::string();
    auto [it, added] = file_index.try_emplace(file, static_cast<uint32_t>(files_.size()));
    if (added) files_.push_back(file);
    if (i) codes_json_.push_back(',');
    codes_json_.push_back('[');
    json::append_uint(codes_json_, it->second);
    codes_json_.push_back(',');
    json::append_string(codes_json_, code && !code->qualified_name.empty() ? code->qualified_name : "?");
    codes_json_.push_back(',');
    json::append_uint(codes_json_, code ? code->first_line : 0);
    codes_json_.push_back(']');
  }
  threads_json_.clear();
  for (size_t i = 0; i < threads_.size(); ++i) {
    const reader::ThreadInfo* t = timeline.thread(threads_[i]);
    if (i) threads_json_.push_back(',');
    threads_json_.push_back('[');
    json::append_uint(threads_json_, threads_[i]);
    threads_json_.push_back(',');
    json::append_string(threads_json_, t ? t->name : std::string());
    threads_json_.push_back(']');
  }
}

void PageEncoder::append_tables(std::string& out) const {
  out += "\"names\":[";
  for (size_t i = 0; i < names_.size(); ++i) {
    if (i) out.push_back(',');
    json::append_string(out, *names_[i]);
  }
  out += "],\"values\":[";
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i) out.push_back(',');
    out += *values_[i];
  }
  out += "],\"codes\":[";
  out += codes_json_;
  out += "],\"threads\":[";
  out += threads_json_;
  out.push_back(']');
}

}  // namespace pyrewind::html
