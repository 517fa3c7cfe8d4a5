// Per-OS-thread recording state: the thread's ring writer, its encode buffer, and the shadow
// of its traced frames (what was last recorded for each local, as fingerprints).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compat/compat.h"
#include "src/code_registry.h"
#include "src/values.h"
#include "proto/ring/writer.h"

namespace pyrewind::agent {

class ThreadState;
namespace detail {
// The hot path reads this: initial-exec TLS is a single load, no __tls_get_addr call.
extern __thread ThreadState* t_state __attribute__((tls_model("initial-exec")));
}  // namespace detail

// What the reader holds of a binding whose last recorded value is a container: the base a
// later value of the same container is sent against as a delta (Container.reused_items).
struct ItemsShadow {
  uint64_t items_hash = 0;  // ContainerScan::items_hash of the recorded value
  uint64_t id = 0;          // the container's id()
  uint32_t items = 0;       // items recorded; 0: no base (not a container, or not all recorded)
  uint8_t kind = 0;         // wire::ContainerKind
};

// A fast-locals slot whose binding goes out with the event being recorded (found before the
// event is encoded, so the event knows how large it can get).
struct SlotChange {
  int slot;
  uint32_t scan;  // not plain: index of the value's fingerprint walk in ThreadState::slot_scans
  bool plain;     // unbound, a small int, a float, None or a bool: a binding of known size
  uint64_t fingerprint;
  PyObject* value;
};

// Module-level and class-body frames keep their locals in a dict.
struct DictShadow {
  struct Entry {
    PyObject* key;      // borrowed; identity checked together with the key's hash
    Py_hash_t key_hash;
    uint64_t fingerprint;
    PyObject* value;    // borrowed from the dict while its version is unchanged
    bool seen;          // present in the latest scan
    bool from_dict;     // else a fast-locals slot (inlined comprehension variable)
    bool contents_can_change;  // a container (or, with --repr, any object): re-check it
    bool ignored;       // a __dunder__ name: never recorded
    bool redacted;      // the name matches a redact pattern
    ItemsShadow items;
  };
  std::vector<Entry> entries;
  PyObject* dict = nullptr;   // the namespace scanned last, and its version then
  uint64_t dict_version = 0;
};

struct FrameShadow {
  compat::Frame frame = nullptr;
  CodeMeta* meta = nullptr;
  uint32_t fingerprint_begin = 0;  // into ThreadState::fingerprints
  std::unique_ptr<DictShadow> dict;
  bool full_state_due = false;     // next line event re-sends every local
  int last_line = 0;               // of the frame's last LINE (or CALL) event
  // The next scan of its fast locals visits every slot: at its first event, after an exception,
  // a binding left for a later event or a file-filter change, or when changing_slots is not
  // known.
  bool scan_every_slot = true;
  // Slots whose recorded value can change without the frame storing to them: containers and
  // objects (strs, numbers, None, bools and unbound slots cannot). Scanned at every event,
  // with those the code can have written since the last (CodeMeta::slots_written_after()).
  uint64_t changing_slots = 0;
  std::string pending_exception;   // encoded ExceptionInfo, until handled or left (3.9-3.11)
};

// What --max-overhead measured on this thread since its last budget check (src/overhead.cpp).
struct OverheadWindow {
  static constexpr uint32_t kSamples = 256;
  uint32_t agent_ns[kSamples];    // a timed event's callback
  uint32_t program_ns[kSamples];  // from its end to the thread's next event
  uint32_t samples = 0;
  uint32_t pending_agent = 0;     // the last timed event, until the next event starts
  uint64_t pending_end = 0;
  uint32_t until_sample = 1;
};

class ThreadState {
 public:
  // This thread's state, created (and announced with a ThreadStart) on first use.
  // nullptr if the agent cannot record (memory, forked child, stopped).
  static ThreadState* current() {
    ThreadState* state = detail::t_state;
    return state && !state->closed_ ? state : create_current();
  }
  // This thread's state if it already has one (never creates it).
  static ThreadState* existing() {
    ThreadState* state = detail::t_state;
    return state && !state->closed_ ? state : nullptr;
  }
  // At detach (GIL held): completes every thread's current chunk and retires every state;
  // each thread builds a new one if a later session traces it.
  static void close_all();
  // After a pause (GIL held): every thread forgets its frames, so each frame's next event
  // re-states it in full, at the depth the thread's new stack gives it.
  static void restart_all();
  // After the file filters changed (GIL held): a frame whose line events stopped for a while
  // scans every slot at its next event.
  static void rescan_all();

  ~ThreadState();

  uint32_t index() const { return writer_.writer_id(); }

  // Writes `size` bytes of one Packet from the scratch buffer. `time_base_ns` as in
  // ChunkWriter::append. After a drop, every frame re-sends its full state.
  bool commit(size_t size, uint64_t time_base_ns);

  // Writes the StringDef and CodeDef packets `meta` needs, unless this thread already did.
  bool announce(const CodeMeta& meta) {
    if (meta.id < announced_codes_.size() && announced_codes_[meta.id]) return true;
    return announce_code(meta);
  }

  // An event written in place in the ring chunk (ring::ChunkWriter::in_place_space), so its
  // bytes are never copied; nullptr when the thread holds no chunk.
  uint8_t* in_place_space(size_t* size) { return writer_.in_place_space(size); }
  void commit_in_place(size_t size, uint64_t time_base_ns) { writer_.commit_in_place(size, time_base_ns); }

  uint8_t* scratch() { return scratch_.get(); }
  size_t scratch_size() const { return scratch_size_; }

  std::vector<FrameShadow> stack;
  // Per-slot shadows of the frames on `stack`, the first `slots_used` entries. They never
  // shrink and a pushed frame's entries are not cleared: a frame's first event is a full state,
  // which rewrites every one of its entries.
  std::vector<uint64_t> fingerprints;
  std::vector<ItemsShadow> items_shadows;  // parallel to `fingerprints`
  size_t slots_used = 0;
  std::vector<SlotChange> slot_changes;  // of the event being recorded, in a frame with many locals
  std::vector<ContainerScan> slot_scans;
  // The locals the in-place scan walked before finding that one changed, handed to
  // find_slot_changes() in the same callback so that none is walked twice.
  struct WalkedSlot {
    int slot;
    PyObject* value;
    uint64_t fingerprint;
    ContainerScan scan;
  };
  static constexpr size_t kMaxWalkedSlots = 64;
  std::unique_ptr<WalkedSlot[]> walked;  // kMaxWalkedSlots of them, apart from the hot fields
  size_t walked_count = 0;
  const FrameShadow* walked_frame = nullptr;
  uint64_t last_time_ns = 0;
  uint32_t clock_calls = 0;  // since the TSC clock was last recalibrated on this thread
  uint32_t calls_until_session_check = 1;  // see Agent::checks_session_in_callbacks()
  OverheadWindow overhead;

 private:
  ThreadState(ring::SegmentHeader* segment, uint32_t writer_id, size_t scratch_size);
  static ThreadState* create_current();
  bool announce_code(const CodeMeta& meta);
  bool announce_string(uint64_t id);
  bool write_thread_start();

  ring::ChunkWriter writer_;
  std::unique_ptr<uint8_t[]> scratch_;
  size_t scratch_size_;
  std::vector<uint8_t> announced_strings_;  // by id: 1 once this thread wrote the definition
  std::vector<uint8_t> announced_codes_;
  bool thread_start_due_ = false;
  bool closed_ = false;  // retired by close_all(): never writes again
  ThreadState* previous_ = nullptr;  // registry links (thread_state.cpp)
  ThreadState* next_ = nullptr;
};

}  // namespace pyrewind::agent
