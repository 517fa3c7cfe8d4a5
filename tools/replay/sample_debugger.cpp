#include "tools/replay/sample_debugger.h"

#include <algorithm>
#include <unordered_map>

namespace pyrewind::replay {

using reader::ItemType;

namespace {

constexpr const char* kNoLocals =
    "A sample records the stack only, no locals: print, locals, watch and history need a trace recording "
    "(pyrewind record).\n";
constexpr const char* kNoConditions =
    "A sample records no locals, so a breakpoint condition cannot be tested: set it without 'if'.\n";

const char* kHelp =
    "Each step is one sample (sample numbers as `export` shows them), all threads in time order.\n"
    "Moving (forward / backward):\n"
    "  step, s          / back, rs        one sample, of any thread\n"
    "  next, n          / rnext           one sample of this thread\n"
    "  return, r        / rreturn         this thread's first sample after / in this run of the function\n"
    "  continue, c      / rcontinue       to the next / previous sample at a breakpoint\n"
    "  goto N | goto T | goto [+-]T       to a sample number (#N too), a time since the start, or from here\n"
    "Stopping (at samples whose stack holds the place, in any frame):\n"
    "  break FILE:LINE                    a line (FILE: a path or its end, e.g. app.py)\n"
    "  break LINE | break FUNCTION        a line of the current file; a function (or C symbol)\n"
    "  break, info break                  list them;  delete N  removes one\n"
    "Looking:\n"
    "  where, bt         the sampled stack, innermost frame first\n"
    "  list, l [N|A,B]   source around the innermost Python frame's line\n"
    "  threads, thread N the sampled threads; switch to one (at this moment)\n"
    "  info              the recording and the position\n"
    "  quit, q\n"
    "A sample has no locals: print, locals, watch and history need a trace recording.\n";

std::string flags_text(bool gil, bool idle) {
  return std::string(gil ? "GIL" : "no GIL") + ", " + (idle ? "idle" : "running");
}

// "hot (/app/app.py:12)"; a C function (sample --native): "PyObject_Call (libpython3.12.so)".
std::string frame_text(const reader::SampleFrame& frame) {
  const reader::CodeInfo& code = *frame.code;
  const std::string name = code.qualified_name.empty() ? "<unknown>" : code.qualified_name;
  if (code.native) return name + " (" + (code.file.empty() ? "<unknown module>" : code.file) + ")";
  const std::string file = code.file.empty() ? "<unknown file>" : code.file;
  return name + " (" + file + (frame.line ? ":" + std::to_string(frame.line) : "") + ")";
}

}  // namespace

SampleDebugger::SampleDebugger(const reader::Recording& recording) : recording_(recording) {
  function_breakpoint_kind_ = "samples in ";
  load();
}

SampleDebugger::~SampleDebugger() = default;

void SampleDebugger::load() {
  timeline_ = std::make_unique<reader::Timeline>(recording_);
  std::unordered_map<std::string, uint32_t> stack_ids;  // key: the frames' code ids and lines
  std::string key;
  std::vector<Sample> in_file_order;
  while (timeline_->next()) {
    if (timeline_->type() != ItemType::kSample) continue;
    const reader::SampleStep& s = timeline_->sample();
    key.clear();
    for (const reader::SampleFrame& f : s.frames) {
      key.append(reinterpret_cast<const char*>(&f.code->id), sizeof f.code->id);
      key.append(reinterpret_cast<const char*>(&f.line), sizeof f.line);
    }
    auto [it, added] = stack_ids.try_emplace(key, static_cast<uint32_t>(stacks_.size()));
    if (added) stacks_.push_back(s.frames);
    in_file_order.push_back({s.index, s.time_ns, s.thread, it->second, s.gil, s.idle});
  }
  // The sampler writes each tick's threads together, but threads of other processes
  // (--subprocesses) may arrive late: order by time, ties in file order.
  samples_ = std::move(in_file_order);
  std::stable_sort(samples_.begin(), samples_.end(),
                   [](const Sample& a, const Sample& b) { return a.time_ns < b.time_ns; });
  position_of_index_.resize(samples_.size());
  for (size_t p = 0; p < samples_.size(); ++p) {
    position_of_index_[samples_[p].index] = p;
    by_thread_[samples_[p].thread].push_back(p);
  }
}

bool SampleDebugger::start() {
  if (!timeline_->error().empty())
    out_ += "The recording is damaged: " + timeline_->error() + " (replaying the " +
            std::to_string(samples_.size()) + " samples before it)\n";
  if (samples_.empty()) {
    out_ += "The recording has no readable sample.\n";
    return false;
  }
  const uint32_t rate = recording_.header().sample_rate_hz();
  out_ += "Sampled recording: " + std::to_string(samples_.size()) + " samples of " +
          std::to_string(by_thread_.size()) + " thread(s)" +
          (rate ? ", " + std::to_string(rate) + " a second per thread" : std::string()) +
          ". A sample has the stack only, no locals.\n";
  move_to(0);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Moving

std::optional<size_t> SampleDebugger::search_forward(const Predicate& pred) const {
  for (size_t p = position_ + 1; p < samples_.size(); ++p)
    if (pred(samples_[p])) return p;
  return std::nullopt;
}

std::optional<size_t> SampleDebugger::search_backward(const Predicate& pred) const {
  for (size_t p = position_; p-- > 0;)
    if (pred(samples_[p])) return p;
  return std::nullopt;
}

std::optional<size_t> SampleDebugger::thread_neighbour(bool forward) const {
  const std::vector<size_t>& mine = by_thread_.at(here().thread);
  const auto it = std::lower_bound(mine.begin(), mine.end(), position_);  // the current one
  if (forward) return it + 1 < mine.end() ? std::optional<size_t>(*(it + 1)) : std::nullopt;
  return it > mine.begin() ? std::optional<size_t>(*(it - 1)) : std::nullopt;
}

void SampleDebugger::move_to(size_t position) {
  position_ = position;
  show_position();
}

void SampleDebugger::cmd_return() {
  // The thread's next sample that no longer runs the current innermost function in this frame.
  const Stack& now = stack_of(here());
  if (now.empty()) {
    out_ += "This sample has no frame to return from.\n";
    return;
  }
  const size_t depth = now.size() - 1;
  const reader::CodeInfo* code = now.front().code;
  const uint32_t thread = here().thread;
  if (auto p = search_forward([&](const Sample& s) { return s.thread == thread && !runs(s, depth, code); })) {
    move_to(*p);
    return;
  }
  out_ += "End of recording: the function is running at the thread's last sample.\n";
}

void SampleDebugger::cmd_rreturn() {
  const Stack& now = stack_of(here());
  if (now.empty()) {
    out_ += "This sample has no frame.\n";
    return;
  }
  const size_t depth = now.size() - 1;
  const reader::CodeInfo* code = now.front().code;
  const std::vector<size_t>& mine = by_thread_.at(here().thread);
  auto it = std::lower_bound(mine.begin(), mine.end(), position_);
  while (it > mine.begin() && runs(samples_[*(it - 1)], depth, code)) --it;
  if (*it == position_) {
    out_ += "This is the thread's first sample in this run of the function.\n";
    return;
  }
  move_to(*it);
}

void SampleDebugger::cmd_continue(bool forward) {
  if (breakpoints_.empty()) {  // as pdb: run to the end (or the start)
    out_ += forward ? "End of recording.\n" : "Start of recording.\n";
    move_to(forward ? samples_.size() - 1 : 0);
    return;
  }
  auto hits = [this](const Sample& s) { return breakpoint_hit(s) != nullptr; };
  if (auto p = forward ? search_forward(hits) : search_backward(hits)) {
    move_to(*p);
    return;
  }
  out_ += forward ? "No breakpoint is hit after this sample (the recording ends at sample " +
                        std::to_string(samples_.back().index) + ").\n"
                  : std::string("No breakpoint is hit before this sample.\n");
}

void SampleDebugger::cmd_goto(const std::string& args) {
  GotoTarget target;
  std::string error;
  if (!parse_goto(args, here().time_ns, &target, &error)) {
    out_ += "Usage: goto N | goto T (since the start: 1.5s, 200ms) | goto +T / -T (from here): " + error + "\n";
    return;
  }
  if (!target.is_time) {
    if (target.value >= samples_.size())
      out_ += "The recording has samples 0 to " + std::to_string(samples_.size() - 1) + ".\n";
    move_to(position_of_index_[std::min<uint64_t>(target.value, samples_.size() - 1)]);
    return;
  }
  // The first sample at or after that time.
  const auto it = std::lower_bound(samples_.begin(), samples_.end(), target.value,
                                   [](const Sample& s, uint64_t t) { return s.time_ns < t; });
  if (it == samples_.end()) {
    out_ += "The recording ends before " + time_text(target.value) + ".\n";
    move_to(samples_.size() - 1);
    return;
  }
  move_to(static_cast<size_t>(it - samples_.begin()));
}

std::optional<size_t> SampleDebugger::sample_of_thread_at(uint32_t thread, uint64_t time_ns) const {
  const auto found = by_thread_.find(thread);
  if (found == by_thread_.end()) return std::nullopt;
  const std::vector<size_t>& mine = found->second;
  const auto after = std::upper_bound(mine.begin(), mine.end(), time_ns,
                                      [this](uint64_t t, size_t p) { return t < samples_[p].time_ns; });
  return after == mine.begin() ? mine.front() : *(after - 1);
}

// ---------------------------------------------------------------------------------------------
// Looking

const reader::SampleFrame* SampleDebugger::python_frame(const Sample& s) const {
  for (const reader::SampleFrame& f : stack_of(s))
    if (!f.code->native) return &f;
  return nullptr;
}

const Session::Breakpoint* SampleDebugger::breakpoint_hit(const Sample& s) const {
  for (const auto& bp : breakpoints_) {
    for (const reader::SampleFrame& f : stack_of(s)) {
      const reader::CodeInfo& code = *f.code;
      if (bp->function.empty() ? !code.native && f.line == bp->line && matches_file(code.file, bp->file)
                               : matches_function(code.qualified_name, bp->function))
        return bp.get();
    }
  }
  return nullptr;
}

std::string SampleDebugger::thread_title(uint32_t thread) const {
  return replay::thread_title(thread, timeline_->thread(thread), recording_.summary());
}

void SampleDebugger::show_position() {
  const Sample& s = here();
  if (const Breakpoint* bp = breakpoint_hit(s)) out_ += "Breakpoint " + std::to_string(bp->number) + "\n";
  const Stack& stack = stack_of(s);
  out_ += "> " + (stack.empty() ? std::string("(no Python frame)") : frame_text(stack.front())) + "\n";
  if (const reader::SampleFrame* f = python_frame(s))
    if (const std::string* text = source_line(f->code->file, f->line)) out_ += "-> " + trim(*text) + "\n";
  out_ += "[sample " + std::to_string(s.index) + " of " + std::to_string(samples_.size()) + ", " +
          time_text(s.time_ns) + ", " + thread_title(s.thread) + ", " + flags_text(s.gil, s.idle) + "]\n";
  reset_listing();
}

void SampleDebugger::cmd_where() {
  const Sample& s = here();
  out_ += "Stack of " + thread_title(s.thread) + " at sample " + std::to_string(s.index) + ", " +
          time_text(s.time_ns) + ", " + flags_text(s.gil, s.idle) + " (innermost first):\n";
  const Stack& stack = stack_of(s);
  if (stack.empty()) out_ += "  (no Python frame)\n";
  for (size_t i = 0; i < stack.size(); ++i) {
    const reader::SampleFrame& f = stack[i];
    out_ += (i == 0 ? "> #" : "  #") + std::to_string(i) + " " + frame_text(f) + "\n";
    if (!f.code->native)
      if (const std::string* text = source_line(f.code->file, f.line)) out_ += "    -> " + trim(*text) + "\n";
  }
}

void SampleDebugger::cmd_threads() {
  const uint64_t now = here().time_ns;
  for (const auto& [thread, positions] : by_thread_) {
    const Sample& first = samples_[positions.front()];
    std::string state;
    if (thread == here().thread) {
      state = "this sample";
    } else if (first.time_ns > now) {
      state = "not sampled yet (first sample at " + time_text(first.time_ns) + ")";
    } else {
      const Sample& then = samples_[*sample_of_thread_at(thread, now)];
      const Stack& stack = stack_of(then);
      state = "sample " + std::to_string(then.index) + " at " +
              (stack.empty() ? std::string("(no Python frame)") : frame_text(stack.front())) + ", " +
              flags_text(then.gil, then.idle);
    }
    uint64_t native_id = 0;
    for (const v1::ThreadSummary& t : recording_.summary().threads())
      if (t.thread() == thread) native_id = t.native_id();
    out_ += std::string(thread == here().thread ? "* " : "  ") + thread_title(thread) + " (native id " +
            std::to_string(native_id) + ", " + std::to_string(positions.size()) + " samples): " + state + "\n";
  }
}

void SampleDebugger::cmd_thread(const std::string& args) {
  uint64_t wanted = 0;
  if (!parse_uint(args, &wanted) || wanted > UINT32_MAX) {
    out_ += "Usage: thread N (threads lists them)\n";
    return;
  }
  const auto thread = static_cast<uint32_t>(wanted);
  if (thread == here().thread) {
    show_position();
    return;
  }
  if (std::optional<size_t> p = sample_of_thread_at(thread, here().time_ns)) {
    move_to(*p);
    return;
  }
  out_ += "No samples of thread " + args + " were recorded (threads lists them).\n";
}

void SampleDebugger::cmd_info(const std::string& args) {
  if (names_breakpoints(args)) {
    cmd_info_break();
    return;
  }
  const v1::RecordingHeader& h = recording_.header();
  std::string argv;
  for (const std::string& a : h.argv()) argv += (argv.empty() ? "" : " ") + a;
  out_ += "Recording: " + recording_.path() + "\n";
  out_ += "Program:   " + argv + " (pid " + std::to_string(h.pid()) + ", Python " + h.python_version() + ")\n";
  out_ += "Mode:      sample, " + std::to_string(h.sample_rate_hz()) +
          " samples a second per thread (stacks only, no locals)\n";
  out_ += "Samples:   " + std::to_string(samples_.size()) + " of " + std::to_string(by_thread_.size()) +
          " thread(s) over " + time_text(recording_.summary().duration_ns()).substr(1) + "\n";
  if (recording_.damaged()) out_ += "Damaged:   " + recording_.damage() + " (replaying what is before it)\n";
  const Sample& s = here();
  out_ += "Position:  sample " + std::to_string(s.index) + ", " + time_text(s.time_ns) + ", " +
          thread_title(s.thread) + "\n";
}

// ---------------------------------------------------------------------------------------------
// Commands

bool SampleDebugger::execute(const std::string& line) {
  const auto [word, args] = split_word(line);
  if (word.empty()) return true;
  const std::string command = command_name(word);
  const reader::SampleFrame* python = python_frame(here());
  const std::string python_file = python ? python->code->file : "";

  if (command == "step" || command == "back") {
    const bool forward = command == "step";
    if (forward ? position_ + 1 < samples_.size() : position_ > 0) {
      move_to(forward ? position_ + 1 : position_ - 1);
    } else if (forward) {
      out_ += "End of recording.\n";
      show_position();
    } else {
      out_ += "Start of recording.\n";
    }
  } else if (command == "next" || command == "rnext") {
    const bool forward = command == "next";
    if (std::optional<size_t> p = thread_neighbour(forward)) {
      move_to(*p);
    } else if (forward) {
      out_ += "End of recording (for this thread).\n";
      show_position();
    } else {
      out_ += "Start of recording (for this thread).\n";
    }
  } else if (command == "return") {
    cmd_return();
  } else if (command == "rreturn") {
    cmd_rreturn();
  } else if (command == "continue" || command == "rcontinue") {
    cmd_continue(command == "continue");
  } else if (command == "break") {
    cmd_break(args, python_file, /*conditions_apply=*/false, kNoConditions);
  } else if (command == "delete") {
    cmd_delete(args);
  } else if (command == "goto") {
    cmd_goto(args);
  } else if (command == "where") {
    cmd_where();
  } else if (command == "locals" || command == "print" || command == "watch" || command == "history") {
    out_ += kNoLocals;
  } else if (command == "list") {
    cmd_list(args, python_file, python ? python->line : 0);
  } else if (command == "threads") {
    cmd_threads();
  } else if (command == "thread") {
    cmd_thread(args);
  } else if (command == "info") {
    cmd_info(args);
  } else if (command == "help") {
    out_ += kHelp;
  } else if (command == "quit") {
    return false;
  } else {
    out_ += "Unknown command '" + word + "' (help lists the commands).\n";
  }
  return true;
}

}  // namespace pyrewind::replay
