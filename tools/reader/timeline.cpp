#include "tools/reader/timeline.h"

#include <algorithm>
#include <unordered_set>

namespace pyrewind::reader {
namespace {

constexpr uint32_t kMaxSlots = 1u << 16;  // far above any real co_nlocalsplus; guards bad input
constexpr size_t kCompactAfter = 16;      // tombstones tolerated before compacting dict locals

// Stores `incoming` in `current`, the binding's value so far (`bound`: it has one). A container
// delta keeps the first reused_items items of `current`, which must be the same container, and
// appends the items it carries. Returns false when the delta cannot be resolved (no such
// previous value: corrupt input, or a timeline started mid-recording): the container is then
// stored with its kind, id and length but no items, marked truncated.
bool assign_value(v1::Value& current, bool bound, const v1::Value& incoming) {
  if (!incoming.has_container() || incoming.container().reused_items() == 0) {
    current = incoming;
    return true;
  }
  const v1::Container& delta = incoming.container();
  const uint64_t per_item = delta.kind() == v1::CONTAINER_DICT ? 2 : 1;  // dict: key, value
  if (bound && current.has_container()) {
    v1::Container& base = *current.mutable_container();
    const uint64_t held = static_cast<uint64_t>(base.items_size());
    if (base.kind() == delta.kind() && base.id() == delta.id() && delta.reused_items() <= held / per_item) {
      const int keep = static_cast<int>(delta.reused_items() * per_item);
      base.mutable_items()->DeleteSubrange(keep, base.items_size() - keep);
      for (const v1::Value& item : delta.items()) *base.add_items() = item;
      base.set_length(delta.length());
      base.set_truncated(delta.truncated());
      return true;
    }
  }
  current = incoming;
  v1::Container& unresolved = *current.mutable_container();
  unresolved.clear_items();
  unresolved.clear_reused_items();
  unresolved.set_truncated(true);
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Frame

void Frame::reset(const CodeInfo* code, uint32_t depth, bool complete) {
  code_ = code;
  depth_ = depth;
  line_ = 0;
  complete_ = complete;
  clear_locals();
}

void Frame::clear_locals() {
  slots_.clear();
  named_.clear();
  named_index_.clear();
  named_live_ = 0;
}

const std::string& Frame::slot_name(size_t slot) const {
  if (code_ && slot < code_->local_names.size() && !code_->local_names[slot].empty())
    return code_->local_names[slot];
  return slots_[slot].fallback_name;
}

void Frame::apply(const v1::Binding& binding) {
  bool by_name = !binding.name().empty() && (!code_ || !code_->known || code_->module_level);
  if (by_name) {
    auto it = named_index_.find(binding.name());
    if (binding.unbound()) {
      if (it == named_index_.end()) return;
      Named& n = named_[it->second];
      n.bound = false;
      n.value.Clear();
      named_index_.erase(it);
      --named_live_;
      if (named_.size() - named_live_ > kCompactAfter && named_.size() - named_live_ > named_live_) {
        // Drop tombstones; order of the live names is kept.
        std::vector<Named> live;
        live.reserve(named_live_);
        for (Named& m : named_)
          if (m.bound) live.push_back(std::move(m));
        named_ = std::move(live);
        named_index_.clear();
        for (size_t i = 0; i < named_.size(); ++i) named_index_[named_[i].name] = i;
      }
      return;
    }
    if (it != named_index_.end()) {
      // Rebinding keeps the dict position.
      if (!assign_value(named_[it->second].value, true, binding.value())) complete_ = false;
      return;
    }
    named_index_.emplace(binding.name(), named_.size());
    named_.push_back(Named{binding.name(), {}, true});
    if (!assign_value(named_.back().value, false, binding.value())) complete_ = false;
    ++named_live_;
    return;
  }
  uint32_t slot = binding.slot();
  if (slot >= kMaxSlots) return;
  if (slot >= slots_.size()) {
    size_t old = slots_.size();
    slots_.resize(slot + 1);
    for (size_t i = old; i < slots_.size(); ++i)
      if (!code_ || i >= code_->local_names.size()) slots_[i].fallback_name = "<slot " + std::to_string(i) + ">";
  }
  Slot& s = slots_[slot];
  if (binding.unbound()) {
    s.bound = false;
    s.value.Clear();
  } else {
    if (!assign_value(s.value, s.bound, binding.value())) complete_ = false;
    s.bound = true;
  }
}

size_t Frame::local_count() const {
  size_t n = 0;
  for_each_local([&](const std::string&, const v1::Value&) { ++n; });
  return n;
}

const v1::Value* Frame::find_local(const std::string& name) const {
  const v1::Value* found = nullptr;
  for_each_local([&](const std::string& n, const v1::Value& v) {
    if (!found && n == name) found = &v;
  });
  return found;
}

// ---------------------------------------------------------------------------------------------
// Timeline

Timeline::Timeline(const Recording& recording, size_t start_chunk)
    : recording_(recording), cursor_(recording, start_chunk) {}

Timeline::Timeline(const Recording& recording, size_t start_chunk, const v1::Checkpoint& state)
    : recording_(recording), cursor_(recording, start_chunk) {
  for (const v1::CheckpointCode& c : state.codes()) {
    if (c.id() == 0 || static_cast<uint32_t>(c.local_names_size()) > kMaxSlots) continue;
    CodeInfo& code = code_entry(c.id());
    code.file = c.file();
    code.qualified_name = c.qualified_name();
    code.first_line = c.first_line();
    code.local_names.assign(c.local_names().begin(), c.local_names().end());
    code.module_level = c.module_level();
    code.known = c.known();
    code.resolved = c.resolved();
    std::unordered_set<std::string> seen;
    for (const std::string& name : code.local_names)
      if (!name.empty() && !seen.insert(name).second) code.duplicate_names = true;
  }
  for (const v1::CheckpointThread& saved : state.threads()) {
    ThreadInfo& t = thread_state(saved.thread());
    t.native_id = saved.native_id();
    t.ident = saved.ident();
    t.name = saved.name();
    t.started = saved.started();
    t.ended = saved.ended();
    for (const v1::CheckpointFrame& sf : saved.stack()) {
      if (!t.stack.empty() && sf.depth() <= t.stack.back().depth()) break;  // depths must increase
      t.stack.emplace_back();
      Frame& f = t.stack.back();
      f.reset(&code_entry(sf.code_id()), sf.depth(), sf.locals_complete());
      f.line_ = sf.line();
      for (const v1::Binding& b : sf.locals()) f.apply(b);
    }
  }
}

v1::Checkpoint Timeline::checkpoint() const {
  v1::Checkpoint out;
  std::unordered_set<uint64_t> codes;
  for (const auto& [index, t] : threads_) {
    v1::CheckpointThread& saved = *out.add_threads();
    saved.set_thread(index);
    saved.set_native_id(t.native_id);
    saved.set_ident(t.ident);
    saved.set_name(t.name);
    saved.set_started(t.started);
    saved.set_ended(t.ended);
    for (const Frame& f : t.stack) {
      v1::CheckpointFrame& sf = *saved.add_stack();
      sf.set_code_id(f.code()->id);
      sf.set_depth(f.depth());
      sf.set_locals_complete(f.locals_complete());
      sf.set_line(f.line());
      codes.insert(f.code()->id);
      // Slots as slots (names come from the code), dict-based names by name, as recorded.
      for (size_t i = 0; i < f.slots_.size(); ++i) {
        if (!f.slots_[i].bound) continue;
        v1::Binding& b = *sf.add_locals();
        b.set_slot(static_cast<uint32_t>(i));
        *b.mutable_value() = f.slots_[i].value;
      }
      for (const Frame::Named& n : f.named_) {
        if (!n.bound) continue;
        v1::Binding& b = *sf.add_locals();
        b.set_name(n.name);
        *b.mutable_value() = n.value;
      }
    }
  }
  for (uint64_t id : codes) {
    const CodeInfo& code = codes_.at(id);
    v1::CheckpointCode& c = *out.add_codes();
    c.set_id(id);
    c.set_file(code.file);
    c.set_qualified_name(code.qualified_name);
    c.set_first_line(code.first_line);
    for (const std::string& name : code.local_names) c.add_local_names(name);
    c.set_module_level(code.module_level);
    c.set_known(code.known);
    c.set_resolved(code.resolved);
  }
  return out;
}

Timeline::~Timeline() = default;

const v1::Packet& Timeline::packet() const { return packets_.packet(); }
const ChunkInfo& Timeline::chunk() const { return cursor_.info(); }
const std::string& Timeline::error() const { return cursor_.error(); }
uint64_t Timeline::skipped_packets() const { return skipped_before_ + (in_chunk_ ? packets_.skipped_packets() : 0); }

const ThreadInfo* Timeline::thread(uint32_t index) const {
  auto it = threads_.find(index);
  return it == threads_.end() ? nullptr : &it->second;
}

const CodeInfo* Timeline::code(uint64_t id) const {
  auto it = codes_.find(id);
  return it == codes_.end() ? nullptr : &it->second;
}

ThreadInfo& Timeline::thread_state(uint32_t index) {
  auto [it, inserted] = threads_.try_emplace(index);
  if (inserted) it->second.thread = index;
  return it->second;
}

CodeInfo& Timeline::code_entry(uint64_t id) {
  auto [it, inserted] = codes_.try_emplace(id);
  if (inserted) it->second.id = id;
  return it->second;
}

bool Timeline::resolve(CodeInfo& code, const v1::CodeDef& def) {
  bool all = true;
  auto text = [&](uint64_t id, std::string& out) {
    if (id == 0) return;
    auto it = strings_.find(id);
    if (it == strings_.end()) {
      all = false;
      return;
    }
    out = it->second;
  };
  text(def.file_name_id(), code.file);
  text(def.qualified_name_id(), code.qualified_name);
  code.local_names.resize(static_cast<size_t>(std::min<int>(def.local_name_ids_size(), kMaxSlots)));
  for (size_t i = 0; i < code.local_names.size(); ++i) text(def.local_name_ids(static_cast<int>(i)), code.local_names[i]);
  std::unordered_set<std::string> seen;
  code.duplicate_names = false;
  for (const std::string& name : code.local_names)
    if (!name.empty() && !seen.insert(name).second) code.duplicate_names = true;
  code.resolved = all;
  return all;
}

void Timeline::on_code_def(const v1::CodeDef& def) {
  CodeInfo& code = code_entry(def.id());
  if (code.known) return;  // ids are immutable: a restated definition changes nothing
  code.known = true;
  code.first_line = def.first_line();
  code.module_level = def.module_level();
  code.native = def.native();
  if (!resolve(code, def)) pending_defs_[def.id()] = def;
}

void Timeline::resolve_pending() {
  for (auto it = pending_defs_.begin(); it != pending_defs_.end();) {
    if (resolve(code_entry(it->first), it->second))
      it = pending_defs_.erase(it);
    else
      ++it;
  }
}

// The frame at `depth` for an event of `code` other than CALL: frames above it are gone (their
// RETURNs were lost); a missing or different frame there is replaced by a fresh one whose
// locals are not known yet.
Frame& Timeline::frame_at(ThreadInfo& t, uint32_t depth, const CodeInfo* code) {
  while (!t.stack.empty() && t.stack.back().depth() > depth) t.stack.pop_back();
  if (!t.stack.empty() && t.stack.back().depth() == depth) {
    Frame& top = t.stack.back();
    if (top.code() == code) return top;
    top.reset(code, depth, false);
    return top;
  }
  t.stack.emplace_back();
  t.stack.back().reset(code, depth, false);
  return t.stack.back();
}

void Timeline::on_event(const v1::Event& e, uint64_t seq) {
  ThreadInfo& t = thread_state(e.thread());
  CodeInfo& code = code_entry(e.code_id());
  step_ = Step{};
  step_.seq = seq;
  step_.time_ns = e.time_ns();
  step_.thread = e.thread();
  step_.kind = static_cast<uint32_t>(e.kind());
  step_.code = &code;
  step_.line = e.line();
  step_.depth = e.depth();
  step_.event = &e;

  const uint32_t depth = e.depth();
  if (e.kind() == v1::EVENT_CALL) {
    while (!t.stack.empty() && t.stack.back().depth() >= depth) t.stack.pop_back();
    t.stack.emplace_back();
    Frame& f = t.stack.back();
    f.reset(&code, depth, true);
    f.line_ = e.line();
    for (const v1::Binding& b : e.locals()) f.apply(b);
    step_.frame = &f;
    return;
  }
  Frame& f = frame_at(t, depth, &code);
  f.line_ = e.line();
  if (e.full_state()) {
    f.clear_locals();
    f.complete_ = true;
  }
  for (const v1::Binding& b : e.locals()) f.apply(b);
  switch (e.kind()) {
    case v1::EVENT_RETURN:
      if (e.has_value()) step_.return_value = &e.value();
      popped_ = std::move(f);
      t.stack.pop_back();
      step_.frame = &popped_;
      return;
    case v1::EVENT_EXCEPTION:
    case v1::EVENT_EXCEPTION_HANDLED:
      if (e.has_exception()) step_.exception = &e.exception();
      break;
    default:
      break;
  }
  step_.frame = &f;
}

void Timeline::forget_stacks_after_gap() {
  const auto& chunks = recording_.summary().chunks();
  const uint64_t index = cursor_.next_index();
  if (index >= static_cast<uint64_t>(chunks.size())) return;
  const v1::ChunkIndexEntry& entry = chunks[static_cast<int>(index)];
  if (next_seq_known_ && entry.first_seq() != next_seq_)
    for (auto& [thread, t] : threads_) t.stack.clear();
  next_seq_ = entry.first_seq() + entry.event_count();
  next_seq_known_ = true;
}

void Timeline::on_sample(const v1::Sample& s) {
  sample_.index = samples_read_++;
  sample_.time_ns = s.time_ns();
  sample_.thread = s.thread();
  sample_.gil = s.gil();
  sample_.idle = s.idle();
  sample_.frames.resize(static_cast<size_t>(s.code_ids_size()));
  for (int i = 0; i < s.code_ids_size(); ++i)
    sample_.frames[static_cast<size_t>(i)] = {&code_entry(s.code_ids(i)), i < s.lines_size() ? s.lines(i) : 0};
}

bool Timeline::next() {
  for (;;) {
    if (!in_chunk_) {
      if (!chunk_start_returned_) forget_stacks_after_gap();
      if (stop_at_chunk_starts_ && !chunk_start_returned_) {
        chunk_start_returned_ = true;
        type_ = ItemType::kChunkStart;
        return true;
      }
      chunk_start_returned_ = false;
      if (!cursor_.next()) return false;
      packets_.reset(cursor_.data(), cursor_.size());
      in_chunk_ = true;
    }
    if (!packets_.next()) {
      skipped_before_ += packets_.skipped_packets();
      in_chunk_ = false;
      continue;
    }
    const v1::Packet& p = packets_.packet();
    switch (p.body_case()) {
      case v1::Packet::kStringDef:
        if (p.string_def().id() != 0 && strings_.try_emplace(p.string_def().id(), p.string_def().text()).second &&
            !pending_defs_.empty())
          resolve_pending();
        continue;
      case v1::Packet::kCodeDef:
        if (p.code_def().id() != 0) on_code_def(p.code_def());
        continue;
      case v1::Packet::kThreadStart: {
        const v1::ThreadStart& s = p.thread_start();
        ThreadInfo& t = thread_state(s.thread());
        if (t.ended) {  // the index was reused by a new thread
          t.ended = false;
          t.stack.clear();
        } else if (t.started && t.native_id == s.native_id() && t.ident == s.ident() && t.name == s.name() &&
                   t.pid == s.pid()) {
          continue;  // a chunk re-stating a thread already known
        }
        t.started = true;
        t.pid = s.pid();
        t.native_id = s.native_id();
        t.ident = s.ident();
        t.name = s.name();
        type_ = ItemType::kThreadStart;
        return true;
      }
      case v1::Packet::kThreadEnd: {
        ThreadInfo& t = thread_state(p.thread_end().thread());
        t.ended = true;
        t.stack.clear();
        type_ = ItemType::kThreadEnd;
        return true;
      }
      case v1::Packet::kEvent:
        on_event(p.event(), cursor_.info().frame.first_seq + packets_.event_index());
        ++events_read_;
        type_ = ItemType::kEvent;
        return true;
      case v1::Packet::kLoss:
        // Deltas of this thread were dropped: its frames' locals may be stale until a full state.
        for (Frame& f : thread_state(p.loss().thread()).stack) f.complete_ = false;
        type_ = ItemType::kLoss;
        return true;
      case v1::Packet::kAgentStatus:
        type_ = ItemType::kAgentStatus;
        return true;
      case v1::Packet::kSample:
        on_sample(p.sample());
        type_ = ItemType::kSample;
        return true;
      default:
        continue;  // an empty packet or a body this reader does not know
    }
  }
}

}  // namespace pyrewind::reader
