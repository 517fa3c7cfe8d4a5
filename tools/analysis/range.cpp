#include "tools/analysis/range.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace pyrewind::analysis {
namespace {

bool all_digits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

bool parse_seq(std::string_view digits, uint64_t* seq) {
  if (!all_digits(digits) || digits.size() > 20) return false;
  const std::string text(digits);
  errno = 0;
  *seq = std::strtoull(text.c_str(), nullptr, 10);
  return errno == 0;
}

bool parse_time(std::string_view text, uint64_t* ns) {
  const size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == 0 || unit_at == std::string_view::npos) return false;  // a number, then a unit
  const std::string number(text.substr(0, unit_at));
  const std::string_view unit = text.substr(unit_at);
  if (number.find('.') != number.rfind('.') || number == ".") return false;
  double scale = 0;
  if (unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else return false;
  const double value = std::strtod(number.c_str(), nullptr) * scale;
  if (!std::isfinite(value) || value >= 1.8e19) return false;
  *ns = static_cast<uint64_t>(std::llround(value));
  return true;
}

}  // namespace

bool parse_position(std::string_view text, Position* position, std::string* error) {
  std::string_view body = text;
  if (!body.empty() && body.front() == '#') {
    if (parse_seq(body.substr(1), &position->value)) {
      position->kind = Position::Kind::kSeq;
      return true;
    }
  } else if (all_digits(body)) {
    if (parse_seq(body, &position->value)) {
      position->kind = Position::Kind::kSeq;
      return true;
    }
  } else {
    if (!body.empty() && body.front() == '+') body.remove_prefix(1);
    if (parse_time(body, &position->value)) {
      position->kind = Position::Kind::kTime;
      return true;
    }
  }
  *error = "'" + std::string(text) +
           "' is neither a time since the start (1.5s, +200ms, 40us, 900ns) nor an event number (#1200)";
  return false;
}

bool Range::parse(const std::string& from, const std::string& to, int64_t thread, Range* range,
                  std::string* error) {
  Range r;
  Position p;
  if (!from.empty()) {
    if (!parse_position(from, &p, error)) return false;
    r.from = p;
  }
  if (!to.empty()) {
    if (!parse_position(to, &p, error)) return false;
    r.to = p;
  }
  if (r.from && r.to && r.from->kind == r.to->kind && r.to->value < r.from->value) {
    *error = "the range is empty: --to " + to + " is before --from " + from;
    return false;
  }
  if (thread >= 0) {
    if (thread > UINT32_MAX) {
      *error = "no thread " + std::to_string(thread);
      return false;
    }
    r.thread = static_cast<uint32_t>(thread);
  }
  *range = r;
  return true;
}

Where Range::locate(uint64_t seq, uint64_t time_ns) const {
  auto value_of = [&](const Position& p) { return p.is_time() ? time_ns : seq; };
  if (from && value_of(*from) < from->value) return Where::kBefore;
  if (to && value_of(*to) > to->value) return Where::kAfter;
  return Where::kInside;
}

}  // namespace pyrewind::analysis
