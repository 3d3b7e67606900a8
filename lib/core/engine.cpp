#include "core/engine.h"

#include "core/event_json.h"

namespace ivr::core {

namespace {

// Secrets the host sets through the C ABI, readable from the engine loop while another
// thread sets them.
class HostSecrets final : public net::SecretStore {
 public:
  void set(std::string_view name, std::string value) {
    std::lock_guard lock(mu_);
    if (value.empty())
      values_.erase(std::string(name));
    else
      values_[std::string(name)] = std::move(value);
  }
  std::optional<std::string> find(std::string_view name) const override {
    std::lock_guard lock(mu_);
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::string where(std::string_view) const override { return "the engine's secrets"; }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace

Engine::Engine(EngineOptions options)
    : options_(std::move(options)), prompts_(options_.prompt_dir), databases_(options_.logger) {
  host_secrets_ = std::make_shared<HostSecrets>();
  secrets_ =
      std::make_shared<net::ChainSecretStore>(std::vector<std::shared_ptr<const net::SecretStore>>{
          host_secrets_, std::make_shared<net::EnvSecretStore>()});
  flows_ = std::make_unique<FlowRunner>(*this);
  flows_->library().set_prompt_dir(options_.prompt_dir);
}

Engine::~Engine() {
  stop("engine freed");
}

Status Engine::start() {
  if (started_) return Error{Errc::bad_state, "engine already started"};
  auto loop = EventLoop::create();
  if (!loop) return loop.error();
  loop_ = std::move(*loop);
  worker_ = std::make_unique<BlockingWorker>();
  // Text-to-speech is optional: without espeak-ng, say fails with its reason.
  if (auto synthesizer = media::make_espeak_synthesizer()) {
    tts_ = std::make_unique<media::TtsService>(std::move(*synthesizer), options_.tts);
  } else {
    tts_error_ = synthesizer.error();
    IVR_LOG(options_.logger, warn, "tts", "text-to-speech unavailable: %s",
            tts_error_.message.c_str());
  }

  // Decoding every prompt up front keeps first plays off the worker; a bad file is not
  // fatal: calls that ask for it get PROMPT_FINISHED failed.
  std::vector<Error> errors;
  size_t loaded = prompts_.preload_all(&errors);
  for (const auto &e : errors) IVR_LOG(options_.logger, warn, "prompt", "%s", e.message.c_str());
  IVR_LOG(options_.logger, info, "prompt", "%zu prompts loaded from %s", loaded,
          prompts_.directory().c_str());

  auto media_options = options_.media;
  media_options.logger = options_.logger;
  media_options.sink = [this](media::MediaEvent &&event) {
    loop_->post([this, event = std::move(event)]() mutable { on_media_event(event); });
  };
  auto media = media::MediaEngine::create(std::move(media_options));
  if (!media) {
    tts_.reset();
    loop_.reset();
    worker_.reset();
    return Error{Errc::media, media.error().message};
  }
  media_ = std::move(*media);
  {
    net::AuthProfilesOptions ao;
    ao.secrets = secrets_;
    ao.logger = options_.logger;
    auto auth = net::AuthProfiles::create(loop_->base(), std::move(ao));
    if (!auth) {
      media_.reset();
      tts_.reset();
      loop_.reset();
      worker_.reset();
      return auth.error();
    }
    std::lock_guard lock(auth_mutex_);
    auth_ = std::move(*auth);
    if (auto st = auth_->replace_all(std::move(pending_auth_)); !st)
      IVR_LOG(options_.logger, error, "http", "auth profiles: %s", st.error().message.c_str());
    pending_auth_.clear();
  }
  loop_->start();
  // Webhooks before SIP: opening the spool blocks (recovery), which is harmless while no
  // call is served, and the first call's events find the dispatcher ready.
  if (webhooks_enabled()) {
    if (auto s = run_on_engine([this] { return start_webhooks(); }); !s) {
      loop_->stop();
      media_.reset();
      tts_.reset();
      worker_.reset();
      loop_.reset();
      return s;
    }
  }

  // Database connectors before SIP, so the first call's db steps find them.
  (void)run_on_engine([this] {
    databases_.attach(*loop_,
                      [this](const std::function<Status()> &fn) { return run_on_engine(fn); });
    return Status{};
  });

  auto sip_options = options_.sip;
  sip_options.logger = options_.logger;
  sip_options.sink = [this](sip::SipEvent &&event) {
    loop_->post([this, event = std::move(event)]() mutable { on_sip_event(event); });
  };
  auto sip = sip::SipStack::start(std::move(sip_options));
  if (!sip) {
    (void)run_on_engine([this] {
      stop_webhooks();
      databases_.detach();
      return Status{};
    });
    {
      std::lock_guard lock(webhook_mutex_);
      webhooks_live_ = false;  // a retried start applies the webhooks again
    }
    loop_->stop();
    media_.reset();
    tts_.reset();
    worker_.reset();
    loop_.reset();
    return Error{Errc::sip, sip.error().message};
  }
  sip_ = std::move(*sip);
  sip_port_ = sip_->bound_port();
  // Routing after SIP: its prober sends OPTIONS.
  (void)run_on_engine([this] {
    routing_ = std::make_unique<RoutingService>(*this);
    std::optional<routing::RoutingConfig> pending;
    {
      std::lock_guard lock(routing_mutex_);
      pending.swap(pending_routing_);
      routing_live_ = true;  // later configurations go straight to the service
    }
    if (pending)
      if (auto st = routing_->configure(std::move(*pending)); !st)
        IVR_LOG(options_.logger, error, "routing", "%s", st.error().message.c_str());
    return Status{};
  });
  started_ = true;
  IVR_LOG(options_.logger, info, "engine", "listening on sip:%s:%u", options_.sip.address.c_str(),
          static_cast<unsigned>(sip_port_.load()));
  return {};
}

void Engine::stop(const std::string &reason) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // The SIP thread ends every dialog; their terminated events reach the loop and become
  // CALL_ENDED events while we wait here.
  sip_->shutdown(reason);
  // Calls whose dialog vanished without a terminated event still get their CALL_ENDED.
  (void)run_on_engine([this, &reason] {
    auto calls = calls_;
    for (auto &[id, call] : calls) call->force_end(EndReason::engine_stop, reason);
    return Status{};
  });
  // Every CALL_ENDED has been published: closing flushes the spool, so the last events are
  // durable before stop returns.
  (void)run_on_engine([this] {
    stop_webhooks();
    databases_.detach();  // after every call ended: no db step is waiting any more
    if (routing_) routing_->stop();
    return Status{};
  });
  loop_->stop();
  routing_.reset();  // after the loop: tasks it ran may still have reached it
  http_.reset();     // its in-flight requests are dropped; the flows they served have ended
  {
    std::lock_guard lock(auth_mutex_);
    auth_.reset();  // after http_: the service asks it to authorize
  }
  sip_.reset();
  tts_.reset();  // abandons queued syntheses; their results find the loop stopped
  worker_.reset();
  media_.reset();
  IVR_LOG(options_.logger, info, "engine", "stopped (%s)", reason.c_str());
}

net::HttpService *Engine::http() {
  if (http_ || !loop_) return http_.get();
  net::HttpServiceOptions ho;
  ho.logger = options_.logger;
  auto made = net::HttpService::create(loop_->base(), std::move(ho), auth_.get());
  if (!made) {
    http_error_ = made.error();
    IVR_LOG(options_.logger, error, "http", "no HTTP client: %s", http_error_.message.c_str());
    return nullptr;
  }
  http_ = std::move(*made);
  http_->on_breaker_change([this](const net::BreakerTransition &t) {
    IVR_LOG(options_.logger, warn, "http", "circuit for %s: %s -> %s (%u failures in a row)",
            t.host.c_str(), net::breaker_state_name(t.from), net::breaker_state_name(t.to),
            t.consecutive_failures);
  });
  return http_.get();
}

Status Engine::add_database(const std::string &name, db::ConnectorConfig config,
                            const std::string &password_secret) {
  if (!net::valid_secret_name(name) || name.find_first_of(".-") != std::string::npos)
    return Error{Errc::invalid_argument,
                 "db: name \"" + name + "\" is not an identifier (letters, digits, '_')"};
  if (!password_secret.empty() && !net::valid_secret_name(password_secret))
    return Error{Errc::invalid_argument, "db." + name + ".password_secret: not a secret name"};
  config.name = name;
  if (auto st = db::check_config(config); !st)
    return Error{st.error().code, "db." + name + "." + st.error().message};
  std::shared_ptr<net::SecretStore> secrets = secrets_;
  return databases_.add(name,
                        [config, password_secret, secrets](
                            const db::LoopContext &ctx) -> Result<std::unique_ptr<db::Connector>> {
                          db::ConnectorConfig c = config;
                          if (!password_secret.empty()) {
                            auto value = secrets->find(password_secret);
                            if (!value)
                              return Error{Errc::invalid_argument,
                                           "password_secret: no secret \"" + password_secret +
                                               "\" (" + secrets->where(password_secret) + ")"};
                            c.password = *value;
                          }
                          return db::open_connector(c, ctx);
                        });
}

Status Engine::set_auth_profiles(std::string_view json) {
  auto profiles = net::parse_auth_profiles(json);
  if (!profiles) return profiles.error();
  std::lock_guard lock(auth_mutex_);
  if (!auth_) {
    for (const auto &[name, config] : *profiles)
      if (auto st = net::validate_auth_profile(config); !st)
        return Error{st.error().code, "auth." + name + "." + st.error().message};
    pending_auth_ = std::move(*profiles);
    return {};
  }
  return auth_->replace_all(std::move(*profiles));
}

Status Engine::set_secret(std::string_view name, std::string value) {
  if (!net::valid_secret_name(name))
    return Error{Errc::invalid_argument, "name: 1-128 characters of A-Z a-z 0-9 _ . -"};
  // The chain's first store is the host's.
  static_cast<HostSecrets &>(*host_secrets_).set(name, std::move(value));
  return {};
}

Status Engine::start_webhooks() {
  net::WebhookDispatcherOptions o;
  o.spool.directory = options_.webhook_spool_dir;
  if (options_.webhook_spool_max_bytes) o.spool.max_bytes = options_.webhook_spool_max_bytes;
  o.spool.logger = options_.logger;
  o.logger = options_.logger;
  o.http.user_agent = options_.sip.user_agent.empty() ? "libivr" : options_.sip.user_agent;
  o.on_report = [logger = options_.logger](const net::DeliveryReport &r) {
    switch (r.outcome) {
      case net::DeliveryOutcome::delivered:
        IVR_LOG(logger, debug, "webhook", "event %s (%s) delivered to %s, attempt %u", r.id.c_str(),
                r.event_type.c_str(), r.subscription.c_str(), r.attempt);
        break;
      case net::DeliveryOutcome::retry:
        IVR_LOG(logger, info, "webhook", "event %s (%s) to %s: attempt %u failed: %s; next at %s",
                r.id.c_str(), r.event_type.c_str(), r.subscription.c_str(), r.attempt,
                r.error.c_str(), net::rfc3339_utc_ms(r.next_attempt_ms).c_str());
        break;
      case net::DeliveryOutcome::dead_lettered:
        IVR_LOG(logger, warn, "webhook", "event %s (%s) to %s is a dead letter: %s", r.id.c_str(),
                r.event_type.c_str(), r.subscription.c_str(), r.error.c_str());
        break;
    }
  };
  auto made = net::WebhookDispatcher::create(loop_->base(), std::move(o));
  if (!made) return Error{made.error().code, "webhooks: " + made.error().message};
  std::map<std::string, net::WebhookSubscription> subscriptions;
  {
    std::lock_guard lock(webhook_mutex_);
    webhooks_live_ = true;
    subscriptions = webhook_subscriptions_;  // kept should SIP fail and start be retried
  }
  for (auto &[name, sub] : subscriptions)
    if (auto s = (*made)->set_subscription(sub); !s)
      IVR_LOG(options_.logger, error, "webhook", "subscription %s: %s", name.c_str(),
              s.error().message.c_str());
  (*made)->start();  // resumes what an earlier run left in the spool
  webhooks_ = std::move(*made);
  auto c = webhooks_->counters();
  IVR_LOG(options_.logger, info, "webhook", "spool %s: %zu subscriptions, %zu queued, %zu dead",
          options_.webhook_spool_dir.c_str(), subscriptions.size(), c.queued, c.dead);
  return {};
}

void Engine::stop_webhooks() {
  if (!webhooks_) return;
  if (auto s = webhooks_->close(); !s)
    IVR_LOG(options_.logger, error, "webhook", "closing the spool: %s", s.error().message.c_str());
  auto c = webhooks_->counters();
  IVR_LOG(options_.logger, info, "webhook", "spool closed: %zu queued, %zu dead letters", c.queued,
          c.dead);
  webhooks_.reset();
}

Status Engine::set_webhook(net::WebhookSubscription subscription) {
  if (!webhooks_enabled())
    return Error{Errc::bad_state, "webhooks are off: the engine has no webhook_spool_dir"};
  if (auto s = subscription.validate(); !s) return s;
  {
    std::lock_guard lock(webhook_mutex_);
    if (!webhooks_live_) {
      std::string name = subscription.name;
      webhook_subscriptions_[name] = std::move(subscription);
      return {};
    }
  }
  return run_on_engine([&]() -> Status {
    if (!webhooks_) return Error{Errc::gone, "webhooks: the engine has stopped"};
    return webhooks_->set_subscription(std::move(subscription));
  });
}

Status Engine::remove_webhook(const std::string &name) {
  if (!webhooks_enabled())
    return Error{Errc::bad_state, "webhooks are off: the engine has no webhook_spool_dir"};
  {
    std::lock_guard lock(webhook_mutex_);
    if (!webhooks_live_) {
      if (webhook_subscriptions_.erase(name) == 0)
        return Error{Errc::not_found, "webhook '" + name + "': no such subscription"};
      return {};
    }
  }
  return run_on_engine([&]() -> Status {
    if (!webhooks_) return Error{Errc::gone, "webhooks: the engine has stopped"};
    return webhooks_->remove_subscription(name);
  });
}

void Engine::publish_webhook(const CallEvent &event) {
  if (!webhooks_ || !event.call) return;
  std::string_view type = webhook_event_type(event.type);
  if (type.empty()) return;
  Call &call = *event.call;
  uint64_t seq = call.next_event_seq();
  // Never let a webhook problem reach the call: errors are logged and counted.
  try {
    std::string json = event_json(event, call.facts(), call.timeline(), seq);
    auto done = [this, type, call_id = call.facts().call_id, seq](Status s) {
      if (s) return;
      webhook_spool_errors_.fetch_add(1);
      IVR_LOG(options_.logger, error, "webhook", "event %.*s (call %s, seq %llu) not durable: %s",
              static_cast<int>(type.size()), type.data(), call_id.c_str(),
              static_cast<unsigned long long>(seq), s.error().message.c_str());
    };
    auto ids = webhooks_->publish(type, json, std::move(done));
    if (!ids)
      IVR_LOG(options_.logger, error, "webhook", "event %.*s (call %s, seq %llu) not spooled: %s",
              static_cast<int>(type.size()), type.data(), call.facts().call_id.c_str(),
              static_cast<unsigned long long>(seq), ids.error().message.c_str());
  } catch (const std::exception &ex) {
    IVR_LOG(options_.logger, error, "webhook", "event %.*s (call %s, seq %llu) not spooled: %s",
            static_cast<int>(type.size()), type.data(), call.facts().call_id.c_str(),
            static_cast<unsigned long long>(seq), ex.what());
  }
}

Status Engine::run_on_engine(const std::function<Status()> &fn) {
  if (!loop_) return Error{Errc::bad_state, "engine not started"};
  if (loop_->in_loop_thread()) return fn();
  std::promise<Status> done;
  auto result = done.get_future();
  if (!loop_->post([&] { done.set_value(fn()); })) return Error{Errc::gone, "engine stopped"};
  return result.get();
}

void Engine::emit(CallEvent event) {
  // Events raised while the host is inside a callback (a play replacing a play, ...) are
  // queued and delivered after it returns: callbacks never nest.
  pending_.push_back(std::move(event));
  if (dispatching_) return;
  dispatching_ = true;
  while (!pending_.empty()) {
    CallEvent next = std::move(pending_.front());
    pending_.pop_front();
    flows_->observe(next);  // the flow acts first; the host sees where the call is
    publish_webhook(next);  // spooled (durable soon) before the host sees it
    if (sink_) sink_(next);
  }
  dispatching_ = false;
}

void Engine::remove_call(sip::DialogId id) {
  if (calls_.erase(id)) call_count_.fetch_sub(1);
}

std::shared_ptr<Call> Engine::find(uint64_t id) {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : it->second;
}

Status Engine::set_routing(std::string_view json) {
  auto config = routing::parse_routing_config(json);
  if (!config) return config.error();
  return set_routing(std::move(*config));
}

Status Engine::set_routing(routing::RoutingConfig config) {
  {
    std::lock_guard lock(routing_mutex_);
    if (!routing_live_) {
      if (auto st = routing::validate_routing_config(config); !st) return st;
      pending_routing_ = std::move(config);
      return {};
    }
  }
  auto shared = std::make_shared<routing::RoutingConfig>(std::move(config));
  return run_on_engine([this, shared] {
    if (!routing_) return Status{Errc::gone, "routing: the engine has stopped"};
    return routing_->configure(std::move(*shared));
  });
}

void Engine::on_sip_event(sip::SipEvent &event) {
  using Kind = sip::SipEvent::Kind;
  if (routing_ && event.kind != Kind::invite && event.kind != Kind::options &&
      routing_->on_sip_event(event))
    return;  // an outbound leg of a call being routed
  if (event.kind == Kind::invite) {
    CallFacts facts{std::move(event.call_id), std::move(event.from),
                    std::move(event.to),      std::move(event.from_user),
                    std::move(event.to_user), std::move(event.request_uri),
                    std::move(event.contact), std::move(event.remote_signaling),
                    std::move(event.headers)};
    auto call = std::make_shared<Call>(*this, event.dialog, std::move(facts));
    calls_[event.dialog] = call;
    call_count_.fetch_add(1);
    IVR_LOG(options_.logger, info, "call", "call %s from %s to %s", call->facts().call_id.c_str(),
            call->facts().from_user.c_str(), call->facts().to_user.c_str());
    call->set_offer(event.has_sdp ? std::optional<std::string>(std::move(event.sdp))
                                  : std::nullopt);
    CallEvent started;
    started.type = EventType::call_started;
    started.call = call;
    emit(std::move(started));
    call->after_started();
    return;
  }
  if (event.kind == Kind::options) {  // an OPTIONS probe's result, for whoever sent it
    if (event.options_done) event.options_done(std::move(event.options));
    return;
  }
  auto call = find(event.dialog);
  if (!call) return;  // a dialog we already finished
  switch (event.kind) {
    case Kind::reinvite:
      call->on_reinvite(event);
      break;
    case Kind::ack:
      call->on_ack(event);
      break;
    case Kind::info_dtmf:
      call->on_dtmf(event.dtmf);
      break;
    case Kind::terminated:
      call->on_terminated(event);
      break;
    case Kind::invite:
    case Kind::options:
    case Kind::refer:
      call->on_refer(event);
      break;
    case Kind::progress:  // outbound legs: handled by routing above
    case Kind::answered:
      break;
  }
}

void Engine::on_media_event(media::MediaEvent &event) {
  auto call = find(event.session);
  if (!call) return;
  using Kind = media::MediaEvent::Kind;
  switch (event.kind) {
    case Kind::dtmf:
      call->on_dtmf(event.dtmf);
      break;
    case Kind::playback_finished:
      call->on_playback_finished(event.playback_id, event.playback_end);
      break;
    case Kind::remote_latched:
      call->on_latched(event.detail);
      break;
    case Kind::rtp_timeout:
      break;
  }
}

}  // namespace ivr::core
