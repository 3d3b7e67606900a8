#include "core/delivery.h"

#include <algorithm>
#include <chrono>

#include "common/text.h"
#include "core/engine.h"
#include "core/routing_service.h"

namespace ivr::core {
namespace {

// Past the ring timeout, how long a leg may stay silent before we give up on it (the SIP
// stack reports every leg's end; this only guards against a lost event).
constexpr uint32_t kRingGuardSlackMs = 15000;

// A final refusal, from an INVITE or a REFER's NOTIFY.
routing::FailReason refusal_reason(int status) {
  if (status == 486 || status == 600) return routing::FailReason::busy;
  if (status >= 500 && status < 600) return routing::FailReason::server_error;
  if (status == 408) return routing::FailReason::no_answer;
  return routing::FailReason::rejected;
}

routing::FailReason fail_reason(const sip::SipEvent &e) {
  switch (e.cause) {
    case sip::TerminationCause::no_answer:
      return routing::FailReason::no_answer;
    case sip::TerminationCause::refused:
      return refusal_reason(e.status);
    default:
      return routing::FailReason::transport;
  }
}

}  // namespace

Delivery::Delivery(Engine &engine, RoutingService &routing, std::shared_ptr<Call> call,
                   flow::RouteStart request, Done done)
    : engine_(engine),
      routing_(routing),
      call_(std::move(call)),
      req_(std::move(request)),
      done_(std::move(done)),
      sdp_session_id_(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                            std::chrono::seconds(1))) {}

Delivery::~Delivery() = default;

uint32_t Delivery::elapsed_ms(routing::Instant since, routing::Instant now) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count());
}

std::optional<routing::TargetIndex> Delivery::target_index(const std::string &name) const {
  if (!routing_.configured()) return std::nullopt;
  return routing_.pool().find(name);
}

void Delivery::start() {
  std::weak_ptr<Delivery> weak = weak_from_this();
  // Never complete from inside start(): the decision runs from the loop.
  engine_.loop().post([weak] {
    auto self = weak.lock();
    if (!self || self->phase_ != Phase::idle) return;
    if (!self->routing_.configured()) return self->finish("error", "routing is not configured");
    self->plan_ = self->routing_.router().find_plan(self->req_.plan);
    if (!self->plan_) return self->finish("error", "no routing plan \"" + self->req_.plan + "\"");
    // The caller is answered only once a target needs it (bridge, REFER, the queue): a 302
    // goes to a caller not yet answered.
    self->decide();
  });
}

bool Delivery::answered_or(std::function<void()> then) {
  Call::State st = call_->state();
  if (st == Call::State::active) return true;
  if (st == Call::State::incoming || st == Call::State::ringing) {
    if (auto s = call_->answer(); !s) {
      finish("error", "answering the caller: " + s.error().message);
      return false;
    }
  }
  after_answer_ = std::move(then);  // CALL_ANSWERED (the ACK) continues
  phase_ = Phase::answering;
  return false;
}

void Delivery::on_call_answered() {
  if (phase_ != Phase::answering || !after_answer_) return;
  auto then = std::move(after_answer_);
  after_answer_ = nullptr;
  then();
}

void Delivery::decide() {
  if (!routing_.configured()) return finish("error", "routing is not configured");
  auto &router = routing_.router();
  // Plans are looked up again: the configuration may have changed since start().
  plan_ = router.find_plan(req_.plan);
  if (!plan_) return finish("error", "no routing plan \"" + req_.plan + "\"");
  const auto &names = router.variables();
  std::vector<rules::Value> values(names.size());
  if (req_.variables)
    for (size_t i = 0; i < names.size(); ++i) values[i] = req_.variables->get(names[i]);
  std::vector<routing::TargetIndex> exclude;
  for (const auto &t : tried_)
    if (auto i = target_index(t)) exclude.push_back(*i);
  routing::DecisionInput in;
  in.now = routing_.now();
  in.wall = std::chrono::system_clock::now();
  in.bindings = rules::Bindings{values.data(), values.size()};
  in.exclude = exclude;
  if (auto st = router.decide(*plan_, in, decision_); !st)
    return finish("error", "routing decision: " + st.error().message);
  candidates_.clear();
  for (const auto &c : decision_.candidates) candidates_.push_back(router.pool().name(c.target));
  next_candidate_ = 0;
  CallEvent e = make_event(EventType::route_decided, router.describe(decision_));
  e.route_strategy = routing::strategy_name(decision_.strategy);
  e.route_candidates = candidates_;
  for (const auto &sk : decision_.skipped)
    e.route_skipped.emplace_back(router.pool().name(sk.target),
                                 routing::skip_reason_name(sk.reason));
  engine_.emit(std::move(e));
  try_next();
}

void Delivery::try_next() {
  if (phase_ == Phase::done) return;
  auto &pool = routing_.pool();
  while (next_candidate_ < candidates_.size()) {
    if (req_.max_attempts && attempts_ >= req_.max_attempts) break;
    const std::string &name = candidates_[next_candidate_++];
    auto idx = target_index(name);
    if (!idx) continue;  // removed by a new configuration
    auto slot = pool.try_reserve(*idx, routing_.now());
    if (!slot) continue;  // full since the decision
    if (dial(Attempt{name, *slot, 0, false, {}})) return;
  }
  if (req_.queue && !(req_.max_attempts && attempts_ >= req_.max_attempts)) return enqueue();
  finish("failed", last_failure_.empty() ? "no target could take the call" : last_failure_);
}

std::vector<sip::SipHeader> Delivery::leg_headers(const routing::TargetConfig &target) {
  std::vector<sip::SipHeader> out;
  auto add = [&out](const std::string &name, std::string value) {
    if (value.empty()) return;  // a variable the call does not have
    for (auto &h : out)
      if (text::iequals(h.name, name)) {
        h.value = std::move(value);  // the flow's header wins over the target's
        return;
      }
    out.push_back({name, std::move(value)});
  };
  for (const auto &h : target.headers) {
    if (!req_.variables) continue;
    auto v = req_.variables->render(h.value);
    if (!v) {
      IVR_LOG(engine_.logger(), warn, "routing", "call %s: target %s header %s: %s",
              call_->facts().call_id.c_str(), target.name.c_str(), h.name.c_str(),
              v.error().message.c_str());
      continue;
    }
    add(h.name, std::move(*v));
  }
  for (const auto &[name, value] : req_.headers) add(name, value);
  return out;
}

bool Delivery::dial(Attempt attempt) {
  auto idx = target_index(attempt.target);
  if (!idx) return false;
  const routing::TargetConfig &target = routing_.pool().config(*idx);
  const routing::SipTarget &st = target.uris.at(attempt.uri);
  std::string uri = st.uri;
  if (st.transport == routing::Transport::tcp && uri.find(";transport=") == std::string::npos)
    uri += ";transport=tcp";
  if (target.delivery == routing::DeliveryMethod::redirect)
    return redirect(std::move(attempt), uri);
  if (call_->state() != Call::State::active) {
    // Bridge and REFER need the caller answered; the slot stays reserved meanwhile (held by
    // attempt_, so that finish() or cancel() release it).
    attempt_ = attempt;
    if (!answered_or([this] {
          Attempt pending = std::move(*attempt_);
          attempt_.reset();
          if (!dial(std::move(pending))) try_next();
        }))
      return phase_ == Phase::answering;
    attempt_.reset();
  }
  if (target.delivery == routing::DeliveryMethod::refer) return refer(std::move(attempt), uri);
  auto fail_now = [&](const std::string &why) {
    return fail_attempt(attempt, uri, why, routing::FailReason::transport);
  };

  leg_session_ = routing_.next_leg_session();
  auto port = engine_.media().open_session(leg_session_, call_->id());
  if (!port) {
    leg_session_ = 0;
    return fail_now("no media port: " + port.error().message);
  }
  leg_port_ = *port;
  routing_.add_leg_session(leg_session_, weak_from_this());
  sip::OutboundInvite inv;
  inv.uri = uri;
  inv.from_user = req_.caller_id.empty() ? call_->facts().from_user : req_.caller_id;
  inv.headers = leg_headers(target);
  inv.sdp = sip::build_offer(
      caps_, sip::LocalMedia{engine_.rtp_address(), leg_port_, sdp_session_id_, sdp_version_++});
  inv.ring_timeout_ms = req_.ring_timeout_ms;
  if (!target.username.empty()) {
    auto password = engine_.secret(target.password_secret);
    if (!password) {
      close_leg();
      return fail_now("password secret \"" + target.password_secret + "\" is not set");
    }
    inv.username = target.username;
    inv.password = std::move(*password);
  }
  leg_ = engine_.sip().invite(std::move(inv));
  if (!leg_) {
    close_leg();
    return fail_now("the SIP stack is stopped");
  }
  routing_.add_leg(leg_, weak_from_this());
  ++attempts_;
  last_target_ = attempt.target;
  last_uri_ = uri;
  attempt_ = std::move(attempt);
  phase_ = Phase::dialing;
  IVR_LOG(engine_.logger(), info, "routing", "call %s: dialling target %s at %s (attempt %u)",
          call_->facts().call_id.c_str(), last_target_.c_str(), uri.c_str(), attempts_);
  if (!attempt_->from_offer) play(Audio::ringback);  // a queued caller keeps the hold audio
  std::weak_ptr<Delivery> weak = weak_from_this();
  ring_guard_ = std::make_unique<Timer>(engine_.loop().base(), [weak] {
    auto self = weak.lock();
    if (!self || !self->leg_) return;
    sip::SipEvent lost;
    lost.kind = sip::SipEvent::Kind::terminated;
    lost.dialog = self->leg_;
    lost.cause = sip::TerminationCause::no_answer;
    lost.phrase = "no answer (the leg never reported back)";
    self->engine_.sip().hangup(self->leg_, "no answer");
    self->routing_.remove_leg(self->leg_);
    self->on_leg_ended(lost);
  });
  ring_guard_->arm(req_.ring_timeout_ms + kRingGuardSlackMs);
  return true;
}

bool Delivery::fail_attempt(const Attempt &attempt, const std::string &uri, const std::string &why,
                            routing::FailReason reason, int sip_status) {
  IVR_LOG(engine_.logger(), warn, "routing", "call %s: target %s (%s): %s",
          call_->facts().call_id.c_str(), attempt.target.c_str(), uri.c_str(), why.c_str());
  last_failure_ = attempt.target + ": " + why;
  last_target_ = attempt.target;
  last_uri_ = uri;
  if (sip_status) last_status_ = sip_status;
  emit(EventType::route_attempt, std::string(routing::fail_reason_name(reason)) + ": " + why,
       sip_status);
  if (attempt.from_offer) {
    (void)routing_.queue().cancel(attempt.offer, routing_.pool());
    refused_offers_.emplace_back(attempt.target, routing_.now());
  } else {
    (void)routing_.pool().release_failed(attempt.slot, reason);
    tried_.push_back(attempt.target);
  }
  return false;
}

// The target takes the call as a 302 redirect: only before the caller is answered.
bool Delivery::redirect(Attempt attempt, const std::string &uri) {
  Call::State st = call_->state();
  if (st != Call::State::incoming && st != Call::State::ringing)
    return fail_attempt(attempt, uri, "a 302 redirect needs a caller not yet answered",
                        routing::FailReason::rejected);
  if (auto s = call_->redirect(uri); !s)
    return fail_attempt(attempt, uri, s.error().message, routing::FailReason::transport);
  ++attempts_;
  last_target_ = attempt.target;
  last_uri_ = uri;
  last_status_ = 302;
  auto &pool = routing_.pool();
  (void)pool.commit(attempt.slot);  // handed over: counted as delivered, and done with
  (void)pool.release(attempt.slot);
  emit(EventType::call_delivered, "redirected (302)", 302);
  finish("transferred");
  return true;
}

// The target takes the call as a blind transfer: REFER on the caller's answered leg.
bool Delivery::refer(Attempt attempt, const std::string &uri) {
  std::weak_ptr<Delivery> weak = weak_from_this();
  call_->set_refer_handler([weak](const sip::SipEvent &e) {
    if (auto self = weak.lock()) self->on_refer(e);
  });
  engine_.sip().refer(call_->id(), uri);
  ++attempts_;
  last_target_ = attempt.target;
  last_uri_ = uri;
  attempt_ = std::move(attempt);
  phase_ = Phase::dialing;
  refer_pending_ = true;
  IVR_LOG(engine_.logger(), info, "routing", "call %s: REFER to target %s at %s (attempt %u)",
          call_->facts().call_id.c_str(), last_target_.c_str(), uri.c_str(), attempts_);
  // A far end that accepts (202) and never sends a final NOTIFY must not hold the caller.
  ring_guard_ = std::make_unique<Timer>(engine_.loop().base(), [weak] {
    auto self = weak.lock();
    if (!self || !self->refer_pending_) return;
    sip::SipEvent lost;
    lost.kind = sip::SipEvent::Kind::refer;
    lost.refer_final = true;
    lost.status = 408;
    lost.phrase = "no final NOTIFY";
    self->on_refer(lost);
  });
  ring_guard_->arm(req_.ring_timeout_ms + kRingGuardSlackMs);
  return true;
}

void Delivery::on_refer(const sip::SipEvent &e) {
  if (!refer_pending_ || !e.refer_final || phase_ == Phase::done) return;
  refer_pending_ = false;
  ring_guard_.reset();
  call_->set_refer_handler(nullptr);
  Attempt attempt = std::move(*attempt_);
  attempt_.reset();
  last_status_ = e.status;
  if (e.status >= 200 && e.status < 300) {
    auto &pool = routing_.pool();
    if (attempt.from_offer) {
      (void)routing_.queue().confirm(attempt.offer, routing_.now());
      routing_.remove_waiting(call_->id());
    }
    (void)pool.commit(attempt.slot);  // handed over: counted as delivered, and done with
    (void)pool.release(attempt.slot);
    routing_.pump_soon();
    emit(EventType::call_delivered, "transferred by REFER (" + std::to_string(e.status) + ")",
         e.status);
    return finish("transferred");
  }
  std::string what = "REFER " + std::to_string(e.status) + (e.phrase.empty() ? "" : " ") + e.phrase;
  const routing::FailReason reason = refusal_reason(e.status);
  fail_attempt(attempt, last_uri_, what, reason, e.status);
  routing_.pump_soon();
  if (attempt.from_offer) return back_to_queue();
  try_next();
}

void Delivery::on_leg_event(sip::SipEvent &e) {
  if (e.dialog != leg_ || phase_ == Phase::done) return;
  using Kind = sip::SipEvent::Kind;
  switch (e.kind) {
    case Kind::progress:
      on_progress(e);
      break;
    case Kind::answered:
      on_answered(e);
      break;
    case Kind::terminated:
      on_leg_ended(e);
      break;
    case Kind::reinvite:
      on_reinvite(e);
      break;
    default:
      break;  // INFO DTMF from the dialing system, REFER results: not used by a bridge
  }
}

bool Delivery::start_relay(const std::string &sdp) {
  auto neg = sip::parse_answer(sdp, caps_);
  if (!neg) {
    IVR_LOG(engine_.logger(), warn, "routing", "call %s: target %s: SDP answer refused: %s",
            call_->facts().call_id.c_str(), last_target_.c_str(), neg.error().message.c_str());
    return false;
  }
  engine_.media().set_remote(leg_session_, neg->remote);
  audio_ = Audio::none;  // the bridge stops our ringback or hold audio
  if (auto st = engine_.media().bridge(call_->id(), leg_session_); !st) {
    IVR_LOG(engine_.logger(), error, "routing", "call %s: media relay: %s",
            call_->facts().call_id.c_str(), st.error().message.c_str());
    return false;
  }
  relaying_ = true;
  return true;
}

void Delivery::on_progress(const sip::SipEvent &e) {
  if (phase_ != Phase::dialing) return;
  if (e.has_sdp && start_relay(e.sdp)) phase_ = Phase::early;  // early media to the caller
}

void Delivery::on_answered(const sip::SipEvent &e) {
  if (phase_ != Phase::dialing && phase_ != Phase::early) return;
  ring_guard_.reset();
  if (!relaying_ && !(e.has_sdp && start_relay(e.sdp))) {
    // Answered without media we can use: hang up and treat it like a refusal.
    engine_.sip().hangup(leg_, "no usable media");
    sip::SipEvent failed = e;
    failed.kind = sip::SipEvent::Kind::terminated;
    failed.cause = sip::TerminationCause::refused;
    failed.status = 488;
    failed.phrase = "answer without usable SDP";
    routing_.remove_leg(leg_);
    return on_leg_ended(failed);
  }
  if (relaying_ && e.has_sdp) {
    if (auto neg = sip::parse_answer(e.sdp, caps_))  // may differ from the early SDP
      engine_.media().set_remote(leg_session_, neg->remote);
  }
  auto &pool = routing_.pool();
  if (attempt_->from_offer) {
    if (auto st = routing_.queue().confirm(attempt_->offer, routing_.now()); !st)
      IVR_LOG(engine_.logger(), warn, "routing", "call %s: queue confirm: %s",
              call_->facts().call_id.c_str(), st.error().message.c_str());
    routing_.remove_waiting(call_->id());
  }
  if (auto st = pool.commit(attempt_->slot); !st)
    IVR_LOG(engine_.logger(), warn, "routing", "call %s: target %s: %s",
            call_->facts().call_id.c_str(), last_target_.c_str(), st.error().message.c_str());
  announce_timer_.reset();
  escalate_timer_.reset();
  phase_ = Phase::bridged;
  answered_at_ = routing_.now();
  if (auto idx = target_index(last_target_); idx && pool.config(*idx).media_timeout_s)
    engine_.media().set_rtp_timeout(leg_session_, pool.config(*idx).media_timeout_s * 1000);
  last_status_ = e.status;
  emit(EventType::call_delivered, "answered " + std::to_string(e.status), e.status);
}

void Delivery::on_leg_ended(const sip::SipEvent &e) {
  ring_guard_.reset();
  const bool was_bridged = phase_ == Phase::bridged;
  leg_ = 0;  // ended: close_leg must not hang it up
  close_leg();
  if (!attempt_) return;
  Attempt attempt = std::move(*attempt_);
  attempt_.reset();
  auto &pool = routing_.pool();
  if (was_bridged) {
    (void)pool.release(attempt.slot);
    routing_.pump_soon();
    return finish("ended");
  }
  if (e.cause == sip::TerminationCause::shutdown) return finish("error", "the engine is stopping");
  const routing::FailReason reason = fail_reason(e);
  last_status_ = e.status;
  std::string what = std::string(routing::fail_reason_name(reason));
  if (e.status)
    what += " (" + std::to_string(e.status) + (e.phrase.empty() ? "" : " ") + e.phrase + ")";
  last_failure_ = attempt.target + ": " + what;
  IVR_LOG(engine_.logger(), info, "routing", "call %s: target %s at %s: %s",
          call_->facts().call_id.c_str(), attempt.target.c_str(), last_uri_.c_str(), what.c_str());
  emit(EventType::route_attempt, what, e.status);

  auto idx = target_index(attempt.target);
  const bool retryable =
      reason == routing::FailReason::transport || reason == routing::FailReason::server_error;
  // A server error or an unreachable URI: the target's next URI, on the same slot.
  if (idx && retryable && attempt.uri + 1 < pool.config(*idx).uris.size() &&
      !(req_.max_attempts && attempts_ >= req_.max_attempts)) {
    ++attempt.uri;
    if (dial(attempt)) return;
    // dial() released the slot (or withdrew the offer)
    if (attempt.from_offer) return back_to_queue();
    return try_next();
  }
  if (idx && reason == routing::FailReason::transport && pool.config(*idx).probe.enabled)
    if (pool.force_health(*idx, false, routing_.now()))
      IVR_LOG(engine_.logger(), warn, "routing", "target %s marked down: %s",
              attempt.target.c_str(), what.c_str());
  if (attempt.from_offer) {
    // The call keeps its place in the queue; this target is not offered it for a while.
    (void)routing_.queue().cancel(attempt.offer, pool);
    refused_offers_.emplace_back(attempt.target, routing_.now());
    return back_to_queue();
  }
  (void)pool.release_failed(attempt.slot, reason);
  tried_.push_back(attempt.target);
  routing_.pump_soon();  // the slot may serve a waiting call
  try_next();
}

void Delivery::on_leg_media_timeout(const std::string &detail) {
  if (phase_ != Phase::bridged || !leg_) return;
  // The dialing system vanished mid-call (no BYE, no media): take the call back and let the
  // flow decide (its on_error exit) instead of leaving the caller in silence.
  IVR_LOG(engine_.logger(), warn, "routing",
          "call %s: target %s at %s: %s after delivery: hanging up its leg",
          call_->facts().call_id.c_str(), last_target_.c_str(), last_uri_.c_str(), detail.c_str());
  emit(EventType::route_attempt, "media lost after delivery: " + detail);
  engine_.sip().hangup(leg_, "no media");
  ring_guard_.reset();
  close_leg();  // also forgets the leg: its terminated event is not ours any more
  if (attempt_) {
    (void)routing_.pool().release(attempt_->slot);
    attempt_.reset();
  }
  routing_.pump_soon();
  finish("error", "target " + last_target_ + " stopped sending media (" + detail + ")");
}

void Delivery::on_reinvite(const sip::SipEvent &e) {
  auto neg = sip::negotiate_offer(e.sdp, caps_);
  if (!neg) return engine_.sip().answer_reinvite(leg_, 488, "");
  auto answer = sip::build_answer(
      e.sdp, *neg,
      sip::LocalMedia{engine_.rtp_address(), leg_port_, sdp_session_id_, sdp_version_++});
  if (!answer) return engine_.sip().answer_reinvite(leg_, 500, "");
  engine_.sip().answer_reinvite(leg_, 200, std::move(*answer));
  engine_.media().set_remote(leg_session_, neg->remote);
}

void Delivery::close_leg() {
  if (relaying_) engine_.media().unbridge(call_->id());
  relaying_ = false;
  if (leg_session_) {
    engine_.media().close_session(leg_session_);
    routing_.remove_leg_session(leg_session_);
  }
  leg_session_ = 0;
  if (leg_) {
    routing_.remove_leg(leg_);
    leg_ = 0;
  }
}

void Delivery::emit(EventType type, std::string detail, int sip_code) {
  engine_.emit(make_event(type, std::move(detail), sip_code));
}

CallEvent Delivery::make_event(EventType type, std::string detail, int sip_code) {
  CallEvent e;
  e.type = type;
  e.call = call_;
  e.route_plan = req_.plan;
  e.route_target = type == EventType::route_decided ? std::string() : last_target_;
  e.route_uri = type == EventType::route_decided ? std::string() : last_uri_;
  e.route_detail = std::move(detail);
  e.sip_code = sip_code;
  e.route_attempt = attempts_;
  e.queue_priority = static_cast<int>(req_.priority);
  if (auto pos = routing_.queue().position(call_->id())) e.queue_position = static_cast<int>(*pos);
  return e;
}

void Delivery::finish(std::string outcome, std::string error) {
  if (phase_ == Phase::done) return;
  ring_guard_.reset();
  announce_timer_.reset();
  escalate_timer_.reset();
  leave_queue();   // releases a pending offer's slot
  if (attempt_) {  // reserved, not delivered (an error while answering the caller)
    (void)routing_.pool().release(attempt_->slot);
    attempt_.reset();
  }
  if (refer_pending_) call_->set_refer_handler(nullptr);
  const bool ours_playing = audio_ != Audio::none;
  audio_ = Audio::none;
  if (ours_playing && !call_->ended()) (void)call_->stop_playback();
  phase_ = Phase::done;
  flow::RouteDone d;
  d.outcome = std::move(outcome);
  d.error = std::move(error);
  d.target = last_target_;
  d.uri = last_uri_;
  d.sip_status = last_status_;
  d.attempts = attempts_;
  const auto now = routing_.now();
  if (was_queued_) d.queued_ms = elapsed_ms(queued_at_, now);
  if (answered_at_ != routing::Instant{}) d.talk_ms = elapsed_ms(answered_at_, now);
  // Completed from the loop: `done` may destroy this delivery.
  auto self = shared_from_this();
  engine_.loop().post([self, d = std::move(d)]() mutable {
    if (self->done_) {
      auto done = std::move(self->done_);
      done(std::move(d));
    }
  });
}

void Delivery::cancel(const std::string &why) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::done;
  done_ = nullptr;
  ring_guard_.reset();
  announce_timer_.reset();
  escalate_timer_.reset();
  if (leg_) engine_.sip().hangup(leg_, why);
  close_leg();
  leave_queue();  // releases a pending offer's slot
  if (attempt_) {
    (void)routing_.pool().release(attempt_->slot);  // not_found when the queue released it
    attempt_.reset();
  }
  if (audio_ != Audio::none && !call_->ended()) (void)call_->stop_playback();
  audio_ = Audio::none;
  if (refer_pending_) call_->set_refer_handler(nullptr);
  routing_.pump_soon();
}

}  // namespace ivr::core
