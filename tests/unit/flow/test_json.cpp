#include <doctest/doctest.h>

#include "common/json.h"

using namespace ivr;

TEST_CASE("json: values with positions") {
  auto d = json::parse("{\n  \"a\": [1, 2.5, \"x\"],\n  \"b\": {\"c\": true, \"d\": null}\n}");
  REQUIRE(d.ok());
  const json::Value &r = d->root();
  REQUIRE(r.is(json::Kind::object));
  const json::Value *a = r.find("a");
  REQUIRE(a);
  CHECK(a->items.size() == 3);
  CHECK(a->items[0].integral);
  CHECK_FALSE(a->items[1].integral);
  CHECK(a->items[2].string == "x");
  json::Position p = d->position(a->offset);
  CHECK(p.line == 2);
  CHECK(p.column == 8);
  const json::Value *b = r.find("b");
  REQUIRE(b);
  CHECK(b->find("c")->boolean);
  CHECK(b->find("d")->is(json::Kind::null));
  CHECK(d->position(r.members[1].key_offset).column == 3);
}

TEST_CASE("json: errors name line and column") {
  auto d = json::parse("{\n  \"a\": 1,\n  \"a\": 2\n}");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message == "line 3, column 3: duplicate key \"a\"");
  CHECK_FALSE(json::parse("").ok());
  CHECK_FALSE(json::parse("{\"a\": }").ok());
  CHECK_FALSE(json::parse("{} x").ok());
  CHECK_FALSE(json::parse("[1, 2").ok());
  CHECK_FALSE(json::parse("{\"a\": tru}").ok());
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto r = json::parse(deep);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("nesting deeper") != std::string::npos);
}

TEST_CASE("json: scalar documents and pointers") {
  auto d = json::parse("  42 ");
  REQUIRE(d.ok());
  CHECK(d->root().number == 42);
  CHECK(json::pointer_append("/a", "b/c~d") == "/a/b~1c~0d");
  CHECK(json::pointer_append("", size_t{3}) == "/3");
}
