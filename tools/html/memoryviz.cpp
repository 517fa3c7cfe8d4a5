#include "tools/html/memoryviz.h"

#include <unordered_map>

#include "tools/reader/json.h"
#include "tools/reader/timeline.h"

namespace pyrewind::html {
namespace json = reader::json;

namespace {

// Collects the objects of a snapshot and writes them, numbering them 1, 2, 3, ... in the
// order they are met (an id() is an address: 15 digits that only make the drawing wider).
class VizBuilder {
 public:
  // The number standing for `value`, writing its object (and those it contains) the first time.
  uint64_t id_of(const v1::Value& value) {
    switch (value.kind_case()) {
      case v1::Value::kContainer: return container(value.container());
      case v1::Value::kObject: return object(value.object());
      default: return primitive(value);
    }
  }

  std::string take() { return std::move(objects_); }

 private:
  // The number of the object with this id(); `added` tells whether it is new.
  uint64_t number(uint64_t object_id, bool* added) {
    auto [it, inserted] = numbers_.try_emplace(object_id, next_number_);
    if (inserted) ++next_number_;
    *added = inserted;
    return it->second;
  }

  void begin(const char* type, uint64_t id) {
    objects_ += ",\n{\"type\":";
    json::append_string(objects_, type);
    objects_ += ",\"id\":";
    json::append_uint(objects_, id);
    objects_ += ",\"value\":";
  }

  uint64_t container(const v1::Container& c) {
    // The first view of a container wins: frames are visited innermost first, the freshest.
    bool added = false;
    const uint64_t id = number(c.id(), &added);
    if (!added) return id;
    // Items first, so that nested objects get their ids (and entries) before this one refers
    // to them; the entry itself is assembled separately and appended after them.
    std::vector<uint64_t> ids;
    ids.reserve(c.items_size());
    for (const v1::Value& item : c.items()) ids.push_back(id_of(item));
    const char* type = "list";
    switch (c.kind()) {
      case v1::CONTAINER_TUPLE: type = "tuple"; break;
      case v1::CONTAINER_DICT: type = "dict"; break;
      case v1::CONTAINER_SET:
      case v1::CONTAINER_FROZENSET: type = "set"; break;
      default: break;
    }
    begin(type, id);
    if (c.kind() == v1::CONTAINER_DICT) {
      objects_.push_back('{');
      for (size_t i = 0; i + 1 < ids.size(); i += 2) {
        if (i) objects_.push_back(',');
        objects_.push_back('"');
        json::append_uint(objects_, ids[i]);
        objects_ += "\":";
        json::append_uint(objects_, ids[i + 1]);
      }
      objects_.push_back('}');
    } else {
      objects_.push_back('[');
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) objects_.push_back(',');
        json::append_uint(objects_, ids[i]);
      }
      objects_.push_back(']');
    }
    objects_.push_back('}');
    return id;
  }

  uint64_t object(const v1::ObjectRef& o) {
    bool added = false;
    const uint64_t id = number(o.id(), &added);
    if (added) {
      objects_ += ",\n{\"type\":\".class\",\"name\":";
      json::append_string(objects_, o.type_name().empty() ? "object" : o.type_name());
      objects_ += ",\"id\":";
      json::append_uint(objects_, id);
      objects_ += ",\"value\":{}}";
    }
    return id;
  }

  uint64_t primitive(const v1::Value& value) {
    std::string type, shown;
    switch (value.kind_case()) {
      case v1::Value::kNone:
        type = "None";
        shown = "\"None\"";
        break;
      case v1::Value::kBoolValue:
        type = "bool";
        shown = value.bool_value() ? "true" : "false";
        break;
      case v1::Value::kIntValue:
      case v1::Value::kBigInt:
        type = "int";
        if (value.has_big_int() && value.big_int().truncated())
          json::append_string(shown, "<int of " + std::to_string(value.big_int().bit_length()) + " bits>");
        else
          json::append_value(shown, value);  // a number, or a decimal string beyond 2^53
        break;
      case v1::Value::kFloatValue:
        type = "float";
        json::append_value(shown, value);  // NaN and infinities as strings
        break;
      case v1::Value::kStrValue:
        type = "str";
        json::append_string(shown, value.str_value().text() + (value.str_value().truncated() ? "\u2026" : ""));
        break;
      case v1::Value::kBytesValue: {
        type = "bytes";
        std::string text = "b'";
        for (unsigned char ch : value.bytes_value().data()) {
          static constexpr char kHex[] = "0123456789abcdef";
          if (ch == '\'' || ch == '\\') {
            text.push_back('\\');
            text.push_back(static_cast<char>(ch));
          } else if (ch >= 32 && ch < 127) {
            text.push_back(static_cast<char>(ch));
          } else {
            text += "\\x";
            text.push_back(kHex[ch >> 4]);
            text.push_back(kHex[ch & 15]);
          }
        }
        text += value.bytes_value().truncated() ? "'\u2026" : "'";
        json::append_string(shown, text);
        break;
      }
      case v1::Value::kRedacted:
        type = "redacted";
        shown = "\"<redacted>\"";
        break;
      default:
        type = "unknown";
        shown = "\"?\"";
        break;
    }
    auto [it, added] = primitive_numbers_.try_emplace(type + '\0' + shown, next_number_);
    if (!added) return it->second;
    ++next_number_;
    begin(type.c_str(), it->second);
    objects_ += shown;
    objects_.push_back('}');
    return it->second;
  }

  std::unordered_map<uint64_t, uint64_t> numbers_;            // by id()
  std::unordered_map<std::string, uint64_t> primitive_numbers_;  // by type and value
  uint64_t next_number_ = 1;
  std::string objects_;
};

}  // namespace

std::string memoryviz_json(const std::vector<VizFrame>& frames) {
  VizBuilder builder;
  // Innermost frame first, so that the freshest view of an object is the one drawn.
  std::vector<std::vector<uint64_t>> ids(frames.size());
  for (size_t k = frames.size(); k-- > 0;)
    for (const auto& local : frames[k].locals) ids[k].push_back(builder.id_of(*local.second));

  std::string out = "[";
  for (size_t k = 0; k < frames.size(); ++k) {
    if (k) out += ",\n";
    out += "{\"type\":\".frame\",\"name\":";
    json::append_string(out, frames[k].name);
    out += ",\"id\":null,\"value\":{";
    for (size_t i = 0; i < frames[k].locals.size(); ++i) {
      if (i) out.push_back(',');
      json::append_string(out, frames[k].locals[i].first);
      out.push_back(':');
      json::append_uint(out, ids[k][i]);
    }
    out += "}}";
  }
  std::string objects = builder.take();
  // Objects are written with a leading ",\n"; without frames the first one must lose it.
  out += frames.empty() && !objects.empty() ? objects.substr(2) : objects;
  out += "]\n";
  return out;
}

StepLookup memoryviz_at(const reader::Recording& recording, uint64_t seq, std::string* document,
                        std::string* error) {
  reader::Timeline timeline(recording);
  while (timeline.next()) {
    if (timeline.type() != reader::ItemType::kEvent || timeline.step().seq < seq) continue;
    const reader::Step& s = timeline.step();
    if (s.seq > seq) break;  // that event could not be decoded
    std::vector<const reader::Frame*> stack;
    if (const reader::ThreadInfo* t = timeline.thread(s.thread))
      for (const reader::Frame& f : t->stack)
        if (&f != s.frame) stack.push_back(&f);
    stack.push_back(s.frame);
    std::vector<VizFrame> frames;
    for (const reader::Frame* f : stack) {
      VizFrame& v = frames.emplace_back();
      v.name = f->code()->qualified_name.empty() ? "?" : f->code()->qualified_name;
      f->for_each_local([&](const std::string& name, const v1::Value& value) { v.locals.emplace_back(name, &value); });
    }
    *document = memoryviz_json(frames);
    return StepLookup::kFound;
  }
  if (!timeline.error().empty()) {
    *error = "step " + std::to_string(seq) + " is not readable: " + timeline.error();
    return StepLookup::kUnreadable;
  }
  *error = "the recording has no step " + std::to_string(seq) + " (it has " + std::to_string(timeline.events_read()) +
           " steps, numbered from 0)";
  return StepLookup::kNoSuchStep;
}

}  // namespace pyrewind::html
