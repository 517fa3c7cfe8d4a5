// MemoryViz JSON (the input of the `memory-viz` npm package, University of Toronto) for the
// state of one thread at one step: a ".frame" per stack level, outermost first, mapping each
// local to an object id, then one entry per object.
//
// Objects are numbered 1, 2, 3, ... in the order they are met (innermost frame first): one
// number per recorded id(), so aliases share one box, and one per distinct value for those
// recorded without an id (None, bool, int, float, str, bytes; CPython shares small ints and
// interned strings the same way). MemoryViz has no frozenset: one is drawn as a set. Objects
// of other types are ".class" boxes named after their type, without attributes (they are not
// recorded).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tools/reader/recording.h"

namespace pyrewind::html {

struct VizFrame {
  std::string name;
  std::vector<std::pair<std::string, const v1::Value*>> locals;  // in the frame's order
};

// The MemoryViz document for these frames (outermost first).
std::string memoryviz_json(const std::vector<VizFrame>& frames);

enum class StepLookup { kFound, kNoSuchStep, kUnreadable };

// Reads `recording` up to event `seq` and sets `*document` for its thread's stack at that step
// (at a RETURN, the frame being left is still on it). Otherwise `*error` says why: the
// recording has fewer steps, or it is damaged before that one.
StepLookup memoryviz_at(const reader::Recording& recording, uint64_t seq, std::string* document, std::string* error);

}  // namespace pyrewind::html
