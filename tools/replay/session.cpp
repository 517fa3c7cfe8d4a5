#include "tools/replay/session.h"

#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "tools/analysis/range.h"

namespace pyrewind::replay {

namespace {

constexpr uint64_t kMaxSourceBytes = 16u << 20;
constexpr uint32_t kListContext = 5;  // lines shown before and after by `list`

}  // namespace

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::pair<std::string, std::string> split_word(const std::string& s) {
  const std::string t = trim(s);
  const size_t space = t.find_first_of(" \t");
  if (space == std::string::npos) return {t, ""};
  return {t.substr(0, space), trim(t.substr(space))};
}

bool parse_uint(const std::string& s, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) return false;
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

bool matches_function(const std::string& qualified, const std::string& wanted) {
  return qualified == wanted || (qualified.size() > wanted.size() &&
                                 qualified.compare(qualified.size() - wanted.size(), wanted.size(), wanted) == 0 &&
                                 qualified[qualified.size() - wanted.size() - 1] == '.');
}

bool matches_file(const std::string& file, const std::string& wanted) {
  return file == wanted || (file.size() > wanted.size() &&
                            file.compare(file.size() - wanted.size(), wanted.size(), wanted) == 0 &&
                            file[file.size() - wanted.size() - 1] == '/');
}

std::string time_text(uint64_t time_ns) {
  char text[40];
  std::snprintf(text, sizeof text, "+%.6fs", static_cast<double>(time_ns) / 1e9);
  return text;
}

std::string thread_title(uint32_t thread, const reader::ThreadInfo* info, const v1::RecordingSummary& summary) {
  std::string title = "thread " + std::to_string(thread);
  std::string name = info ? info->name : "";
  if (name.empty())
    for (const auto& t : summary.threads())
      if (t.thread() == thread) name = t.name();
  if (!name.empty()) title += " \"" + name + "\"";
  return title;
}

std::string command_name(const std::string& word) {
  static const std::unordered_map<std::string, std::string> kNames = {
      {"step", "step"},         {"s", "step"},          {"next", "next"},          {"n", "next"},
      {"return", "return"},     {"r", "return"},        {"continue", "continue"},  {"c", "continue"},
      {"cont", "continue"},     {"back", "back"},       {"rs", "back"},            {"rstep", "back"},
      {"rnext", "rnext"},       {"rn", "rnext"},        {"rreturn", "rreturn"},    {"rr", "rreturn"},
      {"rcontinue", "rcontinue"}, {"rc", "rcontinue"},  {"break", "break"},        {"b", "break"},
      {"watch", "watch"},       {"delete", "delete"},   {"clear", "delete"},       {"goto", "goto"},
      {"g", "goto"},            {"where", "where"},     {"bt", "where"},           {"w", "where"},
      {"locals", "locals"},     {"print", "print"},     {"p", "print"},            {"list", "list"},
      {"l", "list"},            {"threads", "threads"}, {"thread", "thread"},      {"history", "history"},
      {"info", "info"},         {"help", "help"},       {"h", "help"},             {"?", "help"},
      {"quit", "quit"},         {"q", "quit"},          {"exit", "quit"},
  };
  auto it = kNames.find(word);
  return it == kNames.end() ? "" : it->second;
}

bool parse_goto(const std::string& args, uint64_t here_ns, GotoTarget* target, std::string* error) {
  const bool relative = !args.empty() && (args[0] == '+' || args[0] == '-');
  analysis::Position position;
  if (!analysis::parse_position(relative ? args.substr(1) : args, &position, error)) return false;
  if (!relative) {
    *target = {position.is_time(), position.value};
    return true;
  }
  if (!position.is_time()) {
    *error = "'" + args + "': a move from here is a time (+1.5s, -200ms)";
    return false;
  }
  const uint64_t ns = position.value;
  *target = {true, args[0] == '+' ? here_ns + ns : here_ns - std::min(here_ns, ns)};
  return true;
}

std::string Session::take_output() {
  std::string out;
  out.swap(out_);
  return out;
}

void Session::cmd_break(const std::string& args, const std::string& current_file, bool conditions_apply,
                        const char* no_condition_reason) {
  if (args.empty()) {
    cmd_info_break();
    return;
  }
  std::string where = args, condition;
  if (const size_t at = args.find(" if "); at != std::string::npos) {
    where = trim(args.substr(0, at));
    condition = trim(args.substr(at + 4));
  }
  auto bp = std::make_unique<Breakpoint>();
  uint64_t line = 0;
  if (const size_t colon = where.rfind(':'); colon != std::string::npos && parse_uint(where.substr(colon + 1), &line)) {
    bp->file = where.substr(0, colon);
    bp->line = static_cast<uint32_t>(line);
  } else if (parse_uint(where, &line)) {
    bp->file = current_file;
    bp->line = static_cast<uint32_t>(line);
  } else if (!where.empty() && where.find_first_of(" /:") == std::string::npos) {
    bp->function = where;
  } else {
    out_ += "Usage: break FILE:LINE [if EXPR] | break LINE | break FUNCTION\n";
    return;
  }
  if (bp->line == 0 && bp->function.empty()) {
    out_ += "Line numbers start at 1.\n";
    return;
  }
  if (!condition.empty()) {
    if (!conditions_apply) {
      out_ += no_condition_reason;
      return;
    }
    std::string error;
    bp->condition = Expression::parse(condition, &error);
    if (!bp->condition) {
      out_ += "Invalid condition: " + error + "\n";
      return;
    }
  }
  bp->number = next_number_++;
  out_ += "Breakpoint " + std::to_string(bp->number) + " at " +
          (bp->function.empty() ? bp->file + ":" + std::to_string(bp->line) : function_breakpoint_kind_ + bp->function) +
          (bp->condition ? " if " + bp->condition->text() : "") + "\n";
  breakpoints_.push_back(std::move(bp));
}

void Session::cmd_delete(const std::string& args) {
  uint64_t number = 0;
  if (args.empty()) {
    breakpoints_.clear();
    watches_.clear();
    out_ += "Deleted all breakpoints and watches.\n";
    return;
  }
  if (!parse_uint(args, &number)) {
    out_ += "Usage: delete [N]\n";
    return;
  }
  const size_t before = breakpoints_.size() + watches_.size();
  std::erase_if(breakpoints_, [&](const auto& bp) { return static_cast<uint64_t>(bp->number) == number; });
  std::erase_if(watches_, [&](const Watch& w) { return static_cast<uint64_t>(w.number) == number; });
  out_ += before == breakpoints_.size() + watches_.size() ? "No breakpoint or watch " + args + ".\n"
                                                          : "Deleted " + args + ".\n";
}

void Session::cmd_info_break() {
  if (breakpoints_.empty() && watches_.empty()) {
    out_ += "No breakpoints or watches.\n";
    return;
  }
  for (const auto& bp : breakpoints_)
    out_ += "  " + std::to_string(bp->number) + " break " +
            (bp->function.empty() ? bp->file + ":" + std::to_string(bp->line) : bp->function) +
            (bp->condition ? " if " + bp->condition->text() : "") + "\n";
  for (const Watch& w : watches_)
    out_ += "  " + std::to_string(w.number) + " watch " + w.name + " in " + w.function + "\n";
}

bool Session::names_breakpoints(const std::string& args) {
  return args == "break" || args == "breakpoints" || args == "b" || args == "watch";
}

void Session::cmd_list(const std::string& args, const std::string& file, uint32_t line) {
  const std::vector<std::string>* lines = source(file);
  if (!lines) {
    out_ += "Source unavailable: " + (file.empty() ? std::string("<unknown file>") : file) + "\n";
    return;
  }
  uint64_t first = 0, last = 0, center = 0;
  if (const size_t comma = args.find(','); comma != std::string::npos) {
    if (!parse_uint(trim(args.substr(0, comma)), &first) || !parse_uint(trim(args.substr(comma + 1)), &last)) {
      out_ += "Usage: list [LINE | FIRST,LAST]\n";
      return;
    }
  } else if (!args.empty()) {
    if (!parse_uint(args, &center)) {
      out_ += "Usage: list [LINE | FIRST,LAST]\n";
      return;
    }
  } else if (list_next_) {
    first = list_next_;
  } else {
    center = line;
  }
  if (center) {
    first = center > kListContext ? center - kListContext : 1;
    last = center + kListContext;
  } else if (!last) {
    last = first + 2 * kListContext;
  }
  first = std::max<uint64_t>(first, 1);
  last = std::min<uint64_t>(last, lines->size());
  if (first > last) {
    out_ += "(end of file)\n";
    return;
  }
  for (uint64_t n = first; n <= last; ++n) {
    const bool here = n == line;
    bool breakpoint = false;
    for (const auto& bp : breakpoints_)
      breakpoint = breakpoint || (bp->function.empty() && bp->line == n && matches_file(file, bp->file));
    char number[16];
    std::snprintf(number, sizeof number, "%4" PRIu64, n);
    out_ += std::string(number) + (breakpoint ? " B" : "  ") + (here ? "->" : "  ") + " " + (*lines)[n - 1] + "\n";
  }
  list_next_ = static_cast<uint32_t>(last + 1);
}

const std::vector<std::string>* Session::source(const std::string& file) {
  auto [it, inserted] = sources_.try_emplace(file);
  if (inserted) {
    struct stat st {};
    std::ifstream in(file, std::ios::binary);
    if (!file.empty() && file[0] != '<' && in && ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) <= kMaxSourceBytes) {
      auto lines = std::make_unique<std::vector<std::string>>();
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines->push_back(std::move(line));
      }
      it->second = std::move(lines);
    }
  }
  return it->second.get();
}

const std::string* Session::source_line(const std::string& file, uint32_t line) {
  const std::vector<std::string>* lines = source(file);
  if (!lines || line == 0 || line > lines->size()) return nullptr;
  return &(*lines)[line - 1];
}

}  // namespace pyrewind::replay
