// The engine's routing: the Router (targets, plans, strategies) with its live TargetPool, the
// priority CallQueue, the SIP OPTIONS prober and the availability poller, plus the outbound
// legs of calls being delivered (docs/routing.md, "In the engine").
//
// Threading: engine loop only. Route steps (core/delivery.h) drive it; it offers freed slots
// to waiting calls (pump), expires queue deadlines and stale reservations once a second, and
// hands SIP events of outbound legs to their delivery.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "core/event_loop.h"
#include "core/target_prober.h"
#include "routing/availability_poller.h"
#include "routing/call_queue.h"
#include "routing/config.h"
#include "routing/router.h"
#include "sip/sip_stack.h"

namespace ivr::core {

class Engine;
class Delivery;

class RoutingService {
 public:
  explicit RoutingService(Engine &engine);
  ~RoutingService();
  RoutingService(const RoutingService &) = delete;
  RoutingService &operator=(const RoutingService &) = delete;

  // Applies a configuration: a new Router, or the running one reconfigured (live target
  // state kept by name); probes and availability polls restart. Errors name the field; on
  // error nothing changes.
  Status configure(routing::RoutingConfig config);
  // At engine stop: no more probes, polls or timers.
  void stop();

  bool configured() const { return router_.has_value(); }
  routing::Router &router() { return *router_; }
  routing::TargetPool &pool() { return router_->pool(); }
  routing::CallQueue &queue() { return queue_; }
  // Bumped by every configure(): target indexes taken before are stale.
  uint64_t generation() const { return generation_; }
  routing::Instant now() const { return std::chrono::steady_clock::now(); }

  // ---- outbound legs ----
  // A media session id for an outbound leg (apart from the inbound calls' dialog ids).
  uint64_t next_leg_session() { return kLegSessionBit | ++leg_sessions_; }
  void add_leg(sip::DialogId leg, std::weak_ptr<Delivery> delivery);
  void remove_leg(sip::DialogId leg);
  // True when the event belonged to an outbound leg (handed to its delivery, or dropped when
  // the delivery is gone).
  bool on_sip_event(sip::SipEvent &event);

  // ---- the queue ----
  // A delivery waits: the pump offers it slots that its accept() allows.
  void add_waiting(uint64_t call, std::weak_ptr<Delivery> delivery);
  void remove_waiting(uint64_t call);
  // Offers free slots to waiting calls soon (coalesced; never re-entrant).
  void pump_soon();

  // The engine's webhook/host event for a target health change and the like go through log
  // lines for now; counters are read by the admin API later.
 private:
  static constexpr uint64_t kLegSessionBit = 1ull << 62;
  void pump();
  void tick();
  void start_feeds();  // prober and availability poller for the current configuration
  void on_health_change(const routing::HealthChange &change, const std::string &why);

  Engine &engine_;
  std::optional<routing::Router> router_;
  routing::CallQueue queue_;
  uint64_t generation_ = 0;
  std::unique_ptr<TargetProber> prober_;
  std::unique_ptr<routing::AvailabilityPoller> poller_;
  std::vector<routing::ConnectorConfig> connectors_;  // of the running configuration
  std::unordered_map<sip::DialogId, std::weak_ptr<Delivery>> legs_;
  std::unordered_map<uint64_t, std::weak_ptr<Delivery>> waiting_;
  std::unique_ptr<Timer> tick_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards posted pumps
  bool pump_posted_ = false;
  uint64_t leg_sessions_ = 0;
  bool stopped_ = false;
};

}  // namespace ivr::core
