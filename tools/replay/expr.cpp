#include "tools/replay/expr.h"

#include <cmath>
#include <cstdlib>
#include <vector>

#include "tools/reader/json.h"
#include "tools/reader/python_text.h"

namespace pyrewind::replay {

using v1::Value;

// ---------------------------------------------------------------------------------------------
// Tokens

namespace {

enum class Tok { kEnd, kName, kInt, kFloat, kString, kOp };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // name, operator, or the string's decoded content
  int64_t integer = 0;
  double number = 0;
};

bool tokenize(const std::string& s, std::vector<Token>* out, std::string* error) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t') {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out->push_back({Tok::kName, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j < s.size() && s[j] == '.') {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        is_float = true;
        ++j;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      std::string digits;
      for (size_t k = i; k < j; ++k)
        if (s[k] != '_') digits += s[k];
      Token t;
      errno = 0;
      if (is_float) {
        t.kind = Tok::kFloat;
        t.number = std::strtod(digits.c_str(), nullptr);
      } else {
        t.kind = Tok::kInt;
        t.integer = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) {
          *error = "integer literal too large: " + digits;
          return false;
        }
      }
      out->push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string text;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          ++j;
          switch (s[j]) {
            case 'n': text += '\n'; break;
            case 't': text += '\t'; break;
            case 'r': text += '\r'; break;
            case '0': text += '\0'; break;
            default: text += s[j];
          }
        } else {
          text += s[j];
        }
      }
      if (j >= s.size()) {
        *error = "unterminated string";
        return false;
      }
      out->push_back({Tok::kString, text});
      i = j + 1;
    } else {
      static const char* const kOps[] = {"==", "!=", "<=", ">=", "//", "<", ">", "+", "-", "*",
                                         "/", "%", "(", ")", "[", "]", "."};
      bool found = false;
      for (const char* op : kOps) {
        const size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out->push_back({Tok::kOp, op});
          i += n;
          found = true;
          break;
        }
      }
      if (!found) {
        *error = std::string("unexpected character '") + c + "'";
        return false;
      }
    }
  }
  out->push_back({Tok::kEnd, ""});
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Syntax tree

struct Expression::Node {
  enum class Kind { kConst, kName, kUnary, kBinary, kCompare, kAnd, kOr, kNot, kIndex, kAttr, kLen };
  Kind kind;
  std::string op;         // operator, name or attribute
  Value constant;
  std::vector<std::unique_ptr<Node>> children;
  std::vector<std::string> compare_ops;  // kCompare: between children
};

namespace {

using Node = Expression::Node;
using NodePtr = std::unique_ptr<Node>;

NodePtr make(Node::Kind kind, std::string op = {}) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->op = std::move(op);
  return n;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string* error) : t_(std::move(tokens)), error_(error) {}

  NodePtr parse() {
    NodePtr n = or_test();
    if (n && peek().kind != Tok::kEnd) return fail("unexpected '" + peek().text + "'");
    return n;
  }

 private:
  const Token& peek(size_t ahead = 0) const { return t_[std::min(pos_ + ahead, t_.size() - 1)]; }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).kind == Tok::kOp && peek(ahead).text == op; }
  bool is_word(const char* word, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::kName && peek(ahead).text == word;
  }
  NodePtr fail(const std::string& message) {
    if (error_->empty()) *error_ = message;
    return nullptr;
  }

  NodePtr or_test() {
    NodePtr left = and_test();
    while (left && is_word("or")) {
      ++pos_;
      NodePtr n = make(Node::Kind::kOr);
      n->children.push_back(std::move(left));
      if (!(left = and_test())) return nullptr;
      n->children.push_back(std::move(left));
      left = std::move(n);
    }
    return left;
  }
  NodePtr and_test() {
    NodePtr left = not_test();
    while (left && is_word("and")) {
      ++pos_;
      NodePtr n = make(Node::Kind::kAnd);
      n->children.push_back(std::move(left));
      if (!(left = not_test())) return nullptr;
      n->children.push_back(std::move(left));
      left = std::move(n);
    }
    return left;
  }
  NodePtr not_test() {
    if (is_word("not")) {
      ++pos_;
      NodePtr operand = not_test();
      if (!operand) return nullptr;
      NodePtr n = make(Node::Kind::kNot);
      n->children.push_back(std::move(operand));
      return n;
    }
    return comparison();
  }
  NodePtr comparison() {
    NodePtr first = sum();
    if (!first) return nullptr;
    NodePtr n;
    for (;;) {
      std::string op;
      if (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">=")) {
        op = peek().text;
        ++pos_;
      } else if (is_word("in")) {
        op = "in";
        ++pos_;
      } else if (is_word("not") && is_word("in", 1)) {
        op = "not in";
        pos_ += 2;
      } else if (is_word("is")) {
        ++pos_;
        op = "is";
        if (is_word("not")) {
          ++pos_;
          op = "is not";
        }
      } else {
        break;
      }
      if (!n) {
        n = make(Node::Kind::kCompare);
        n->children.push_back(std::move(first));
      }
      NodePtr right = sum();
      if (!right) return nullptr;
      n->compare_ops.push_back(op);
      n->children.push_back(std::move(right));
    }
    return n ? std::move(n) : std::move(first);
  }
  NodePtr binary_chain(NodePtr (Parser::*operand)(), std::initializer_list<const char*> ops) {
    NodePtr left = (this->*operand)();
    for (;;) {
      if (!left) return nullptr;
      const char* matched = nullptr;
      for (const char* op : ops)
        if (is_op(op)) matched = op;
      if (!matched) return left;
      ++pos_;
      NodePtr n = make(Node::Kind::kBinary, matched);
      n->children.push_back(std::move(left));
      NodePtr right = (this->*operand)();
      if (!right) return nullptr;
      n->children.push_back(std::move(right));
      left = std::move(n);
    }
  }
  NodePtr sum() { return binary_chain(&Parser::term, {"+", "-"}); }
  NodePtr term() { return binary_chain(&Parser::factor, {"*", "/", "//", "%"}); }
  NodePtr factor() {
    if (is_op("-") || is_op("+")) {
      std::string op = peek().text;
      ++pos_;
      NodePtr operand = factor();
      if (!operand) return nullptr;
      NodePtr n = make(Node::Kind::kUnary, op);
      n->children.push_back(std::move(operand));
      return n;
    }
    return primary();
  }
  NodePtr primary() {
    NodePtr n = atom();
    while (n) {
      if (is_op("[")) {
        ++pos_;
        NodePtr index = or_test();
        if (!index) return nullptr;
        if (!is_op("]")) return fail("expected ']'");
        ++pos_;
        NodePtr i = make(Node::Kind::kIndex);
        i->children.push_back(std::move(n));
        i->children.push_back(std::move(index));
        n = std::move(i);
      } else if (is_op(".")) {
        ++pos_;
        if (peek().kind != Tok::kName) return fail("expected an attribute name after '.'");
        NodePtr a = make(Node::Kind::kAttr, peek().text);
        ++pos_;
        a->children.push_back(std::move(n));
        n = std::move(a);
      } else {
        break;
      }
    }
    return n;
  }
  NodePtr atom() {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::kInt: {
        NodePtr n = make(Node::Kind::kConst);
        n->constant.set_int_value(t.integer);
        ++pos_;
        return n;
      }
      case Tok::kFloat: {
        NodePtr n = make(Node::Kind::kConst);
        n->constant.set_float_value(t.number);
        ++pos_;
        return n;
      }
      case Tok::kString: {
        NodePtr n = make(Node::Kind::kConst);
        n->constant.mutable_str_value()->set_text(t.text);
        n->constant.mutable_str_value()->set_length(utf8_length(t.text));
        ++pos_;
        return n;
      }
      case Tok::kName: {
        ++pos_;
        NodePtr n = make(Node::Kind::kConst);
        if (t.text == "None") {
          n->constant.set_none(true);
        } else if (t.text == "True" || t.text == "False") {
          n->constant.set_bool_value(t.text == "True");
        } else if (t.text == "len" && is_op("(")) {
          ++pos_;
          NodePtr arg = or_test();
          if (!arg) return nullptr;
          if (!is_op(")")) return fail("expected ')'");
          ++pos_;
          n = make(Node::Kind::kLen);
          n->children.push_back(std::move(arg));
        } else if (t.text == "and" || t.text == "or" || t.text == "not" || t.text == "in" || t.text == "is") {
          return fail("unexpected '" + t.text + "'");
        } else {
          n = make(Node::Kind::kName, t.text);
        }
        return n;
      }
      case Tok::kOp:
        if (t.text == "(") {
          ++pos_;
          NodePtr inner = or_test();
          if (!inner) return nullptr;
          if (!is_op(")")) return fail("expected ')'");
          ++pos_;
          return inner;
        }
        return fail("unexpected '" + t.text + "'");
      case Tok::kEnd:
        break;
    }
    return fail("unexpected end of expression");
  }

 public:
  static uint64_t utf8_length(const std::string& text) {
    uint64_t n = 0;
    for (unsigned char c : text) n += (c & 0xC0) != 0x80;
    return n;
  }

 private:
  std::vector<Token> t_;
  size_t pos_ = 0;
  std::string* error_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Failure {
  std::string message;
  bool unbound = false;
};

bool is_number(const Value& v) {
  return v.kind_case() == Value::kIntValue || v.kind_case() == Value::kBoolValue ||
         v.kind_case() == Value::kFloatValue || (v.kind_case() == Value::kBigInt && !v.big_int().truncated());
}
bool is_integral(const Value& v) { return v.kind_case() == Value::kIntValue || v.kind_case() == Value::kBoolValue; }
int64_t as_int(const Value& v) { return v.kind_case() == Value::kBoolValue ? v.bool_value() : v.int_value(); }
double as_double(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolValue: return v.bool_value();
    case Value::kIntValue: return static_cast<double>(v.int_value());
    case Value::kFloatValue: return v.float_value();
    case Value::kBigInt: return std::strtod(reader::json::decimal_from_le(v.big_int().negative(), v.big_int().magnitude_le()).c_str(), nullptr);
    default: return 0;
  }
}

std::string type_of(const Value& v) { return reader::python_type_name(v); }

Value int_value(int64_t i) {
  Value v;
  v.set_int_value(i);
  return v;
}
Value float_value(double d) {
  Value v;
  v.set_float_value(d);
  return v;
}
Value bool_value(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}
Value str_value(const std::string& text) {
  Value v;
  v.mutable_str_value()->set_text(text);
  v.mutable_str_value()->set_length(Parser::utf8_length(text));
  return v;
}

bool cut(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStrValue: return v.str_value().truncated();
    case Value::kBytesValue: return v.bytes_value().truncated();
    case Value::kContainer:
      return v.container().truncated() ||
             static_cast<uint64_t>(v.container().items_size()) <
                 v.container().length() * (v.container().kind() == v1::CONTAINER_DICT ? 2 : 1);
    case Value::kBigInt: return v.big_int().truncated();
    default: return false;
  }
}

class Evaluator {
 public:
  explicit Evaluator(const NameLookup& lookup) : lookup_(lookup) {}
  Failure failure;

  bool eval(const Node& n, Value* out) {
    switch (n.kind) {
      case Node::Kind::kConst:
        *out = n.constant;
        return true;
      case Node::Kind::kName: {
        const Value* v = lookup_(n.op);
        if (!v) return fail("name '" + n.op + "' is not defined here", true);
        if (v->kind_case() == Value::kRedacted) return fail("'" + n.op + "' was redacted");
        *out = *v;
        return true;
      }
      case Node::Kind::kNot: {
        bool b;
        if (!test(*n.children[0], &b)) return false;
        *out = bool_value(!b);
        return true;
      }
      case Node::Kind::kAnd:
      case Node::Kind::kOr: {
        // Python returns the deciding operand.
        Value left;
        if (!eval(*n.children[0], &left)) return false;
        bool b;
        if (!truth(left, &b)) return false;
        if (b == (n.kind == Node::Kind::kOr)) {
          *out = left;
          return true;
        }
        return eval(*n.children[1], out);
      }
      case Node::Kind::kUnary: {
        Value v;
        if (!eval(*n.children[0], &v)) return false;
        if (!is_number(v)) return fail("bad operand type for unary " + n.op + ": '" + type_of(v) + "'");
        if (n.op == "+") {
          *out = is_integral(v) ? int_value(as_int(v)) : v;
        } else if (is_integral(v)) {
          if (as_int(v) == INT64_MIN) return fail("integer overflow");
          *out = int_value(-as_int(v));
        } else {
          *out = float_value(-as_double(v));
        }
        return true;
      }
      case Node::Kind::kBinary: {
        Value a, b;
        if (!eval(*n.children[0], &a) || !eval(*n.children[1], &b)) return false;
        return arithmetic(n.op, a, b, out);
      }
      case Node::Kind::kCompare: {
        Value left;
        if (!eval(*n.children[0], &left)) return false;
        for (size_t i = 0; i < n.compare_ops.size(); ++i) {
          Value right;
          if (!eval(*n.children[i + 1], &right)) return false;
          bool result;
          if (!compare(n.compare_ops[i], left, right, &result)) return false;
          if (!result) {
            *out = bool_value(false);
            return true;
          }
          left = std::move(right);
        }
        *out = bool_value(true);
        return true;
      }
      case Node::Kind::kIndex: {
        Value base, index;
        if (!eval(*n.children[0], &base) || !eval(*n.children[1], &index)) return false;
        return subscript(base, index, out);
      }
      case Node::Kind::kAttr: {
        Value base;
        if (!eval(*n.children[0], &base)) return false;
        return fail("attributes are not recorded (" + type_of(base) + " object, attribute '" + n.op + "')");
      }
      case Node::Kind::kLen: {
        Value v;
        if (!eval(*n.children[0], &v)) return false;
        switch (v.kind_case()) {
          case Value::kStrValue: *out = int_value(static_cast<int64_t>(v.str_value().length())); return true;
          case Value::kBytesValue: *out = int_value(static_cast<int64_t>(v.bytes_value().length())); return true;
          case Value::kContainer: *out = int_value(static_cast<int64_t>(v.container().length())); return true;
          default: return fail("object of type '" + type_of(v) + "' has no len() (or it was not recorded)");
        }
      }
    }
    return fail("unknown expression");
  }

  bool test(const Node& n, bool* result) {
    Value v;
    return eval(n, &v) && truth(v, result);
  }

  bool truth(const Value& v, bool* result) {
    std::string error;
    if (truthy(v, result, &error)) return true;
    return fail(error);
  }

 private:
  bool fail(const std::string& message, bool unbound = false) {
    failure = {message, unbound};
    return false;
  }

  bool arithmetic(const std::string& op, const Value& a, const Value& b, Value* out) {
    const bool strings = a.kind_case() == Value::kStrValue && b.kind_case() == Value::kStrValue;
    if (op == "+" && strings) {
      if (cut(a) || cut(b)) return fail("a string operand was truncated in the recording");
      *out = str_value(a.str_value().text() + b.str_value().text());
      return true;
    }
    if (!is_number(a) || !is_number(b))
      return fail("unsupported operand types for " + op + ": '" + type_of(a) + "' and '" + type_of(b) + "'");
    if (is_integral(a) && is_integral(b)) {
      const int64_t x = as_int(a), y = as_int(b);
      int64_t r = 0;
      if (op == "+" && !__builtin_add_overflow(x, y, &r)) return *out = int_value(r), true;
      if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return *out = int_value(r), true;
      if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return *out = int_value(r), true;
      if (op == "//" || op == "%") {
        if (y == 0) return fail("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) return fail("integer overflow");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // Python floors
        *out = int_value(op == "//" ? q : m);
        return true;
      }
      if (op != "/") return fail("integer overflow (64-bit arithmetic)");
    }
    const double x = as_double(a), y = as_double(b);
    if (op == "+") *out = float_value(x + y);
    else if (op == "-") *out = float_value(x - y);
    else if (op == "*") *out = float_value(x * y);
    else if (y == 0) return fail("division by zero");
    else if (op == "/") *out = float_value(x / y);
    else if (op == "//") *out = float_value(std::floor(x / y));
    else {
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      *out = float_value(m);
    }
    return true;
  }

  // Equality as Python would answer it from what was recorded; false with a failure when the
  // recording cannot tell (truncated data).
  bool equal(const Value& a, const Value& b, bool* result) {
    if (is_number(a) && is_number(b)) {
      if (a.kind_case() == Value::kBigInt || b.kind_case() == Value::kBigInt) {
        const bool floats = a.kind_case() == Value::kFloatValue || b.kind_case() == Value::kFloatValue;
        *result = floats ? as_double(a) == as_double(b) : reader::python_repr(a) == reader::python_repr(b);
        return true;
      }
      *result = is_integral(a) && is_integral(b) ? as_int(a) == as_int(b) : as_double(a) == as_double(b);
      return true;
    }
    if (a.kind_case() != b.kind_case()) {
      if (a.kind_case() == Value::kRedacted || b.kind_case() == Value::kRedacted) return fail("a redacted value");
      if (a.kind_case() == Value::kBigInt || b.kind_case() == Value::kBigInt)
        return fail("an integer too large to be recorded");
      *result = false;
      return true;
    }
    switch (a.kind_case()) {
      case Value::kNone: *result = true; return true;
      case Value::kStrValue: {
        const auto &x = a.str_value(), &y = b.str_value();
        if (x.length() != y.length()) return *result = false, true;
        if (!x.truncated() && !y.truncated()) return *result = x.text() == y.text(), true;
        const size_t n = std::min(x.text().size(), y.text().size());
        if (x.text().compare(0, n, y.text(), 0, n) != 0) return *result = false, true;
        return fail("a string was truncated in the recording");
      }
      case Value::kBytesValue: {
        const auto &x = a.bytes_value(), &y = b.bytes_value();
        if (x.length() != y.length()) return *result = false, true;
        if (!x.truncated() && !y.truncated()) return *result = x.data() == y.data(), true;
        return fail("a bytes value was truncated in the recording");
      }
      case Value::kContainer: {
        const auto &x = a.container(), &y = b.container();
        if (x.id() == y.id() && x.id() != 0) return *result = true, true;
        if (x.kind() != y.kind() || x.length() != y.length()) return *result = false, true;
        if (cut(a) || cut(b)) return fail("a container's items were not all recorded");
        if (x.kind() == v1::CONTAINER_SET || x.kind() == v1::CONTAINER_FROZENSET || x.kind() == v1::CONTAINER_DICT)
          return fail("comparing sets and dicts item by item is not supported");
        for (int i = 0; i < x.items_size(); ++i) {
          if (!equal(x.items(i), y.items(i), result)) return false;
          if (!*result) return true;
        }
        *result = true;
        return true;
      }
      case Value::kObject:
        if (a.object().id() == b.object().id()) return *result = true, true;
        return fail("== on " + a.object().type_name() + " objects calls their __eq__, which was not recorded");
      default:
        return fail("cannot compare " + type_of(a) + " values");
    }
  }

  bool contains(const Value& container, const Value& item, bool* result) {
    if (container.kind_case() == Value::kStrValue && item.kind_case() == Value::kStrValue) {
      if (cut(item)) return fail("a string was truncated in the recording");
      *result = container.str_value().text().find(item.str_value().text()) != std::string::npos;
      if (!*result && cut(container)) return fail("a string was truncated in the recording");
      return true;
    }
    if (container.kind_case() != Value::kContainer)
      return fail("argument of type '" + type_of(container) + "' is not a recorded container");
    const v1::Container& c = container.container();
    const int step = c.kind() == v1::CONTAINER_DICT ? 2 : 1;
    for (int i = 0; i < c.items_size(); i += step) {
      bool same = false;
      if (!equal(c.items(i), item, &same)) return false;
      if (same) return *result = true, true;
    }
    if (cut(container)) return fail("not among the recorded items (the container was truncated)");
    *result = false;
    return true;
  }

  bool compare(const std::string& op, const Value& a, const Value& b, bool* result) {
    if (op == "==" || op == "!=") {
      if (!equal(a, b, result)) return false;
      if (op == "!=") *result = !*result;
      return true;
    }
    if (op == "in" || op == "not in") {
      if (!contains(b, a, result)) return false;
      if (op == "not in") *result = !*result;
      return true;
    }
    if (op == "is" || op == "is not") {
      auto identity = [](const Value& v) -> uint64_t {
        if (v.kind_case() == Value::kContainer) return v.container().id();
        if (v.kind_case() == Value::kObject) return v.object().id();
        return 0;
      };
      if (a.kind_case() == Value::kNone || b.kind_case() == Value::kNone || a.kind_case() == Value::kBoolValue ||
          b.kind_case() == Value::kBoolValue) {
        *result = a.kind_case() == b.kind_case() && (a.kind_case() == Value::kNone || a.bool_value() == b.bool_value());
      } else if (identity(a) && identity(b)) {
        *result = identity(a) == identity(b);
      } else {
        return fail("the identity of " + type_of(a) + " and " + type_of(b) + " values was not recorded");
      }
      if (op == "is not") *result = !*result;
      return true;
    }
    // Ordering.
    int order = 0;
    if (is_number(a) && is_number(b)) {
      if (is_integral(a) && is_integral(b))
        order = as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b);
      else
        order = as_double(a) < as_double(b) ? -1 : as_double(a) > as_double(b);
    } else if (a.kind_case() == Value::kStrValue && b.kind_case() == Value::kStrValue) {
      // UTF-8 byte order is code point order, as Python compares.
      const std::string &x = a.str_value().text(), &y = b.str_value().text();
      const size_t n = std::min(x.size(), y.size());
      order = x.compare(0, n, y, 0, n);
      if (order == 0) {
        if (cut(a) || cut(b)) return fail("a string was truncated in the recording");
        order = x.size() < y.size() ? -1 : x.size() > y.size();
      }
      order = order < 0 ? -1 : order > 0;
    } else {
      return fail("'" + op + "' not supported between '" + type_of(a) + "' and '" + type_of(b) + "'");
    }
    if (op == "<") *result = order < 0;
    else if (op == "<=") *result = order <= 0;
    else if (op == ">") *result = order > 0;
    else *result = order >= 0;
    return true;
  }

  bool subscript(const Value& base, const Value& index, Value* out) {
    if (base.kind_case() == Value::kContainer) {
      const v1::Container& c = base.container();
      if (c.kind() == v1::CONTAINER_DICT) {
        for (int i = 0; i + 1 < c.items_size(); i += 2) {
          bool same = false;
          if (!equal(c.items(i), index, &same)) return false;
          if (same) return *out = c.items(i + 1), true;
        }
        if (cut(base)) return fail("key " + reader::python_repr(index) + " is not among the recorded items");
        return fail("KeyError: " + reader::python_repr(index));
      }
      if (c.kind() != v1::CONTAINER_LIST && c.kind() != v1::CONTAINER_TUPLE)
        return fail("'" + type_of(base) + "' object is not subscriptable");
      if (!is_integral(index)) return fail("indices must be integers, not " + type_of(index));
      int64_t i = as_int(index);
      const int64_t length = static_cast<int64_t>(c.length());
      if (i < 0) i += length;
      if (i < 0 || i >= length) return fail(type_of(base) + " index out of range");
      if (i >= c.items_size()) return fail("item " + std::to_string(i) + " was not recorded (the first " +
                                           std::to_string(c.items_size()) + " were)");
      *out = c.items(static_cast<int>(i));
      return true;
    }
    if (base.kind_case() == Value::kStrValue) {
      if (!is_integral(index)) return fail("string indices must be integers");
      const v1::Text& t = base.str_value();
      int64_t i = as_int(index);
      const int64_t length = static_cast<int64_t>(t.length());
      if (i < 0) i += length;
      if (i < 0 || i >= length) return fail("string index out of range");
      int64_t at = 0;
      for (size_t b = 0; b < t.text().size();) {
        size_t n = 1;
        while (b + n < t.text().size() && (static_cast<unsigned char>(t.text()[b + n]) & 0xC0) == 0x80) ++n;
        if (at++ == i) return *out = str_value(t.text().substr(b, n)), true;
        b += n;
      }
      return fail("character " + std::to_string(i) + " was not recorded (the string was truncated)");
    }
    return fail("'" + type_of(base) + "' object is not subscriptable (or its items were not recorded)");
  }

  const NameLookup& lookup_;
};

}  // namespace

bool truthy(const Value& v, bool* result, std::string* error) {
  switch (v.kind_case()) {
    case Value::kNone: *result = false; return true;
    case Value::kBoolValue: *result = v.bool_value(); return true;
    case Value::kIntValue: *result = v.int_value() != 0; return true;
    case Value::kBigInt: *result = true; return true;  // only large values are big ints
    case Value::kFloatValue: *result = v.float_value() != 0; return true;
    case Value::kStrValue: *result = v.str_value().length() != 0; return true;
    case Value::kBytesValue: *result = v.bytes_value().length() != 0; return true;
    case Value::kContainer: *result = v.container().length() != 0; return true;
    default: break;
  }
  *error = "the truth value of a " + reader::python_type_name(v) + " object was not recorded";
  return false;
}

Expression::~Expression() = default;

std::unique_ptr<Expression> Expression::parse(const std::string& text, std::string* error) {
  std::vector<Token> tokens;
  error->clear();
  if (!tokenize(text, &tokens, error)) return nullptr;
  Parser parser(std::move(tokens), error);
  NodePtr root = parser.parse();
  if (!root) {
    if (error->empty()) *error = "invalid expression";
    return nullptr;
  }
  std::unique_ptr<Expression> e(new Expression());
  e->root_ = std::move(root);
  e->text_ = text;
  return e;
}

bool Expression::evaluate(const NameLookup& lookup, Value* result, std::string* error, bool* unbound_name) const {
  Evaluator ev(lookup);
  if (ev.eval(*root_, result)) return true;
  *error = ev.failure.message;
  if (unbound_name) *unbound_name = ev.failure.unbound;
  return false;
}

bool Expression::test(const NameLookup& lookup, bool* result, std::string* error, bool* unbound_name) const {
  Evaluator ev(lookup);
  if (ev.test(*root_, result)) return true;
  *error = ev.failure.message;
  if (unbound_name) *unbound_name = ev.failure.unbound;
  return false;
}

}  // namespace pyrewind::replay
