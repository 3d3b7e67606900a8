// Dialogs: the inbound call (INVITE, INFO, re-INVITE, our answer, reject, hangup) and the end
// of every dialog, inbound or outbound (terminated event, handle release).
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>

#include <string>
#include <utility>

#include "sip/info_dtmf.h"
#include "sip/sofia_message.h"
#include "sip/sofia_stack.h"

namespace ivr::sip {

using detail::cause_name;
using detail::host_for_uri;
using detail::kSub;
using detail::make_event;
using detail::status_phrase;

namespace {

constexpr const char *kInfoAccept = "application/dtmf-relay, application/dtmf";

}  // namespace

void SofiaSipStack::execute_dialog(Command &c, Dialog &d) {
  switch (c.kind) {
    case Command::ringing:
      if (d.state == DState::offered) nua_respond(d.nh, SIP_180_RINGING, TAG_END());
      break;
    case Command::answer:
      if (d.state != DState::offered) {
        IVR_LOG(log_, debug, kSub, "dialog %llu: answer ignored (already answered or ending)",
                static_cast<unsigned long long>(c.dialog));
        break;
      }
      nua_respond(d.nh, SIP_200_OK,
                  TAG_IF(!c.text.empty(), SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                  TAG_IF(!c.text.empty(), SIPTAG_PAYLOAD_STR(c.text.c_str())), TAG_END());
      d.state = DState::answered;
      break;
    case Command::reject: {
      if (d.state != DState::offered) {
        // Too late for a final response: end the call the only way left.
        hangup_dialog(c.dialog, d, c.text);
        break;
      }
      int status = c.status;
      if (status < 300 || status > 699) {
        IVR_LOG(log_, warn, kSub, "dialog %llu: reject status %d is not 300-699; using 500",
                static_cast<unsigned long long>(c.dialog), status);
        status = 500;
      }
      std::string reason = sofia::reason_header("SIP", status, c.text);
      nua_respond(d.nh, status, status_phrase(status), SIPTAG_REASON_STR(reason.c_str()),
                  TAG_END());
      d.state = DState::ending;
      if (!d.cause) d.cause = TerminationCause::local;
      break;
    }
    case Command::answer_reinvite: {
      if (!d.reinvite_pending) {
        IVR_LOG(log_, debug, kSub, "dialog %llu: no re-INVITE pending",
                static_cast<unsigned long long>(c.dialog));
        break;
      }
      int status = c.status;
      if (status < 200 || status > 699) status = 500;
      bool body = status < 300 && !c.text.empty();
      nua_respond(d.nh, status, status_phrase(status),
                  TAG_IF(body, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                  TAG_IF(body, SIPTAG_PAYLOAD_STR(c.text.c_str())), TAG_END());
      d.reinvite_pending = false;
      break;
    }
    case Command::hangup:
      hangup_dialog(c.dialog, d, c.text);
      break;
    case Command::redirect:
      send_redirect(c.dialog, d, c);
      break;
    case Command::refer:
      send_refer(c.dialog, d, c.text);
      break;
    case Command::invite:  // handled by execute()
    case Command::shutdown:
      break;
  }
}

void SofiaSipStack::send_bye(Dialog &d, const std::string &reason) {
  // Q.850 cause 16 is "normal call clearing"; the text carries our reason.
  std::string header = sofia::reason_header("Q.850", 16, reason);
  nua_bye(d.nh, SIPTAG_REASON_STR(header.c_str()), TAG_END());
  d.state = DState::ending;
  d.bye_sent = true;
}

void SofiaSipStack::hangup_dialog(DialogId id, Dialog &d, const std::string &reason) {
  switch (d.state) {
    case DState::offered: {
      std::string header = sofia::reason_header("SIP", 480, reason);
      nua_respond(d.nh, SIP_480_TEMPORARILY_UNAVAILABLE, SIPTAG_REASON_STR(header.c_str()),
                  TAG_END());
      d.state = DState::ending;
      break;
    }
    case DState::answered:
      // RFC 3261 15: the callee may not send BYE before the ACK; send it when it arrives
      // (if it never does, nua's ACK timeout sends the BYE).
      d.bye_after_ack = true;
      d.bye_reason = reason;
      break;
    case DState::calling:
      cancel_outbound(id, d, TerminationCause::local);
      return;
    case DState::established:
      send_bye(d, reason);
      break;
    case DState::ending:
      IVR_LOG(log_, debug, kSub, "dialog %llu already ending", static_cast<unsigned long long>(id));
      return;
  }
  if (!d.cause) d.cause = TerminationCause::local;
}

void SofiaSipStack::on_invite(int status, nua_handle_t *nh, const sip_t *sip) {
  if (DialogId id = id_of(nh)) {
    Dialog &d = dialogs_.at(id);
    if (status >= 300) {  // nua refused it already (overlap, dialog terminating)
      IVR_LOG(log_, debug, kSub, "dialog %llu: re-INVITE refused by nua: %d",
              static_cast<unsigned long long>(id), status);
      return;
    }
    if (shutting_down_ || d.state != DState::established) {
      nua_respond(nh, SIP_491_REQUEST_PENDING, TAG_END());
      return;
    }
    d.reinvite_pending = true;
    SipEvent ev = make_event(SipEvent::Kind::reinvite, id);
    ev.has_sdp = sofia::sdp_body(sip, ev.sdp);
    IVR_LOG(log_, info, kSub, "dialog %llu: re-INVITE (%s SDP)",
            static_cast<unsigned long long>(id), ev.has_sdp ? "with" : "without");
    emit(std::move(ev));
    return;
  }
  if (status >= 300 || !sip || !sip->sip_call_id || !sip->sip_from || !sip->sip_to ||
      !sip->sip_request) {
    nua_handle_destroy(nh);
    return;
  }
  if (shutting_down_) {
    std::string reason = sofia::reason_header("SIP", 503, shutdown_reason_);
    nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_REASON_STR(reason.c_str()), TAG_END());
    nua_handle_destroy(nh);
    return;
  }

  msg_t *msg = nua_current_request(nua_);
  SipEvent ev = make_event(SipEvent::Kind::invite, 0);
  ev.call_id = sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  ev.from = sofia::header_value(sip->sip_from);
  ev.to = sofia::header_value(sip->sip_to);
  ev.from_user = sofia::url_user(sip->sip_from->a_url);
  ev.to_user = sofia::url_user(sip->sip_to->a_url);
  ev.request_uri = sofia::url_string(sip->sip_request->rq_url);
  ev.contact = sofia::header_value(sip->sip_contact);
  ev.remote_signaling = sofia::source_address(msg);
  ev.headers = sofia::all_headers(msg);
  ev.has_sdp = sofia::sdp_body(sip, ev.sdp);

  const DialogId id = next_id_.fetch_add(1);
  Dialog d;
  d.nh = nua_handle_ref(nh);
  d.call_id = ev.call_id;
  dialogs_.emplace(id, std::move(d));
  by_handle_.emplace(nh, id);
  ev.dialog = id;
  IVR_LOG(log_, info, kSub, "dialog %llu: INVITE %s from %s to %s via %s (%s SDP)",
          static_cast<unsigned long long>(id), ev.call_id.c_str(), ev.from.c_str(),
          ev.request_uri.c_str(), ev.remote_signaling.c_str(), ev.has_sdp ? "with" : "without");
  emit(std::move(ev));
}

void SofiaSipStack::on_info(nua_handle_t *nh, const sip_t *sip) {
  const DialogId id = id_of(nh);
  Dialog *d = id ? find(id) : nullptr;
  if (!d) {
    nua_respond(nh, SIP_481_NO_TRANSACTION, NUTAG_WITH_THIS(nua_), TAG_END());
    nua_handle_destroy(nh);
    return;
  }
  const std::string type = sofia::content_type(sip);
  const std::string_view body = sofia::body(sip);
  if (type.empty() && body.empty()) {
    // A bodiless INFO (RFC 6086 keep-alive style) carries no package: accept it.
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua_), TAG_END());
    IVR_LOG(log_, debug, kSub, "dialog %llu: empty INFO accepted",
            static_cast<unsigned long long>(id));
    return;
  }
  auto digit = parse_info_dtmf(type, body);
  if (digit) {
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua_), TAG_END());
    IVR_LOG(log_, info, kSub, "dialog %llu: INFO DTMF '%c' (%u ms, %s)",
            static_cast<unsigned long long>(id), digit->digit,
            static_cast<unsigned>(digit->duration_ms), type.c_str());
    SipEvent ev = make_event(SipEvent::Kind::info_dtmf, id);
    ev.dtmf = *digit;
    emit(std::move(ev));
    return;
  }
  const Error &err = digit.error();
  if (err.code == Errc::unsupported) {
    nua_respond(nh, SIP_415_UNSUPPORTED_MEDIA, NUTAG_WITH_THIS(nua_),
                SIPTAG_ACCEPT_STR(kInfoAccept), TAG_END());
    IVR_LOG(log_, warn, kSub, "dialog %llu: INFO refused 415: content type '%s' not supported",
            static_cast<unsigned long long>(id), type.c_str());
    return;
  }
  std::string warning =
      "399 " + host_for_uri(opts_.address) + " \"" + sofia::quoted_text(err.message) + "\"";
  nua_respond(nh, 400, "Bad DTMF Body", NUTAG_WITH_THIS(nua_), SIPTAG_WARNING_STR(warning.c_str()),
              TAG_END());
  IVR_LOG(log_, warn, kSub, "dialog %llu: INFO refused 400: %s",
          static_cast<unsigned long long>(id), err.message.c_str());
}

void SofiaSipStack::on_terminated(DialogId id, int status, const char *phrase) {
  Dialog *d = find(id);
  if (!d) return;
  TerminationCause cause =
      d->cause.value_or(shutting_down_ ? TerminationCause::shutdown : TerminationCause::error);
  if (d->error_status) {
    std::string error_phrase = d->error_phrase;
    finish_dialog(id, cause, d->error_status, error_phrase);
  } else {
    finish_dialog(id, cause, status, phrase);
  }
}

void SofiaSipStack::finish_dialog(DialogId id, TerminationCause cause, int status,
                                  const std::string &phrase) {
  auto it = dialogs_.find(id);
  if (it == dialogs_.end()) return;
  nua_handle_t *nh = it->second.nh;
  std::string call_id = std::move(it->second.call_id);
  if (it->second.timer) su_timer_destroy(it->second.timer);  // also fine from its callback
  dialogs_.erase(it);
  by_handle_.erase(nh);
  // Destroy drops the reference nua gave the application; unref drops ours.
  nua_handle_destroy(nh);
  nua_handle_unref(nh);

  IVR_LOG(log_, info, kSub, "dialog %llu: terminated (%s, %d %s) %s",
          static_cast<unsigned long long>(id), cause_name(cause), status, phrase.c_str(),
          call_id.c_str());
  SipEvent ev = make_event(SipEvent::Kind::terminated, id);
  ev.cause = cause;
  ev.status = status;
  ev.phrase = phrase;
  emit(std::move(ev));
  if (shutting_down_ && dialogs_.empty()) stop_nua();
}

}  // namespace ivr::sip
