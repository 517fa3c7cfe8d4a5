// Python-like expressions over the recorded locals of one frame: breakpoint conditions
// (`break app.py:12 if i > 10 and name == 'x'`) and `print total / count`.
//
// Grammar (a subset of Python's, with its precedence):
//   or_test:    and_test ('or' and_test)*
//   and_test:   not_test ('and' not_test)*
//   not_test:   'not' not_test | comparison
//   comparison: sum (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not' 'in'|'is'|'is' 'not') sum)*
//   sum:        term (('+'|'-') term)*
//   term:       factor (('*'|'/'|'//'|'%') factor)*
//   factor:     '-' factor | '+' factor | primary
//   primary:    atom ('[' or_test ']' | '.' NAME)*
//   atom:       NAME | NUMBER | STRING | None | True | False | '(' or_test ')' | len '(' or_test ')'
// Values are what was recorded: integers (64-bit arithmetic), floats, strings, bytes and the
// recorded items of containers. What the recording cannot answer (an object's attributes, an
// item past the captured ones, a redacted value) is an error, never a guess.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::replay {

// Looks a name up in the frame; nullptr when it is not bound there.
using NameLookup = std::function<const v1::Value*(const std::string& name)>;

class Expression {
 public:
  // nullptr with `*error` set when `text` does not parse.
  static std::unique_ptr<Expression> parse(const std::string& text, std::string* error);
  ~Expression();

  // The value, or false with `*error` set ("name 'i' is not defined", "division by zero", ...).
  // `*unbound_name` is set when the error is a name that is not bound (yet).
  bool evaluate(const NameLookup& lookup, v1::Value* result, std::string* error, bool* unbound_name = nullptr) const;
  // Python truthiness of the value.
  bool test(const NameLookup& lookup, bool* result, std::string* error, bool* unbound_name = nullptr) const;

  const std::string& text() const { return text_; }

  struct Node;

 private:
  Expression() = default;
  std::unique_ptr<Node> root_;
  std::string text_;
};

// Python truthiness of a recorded value; false with `*error` when it cannot be told
// (an object whose __bool__/__len__ was not recorded, a redacted value).
bool truthy(const v1::Value& value, bool* result, std::string* error);

}  // namespace pyrewind::replay
