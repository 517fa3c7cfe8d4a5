// The data of a `pyrewind html` page: every step of a range of the recording as compact JSON
// that the page's script turns back into stacks and locals.
//
// Values (a page's own form, unlike the jsonl export's: a float must stay a float and a big
// int must not look like a str once JavaScript has parsed it):
//   None, bool, int (|i| < 2^53), str      null, true/false, a number, a string
//   float                                  {"t":"float","v":"<repr>"}
//   bigger int                             {"t":"int","v":"<decimal>"}, or {"t":"int","bits":N} when cut
//   str cut at the limit                   {"t":"str","v":"<prefix>","n":LEN}
//   bytes                                  {"t":"bytes","v":"<hex>","n":LEN(,"x":1 when cut)}
//   list/tuple/dict/set/frozenset          {"t":KIND,"id":ID,"n":LEN,"v":[items](,"x":1 when cut)};
//                                          dict items flat: key, value, key, value, ...
//   other objects                          {"t":TYPE,"id":ID,"o":1(,"r":"<repr>")}
//   redacted                               {"t":"redacted"}
// Each distinct value is written once, in the "values" table; steps refer to it by index.
//
// A step is an array [seq, t_ns, thread, kind, code, line, keep, push, set(, extra)]:
//   keep   how many frames of the thread's stack, as shown at its previous step, remain
//   push   0 or frames stacked on top of those: [code, depth, complete, [names], [values]]
//   set    0 or changes to kept frames: [index, complete, [[slot, value], ...]] when only values
//          changed, [index, complete, [names], [values]] when the names changed
//   extra  RETURN: the returned value's index; EXCEPTION(_HANDLED): [type, message]
// The stack shown at a step is the thread's stack with the event's frame on top; at a RETURN
// the frame being left is still shown (with its return value), and the next step drops it.
// names index the "names" table, code the "codes" table ([file, qualified name, first line];
// file indexes "files").
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tools/reader/timeline.h"

namespace pyrewind::html {

// Appends `value` in the page's value form.
void append_page_value(std::string& out, const v1::Value& value);

class PageEncoder {
 public:
  // Appends the step's JSON array (no separator). `timeline` supplies the thread's stack.
  void append_step(std::string& out, const reader::Timeline& timeline, const reader::Step& step);

  // After the last step: resolves the codes' names and files (their definitions may have
  // arrived after their first event) and the threads' names.
  void finish(const reader::Timeline& timeline);

  // The tables the steps refer to, as members of a JSON object (no braces):
  // "names":[...],"values":[...],"codes":[...],"threads":[[index, name], ...].
  void append_tables(std::string& out) const;

  // Paths of the files the codes belong to: the "files" table, which the caller writes with
  // their sources.
  const std::vector<std::string>& file_paths() const { return files_; }

 private:
  struct ShownFrame {
    uint64_t code_id = 0;
    uint32_t depth = 0;
    bool complete = true;
    std::vector<uint32_t> names;
    std::vector<uint32_t> values;
  };

  uint32_t intern_name(const std::string& name);
  uint32_t intern_value(const v1::Value& value);
  uint32_t code_index(uint64_t code_id);
  ShownFrame shown(const reader::Frame& frame);
  void append_frame(std::string& out, const ShownFrame& frame);

  std::unordered_map<std::string, uint32_t> name_index_;
  std::vector<const std::string*> names_;
  std::unordered_map<std::string, uint32_t> value_index_;
  std::vector<const std::string*> values_;
  std::unordered_map<uint64_t, uint32_t> code_index_;
  std::vector<uint64_t> codes_;  // code ids in table order
  std::vector<std::string> files_;
  std::string codes_json_;    // set by finish()
  std::string threads_json_;  // set by finish()
  std::unordered_map<uint32_t, std::vector<ShownFrame>> stacks_;  // per thread, as last shown
  std::vector<uint32_t> threads_;  // thread indices in order of appearance
  std::unordered_set<uint32_t> previous_returned_;  // threads whose last step was a RETURN
  std::string scratch_;
};

}  // namespace pyrewind::html
