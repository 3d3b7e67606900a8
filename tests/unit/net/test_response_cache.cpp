// ResponseCache and cache_key(): key normalisation, TTL and stale-window boundaries, what is
// stored, LRU eviction by count and bytes, counters. Time is a virtual steady clock.
#include <doctest/doctest.h>

#include <map>
#include <random>

#include "net/response_cache.h"

using namespace ivr::net;
using namespace std::chrono_literals;

namespace {

const SteadyTime t0 = SteadyTime{} + 1000h;  // an arbitrary origin, far from the epoch

HttpRequest get(std::string url, Headers headers = {}) {
  HttpRequest r;
  r.url = std::move(url);
  r.headers = std::move(headers);
  return r;
}

HttpResponse ok(std::string body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = std::move(body);
  return r;
}

ResponseCache make(ResponseCacheOptions o = {}) {
  auto c = ResponseCache::create(std::move(o));
  REQUIRE(c.ok());
  return std::move(c).value();
}

}  // namespace

TEST_CASE("cache_key: same request, same key; a 64-digit hex digest") {
  auto a = cache_key(get("https://api.example.com/v1/customers?id=42", {{"Accept", "a/b"}}));
  auto b = cache_key(get("https://api.example.com/v1/customers?id=42", {{"Accept", "a/b"}}));
  CHECK(a == b);
  CHECK(a.size() == 64);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("cache_key: header order, name case and value padding are normalised") {
  auto a = cache_key(get("http://h/x", {{"Accept", "application/json"}, {"X-Api-Key", "k1"}}));
  auto b = cache_key(get("http://h/x", {{"x-api-key", "k1"}, {"ACCEPT", " application/json\t"}}));
  CHECK(a == b);
}

TEST_CASE("cache_key: a different value of a vary header gives a different key") {
  auto base = cache_key(get("http://h/x", {{"Accept", "application/json"}}));
  CHECK(base != cache_key(get("http://h/x", {{"Accept", "text/xml"}})));
  CHECK(base != cache_key(get("http://h/x")));  // absent
  CHECK(cache_key(get("http://h/x", {{"Accept", ""}})) != cache_key(get("http://h/x")));
  // A header that is not in vary_headers does not vary the key.
  CHECK(base == cache_key(get("http://h/x", {{"Accept", "application/json"}, {"X-Trace", "1"}})));
}

TEST_CASE("cache_key: secrets vary the key but never appear in it") {
  auto alice = cache_key(get("http://h/x", {{"Authorization", "Bearer alice-secret"}}));
  auto bob = cache_key(get("http://h/x", {{"Authorization", "Bearer bob-secret"}}));
  CHECK(alice != bob);
  CHECK(alice.find("secret") == std::string::npos);
  auto q1 = cache_key(get("http://h/api?user=u&pass=p1"));
  auto q2 = cache_key(get("http://h/api?user=u&pass=p2"));
  CHECK(q1 != q2);
  CHECK(q1.find("p1") == std::string::npos);
  CHECK(cache_key(get("http://u:p1@h/x")) != cache_key(get("http://u:p2@h/x")));
}

TEST_CASE("cache_key: URL normalisation") {
  auto k = cache_key(get("https://api.example.com/Path?q=1"));
  CHECK(k == cache_key(get("HTTPS://API.Example.COM/Path?q=1")));
  CHECK(k == cache_key(get("https://api.example.com:443/Path?q=1")));
  CHECK(k == cache_key(get("https://api.example.com/Path?q=1#fragment")));
  CHECK(k != cache_key(get("https://api.example.com/path?q=1")));  // path is case-sensitive
  CHECK(k != cache_key(get("https://api.example.com/Path?q=2")));
  CHECK(k != cache_key(get("https://api.example.com:8443/Path?q=1")));
  CHECK(k != cache_key(get("http://api.example.com/Path?q=1")));
  CHECK(cache_key(get("http://h/")) == cache_key(get("http://h:80/")));
  CHECK(cache_key(get("http://[::1]:80/")) == cache_key(get("http://[::1]/")));
  CHECK(cache_key(get("http://[::80]/")) != cache_key(get("http://[::]/")));
}

TEST_CASE("cache_key: method, body and options") {
  HttpRequest post = get("http://h/graphql");
  post.method = "post";
  post.body = R"({"query":"{a}"})";
  auto k = cache_key(post);
  HttpRequest upper = post;
  upper.method = "POST";
  CHECK(k == cache_key(upper));
  HttpRequest other = post;
  other.body = R"({"query":"{b}"})";
  CHECK(k != cache_key(other));
  CacheKeyOptions no_body;
  no_body.include_body = false;
  CHECK(cache_key(post, no_body) == cache_key(other, no_body));
  CHECK(cache_key(get("http://h/graphql")) != cache_key(post));  // GET vs POST

  CacheKeyOptions vary;
  vary.vary_headers = {" X-Tenant ", "x-tenant"};  // trimmed, case-insensitive, de-duplicated
  CHECK(cache_key(get("http://h/", {{"x-tenant", "a"}}), vary) !=
        cache_key(get("http://h/", {{"X-TENANT", "b"}}), vary));
  CHECK(cache_key(get("http://h/", {{"Accept", "a"}}), vary) ==
        cache_key(get("http://h/", {{"Accept", "b"}}), vary));
}

TEST_CASE("cache_key: repeated headers join in order; fields cannot run into each other") {
  auto joined = cache_key(get("http://h/", {{"Accept", "a"}, {"Accept", "b"}}));
  CHECK(joined == cache_key(get("http://h/", {{"Accept", "a, b"}})));  // same meaning in HTTP
  CHECK(joined != cache_key(get("http://h/", {{"Accept", "b"}, {"Accept", "a"}})));
  // Length-prefixed fields: moving bytes between URL and body changes the key.
  HttpRequest a = get("http://h/ab");
  HttpRequest b = get("http://h/a");
  b.body = "b";
  CHECK(cache_key(a) != cache_key(b));
}

TEST_CASE("cache_key_label: no query, no userinfo") {
  CHECK(cache_key_label(get("https://user:pw@Api.Example.com:8443/v1/x?pass=secret")) ==
        "GET https://api.example.com:8443/v1/x");
  CHECK(cache_key_label(get("http://h")) == "GET http://h/");
  CHECK(cache_key_label(get("nonsense")) == "GET (unparsed URL)");
}

TEST_CASE("ResponseCache: fresh until exactly the TTL, then a miss without stale window") {
  auto cache = make();
  REQUIRE(cache.store("k", ok("body"), {1000ms, 0ms}, t0) == StoreResult::stored);
  auto at = cache.lookup("k", t0);
  CHECK(at.state == CacheState::fresh);
  REQUIRE(at.response);
  CHECK(at.response->body == "body");
  CHECK(at.response->status == 200);
  CHECK(at.response->headers.size() == 1);
  CHECK(cache.lookup("k", t0 + 999ms).state == CacheState::fresh);
  CHECK(cache.lookup("k", t0 + 999ms + 999us).age == 999ms);
  auto expired = cache.lookup("k", t0 + 1000ms);
  CHECK(expired.state == CacheState::miss);
  CHECK(!expired.response);
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.counters().hits == 3);
  CHECK(cache.counters().misses == 1);
  CHECK(cache.counters().expirations == 1);
  CHECK(cache.counters().evictions == 0);
}

TEST_CASE("ResponseCache: stale-if-error window boundaries") {
  auto cache = make();
  REQUIRE(cache.store("k", ok("v1"), {1000ms, 500ms}, t0) == StoreResult::stored);
  CHECK(cache.lookup("k", t0 + 999ms).state == CacheState::fresh);
  auto stale = cache.lookup("k", t0 + 1000ms);
  CHECK(stale.state == CacheState::stale);
  REQUIRE(stale.response);
  CHECK(stale.response->body == "v1");
  CHECK(stale.age == 1000ms);
  CHECK(cache.lookup("k", t0 + 1499ms).state == CacheState::stale);
  CHECK(cache.lookup("k", t0 + 1500ms).state == CacheState::miss);
  CHECK(cache.size() == 0);
  cache.note_stale_served();
  const auto &c = cache.counters();
  CHECK(c.hits == 1);
  CHECK(c.stale_hits == 2);
  CHECK(c.stale_served == 1);
  CHECK(c.misses == 1);
  CHECK(c.expirations == 1);
}

TEST_CASE("ResponseCache: a zero TTL with a stale window is a fallback-only entry") {
  auto cache = make();
  REQUIRE(cache.store("k", ok("v"), {0ms, 60000ms}, t0) == StoreResult::stored);
  CHECK(cache.lookup("k", t0).state == CacheState::stale);
  CHECK(cache.store("z", ok("v"), {0ms, 0ms}, t0) == StoreResult::no_lifetime);
  CHECK(cache.store("n", ok("v"), {-5ms, -1ms}, t0) == StoreResult::no_lifetime);
  CHECK(cache.counters().not_stored == 2);
  // Lifetimes beyond a year are clamped, not overflowed.
  REQUIRE(cache.store("long", ok("v"), {Millis::max(), Millis::max()}, t0) == StoreResult::stored);
  CHECK(cache.lookup("long", t0 + kMaxCacheLifetime - 1ms).state == CacheState::fresh);
  CHECK(cache.lookup("long", t0 + kMaxCacheLifetime).state == CacheState::stale);
}

TEST_CASE("ResponseCache: only cacheable outcomes are stored; a failure keeps the old entry") {
  auto cache = make();
  CHECK(cache.store("k", ok("x", 201), {1s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.store("a", ok("x", 404), {1s, 0ms}, t0) == StoreResult::not_cacheable);
  CHECK(cache.store("b", ok("x", 500), {1s, 0ms}, t0) == StoreResult::not_cacheable);
  CHECK(cache.store("c", ok("x", 304), {1s, 0ms}, t0) == StoreResult::not_cacheable);
  HttpResponse timeout;
  timeout.error = HttpErrc::timeout;
  CHECK(cache.store("d", timeout, {1s, 0ms}, t0) == StoreResult::not_cacheable);
  // A transport error is never cached, even with status 0 listed.
  ResponseCacheOptions all;
  all.cacheable_statuses = StatusSet{{0, 999}};
  auto lax = make(all);
  CHECK(lax.store("d", timeout, {1s, 0ms}, t0) == StoreResult::not_cacheable);
  CHECK(lax.store("e", ok("gone", 404), {1s, 0ms}, t0) == StoreResult::stored);

  REQUIRE(cache.store("live", ok("good"), {1s, 10s}, t0) == StoreResult::stored);
  CHECK(cache.store("live", ok("down", 503), {1s, 10s}, t0 + 2s) == StoreResult::not_cacheable);
  auto fallback = cache.lookup("live", t0 + 2s);
  CHECK(fallback.state == CacheState::stale);
  CHECK(fallback.response->body == "good");
  CHECK(cache.counters().stores == 2);
  CHECK(cache.counters().not_stored == 5);
}

TEST_CASE("ResponseCache: replacing an entry renews it and re-counts its bytes") {
  auto cache = make();
  REQUIRE(cache.store("k", ok("short"), {1s, 0ms}, t0) == StoreResult::stored);
  REQUIRE(cache.store("k", ok(std::string(1000, 'x')), {1s, 0ms}, t0 + 900ms) ==
          StoreResult::stored);
  CHECK(cache.size() == 1);
  CHECK(cache.bytes() == ResponseCache::entry_bytes("k", ok(std::string(1000, 'x'))));
  auto l = cache.lookup("k", t0 + 1500ms);
  CHECK(l.state == CacheState::fresh);
  CHECK(l.response->body.size() == 1000);
  CHECK(l.age == 600ms);
}

TEST_CASE("ResponseCache: LRU eviction by entry count; lookups refresh recency") {
  ResponseCacheOptions o;
  o.max_entries = 3;
  auto cache = make(o);
  for (const char *k : {"a", "b", "c"})
    REQUIRE(cache.store(k, ok(k), {10s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.lookup("a", t0).state == CacheState::fresh);  // order now a, c, b (b oldest)
  REQUIRE(cache.store("d", ok("d"), {10s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.size() == 3);
  CHECK(cache.lookup("b", t0).state == CacheState::miss);
  CHECK(cache.counters().evictions == 1);
  REQUIRE(cache.store("e", ok("e"), {10s, 0ms}, t0) == StoreResult::stored);  // evicts c
  CHECK(cache.lookup("c", t0).state == CacheState::miss);
  CHECK(cache.lookup("a", t0).state == CacheState::fresh);
  CHECK(cache.lookup("d", t0).state == CacheState::fresh);
  CHECK(cache.lookup("e", t0).state == CacheState::fresh);
  CHECK(cache.counters().evictions == 2);
  // A stale lookup refreshes recency too.
  REQUIRE(cache.store("s", ok("s"), {0ms, 10s}, t0) == StoreResult::stored);  // evicts a
  CHECK(cache.lookup("d", t0).state == CacheState::fresh);
  CHECK(cache.lookup("s", t0).state == CacheState::stale);                    // order s, d, e
  REQUIRE(cache.store("f", ok("f"), {10s, 0ms}, t0) == StoreResult::stored);  // evicts e
  CHECK(cache.lookup("e", t0).state == CacheState::miss);
  CHECK(cache.lookup("s", t0).state == CacheState::stale);
}

TEST_CASE("ResponseCache: LRU eviction by total bytes") {
  const size_t one = ResponseCache::entry_bytes("k1", ok(std::string(100, 'x')));
  ResponseCacheOptions o;
  o.max_total_bytes = 3 * one;
  o.max_entry_bytes = 3 * one;
  auto cache = make(o);
  for (const char *k : {"k1", "k2", "k3"})
    REQUIRE(cache.store(k, ok(std::string(100, 'x')), {10s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.bytes() == 3 * one);
  // One entry the size of two evicts the two least recently used.
  std::string big_body(100 + one, 'y');
  REQUIRE(ResponseCache::entry_bytes("k4", ok(big_body)) == 2 * one);
  CHECK(cache.lookup("k1", t0).state == CacheState::fresh);  // k2, k3 are now the oldest
  REQUIRE(cache.store("k4", ok(big_body), {10s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.size() == 2);
  CHECK(cache.bytes() == 3 * one);
  CHECK(cache.lookup("k2", t0).state == CacheState::miss);
  CHECK(cache.lookup("k3", t0).state == CacheState::miss);
  CHECK(cache.lookup("k1", t0).state == CacheState::fresh);
  CHECK(cache.counters().evictions == 2);
}

TEST_CASE("ResponseCache: an entry above max_entry_bytes is not stored and evicts nothing") {
  ResponseCacheOptions o;
  o.max_entry_bytes = 1000;
  o.max_total_bytes = 4000;
  auto cache = make(o);
  REQUIRE(cache.store("small", ok("s"), {10s, 0ms}, t0) == StoreResult::stored);
  std::string body(1000, 'x');
  CHECK(ResponseCache::entry_bytes("big", ok(body)) > 1000);
  CHECK(cache.store("big", ok(body), {10s, 0ms}, t0) == StoreResult::too_large);
  CHECK(cache.size() == 1);
  CHECK(cache.counters().evictions == 0);
  // Just at the limit is stored.
  HttpResponse fit = ok("");
  fit.body.assign(1000 - ResponseCache::entry_bytes("fit", fit), 'x');
  REQUIRE(ResponseCache::entry_bytes("fit", fit) == 1000);
  CHECK(cache.store("fit", fit, {10s, 0ms}, t0) == StoreResult::stored);
}

TEST_CASE("ResponseCache: options are validated; zero entries disables the cache") {
  ResponseCacheOptions bad;
  bad.max_entry_bytes = 10;
  bad.max_total_bytes = 5;
  auto c = ResponseCache::create(bad);
  REQUIRE(!c.ok());
  CHECK(c.error().code == ivr::Errc::invalid_argument);
  CHECK(c.error().message.find("max_entry_bytes") != std::string::npos);

  ResponseCacheOptions off;
  off.max_entries = 0;
  auto cache = make(off);
  CHECK(cache.store("k", ok("v"), {1s, 0ms}, t0) == StoreResult::too_large);
  CHECK(cache.lookup("k", t0).state == CacheState::miss);
}

TEST_CASE("ResponseCache: a looked-up response outlives its eviction") {
  ResponseCacheOptions o;
  o.max_entries = 1;
  auto cache = make(o);
  REQUIRE(cache.store("a", ok("first"), {10s, 0ms}, t0) == StoreResult::stored);
  auto held = cache.lookup("a", t0).response;
  REQUIRE(cache.store("b", ok("second"), {10s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.lookup("a", t0).state == CacheState::miss);
  CHECK(held->body == "first");
}

TEST_CASE("ResponseCache: erase, clear, purge_expired") {
  auto cache = make();
  REQUIRE(cache.store("a", ok("a"), {1s, 0ms}, t0) == StoreResult::stored);
  REQUIRE(cache.store("b", ok("b"), {1s, 1s}, t0) == StoreResult::stored);
  REQUIRE(cache.store("c", ok("c"), {5s, 0ms}, t0) == StoreResult::stored);
  CHECK(cache.purge_expired(t0 + 999ms) == 0);
  CHECK(cache.purge_expired(t0 + 1s) == 1);  // a
  CHECK(cache.size() == 2);
  CHECK(cache.purge_expired(t0 + 2s) == 1);  // b, whose stale window ended
  CHECK(cache.counters().expirations == 2);
  CHECK(cache.erase("c"));
  CHECK(!cache.erase("c"));
  CHECK(cache.bytes() == 0);
  REQUIRE(cache.store("d", ok("d"), {1s, 0ms}, t0) == StoreResult::stored);
  cache.clear();
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.lookup("d", t0).state == CacheState::miss);
}

TEST_CASE("ResponseCache: random operations keep the limits and the byte count exact") {
  ResponseCacheOptions o;
  o.max_entries = 8;
  o.max_total_bytes = 4096;
  o.max_entry_bytes = 1500;
  auto cache = make(o);
  std::mt19937 rng(7);
  SteadyTime now = t0;
  std::map<std::string, size_t> sizes;  // what the last successful store of each key weighed
  for (int i = 0; i < 5000; ++i) {
    std::string key = "k" + std::to_string(rng() % 20);
    now += Millis{rng() % 50};
    switch (rng() % 4) {
      case 0:
      case 1: {
        HttpResponse r = ok(std::string(rng() % 1600, 'x'), rng() % 5 == 0 ? 500 : 200);
        StoreResult s = cache.store(key, r, {Millis{rng() % 500}, Millis{rng() % 500}}, now);
        if (s == StoreResult::stored) sizes[key] = ResponseCache::entry_bytes(key, r);
        break;
      }
      case 2:
        cache.lookup(key, now);
        break;
      case 3:
        if (rng() % 10 == 0) cache.purge_expired(now);
        break;
    }
    REQUIRE(cache.size() <= o.max_entries);
    REQUIRE(cache.bytes() <= o.max_total_bytes);
  }
  // Whatever is still there weighs what it weighed when stored.
  size_t total = 0;
  for (const auto &[key, bytes] : sizes)
    if (cache.lookup(key, now).state != CacheState::miss) total += bytes;
  CHECK(total == cache.bytes());
  const auto &c = cache.counters();
  CHECK(c.stores > 0);
  CHECK(c.evictions > 0);
  CHECK(c.expirations > 0);
}
