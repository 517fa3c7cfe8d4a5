#include "tools/analysis/accumulation.h"

#include <algorithm>

namespace pyrewind::analysis {
namespace {

bool matches_file(const std::string& file, const std::string& wanted) {
  return file == wanted || (file.size() > wanted.size() &&
                            file.compare(file.size() - wanted.size(), wanted.size(), wanted) == 0 &&
                            file[file.size() - wanted.size() - 1] == '/');
}

size_t indentation(const std::string& text) {
  size_t n = 0;
  for (char c : text) {
    if (c == ' ') ++n;
    else if (c == '\t') n = (n / 8 + 1) * 8;
    else break;
  }
  return n;
}

bool blank_or_comment(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r");
  return first == std::string::npos || text[first] == '#';
}

}  // namespace

std::optional<uint32_t> block_last_line(const std::vector<std::string>& source, uint32_t line) {
  if (line == 0 || line > source.size()) return std::nullopt;
  const size_t header = indentation(source[line - 1]);
  uint32_t last = line;
  for (size_t n = line + 1; n <= source.size(); ++n) {
    const std::string& text = source[n - 1];
    if (blank_or_comment(text)) continue;
    if (indentation(text) <= header) break;
    last = static_cast<uint32_t>(n);
  }
  return last;
}

AccumulationTable::AccumulationTable(LoopSpec spec, std::optional<uint32_t> body_last_line)
    : spec_(std::move(spec)), body_last_line_(body_last_line) {}

bool AccumulationTable::in_body(uint32_t line) const {
  return !body_last_line_ || (line >= spec_.line && line <= *body_last_line_);
}

void AccumulationTable::add_row(Open& open, const reader::Step& step, bool at_break) {
  open.run.last_seq = step.seq;
  if (open.run.rows.size() >= spec_.max_rows) {
    ++open.run.rows_dropped;
    return;
  }
  LoopRow row;
  row.seq = step.seq;
  row.at_break = at_break;
  step.frame->for_each_local([&](const std::string& name, const v1::Value& value) {
    if (!spec_.names.empty() && std::find(spec_.names.begin(), spec_.names.end(), name) == spec_.names.end()) return;
    row.values.emplace(name, value);
    if (std::find(open.order.begin(), open.order.end(), name) == open.order.end()) open.order.push_back(name);
  });
  open.run.rows.push_back(std::move(row));
}

void AccumulationTable::close(Open& open) {
  if (done_.size() >= spec_.max_runs) {
    ++runs_dropped_;
    return;
  }
  // Column candidates in slot order, merged across runs (a run may bind fewer names).
  for (const std::string& name : open.order)
    if (std::find(order_.begin(), order_.end(), name) == order_.end()) order_.push_back(name);
  done_.push_back(std::move(open.run));
}

std::vector<LoopRun> AccumulationTable::finish() {
  for (auto& [key, open] : open_) close(open);
  open_.clear();
  std::vector<std::string> columns = spec_.names;
  if (columns.empty()) {
    // The locals that change during the loop in any of its runs (bound later, rebound, or
    // mutated); every run shows the same columns.
    for (const std::string& name : order_) {
      bool changes = false;
      for (const LoopRun& run : done_) {
        const v1::Value* first = nullptr;
        for (size_t i = 0; i < run.rows.size() && !changes; ++i) {
          auto it = run.rows[i].values.find(name);
          const v1::Value* value = it == run.rows[i].values.end() ? nullptr : &it->second;
          if (i == 0) first = value;
          else changes = !first || !value || first->SerializeAsString() != value->SerializeAsString();
        }
      }
      if (changes) columns.push_back(name);
    }
  }
  for (LoopRun& run : done_) run.columns = columns;
  return std::move(done_);
}

void AccumulationTable::on_step(const reader::Timeline& timeline) {
  const reader::Step& s = timeline.step();
  // A run is over when its frame is left or replaced: a return at its depth, anything at a
  // shallower depth, or a call at its depth or above.
  for (auto it = open_.lower_bound({s.thread, 0}); it != open_.end() && it->first.first == s.thread;) {
    const uint32_t depth = it->first.second;
    const bool gone = s.depth < depth || (s.depth == depth && s.kind == v1::EVENT_CALL) ||
                      (s.depth == depth && s.kind == v1::EVENT_RETURN) ||
                      (s.depth == depth && s.code->id != it->second.code_id);
    if (gone) {
      close(it->second);
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  if (s.kind != v1::EVENT_LINE) return;
  auto key = std::make_pair(s.thread, s.depth);
  auto it = open_.find(key);
  const bool header = s.line == spec_.line && matches_file(s.code->file, spec_.file);
  if (it != open_.end() && !header && !in_body(s.line)) {
    // Left the loop: by `break` when the header did not run last (it ends every normal exit).
    if (!it->second.last_was_header) add_row(it->second, s, true);
    close(it->second);
    open_.erase(it);
    return;
  }
  if (!header) {
    if (it != open_.end()) it->second.last_was_header = false;
    return;
  }
  if (it == open_.end()) {
    Open open;
    open.depth = s.depth;
    open.code_id = s.code->id;
    open.run.thread = s.thread;
    open.run.function = s.code->qualified_name;
    open.run.file = s.code->file;
    open.run.first_seq = s.seq;
    it = open_.emplace(key, std::move(open)).first;
  }
  add_row(it->second, s, false);
  it->second.last_was_header = true;
}

}  // namespace pyrewind::analysis
