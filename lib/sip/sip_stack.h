// The SIP user agent on Sofia-SIP's NUA: inbound calls, outbound legs (B2BUA), REFER, 302
// redirects and OPTIONS probes.
//
// Threading: one SIP thread creates and owns the su_root and the NUA (su_root_threading(0)).
// Events leave through Options::sink (called on the SIP thread; must only queue + wake).
// Commands from other threads are marshalled into the SIP thread with su_msg; they are
// fire-and-forget and never block. Sofia pointers never leave this module: dialogs are
// named by DialogId.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "media/dtmf.h"

namespace ivr::sip {

using DialogId = uint64_t;

enum class Transport : uint8_t { udp, tcp, udp_tcp };

struct SipHeader {
  std::string name;  // as received, e.g. "X-Lead-Id"
  std::string value;
};

enum class TerminationCause : uint8_t {
  remote_bye,     // the caller sent BYE
  remote_cancel,  // the caller sent CANCEL before we answered
  local,          // we rejected or hung up
  error,          // transaction timeout, transport error, no ACK...; for an outbound leg
                  // also "not deliverable" (Sofia's local 408/503, connection refused)
  shutdown,       // the stack is shutting down
  refused,        // outbound leg: the far end answered our INVITE 3xx-6xx (status, phrase)
  no_answer,      // outbound leg: no final answer within ring_timeout_ms; we sent CANCEL
};

// An outbound call leg placed by SipStack::invite (the B2BUA's second leg).
struct OutboundInvite {
  std::string uri;           // Request-URI and To: "sip:8300@127.0.0.1:5070" (";transport=tcp")
  std::string from_user;     // user part of From ("" = "ivr"); the host is the stack's address
  std::string from_display;  // display name in From ("" = none)
  std::vector<SipHeader> headers;    // added as given (X-*, User-to-User); no CR/LF
  std::string sdp;                   // our offer (application/sdp); required
  std::string username, password;    // digest credentials for 401/407 ("" = none); no ':'
  uint32_t ring_timeout_ms = 30000;  // no final answer by then: CANCEL, cause no_answer
                                     // (0: 30000). See docs/architecture.md for the causes.
};

// The outcome of one out-of-dialog OPTIONS (SipStack::send_options).
struct OptionsResult {
  enum class Outcome : uint8_t {
    response,         // the peer answered: status and phrase are its final response
    timeout,          // no final response within the probe's timeout (or Sofia's 408)
    transport_error,  // not sent or not deliverable (connection refused, bad URI...):
                      // status/phrase are Sofia's local response
    cancelled,        // the stack shut down before an answer
  } outcome = Outcome::timeout;
  int status = 0;  // response: the peer's final status (2xx-6xx); otherwise Sofia's local
                   // status, if any (408, 503, 9xx), or 0
  std::string phrase;
  uint32_t rtt_ms = 0;  // request sent -> final response (or -> giving up)
  std::string uri;      // the probed URI, as given
};
const char *options_outcome_name(OptionsResult::Outcome o);

struct SipEvent {
  enum class Kind : uint8_t {
    invite,      // new inbound call: all fields of the request are filled
    reinvite,    // in-dialog INVITE: sdp filled (may be empty: offerless re-INVITE)
    ack,         // ACK received for our 2xx: sdp filled when the ACK carries our answer
    info_dtmf,   // a SIP INFO carrying DTMF (already answered 200 by the stack)
    terminated,  // the dialog is over; no more events for it; the stack frees it
    options,     // an OPTIONS probe finished (dialog 0): options + options_done filled
    // Outbound legs (SipStack::invite):
    progress,  // a provisional answer 101-199: status, phrase; sdp/has_sdp (early media)
    answered,  // a 2xx: status, phrase, sdp (the answer); the stack has sent the ACK
    // REFER on any answered dialog (SipStack::refer): status is the REFER's own final
    // answer when it was refused, otherwise the status line of each NOTIFY's sipfrag
    // (100, 180, 200, 486...); refer_final marks the last one of this REFER. Status 0 (final):
    // not sent (dialog not answered, bad refer_to); 500 (final): a NOTIFY without a readable
    // sipfrag; 408 (final): the REFER timed out or its subscription ended without a result.
    refer,
  } kind;
  DialogId dialog = 0;

  // invite
  std::string call_id, from, to, request_uri, contact, remote_signaling;  // "ip:port"
  std::string from_user, to_user;  // user parts of From/To URIs
  std::vector<SipHeader> headers;  // every header of the INVITE, in order
  std::string sdp;                 // body when Content-Type is application/sdp
  bool has_sdp = false;

  media::DtmfDigit dtmf{};  // info_dtmf

  TerminationCause cause = TerminationCause::local;  // terminated
  int status = 0;  // terminated: final SIP status involved, if any; progress/answered/refer
  std::string phrase;
  bool refer_final = false;  // refer

  // options: the receiver (on the engine side) calls options_done(std::move(options)).
  OptionsResult options;
  std::function<void(OptionsResult)> options_done;
};

struct SipOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 5060;  // 0: a free port, see bound_port() (udp_tcp: the same for both)
  Transport transport = Transport::udp;
  std::string user_agent = "libivr";
  // SIP timer 64*T1: how long an answered INVITE waits for its ACK and a BYE for its answer
  // before the dialog ends with TerminationCause::error. 0: RFC 3261's 32 s.
  uint32_t transaction_timeout_ms = 0;
  std::function<void(SipEvent &&)> sink;
  LoggerPtr logger;
};

class SipStack {
 public:
  // Starts the SIP thread and binds; returns once bound, or the bind error.
  static Result<std::unique_ptr<SipStack>> start(SipOptions options);
  virtual ~SipStack() = default;  // shuts down (blocking) if still running

  // Thread-safe, non-blocking commands. Unknown or finished dialogs are ignored (logged at
  // debug). Reason texts go into a Reason header where SIP allows one.
  virtual void ringing(DialogId dialog) = 0;                                 // 180 Ringing
  virtual void answer(DialogId dialog, std::string sdp) = 0;                 // 200 OK + SDP
  virtual void reject(DialogId dialog, int status, std::string reason) = 0;  // 4xx-6xx
  virtual void answer_reinvite(DialogId dialog, int status, std::string sdp) = 0;
  // BYE when answered. Before answer: an inbound call gets a 480, an outbound leg a CANCEL
  // (terminated with cause local follows).
  virtual void hangup(DialogId dialog, std::string reason) = 0;
  // Places an outbound leg and returns its dialog id at once (0 when the stack is stopped);
  // events for it (progress, answered, terminated...) carry that id. A 401/407 is answered
  // once with the credentials; a second challenge ends the leg as refused.
  virtual DialogId invite(OutboundInvite invite) = 0;
  // Answers an inbound INVITE not yet answered with a 3xx (302) carrying these Contacts
  // (terminated with cause local follows). No contacts: the call is refused 500 instead.
  virtual void redirect(DialogId dialog, int status, std::vector<std::string> contacts,
                        std::string reason) = 0;
  // Sends REFER (Refer-To: refer_to) in an answered dialog; results arrive as refer events.
  // The dialog stays up: the caller of refer() hangs up after a final 2xx. One REFER at a
  // time per dialog: another one before the final refer event is ignored (logged).
  virtual void refer(DialogId dialog, std::string refer_to) = 0;
  // Sends an out-of-dialog OPTIONS to `uri` ("sip:host:port", ";transport=tcp" allowed)
  // and reports the outcome once through the sink as a SipEvent of kind options carrying
  // `done` (so done runs wherever the sink delivers: the engine loop). timeout_ms bounds
  // the wait (0: 5000 ms); the nua handle is destroyed after the final response or the
  // timeout. Returns false (done is never called) when the stack is stopped; a probe still
  // in flight at shutdown completes with Outcome::cancelled.
  virtual bool send_options(std::string uri, uint32_t timeout_ms,
                            std::function<void(OptionsResult)> done) = 0;
  // Blocking: ends every dialog (BYE/480 with reason), waits for nua_r_shutdown, stops the
  // thread. Idempotent.
  virtual void shutdown(std::string reason) = 0;

  virtual uint16_t bound_port() const = 0;
};

}  // namespace ivr::sip
