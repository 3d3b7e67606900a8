// SofiaSipStack: SipStack on Sofia-SIP's NUA. Private to lib/sip; the implementation is
// spread over sip_stack.cpp (lifecycle, command queue, event dispatch, shutdown),
// sip_inbound.cpp (inbound calls, INFO, dialog end), sip_outbound.cpp (outbound legs, REFER,
// 302) and sip_options.cpp (OPTIONS probes).
//
// One SIP thread creates the su_root (with threading off, so the NUA stack runs in that same
// thread), the NUA, and every nua_handle_t; no Sofia object is touched from another thread.
// Other threads queue Commands and wake the SIP thread with an empty su_msg; the SIP thread
// drains the queue. Members are marked with the thread that may touch them.
#pragma once

#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sip/sip_stack.h"

namespace ivr::sip {

namespace detail {

inline constexpr const char *kSub = "sip";

const char *transport_name(Transport t);
const char *cause_name(TerminationCause c);
// An address as the host part of a URI: IPv6 literals in brackets.
std::string host_for_uri(const std::string &address);
SipEvent make_event(SipEvent::Kind kind, DialogId dialog);
// RFC 3261's phrase for a status ("Unknown" when Sofia has none).
const char *status_phrase(int status);

}  // namespace detail

class SofiaSipStack final : public SipStack {
 public:
  explicit SofiaSipStack(SipOptions options) : opts_(std::move(options)), log_(opts_.logger) {}
  ~SofiaSipStack() override { shutdown("shutdown"); }

  Status launch();

  void ringing(DialogId dialog) override { post({Command::ringing, dialog}); }
  void answer(DialogId dialog, std::string sdp) override {
    post({Command::answer, dialog, 200, std::move(sdp)});
  }
  void reject(DialogId dialog, int status, std::string reason) override {
    post({Command::reject, dialog, status, std::move(reason)});
  }
  void answer_reinvite(DialogId dialog, int status, std::string sdp) override {
    post({Command::answer_reinvite, dialog, status, std::move(sdp)});
  }
  void hangup(DialogId dialog, std::string reason) override {
    post({Command::hangup, dialog, 0, std::move(reason)});
  }
  DialogId invite(OutboundInvite invite) override;
  void redirect(DialogId dialog, int status, std::vector<std::string> contacts,
                std::string reason) override;
  void refer(DialogId dialog, std::string refer_to) override {
    post({Command::refer, dialog, 0, std::move(refer_to)});
  }
  bool send_options(std::string uri, uint32_t timeout_ms,
                    std::function<void(OptionsResult)> done) override;
  void shutdown(std::string reason) override;
  uint16_t bound_port() const override { return port_.load(); }

 private:
  struct Command {
    enum Kind : uint8_t {
      ringing,
      answer,
      reject,
      answer_reinvite,
      hangup,
      invite,
      redirect,
      refer,
      shutdown,
    } kind;
    DialogId dialog = 0;
    int status = 0;
    std::string text;                     // SDP, reason or Refer-To
    std::vector<std::string> list;        // redirect: the Contacts
    std::unique_ptr<OutboundInvite> leg;  // invite

    Command(Kind k, DialogId d, int s = 0, std::string t = {})
        : kind(k), dialog(d), status(s), text(std::move(t)) {}
  };

  struct ProbeCommand {
    std::string uri;
    uint32_t timeout_ms = 0;
    std::function<void(OptionsResult)> done;
  };

  // An OPTIONS in flight: its own nua handle (no dialog) and its timeout timer.
  struct Probe {
    nua_handle_t *nh = nullptr;
    su_timer_t *timer = nullptr;
    std::chrono::steady_clock::time_point sent;
    std::string uri;
    std::function<void(OptionsResult)> done;
  };

  enum class DState : uint8_t {
    offered,      // inbound: INVITE received, no final response yet
    calling,      // outbound: INVITE sent, no final response yet
    answered,     // inbound: 200 sent, waiting for the ACK
    established,  // inbound: ACK received; outbound: 2xx received (the NUA sent the ACK)
    ending,       // final error response, CANCEL or BYE sent: waiting for nua's terminated
  };

  struct Dialog {
    nua_handle_t *nh = nullptr;  // we hold one reference while the dialog is in the map
    DState state = DState::offered;
    bool reinvite_pending = false;
    bool bye_after_ack = false;  // hangup() came between our 200 and the caller's ACK
    std::string bye_reason;
    std::optional<TerminationCause> cause;
    int error_status = 0;  // what ended the dialog, reported instead of the BYE's status
    std::string error_phrase;
    std::string call_id;
    // Outbound legs.
    bool outbound = false;
    su_timer_t *timer = nullptr;  // ring timer; after a CANCEL the wait for the INVITE's end
    bool provisional = false;     // a 1xx came off the network: CANCEL may be sent
    bool cancel_sent = false;
    bool bye_sent = false;
    bool auth_tried = false;  // the one answer to a 401/407 is spent
    std::string username, password;
    // REFER (either direction of call): one at a time, until its final refer event.
    bool refer_pending = false;
  };

  // ---- any thread ----
  bool post(Command command);
  bool wake_locked();  // cmd_mutex_ held

  // ---- SIP thread: sip_stack.cpp ----
  void thread_main(std::promise<Status> &started);
  std::string bind_url() const;
  static void on_wake(su_root_magic_t *magic, su_msg_r msg, su_msg_arg_t *arg);
  static void on_nua_event(nua_event_t event, int status, const char *phrase, nua_t *nua,
                           nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic,
                           const sip_t *sip, tagi_t tags[]);
  static void on_grace_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  static void on_hard_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  void run_commands();
  void execute(Command &c);
  void handle_event(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                    const sip_t *sip, tagi_t tags[]);
  void on_get_params(tagi_t tags[]);
  void on_shutdown_done(int status, const char *phrase);
  // The peer a response came from ("ip:port"); empty for Sofia's own local responses
  // (timeouts, transport errors), which are built in memory. Only inside the NUA callback;
  // the event stays valid until the callback returns.
  std::string response_source();
  Dialog *find(DialogId id);
  DialogId id_of(nua_handle_t *nh) const;
  void begin_shutdown(const std::string &reason);
  void stop_nua();
  void drop_all_dialogs(const char *why);
  void emit(SipEvent &&event);
  void fail_start(Status status);

  // ---- SIP thread: sip_inbound.cpp (dialogs of both directions) ----
  void on_invite(int status, nua_handle_t *nh, const sip_t *sip);
  void on_info(nua_handle_t *nh, const sip_t *sip);
  void on_terminated(DialogId id, int status, const char *phrase);
  void execute_dialog(Command &c, Dialog &d);
  void send_bye(Dialog &d, const std::string &reason);
  void hangup_dialog(DialogId id, Dialog &d, const std::string &reason);
  void finish_dialog(DialogId id, TerminationCause cause, int status, const std::string &phrase);

  // ---- SIP thread: sip_outbound.cpp ----
  void start_invite(DialogId id, OutboundInvite &leg);
  void on_invite_response(DialogId id, Dialog &d, int status, const char *phrase, const sip_t *sip);
  bool answer_challenge(DialogId id, Dialog &d, int status, const sip_t *sip);
  void cancel_outbound(DialogId id, Dialog &d, TerminationCause cause);
  void arm_timer(DialogId id, Dialog &d, uint32_t ms);
  static void on_leg_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  void on_leg_timer(DialogId id);
  void on_call_ready(DialogId id, Dialog &d);
  void send_redirect(DialogId id, Dialog &d, Command &c);
  void send_refer(DialogId id, Dialog &d, const std::string &refer_to);
  void on_refer_response(DialogId id, Dialog &d, int status, const char *phrase);
  void on_notify(DialogId id, Dialog &d, int status, const char *phrase, const sip_t *sip,
                 tagi_t tags[]);
  void emit_refer(DialogId id, Dialog &d, int status, std::string phrase, bool final);
  void fail_invite(DialogId id, TerminationCause cause, int status, const std::string &phrase);

  // ---- SIP thread: sip_options.cpp ----
  static void on_probe_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  void start_probe(ProbeCommand &c);
  void on_options_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip);
  void finish_probe(uint64_t id, OptionsResult result);
  void cancel_probes(const char *why);

  const SipOptions opts_;
  const LoggerPtr log_;
  std::atomic<uint16_t> port_{0};
  // One id space for inbound dialogs (SIP thread) and outbound legs (invite(), any thread).
  std::atomic<DialogId> next_id_{1};
  std::thread thread_;

  // Command queue, shared with the SIP thread.
  std::mutex cmd_mutex_;
  std::vector<Command> cmds_;
  std::vector<ProbeCommand> probe_cmds_;
  su_root_t *root_ = nullptr;  // non-null while the SIP thread accepts commands
  bool wake_pending_ = false;

  std::mutex shutdown_mutex_;  // serializes shutdown() callers
  bool stopped_ = false;

  // SIP thread only.
  nua_t *nua_ = nullptr;
  su_root_t *sip_root_ = nullptr;
  su_timer_t *grace_timer_ = nullptr;
  su_timer_t *hard_timer_ = nullptr;
  std::promise<Status> *started_ = nullptr;  // until the bound port is known
  std::string local_host_;                   // host part of our Contact (From of our INVITEs)
  nua_saved_event_t saved_event_[1] = {};    // the current event, once response_source saved it
  bool event_saved_ = false;
  std::unordered_map<DialogId, Dialog> dialogs_;
  std::unordered_map<nua_handle_t *, DialogId> by_handle_;
  std::unordered_map<uint64_t, Probe> probes_;
  std::unordered_map<nua_handle_t *, uint64_t> probe_by_handle_;
  uint64_t next_probe_ = 1;
  bool shutting_down_ = false;
  bool nua_shutdown_called_ = false;
  bool shutdown_final_ = false;
  std::string shutdown_reason_;
};

}  // namespace ivr::sip
