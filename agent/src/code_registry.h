// What the agent knows about each code object, attached to it with co_extra (PEP 523's
// per-code scratch slot): looked up in a few nanoseconds, freed by CPython with the code
// object, so a recycled address never inherits stale metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compat/compat.h"

namespace pyrewind::agent {

struct CodeMeta {
  PyCodeObject* code = nullptr;   // borrowed: the meta dies with its code object
  CodeMeta* next = nullptr;       // registry list, for uninstalling per-code state
  CodeMeta* previous = nullptr;
  bool local_events_set = false;  // sys.monitoring local events enabled on this code
  uint64_t id = 0;
  bool traced = false;        // passes the file filters
  bool fast_locals = false;   // CO_OPTIMIZED: locals in slots, else in a dict
  uint32_t first_line = 0;
  uint64_t file_id = 0;
  uint64_t qualified_name_id = 0;
  std::vector<uint64_t> name_ids;            // per fast-locals slot
  std::vector<compat::LocalKind> kinds;      // per slot
  std::vector<uint8_t> redacted;             // per slot
  bool plain_slots = false;                  // every slot kPlain and none redacted
  std::vector<int32_t> line_by_instruction;  // line cache by code-unit index (monitoring backend)
  // Which slots a line's instructions can write (src/code_registry.cpp, describe_slot_writes()):
  // between two line events only the first event's line ran (compat::
  // kLineEventsMarkEveryLineChange), so only these, the slots written by instructions without
  // a line, and cells and free variables (changed from other frames too) can have been rebound.
  // Unknown (slot_writes_known false): any slot.
  bool slot_writes_known = false;
  uint64_t slots_written_anywhere = 0;  // by instructions without a line; cells and free variables
  int32_t slot_writes_first_line = 0;
  std::vector<uint64_t> slot_writes_by_line;  // index: line - slot_writes_first_line
  // The slots that can have been rebound since a line event at `line`.
  uint64_t slots_written_after(int line) const {
    const size_t index = static_cast<size_t>(static_cast<int64_t>(line) - slot_writes_first_line);
    return slots_written_anywhere | (index < slot_writes_by_line.size() ? slot_writes_by_line[index] : 0);
  }
  // --max-overhead (src/overhead.h): LINE events seen since the last budget check, and whether
  // this code's line events were switched off to stay within the budget.
  uint32_t window_lines = 0;
  bool lines_thinned = false;
};

// Must be called once with the GIL held, after Python is initialised.
bool init_code_registry(std::string* error);

// Before 3.11 (no co_qualname), gives the code objects of functions that already exist their
// qualified names ("Ledger.add"), read from the functions: module-level functions and the
// methods of module-level classes of every imported module. Code first seen while it runs
// would otherwise only have its bare name, since the code that defined it ran before tracing
// began (an attach). GIL held; runs no Python code; bounded.
void register_existing_functions();

// Metadata for `code`, created on first sight. nullptr only if memory ran out.
CodeMeta* code_meta(PyCodeObject* code);

// Applies the agent's (changed) file filters to every CodeMeta (GIL held): those no longer
// traced go to `now_untraced`, those traced now are described and counted.
void refilter_code_metas(std::vector<CodeMeta*>* now_untraced, size_t* now_traced);

// Drops every CodeMeta (GIL held, tracing off): the next session's filters, redaction and
// definitions apply from scratch. Backends must have undone their per-code state first.
void release_code_metas();

// Visits every live CodeMeta (GIL held).
template <typename Visit>
void for_each_code_meta(Visit&& visit);

namespace detail {
CodeMeta* first_code_meta();
}

template <typename Visit>
void for_each_code_meta(Visit&& visit) {
  for (CodeMeta* meta = detail::first_code_meta(); meta; meta = meta->next) visit(*meta);
}

}  // namespace pyrewind::agent
