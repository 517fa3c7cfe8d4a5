#include "tools/replay/debugger.h"

#include <algorithm>

#include "tools/reader/json.h"
#include "tools/reader/python_text.h"

namespace pyrewind::replay {

using reader::ItemType;

namespace {

// The local a binding of `code`'s frame names.
const std::string& binding_name(const v1::Binding& b, const reader::CodeInfo* code) {
  static const std::string kNone;
  if (!b.name().empty()) return b.name();
  if (code && b.slot() < code->local_names.size()) return code->local_names[b.slot()];
  return kNone;
}

const char* kHelp =
    "Moving (forward / backward):\n"
    "  step, s          / back, rs        one event of this thread (into calls)\n"
    "  next, n          / rnext           one line in this frame (over calls)\n"
    "  return, r        / rreturn         to this frame's return / to its call\n"
    "  continue, c      / rcontinue       to the next / previous breakpoint or watch\n"
    "  goto SEQ | goto T | goto [+-]T     to a step number (#SEQ too), a time since the start (1.5s, 200ms),\n"
    "                                     or a time from here\n"
    "Stopping:\n"
    "  break FILE:LINE [if EXPR]          at a line (FILE: a path or its end, e.g. app.py)\n"
    "  break LINE | break FUNCTION        a line of the current file; calls of a function\n"
    "  watch NAME                         where NAME changes in frames of the current function\n"
    "  break, info break                  list them;  delete N  removes one\n"
    "Looking:\n"
    "  where, bt         the stack at this step, each frame with its locals\n"
    "  locals            the current frame's locals\n"
    "  print, p EXPR     a Python expression over the locals (a.b is not recorded; a[i], len(a) are)\n"
    "  list, l [N|A,B]   source around the line\n"
    "  threads, thread N the recorded threads; switch to one (at this moment)\n"
    "  history NAME      every value NAME took in this call of the function\n"
    "  info              the recording and the position\n"
    "  quit, q\n";

}  // namespace

Debugger::Debugger(const reader::Recording& recording, const ReplayIndex& index) : recording_(recording), index_(index) {}
Debugger::~Debugger() = default;

bool Debugger::start() {
  if (!seek(0)) {
    out_ += "The recording has no readable step.\n";
    return false;
  }
  show_position(Stop{});
  return true;
}

// ---------------------------------------------------------------------------------------------
// Moving

uint64_t Debugger::first_seq() const {
  for (const v1::ChunkIndexEntry& entry : recording_.summary().chunks())
    if (entry.event_count() > 0) return entry.first_seq();
  return 0;
}

uint64_t Debugger::last_seq() const {
  const auto& chunks = recording_.summary().chunks();
  for (int i = chunks.size(); i-- > 0;)
    if (chunks[i].event_count() > 0) return chunks[i].first_seq() + chunks[i].event_count() - 1;
  return 0;
}

bool Debugger::seek(uint64_t seq) {
  auto timeline = index_.timeline_at(index_.chunk_of_seq(seq));
  std::optional<uint64_t> last;
  while (timeline->next()) {
    if (timeline->type() != ItemType::kEvent) continue;
    if (timeline->step().seq >= seq) {
      timeline_ = std::move(timeline);
      return true;
    }
    last = timeline->step().seq;
  }
  if (last) return seek(*last);  // past the end: the last step
  return false;
}

bool Debugger::forward(const Predicate& pred, const ChunkFilter& may_stop) {
  const uint64_t origin = step().seq;
  const uint32_t thread = step().thread;
  std::optional<uint64_t> last_of_thread;
  bool found = false;
  timeline_->stop_at_chunk_starts(static_cast<bool>(may_stop));
  while (timeline_->next()) {
    if (timeline_->type() == ItemType::kChunkStart) {
      // Jump over the chunks where nothing can stop.
      const size_t next = timeline_->chunk().index + 1;
      size_t target = next;
      while (target < index_.chunk_count() && !may_stop(target)) ++target;
      if (target >= index_.chunk_count()) break;
      if (target != next) {
        timeline_ = index_.timeline_at(target);
        timeline_->stop_at_chunk_starts(true);
        timeline_->next();  // its own chunk start
      }
      continue;
    }
    if (timeline_->type() != ItemType::kEvent) continue;
    if (pred(*timeline_)) {
      found = true;
      break;
    }
    if (timeline_->step().thread == thread) last_of_thread = timeline_->step().seq;
  }
  timeline_->stop_at_chunk_starts(false);
  if (found) return true;
  if (!timeline_->error().empty()) out_ += "The recording is damaged here: " + timeline_->error() + "\n";
  seek(may_stop ? origin : last_of_thread.value_or(origin));
  return false;
}

void Debugger::for_each_step_in_chunk(size_t chunk, const std::function<bool(const reader::Timeline&)>& f) const {
  auto timeline = index_.timeline_at(chunk);
  timeline->stop_at_chunk_starts(true);
  bool in_chunk = false;
  while (timeline->next()) {
    if (timeline->type() == ItemType::kChunkStart) {
      if (in_chunk) return;  // the next chunk: this one is done
      in_chunk = true;
    } else if (timeline->type() == ItemType::kEvent && !f(*timeline)) {
      return;
    }
  }
}

std::optional<uint64_t> Debugger::backward(const Predicate& pred, const ChunkFilter& may_stop) {
  const uint64_t before = step().seq;
  for (size_t chunk = index_.chunk_of_seq(before) + 1; chunk-- > 0;) {
    if (may_stop && !may_stop(chunk)) continue;
    std::optional<uint64_t> found;
    for_each_step_in_chunk(chunk, [&](const reader::Timeline& t) {
      if (t.step().seq >= before) return false;
      if (pred(t)) found = t.step().seq;
      return true;
    });
    if (found) return found;
  }
  return std::nullopt;
}

bool Debugger::chunk_may_stop(size_t chunk) const {
  for (const v1::CodeInChunk& code : index_.contents(chunk).codes()) {
    for (const Watch& w : watches_)
      if (code.code_id() == w.code_id && !code.lines().empty()) return true;
    const v1::IndexedCode* named = index_.code(code.code_id());
    if (!named) continue;  // never resolved: no breakpoint can name it
    for (const auto& bp : breakpoints_) {
      if (!bp->function.empty()) {
        if (code.called() && matches_function(named->qualified_name(), bp->function)) return true;
      } else if (matches_file(named->file(), bp->file) &&
                 std::binary_search(code.lines().begin(), code.lines().end(), bp->line)) {
        return true;
      }
    }
  }
  return false;
}

std::optional<uint64_t> Debugger::step_of_thread_at(uint32_t thread, uint64_t time_ns) const {
  const auto& chunks = recording_.summary().chunks();
  auto has_thread = [&](size_t chunk) {
    const auto& threads = index_.contents(chunk).threads();
    return std::binary_search(threads.begin(), threads.end(), thread);
  };
  // Chunks hold what was drained together, so their time ranges are nearly in file order:
  // going back from the last chunk that starts by then, a chunk that ends before the best
  // event found is older than it, and two in a row end the search.
  std::optional<uint64_t> best;
  uint64_t best_time = 0;
  int older = 0;
  for (size_t chunk = index_.chunk_count(); chunk-- > 0;) {
    const v1::ChunkIndexEntry& entry = chunks[static_cast<int>(chunk)];
    if (entry.first_time_ns() > time_ns) continue;
    if (best && entry.last_time_ns() < best_time) {
      if (++older == 2) break;
      continue;
    }
    older = 0;
    if (!has_thread(chunk)) continue;
    for_each_step_in_chunk(chunk, [&](const reader::Timeline& t) {
      const reader::Step& s = t.step();
      if (s.thread == thread && s.time_ns <= time_ns && (!best || s.time_ns >= best_time)) {
        best = s.seq;
        best_time = s.time_ns;
      }
      return true;
    });
  }
  if (best) return best;
  // Not started yet then: its first step.
  for (size_t chunk = index_.chunk_of_time(time_ns); chunk < index_.chunk_count(); ++chunk) {
    if (!has_thread(chunk)) continue;
    auto timeline = index_.timeline_at(chunk);
    while (timeline->next())
      if (timeline->type() == ItemType::kEvent && timeline->step().thread == thread) return timeline->step().seq;
  }
  return std::nullopt;
}

void Debugger::continue_forward() {
  if (breakpoints_.empty() && watches_.empty()) {  // as pdb: run to the end
    seek(last_seq());
    out_ += "End of recording.\n";
    show_position(Stop{});
    return;
  }
  if (forward([this](const reader::Timeline& t) { return hits_stop(t, nullptr); },
              [this](size_t chunk) { return chunk_may_stop(chunk); })) {
    Stop stop;
    hits_stop(*timeline_, &stop);
    show_position(stop);
    return;
  }
  out_ += "No breakpoint or watch is hit after this step (the recording ends at step " +
          std::to_string(last_seq()) + ").\n";
}

void Debugger::continue_backward() {
  if (breakpoints_.empty() && watches_.empty()) {
    seek(0);
    out_ += "Start of recording.\n";
    show_position(Stop{});
    return;
  }
  std::optional<uint64_t> found = backward([this](const reader::Timeline& t) { return hits_stop(t, nullptr); },
                                           [this](size_t chunk) { return chunk_may_stop(chunk); });
  if (!found) {
    out_ += "No breakpoint or watch is hit before this step.\n";
    return;
  }
  seek(*found);
  Stop stop;
  hits_stop(*timeline_, &stop);
  show_position(stop);
}

void Debugger::move_forward(const Predicate& pred, const char* end_message) {
  if (forward(pred)) {
    Stop stop;
    hits_stop(*timeline_, &stop);
    show_position(stop);
    return;
  }
  out_ += end_message;
  show_position(Stop{});
}

void Debugger::move_backward(const Predicate& pred, const char* start_message) {
  std::optional<uint64_t> found = backward(pred);
  if (!found) {
    out_ += start_message;
    return;
  }
  seek(*found);
  Stop stop;
  hits_stop(*timeline_, &stop);
  show_position(stop);
}

bool Debugger::hits_stop(const reader::Timeline& timeline, Stop* stop) {
  const reader::Step& s = timeline.step();
  for (const auto& bp : breakpoints_) {
    if (bp->function.empty()) {
      if (s.kind != v1::EVENT_LINE || s.line != bp->line || !matches_file(s.code->file, bp->file)) continue;
    } else if (s.kind != v1::EVENT_CALL || !matches_function(s.code->qualified_name, bp->function)) {
      continue;
    }
    if (bp->condition) {
      bool result = false, unbound = false;
      std::string error;
      const reader::Frame* frame = s.frame;
      auto lookup = [frame](const std::string& name) { return frame->find_local(name); };
      if (!bp->condition->test(lookup, &result, &error, &unbound)) {
        if (unbound) continue;  // not bound yet at this step: the condition does not hold
        if (stop) {
          stop->breakpoint = bp.get();
          stop->condition_error = error;
        }
        return true;
      }
      if (!result) continue;
    }
    if (stop) stop->breakpoint = bp.get();
    return true;
  }
  if (s.kind == v1::EVENT_CALL || s.event->full_state()) return false;
  for (const Watch& w : watches_) {
    if (s.code->id != w.code_id) continue;
    for (const v1::Binding& b : s.event->locals()) {
      if (binding_name(b, s.code) == w.name) {
        if (stop) stop->watch = &w;
        return true;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Showing

std::string Debugger::thread_title(uint32_t thread) const {
  return replay::thread_title(thread, timeline_ ? timeline_->thread(thread) : nullptr, recording_.summary());
}

std::string Debugger::frame_title(const reader::Frame& frame, uint32_t line) const {
  const reader::CodeInfo* code = frame.code();
  const std::string file = code->file.empty() ? "<unknown file>" : code->file;
  const std::string name = code->qualified_name.empty() ? "<unknown>" : code->qualified_name;
  return file + "(" + std::to_string(line) + ")" + name + "()";
}

void Debugger::show_position(const Stop& stop) {
  const reader::Step& s = step();
  if (stop.breakpoint) {
    out_ += "Breakpoint " + std::to_string(stop.breakpoint->number);
    if (!stop.condition_error.empty())
      out_ += " (its condition failed: " + stop.condition_error + ")";
    out_ += "\n";
  }
  if (stop.watch) {
    const v1::Value* value = s.frame->find_local(stop.watch->name);
    out_ += "Watch " + std::to_string(stop.watch->number) + ": " + stop.watch->name + " = " +
            (value ? reader::python_repr(*value) : "<unbound>") + "\n";
  }
  std::string title = frame_title(*s.frame, s.line);
  switch (s.kind) {
    case v1::EVENT_CALL:
      out_ += "--Call--\n";
      break;
    case v1::EVENT_RETURN:
      out_ += "--Return--\n";
      title += "->" + (s.return_value ? reader::python_repr(*s.return_value) : std::string("(unwinding)"));
      break;
    case v1::EVENT_EXCEPTION:
    case v1::EVENT_EXCEPTION_HANDLED:
      out_ += s.kind == v1::EVENT_EXCEPTION ? "--Exception-- " : "--Exception handled-- ";
      if (s.exception)
        out_ += s.exception->type_name() + (s.exception->message().empty() ? "" : ": " + s.exception->message());
      out_ += "\n";
      break;
    default:
      break;
  }
  out_ += "> " + title + "\n";
  if (const std::string* text = source_line(s.code->file, s.line)) out_ += "-> " + trim(*text) + "\n";
  out_ += "[step " + std::to_string(s.seq) + " of " + std::to_string(last_seq() + 1) + ", " +
          time_text(s.time_ns) + ", " + thread_title(s.thread) + "]\n";
  reset_listing();
}

void Debugger::show_frame_locals(const reader::Frame& frame, const std::string& indent) {
  if (recording_.header().locals_omitted()) {
    out_ += indent + "(recorded without locals)\n";
    return;
  }
  frame.for_each_local([&](const std::string& name, const v1::Value& value) {
    out_ += indent + name + " = " + reader::python_repr(value) + "\n";
  });
  if (!frame.locals_complete()) out_ += indent + "(records of this thread were lost: locals may be stale)\n";
}

// ---------------------------------------------------------------------------------------------
// Commands

bool Debugger::execute(const std::string& line) {
  const auto [word, args] = split_word(line);
  if (word.empty()) return true;
  const std::string command = command_name(word);
  const reader::Step& s = step();
  const uint32_t thread = s.thread;
  const int64_t depth = s.depth;

  // Steps of this thread no deeper than `limit` (-1: any).
  auto within = [thread](int64_t limit) {
    return [=](const reader::Timeline& t) {
      return t.step().thread == thread && (limit < 0 || static_cast<int64_t>(t.step().depth) <= limit);
    };
  };
  // The `kind` event (CALL or RETURN) of the frame at `frame`, or its caller's step if it is gone.
  auto frame_edge = [thread](int64_t frame, v1::EventKind kind) {
    return [=](const reader::Timeline& t) {
      const int64_t d = t.step().depth;
      return t.step().thread == thread && ((d == frame && t.step().kind == static_cast<uint32_t>(kind)) || d < frame);
    };
  };
  // After a return (forward) or at a call (backward) the step's own frame is not the one to stay in.
  const int64_t forward_frame = s.kind == v1::EVENT_RETURN ? depth - 1 : depth;
  const int64_t backward_frame = s.kind == v1::EVENT_CALL ? depth - 1 : depth;

  if (command == "step") {
    move_forward(within(-1), "End of recording.\n");
  } else if (command == "next") {
    move_forward(within(forward_frame), "End of recording.\n");
  } else if (command == "return") {
    move_forward(frame_edge(forward_frame, v1::EVENT_RETURN), "End of recording.\n");
  } else if (command == "continue") {
    continue_forward();
  } else if (command == "back") {
    move_backward(within(-1), "Start of recording.\n");
  } else if (command == "rnext") {
    move_backward(within(backward_frame), "Start of recording.\n");
  } else if (command == "rreturn") {
    move_backward(frame_edge(backward_frame, v1::EVENT_CALL), "Start of recording.\n");
  } else if (command == "rcontinue") {
    continue_backward();
  } else if (command == "break") {
    cmd_break(args, step().code->file, /*conditions_apply=*/true);
  } else if (command == "watch") {
    cmd_watch(args);
  } else if (command == "delete") {
    cmd_delete(args);
  } else if (command == "goto") {
    cmd_goto(args);
  } else if (command == "where") {
    cmd_where();
  } else if (command == "locals") {
    cmd_locals();
  } else if (command == "print") {
    cmd_print(args);
  } else if (command == "list") {
    cmd_list(args, step().code->file, step().line);
  } else if (command == "threads") {
    cmd_threads();
  } else if (command == "thread") {
    cmd_thread(args);
  } else if (command == "history") {
    cmd_history(args);
  } else if (command == "info") {
    cmd_info(args);
  } else if (command == "help") {
    cmd_help();
  } else if (command == "quit") {
    return false;
  } else {
    out_ += "Unknown command '" + word + "' (help lists the commands).\n";
  }
  return true;
}

void Debugger::cmd_watch(const std::string& args) {
  if (args.empty() || args.find_first_of(" .[") != std::string::npos) {
    out_ += "Usage: watch NAME (a local of the current function)\n";
    return;
  }
  const reader::CodeInfo* code = step().code;
  Watch w;
  w.number = next_number_++;
  w.name = args;
  w.code_id = code->id;
  w.function = code->qualified_name;
  const v1::Value* now = current_frame()->find_local(args);
  out_ += "Watch " + std::to_string(w.number) + ": " + args + " in " +
          (w.function.empty() ? std::string("<unknown>") : w.function) +
          (now ? " (now " + reader::python_repr(*now) + ")" : " (not bound at this step)") + "\n";
  watches_.push_back(std::move(w));
}

void Debugger::cmd_goto(const std::string& args) {
  GotoTarget target;
  std::string error;
  if (!parse_goto(args, step().time_ns, &target, &error)) {
    out_ += "Usage: goto SEQ | goto T (since the start: 1.5s, 200ms) | goto +T / -T (from here): " + error + "\n";
    return;
  }
  if (!target.is_time) {
    const uint64_t seq = target.value;
    if (seq < first_seq() || seq > last_seq())
      out_ += "The recording has steps " + std::to_string(first_seq()) + " to " + std::to_string(last_seq()) + ".\n";
    seek(std::clamp(seq, first_seq(), last_seq()));
    show_position(Stop{});
    return;
  }
  const uint64_t time_ns = target.value;
  // The first step at or after that time, read from the chunk that holds it.
  auto timeline = index_.timeline_at(index_.chunk_of_time(time_ns));
  std::optional<uint64_t> last;
  while (timeline->next()) {
    if (timeline->type() != ItemType::kEvent) continue;
    if (timeline->step().time_ns >= time_ns) {
      timeline_ = std::move(timeline);
      show_position(Stop{});
      return;
    }
    last = timeline->step().seq;
  }
  out_ += "The recording ends before " + time_text(time_ns) + ".\n";
  if (last) seek(*last);
  show_position(Stop{});
}

void Debugger::cmd_where() {
  const reader::Step& s = step();
  const reader::ThreadInfo* info = timeline_->thread(s.thread);
  std::vector<const reader::Frame*> frames;
  if (info)
    for (const reader::Frame& f : info->stack) frames.push_back(&f);
  if (s.kind == v1::EVENT_RETURN) frames.push_back(s.frame);  // the frame being left
  out_ += "Stack of " + thread_title(s.thread) + " at step " + std::to_string(s.seq) + " (most recent call last):\n";
  int64_t expected_depth = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const reader::Frame& f = *frames[i];
    if (static_cast<int64_t>(f.depth()) > expected_depth)
      out_ += "  ... " + std::to_string(f.depth() - expected_depth) + " frame(s) not recorded\n";
    expected_depth = f.depth() + 1;
    const bool current = i + 1 == frames.size();
    out_ += (current ? "> " : "  ") + frame_title(f, f.line()) + "\n";
    if (const std::string* text = source_line(f.code()->file, f.line())) out_ += "    -> " + trim(*text) + "\n";
    show_frame_locals(f, "      ");
  }
}

void Debugger::cmd_locals() {
  const reader::Frame* frame = current_frame();
  if (frame->local_count() == 0 && !recording_.header().locals_omitted()) {
    out_ += "(no locals)\n";
    return;
  }
  show_frame_locals(*frame, "");
}

void Debugger::cmd_print(const std::string& args) {
  if (args.empty()) {
    out_ += "Usage: print EXPR\n";
    return;
  }
  std::string error;
  auto expression = Expression::parse(args, &error);
  if (!expression) {
    out_ += "*** SyntaxError: " + error + "\n";
    return;
  }
  const reader::Frame* frame = current_frame();
  v1::Value value;
  auto lookup = [frame](const std::string& name) { return frame->find_local(name); };
  if (!expression->evaluate(lookup, &value, &error)) {
    out_ += "*** " + error + "\n";
    return;
  }
  out_ += reader::python_repr(value) + "\n";
}

void Debugger::cmd_threads() {
  const uint64_t now = step().time_ns;
  for (const v1::ThreadSummary& t : recording_.summary().threads()) {
    std::string state;
    if (t.thread() == step().thread) {
      state = "at " + frame_title(*current_frame(), step().line);
    } else if (t.first_time_ns() > now) {
      state = "not started yet";
    } else if (t.last_time_ns() < now && t.thread() != step().thread) {
      state = "done (last step at " + time_text(t.last_time_ns()) + ")";
    } else if (std::optional<uint64_t> seq = step_of_thread_at(t.thread(), now)) {
      // Where it was then: its latest step, read from the chunk that holds it.
      auto timeline = index_.timeline_at(index_.chunk_of_seq(*seq));
      while (timeline->next()) {
        if (timeline->type() != ItemType::kEvent || timeline->step().seq < *seq) continue;
        const reader::Step& s = timeline->step();
        state = (s.kind == v1::EVENT_RETURN ? "returning from " : "at ") + frame_title(*s.frame, s.line);
        break;
      }
    }
    out_ += std::string(t.thread() == step().thread ? "* " : "  ") + thread_title(t.thread()) +
            " (native id " + std::to_string(t.native_id()) + ", " + std::to_string(t.events()) + " steps): " + state +
            "\n";
  }
}

void Debugger::cmd_thread(const std::string& args) {
  uint64_t wanted = 0;
  if (!parse_uint(args, &wanted)) {
    out_ += "Usage: thread N (threads lists them)\n";
    return;
  }
  const auto thread = static_cast<uint32_t>(wanted);
  if (step().thread == thread) {
    show_position(Stop{});
    return;
  }
  if (std::optional<uint64_t> seq = step_of_thread_at(thread, step().time_ns)) {
    seek(*seq);
    show_position(Stop{});
    return;
  }
  out_ += "No steps of thread " + args + " were recorded (threads lists them).\n";
}

void Debugger::cmd_history(const std::string& args) {
  if (args.empty() || args.find_first_of(" .[") != std::string::npos) {
    out_ += "Usage: history NAME\n";
    return;
  }
  const reader::Step& s = step();
  const uint32_t thread = s.thread;
  const int64_t depth = s.depth;
  const uint64_t here = s.seq;
  const std::string function = s.code->qualified_name;
  // This call of the function: from its CALL (or the first step after the caller's) on.
  uint64_t first = here;
  if (s.kind != v1::EVENT_CALL) {
    std::optional<uint64_t> call = backward([=](const reader::Timeline& t) {
      const int64_t d = t.step().depth;
      return t.step().thread == thread && ((d == depth && t.step().kind == v1::EVENT_CALL) || d < depth);
    });
    first = call.value_or(0);
  }
  auto timeline = index_.timeline_at(index_.chunk_of_seq(first));
  std::string previous;  // serialized value ("" = unbound)
  bool started = false;
  std::vector<std::string> rows;
  size_t current_row = SIZE_MAX;
  while (timeline->next()) {
    if (timeline->type() != ItemType::kEvent) continue;
    const reader::Step& t = timeline->step();
    if (t.seq < first || t.thread != thread) continue;
    const int64_t d = t.depth;
    if (d < depth) {
      if (started) break;  // the frame is gone
      continue;            // the caller's step before the call
    }
    if (d > depth) continue;
    if (started && t.kind == v1::EVENT_CALL && t.seq != first) break;  // a later call at this depth
    started = true;
    const v1::Value* value = t.frame->find_local(args);
    const std::string now = value ? value->SerializeAsString() + "\x01" : "";
    if (now != previous) {
      rows.push_back("step " + std::to_string(t.seq) + " line " + std::to_string(t.line) + ": " + args + " = " +
                     (value ? reader::python_repr(*value) : "<unbound>"));
      previous = now;
    }
    if (t.seq <= here) current_row = rows.empty() ? SIZE_MAX : rows.size() - 1;
    if (t.kind == v1::EVENT_RETURN) break;
  }
  if (rows.empty() || (rows.size() == 1 && previous.empty())) {
    out_ += "'" + args + "' is never bound in this call of " + function + ".\n";
    return;
  }
  out_ += "History of " + args + " in this call of " + (function.empty() ? "<unknown>" : function) + ":\n";
  for (size_t i = 0; i < rows.size(); ++i) out_ += (i == current_row ? "> " : "  ") + rows[i] + "\n";
}

void Debugger::cmd_info(const std::string& args) {
  if (names_breakpoints(args)) {
    cmd_info_break();
    return;
  }
  const v1::RecordingHeader& h = recording_.header();
  const v1::RecordingSummary& sum = recording_.summary();
  std::string argv;
  for (const std::string& a : h.argv()) argv += (argv.empty() ? "" : " ") + a;
  out_ += "Recording: " + recording_.path() + "\n";
  out_ += "Program:   " + argv + " (pid " + std::to_string(h.pid()) + ", Python " + h.python_version() + ")\n";
  out_ += "Steps:     " + std::to_string(sum.event_count()) + " in " + std::to_string(sum.threads_size()) +
          " thread(s) over " + time_text(sum.duration_ns()).substr(1) + "\n";
  if (recording_.damaged()) out_ += "Damaged:   " + recording_.damage() + " (replaying what is before it)\n";
  out_ += "Position:  step " + std::to_string(step().seq) + ", " + time_text(step().time_ns) + ", " +
          thread_title(step().thread) + "\n";
}

void Debugger::cmd_help() { out_ += kHelp; }

}  // namespace pyrewind::replay
