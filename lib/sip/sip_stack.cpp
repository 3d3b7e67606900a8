// SipStack on Sofia-SIP's NUA. One SIP thread creates the su_root (with threading off, so
// the NUA stack runs in that same thread), the NUA, and every nua_handle_t; no Sofia object
// is touched from another thread. Other threads queue Commands and wake the SIP thread with
// an empty su_msg; the SIP thread drains the queue.
#include "sip/sip_stack.h"

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "sip/info_dtmf.h"
#include "sip/sofia_log.h"
#include "sip/sofia_message.h"

namespace ivr::sip {

namespace {

constexpr const char *kSub = "sip";
constexpr const char *kAllow = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";
constexpr const char *kInfoAccept = "application/dtmf-relay, application/dtmf";
// Shutdown: time for our BYEs to be answered before the remaining handles are dropped and
// nua_shutdown runs, and the limit for the whole shutdown (nua_shutdown alone may wait 30 s
// for unanswered BYEs; after the drop it completes on its next 1 s tick).
constexpr su_duration_t kShutdownGraceMs = 2000;
constexpr su_duration_t kShutdownHardMs = 5000;
// An OPTIONS probe without its own timeout gives up after this (Sofia's timer F is 32 s).
constexpr uint32_t kDefaultProbeTimeoutMs = 5000;
constexpr uint32_t kMaxProbeTimeoutMs = 64000;

const char *transport_name(Transport t) {
  switch (t) {
    case Transport::udp:
      return "udp";
    case Transport::tcp:
      return "tcp";
    case Transport::udp_tcp:
      return "udp+tcp";
  }
  return "?";
}

const char *cause_name(TerminationCause c) {
  switch (c) {
    case TerminationCause::remote_bye:
      return "remote_bye";
    case TerminationCause::remote_cancel:
      return "remote_cancel";
    case TerminationCause::local:
      return "local";
    case TerminationCause::error:
      return "error";
    case TerminationCause::shutdown:
      return "shutdown";
    case TerminationCause::refused:
      return "refused";
    case TerminationCause::no_answer:
      return "no_answer";
  }
  return "?";
}

std::string host_for_uri(const std::string &address) {
  if (address.find(':') != std::string::npos && address.front() != '[')
    return "[" + address + "]";  // IPv6 literal
  return address;
}

SipEvent make_event(SipEvent::Kind kind, DialogId dialog) {
  SipEvent ev;
  ev.kind = kind;
  ev.dialog = dialog;
  return ev;
}

// Binds (and releases) the sockets Sofia is about to bind, so that the common failure, a
// port in use, is reported with its errno before nua_create: Sofia's own failure path
// leaks its half-built stack and keeps no errno. Skipped for port 0 and non-literal hosts.
Status probe_bind(const SipOptions &o) {
  if (o.port == 0) return Status::success();
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
  if (inet_pton(AF_INET, o.address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(o.port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, o.address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(o.port);
    len = sizeof *v6;
  } else {
    return Status::success();
  }
  const bool udp = o.transport != Transport::tcp;
  const bool tcp = o.transport != Transport::udp;
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    if ((type == SOCK_DGRAM && !udp) || (type == SOCK_STREAM && !tcp)) continue;
    int fd = ::socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;  // let Sofia report it
    int one = 1;
    // Like Sofia's listener: a TCP port with connections in TIME_WAIT is still usable.
    if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = ::bind(fd, reinterpret_cast<sockaddr *>(&ss), len);
    int err = errno;
    ::close(fd);
    if (rc != 0)
      return Status(Errc::sip, std::string("cannot bind SIP ") +
                                   (type == SOCK_DGRAM ? "udp" : "tcp") + " on " +
                                   host_for_uri(o.address) + ":" + std::to_string(o.port) + ": " +
                                   std::strerror(err));
  }
  return Status::success();
}

const char *status_phrase(int status) {
  const char *p = sip_status_phrase(status);
  return p && *p ? p : "Unknown";
}

class SofiaSipStack final : public SipStack {
 public:
  explicit SofiaSipStack(SipOptions options) : opts_(std::move(options)), log_(opts_.logger) {}
  ~SofiaSipStack() override { shutdown("shutdown"); }

  Status launch();

  void ringing(DialogId dialog) override { post({Command::ringing, dialog, 0, {}}); }
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
  bool send_options(std::string uri, uint32_t timeout_ms,
                    std::function<void(OptionsResult)> done) override;
  // Placeholders until the outbound leg lands (this session's SIP helper replaces them).
  DialogId invite(OutboundInvite) override { return 0; }
  void redirect(DialogId, int, std::vector<std::string>, std::string) override {}
  void refer(DialogId, std::string) override {}
  void shutdown(std::string reason) override;
  uint16_t bound_port() const override { return port_.load(); }

 private:
  struct Command {
    enum Kind : uint8_t { ringing, answer, reject, answer_reinvite, hangup, shutdown } kind;
    DialogId dialog;
    int status;
    std::string text;  // SDP or reason
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
    offered,      // INVITE received, no final response yet
    answered,     // 200 sent, waiting for the ACK
    established,  // ACK received
    ending,       // final error response or BYE sent, waiting for nua's terminated state
  };

  struct Dialog {
    nua_handle_t *nh = nullptr;  // we hold one reference while the dialog is in the map
    DState state = DState::offered;
    bool reinvite_pending = false;
    bool bye_after_ack = false;  // hangup() came between our 200 and the caller's ACK
    std::string bye_reason;
    std::optional<TerminationCause> cause;
    int error_status = 0;  // what made the dialog fail, reported instead of the BYE's status
    std::string error_phrase;
    std::string call_id;
  };

  // ---- any thread ----
  bool post(Command command);
  bool wake_locked();  // cmd_mutex_ held

  // ---- SIP thread ----
  void thread_main(std::promise<Status> &started);
  std::string bind_url() const;
  static void on_wake(su_root_magic_t *magic, su_msg_r msg, su_msg_arg_t *arg);
  static void on_nua_event(nua_event_t event, int status, const char *phrase, nua_t *nua,
                           nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic,
                           const sip_t *sip, tagi_t tags[]);
  static void on_grace_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  static void on_hard_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);
  static void on_probe_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);

  void run_commands();
  void execute(Command &c);
  void handle_event(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                    const sip_t *sip, tagi_t tags[]);
  void on_invite(int status, nua_handle_t *nh, const sip_t *sip);
  void on_info(nua_handle_t *nh, const sip_t *sip);
  void on_terminated(DialogId id, int status, const char *phrase);
  void on_get_params(tagi_t tags[]);
  void start_probe(ProbeCommand &c);
  void on_options_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip);
  void finish_probe(uint64_t id, OptionsResult result);
  void cancel_probes(const char *why);
  void on_shutdown_done(int status, const char *phrase);
  Dialog *find(DialogId id);
  DialogId id_of(nua_handle_t *nh) const;
  void send_bye(Dialog &d, const std::string &reason);
  void hangup_dialog(DialogId id, Dialog &d, const std::string &reason);
  void begin_shutdown(const std::string &reason);
  void stop_nua();
  void drop_all_dialogs(const char *why);
  void finish_dialog(DialogId id, TerminationCause cause, int status, const std::string &phrase);
  void emit(SipEvent &&event);
  void fail_start(Status status);

  const SipOptions opts_;
  const LoggerPtr log_;
  std::atomic<uint16_t> port_{0};
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
  std::unordered_map<DialogId, Dialog> dialogs_;
  std::unordered_map<nua_handle_t *, DialogId> by_handle_;
  DialogId next_id_ = 1;
  std::unordered_map<uint64_t, Probe> probes_;
  std::unordered_map<nua_handle_t *, uint64_t> probe_by_handle_;
  uint64_t next_probe_ = 1;
  bool shutting_down_ = false;
  bool nua_shutdown_called_ = false;
  bool shutdown_final_ = false;
  std::string shutdown_reason_;
};

// ---------------------------------------------------------------- any thread

Status SofiaSipStack::launch() {
  std::promise<Status> started;
  auto result = started.get_future();
  thread_ = std::thread([this, &started] { thread_main(started); });
  Status status = result.get();
  if (!status) {
    thread_.join();
    stopped_ = true;
  }
  return status;
}

bool SofiaSipStack::post(Command command) {
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  if (!root_) {
    IVR_LOG(log_, debug, kSub, "command %d for dialog %llu ignored: stack stopped",
            static_cast<int>(command.kind), static_cast<unsigned long long>(command.dialog));
    return false;
  }
  cmds_.push_back(std::move(command));
  return wake_locked();
}

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

bool SofiaSipStack::wake_locked() {
  if (wake_pending_) return true;
  // The message carries nothing: it only makes the SIP thread drain cmds_.
  su_msg_r msg = SU_MSG_R_INIT;
  if (su_msg_create(msg, su_root_task(root_), su_task_null, &SofiaSipStack::on_wake, 0) != 0 ||
      su_msg_send(msg) != 0) {
    IVR_LOG(log_, error, kSub, "cannot wake the SIP thread (su_msg): %s", std::strerror(errno));
    return false;
  }
  wake_pending_ = true;
  return true;
}

void SofiaSipStack::shutdown(std::string reason) {
  std::lock_guard<std::mutex> lock(shutdown_mutex_);
  if (stopped_) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    // Joining ourselves would deadlock; the contract forbids calling from the sink.
    IVR_LOG(log_, error, kSub, "shutdown() called on the SIP thread; ignored");
    return;
  }
  if (!post({Command::shutdown, 0, 0, std::move(reason)}))
    IVR_LOG(log_, error, kSub, "shutdown could not be queued; waiting for the SIP thread");
  thread_.join();
  stopped_ = true;
  sofia::detach_log(log_);
}

// ---------------------------------------------------------------- SIP thread

std::string SofiaSipStack::bind_url() const {
  std::string url = "sip:" + host_for_uri(opts_.address) + ":" + std::to_string(opts_.port);
  switch (opts_.transport) {
    case Transport::udp:
      url += ";transport=udp";
      break;
    case Transport::tcp:
      url += ";transport=tcp";
      break;
    case Transport::udp_tcp:
      break;  // no parameter: Sofia binds UDP and TCP
  }
  return url;
}

void SofiaSipStack::fail_start(Status status) {
  if (started_) {
    started_->set_value(std::move(status));
    started_ = nullptr;
  }
}

void SofiaSipStack::thread_main(std::promise<Status> &started) {
  started_ = &started;
  su_init();
  su_root_t *root = su_root_create(reinterpret_cast<su_root_magic_t *>(this));
  if (!root) {
    fail_start(Status(Errc::sip, "su_root_create failed"));
    su_deinit();
    return;
  }
  // The NUA's stack task then runs in this thread too: no hidden Sofia thread.
  su_root_threading(root, 0);

  const std::string url = bind_url();
  sofia::attach_log(log_);  // bind errors are logged by tport during nua_create
  errno = 0;
  nua_ = nua_create(
      root, &SofiaSipStack::on_nua_event, reinterpret_cast<nua_magic_t *>(this),
      NUTAG_URL(url.c_str()),
      TAG_IF(opts_.transaction_timeout_ms > 0, NTATAG_SIP_T1X64(opts_.transaction_timeout_ms)),
      // We negotiate SDP ourselves; without SOA nua never answers an offer.
      NUTAG_MEDIA_ENABLE(0), NUTAG_AUTOANSWER(0), NUTAG_AUTOALERT(0), NUTAG_AUTOACK(1),
      NUTAG_SESSION_TIMER(0),
      // INFO is answered by us (DTMF); INVITE is already application-answered.
      NUTAG_APPL_METHOD("INFO"), SIPTAG_USER_AGENT_STR(opts_.user_agent.c_str()),
      SIPTAG_ALLOW_STR(kAllow),
      // Replaces Sofia's default "timer, 100rel": neither is offered.
      SIPTAG_SUPPORTED(static_cast<const sip_supported_t *>(nullptr)), TAG_END());
  if (!nua_) {
    int err = errno;
    fail_start(Status(Errc::sip, "cannot bind SIP " + std::string(transport_name(opts_.transport)) +
                                     " on " + host_for_uri(opts_.address) + ":" +
                                     std::to_string(opts_.port) + " (" + url +
                                     "): " + (err ? std::strerror(err) : "nua_create failed")));
    su_root_destroy(root);
    su_deinit();
    sofia::detach_log(log_);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cmd_mutex_);
    root_ = root;
  }
  sip_root_ = root;
  // The bound port (port 0 picks one) is in the contact nta reports.
  nua_get_params(nua_, TAG_ANY(), TAG_END());

  su_root_run(root);

  {
    std::lock_guard<std::mutex> lock(cmd_mutex_);
    root_ = nullptr;
    cmds_.clear();
    probe_cmds_.clear();
  }
  cancel_probes("SIP stack stopped");
  if (grace_timer_) su_timer_destroy(grace_timer_), grace_timer_ = nullptr;
  if (hard_timer_) su_timer_destroy(hard_timer_), hard_timer_ = nullptr;
  if (shutdown_final_) {
    nua_destroy(nua_);
    su_root_destroy(root);
  } else {
    // nua_destroy refuses (and asserts) before nua_r_shutdown: leak rather than crash.
    IVR_LOG(log_, error, kSub, "NUA shutdown did not complete; leaking the Sofia stack");
  }
  nua_ = nullptr;
  su_deinit();
  IVR_LOG(log_, info, kSub, "SIP stack stopped");
}

void SofiaSipStack::on_wake(su_root_magic_t *magic, su_msg_r, su_msg_arg_t *) {
  reinterpret_cast<SofiaSipStack *>(magic)->run_commands();
}

void SofiaSipStack::run_commands() {
  std::vector<Command> batch;
  std::vector<ProbeCommand> probes;
  {
    std::lock_guard<std::mutex> lock(cmd_mutex_);
    batch.swap(cmds_);
    probes.swap(probe_cmds_);
    wake_pending_ = false;
  }
  for (ProbeCommand &p : probes) {
    try {
      start_probe(p);
    } catch (const std::exception &e) {
      IVR_LOG(log_, error, kSub, "OPTIONS to %s failed: %s", p.uri.c_str(), e.what());
    }
  }
  for (Command &c : batch) {
    try {
      execute(c);
    } catch (const std::exception &e) {
      IVR_LOG(log_, error, kSub, "command failed: %s", e.what());
    }
  }
}

SofiaSipStack::Dialog *SofiaSipStack::find(DialogId id) {
  auto it = dialogs_.find(id);
  return it == dialogs_.end() ? nullptr : &it->second;
}

DialogId SofiaSipStack::id_of(nua_handle_t *nh) const {
  auto it = by_handle_.find(nh);
  return it == by_handle_.end() ? 0 : it->second;
}

void SofiaSipStack::execute(Command &c) {
  if (c.kind == Command::shutdown) {
    begin_shutdown(c.text);
    return;
  }
  Dialog *d = find(c.dialog);
  if (!d) {
    IVR_LOG(log_, debug, kSub, "command %d for unknown dialog %llu ignored",
            static_cast<int>(c.kind), static_cast<unsigned long long>(c.dialog));
    return;
  }
  if (shutting_down_) return;  // shutdown already ends every dialog
  switch (c.kind) {
    case Command::ringing:
      if (d->state == DState::offered) nua_respond(d->nh, SIP_180_RINGING, TAG_END());
      break;
    case Command::answer:
      if (d->state != DState::offered) {
        IVR_LOG(log_, debug, kSub, "dialog %llu: answer ignored (already answered or ending)",
                static_cast<unsigned long long>(c.dialog));
        break;
      }
      nua_respond(d->nh, SIP_200_OK,
                  TAG_IF(!c.text.empty(), SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                  TAG_IF(!c.text.empty(), SIPTAG_PAYLOAD_STR(c.text.c_str())), TAG_END());
      d->state = DState::answered;
      break;
    case Command::reject: {
      if (d->state != DState::offered) {
        // Too late for a final response: end the call the only way left.
        hangup_dialog(c.dialog, *d, c.text);
        break;
      }
      int status = c.status;
      if (status < 300 || status > 699) {
        IVR_LOG(log_, warn, kSub, "dialog %llu: reject status %d is not 300-699; using 500",
                static_cast<unsigned long long>(c.dialog), status);
        status = 500;
      }
      std::string reason = sofia::reason_header("SIP", status, c.text);
      nua_respond(d->nh, status, status_phrase(status), SIPTAG_REASON_STR(reason.c_str()),
                  TAG_END());
      d->state = DState::ending;
      if (!d->cause) d->cause = TerminationCause::local;
      break;
    }
    case Command::answer_reinvite: {
      if (!d->reinvite_pending) {
        IVR_LOG(log_, debug, kSub, "dialog %llu: no re-INVITE pending",
                static_cast<unsigned long long>(c.dialog));
        break;
      }
      int status = c.status;
      if (status < 200 || status > 699) status = 500;
      bool body = status < 300 && !c.text.empty();
      nua_respond(d->nh, status, status_phrase(status),
                  TAG_IF(body, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                  TAG_IF(body, SIPTAG_PAYLOAD_STR(c.text.c_str())), TAG_END());
      d->reinvite_pending = false;
      break;
    }
    case Command::hangup:
      hangup_dialog(c.dialog, *d, c.text);
      break;
    case Command::shutdown:
      break;
  }
}

void SofiaSipStack::send_bye(Dialog &d, const std::string &reason) {
  // Q.850 cause 16 is "normal call clearing"; the text carries our reason.
  std::string header = sofia::reason_header("Q.850", 16, reason);
  nua_bye(d.nh, SIPTAG_REASON_STR(header.c_str()), TAG_END());
  d.state = DState::ending;
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
    case DState::established:
      send_bye(d, reason);
      break;
    case DState::ending:
      IVR_LOG(log_, debug, kSub, "dialog %llu already ending", static_cast<unsigned long long>(id));
      return;
  }
  if (!d.cause) d.cause = TerminationCause::local;
}

void SofiaSipStack::emit(SipEvent &&event) {
  if (!opts_.sink) return;
  try {
    opts_.sink(std::move(event));
  } catch (const std::exception &e) {
    IVR_LOG(log_, error, kSub, "event sink threw: %s", e.what());
  } catch (...) {
    IVR_LOG(log_, error, kSub, "event sink threw");
  }
}

void SofiaSipStack::on_nua_event(nua_event_t event, int status, const char *phrase, nua_t *,
                                 nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *,
                                 const sip_t *sip, tagi_t tags[]) {
  auto *self = reinterpret_cast<SofiaSipStack *>(magic);
  try {
    self->handle_event(event, status, phrase ? phrase : "", nh, sip, tags);
  } catch (const std::exception &e) {
    // Nothing may unwind through Sofia's C frames.
    IVR_LOG(self->log_, error, kSub, "%s: %s", nua_event_name(event), e.what());
  } catch (...) {
    IVR_LOG(self->log_, error, kSub, "%s: unknown exception", nua_event_name(event));
  }
}

void SofiaSipStack::handle_event(nua_event_t event, int status, const char *phrase,
                                 nua_handle_t *nh, const sip_t *sip, tagi_t tags[]) {
  const DialogId id = nh ? id_of(nh) : 0;
  Dialog *d = id ? find(id) : nullptr;
  IVR_LOG(log_, trace, kSub, "%s %d %s (dialog %llu)", nua_event_name(event), status, phrase,
          static_cast<unsigned long long>(id));

  switch (event) {
    case nua_r_get_params:
      on_get_params(tags);
      return;
    case nua_r_shutdown:
      if (status >= 200) on_shutdown_done(status, phrase);
      return;
    case nua_i_invite:
      on_invite(status, nh, sip);
      return;
    case nua_i_info:
      on_info(nh, sip);
      return;
    case nua_r_options:
      on_options_response(status, phrase, nh, sip);
      return;
    default:
      break;
  }

  if (!d) {
    // A handle nua created for a request it answered itself (OPTIONS, a stray BYE...) or an
    // event for a dialog we already closed: the application owns every handle it is given.
    if (nh) nua_handle_destroy(nh);
    return;
  }

  switch (event) {
    case nua_i_ack: {
      if (d->state == DState::answered) d->state = DState::established;
      SipEvent ev = make_event(SipEvent::Kind::ack, id);
      ev.has_sdp = sofia::sdp_body(sip, ev.sdp);
      emit(std::move(ev));
      if (d->bye_after_ack && d->state == DState::established) {
        d->bye_after_ack = false;
        send_bye(*d, d->bye_reason);
      }
      break;
    }
    case nua_i_cancel:
      IVR_LOG(log_, info, kSub, "dialog %llu: caller cancelled (%s)",
              static_cast<unsigned long long>(id), d->call_id.c_str());
      if (!d->cause) d->cause = TerminationCause::remote_cancel;
      d->state = DState::ending;
      break;
    case nua_i_bye:
      IVR_LOG(log_, info, kSub, "dialog %llu: caller hung up (%s)",
              static_cast<unsigned long long>(id), d->call_id.c_str());
      if (!d->cause) d->cause = TerminationCause::remote_bye;
      d->state = DState::ending;
      break;
    case nua_i_error:
      IVR_LOG(log_, warn, kSub, "dialog %llu: %d %s", static_cast<unsigned long long>(id), status,
              phrase);
      if (status == 408 && !d->cause) {  // no ACK: nua sends BYE, then terminates
        d->cause = TerminationCause::error;
        d->error_status = status;
        d->error_phrase = phrase;
      }
      break;
    case nua_r_bye:
      IVR_LOG(log_, debug, kSub, "dialog %llu: BYE answered %d %s",
              static_cast<unsigned long long>(id), status, phrase);
      break;
    case nua_i_state: {
      int state = -1;
      tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
      if (state == nua_callstate_terminated) on_terminated(id, status, phrase);
      break;
    }
    default:
      break;
  }
}

void SofiaSipStack::on_get_params(tagi_t tags[]) {
  if (!started_) return;
  const sip_contact_t *contact = nullptr;
  tl_gets(tags, NTATAG_CONTACT_REF(contact), TAG_END());
  unsigned port = opts_.port;
  if (contact && contact->m_url->url_port)
    port = static_cast<unsigned>(std::strtoul(contact->m_url->url_port, nullptr, 10));
  else if (contact)
    port = 5060;  // no port in the URI: the default
  if (port == 0 || port > 65535) {
    // Not expected: nua is up, so stop it the normal way.
    fail_start(Status(Errc::sip, "cannot determine the bound SIP port"));
    begin_shutdown("start failed");
    return;
  }
  port_.store(static_cast<uint16_t>(port));
  IVR_LOG(log_, info, kSub, "SIP listening on %s %s:%u (%s)", transport_name(opts_.transport),
          host_for_uri(opts_.address).c_str(), port,
          contact ? sofia::header_value(contact).c_str() : "");
  fail_start(Status::success());
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

  const DialogId id = next_id_++;
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
  if (shutting_down_ && dialogs_.empty()) stop_nua();
}

void SofiaSipStack::finish_dialog(DialogId id, TerminationCause cause, int status,
                                  const std::string &phrase) {
  auto it = dialogs_.find(id);
  if (it == dialogs_.end()) return;
  nua_handle_t *nh = it->second.nh;
  std::string call_id = std::move(it->second.call_id);
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
}

void SofiaSipStack::begin_shutdown(const std::string &reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_reason_ = reason.empty() ? "shutdown" : reason;
  IVR_LOG(log_, info, kSub, "SIP shutdown (%s): ending %zu dialog(s)", shutdown_reason_.c_str(),
          dialogs_.size());
  cancel_probes("SIP stack shutting down");
  for (auto &[id, d] : dialogs_) {
    if (!d.cause) d.cause = TerminationCause::shutdown;
    switch (d.state) {
      case DState::offered: {
        std::string header = sofia::reason_header("SIP", 503, shutdown_reason_);
        nua_respond(d.nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_REASON_STR(header.c_str()),
                    TAG_END());
        d.state = DState::ending;
        break;
      }
      case DState::answered:  // no time to wait for the ACK
      case DState::established:
        send_bye(d, shutdown_reason_);
        break;
      case DState::ending:
        break;
    }
  }
  su_root_t *root = nullptr;
  {
    std::lock_guard<std::mutex> lock(cmd_mutex_);
    root = root_;
  }
  hard_timer_ = su_timer_create(su_root_task(root), kShutdownHardMs);
  if (hard_timer_) su_timer_set(hard_timer_, &SofiaSipStack::on_hard_timer, nullptr);
  if (dialogs_.empty()) {
    stop_nua();
    return;
  }
  // nua_shutdown would tear the sessions down under our BYEs and swallow their outcome:
  // let the dialogs end first (on_terminated calls stop_nua), within the grace period.
  grace_timer_ = su_timer_create(su_root_task(root), kShutdownGraceMs);
  if (grace_timer_) su_timer_set(grace_timer_, &SofiaSipStack::on_grace_timer, nullptr);
}

void SofiaSipStack::stop_nua() {
  if (nua_shutdown_called_) return;
  nua_shutdown_called_ = true;
  nua_shutdown(nua_);
}

void SofiaSipStack::drop_all_dialogs(const char *why) {
  while (!dialogs_.empty()) {
    auto it = dialogs_.begin();
    TerminationCause cause = it->second.cause.value_or(TerminationCause::shutdown);
    finish_dialog(it->first, cause, 0, why);
  }
}

void SofiaSipStack::on_grace_timer(su_root_magic_t *magic, su_timer_t *, su_timer_arg_t *) {
  auto *self = reinterpret_cast<SofiaSipStack *>(magic);
  if (!self->dialogs_.empty())
    IVR_LOG(self->log_, warn, kSub, "%zu dialog(s) did not end in time; dropping them",
            self->dialogs_.size());
  self->drop_all_dialogs("shutdown timeout");
  self->stop_nua();
}

void SofiaSipStack::on_hard_timer(su_root_magic_t *magic, su_timer_t *, su_timer_arg_t *) {
  auto *self = reinterpret_cast<SofiaSipStack *>(magic);
  IVR_LOG(self->log_, error, kSub, "nua_r_shutdown did not arrive in %d ms",
          static_cast<int>(kShutdownHardMs));
  self->drop_all_dialogs("shutdown timeout");
  std::lock_guard<std::mutex> lock(self->cmd_mutex_);
  if (self->root_) su_root_break(self->root_);
}

void SofiaSipStack::on_shutdown_done(int status, const char *phrase) {
  IVR_LOG(log_, debug, kSub, "nua_r_shutdown %d %s", status, phrase);
  shutdown_final_ = true;
  drop_all_dialogs("shutdown");
  fail_start(Status(Errc::sip, "SIP stack stopped during start"));
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  if (root_) su_root_break(root_);
}

// ---------------------------------------------------------------- OPTIONS probes

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
  std::string from;
  nua_saved_event_t saved[1] = {};
  if (nua_save_event(nua_, saved)) {
    const nua_event_data_t *data = nua_event_data(saved);
    if (data) from = sofia::source_address(data->e_msg);
    nua_destroy_event(saved);
  }
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

}  // namespace

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

Result<std::unique_ptr<SipStack>> SipStack::start(SipOptions options) {
  if (options.address.empty()) return Error{Errc::invalid_argument, "sip.address: empty"};
  if (!options.sink) return Error{Errc::invalid_argument, "sip.sink: required"};
  if (Status probe = probe_bind(options); !probe) return probe.error();
  auto stack = std::make_unique<SofiaSipStack>(std::move(options));
  Status started = stack->launch();
  if (!started) return started.error();
  return std::unique_ptr<SipStack>(std::move(stack));
}

}  // namespace ivr::sip
