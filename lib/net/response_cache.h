// ResponseCache: a TTL cache of HTTP responses with a stale-if-error window, bounded by entry
// count and total bytes with LRU eviction. It never reads a clock (every time is passed in as
// `now`) and does no I/O, so it is deterministic and tested without sleeping.
//
// Threading: not thread-safe. One cache belongs to the engine loop and is used only there
// (the HTTP client's completions run on that loop too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "net/http_client.h"
#include "net/policy_common.h"

namespace ivr::net {

// What varies the cache key besides the method, the URL and the body.
struct CacheKeyOptions {
  // Request headers whose values vary the answer, matched case-insensitively. Secrets
  // (authorization, cookie, API keys) belong here: two users must not share an answer.
  std::vector<std::string> vary_headers = {"accept",       "accept-language", "authorization",
                                           "content-type", "cookie",          "proxy-authorization",
                                           "x-api-key"};
  bool include_body = true;  // false: requests differing only in body share an entry
};

// The cache key of a rendered request: 64 lower-case hex digits, the SHA-256 of a canonical,
// length-prefixed rendering of
//   - the method, upper-cased;
//   - the URL with scheme and host lower-cased, a default port (:80 for http, :443 for
//     https) and the fragment dropped; userinfo, path and query kept byte for byte;
//   - for each vary header, in sorted order of its lower-cased name: whether the request
//     has it and, if so, its values (each trimmed of spaces and tabs, repeats joined with
//     ", " in request order). Header order and name case in the request do not matter;
//   - the body (when include_body).
// Being a digest, the key carries no secret in clear (credentials in headers, userinfo or a
// query string) and has a fixed size. Compute it on the request before any per-request
// signing (HMAC/SigV4 add a timestamped Authorization that would never match).
std::string cache_key(const HttpRequest &request, const CacheKeyOptions &options = {});

// "METHOD scheme://host:port/path" (no userinfo, no query): what a log line may name.
std::string cache_key_label(const HttpRequest &request);

enum class CacheState : uint8_t {
  miss,   // nothing usable: go to the network
  fresh,  // serve it without a request
  stale,  // go to the network; serve this only if the live request fails
};
const char *cache_state_name(CacheState s);  // "miss", "fresh", "stale"

struct CacheLookup {
  CacheState state = CacheState::miss;
  std::shared_ptr<const HttpResponse> response;  // null on a miss; stays valid after eviction
  Millis age{0};                                 // now - stored_at (0 on a miss)
};

// How long one stored response lives. Times are half-open intervals from the store:
// [0, ttl) fresh, [ttl, ttl + stale_if_error) stale, then gone.
struct CacheLifetime {
  Millis ttl{0};
  Millis stale_if_error{0};
};
inline constexpr Millis kMaxCacheLifetime{Millis{365LL * 24 * 3600 * 1000}};  // longer: clamped

struct ResponseCacheOptions {
  size_t max_entries = 1024;                              // 0 disables the cache
  size_t max_total_bytes = size_t{16} << 20;              // sum of entry_bytes() over all entries
  size_t max_entry_bytes = size_t{1} << 20;               // a larger entry is not stored
  StatusSet cacheable_statuses = StatusSet::successes();  // 2xx; transport errors never
  // Errc::invalid_argument naming the field: max_entry_bytes above max_total_bytes.
  Status validate() const;
};

enum class StoreResult : uint8_t {
  stored,
  not_cacheable,  // a transport error or a status outside cacheable_statuses
  too_large,      // entry_bytes() above max_entry_bytes (or the cache is disabled)
  no_lifetime,    // ttl and stale_if_error both zero (or negative)
};
const char *store_result_name(StoreResult r);

struct CacheCounters {
  uint64_t hits = 0;          // lookups that returned fresh
  uint64_t stale_hits = 0;    // lookups that returned stale (a fallback was available)
  uint64_t stale_served = 0;  // note_stale_served(): the fallback was actually used
  uint64_t misses = 0;        // lookups that returned miss (expired entries included)
  uint64_t stores = 0;        // store() == stored
  uint64_t not_stored = 0;    // store() != stored
  uint64_t evictions = 0;     // entries dropped for room (LRU)
  uint64_t expirations = 0;   // entries dropped because their stale window had passed
};

class ResponseCache {
 public:
  static Result<ResponseCache> create(ResponseCacheOptions options = {});

  // Fresh, stale or miss for `key` at `now`. A found entry becomes the most recently used;
  // an entry past its stale window is dropped and counts as a miss.
  CacheLookup lookup(std::string_view key, SteadyTime now);

  // Stores a copy of `response` under `key`, replacing an older entry. A response that is
  // not stored leaves an existing entry alone (a 503 must not wipe the stale copy that
  // stale-if-error would serve). Evicts least recently used entries until the new one fits.
  StoreResult store(std::string key, const HttpResponse &response, CacheLifetime lifetime,
                    SteadyTime now);

  // The caller served a stale lookup because the live request failed (counters only).
  void note_stale_served() { ++counters_.stale_served; }

  bool erase(std::string_view key);
  void clear();
  // Drops every entry past its stale window; returns how many (counted as expirations).
  size_t purge_expired(SteadyTime now);

  size_t size() const { return index_.size(); }
  size_t bytes() const { return bytes_; }
  const CacheCounters &counters() const { return counters_; }
  const ResponseCacheOptions &options() const { return options_; }

  // What one entry counts against the byte limits: the key, the response's strings (headers,
  // body, error text, effective URL) and a fixed overhead per entry and per header.
  static size_t entry_bytes(std::string_view key, const HttpResponse &response);

 private:
  explicit ResponseCache(ResponseCacheOptions options) : options_(std::move(options)) {}

  struct Entry {
    std::string key;
    std::shared_ptr<const HttpResponse> response;
    SteadyTime stored_at;
    SteadyTime fresh_until;
    SteadyTime stale_until;
    size_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // front = most recently used

  void drop(Lru::iterator it);

  ResponseCacheOptions options_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;  // views into Entry::key
  size_t bytes_ = 0;
  CacheCounters counters_;
};

}  // namespace ivr::net
