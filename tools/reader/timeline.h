// The timeline: a recording's packets in file order, with code objects resolved and, per
// thread, the stack of frames and each frame's complete locals reconstructed from the deltas.
//
//   auto rec = Recording::open(path, &error);
//   Timeline timeline(*rec);
//   while (timeline.next()) {
//     if (timeline.type() != ItemType::kEvent) continue;
//     const Step& s = timeline.step();
//     s.frame->for_each_local([](const std::string& name, const v1::Value& value) { ... });
//   }
//   if (!timeline.error().empty()) ...   // stopped at a corrupt chunk
//
// Reconstruction follows sys.settrace semantics: CALL pushes a frame whose locals are the full
// state given; LINE applies the delta (Binding.slot names via CodeDef.local_name_ids; dict-based
// frames use Binding.name; `unbound` deletes; `full_state` replaces; a container delta,
// Container.reused_items, takes its first items from the binding's previous value, so every
// value returned is complete); RETURN pops. The event's
// `depth` is authoritative: when the reconstructed stack disagrees (records were lost, or the
// timeline started mid-recording) the stack is cut or padded with unknown frames, and frames
// whose locals may be stale report locals_complete() == false until a full state arrives.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pyrewind/v1/replay_index.pb.h"
#include "tools/reader/recording.h"

namespace pyrewind::reader {

// A code object, resolved from its CodeDef and StringDefs.
struct CodeInfo {
  uint64_t id = 0;
  std::string file;            // "" when unknown
  std::string qualified_name;  // "Ledger.add"; "" when unknown
  uint32_t first_line = 0;
  std::vector<std::string> local_names;  // per fast-locals slot
  bool module_level = false;
  bool native = false;         // a C function (sample --native): `file` is its module
  bool known = false;          // its CodeDef was seen
  bool resolved = false;       // every StringDef it names was seen
  bool duplicate_names = false;  // a name in several slots (cell arguments before 3.11)
};

// One reconstructed frame.
class Frame {
 public:
  const CodeInfo* code() const { return code_; }  // never null once on a stack
  uint32_t depth() const { return depth_; }
  uint32_t line() const { return line_; }  // the line of its latest event (0: none yet)
  // False when records of this frame's thread were lost (or the frame was first seen after a
  // gap, or a container delta had no previous value to apply to: its items are then missing)
  // and no full state has arrived since: locals shown may be missing or stale.
  bool locals_complete() const { return complete_; }

  // Calls f(const std::string& name, const v1::Value& value) for every bound local, in order:
  // fast-locals slots in slot order, then dict-based names in insertion order. References are
  // valid until the timeline advances.
  template <class F>
  void for_each_local(F&& f) const;
  size_t local_count() const;  // number of for_each_local calls
  // The value bound to `name`, or nullptr.
  const v1::Value* find_local(const std::string& name) const;

 private:
  friend class Timeline;
  struct Slot {
    bool bound = false;
    v1::Value value;
    std::string fallback_name;  // "<slot N>" when the code does not name the slot
  };
  struct Named {
    std::string name;
    v1::Value value;
    bool bound = false;
  };

  void reset(const CodeInfo* code, uint32_t depth, bool complete);
  void clear_locals();
  void apply(const v1::Binding& binding);
  const std::string& slot_name(size_t slot) const;

  const CodeInfo* code_ = nullptr;
  uint32_t depth_ = 0;
  uint32_t line_ = 0;
  bool complete_ = false;
  std::vector<Slot> slots_;
  std::vector<Named> named_;                       // insertion order; unbound = tombstone
  std::unordered_map<std::string, size_t> named_index_;
  size_t named_live_ = 0;
};

enum class ItemType {
  kEvent, kLoss, kThreadStart, kThreadEnd, kAgentStatus,
  kChunkStart,  // only with stop_at_chunk_starts(): a chunk begins; nothing of it is read yet
  kSample,      // a sampled stack (recordings of mode "sample"); stacks of kEvent are untouched
};

// An event with everything resolved. Pointers are valid until the timeline advances.
struct Step {
  uint64_t seq = 0;        // recording-wide event index, 0-based
  uint64_t time_ns = 0;    // since RecordingHeader.start_monotonic_ns
  uint32_t thread = 0;     // recording thread index
  uint32_t kind = 0;       // pyrewind.v1.EventKind
  const CodeInfo* code = nullptr;  // never null (an unknown code has known == false)
  uint32_t line = 0;
  uint32_t depth = 0;
  // The frame the event belongs to, after applying it; for RETURN the frame being left.
  const Frame* frame = nullptr;
  const v1::Value* return_value = nullptr;       // RETURN with a value (absent when unwinding)
  const v1::ExceptionInfo* exception = nullptr;  // EXCEPTION / EXCEPTION_HANDLED
  const v1::Event* event = nullptr;              // the raw event
};

// A sampled stack with its code objects resolved. Valid until the timeline advances.
struct SampleFrame {
  const CodeInfo* code = nullptr;  // never null (an unknown code has known == false)
  uint32_t line = 0;               // 0: no line
};
struct SampleStep {
  uint64_t index = 0;      // recording-wide sample index, 0-based, in file order
  uint64_t time_ns = 0;    // since RecordingHeader.start_monotonic_ns
  uint32_t thread = 0;
  bool gil = false;
  bool idle = false;
  std::vector<SampleFrame> frames;  // innermost first
};

struct ThreadInfo {
  uint32_t thread = 0;
  uint64_t native_id = 0;
  uint64_t ident = 0;
  uint64_t pid = 0;  // its process when not the recording's (sample --subprocesses)
  std::string name;
  bool started = false;  // a ThreadStart was seen
  bool ended = false;
  // Known frames, outermost first, by increasing depth(). A gap between depths stands for
  // frames that are not known (records lost, or the timeline started mid-recording).
  std::vector<Frame> stack;
};

class Timeline {
 public:
  // From the first chunk, or from entry `start_chunk` of the chunk index (stacks then start
  // empty and are rebuilt as events arrive; each chunk re-states the definitions it uses).
  explicit Timeline(const Recording& recording, size_t start_chunk = 0);
  // From entry `start_chunk` of the chunk index with the state a checkpoint() taken at that
  // chunk's start saved: stacks and locals are complete from the first event on. The
  // checkpoint is untrusted input (a cache file): what does not check out is left out.
  Timeline(const Recording& recording, size_t start_chunk, const v1::Checkpoint& state);
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  // Advances to the next item. False at the end of the readable data or at a corrupt chunk
  // (then error() says why). String/code definitions, and ThreadStarts that only re-state a
  // known thread, are absorbed, not returned.
  bool next();

  // next() also stops where a chunk begins (ItemType::kChunkStart), where checkpoint()
  // saves what a reader starting at that chunk needs.
  void stop_at_chunk_starts(bool stop) { stop_at_chunk_starts_ = stop; }
  // Every thread's stack and locals, with the code objects they use.
  v1::Checkpoint checkpoint() const;

  ItemType type() const { return type_; }
  const Step& step() const { return step_; }                 // kEvent
  const SampleStep& sample() const { return sample_; }       // kSample
  const v1::Packet& packet() const;                          // any item: the raw packet
  const v1::Loss& loss() const { return packet().loss(); }   // kLoss
  const v1::ThreadStart& thread_start() const { return packet().thread_start(); }
  const v1::ThreadEnd& thread_end() const { return packet().thread_end(); }
  const v1::AgentStatus& agent_status() const { return packet().agent_status(); }

  const ThreadInfo* thread(uint32_t index) const;
  const CodeInfo* code(uint64_t id) const;
  const ChunkInfo& chunk() const;  // the chunk of the current item

  const std::string& error() const;
  uint64_t events_read() const { return events_read_; }
  uint64_t samples_read() const { return samples_read_; }
  uint64_t skipped_packets() const;  // packets that failed to parse (their data is lost)

 private:
  ThreadInfo& thread_state(uint32_t index);
  CodeInfo& code_entry(uint64_t id);
  bool resolve(CodeInfo& code, const v1::CodeDef& def);
  void on_code_def(const v1::CodeDef& def);
  void on_event(const v1::Event& event, uint64_t seq);
  void on_sample(const v1::Sample& sample);
  Frame& frame_at(ThreadInfo& t, uint32_t depth, const CodeInfo* code);
  void resolve_pending();
  // Before a chunk whose first seq does not follow the previous chunk's events (the next
  // file of a series after files were deleted, or the next flight-recorder window): the
  // stacks of before the gap are not this one's, and start over as at a chunk start.
  void forget_stacks_after_gap();

  const Recording& recording_;
  ChunkCursor cursor_;
  PacketIterator packets_{nullptr, 0};
  bool in_chunk_ = false;
  ItemType type_ = ItemType::kEvent;
  Step step_;
  SampleStep sample_;
  Frame popped_;
  std::unordered_map<uint64_t, std::string> strings_;
  std::unordered_map<uint64_t, CodeInfo> codes_;
  std::unordered_map<uint64_t, v1::CodeDef> pending_defs_;  // CodeDefs with unresolved names
  std::unordered_map<uint32_t, ThreadInfo> threads_;
  uint64_t events_read_ = 0;
  uint64_t samples_read_ = 0;  // starts at 0 also when the timeline starts mid-recording
  uint64_t skipped_before_ = 0;  // skipped packets of finished chunks
  bool stop_at_chunk_starts_ = false;
  bool chunk_start_returned_ = false;  // kChunkStart returned for the chunk not yet entered
  uint64_t next_seq_ = 0;              // the first seq the next chunk should have
  bool next_seq_known_ = false;
};

// ---------------------------------------------------------------------------------------------

template <class F>
void Frame::for_each_local(F&& f) const {
  if (!code_ || !code_->duplicate_names) {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].bound) f(slot_name(i), slots_[i].value);
  } else {
    // A name held by several slots is shown once, where it first appears, with the value of
    // its last bound slot (what frame.f_locals shows).
    std::unordered_map<std::string, size_t> last;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].bound) last[slot_name(i)] = i;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].bound) continue;
      const std::string& name = slot_name(i);
      auto it = last.find(name);
      if (it == last.end()) continue;
      f(name, slots_[it->second].value);
      last.erase(it);
    }
  }
  for (const Named& n : named_)
    if (n.bound) f(n.name, n.value);
}

}  // namespace pyrewind::reader
