#include "routing/availability_poller.h"

#include <event2/event.h>

#include <algorithm>

#include "net/http_service.h"

namespace ivr::routing {

namespace {

timeval to_timeval(Millis d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>(d.count() % 1000 * 1000)};
}

// The URL for a message: no query (VICIdial puts credentials there), no userinfo.
std::string shown_url(const std::string &url) {
  std::string u = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = u.find("://");
  const size_t at = u.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme)
    u.erase(scheme + 3, at - scheme - 2);
  return u;
}

}  // namespace

struct AvailabilityPoller::Impl {
  struct Conn {
    Impl *owner = nullptr;
    ConnectorConfig config;
    ConnectorState state;
    event *poll_timer = nullptr;
    event *stale_timer = nullptr;
    std::optional<uint64_t> in_flight;
  };

  event_base *base = nullptr;
  net::HttpService *http = nullptr;
  AvailabilityHandlers handlers;
  std::vector<std::shared_ptr<Conn>> conns;

  ~Impl() {
    for (auto &c : conns) {
      if (c->in_flight) http->cancel(*c->in_flight);  // its callback finds the Conn gone
      if (c->poll_timer) event_free(c->poll_timer);
      if (c->stale_timer) event_free(c->stale_timer);
    }
  }

  static void on_poll_timer(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<Conn *>(arg);
    c->owner->poll(*c);
  }
  static void on_stale_timer(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<Conn *>(arg);
    c->owner->report_stale(*c);
  }

  void arm_stale(Conn &c) {
    const timeval tv = to_timeval(c.config.stale_after);
    evtimer_add(c.stale_timer, &tv);
  }

  void report_stale(Conn &c) {
    if (c.state.stale) return;
    c.state.stale = true;
    std::string why = "connector " + c.config.name + ": no good sample for " +
                      std::to_string(c.config.stale_after.count()) + " ms";
    if (!c.state.last_error.empty()) why += " (last error: " + c.state.last_error + ")";
    if (handlers.on_stale) handlers.on_stale(c.config, why);
  }

  void fail(Conn &c, Errc code, std::string message) {
    ++c.state.errors;
    Error e{code, "connector " + c.config.name + ": " + message};
    c.state.last_error = message;
    if (handlers.on_error) handlers.on_error(c.config, e);
  }

  void poll(Conn &c) {
    if (c.in_flight) {  // the previous poll is still running: skip this turn
      ++c.state.skipped;
      return;
    }
    ++c.state.polls;
    net::FetchRequest req;
    req.request.method = c.config.method;
    req.request.url = c.config.url;
    req.request.headers = c.config.headers;
    req.request.body = c.config.body;
    req.request.timeout_ms = static_cast<uint32_t>(c.config.timeout.count());
    req.request.connect_timeout_ms = std::min<uint32_t>(2000, req.request.timeout_ms);
    req.auth = c.config.auth;
    req.max_attempts = 1;  // the next interval is the retry
    req.budget = c.config.timeout + Millis(100);
    std::weak_ptr<Conn> weak;
    for (auto &p : conns)
      if (p.get() == &c) weak = p;
    c.in_flight = http->fetch(std::move(req), [weak](net::FetchResult &&r) {
      if (auto conn = weak.lock()) conn->owner->done(*conn, std::move(r));
    });
  }

  void done(Conn &c, net::FetchResult &&r) {
    c.in_flight.reset();
    if (!r.reason.empty()) {
      fail(c, Errc::io,
           "request to " + shown_url(c.config.url) + " failed (" + r.reason + "): " + r.error);
      return;
    }
    if (r.response.status < 200 || r.response.status > 299) {
      fail(c, Errc::io,
           "HTTP " + std::to_string(r.response.status) + " from " + shown_url(c.config.url));
      return;
    }
    auto sample = map_availability(c.config.mapping, r.response.body);
    if (!sample.ok()) {
      fail(c, sample.error().code, sample.error().message);
      return;
    }
    ++c.state.samples;
    c.state.last = sample.value();
    c.state.stale = false;
    c.state.last_error.clear();
    arm_stale(c);
    if (handlers.on_sample) handlers.on_sample(c.config, sample.value());
  }
};

AvailabilityPoller::AvailabilityPoller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AvailabilityPoller::~AvailabilityPoller() = default;

Result<std::unique_ptr<AvailabilityPoller>> AvailabilityPoller::create(
    event_base *base, net::HttpService &http, std::vector<ConnectorConfig> connectors,
    AvailabilityHandlers handlers) {
  auto impl = std::make_unique<Impl>();
  impl->base = base;
  impl->http = &http;
  impl->handlers = std::move(handlers);
  for (auto &cfg : connectors) {
    if (Status s = validate_connector(cfg, "routing.connectors." + shown_name(cfg.name)); !s)
      return s.error();
    for (auto &other : impl->conns)
      if (other->config.name == cfg.name)
        return Error{Errc::invalid_argument,
                     "routing.connectors." + cfg.name + ": connector named twice"};
    auto c = std::make_shared<Impl::Conn>();
    c->owner = impl.get();
    c->config = std::move(cfg);
    if (c->config.target.empty()) c->config.target = c->config.name;
    c->poll_timer = event_new(base, -1, EV_PERSIST, &Impl::on_poll_timer, c.get());
    c->stale_timer = evtimer_new(base, &Impl::on_stale_timer, c.get());
    impl->conns.push_back(c);  // freed by ~Impl even if the check below fails
    if (!c->poll_timer || !c->stale_timer)
      return Error{Errc::no_memory, "routing.connectors: cannot create timers"};
  }
  return std::unique_ptr<AvailabilityPoller>(new AvailabilityPoller(std::move(impl)));
}

void AvailabilityPoller::start() {
  for (auto &c : impl_->conns) {
    const timeval tv = to_timeval(c->config.interval);
    event_add(c->poll_timer, &tv);
    impl_->arm_stale(*c);
    impl_->poll(*c);
  }
}

const ConnectorState *AvailabilityPoller::state(std::string_view connector) const {
  for (auto &c : impl_->conns)
    if (c->config.name == connector) return &c->state;
  return nullptr;
}

}  // namespace ivr::routing
