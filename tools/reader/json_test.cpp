// JSON rendering of every value form, string escaping, and Python-compatible floats.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "tools/reader/json.h"

namespace pyrewind {
namespace {

namespace json = reader::json;

std::string render(const v1::Value& v) {
  std::string out;
  json::append_value(out, v);
  return out;
}

std::string str(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
}

v1::Value integer(int64_t i) {
  v1::Value v;
  v.set_int_value(i);
  return v;
}

v1::Value big(bool negative, const std::string& hex_le, uint64_t bits, bool truncated = false) {
  v1::Value v;
  std::string mag;
  for (size_t i = 0; i + 1 < hex_le.size(); i += 2) mag.push_back(static_cast<char>(std::stoi(hex_le.substr(i, 2), nullptr, 16)));
  v.mutable_big_int()->set_negative(negative);
  v.mutable_big_int()->set_magnitude_le(mag);
  v.mutable_big_int()->set_bit_length(bits);
  v.mutable_big_int()->set_truncated(truncated);
  return v;
}

v1::Value container(v1::ContainerKind kind, uint64_t id, uint64_t len, std::vector<v1::Value> items,
                    bool truncated = false) {
  v1::Value v;
  auto* c = v.mutable_container();
  c->set_kind(kind);
  c->set_id(id);
  c->set_length(len);
  for (auto& i : items) *c->add_items() = i;
  c->set_truncated(truncated);
  return v;
}

v1::Value text(const std::string& s, uint64_t len = 0, bool truncated = false) {
  v1::Value v;
  v.mutable_str_value()->set_text(s);
  v.mutable_str_value()->set_length(len ? len : s.size());
  v.mutable_str_value()->set_truncated(truncated);
  return v;
}

TEST(Json, Scalars) {
  v1::Value v;
  EXPECT_EQ(render(v), "null");  // no kind at all
  v.set_none(true);
  EXPECT_EQ(render(v), "null");
  v.set_bool_value(true);
  EXPECT_EQ(render(v), "true");
  v.set_bool_value(false);
  EXPECT_EQ(render(v), "false");
  v.set_redacted(true);
  EXPECT_EQ(render(v), R"({"redacted":true})");
}

TEST(Json, IntegersBeyondDoublePrecisionAreStrings) {
  EXPECT_EQ(render(integer(0)), "0");
  EXPECT_EQ(render(integer(-5)), "-5");
  EXPECT_EQ(render(integer(9007199254740992)), "9007199254740992");     // 2^53
  EXPECT_EQ(render(integer(-9007199254740992)), "-9007199254740992");
  EXPECT_EQ(render(integer(9007199254740993)), "\"9007199254740993\"");
  EXPECT_EQ(render(integer(-9007199254740993)), "\"-9007199254740993\"");
  EXPECT_EQ(render(integer(std::numeric_limits<int64_t>::min())), "\"-9223372036854775808\"");
  EXPECT_EQ(render(integer(std::numeric_limits<int64_t>::max())), "\"9223372036854775807\"");
  std::string out;
  json::append_uint(out, 18446744073709551615ull);
  EXPECT_EQ(out, "\"18446744073709551615\"");
}

TEST(Json, BigIntegers) {
  EXPECT_EQ(render(big(false, "000000000000000001", 65)), "\"18446744073709551616\"");  // 2^64
  EXPECT_EQ(render(big(true, "00000040eaed7446d09c2c9f0c", 100)), "\"-1000000000000000000000000000000\"");
  EXPECT_EQ(render(big(false, std::string(50, 'f'), 200)),
            "\"1606938044258990275541962092341162602522202993782792835301375\"");
  EXPECT_EQ(render(big(false, "", 0)), "0");
  EXPECT_EQ(render(big(true, "05", 3)), "-5");  // small magnitudes render as numbers
  EXPECT_EQ(render(big(true, "0500000000000000000000", 3)), "-5");  // leading zero bytes
  EXPECT_EQ(render(big(false, "0100", 5000, true)), R"({"type":"int","bits":5000,"truncated":true})");
  EXPECT_EQ(json::decimal_from_le(false, std::string("\x00\xca\x9a\x3b", 4)), "1000000000");
  EXPECT_EQ(json::decimal_from_le(true, std::string()), "0");
}

TEST(Json, FloatsMatchPythonRepr) {
  struct Case {
    uint64_t bits;
    const char* repr;
  };
  const Case cases[] = {
      {4607182418800017408ull, "1.0"},
      {4591870180066957722ull, "0.1"},
      {9223372036854775808ull, "-0.0"},
      {0ull, "0.0"},
      {4846369599423283200ull, "1e+16"},
      {4532020583610935537ull, "1e-05"},
      {4547007122018943789ull, "0.0001"},
      {4728057454355411894ull, "123456789.123"},
      {9097811302482466869ull, "1.5e+300"},
      {1ull, "5e-324"},
      {4503599627370496ull, "2.2250738585072014e-308"},
      {4936209963552724370ull, "1e+22"},
      {4846369599423283199ull, "9999999999999998.0"},
      {4892433759222981601ull, "1.2345678901234567e+19"},
      {4599075939470750516ull, "0.30000000000000004"},
      {13836183955189006336ull, "-2.5"},
      {4599676419421066581ull, "0.3333333333333333"},
      {4636737291354636288ull, "100.0"},
      {4831355200913801216ull, "1000000000000000.0"},
      {4533378263974760560ull, "1.23e-05"},
      {9218868437227405311ull, "1.7976931348623157e+308"},
      {4547007122018943789ull, "0.0001"},
      {4562254508917369340ull, "0.001"},
      {4518436908649800091ull, "1.23456789e-06"},
      {4712128852136459333ull, "10928588.983213553"},
      {6613812840851947673ull, "1.4186613525849614e+134"},
      {12736496262939004471ull, "-7.571968556055867e-74"},
      {15523137368101252074ull, "-1.4074705188261364e+113"},
      {12027861843233603113ull, "-3.3339745473042614e-121"},
      {9777509567454608800ull, "-1.2342180766211395e-271"},
      {15501686781378355951ull, "-5.126864004244935e+111"},
      {14313909076419087323ull, "-2.1520217579844227e+32"},
      {4594210616595436404ull, "0.1399601630397701"},
      {956523682424107605ull, "1.01853664031722e-244"},
      {2893396244277848635ull, "2.9704598186234577e-115"},
      {6858376947525423350ull, "3.0534183338726823e+150"},
      {16019991071338850466ull, "-2.3027782228163463e+146"},
      {7023743836218156456ull, "3.56409621163656e+161"},
      {1881095652490078568ull, "6.352929017207453e-183"},
      {4599339987076239173ull, "0.3146575865605324"},
      {13487958864562975641ull, "-1.2761724801771812e-23"},
      {7529058068588108450ull, "2.0868668176225336e+195"},
      {3358703120032737309ull, "3.66898827745704e-84"},
      {16001795929641688097ull, "-1.389122273370197e+145"},
      {7183850473961985349ull, "1.7548715433165102e+172"},
      {14055043351701082718ull, "-1039514241563211.8"},
      {1326906338224231255ull, "5.7804021771411506e-220"},
      {11398726226450727658ull, "-2.8497478716107576e-163"},
      {8205770171119394379ull, "3.490691392124745e+240"},
      {2439413297207794790ull, "1.3282314387596086e-145"},
      {17936457123788771632ull, "-2.9317061175715426e+274"},
      {98010135235158442ull, "4.1124768973349897e-302"},
      {14270285075313520379ull, "-2.5983853818656714e+29"},
      {17711218894991640089ull, "-2.5839922981649337e+259"},
      {4651698057717200510ull, "964.8422176518504"},
      {4649762682512930830ull, "744.8155308736038"},
      {13869492818421572868ull, "-421.389664506147"},
      {4651329622455994196ull, "922.955977900167"},
      {4635220629430331168ull, "78.44693774162124"},
      {4644964469871930296ull, "355.66095450118473"},
      {13871776826378201510ull, "-590.4409709324143"},
      {4650968947671244048ull, "881.9520021759981"},
      {4645415233183253536ull, "381.28388221381647"},
      {4651419102002950490ull, "933.1286246343909"},
  };
  for (const Case& c : cases) {
    double d;
    std::memcpy(&d, &c.bits, sizeof d);
    EXPECT_EQ(json::python_float_repr(d), c.repr) << c.bits;
    v1::Value v;
    v.set_float_value(d);
    EXPECT_EQ(render(v), c.repr);
  }
  v1::Value v;
  v.set_float_value(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(render(v), "\"NaN\"");
  v.set_float_value(std::numeric_limits<double>::infinity());
  EXPECT_EQ(render(v), "\"Infinity\"");
  v.set_float_value(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(render(v), "\"-Infinity\"");
}

TEST(Json, Strings) {
  EXPECT_EQ(render(text("hello")), "\"hello\"");
  EXPECT_EQ(render(text("")), "\"\"");
  EXPECT_EQ(render(text("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80")), "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(render(text("abc", 1000, true)), R"({"type":"str","len":1000,"value":"abc","truncated":true})");
}

TEST(Json, Escaping) {
  EXPECT_EQ(str("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(str("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(str(std::string("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(str("\x7f/"), "\"\x7f/\"");  // DEL and '/' need no escape
  EXPECT_EQ(str("\xe2\x80\xa8"), "\"\xe2\x80\xa8\"");  // U+2028 is valid JSON text
}

TEST(Json, InvalidUtf8BecomesReplacementCharacters) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(str("a\xff" "b"), "\"a" + r + "b\"");
  EXPECT_EQ(str("\xc3"), "\"" + r + "\"");                  // cut sequence
  EXPECT_EQ(str("\xc3" "a"), "\"" + r + "a\"");
  EXPECT_EQ(str("\xc0\xaf"), "\"" + r + r + "\"");          // overlong
  EXPECT_EQ(str("\xe0\x80\xaf"), "\"" + r + r + r + "\"");  // overlong 3-byte
  EXPECT_EQ(str("\xed\xa0\x80"), "\"" + r + r + r + "\"");  // UTF-16 surrogate
  EXPECT_EQ(str("\xf4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(str("\xf0\x9f\x98"), "\"" + r + r + r + "\"");  // cut 4-byte sequence
  EXPECT_EQ(str("\x80"), "\"" + r + "\"");                  // lone continuation byte
}

TEST(Json, Bytes) {
  v1::Value v;
  v.mutable_bytes_value()->set_data(std::string("\x00\xff\x10", 3));
  v.mutable_bytes_value()->set_length(3);
  EXPECT_EQ(render(v), R"({"type":"bytes","len":3,"hex":"00ff10"})");
  v.mutable_bytes_value()->set_data("\x01\x02");
  v.mutable_bytes_value()->set_length(100);
  v.mutable_bytes_value()->set_truncated(true);
  EXPECT_EQ(render(v), R"({"type":"bytes","len":100,"hex":"0102","truncated":true})");
  v.mutable_bytes_value()->set_data("");
  v.mutable_bytes_value()->set_length(0);
  v.mutable_bytes_value()->set_truncated(false);
  EXPECT_EQ(render(v), R"({"type":"bytes","len":0,"hex":""})");
}

TEST(Json, Containers) {
  EXPECT_EQ(render(container(v1::CONTAINER_LIST, 140000000000000, 2, {integer(1), text("a")})),
            R"({"type":"list","id":140000000000000,"len":2,"items":[1,"a"]})");
  EXPECT_EQ(render(container(v1::CONTAINER_TUPLE, 7, 0, {})), R"({"type":"tuple","id":7,"len":0,"items":[]})");
  EXPECT_EQ(render(container(v1::CONTAINER_SET, 8, 30, {integer(1)}, true)),
            R"({"type":"set","id":8,"len":30,"items":[1],"truncated":true})");
  EXPECT_EQ(render(container(v1::CONTAINER_FROZENSET, 9, 1, {integer(2)})),
            R"({"type":"frozenset","id":9,"len":1,"items":[2]})");
  EXPECT_EQ(render(container(v1::CONTAINER_DICT, 10, 2, {text("k"), integer(1), integer(2), text("v")})),
            R"({"type":"dict","id":10,"len":2,"items":[["k",1],[2,"v"]]})");
  // A key without its value is not shown, and the dict is marked cut.
  EXPECT_EQ(render(container(v1::CONTAINER_DICT, 11, 5, {text("k"), integer(1), text("x")})),
            R"({"type":"dict","id":11,"len":5,"items":[["k",1]],"truncated":true})");
  v1::Value inner = container(v1::CONTAINER_LIST, 12, 1, {}, true);  // depth limit: no items
  EXPECT_EQ(render(container(v1::CONTAINER_LIST, 13, 1, {inner})),
            R"({"type":"list","id":13,"len":1,"items":[{"type":"list","id":12,"len":1,"items":[],"truncated":true}]})");
  EXPECT_EQ(render(container(v1::CONTAINER_LIST, 18446744073709551615ull, 0, {})),
            R"({"type":"list","id":"18446744073709551615","len":0,"items":[]})");
}

TEST(Json, Objects) {
  v1::Value v;
  v.mutable_object()->set_type_name("Ledger");
  v.mutable_object()->set_id(4096);
  EXPECT_EQ(render(v), R"({"type":"Ledger","id":4096})");
  v.mutable_object()->set_repr("Ledger(total=\"5\")");
  EXPECT_EQ(render(v), R"j({"type":"Ledger","id":4096,"repr":"Ledger(total=\"5\")"})j");
  v.mutable_object()->set_repr_truncated(true);
  EXPECT_EQ(render(v), R"j({"type":"Ledger","id":4096,"repr":"Ledger(total=\"5\")","repr_truncated":true})j");
  v.mutable_object()->clear_repr();
  v.mutable_object()->clear_repr_truncated();
  v.mutable_object()->set_repr_error("RuntimeError");
  EXPECT_EQ(render(v), R"({"type":"Ledger","id":4096,"repr_error":"RuntimeError"})");
}

TEST(Json, Exceptions) {
  v1::ExceptionInfo e;
  e.set_type_name("KeyError");
  e.set_message("'x'");
  std::string out;
  json::append_exception(out, e);
  EXPECT_EQ(out, R"({"type":"KeyError","message":"'x'"})");
  e.set_message_truncated(true);
  out.clear();
  json::append_exception(out, e);
  EXPECT_EQ(out, R"({"type":"KeyError","message":"'x'","truncated":true})");
}

}  // namespace
}  // namespace pyrewind
