#include "core/flow_runner.h"

#include <deque>

#include "common/log.h"
#include "core/delivery.h"
#include "core/engine.h"
#include "core/event_loop.h"
#include "flow/interpreter.h"

namespace ivr::core {

// One call run by a flow: the CallPort over core::Call, and the session.
class FlowCall : public flow::CallPort, public std::enable_shared_from_this<FlowCall> {
 public:
  FlowCall(FlowRunner &runner, std::shared_ptr<Call> call,
           std::shared_ptr<const flow::Program> program)
      : runner_(runner), call_(std::move(call)), program_(std::move(program)) {}

  void start() {
    const CallFacts &f = call_->facts();
    flow::CallInfo info;
    info.call_id = f.call_id;
    info.from = f.from_user;
    info.to = f.to_user;
    info.from_uri = f.from;
    info.to_uri = f.to;
    for (const auto &h : f.headers) info.headers.emplace_back(h.name, h.value);
    info.started_at = std::chrono::system_clock::now();
    session_ = std::make_unique<flow::Session>(program_, *this, std::move(info));
    std::weak_ptr<FlowCall> weak = weak_from_this();
    session_->set_trace_sink([weak](const flow::TraceEntry &e) {
      if (auto self = weak.lock()) self->on_trace(e);
    });
    deliver([this] { session_->start(); });
  }

  // Runs fn inside the session, or after the session call in progress returns: the
  // interpreter is never re-entered from inside one of its own port calls.
  void deliver(std::function<void()> fn) {
    pending_.push_back(std::move(fn));
    if (in_session_) return;
    in_session_ = true;
    while (!pending_.empty()) {
      auto next = std::move(pending_.front());
      pending_.pop_front();
      next();
    }
    in_session_ = false;
  }

  void on_event(CallEvent &e) {
    switch (e.type) {
      case EventType::call_answered:
        if (route_) route_->on_call_answered();
        deliver([this] { session_->on_answered(); });
        break;
      case EventType::prompt_finished:
        if (route_ && route_->on_prompt_finished(e)) break;  // ringback, hold, announcement
        // Only the latest of our prompts completes the step; replaced ones just end.
        if (prompts_ > 0 && --prompts_ == 0) {
          bool ok = e.prompt_end != PromptEnd::failed;
          deliver([this, ok] { session_->on_prompt_done(ok); });
        }
        break;
      case EventType::collect_done:
        if (collects_ > 0 && --collects_ == 0) {
          auto end = static_cast<flow::CollectEnd>(static_cast<int>(e.collect_end));
          std::string digits = e.digits;
          deliver([this, digits, end] { session_->on_collect_done(digits, end); });
        }
        break;
      case EventType::call_ended:
        ended_ = true;
        transfer_timer_.reset();
        if (route_) {  // the caller hung up: the outbound leg goes too
          route_->cancel("caller hung up");
          route_.reset();
        }
        deliver([this] { session_->on_call_ended(); });
        timers_.clear();
        break;
      default:
        break;
    }
    annotate(e);
    if (e.type == EventType::call_ended) {
      e.flow_path = session_->path_text();
      e.flow_end = flow::end_reason_name(session_->end_reason());
      e.flow_error = session_->error();
      e.flow_nodes = session_->path();
      e.flow_nodes_dropped = session_->path_dropped();
    }
  }

  void annotate(CallEvent &e) const {
    e.flow_id = program_->id;
    e.flow_version = program_->version;
    e.flow_node = session_ ? session_->current_node() : "";
  }

  void verb_done(uint64_t token, flow::CustomResult result) {
    if (ended_) return;
    deliver([this, token, result] { session_->on_custom_done(token, result); });
  }

  // ---- CallPort ----
  void start_answer() override {
    if (call_->state() == Call::State::active) {
      // Answered outside the flow's own answer step (a route step answers the caller
      // before bridging): complete at once.
      std::weak_ptr<FlowCall> weak = weak_from_this();
      deliver_later([weak] {
        if (auto self = weak.lock()) self->session_->on_answered();
      });
      return;
    }
    if (auto s = call_->answer(); !s) {
      log_failure("answer", s.error());  // the engine rejects the call; CALL_ENDED follows
    }
  }
  void start_play(const std::string &file) override {
    if (auto s = call_->play(file); !s) {
      log_failure("play " + file, s.error());
      prompt_failed();
      return;
    }
    ++prompts_;
  }
  void start_say(const std::string &text, const std::string &voice, unsigned rate) override {
    if (auto s = call_->say(text, SayOptions{voice, rate}); !s) {
      log_failure("say \"" + text + "\"", s.error());
      prompt_failed();
      return;
    }
    ++prompts_;
  }
  void start_collect(const flow::CollectRequest &req) override {
    CollectOptions o;
    o.max_digits = req.max_digits;
    o.terminators = req.terminators;
    o.first_digit_timeout_ms = req.first_digit_timeout_ms;
    o.inter_digit_timeout_ms = req.inter_digit_timeout_ms;
    o.barge_in = req.barge_in;
    if (auto s = call_->collect(o); !s) {
      log_failure("collect", s.error());
      deliver([this] { session_->on_collect_done("", flow::CollectEnd::first_timeout); });
      return;
    }
    ++collects_;
  }
  void start_timer(uint32_t ms, uint64_t token) override {
    std::weak_ptr<FlowCall> weak = weak_from_this();
    EventLoop &loop = runner_.engine_.loop();
    auto timer = std::make_unique<Timer>(loop.base(), [weak, token, &loop] {
      auto self = weak.lock();
      if (!self) return;
      // A timer must not be destroyed inside its own callback: drop it afterwards.
      loop.post([weak, token] {
        if (auto s = weak.lock()) s->timers_.erase(token);
      });
      self->deliver([self, token] { self->session_->on_timer(token); });
    });
    timer->arm(ms);
    timers_[token] = std::move(timer);
  }
  void cancel_timer(uint64_t token) override { timers_.erase(token); }
  void start_custom(const std::string &verb, const flow::CustomArgs &args,
                    uint64_t token) override {
    VerbHandler handler = runner_.handler(verb);
    if (!handler) {
      deliver([this, token, verb] {
        flow::CustomResult r;
        r.error = "no handler is registered for verb " + verb;
        session_->on_custom_done(token, r);
      });
      return;
    }
    auto req = std::make_unique<VerbRequest>();
    req->verb = verb;
    req->node = session_->current_node();
    req->args = args.values;
    req->call = call_;
    req->flow_call = weak_from_this();
    req->token = token;
    handler(std::move(req));
  }
  void start_http(const flow::HttpStart &hs, uint64_t token) override {
    net::HttpService *http = runner_.engine_.http();
    if (!http) {
      std::string why = runner_.engine_.http_error().message;
      deliver([this, token, why] {
        flow::HttpDone d;
        d.reason = "connect";
        d.error = "no HTTP client: " + why;
        session_->on_http_done(token, std::move(d));
      });
      return;
    }
    net::FetchRequest fr;
    fr.request = hs.request;
    fr.auth = hs.auth;
    fr.max_attempts = 1 + hs.retries;
    fr.retry_non_idempotent = hs.retry_non_idempotent;
    fr.cache_ttl = net::Millis{hs.cache_ttl_ms};
    fr.stale_if_error = net::Millis{hs.stale_if_error_ms};
    fr.budget = net::Millis{hs.budget_ms};
    std::weak_ptr<FlowCall> weak = weak_from_this();
    uint64_t id = http->fetch(std::move(fr), [weak, token](net::FetchResult &&r) {
      auto self = weak.lock();
      if (!self || !self->http_.erase(token) || self->ended_) return;
      flow::HttpDone d;
      d.reason = std::move(r.reason);
      d.error = std::move(r.error);
      d.response = std::move(r.response);
      d.cached = r.cached;
      d.stale = r.stale;
      d.attempts = r.attempts;
      self->deliver([self, token, d = std::move(d)]() mutable {
        self->session_->on_http_done(token, std::move(d));
      });
    });
    http_[token] = id;
  }
  void cancel_http(uint64_t token) override {
    auto it = http_.find(token);
    if (it == http_.end()) return;
    if (net::HttpService *http = runner_.engine_.http()) http->cancel(it->second);
    http_.erase(it);
  }
  void start_db(const flow::DbStart &ds, uint64_t token) override {
    std::weak_ptr<FlowCall> weak = weak_from_this();
    uint64_t id =
        runner_.engine_.databases().query(ds.connector, ds.query, [weak, token](DbAnswer &&a) {
          auto self = weak.lock();
          if (!self || !self->db_.erase(token) || self->ended_) return;
          flow::DbDone d;
          d.reason = std::move(a.reason);
          d.error = std::move(a.error);
          d.rows = std::move(a.rows);
          self->deliver([self, token, d = std::move(d)]() mutable {
            self->session_->on_db_done(token, std::move(d));
          });
        });
    db_[token] = id;
  }
  void start_route(const flow::RouteStart &rs, uint64_t token) override {
    RoutingService *routing = runner_.engine_.routing();
    std::weak_ptr<FlowCall> weak = weak_from_this();
    if (!routing) {
      deliver_later([weak, token] {
        if (auto self = weak.lock()) {
          flow::RouteDone d;
          d.outcome = "error";
          d.error = "routing is not available (the engine is stopping)";
          self->session_->on_route_done(token, std::move(d));
        }
      });
      return;
    }
    route_token_ = token;
    route_ = std::make_shared<Delivery>(runner_.engine_, *routing, call_, rs,
                                        [weak, token](flow::RouteDone &&d) {
                                          auto self = weak.lock();
                                          if (!self || self->ended_ || self->route_token_ != token)
                                            return;
                                          self->route_.reset();
                                          self->route_token_ = 0;
                                          self->deliver([self, token, d = std::move(d)]() mutable {
                                            self->session_->on_route_done(token, std::move(d));
                                          });
                                        });
    route_->start();
  }
  void cancel_route(uint64_t token) override {
    if (token != route_token_ || !route_) return;
    route_->cancel(ended_ ? "caller hung up" : "flow moved on");
    route_.reset();
    route_token_ = 0;
  }
  void start_transfer(const flow::TransferStart &ts, uint64_t token) override {
    std::weak_ptr<FlowCall> weak = weak_from_this();
    auto fail = [this, weak, token](int status, std::string why) {
      log_failure("transfer", Error{Errc::sip, why});
      deliver_later([weak, token, status, why] {
        if (auto self = weak.lock()) {
          flow::TransferDone d;
          d.sip_status = status;
          d.error = why;
          self->session_->on_transfer_done(token, std::move(d));
        }
      });
    };
    const bool answered = call_->media_open();
    if (ts.method == flow::TransferStart::Method::redirect) {
      if (answered) return fail(0, "a 302 redirect needs a call that is not answered yet");
      if (auto s = call_->redirect(ts.uri); !s) return fail(0, s.error().message);
      deliver_later([weak, token] {
        if (auto self = weak.lock()) {
          flow::TransferDone d;
          d.ok = true;
          d.sip_status = 302;
          self->session_->on_transfer_done(token, std::move(d));
        }
      });
      return;
    }
    if (!answered) return fail(0, "REFER needs an answered call (use method redirect)");
    transfer_token_ = token;
    call_->set_refer_handler([weak, token](const sip::SipEvent &e) {
      auto self = weak.lock();
      if (!self || self->transfer_token_ != token || self->ended_) return;
      if (!e.refer_final) return;  // 100 Trying, 180 Ringing...
      self->transfer_token_ = 0;
      self->transfer_timer_.reset();
      self->call_->set_refer_handler(nullptr);
      flow::TransferDone d;
      d.sip_status = e.status;
      d.ok = e.status >= 200 && e.status < 300;
      if (!d.ok)
        d.error =
            "REFER failed: " + std::to_string(e.status) + (e.phrase.empty() ? "" : " ") + e.phrase;
      // On success the session hangs up ("transferred"): the far end has the caller now.
      self->deliver([self, token, d = std::move(d)]() mutable {
        self->session_->on_transfer_done(token, std::move(d));
      });
    });
    runner_.engine_.sip().refer(call_->id(), ts.uri);
    // A far end that accepts the REFER (202) may never send a final NOTIFY: give up then.
    transfer_timer_ = std::make_unique<Timer>(runner_.engine_.loop().base(), [weak, token] {
      auto self = weak.lock();
      if (!self || self->transfer_token_ != token || self->ended_) return;
      self->transfer_token_ = 0;
      self->call_->set_refer_handler(nullptr);
      self->deliver([self, token] {
        flow::TransferDone d;
        d.sip_status = 408;
        d.error = "REFER: no final result within 32 s";
        self->session_->on_transfer_done(token, std::move(d));
      });
    });
    transfer_timer_->arm(32000);
  }
  void cancel_db(uint64_t token) override {
    auto it = db_.find(token);
    if (it == db_.end()) return;
    runner_.engine_.databases().cancel(it->second);
    db_.erase(it);
  }
  void stop_prompt() override { (void)call_->stop_playback(); }
  void hangup(int sip_status, const std::string &reason) override {
    if (ended_) return;
    Call::State st = call_->state();
    Status s = (st == Call::State::incoming || st == Call::State::ringing)
                   ? call_->reject(sip_status ? sip_status : 480, reason)
                   : call_->hangup(reason);
    if (!s) log_failure("hangup", s.error());
  }

 private:
  // Completes a step from the loop: a port call never completes from inside itself.
  void deliver_later(std::function<void()> fn) {
    std::weak_ptr<FlowCall> weak = weak_from_this();
    runner_.engine_.loop().post([weak, fn = std::move(fn)] {
      auto self = weak.lock();
      if (self && !self->ended_) self->deliver(fn);
    });
  }
  void prompt_failed() {
    if (prompts_ == 0) deliver([this] { session_->on_prompt_done(false); });
    // Otherwise an earlier prompt is still to finish: it completes the step, as failed.
  }
  void log_failure(const std::string &what, const Error &e) {
    IVR_LOG(runner_.engine_.logger(), warn, "flow", "call %s flow %s node %s: %s failed: %s",
            call_->facts().call_id.c_str(), program_->id.c_str(),
            session_ ? session_->current_node().c_str() : "", what.c_str(), e.message.c_str());
  }
  void on_trace(const flow::TraceEntry &t) {
    CallEvent e;
    e.type = EventType::flow_step;
    e.call = call_;
    annotate(e);
    e.flow_node = t.node;
    e.flow_verb = t.verb;
    e.flow_detail = t.detail;
    IVR_LOG(runner_.engine_.logger(), debug, "flow", "call %s %s %s: %s",
            call_->facts().call_id.c_str(), t.node.c_str(), t.verb.c_str(), t.detail.c_str());
    runner_.engine_.emit(std::move(e));
  }

  FlowRunner &runner_;
  std::shared_ptr<Call> call_;
  std::shared_ptr<const flow::Program> program_;
  std::unique_ptr<flow::Session> session_;
  std::map<uint64_t, std::unique_ptr<Timer>> timers_;
  std::map<uint64_t, uint64_t> http_;  // flow token -> HttpService fetch id
  std::map<uint64_t, uint64_t> db_;    // flow token -> Databases query id
  std::shared_ptr<Delivery> route_;    // the route step in progress
  uint64_t route_token_ = 0, transfer_token_ = 0;
  std::unique_ptr<Timer> transfer_timer_;  // a REFER without a final NOTIFY
  std::deque<std::function<void()>> pending_;
  bool in_session_ = false;
  bool ended_ = false;
  unsigned prompts_ = 0, collects_ = 0;
};

FlowRunner::FlowRunner(Engine &engine) : engine_(engine) {}
FlowRunner::~FlowRunner() = default;

void FlowRunner::register_verb(const std::string &name, VerbHandler handler) {
  {
    std::lock_guard lock(verbs_mutex_);
    verbs_[name] = std::move(handler);
  }
  library_.add_custom_verb(name);
}

VerbHandler FlowRunner::handler(const std::string &verb) {
  std::lock_guard lock(verbs_mutex_);
  auto it = verbs_.find(verb);
  return it == verbs_.end() ? VerbHandler{} : it->second;
}

void FlowRunner::observe(CallEvent &event) {
  if (!event.call || event.type == EventType::flow_step) return;
  uint64_t id = event.call->id();
  if (event.type == EventType::call_started) {
    const std::string &to = event.call->facts().to_user;
    auto program = library_.resolve(to);
    if (!program) {
      std::string mapped = library_.mapped_flow(to);
      if (!mapped.empty())
        IVR_LOG(engine_.logger(), warn, "flow",
                "call %s to %s: entry point names flow %s, which has no active version",
                event.call->facts().call_id.c_str(), to.c_str(), mapped.c_str());
      return;
    }
    auto fc = std::make_shared<FlowCall>(*this, event.call, program);
    calls_[id] = fc;
    fc->start();
    fc->annotate(event);
    return;
  }
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  auto fc = it->second;  // keeps it alive through the event
  fc->on_event(event);
  if (event.type == EventType::call_ended) calls_.erase(id);
}

void FlowRunner::complete_verb(std::unique_ptr<VerbRequest> request, std::string exit,
                               std::string error) {
  std::shared_ptr<VerbRequest> req(std::move(request));
  flow::CustomResult result;
  result.exit = std::move(exit);
  result.error = std::move(error);
  result.values = req->results;
  // Always through the loop: a host completing inside its callback must not re-enter.
  engine_.loop().post([req, result] {
    if (auto fc = req->flow_call.lock()) fc->verb_done(req->token, result);
  });
}

}  // namespace ivr::core
