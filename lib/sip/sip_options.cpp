// OPTIONS probes (SipStack::send_options): an out-of-dialog OPTIONS on its own nua handle,
// bounded by our own timer (Sofia's timer F may be longer than the probe's budget).
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "sip/sofia_stack.h"

namespace ivr::sip {

using detail::kSub;
using detail::make_event;

namespace {

// An OPTIONS probe without its own timeout gives up after this (Sofia's timer F is 32 s).
constexpr uint32_t kDefaultProbeTimeoutMs = 5000;
constexpr uint32_t kMaxProbeTimeoutMs = 64000;

}  // namespace

bool SofiaSipStack::send_options(std::string uri, uint32_t timeout_ms,
                                 std::function<void(OptionsResult)> done) {
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  if (!root_) {
    IVR_LOG(log_, debug, kSub, "OPTIONS to %s not sent: stack stopped", uri.c_str());
    return false;
  }
  probe_cmds_.push_back({std::move(uri), timeout_ms, std::move(done)});
  if (wake_locked()) return true;
  probe_cmds_.pop_back();  // the contract: false means done is never called
  return false;
}

void SofiaSipStack::start_probe(ProbeCommand &c) {
  OptionsResult result;
  result.uri = c.uri;
  if (shutting_down_ || !nua_) {
    result.outcome = OptionsResult::Outcome::cancelled;
    result.phrase = "SIP stack shutting down";
    SipEvent ev = make_event(SipEvent::Kind::options, 0);
    ev.options = std::move(result);
    ev.options_done = std::move(c.done);
    emit(std::move(ev));
    return;
  }
  const uint64_t id = next_probe_++;
  Probe p;
  p.uri = c.uri;
  p.done = std::move(c.done);
  p.sent = std::chrono::steady_clock::now();
  p.nh =
      nua_handle(nua_, nullptr, NUTAG_URL(c.uri.c_str()), SIPTAG_TO_STR(c.uri.c_str()), TAG_END());
  uint32_t timeout =
      c.timeout_ms ? std::min(c.timeout_ms, kMaxProbeTimeoutMs) : kDefaultProbeTimeoutMs;
  // Sofia's own timer F (32 s, or transaction_timeout_ms) may be longer than the probe's
  // budget: our timer ends the probe as a timeout and destroys the handle.
  p.timer = su_timer_create(su_root_task(sip_root_), static_cast<su_duration_t>(timeout));
  probes_.emplace(id, std::move(p));
  Probe &probe = probes_.at(id);
  if (!probe.nh || !probe.timer) {
    result.outcome = OptionsResult::Outcome::transport_error;
    result.phrase = !probe.nh ? "cannot create a nua handle" : "cannot create a timer";
    finish_probe(id, std::move(result));
    return;
  }
  probe_by_handle_.emplace(probe.nh, id);
  su_timer_set(probe.timer, &SofiaSipStack::on_probe_timer,
               reinterpret_cast<su_timer_arg_t *>(static_cast<uintptr_t>(id)));
  IVR_LOG(log_, debug, kSub, "OPTIONS %llu to %s (timeout %u ms)",
          static_cast<unsigned long long>(id), c.uri.c_str(), timeout);
  nua_options(probe.nh, TAG_END());
}

void SofiaSipStack::on_options_response(int status, const char *phrase, nua_handle_t *nh,
                                        const sip_t *sip) {
  auto it = nh ? probe_by_handle_.find(nh) : probe_by_handle_.end();
  if (it == probe_by_handle_.end()) {
    if (nh) nua_handle_destroy(nh);  // not ours (see handle_event)
    return;
  }
  if (status < 200) return;
  OptionsResult result;
  result.status = status;
  result.phrase = phrase;
  // Sofia's local responses (timer F's 408, a transport error's 503, 9xx) are built in
  // memory: only a response that came off the network has a source address.
  const std::string from = response_source();
  const bool local = status >= 700 || !sip || from.empty();
  IVR_LOG(log_, trace, kSub, "OPTIONS response %d %s from '%s'", status, phrase, from.c_str());
  if (!local)
    result.outcome = OptionsResult::Outcome::response;
  else if (status == 408)
    result.outcome = OptionsResult::Outcome::timeout;
  else
    result.outcome = OptionsResult::Outcome::transport_error;
  finish_probe(it->second, std::move(result));
}

void SofiaSipStack::on_probe_timer(su_root_magic_t *magic, su_timer_t *, su_timer_arg_t *arg) {
  auto *self = reinterpret_cast<SofiaSipStack *>(magic);
  OptionsResult result;
  result.outcome = OptionsResult::Outcome::timeout;
  result.phrase = "no answer";
  self->finish_probe(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(arg)), std::move(result));
}

void SofiaSipStack::finish_probe(uint64_t id, OptionsResult result) {
  auto it = probes_.find(id);
  if (it == probes_.end()) return;
  Probe p = std::move(it->second);
  probes_.erase(it);
  if (p.timer) su_timer_destroy(p.timer);  // also fine from its own callback
  if (p.nh) {
    probe_by_handle_.erase(p.nh);
    nua_handle_destroy(p.nh);  // no further events for it; cancels a pending transaction
  }
  result.uri = std::move(p.uri);
  result.rtt_ms = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - p.sent)
                                            .count());
  IVR_LOG(log_, debug, kSub, "OPTIONS %llu to %s: %s %d %s (%u ms)",
          static_cast<unsigned long long>(id), result.uri.c_str(),
          options_outcome_name(result.outcome), result.status, result.phrase.c_str(),
          result.rtt_ms);
  SipEvent ev = make_event(SipEvent::Kind::options, 0);
  ev.options = std::move(result);
  ev.options_done = std::move(p.done);
  emit(std::move(ev));
}

void SofiaSipStack::cancel_probes(const char *why) {
  while (!probes_.empty()) {
    OptionsResult result;
    result.outcome = OptionsResult::Outcome::cancelled;
    result.phrase = why;
    finish_probe(probes_.begin()->first, std::move(result));
  }
}

const char *options_outcome_name(OptionsResult::Outcome o) {
  switch (o) {
    case OptionsResult::Outcome::response:
      return "response";
    case OptionsResult::Outcome::timeout:
      return "timeout";
    case OptionsResult::Outcome::transport_error:
      return "transport_error";
    case OptionsResult::Outcome::cancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace ivr::sip
