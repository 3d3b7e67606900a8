// The B2BUA's outbound leg (SipStack::invite), REFER in any answered dialog and the 3xx
// redirect of an unanswered inbound call.
//
// An outbound leg is a Dialog with outbound = true, created on the SIP thread by the invite
// command under the id invite() handed out. Its state: calling (INVITE sent) -> established
// (2xx; the NUA sends the ACK, NUTAG_AUTOACK) or ending (final failure, CANCEL or BYE sent)
// -> terminated (nua_i_state), reported once by finish_dialog like an inbound dialog.
// Its timer is first the ring timer and, once a CANCEL is out, the bound on the INVITE's end.
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_tag.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "sip/sipfrag.h"
#include "sip/sofia_message.h"
#include "sip/sofia_stack.h"

namespace ivr::sip {

using detail::cause_name;
using detail::kSub;
using detail::make_event;
using detail::status_phrase;

namespace {

constexpr uint32_t kDefaultRingMs = 30000;
constexpr uint32_t kMaxRingMs = 3600 * 1000;
constexpr uint32_t kRfc3261T1x64Ms = 32000;

unsigned long long ull(DialogId id) {
  return static_cast<unsigned long long>(id);
}

bool has_control(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("-.!%*_+`'~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool is_sip_uri(std::string_view uri) {
  const bool scheme = uri.rfind("sip:", 0) == 0 || uri.rfind("sips:", 0) == 0;
  return scheme && uri.find_first_of(" <>\"") == std::string_view::npos && !has_control(uri);
}

// The user part of a SIP URI, percent-encoding what RFC 3261's "user" does not allow.
std::string escape_user(std::string_view user) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : user) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || std::string_view("-_.!~*'()&=+$,;?/").find(c) != std::string_view::npos) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Why the leg cannot be placed, naming the field; empty when it can.
std::string check_leg(const OutboundInvite &leg) {
  if (!is_sip_uri(leg.uri))
    return "invite.uri: '" + sofia::quoted_text(leg.uri) + "' is not a sip: or sips: URI";
  if (leg.sdp.empty()) return "invite.sdp: empty (an offer is required)";
  if (has_control(leg.from_display)) return "invite.from_display: control characters";
  for (const SipHeader &h : leg.headers) {
    if (!is_token(h.name))
      return "invite.headers: '" + sofia::quoted_text(h.name) + "' is not a header name";
    if (has_control(h.value)) return "invite.headers: " + h.name + ": control characters in value";
  }
  // Sofia's digest client takes "Digest:\"realm\":user:password" and splits at ':'.
  if (leg.username.find(':') != std::string::npos || has_control(leg.username))
    return "invite.username: ':' or control characters are not supported";
  if (leg.password.find(':') != std::string::npos || has_control(leg.password))
    return "invite.password: ':' or control characters are not supported";
  return {};
}

// A Contact/Refer-To value: a bare URI goes into <> so its parameters stay URI parameters.
std::string name_addr(const std::string &uri) {
  return uri.find('<') == std::string::npos ? "<" + uri + ">" : uri;
}

}  // namespace

// ---------------------------------------------------------------- any thread

DialogId SofiaSipStack::invite(OutboundInvite leg) {
  const DialogId id = next_id_.fetch_add(1);
  Command c(Command::invite, id);
  c.leg = std::make_unique<OutboundInvite>(std::move(leg));
  if (!post(std::move(c))) return 0;
  return id;
}

void SofiaSipStack::redirect(DialogId dialog, int status, std::vector<std::string> contacts,
                             std::string reason) {
  Command c(Command::redirect, dialog, status, std::move(reason));
  c.list = std::move(contacts);
  post(std::move(c));
}

// ---------------------------------------------------------------- SIP thread: outbound leg

void SofiaSipStack::fail_invite(DialogId id, TerminationCause cause, int status,
                                const std::string &phrase) {
  IVR_LOG(log_, info, kSub, "dialog %llu: terminated (%s, %d %s) before the INVITE was sent",
          ull(id), cause_name(cause), status, phrase.c_str());
  SipEvent ev = make_event(SipEvent::Kind::terminated, id);
  ev.cause = cause;
  ev.status = status;
  ev.phrase = phrase;
  emit(std::move(ev));
}

void SofiaSipStack::start_invite(DialogId id, OutboundInvite &leg) {
  if (std::string why = check_leg(leg); !why.empty()) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: outbound leg not placed: %s", ull(id), why.c_str());
    fail_invite(id, TerminationCause::error, 0, why);
    return;
  }
  std::string from;
  if (!leg.from_display.empty()) from = "\"" + sofia::quoted_text(leg.from_display) + "\" ";
  from += "<sip:" + escape_user(leg.from_user.empty() ? "ivr" : leg.from_user) + "@" + local_host_ +
          ":" + std::to_string(port_.load()) + ">";
  std::string headers;
  for (const SipHeader &h : leg.headers) headers += h.name + ": " + h.value + "\r\n";
  const std::string to = name_addr(leg.uri);

  nua_handle_t *nh = nua_handle(nua_, nullptr, NUTAG_URL(leg.uri.c_str()),
                                SIPTAG_TO_STR(to.c_str()), SIPTAG_FROM_STR(from.c_str()),
                                // The first INVITE and one answer to a challenge: a second
                                // 401/407 is then final instead of retried from the cache.
                                NUTAG_RETRY_COUNT(1), TAG_END());
  if (!nh) {
    fail_invite(id, TerminationCause::error, 0,
                "invite.uri: '" + sofia::quoted_text(leg.uri) + "' refused by Sofia's URI parser");
    return;
  }
  Dialog d;
  d.nh = nua_handle_ref(nh);
  d.state = DState::calling;
  d.outbound = true;
  d.username = leg.username;
  d.password = leg.password;
  Dialog &dialog = dialogs_.emplace(id, std::move(d)).first->second;
  by_handle_.emplace(nh, id);
  uint32_t ring = leg.ring_timeout_ms ? std::min(leg.ring_timeout_ms, kMaxRingMs) : kDefaultRingMs;
  arm_timer(id, dialog, ring);
  IVR_LOG(log_, info, kSub, "dialog %llu: INVITE to %s from %s (%zu header(s), ring %u ms)",
          ull(id), leg.uri.c_str(), from.c_str(), leg.headers.size(), ring);
  nua_invite(nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(leg.sdp.c_str()),
             TAG_IF(!headers.empty(), SIPTAG_HEADER_STR(headers.c_str())), TAG_END());
}

void SofiaSipStack::on_invite_response(DialogId id, Dialog &d, int status, const char *phrase,
                                       const sip_t *sip) {
  if (!d.outbound) return;  // we send no re-INVITEs
  if (d.call_id.empty() && sip && sip->sip_call_id && sip->sip_call_id->i_id)
    d.call_id = sip->sip_call_id->i_id;
  if (status < 200) {
    // A restart (digest answered from the cache...) is reported as a local 100 carrying the
    // real response: only a real 1xx allows a CANCEL.
    if (sip && sip->sip_status && sip->sip_status->st_status < 200) d.provisional = true;
    if (d.state != DState::calling || status <= 100) return;
    SipEvent ev = make_event(SipEvent::Kind::progress, id);
    ev.status = status;
    ev.phrase = phrase;
    ev.has_sdp = sofia::sdp_body(sip, ev.sdp);
    IVR_LOG(log_, info, kSub, "dialog %llu: %d %s (%s SDP)", ull(id), status, phrase,
            ev.has_sdp ? "with" : "without");
    emit(std::move(ev));
    return;
  }
  if (status < 300) {
    if (d.state != DState::calling) {
      // A 2xx crossed our CANCEL: on_call_ready ends the call with a BYE.
      IVR_LOG(log_, info, kSub, "dialog %llu: %d after CANCEL", ull(id), status);
      return;
    }
    if (d.timer) su_timer_reset(d.timer);
    d.state = DState::established;
    SipEvent ev = make_event(SipEvent::Kind::answered, id);
    ev.status = status;
    ev.phrase = phrase;
    ev.has_sdp = sofia::sdp_body(sip, ev.sdp);
    IVR_LOG(log_, info, kSub, "dialog %llu: answered %d %s (%s SDP) %s", ull(id), status, phrase,
            ev.has_sdp ? "with" : "without", d.call_id.c_str());
    emit(std::move(ev));
    return;
  }
  if ((status == 401 || status == 407) && d.state == DState::calling) {
    if (answer_challenge(id, d, status, sip)) return;
    // Nothing to answer with, or already answered once. The NUA waits for credentials (no
    // terminated state follows), so the leg ends here.
    IVR_LOG(log_, info, kSub, "dialog %llu: refused %d %s (%s)", ull(id), status, phrase,
            d.auth_tried ? "credentials not accepted" : "no credentials");
    finish_dialog(id, TerminationCause::refused, status, phrase);
    return;
  }
  if (!d.cause) {
    // Sofia's own responses (timer B's 408, a transport error's 503, 9xx) come off no socket.
    const bool local = status >= 700 || !sip || response_source().empty();
    d.cause = local ? TerminationCause::error : TerminationCause::refused;
  }
  if (!d.error_status) {
    d.error_status = status;
    d.error_phrase = phrase;
  }
  if (d.state == DState::calling) d.state = DState::ending;
  IVR_LOG(log_, info, kSub, "dialog %llu: INVITE ended %d %s (%s)", ull(id), status, phrase,
          cause_name(*d.cause));
}

bool SofiaSipStack::answer_challenge(DialogId id, Dialog &d, int status, const sip_t *sip) {
  if (d.auth_tried || d.username.empty() || !sip) return false;
  const msg_auth_t *au = status == 401 ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
  while (au && !su_casematch(au->au_scheme, "Digest")) au = au->au_next;
  const char *realm = au ? msg_params_find(au->au_params, "realm=") : nullptr;
  if (!realm) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: %d without a Digest challenge with a realm", ull(id),
            status);
    return false;
  }
  std::string quoted_realm =
      realm[0] == '"' ? std::string(realm) : "\"" + std::string(realm) + "\"";
  std::string credentials = "Digest:" + quoted_realm + ":" + d.username + ":" + d.password;
  d.auth_tried = true;
  IVR_LOG(log_, info, kSub, "dialog %llu: answering the %d challenge of realm %s as %s", ull(id),
          status, quoted_realm.c_str(), d.username.c_str());
  nua_authenticate(d.nh, NUTAG_AUTH(credentials.c_str()), TAG_END());
  return true;
}

void SofiaSipStack::cancel_outbound(DialogId id, Dialog &d, TerminationCause cause) {
  if (d.state != DState::calling) return;
  if (!d.cause) d.cause = cause;
  if (d.provisional) {
    nua_cancel(d.nh, TAG_END());
  } else {
    // RFC 3261 9.1: no CANCEL before a provisional response. Abandon the INVITE at once
    // (nta answers it 487 locally) rather than wait up to 64*T1 for a response.
    nua_cancel(d.nh, NTATAG_CANCEL_408(1), TAG_END());
  }
  d.state = DState::ending;
  d.cancel_sent = true;
  IVR_LOG(log_, info, kSub, "dialog %llu: %s (%s)", ull(id),
          d.provisional ? "CANCEL sent" : "INVITE abandoned before any response",
          cause_name(*d.cause));
  // Bound the wait for the INVITE's final response: past Sofia's own timeout, drop the leg.
  uint32_t t1x64 = opts_.transaction_timeout_ms ? opts_.transaction_timeout_ms : kRfc3261T1x64Ms;
  arm_timer(id, d, t1x64 + 2000);
}

void SofiaSipStack::arm_timer(DialogId id, Dialog &d, uint32_t ms) {
  if (!d.timer) d.timer = su_timer_create(su_root_task(sip_root_), 0);
  if (!d.timer) {
    IVR_LOG(log_, error, kSub, "dialog %llu: cannot create a timer", ull(id));
    return;
  }
  su_timer_set_interval(d.timer, &SofiaSipStack::on_leg_timer,
                        reinterpret_cast<su_timer_arg_t *>(static_cast<uintptr_t>(id)),
                        static_cast<su_duration_t>(ms));
}

void SofiaSipStack::on_leg_timer(su_root_magic_t *magic, su_timer_t *, su_timer_arg_t *arg) {
  reinterpret_cast<SofiaSipStack *>(magic)->on_leg_timer(
      static_cast<DialogId>(reinterpret_cast<uintptr_t>(arg)));
}

void SofiaSipStack::on_leg_timer(DialogId id) {
  Dialog *d = find(id);
  if (!d) return;
  if (d->state == DState::calling) {
    IVR_LOG(log_, info, kSub, "dialog %llu: no final answer within the ring timeout", ull(id));
    if (!d->provisional) {
      // Not even a 100 Trying: the abandoned INVITE's local 487 would tell nothing.
      d->error_status = 408;
      d->error_phrase = "No Response Within Ring Timeout";
    }
    cancel_outbound(id, *d, TerminationCause::no_answer);
    return;
  }
  if (d->state == DState::ending && d->cancel_sent) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: the INVITE did not end after CANCEL; dropping it",
            ull(id));
    const int status = d->error_status ? d->error_status : 408;
    const std::string phrase = d->error_status ? d->error_phrase : "No Answer To CANCEL";
    finish_dialog(id, d->cause.value_or(TerminationCause::error), status, phrase);
  }
}

void SofiaSipStack::on_call_ready(DialogId id, Dialog &d) {
  if (d.state == DState::ending && !d.bye_sent) {
    IVR_LOG(log_, info, kSub, "dialog %llu: answered after CANCEL; sending BYE", ull(id));
    send_bye(d, d.cause == TerminationCause::shutdown ? shutdown_reason_ : "call cancelled");
  }
}

// ---------------------------------------------------------------- SIP thread: 3xx, REFER

void SofiaSipStack::send_redirect(DialogId id, Dialog &d, Command &c) {
  if (d.outbound || d.state != DState::offered) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: redirect ignored: not an unanswered inbound call",
            ull(id));
    return;
  }
  int status = c.status;
  if (status < 300 || status > 399) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: redirect status %d is not 300-399; using 302", ull(id),
            status);
    status = 302;
  }
  std::string contacts;
  std::string bad;
  for (const std::string &uri : c.list) {
    if (uri.empty() || has_control(uri)) bad = uri.empty() ? "empty" : sofia::quoted_text(uri);
    if (!contacts.empty()) contacts += ", ";
    contacts += name_addr(uri);
  }
  if (c.list.empty() || !bad.empty()) {
    // A 3xx without a usable Contact redirects nowhere: refuse the call instead.
    IVR_LOG(log_, error, kSub, "dialog %llu: redirect contacts: %s; answering 500", ull(id),
            c.list.empty() ? "none given" : ("bad contact " + bad).c_str());
    std::string reason = sofia::reason_header("SIP", 500, "redirect without a usable Contact");
    nua_respond(d.nh, SIP_500_INTERNAL_SERVER_ERROR, SIPTAG_REASON_STR(reason.c_str()), TAG_END());
  } else {
    std::string reason = sofia::reason_header("SIP", status, c.text);
    nua_respond(d.nh, status, status_phrase(status), SIPTAG_CONTACT_STR(contacts.c_str()),
                TAG_IF(!c.text.empty(), SIPTAG_REASON_STR(reason.c_str())), TAG_END());
    IVR_LOG(log_, info, kSub, "dialog %llu: redirected %d to %s", ull(id), status,
            contacts.c_str());
  }
  d.state = DState::ending;
  if (!d.cause) d.cause = TerminationCause::local;
}

void SofiaSipStack::emit_refer(DialogId id, Dialog &d, int status, std::string phrase, bool final) {
  if (final) d.refer_pending = false;
  IVR_LOG(log_, info, kSub, "dialog %llu: REFER %d %s%s", ull(id), status, phrase.c_str(),
          final ? " (final)" : "");
  SipEvent ev = make_event(SipEvent::Kind::refer, id);
  ev.status = status;
  ev.phrase = std::move(phrase);
  ev.refer_final = final;
  emit(std::move(ev));
}

void SofiaSipStack::send_refer(DialogId id, Dialog &d, const std::string &refer_to) {
  if (d.state != DState::answered && d.state != DState::established) {
    emit_refer(id, d, 0, "REFER needs an answered dialog", true);
    return;
  }
  if (d.refer_pending) {
    IVR_LOG(log_, warn, kSub, "dialog %llu: REFER to %s ignored: the previous one is pending",
            ull(id), refer_to.c_str());
    return;
  }
  if (refer_to.empty() || has_control(refer_to)) {
    emit_refer(id, d, 0, "refer_to: empty or control characters", true);
    return;
  }
  const std::string to = name_addr(refer_to);
  d.refer_pending = true;
  IVR_LOG(log_, info, kSub, "dialog %llu: REFER to %s", ull(id), to.c_str());
  nua_refer(d.nh, SIPTAG_REFER_TO_STR(to.c_str()), TAG_END());
}

void SofiaSipStack::on_refer_response(DialogId id, Dialog &d, int status, const char *phrase) {
  if (status < 200 || !d.refer_pending) return;
  if (status < 300) {
    IVR_LOG(log_, info, kSub, "dialog %llu: REFER accepted %d %s", ull(id), status, phrase);
    return;  // the outcome comes in NOTIFYs
  }
  emit_refer(id, d, status, phrase, true);
}

void SofiaSipStack::on_notify(DialogId id, Dialog &d, int status, const char *phrase,
                              const sip_t *sip, tagi_t tags[]) {
  if (!d.refer_pending) {
    IVR_LOG(log_, debug, kSub, "dialog %llu: NOTIFY without a pending REFER ignored", ull(id));
    return;
  }
  if (!sip) {
    // The NUA's own: the implied subscription ended without a final NOTIFY.
    IVR_LOG(log_, warn, kSub, "dialog %llu: REFER subscription ended by the NUA: %d %s", ull(id),
            status, phrase);
    emit_refer(id, d, 408, "No Final NOTIFY", true);
    return;
  }
  if (sip->sip_event && sip->sip_event->o_type && !su_casematch(sip->sip_event->o_type, "refer")) {
    IVR_LOG(log_, debug, kSub, "dialog %llu: NOTIFY for event '%s' ignored", ull(id),
            sip->sip_event->o_type);
    return;
  }
  bool terminated = false;
  if (sip->sip_subscription_state && sip->sip_subscription_state->ss_substate) {
    terminated = su_casematch(sip->sip_subscription_state->ss_substate, "terminated");
  } else {
    int substate = -1;
    tl_gets(tags, NUTAG_SUBSTATE_REF(substate), TAG_END());
    terminated = substate == nua_substate_terminated;
  }
  auto frag = parse_sipfrag_status(sofia::body(sip));
  if (!frag) {
    // Without a status line the transfer's outcome is unknown: report it as failed rather
    // than leave the engine waiting for a NOTIFY that may never parse.
    IVR_LOG(log_, warn, kSub, "dialog %llu: NOTIFY for our REFER: %s; reporting 500 (final)",
            ull(id), frag.error().message.c_str());
    emit_refer(id, d, 500, "Malformed Sipfrag", true);
    return;
  }
  emit_refer(id, d, frag->status, frag->phrase, terminated || frag->status >= 200);
}

}  // namespace ivr::sip
