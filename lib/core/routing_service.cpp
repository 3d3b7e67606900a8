#include "core/routing_service.h"

#include "core/delivery.h"
#include "core/engine.h"

namespace ivr::core {
namespace {

// Reservations older than this were lost by a delivery that never came back (a safety net:
// every path releases its slot).
constexpr auto kReservationMaxAge = std::chrono::minutes(10);
constexpr uint32_t kTickMs = 1000;

}  // namespace

RoutingService::RoutingService(Engine &engine) : engine_(engine) {}

RoutingService::~RoutingService() {
  stop();
}

Status RoutingService::configure(routing::RoutingConfig config) {
  if (stopped_) return Error{Errc::gone, "routing: the engine has stopped"};
  const auto now = this->now();
  auto connectors = config.connectors;
  if (router_) {
    // The prober and poller hold pool indexes: stop them before the pool changes.
    if (auto st = routing::Router::validate(config); !st) return st;
    prober_.reset();
    poller_.reset();
    if (auto st = router_->reconfigure(std::move(config), now); !st) {
      start_feeds();  // the old configuration's feeds
      return st;
    }
  } else {
    auto router = routing::Router::create(std::move(config), now);
    if (!router) return router.error();
    router_.emplace(std::move(*router));
  }
  ++generation_;
  connectors_ = std::move(connectors);
  start_feeds();
  if (!tick_) {
    tick_ = std::make_unique<Timer>(engine_.loop().base(), [this] { tick(); });
    tick_->arm(kTickMs);
  }
  IVR_LOG(engine_.logger(), info, "routing", "routing configured: %zu targets, %zu plans",
          router_->pool().size(), router_->plan_count());
  pump_soon();
  return {};
}

void RoutingService::start_feeds() {
  ProberOptions po;
  po.logger = engine_.logger();
  po.on_change = [this](const routing::HealthChange &c, const std::string &why) {
    on_health_change(c, why);
  };
  prober_ = std::make_unique<TargetProber>(engine_.loop().base(), engine_.sip(), router_->pool(),
                                           std::move(po));
  prober_->start();

  // Connectors name their target; samples reach the pool by name (indexes may go stale).
  if (connectors_.empty()) return;
  net::HttpService *http = engine_.http();
  if (!http) {
    IVR_LOG(engine_.logger(), warn, "routing", "availability connectors not started: %s",
            engine_.http_error().message.c_str());
    return;
  }
  routing::AvailabilityHandlers h;
  auto target_of = [this](const routing::ConnectorConfig &c) {
    return router_->pool().find(c.target.empty() ? c.name : c.target);
  };
  h.on_sample = [this, target_of](const routing::ConnectorConfig &c,
                                  const routing::AvailabilitySample &s) {
    if (auto t = target_of(c)) {
      router_->pool().update_availability(*t, s, now());
      pump_soon();
    }
  };
  h.on_stale = [this, target_of](const routing::ConnectorConfig &c, const std::string &why) {
    IVR_LOG(engine_.logger(), warn, "routing", "connector %s: availability stale: %s",
            c.name.c_str(), why.c_str());
    if (auto t = target_of(c)) router_->pool().mark_availability_stale(*t);
  };
  h.on_error = [this](const routing::ConnectorConfig &c, const Error &e) {
    IVR_LOG(engine_.logger(), warn, "routing", "connector %s: %s", c.name.c_str(),
            e.message.c_str());
  };
  auto poller =
      routing::AvailabilityPoller::create(engine_.loop().base(), *http, connectors_, std::move(h));
  if (!poller) {
    IVR_LOG(engine_.logger(), error, "routing", "availability connectors: %s",
            poller.error().message.c_str());
    return;
  }
  poller_ = std::move(*poller);
  poller_->start();
}

void RoutingService::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  tick_.reset();
  prober_.reset();
  poller_.reset();
}

void RoutingService::on_health_change(const routing::HealthChange &c, const std::string &why) {
  IVR_LOG(engine_.logger(), info, "routing", "target %s: %s -> %s (%s)",
          router_->pool().name(c.target).c_str(), routing::health_name(c.from),
          routing::health_name(c.to), why.c_str());
  if (c.to == routing::Health::up) pump_soon();
}

void RoutingService::add_leg(sip::DialogId leg, std::weak_ptr<Delivery> delivery) {
  legs_[leg] = std::move(delivery);
}

void RoutingService::remove_leg(sip::DialogId leg) {
  legs_.erase(leg);
}

bool RoutingService::on_sip_event(sip::SipEvent &event) {
  auto it = legs_.find(event.dialog);
  if (it == legs_.end()) return false;
  auto delivery = it->second.lock();
  if (event.kind == sip::SipEvent::Kind::terminated) legs_.erase(it);
  if (delivery) {
    delivery->on_leg_event(event);
  } else if (event.kind == sip::SipEvent::Kind::answered) {
    engine_.sip().hangup(event.dialog, "call gone");  // answered after its caller left
  }
  return true;
}

void RoutingService::add_waiting(uint64_t call, std::weak_ptr<Delivery> delivery) {
  waiting_[call] = std::move(delivery);
  pump_soon();
}

void RoutingService::remove_waiting(uint64_t call) {
  waiting_.erase(call);
}

void RoutingService::pump_soon() {
  if (pump_posted_ || stopped_ || waiting_.empty()) return;
  pump_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  engine_.loop().post([this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    pump_posted_ = false;
    pump();
  });
}

void RoutingService::pump() {
  if (!router_ || queue_.empty()) return;
  auto &pool = router_->pool();
  const auto now = this->now();
  // Every target with a free slot offers it to the first waiting call that accepts it, until
  // it has no slot left or no waiting call wants it.
  for (routing::TargetIndex t = 0; t < pool.size(); ++t) {
    while (pool.free_slots(t, now) > 0) {
      auto offer = queue_.offer(pool, t, now, [this, t](const routing::QueuedCall &qc) {
        auto it = waiting_.find(qc.call);
        if (it == waiting_.end()) return false;
        auto d = it->second.lock();
        return d && d->accepts(t);
      });
      if (!offer) break;
      auto it = waiting_.find(offer->call);
      auto d = it == waiting_.end() ? nullptr : it->second.lock();
      if (!d) {
        (void)queue_.cancel(*offer, pool);
        (void)queue_.remove(offer->call, pool);
        continue;
      }
      d->on_offer(*offer);
    }
  }
}

void RoutingService::tick() {
  tick_->arm(kTickMs);
  if (!router_) return;
  const auto now = this->now();
  for (const auto &qc : queue_.expire(now)) {
    auto it = waiting_.find(qc.call);
    if (it == waiting_.end()) continue;
    auto d = it->second.lock();
    waiting_.erase(it);
    if (d) d->on_queue_expired();
  }
  for (const auto &slot : router_->pool().expire_reservations(now, kReservationMaxAge))
    IVR_LOG(engine_.logger(), warn, "routing", "reservation %llu on target %u expired unused",
            static_cast<unsigned long long>(slot.id), slot.target);
  pump();
}

}  // namespace ivr::core
