// Response mapping: JSON paths, GraphQL errors, XPath over XML/SOAP, SOAP faults, and the
// hardening of both parsers against hostile bodies.
#include <doctest/doctest.h>
#include <libxml/xmlerror.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "net/json_path.h"
#include "net/response_map.h"
#include "net/xml_path.h"

using namespace ivr;
using namespace ivr::net;

namespace {

Value eval_json(std::string_view body, std::string_view path) {
  auto doc = JsonDocument::parse(body);
  REQUIRE_MESSAGE(doc.ok(), doc.error().message);
  auto p = JsonPath::parse(path);
  REQUIRE_MESSAGE(p.ok(), p.error().message);
  auto v = p->evaluate(*doc);
  REQUIRE_MESSAGE(v.ok(), v.error().message);
  return std::move(v).value();
}

std::string path_error(std::string_view path) {
  auto p = JsonPath::parse(path);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == Errc::invalid_argument);
  return p.error().message;
}

std::string json_error(std::string_view body) {
  auto doc = JsonDocument::parse(body);
  REQUIRE_FALSE(doc.ok());
  return doc.error().message;
}

const char kDoc[] = R"({
  "a": {"b": [10, 20, 30]},
  "a/b": 1, "m~n": 2, "": 3, "-1": "minus one", "*": "star",
  "s": "h\u00e9llo \ud83d\ude00 \u65e5\u672c",
  "t": true, "f": false, "n": null,
  "o": {"x": [1, {"y": "z"}], "q": "\"quoted\"\n\u0001"},
  "e": [], "eo": {},
  "nums": [0, -7, 1.5, 1E2, 12345678901234567890123, 1e400, -0.0, 0.10, 1e-400],
  "ids": [{"id": 1}, {"id": 2, "tags": ["a", "b"]}, {"id": 3, "tags": []}],
  "grid": [[1, 2], [], [3]],
  "dup": 1, "dup": 2
})";

Value str(const char *s) {
  return Value::string(s);
}

}  // namespace

TEST_CASE("json path: parse forms and escapes") {
  auto whole = JsonPath::parse("");
  REQUIRE(whole.ok());
  CHECK(whole->steps().empty());

  auto p = JsonPath::parse("/a~1b/m~0n/~01/0/-2/*/#");
  REQUIRE(p.ok());
  REQUIRE(p->steps().size() == 7);
  CHECK(p->steps()[0].key == "a/b");
  CHECK(p->steps()[1].key == "m~n");
  CHECK(p->steps()[2].key == "~1");  // ~0 then a literal 1: not "/"
  CHECK(p->steps()[3].is_index);
  CHECK(p->steps()[3].index == 0);
  CHECK(p->steps()[4].is_index);
  CHECK(p->steps()[4].index == -2);
  CHECK(p->steps()[5].kind == JsonPath::StepKind::wildcard);
  CHECK(p->steps()[6].kind == JsonPath::StepKind::length);
  CHECK(p->has_wildcard());
  CHECK(p->text() == "/a~1b/m~0n/~01/0/-2/*/#");

  for (const char *not_index :
       {"/01", "/-0", "/+1", "/1.0", "/-", "/1e3", "/99999999999999999999"}) {
    auto q = JsonPath::parse(not_index);
    REQUIRE(q.ok());
    CHECK_MESSAGE(!q->steps()[0].is_index, not_index);
  }
  CHECK(JsonPath::parse("/").ok());  // the member named ""
  CHECK(JsonPath::parse("//").ok());
}

TEST_CASE("json path: parse errors name the column and the reason") {
  CHECK(path_error("a/b") ==
        "column 1: a path starts with '/' (or is empty for the whole document)");
  CHECK(path_error("/ab~2") == "column 4: '~2' is not an escape (~0 is '~', ~1 is '/')");
  CHECK(path_error("/a/b~") ==
        "column 5: '~' at the end of a part is not an escape (~0 is '~', ~1 is '/')");
  CHECK(path_error("/a~/b").find("column 3: '~' at the end") == 0);
  CHECK(path_error("/#/a") == "column 2: '#' (the length) must be the last part of a path");
  CHECK(path_error("/x/#/") == "column 4: '#' (the length) must be the last part of a path");
  CHECK(path_error(std::string("/a\0b", 4)) == "column 3: a NUL character is not allowed");
  CHECK(path_error("/a~\x01").find("'~\\x1' is not an escape") != std::string::npos);
  CHECK(path_error("/" + std::string(kMaxPathLength, 'a')).find("at most 4096") !=
        std::string::npos);
}

TEST_CASE("json path: members, indices and escapes") {
  CHECK(eval_json(kDoc, "/a/b/0") == Value::number(10));
  CHECK(eval_json(kDoc, "/a/b/2").text() == "30");
  CHECK(eval_json(kDoc, "/a/b/-1") == Value::number(30));
  CHECK(eval_json(kDoc, "/a/b/-3") == Value::number(10));
  CHECK(eval_json(kDoc, "/a~1b") == Value::number(1));
  CHECK(eval_json(kDoc, "/m~0n") == Value::number(2));
  CHECK(eval_json(kDoc, "/") == Value::number(3));
  // On objects every token is a member name.
  CHECK(eval_json(kDoc, "/-1") == str("minus one"));
  CHECK(eval_json(kDoc, "/t") == Value::boolean(true));
  CHECK(eval_json(kDoc, "/f") == Value::boolean(false));
  CHECK(eval_json(kDoc, "/t").text() == "true");
  CHECK(eval_json(kDoc, "/n").is_null());
  CHECK(eval_json(kDoc, "/dup") == Value::number(1));  // the first of duplicate keys
}

TEST_CASE("json path: missing parts and type mismatches are null") {
  for (const char *path :
       {"/missing", "/a/missing", "/a/b/3", "/a/b/-4", "/a/b/01", "/a/b/x", "/a/b/-", "/s/0",
        "/t/x", "/n/x", "/a/b/0/x", "/e/0", "/e/-1", "/s/#", "/n/#", "/a/b/99999999999999999999"}) {
    Value v = eval_json(kDoc, path);
    CHECK_MESSAGE(v.is_null(), path);
    CHECK(v.text().empty());
  }
}

TEST_CASE("json path: strings keep unicode") {
  Value s = eval_json(kDoc, "/s");
  REQUIRE(s.kind() == Value::Kind::string);
  CHECK(s.as_string() == "h\xc3\xa9llo \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac");
}

TEST_CASE("json path: objects and arrays become compact JSON text") {
  CHECK(eval_json(kDoc, "/a") == str(R"({"b":[10,20,30]})"));
  CHECK(eval_json(kDoc, "/a/b") == str("[10,20,30]"));
  CHECK(eval_json(kDoc, "/o") == str(R"({"x":[1,{"y":"z"}],"q":"\"quoted\"\n\u0001"})"));
  CHECK(eval_json(kDoc, "/e") == str("[]"));
  CHECK(eval_json(kDoc, "/eo") == str("{}"));
  CHECK(eval_json(R"( { "k" : [ 1 , "x" , null ] } )", "") == str(R"({"k":[1,"x",null]})"));
  CHECK(eval_json(R"({"\u00e9\/":"a\tb"})", "") == str("{\"\xc3\xa9/\":\"a\\tb\"}"));
}

TEST_CASE("json path: numbers keep their digits") {
  Value zero = eval_json(kDoc, "/nums/0");
  CHECK(zero.kind() == Value::Kind::number);
  CHECK(zero.as_number() == 0);
  CHECK(eval_json(kDoc, "/nums/1") == Value::number(-7));
  CHECK(eval_json(kDoc, "/nums/2").as_number() == 1.5);
  Value hundred = eval_json(kDoc, "/nums/3");
  CHECK(hundred.as_number() == 100);
  CHECK(hundred.text() == "1E2");
  Value big = eval_json(kDoc, "/nums/4");  // beyond 64 bits: exact text, approximate double
  CHECK(big.text() == "12345678901234567890123");
  CHECK(big.as_number() == doctest::Approx(1.2345678901234568e22));
  Value huge = eval_json(kDoc, "/nums/5");
  CHECK(std::isinf(huge.as_number()));
  CHECK(huge.text() == "1e400");
  CHECK(eval_json(kDoc, "/nums/6").text() == "-0.0");
  CHECK(eval_json(kDoc, "/nums/7").text() == "0.10");
  CHECK(eval_json(kDoc, "/nums/8").as_number() == 0);
  CHECK(eval_json("18446744073709551615", "").text() == "18446744073709551615");
  CHECK(eval_json("-9223372036854775808", "").as_number() == -9223372036854775808.0);
}

TEST_CASE("json path: length with #") {
  CHECK(eval_json(kDoc, "/a/b/#") == Value::number(3));
  CHECK(eval_json(kDoc, "/a/#") == Value::number(1));
  CHECK(eval_json(kDoc, "/e/#") == Value::number(0));
  CHECK(eval_json(kDoc, "/eo/#").text() == "0");
  CHECK(eval_json("[1,2,3,4]", "/#") == Value::number(4));
  CHECK(eval_json(kDoc, "/missing/#").is_null());
}

TEST_CASE("json path: wildcards join with commas") {
  CHECK(eval_json(kDoc, "/a/b/*") == str("10,20,30"));
  CHECK(eval_json(kDoc, "/e/*") == str(""));
  CHECK(eval_json(kDoc, "/eo/*") == str(""));
  CHECK(eval_json(kDoc, "/ids/*/id") == str("1,2,3"));
  // Nested wildcards flatten; an empty array adds nothing, a missing part an empty item.
  CHECK(eval_json(kDoc, "/ids/*/tags/*") == str(",a,b"));
  CHECK(eval_json(kDoc, "/grid/*/*") == str("1,2,3"));
  CHECK(eval_json(kDoc, "/grid/*/#") == str("2,0,1"));
  CHECK(eval_json(kDoc, "/ids/*/tags/#") == str(",2,0"));
  CHECK(eval_json(kDoc, "/ids/*/tags") == str(",[\"a\",\"b\"],[]"));
  CHECK(eval_json(kDoc, "/grid/*/-1") == str("2,,3"));
  CHECK(eval_json(kDoc, "/o/*") == str("[1,{\"y\":\"z\"}],\"quoted\"\n\x01"));
  CHECK(eval_json("[true,null,\"x\",1.5]", "/*") == str("true,,x,1.5"));
  // Before the first wildcard, missing or not a container: null.
  CHECK(eval_json(kDoc, "/missing/*").is_null());
  CHECK(eval_json(kDoc, "/s/*").is_null());
  CHECK(eval_json(kDoc, "/*/x").kind() == Value::Kind::string);
}

TEST_CASE("json path: scalar documents") {
  CHECK(eval_json("42", "") == Value::number(42));
  CHECK(eval_json(" \"x\" ", "") == str("x"));
  CHECK(eval_json("null", "").is_null());
  CHECK(eval_json("true", "") == Value::boolean(true));
  CHECK(eval_json("42", "/a").is_null());
  CHECK(eval_json("42", "/#").is_null());
}

TEST_CASE("json body: not JSON is a parse error with its place") {
  auto doc = JsonDocument::parse("{\"a\": 1,}");
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.error().code == Errc::parse);
  CHECK(doc.error().message.rfind("body is not JSON: line 1, column ", 0) == 0);

  CHECK(json_error("") == "body is not JSON: it is empty");
  CHECK(json_error(" \n\t") == "body is not JSON: it is empty");
  CHECK(json_error("{\n  \"a\": tru\n}") ==
        "body is not JSON: line 2, column 8 (byte 9): 'tru' is not true, false or null");
  CHECK(json_error("[nul]").find("'nul' is not true, false or null") != std::string::npos);
  CHECK(json_error("[falsey]").find("'falsey' is not true, false or null") != std::string::npos);
  CHECK(json_error("1]") ==
        "body is not JSON: line 1, column 2 (byte 1): unexpected content after the JSON value");
  CHECK(json_error("1,2") ==
        "body is not JSON: line 1, column 3 (byte 2): more than one JSON value");
  CHECK(json_error("[01]").find("'01' is not a number") != std::string::npos);
  CHECK(json_error("[1.]").find("'1.' is not a number") != std::string::npos);
  CHECK(json_error("[-]").find("is not a number") != std::string::npos);
  CHECK(json_error("[NaN]").find("body is not JSON") == 0);
  CHECK(json_error("{} {}").find("body is not JSON") == 0);
  CHECK(json_error("[1, 2").find("body is not JSON") == 0);
  CHECK(json_error("{\"a\" 1}").find("body is not JSON") == 0);
  CHECK(json_error("\"unterminated").find("body is not JSON") == 0);
  CHECK(json_error("<html>oops</html>").find("body is not JSON: line 1, column 1") == 0);
  CHECK(json_error("[\"ok\", \"\xff\"]") ==
        "body is not JSON: line 1, column 9 (byte 8): The input is not valid UTF-8");
  CHECK(json_error("[\"\\uZZZZ\"]").find("body is not JSON") == 0);

  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  CHECK(json_error(deep).find("nesting deeper than 256") != std::string::npos);
  std::string ok_deep(kMaxJsonDepth, '[');
  ok_deep += std::string(kMaxJsonDepth, ']');
  CHECK(JsonDocument::parse(ok_deep).ok());
  std::string very_deep(100000, '[');
  CHECK(JsonDocument::parse(very_deep).error().code == Errc::parse);
}

TEST_CASE("graphql: errors, paths and data") {
  auto status = [](std::string_view body) {
    auto doc = JsonDocument::parse(body);
    REQUIRE(doc.ok());
    auto s = graphql_status(*doc);
    REQUIRE_MESSAGE(s.ok(), s.error().message);
    return std::move(s).value();
  };
  GraphqlStatus ok = status(R"({"data": {"customer": {"name": "Ada"}}})");
  CHECK(ok.error_count == 0);
  CHECK(ok.has_data);
  CHECK_FALSE(ok.data_null);
  CHECK(ok.message().empty());

  GraphqlStatus partial = status(R"({"errors": [
      {"message": "Name for character with ID 1002 could not be fetched.",
       "locations": [{"line": 6, "column": 7}], "path": ["hero", "heroFriends", 1, "name"]}],
    "data": {"hero": {"name": "R2-D2"}}})");
  REQUIRE(partial.errors.size() == 1);
  CHECK(partial.errors[0] ==
        "Name for character with ID 1002 could not be fetched. (path: hero.heroFriends.1.name)");
  CHECK(partial.has_data);

  GraphqlStatus failed =
      status(R"({"errors": [{"message": "Unauthorized"}, {"no": 1}], "data": null})");
  CHECK(failed.error_count == 2);
  CHECK(failed.message() == "Unauthorized; (an error without a message)");
  CHECK(failed.has_data);
  CHECK(failed.data_null);

  GraphqlStatus no_data = status(R"({"errors": [{"message": "Syntax Error: Unexpected Name"}]})");
  CHECK_FALSE(no_data.has_data);
  CHECK(no_data.error_count == 1);

  CHECK(status(R"({"errors": "boom"})").message() == "\"errors\" is not an array");
  CHECK(status(R"({"errors": [], "data": {}})").error_count == 0);

  std::string many = R"({"errors": [)";
  for (int i = 0; i < 25; ++i) many += (i ? "," : "") + std::string(R"({"message": "e"})");
  many += "]}";
  GraphqlStatus lots = status(many);
  CHECK(lots.errors.size() == GraphqlStatus::kMaxMessages);
  CHECK(lots.error_count == 25);
  CHECK(lots.message().find("; and 5 more") != std::string::npos);

  GraphqlStatus longmsg = status(R"({"errors": [{"message": ")" + std::string(2000, 'x') + "\"}]}");
  CHECK(longmsg.errors[0].size() == GraphqlStatus::kMaxMessageBytes + 3);

  auto arr = JsonDocument::parse("[1]");
  REQUIRE(arr.ok());
  CHECK_FALSE(graphql_status(*arr).ok());
}

// --- XML ----------------------------------------------------------------------------------

namespace {

// Modeled on Five9's supervisor web service getStatistics answer (SOAP 1.1, unqualified
// children under a namespaced response element).
const char kFive9[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
  <env:Header/>
  <env:Body>
    <ns2:getStatisticsResponse xmlns:ns2="http://service.supervisor.ws.five9.com/">
      <return>
        <columns><values><data>Username</data><data>State</data><data>Skill</data></values></columns>
        <rows><values><data>ada@example.com</data><data>Ready</data><data>Sales</data></values></rows>
        <rows><values><data>bob@example.com</data><data>Not Ready</data><data>Sales</data></values></rows>
        <rows><values><data>cy@example.com</data><data>Ready</data><data>Support</data></values></rows>
        <timestamp>1774850400000</timestamp>
        <type>AgentState</type>
        <note><![CDATA[a <raw> note & more]]></note>
      </return>
    </ns2:getStatisticsResponse>
  </env:Body>
</env:Envelope>)";

const Namespaces kNs = {{"soap", "http://schemas.xmlsoap.org/soap/envelope/"},
                        {"f", "http://service.supervisor.ws.five9.com/"}};

Value eval_xml(std::string_view body, std::string_view xpath, const Namespaces &ns = kNs) {
  auto doc = XmlDocument::parse(body);
  REQUIRE_MESSAGE(doc.ok(), doc.error().message);
  auto x = XPathExpr::compile(xpath, ns);
  REQUIRE_MESSAGE(x.ok(), x.error().message);
  auto v = x->evaluate(*doc);
  REQUIRE_MESSAGE(v.ok(), v.error().message);
  return std::move(v).value();
}

std::string xpath_error(std::string_view xpath, const Namespaces &ns = kNs) {
  auto x = XPathExpr::compile(xpath, ns);
  REQUIRE_FALSE(x.ok());
  CHECK(x.error().code == Errc::invalid_argument);
  return x.error().message;
}

std::string xml_error(std::string_view body) {
  auto doc = XmlDocument::parse(body);
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.error().code == Errc::parse);
  return doc.error().message;
}

// Runs `f` with stderr sent to a temporary file and returns what was written there.
template <typename F>
std::string stderr_of(F &&f) {
  std::fflush(stderr);
  FILE *tmp = std::tmpfile();
  REQUIRE(tmp);
  int saved = dup(fileno(stderr));
  dup2(fileno(tmp), fileno(stderr));
  f();
  std::fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  std::string out;
  std::rewind(tmp);
  for (int c; (c = std::fgetc(tmp)) != EOF;) out += static_cast<char>(c);
  std::fclose(tmp);
  return out;
}

}  // namespace

TEST_CASE("xpath: a SOAP response with namespaces") {
  const std::string base = "/soap:Envelope/soap:Body/f:getStatisticsResponse/return";
  CHECK(eval_xml(kFive9, base + "/type") == str("AgentState"));
  CHECK(eval_xml(kFive9, "string(" + base + "/type)") == str("AgentState"));
  CHECK(eval_xml(kFive9, "count(" + base + "/rows)") == Value::number(3));
  CHECK(eval_xml(kFive9, "count(" + base + "/rows)").text() == "3");
  CHECK(eval_xml(kFive9, "count(//f:getStatisticsResponse/return/rows[values/data[2]='Ready'])") ==
        Value::number(2));
  // A node-set yields its first node's string value, in document order.
  CHECK(eval_xml(kFive9, base + "/rows/values/data[1]") == str("ada@example.com"));
  CHECK(eval_xml(kFive9, "(//rows)[last()]/values/data[1]") == str("cy@example.com"));
  CHECK(eval_xml(kFive9, base + "/rows[2]/values") ==
        str("bob@example.comNot ReadySales"));  // an element's string value is its text
  CHECK(eval_xml(kFive9, base + "/note") == str("a <raw> note & more"));
  CHECK(eval_xml(kFive9, base + "/timestamp").text() == "1774850400000");
  CHECK(eval_xml(kFive9, "number(" + base + "/timestamp)") == Value::number(1774850400000.0));
  CHECK(eval_xml(kFive9, "number(" + base + "/timestamp)").text() == "1774850400000");
  CHECK(eval_xml(kFive9, "count(//rows) div 2") == Value::number(1.5));
  CHECK(eval_xml(kFive9, "count(//rows) div 2").text() == "1.5");
  CHECK(eval_xml(kFive9, "boolean(//rows[values/data[2]='Away'])") == Value::boolean(false));
  CHECK(eval_xml(kFive9, "//rows/values/data[2] = 'Not Ready'") == Value::boolean(true));
  CHECK(eval_xml(kFive9, "number(//type)").text() == "NaN");
  // Relative expressions start at the document node.
  CHECK(eval_xml(kFive9, "soap:Envelope/soap:Body/f:getStatisticsResponse/return/type") ==
        str("AgentState"));
  // Prefixes are the flow's, whatever the response calls them.
  CHECK(eval_xml(kFive9, "//x:getStatisticsResponse/return/type",
                 {{"x", "http://service.supervisor.ws.five9.com/"}}) == str("AgentState"));
  CHECK(eval_xml(kFive9, "//*[local-name()='type']", {}) == str("AgentState"));
  CHECK(eval_xml(kFive9, "name(/*)", {}) == str("env:Envelope"));
  CHECK(eval_xml(kFive9, "//rows/@missing").is_null());
}

TEST_CASE("xpath: empty node-sets are null, string() of nothing is empty") {
  CHECK(eval_xml(kFive9, "//nothing").is_null());
  CHECK(eval_xml(kFive9, "/soap:Envelope/soap:Header/*").is_null());
  // Unprefixed names match only elements without a namespace.
  CHECK(eval_xml(kFive9, "/Envelope").is_null());
  CHECK(eval_xml(kFive9, "string(//nothing)") == str(""));
  CHECK(eval_xml(kFive9, "count(//nothing)") == Value::number(0));
  CHECK(eval_xml(kFive9, "/soap:Envelope/soap:Header") == str(""));  // present but empty
}

TEST_CASE("xpath: compile errors at load time") {
  CHECK(xpath_error("//a[").find("column ") == 0);
  CHECK(xpath_error("//a[").find("column 5: ") == 0);
  CHECK(xpath_error("count(//a").find("column 10: ") == 0);
  CHECK(xpath_error("1 +").find("Invalid expression") != std::string::npos);
  CHECK(xpath_error("//a]").find("column 4: ") == 0);
  std::string undeclared = xpath_error("/s:Envelope");
  CHECK(undeclared == "Undefined namespace prefix \"s\" (declare it in the node's namespaces)");
  CHECK(xpath_error("/a/b[@x='p:q']/child::q:c").find("prefix \"q\"") != std::string::npos);
  CHECK(xpath_error("no-such-function(1)").find("Unregistered function") != std::string::npos);
  CHECK(xpath_error("$var").find("Undefined variable") != std::string::npos);
  CHECK(xpath_error("") == "column 1: the XPath expression is empty");
  CHECK(xpath_error(std::string("//a\0", 4)) == "column 4: a NUL character is not allowed");
  CHECK(xpath_error(std::string(kMaxXPathLength + 1, 'a')).find("at most 4096") !=
        std::string::npos);
  CHECK(xpath_error("/a", {{"1bad", "urn:x"}}).find("not a valid prefix") != std::string::npos);
  CHECK(xpath_error("/a", {{"a:b", "urn:x"}}).find("not a valid prefix") != std::string::npos);
  CHECK(xpath_error("/a", {{"p", ""}}) == "namespace prefix \"p\" needs a URI");
  CHECK(xpath_error("/a", {{"p", "urn:x"}, {"p", "urn:y"}}) ==
        "namespace prefix \"p\" is declared twice");
  // Compiling never prints.
  std::string printed = stderr_of([] { (void)XPathExpr::compile("//a[[", {}); });
  CHECK(printed.empty());
}

TEST_CASE("xpath: evaluation is bounded by the operation limit") {
  std::string body = "<a>";
  for (int i = 0; i < 2000; ++i) body += "<b><c><d/></c></b>";
  body += "</a>";
  auto doc = XmlDocument::parse(body);
  REQUIRE(doc.ok());
  auto heavy = XPathExpr::compile("count(//*[count(//*) > 0])", {});
  REQUIRE(heavy.ok());
  auto v = heavy->evaluate(*doc);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().message == "XPath count(//*[count(//*) > 0]): Operation limit exceeded");
  // A prefix on a branch the load-time dry run did not take fails here, with its name.
  auto lazy = XPathExpr::compile("/a/b and /q:x", {});
  REQUIRE(lazy.ok());
  auto late = lazy->evaluate(*doc);
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().message == "XPath /a/b and /q:x: Undefined namespace prefix \"q\"");
}

TEST_CASE("xml body: malformed XML names the line") {
  std::string e = xml_error("<a>\n  <b>text</c>\n</a>");
  CHECK(e.rfind("body is not well-formed XML: line 2", 0) == 0);
  CHECK(e.find("Opening and ending tag mismatch") != std::string::npos);
  CHECK(xml_error("") == "body is not well-formed XML: it is empty");
  CHECK(xml_error("not xml at all").rfind("body is not well-formed XML: line 1", 0) == 0);
  CHECK(xml_error("{\"json\": true}").rfind("body is not well-formed XML", 0) == 0);
  CHECK(xml_error("<a>").rfind("body is not well-formed XML: line 1", 0) == 0);
  CHECK(xml_error("<a/><b/>").find("Extra content") != std::string::npos);
  CHECK(xml_error("<a>&undefined;</a>").find("Entity 'undefined' not defined") !=
        std::string::npos);
  CHECK(xml_error("<a>\xff</a>").rfind("body is not well-formed XML", 0) == 0);
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "<a>";
  CHECK(xml_error(deep).rfind("body is not well-formed XML", 0) == 0);
  // libxml2 never writes to stderr.
  std::string printed = stderr_of([] {
    (void)XmlDocument::parse("<a>\n<b></a>");
    (void)XmlDocument::parse("<a xmlns:p='urn:p'><q:b/></a>");
  });
  CHECK(printed.empty());
}

TEST_CASE("xml body: XXE is never expanded") {
  const char *attempts[] = {
      R"(<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>)",
      R"(<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>)",
      R"(<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:1/x">]><r>&x;</r>)",
      R"(<!DOCTYPE r [<!ENTITY u SYSTEM "file:///etc/passwd" NDATA t>]><r/>)",
  };
  for (const char *body : attempts) {
    std::string e = xml_error(body);
    CHECK_MESSAGE(e.find("declares an XML entity") != std::string::npos, e);
    CHECK(e.find("root:") == std::string::npos);
  }
  // An external DTD is not read, so its entities stay unknown and empty.
  auto doc = XmlDocument::parse(
      R"(<?xml version="1.0"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><r>a&x;b</r>)");
  REQUIRE_MESSAGE(doc.ok(), doc.error().message);
  auto x = XPathExpr::compile("string(/r)", {});
  REQUIRE(x.ok());
  auto v = x->evaluate(*doc);
  REQUIRE(v.ok());
  CHECK(v->as_string() == "ab");
}

TEST_CASE("xml body: billion laughs is refused at the first declaration") {
  std::string body = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    body += " <!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k)
      body += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    body += "\">\n";
  }
  body += "]>\n<lolz>&lol9;</lolz>";
  std::string e = xml_error(body);
  CHECK(e ==
        "body is refused: line 3: it declares an XML entity (entity declarations are not "
        "allowed in responses)");
  // A plain DOCTYPE without declarations is fine.
  CHECK(eval_xml("<!DOCTYPE r><r>x</r>", "/r", {}) == str("x"));
  // Predefined entities and character references still work.
  CHECK(eval_xml("<r>&lt;&amp;&#x263A;</r>", "/r", {}) == str("<&\xe2\x98\xba"));
}

TEST_CASE("soap faults: 1.1 and 1.2") {
  auto fault_of = [](std::string_view body) {
    auto doc = XmlDocument::parse(body);
    REQUIRE_MESSAGE(doc.ok(), doc.error().message);
    return find_soap_fault(*doc);
  };
  auto f11 = fault_of(R"(<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>soap:Client</faultcode>
      <faultstring>
        Session was closed
      </faultstring>
      <detail><ns2:ServiceUnavailableFault xmlns:ns2="http://service.supervisor.ws.five9.com/"/></detail>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>)");
  REQUIRE(f11.has_value());
  CHECK(f11->version == 11);
  CHECK(f11->code == "soap:Client");
  CHECK(f11->reason == "Session was closed");
  CHECK(f11->subcode.empty());

  auto f12 = fault_of(R"(<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
    xmlns:m="http://www.example.org/timeouts" xmlns:xml="http://www.w3.org/XML/1998/namespace">
  <env:Header/>
  <env:Body>
    <env:Fault>
      <env:Code><env:Value>env:Sender</env:Value>
        <env:Subcode><env:Value>m:MessageTimeout</env:Value></env:Subcode></env:Code>
      <env:Reason><env:Text xml:lang="en">Sender Timeout</env:Text>
        <env:Text xml:lang="de">Zeitüberschreitung</env:Text></env:Reason>
    </env:Fault>
  </env:Body>
</env:Envelope>)");
  REQUIRE(f12.has_value());
  CHECK(f12->version == 12);
  CHECK(f12->code == "env:Sender");
  CHECK(f12->subcode == "m:MessageTimeout");
  CHECK(f12->reason == "Sender Timeout");

  CHECK_FALSE(fault_of(kFive9).has_value());
  CHECK_FALSE(fault_of("<Fault><faultcode>x</faultcode></Fault>").has_value());
  // A 1.2 Fault inside a 1.1 envelope is not a fault of either.
  CHECK_FALSE(fault_of(R"(<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"
      xmlns:f="http://www.w3.org/2003/05/soap-envelope"><e:Body><f:Fault/></e:Body></e:Envelope>)")
                  .has_value());
  // A fault missing its parts still counts, with empty code and reason.
  auto bare = fault_of(
      R"(<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault/></e:Body></e:Envelope>)");
  REQUIRE(bare.has_value());
  CHECK(bare->code.empty());
}

TEST_CASE("response map: compile errors name the variable") {
  auto bad = ResponseMap::compile(BodyFormat::json, {{"name", "/a"}, {"id", "/x~2"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message ==
        "variable \"id\": column 3: '~2' is not an escape (~0 is '~', ~1 is '/')");
  auto badx = ResponseMap::compile(BodyFormat::xml, {{"agents", "count(//s:rows"}}, kNs);
  REQUIRE_FALSE(badx.ok());
  CHECK(badx.error().message.rfind("variable \"agents\": column ", 0) == 0);
  CHECK_FALSE(ResponseMap::compile(BodyFormat::json, {{"", "/a"}}).ok());
  CHECK(ResponseMap::compile(BodyFormat::json, {{"a", "/a"}}, kNs).error().message ==
        "namespaces only apply to XML responses");
}

TEST_CASE("response map: JSON, GraphQL and SOAP bodies") {
  auto json = ResponseMap::compile(BodyFormat::json, {{"name", "/customer/name"},
                                                      {"tier", "/customer/tier"},
                                                      {"orders", "/customer/orders/#"},
                                                      {"last", "/customer/orders/-1/id"}});
  REQUIRE(json.ok());
  CHECK(json->size() == 4);
  auto r = json->apply(R"({"customer": {"name": "Ada", "orders": [{"id": 7}, {"id": 9}]}})");
  REQUIRE(r.ok());
  REQUIRE(r->values.size() == 4);
  CHECK(r->values[0].variable == "name");
  CHECK(r->values[0].value == str("Ada"));
  CHECK(r->values[1].value.is_null());
  CHECK(r->values[2].value.text() == "2");
  CHECK(r->values[3].value.text() == "9");
  CHECK_FALSE(r->fault.has_value());
  auto notjson = json->apply("<html>502 Bad Gateway</html>");
  REQUIRE_FALSE(notjson.ok());
  CHECK(notjson.error().code == Errc::parse);

  auto gql = ResponseMap::compile(BodyFormat::graphql, {{"name", "/data/customer/name"}});
  REQUIRE(gql.ok());
  auto good = gql->apply(R"({"data": {"customer": {"name": "Ada"}}})");
  REQUIRE(good.ok());
  CHECK_FALSE(good->fault.has_value());
  CHECK(good->values[0].value == str("Ada"));
  auto errs =
      gql->apply(R"({"data": null, "errors": [{"message": "not allowed", "path": ["customer"]}]})");
  REQUIRE(errs.ok());
  REQUIRE(errs->fault.has_value());
  CHECK(errs->fault->code == "graphql");
  CHECK(errs->fault->message == "not allowed (path: customer)");
  CHECK(errs->values[0].value.is_null());
  auto empty = gql->apply("{}");
  REQUIRE(empty.ok());
  REQUIRE(empty->fault.has_value());
  CHECK(empty->fault->message == "the response has neither data nor errors");
  CHECK_FALSE(gql->apply("[]").ok());

  auto soap = ResponseMap::compile(
      BodyFormat::xml,
      {{"ready", "count(//f:getStatisticsResponse/return/rows[values/data[2]='Ready'])"},
       {"type", "//f:getStatisticsResponse/return/type"}},
      kNs);
  REQUIRE(soap.ok());
  auto s = soap->apply(kFive9);
  REQUIRE(s.ok());
  CHECK(s->values[0].value.text() == "2");
  CHECK(s->values[1].value == str("AgentState"));
  CHECK_FALSE(s->fault.has_value());
  auto fault = soap->apply(R"(<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">
    <S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>Internal error</faultstring>
    </S:Fault></S:Body></S:Envelope>)");
  REQUIRE(fault.ok());
  REQUIRE(fault->fault.has_value());
  CHECK(fault->fault->code == "S:Server");
  CHECK(fault->fault->message == "Internal error");
  CHECK(fault->values[0].value == Value::number(0));
  CHECK(fault->values[1].value.is_null());
  CHECK(soap->apply("<a>").error().code == Errc::parse);
}

TEST_CASE("value: text forms") {
  CHECK(Value().text().empty());
  CHECK(Value::boolean(false).text() == "false");
  CHECK(Value::number(3).text() == "3");
  CHECK(Value::number(-0.0).text() == "0");
  CHECK(Value::number(1.5).text() == "1.5");
  CHECK(Value::number(0.1).text() == "0.1");
  CHECK(Value::number(1e300).text() == "1e+300");
  CHECK(Value::number(123456789012.0).text() == "123456789012");
  CHECK(Value::number(std::nan("")).text() == "NaN");
  CHECK(Value::number(-HUGE_VAL).text() == "-Infinity");
  CHECK(Value::number(2, "2.0").text() == "2.0");
  CHECK(Value::string("x").text() == "x");
  CHECK(std::string(value_kind_name(Value::Kind::number)) == "number");
  CHECK(Value::number(1) != Value::string("1"));
}

namespace {
template <typename F>
struct SecondArg;
template <typename R, typename A, typename B>
struct SecondArg<R (*)(A, B)> {
  using type = B;
};
using XmlErrorArgForTest = SecondArg<xmlStructuredErrorFunc>::type;
int g_host_errors = 0;
void host_handler(void *, XmlErrorArgForTest) {
  ++g_host_errors;
}
}  // namespace

TEST_CASE("xml: the host's libxml2 error handler is left in place") {
  xmlSetStructuredErrorFunc(nullptr, host_handler);
  g_host_errors = 0;
  CHECK_FALSE(XmlDocument::parse("<a><b></a>").ok());
  CHECK_FALSE(XPathExpr::compile("//[", {}).ok());
  CHECK(g_host_errors == 0);
  CHECK((xmlStructuredError == &host_handler));
  xmlSetStructuredErrorFunc(nullptr, nullptr);
}

TEST_CASE("xml and json: documents on two threads at once") {
  auto x = XPathExpr::compile("count(//f:getStatisticsResponse/return/rows)", kNs);
  auto p = JsonPath::parse("/a/*");
  REQUIRE(x.ok());
  REQUIRE(p.ok());
  std::atomic<int> failures{0};
  auto work = [&] {
    for (int i = 0; i < 200; ++i) {
      auto doc = XmlDocument::parse(kFive9);
      auto v = doc.ok() ? x->evaluate(*doc) : Result<Value>(doc.error());
      if (!v.ok() || v->text() != "3") ++failures;
      if (XmlDocument::parse("<a><b></a>").ok()) ++failures;
      auto j = JsonDocument::parse(R"({"a":[1,2]})");
      if (!j.ok() || p->evaluate(*j)->text() != "1,2") ++failures;
    }
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  CHECK(failures == 0);
}
