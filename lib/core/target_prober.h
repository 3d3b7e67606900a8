// TargetProber: the SIP OPTIONS health probe of every target (docs/routing.md, "Health
// probes"). Every interval it sends OPTIONS to the target's first URI through SipStack,
// turns the outcome into success/failure (probe_success) and feeds TargetPool::record_probe,
// whose hysteresis decides up/down; changes are logged and handed to on_change.
//
// Threading: loop thread only (timers on `base`). The SipStack's sink must deliver
// SipEvent::Kind::options to this loop and call options_done there (Engine::on_sip_event
// does). Results that arrive after the prober is gone are dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/log.h"
#include "routing/target_pool.h"
#include "sip/sip_stack.h"

struct event_base;

namespace ivr::core {

// Any 2xx, and any 3xx-4xx except 408 (the host's SIP stack answered: an unknown user, a
// missing OPTIONS handler or an auth challenge still mean it is alive), counts as up; 408,
// 5xx, 6xx, no answer and transport errors count as failures.
bool probe_success(const sip::OptionsResult &r);
// "200 OK (3 ms)", "503 Service Unavailable", "timeout after 200 ms", "transport error: ...".
std::string describe_probe(const sip::OptionsResult &r);

struct ProberOptions {
  uint32_t interval_ms = 0;  // 0: each target's probe.interval_s; else this for all (tests)
  uint32_t timeout_ms = 0;   // per probe; 0: the interval, at most 5000 ms
  LoggerPtr logger;
  // A health change (after record_probe); `why` is the last result and the streak.
  std::function<void(const routing::HealthChange &, const std::string &why)> on_change;
};

struct ProbeStats {
  uint64_t sent = 0, successes = 0, failures = 0;
  uint64_t skipped = 0;  // an interval passed while the previous probe was still in flight
  uint32_t streak = 0;   // consecutive results like the last one
  std::string last;      // describe_probe of the last result
};

class TargetProber {
 public:
  // The stack and the pool must outlive the prober.
  TargetProber(event_base *base, sip::SipStack &sip, routing::TargetPool &pool,
               ProberOptions options);
  ~TargetProber();
  TargetProber(const TargetProber &) = delete;
  TargetProber &operator=(const TargetProber &) = delete;

  // (Re)reads the pool's targets (those with probe.enabled and a URI) and probes each at
  // once, then every interval. Call again after TargetPool::configure.
  void start();
  void stop();  // no more probes; results in flight are ignored
  const ProbeStats *stats(std::string_view target) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ivr::core
