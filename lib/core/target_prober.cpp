#include "core/target_prober.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>
#include <vector>

#include "core/event_loop.h"

namespace ivr::core {

namespace {
constexpr const char *kSub = "probe";
constexpr uint32_t kMaxDefaultTimeoutMs = 5000;

// The URI to probe: the first of the target's, with its transport when the URI has none.
std::string probe_uri(const routing::SipTarget &t) {
  if (t.transport == routing::Transport::udp || t.uri.find(";transport=") != std::string::npos)
    return t.uri;
  return t.uri + ";transport=" + routing::transport_name(t.transport);
}
}  // namespace

bool probe_success(const sip::OptionsResult &r) {
  if (r.outcome != sip::OptionsResult::Outcome::response) return false;
  return r.status >= 200 && r.status < 500 && r.status != 408;
}

std::string describe_probe(const sip::OptionsResult &r) {
  using O = sip::OptionsResult::Outcome;
  switch (r.outcome) {
    case O::response:
      return std::to_string(r.status) + " " + r.phrase + " (" + std::to_string(r.rtt_ms) + " ms)";
    case O::timeout:
      return "timeout after " + std::to_string(r.rtt_ms) + " ms" +
             (r.status ? " (" + std::to_string(r.status) + " " + r.phrase + ")" : "");
    case O::transport_error:
      return "transport error: " + (r.status ? std::to_string(r.status) + " " : "") + r.phrase;
    case O::cancelled:
      return "cancelled: " + r.phrase;
  }
  return "?";
}

struct TargetProber::Impl : std::enable_shared_from_this<Impl> {
  struct Entry {
    std::string uri;
    uint32_t interval_ms = 0;
    std::unique_ptr<Timer> timer;
    bool in_flight = false;
    bool last_success = true;
    ProbeStats stats;
  };

  Impl(event_base *b, sip::SipStack &s, routing::TargetPool &p, ProberOptions o)
      : base(b), sip(s), pool(p), opts(std::move(o)) {}

  void probe(const std::string &name) {
    auto it = entries.find(name);
    if (it == entries.end()) return;
    Entry &e = it->second;
    e.timer->arm(e.interval_ms);  // fixed rate: the next probe does not wait for this one
    if (e.in_flight) {
      ++e.stats.skipped;
      IVR_LOG(opts.logger, debug, kSub, "target %s: previous probe still in flight", name.c_str());
      return;
    }
    uint32_t timeout =
        opts.timeout_ms ? opts.timeout_ms : std::min(e.interval_ms, kMaxDefaultTimeoutMs);
    std::weak_ptr<Impl> weak = shared_from_this();
    const uint64_t gen = generation;
    bool sent = sip.send_options(e.uri, timeout, [weak, gen, name](sip::OptionsResult r) {
      if (auto self = weak.lock(); self && self->generation == gen)
        self->on_result(name, std::move(r));
    });
    if (!sent) {
      IVR_LOG(opts.logger, warn, kSub, "target %s: OPTIONS to %s not sent: SIP stack stopped",
              name.c_str(), e.uri.c_str());
      return;
    }
    e.in_flight = true;
    ++e.stats.sent;
  }

  void on_result(const std::string &name, sip::OptionsResult r) {
    auto it = entries.find(name);
    if (it == entries.end()) return;
    Entry &e = it->second;
    e.in_flight = false;
    if (r.outcome == sip::OptionsResult::Outcome::cancelled) return;  // stack shutting down
    const bool ok = probe_success(r);
    e.stats.streak = (ok == e.last_success) ? e.stats.streak + 1 : 1;
    e.last_success = ok;
    ++(ok ? e.stats.successes : e.stats.failures);
    e.stats.last = describe_probe(r);
    IVR_LOG(opts.logger, debug, kSub, "target %s: OPTIONS %s: %s", name.c_str(), e.uri.c_str(),
            e.stats.last.c_str());
    auto index = pool.find(name);
    if (!index) return;  // reconfigured away; start() will forget it
    auto change = pool.record_probe(*index, ok, std::chrono::steady_clock::now());
    if (!change) return;
    std::string why = std::to_string(e.stats.streak) +
                      (ok ? (e.stats.streak == 1 ? " success" : " successes")
                          : (e.stats.streak == 1 ? " failure" : " failures")) +
                      ": " + e.stats.last;
    if (change->to == routing::Health::down)
      IVR_LOG(opts.logger, warn, kSub, "target %s: down (%s)", name.c_str(), why.c_str());
    else
      IVR_LOG(opts.logger, info, kSub, "target %s: %s (%s)", name.c_str(),
              routing::health_name(change->to), why.c_str());
    if (opts.on_change) opts.on_change(*change, why);
  }

  event_base *base;
  sip::SipStack &sip;
  routing::TargetPool &pool;
  ProberOptions opts;
  std::map<std::string, Entry, std::less<>> entries;
  uint64_t generation = 0;  // results of an earlier start() are ignored
};

TargetProber::TargetProber(event_base *base, sip::SipStack &sip, routing::TargetPool &pool,
                           ProberOptions options)
    : impl_(std::make_shared<Impl>(base, sip, pool, std::move(options))) {}

TargetProber::~TargetProber() {
  stop();
}

void TargetProber::start() {
  stop();
  Impl &im = *impl_;
  for (routing::TargetIndex i = 0; i < im.pool.size(); ++i) {
    const routing::TargetConfig &c = im.pool.config(i);
    if (!c.probe.enabled || c.uris.empty()) continue;
    Impl::Entry e;
    e.uri = probe_uri(c.uris.front());
    e.interval_ms = im.opts.interval_ms ? im.opts.interval_ms : c.probe.interval_s * 1000;
    if (e.interval_ms == 0) e.interval_ms = 1000;
    std::weak_ptr<Impl> weak = impl_;
    std::string name = c.name;
    e.timer = std::make_unique<Timer>(im.base, [weak, name] {
      if (auto self = weak.lock()) self->probe(name);
    });
    im.entries.emplace(c.name, std::move(e));
  }
  IVR_LOG(im.opts.logger, info, kSub, "probing %zu target(s)", im.entries.size());
  std::vector<std::string> names;
  for (auto &[name, e] : im.entries) names.push_back(name);
  for (auto &name : names) im.probe(name);
}

void TargetProber::stop() {
  ++impl_->generation;
  impl_->entries.clear();  // the timers go with them
}

const ProbeStats *TargetProber::stats(std::string_view target) const {
  auto it = impl_->entries.find(target);
  return it == impl_->entries.end() ? nullptr : &it->second.stats;
}

}  // namespace ivr::core
