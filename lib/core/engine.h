// The engine: owns the engine loop, the SIP stack, the media engine and every call.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/log.h"
#include "common/result.h"
#include "core/blocking_worker.h"
#include "core/call.h"
#include "core/call_event.h"
#include "core/databases.h"
#include "core/event_loop.h"
#include "core/flow_runner.h"
#include "core/routing_service.h"
#include "media/media_engine.h"
#include "media/prompt.h"
#include "media/tts.h"
#include "net/auth_profiles.h"
#include "net/http_service.h"
#include "net/webhook_dispatcher.h"
#include "sip/sip_stack.h"

namespace ivr::core {

struct EngineOptions {
  sip::SipOptions sip;  // sink and logger are filled by the engine
  media::MediaEngine::Options media;
  std::string prompt_dir = ".";
  media::TtsOptions tts;  // the say cache's byte budget and queue bound
  LoggerPtr logger;
  // Webhooks are off unless a spool directory is set (net/webhook_dispatcher.h).
  std::string webhook_spool_dir;
  uint64_t webhook_spool_max_bytes = 0;  // 0 = the spool's default (256 MiB)
};

class Engine {
 public:
  using EventSink = std::function<void(const CallEvent &)>;

  explicit Engine(EngineOptions options);
  ~Engine();
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;

  void set_event_sink(EventSink sink) { sink_ = std::move(sink); }  // before start
  Status start();
  void stop(const std::string &reason);  // blocking, idempotent; not on the engine thread
  bool started() const { return started_; }
  uint16_t sip_port() const { return sip_port_.load(); }
  int call_count() const { return call_count_.load(); }
  bool in_engine_thread() const { return loop_ && loop_->in_loop_thread(); }

  // Runs fn on the engine thread: at once when already there, else posted while the
  // caller waits for the result. Errc::gone once the engine is stopped.
  Status run_on_engine(const std::function<Status()> &fn);

  // ---- for Call (engine thread) ----
  sip::SipStack &sip() { return *sip_; }
  media::MediaEngine &media() { return *media_; }
  media::PromptCache &prompts() { return prompts_; }
  BlockingWorker &worker() { return *worker_; }
  // Text-to-speech: nullptr when espeak-ng could not start (tts_error() says why).
  media::TtsService *tts() { return tts_.get(); }
  const Error &tts_error() const { return tts_error_; }
  EventLoop &loop() { return *loop_; }
  const LoggerPtr &logger() const { return options_.logger; }
  const std::string &rtp_address() const { return options_.media.rtp_address; }
  void emit(CallEvent event);
  void remove_call(sip::DialogId id);

  // Flows: loaded any time (thread-safe); run on calls whose called number maps to one.
  FlowRunner &flows() { return *flows_; }
  // Outbound HTTP for http steps (engine thread): made on first use; nullptr when it could
  // not be made (http_error() says why).
  net::HttpService *http();
  const Error &http_error() const { return http_error_; }
  // Auth profiles of http steps (any thread; before start they wait for it). A JSON object
  // of named profiles (docs/net.md, "HTTP service"); replaces every profile, or none on error.
  Status set_auth_profiles(std::string_view json);
  // A secret the profiles name (any thread); looked up before IVR_SECRET_<NAME>. An empty
  // value removes it.
  Status set_secret(std::string_view name, std::string value);

  // Database connectors of db steps (docs/db.md). Any thread; before start they are made
  // at start (errors logged), after start on the loop (errors returned). The password is
  // read from the secret called password_secret when the connector is made.
  Status add_database(const std::string &name, db::ConnectorConfig config,
                      const std::string &password_secret);
  Databases &databases() { return databases_; }
  // A secret by name (host secrets, then IVR_SECRET_<NAME>); any thread.
  std::optional<std::string> secret(std::string_view name) const { return secrets_->find(name); }

  // Routing (docs/routing.md): targets, plans, the queue. Any thread; before start the
  // configuration is kept and applied at start. Errors name the field ("routing.targets.x.
  // capacity: ..."); on error nothing changes.
  Status set_routing(std::string_view json);
  Status set_routing(routing::RoutingConfig config);
  // Engine thread, between start and stop.
  RoutingService *routing() { return routing_.get(); }
  // Any thread (engine_routing.cpp): run on the engine thread. Errc::bad_state before start
  // or without a configuration, not_found for an unknown target, gone once stopped.
  Status push_availability(const std::string &target, const routing::AvailabilitySample &sample);
  Status mark_availability_stale(const std::string &target);
  Status set_target_draining(const std::string &target, bool draining);
  struct TargetSnapshot {
    routing::Health health = routing::Health::up;
    uint32_t capacity = 0;
    routing::Counters counters;
    bool availability_fresh = false;
    int64_t idle_agents = 0;
  };
  Result<TargetSnapshot> target_state(const std::string &target);
  Result<routing::QueueStats> queue_stats();
  // 0 when the call is not waiting.
  Result<size_t> queue_position(uint64_t call);

  // Webhooks (docs/net.md, "In the engine"). The dispatcher is made on the engine loop at
  // start, before SIP listens, and closed at stop after the last CALL_ENDED was published.
  bool webhooks_enabled() const { return !options_.webhook_spool_dir.empty(); }
  // Any thread. Before start the subscription is kept and applied at start, before
  // delivery resumes (so events spooled by an earlier run go out); after start it is set
  // on the engine loop. bad_state when webhooks are off; invalid_argument naming the field.
  Status set_webhook(net::WebhookSubscription subscription);
  Status remove_webhook(const std::string &name);  // not_found
  // Engine thread (run_on_engine): the dispatcher, nullptr when off or stopped.
  net::WebhookDispatcher *webhooks() { return webhooks_.get(); }
  // Published events whose spool write later failed (not durable).
  uint64_t webhook_spool_errors() const { return webhook_spool_errors_.load(); }

 private:
  void on_sip_event(sip::SipEvent &event);
  void on_media_event(media::MediaEvent &event);
  std::shared_ptr<Call> find(uint64_t id);
  Status start_webhooks();  // engine thread
  void stop_webhooks();     // engine thread
  void publish_webhook(const CallEvent &event);

  EngineOptions options_;
  EventSink sink_;
  media::PromptCache prompts_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<BlockingWorker> worker_;
  std::unique_ptr<media::TtsService> tts_;  // after loop_: its callbacks post to the loop
  Error tts_error_{Errc::unsupported, "the engine is not started"};
  std::unique_ptr<media::MediaEngine> media_;
  std::unique_ptr<sip::SipStack> sip_;
  std::unique_ptr<FlowRunner> flows_;        // after loop_: its timers go before the loop does
  std::unique_ptr<RoutingService> routing_;  // made at start, freed after the loop
  std::optional<routing::RoutingConfig> pending_routing_;  // set before start
  std::mutex routing_mutex_;                               // guards the two below
  bool routing_live_ = false;                       // routing_ exists: configurations go to it
  std::shared_ptr<net::SecretStore> host_secrets_;  // set through set_secret()
  std::shared_ptr<net::SecretStore> secrets_;       // the host's secrets, then the environment
  std::mutex auth_mutex_;
  net::AuthProfileMap pending_auth_;         // set before start, applied at start
  std::unique_ptr<net::AuthProfiles> auth_;  // after loop_; outlives http_
  std::unique_ptr<net::HttpService> http_;   // after loop_: its events go before the loop does
  Databases databases_;                      // attached to the loop between start and stop
  Error http_error_{Errc::unsupported, "not made yet"};
  std::unique_ptr<net::WebhookDispatcher> webhooks_;  // engine thread, between start and stop
  std::mutex webhook_mutex_;                          // guards the two below
  std::map<std::string, net::WebhookSubscription> webhook_subscriptions_;  // set before start
  bool webhooks_live_ = false;  // the dispatcher has them; later changes go to it
  std::atomic<uint64_t> webhook_spool_errors_{0};
  std::map<uint64_t, std::shared_ptr<Call>> calls_;  // engine thread only
  std::atomic<int> call_count_{0};
  std::atomic<uint16_t> sip_port_{0};
  std::deque<CallEvent> pending_;  // events raised during a callback
  bool dispatching_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ivr::core
