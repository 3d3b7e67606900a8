// SofiaSipStack's core: start and the SIP thread, the command queue, the dispatch of NUA
// events, shutdown. See sofia_stack.h for the threading rules and the other parts.
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

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "sip/sofia_log.h"
#include "sip/sofia_message.h"
#include "sip/sofia_stack.h"

namespace ivr::sip {

namespace detail {

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

const char *status_phrase(int status) {
  const char *p = sip_status_phrase(status);
  return p && *p ? p : "Unknown";
}

}  // namespace detail

using detail::cause_name;
using detail::host_for_uri;
using detail::kSub;
using detail::make_event;
using detail::transport_name;

namespace {

// NOTIFY: the far end of our REFER reports on the transfer (RFC 3515); nua refuses methods
// missing here with 405.
constexpr const char *kAllow = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY";
// Shutdown: time for our BYEs to be answered before the remaining handles are dropped and
// nua_shutdown runs, and the limit for the whole shutdown (nua_shutdown alone may wait 30 s
// for unanswered BYEs; after the drop it completes on its next 1 s tick).
constexpr su_duration_t kShutdownGraceMs = 2000;
constexpr su_duration_t kShutdownHardMs = 5000;

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

}  // namespace

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
      // A B2BUA leg reports a 3xx or a 5xx with Retry-After to the engine (which fails over)
      // instead of following it.
      NUTAG_AUTO302(0), NUTAG_AUTO305(0), NUTAG_MAX_RETRY_AFTER(0), SIPTAG_ALLOW_STR(kAllow),
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

  std::vector<Command> left;
  {
    std::lock_guard<std::mutex> lock(cmd_mutex_);
    root_ = nullptr;
    left.swap(cmds_);
    probe_cmds_.clear();
  }
  // invite() already handed out these ids: each leg still gets its one terminated event.
  for (Command &c : left)
    if (c.kind == Command::invite)
      fail_invite(c.dialog, TerminationCause::shutdown, 0, "SIP stack stopped");
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

void SofiaSipStack::execute(Command &c) {
  if (c.kind == Command::shutdown) {
    begin_shutdown(c.text);
    return;
  }
  if (c.kind == Command::invite) {
    if (shutting_down_)
      fail_invite(c.dialog, TerminationCause::shutdown, 0, "SIP stack shutting down");
    else
      start_invite(c.dialog, *c.leg);
    return;
  }
  Dialog *d = find(c.dialog);
  if (!d) {
    IVR_LOG(log_, debug, kSub, "command %d for unknown dialog %llu ignored",
            static_cast<int>(c.kind), static_cast<unsigned long long>(c.dialog));
    return;
  }
  if (shutting_down_) return;  // shutdown already ends every dialog
  execute_dialog(c, *d);
}

SofiaSipStack::Dialog *SofiaSipStack::find(DialogId id) {
  auto it = dialogs_.find(id);
  return it == dialogs_.end() ? nullptr : &it->second;
}

DialogId SofiaSipStack::id_of(nua_handle_t *nh) const {
  auto it = by_handle_.find(nh);
  return it == by_handle_.end() ? 0 : it->second;
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
  if (self->event_saved_) {  // see response_source
    nua_destroy_event(self->saved_event_);
    self->event_saved_ = false;
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
    case nua_r_invite:
      on_invite_response(id, *d, status, phrase, sip);
      break;
    case nua_r_cancel:
      IVR_LOG(log_, debug, kSub, "dialog %llu: CANCEL answered %d %s",
              static_cast<unsigned long long>(id), status, phrase);
      break;
    case nua_r_refer:
      on_refer_response(id, *d, status, phrase);
      break;
    case nua_i_notify:
      on_notify(id, *d, status, phrase, sip, tags);
      break;
    case nua_i_state: {
      int state = -1;
      tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
      if (state == nua_callstate_terminated)
        on_terminated(id, status, phrase);
      else if (state == nua_callstate_ready && d->outbound)
        on_call_ready(id, *d);
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
  // Sofia's choice of our host (a real address even when bound to a wildcard address).
  local_host_ =
      host_for_uri(contact && contact->m_url->url_host ? contact->m_url->url_host : opts_.address);
  IVR_LOG(log_, info, kSub, "SIP listening on %s %s:%u (%s)", transport_name(opts_.transport),
          host_for_uri(opts_.address).c_str(), port,
          contact ? sofia::header_value(contact).c_str() : "");
  fail_start(Status::success());
}

std::string SofiaSipStack::response_source() {
  // Saving the event is the only way to reach its message; it also takes the event (and with
  // it `sip` and `phrase`) from the NUA, so it is freed after the callback, not here.
  if (!event_saved_) {
    if (!nua_save_event(nua_, saved_event_)) return {};
    event_saved_ = true;
  }
  const nua_event_data_t *data = nua_event_data(saved_event_);
  return data ? sofia::source_address(data->e_msg) : std::string();
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
      case DState::calling:
        cancel_outbound(id, d, TerminationCause::shutdown);
        break;
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
  // let the dialogs end first (finish_dialog calls stop_nua), within the grace period.
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
