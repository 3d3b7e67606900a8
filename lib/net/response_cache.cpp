#include "net/response_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace ivr::net {

using namespace policy_detail;

namespace {

// Feeds the canonical rendering into SHA-256. Every field is a one-byte tag and a length
// before its bytes, so no two different requests render the same byte string.
class KeyDigest {
 public:
  KeyDigest() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1;
  }
  void field(char tag, std::string_view bytes) {
    std::array<unsigned char, 9> head{};
    head[0] = static_cast<unsigned char>(tag);
    uint64_t n = bytes.size();
    for (int i = 0; i < 8; ++i) head[1 + i] = static_cast<unsigned char>(n >> (8 * i));
    update(head.data(), head.size());
    update(bytes.data(), bytes.size());
  }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_.get(), md.data(), &len) != 1) return {};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 15]);
    }
    return out;
  }

 private:
  void update(const void *data, size_t n) {
    if (ok_ && n > 0) ok_ = EVP_DigestUpdate(ctx_.get(), data, n) == 1;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
  bool ok_ = false;
};

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

struct UrlParts {
  std::string scheme;     // lower case
  std::string authority;  // userinfo@ kept; host lower-cased; default port dropped
  std::string_view rest;  // path and query, fragment dropped
  bool parsed = false;
};

UrlParts split_url(std::string_view url) {
  UrlParts parts;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return parts;
  parts.scheme = to_lower(url.substr(0, sep));
  std::string_view tail = url.substr(sep + 3);
  size_t end = tail.find_first_of("/?#");
  std::string_view authority = tail.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : tail.substr(end);
  rest = rest.substr(0, rest.find('#'));
  std::string_view userinfo;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    userinfo = authority.substr(0, at + 1);
    authority.remove_prefix(at + 1);
  }
  std::string host = to_lower(authority);
  std::string_view default_port = parts.scheme == "https" ? ":443" : ":80";
  if (host.size() > default_port.size() && host.ends_with(default_port) &&
      (host.front() != '[' || host[host.size() - default_port.size() - 1] == ']'))
    host.resize(host.size() - default_port.size());
  else if (host.ends_with(':'))  // "host:" is "host" with the default port
    host.pop_back();
  parts.authority = std::string(userinfo) + host;
  parts.rest = rest;
  parts.parsed = true;
  return parts;
}

constexpr size_t kEntryOverhead = 128;  // list node, index slot, time stamps, control block
constexpr size_t kHeaderOverhead = 64;  // two std::string objects per header

}  // namespace

std::string cache_key(const HttpRequest &request, const CacheKeyOptions &options) {
  KeyDigest digest;
  digest.field('M', to_upper(request.method));
  UrlParts url = split_url(request.url);
  if (url.parsed) {
    digest.field('S', url.scheme);
    digest.field('A', url.authority);
    digest.field('P', url.rest);
  } else {
    digest.field('U', request.url);
  }
  std::vector<std::string> names;
  names.reserve(options.vary_headers.size());
  for (const auto &name : options.vary_headers) names.push_back(to_lower(trim(name)));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const auto &name : names) {
    std::string joined;
    bool present = false;
    for (const auto &[key, value] : request.headers) {
      if (!iequals(trim(key), name)) continue;
      if (present) joined += ", ";
      joined += trim(value);
      present = true;
    }
    digest.field(present ? 'H' : 'h', name);
    if (present) digest.field('V', joined);
  }
  if (options.include_body) digest.field('B', request.body);
  return digest.hex();
}

std::string cache_key_label(const HttpRequest &request) {
  UrlParts url = split_url(request.url);
  if (!url.parsed) return to_upper(request.method) + " (unparsed URL)";
  std::string_view host = url.authority;
  if (size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  std::string_view path = url.rest.substr(0, url.rest.find('?'));
  return to_upper(request.method) + " " + url.scheme + "://" + std::string(host) +
         std::string(path.empty() ? "/" : path);
}

const char *cache_state_name(CacheState s) {
  switch (s) {
    case CacheState::miss:
      return "miss";
    case CacheState::fresh:
      return "fresh";
    case CacheState::stale:
      return "stale";
  }
  return "?";
}

const char *store_result_name(StoreResult r) {
  switch (r) {
    case StoreResult::stored:
      return "stored";
    case StoreResult::not_cacheable:
      return "not_cacheable";
    case StoreResult::too_large:
      return "too_large";
    case StoreResult::no_lifetime:
      return "no_lifetime";
  }
  return "?";
}

Status ResponseCacheOptions::validate() const {
  if (max_entry_bytes > max_total_bytes)
    return Status(Errc::invalid_argument, "max_entry_bytes: larger than max_total_bytes");
  return {};
}

Result<ResponseCache> ResponseCache::create(ResponseCacheOptions options) {
  if (Status s = options.validate(); !s.ok()) return s.error();
  return ResponseCache(std::move(options));
}

size_t ResponseCache::entry_bytes(std::string_view key, const HttpResponse &response) {
  size_t n = kEntryOverhead + key.size() + response.body.size() + response.error_text.size() +
             response.effective_url.size();
  for (const auto &[name, value] : response.headers)
    n += kHeaderOverhead + name.size() + value.size();
  return n;
}

void ResponseCache::drop(Lru::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

CacheLookup ResponseCache::lookup(std::string_view key, SteadyTime now) {
  auto found = index_.find(key);
  if (found == index_.end()) {
    ++counters_.misses;
    return {};
  }
  Lru::iterator it = found->second;
  if (now >= it->stale_until) {
    drop(it);
    ++counters_.expirations;
    ++counters_.misses;
    return {};
  }
  lru_.splice(lru_.begin(), lru_, it);
  CacheLookup result;
  result.response = it->response;
  result.age = std::max(Millis{0}, std::chrono::duration_cast<Millis>(now - it->stored_at));
  if (now < it->fresh_until) {
    result.state = CacheState::fresh;
    ++counters_.hits;
  } else {
    result.state = CacheState::stale;
    ++counters_.stale_hits;
  }
  return result;
}

StoreResult ResponseCache::store(std::string key, const HttpResponse &response,
                                 CacheLifetime lifetime, SteadyTime now) {
  auto refuse = [this](StoreResult why) {
    ++counters_.not_stored;
    return why;
  };
  if (response.error != HttpErrc::none || !options_.cacheable_statuses.contains(response.status))
    return refuse(StoreResult::not_cacheable);
  Millis ttl = std::clamp(lifetime.ttl, Millis{0}, kMaxCacheLifetime);
  Millis stale = std::clamp(lifetime.stale_if_error, Millis{0}, kMaxCacheLifetime);
  if (ttl.count() == 0 && stale.count() == 0) return refuse(StoreResult::no_lifetime);
  size_t size = entry_bytes(key, response);
  if (options_.max_entries == 0 || size > options_.max_entry_bytes ||
      size > options_.max_total_bytes)
    return refuse(StoreResult::too_large);

  if (auto old = index_.find(std::string_view(key)); old != index_.end()) drop(old->second);
  while (!lru_.empty() &&
         (lru_.size() >= options_.max_entries || bytes_ + size > options_.max_total_bytes)) {
    drop(std::prev(lru_.end()));
    ++counters_.evictions;
  }
  Entry entry;
  entry.key = std::move(key);
  entry.response = std::make_shared<const HttpResponse>(response);
  entry.stored_at = now;
  entry.fresh_until = now + ttl;
  entry.stale_until = entry.fresh_until + stale;
  entry.bytes = size;
  lru_.push_front(std::move(entry));
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += size;
  ++counters_.stores;
  return StoreResult::stored;
}

bool ResponseCache::erase(std::string_view key) {
  auto found = index_.find(key);
  if (found == index_.end()) return false;
  drop(found->second);
  return true;
}

void ResponseCache::clear() {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

size_t ResponseCache::purge_expired(SteadyTime now) {
  size_t dropped = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (now >= it->stale_until) {
      drop(it);
      ++dropped;
    }
    it = next;
  }
  counters_.expirations += dropped;
  return dropped;
}

}  // namespace ivr::net
