// Expressions over recorded values: Python's answers where the recording can give them, and a
// clear error where it cannot.
#include <gtest/gtest.h>

#include <map>

#include "tools/reader/python_text.h"
#include "tools/reader/test_util.h"
#include "tools/replay/expr.h"

namespace pyrewind::replay {
namespace {

using namespace pyrewind::testing;

class ExprTest : public ::testing::Test {
 protected:
  void SetUp() override {
    locals_["i"] = integer(12);
    locals_["n"] = integer(-7);
    locals_["x"] = real(2.5);
    locals_["name"] = text("x");
    locals_["word"] = text("h\u00e9llo");
    locals_["word"].mutable_str_value()->set_length(5);  // code points, as the agent records
    locals_["items"] = list(100, {integer(1), integer(2), text("three")});
    locals_["cut"] = list(101, {integer(1), integer(2)}, 10);
    locals_["table"] = dict(102, {{text("a"), integer(1)}, {text("b"), list(103, {})}});
    locals_["obj"] = object("Widget", 104);
    locals_["secret"] = redacted();
    locals_["nothing"] = none();
    locals_["flag"] = boolean(true);
  }

  std::string eval(const std::string& text) {
    std::string error;
    auto e = Expression::parse(text, &error);
    if (!e) return "syntax: " + error;
    v1::Value value;
    bool unbound = false;
    if (!e->evaluate([this](const std::string& name) -> const v1::Value* {
          auto it = locals_.find(name);
          return it == locals_.end() ? nullptr : &it->second;
        }, &value, &error, &unbound))
      return std::string(unbound ? "unbound: " : "error: ") + error;
    return reader::python_repr(value);
  }

  std::map<std::string, v1::Value> locals_;
};

TEST_F(ExprTest, ArithmeticFollowsPython) {
  EXPECT_EQ(eval("i + 1"), "13");
  EXPECT_EQ(eval("i * n - 3"), "-87");
  EXPECT_EQ(eval("n // 2"), "-4");  // floors
  EXPECT_EQ(eval("n % 5"), "3");    // the divisor's sign
  EXPECT_EQ(eval("i / 8"), "1.5");
  EXPECT_EQ(eval("x * 2"), "5.0");
  EXPECT_EQ(eval("-x"), "-2.5");
  EXPECT_EQ(eval("(i + 3) * 2"), "30");
  EXPECT_EQ(eval("name + 'y'"), "'xy'");
  EXPECT_EQ(eval("1 / 0"), "error: division by zero");
  EXPECT_EQ(eval("i % 0"), "error: integer division or modulo by zero");
  EXPECT_EQ(eval("9223372036854775807 + 1"), "error: integer overflow (64-bit arithmetic)");
  EXPECT_EQ(eval("name + 1"), "error: unsupported operand types for +: 'str' and 'int'");
}

TEST_F(ExprTest, ComparisonsAndLogic) {
  EXPECT_EQ(eval("i > 10 and name == 'x'"), "True");
  EXPECT_EQ(eval("i > 10 and name == 'y'"), "False");
  EXPECT_EQ(eval("i < 10 or name"), "'x'");  // `or` gives the deciding operand
  EXPECT_EQ(eval("not i"), "False");
  EXPECT_EQ(eval("0 < i <= 12 < 13"), "True");
  EXPECT_EQ(eval("i == 12.0"), "True");
  EXPECT_EQ(eval("flag == 1"), "True");
  EXPECT_EQ(eval("word > 'h'"), "True");
  EXPECT_EQ(eval("nothing is None"), "True");
  EXPECT_EQ(eval("obj is not None"), "True");
  EXPECT_EQ(eval("items is items"), "True");
  EXPECT_EQ(eval("2 in items"), "True");
  EXPECT_EQ(eval("'three' in items"), "True");
  EXPECT_EQ(eval("5 not in items"), "True");
  EXPECT_EQ(eval("'a' in table"), "True");
  EXPECT_EQ(eval("'ll' in word"), "True");
  EXPECT_EQ(eval("2 in cut"), "True");
  EXPECT_EQ(eval("7 in cut"), "error: not among the recorded items (the container was truncated)");
  EXPECT_EQ(eval("i < name"), "error: '<' not supported between 'int' and 'str'");
  EXPECT_EQ(eval("obj == obj"), "True");
}

TEST_F(ExprTest, ItemsLengthAndWhatWasNotRecorded) {
  EXPECT_EQ(eval("items[2]"), "'three'");
  EXPECT_EQ(eval("items[-1]"), "'three'");
  EXPECT_EQ(eval("items[3]"), "error: list index out of range");
  EXPECT_EQ(eval("table['b']"), "[]");
  EXPECT_EQ(eval("table['z']"), "error: KeyError: 'z'");
  EXPECT_EQ(eval("word[1]"), "'\u00e9'");
  EXPECT_EQ(eval("len(items) + len(word)"), "8");
  EXPECT_EQ(eval("len(cut)"), "10");
  EXPECT_EQ(eval("cut[5]"), "error: item 5 was not recorded (the first 2 were)");
  EXPECT_EQ(eval("obj.size"), "error: attributes are not recorded (Widget object, attribute 'size')");
  EXPECT_EQ(eval("secret"), "error: 'secret' was redacted");
  EXPECT_EQ(eval("missing > 1"), "unbound: name 'missing' is not defined here");
  EXPECT_EQ(eval("items"), "[1, 2, 'three']");
  EXPECT_EQ(eval("cut"), "[1, 2, ...] (10 items)");
}

TEST_F(ExprTest, SyntaxErrors) {
  EXPECT_EQ(eval("i >"), "syntax: unexpected end of expression");
  EXPECT_EQ(eval("(i"), "syntax: expected ')'");
  EXPECT_EQ(eval("i i"), "syntax: unexpected 'i'");
  EXPECT_EQ(eval("'abc"), "syntax: unterminated string");
  EXPECT_EQ(eval("i $ 2"), "syntax: unexpected character '$'");
}

}  // namespace
}  // namespace pyrewind::replay
