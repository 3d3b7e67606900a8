// Delivery: one route (or enqueue) step of one call (delivery.cpp: deciding, dialling, the
// bridge and hand-overs; delivery_queue.cpp: the queue and the caller's audio meanwhile). It
// decides with the routing plan, dials the candidates in order over an outbound SIP leg (the B2BUA:
// ringback or early media to the caller, media relayed once answered), fails over on refusal or no
// answer, and waits in the priority queue when no target can take the call. docs/routing.md, "In
// the engine".
//
// Threading: engine loop only. Owned by the call's flow port (core/flow_runner.cpp); the
// routing service holds weak references for leg events and queue offers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/call.h"
#include "core/event_loop.h"
#include "flow/interpreter.h"
#include "routing/call_queue.h"
#include "routing/router.h"
#include "sip/sdp.h"

namespace ivr::core {

class Engine;
class RoutingService;

class Delivery : public std::enable_shared_from_this<Delivery> {
 public:
  using Done = std::function<void(flow::RouteDone &&)>;

  // `request.variables` must stay valid until done runs or cancel() is called.
  Delivery(Engine &engine, RoutingService &routing, std::shared_ptr<Call> call,
           flow::RouteStart request, Done done);
  ~Delivery();
  Delivery(const Delivery &) = delete;
  Delivery &operator=(const Delivery &) = delete;

  // Starts the step; `done` runs later (never from inside start), exactly once unless
  // cancel() comes first.
  void start();
  // The flow moved on or the call ended: the outbound leg is hung up (CANCEL or BYE), the
  // slot and the queue place are released. `done` is not called.
  void cancel(const std::string &why);

  // ---- from the flow port ----
  void on_call_answered();
  // True when the finished prompt was one of ours (ringback, hold, announcement).
  bool on_prompt_finished(const CallEvent &event);

  // ---- from the routing service ----
  void on_leg_event(sip::SipEvent &event);
  // The bridged dialing system stopped sending RTP (target.media_timeout_s).
  void on_leg_media_timeout(const std::string &detail);
  // May the queue offer this call a slot on `target`?
  bool accepts(routing::TargetIndex target) const;
  void on_offer(const routing::Offer &offer);
  void on_queue_expired();

 private:
  enum class Phase { idle, answering, dialing, early, bridged, queued, done };
  enum class Audio { none, ringback, hold, announce };
  struct Attempt {
    std::string target;  // by name: indexes go stale when the configuration changes
    routing::Slot slot;
    size_t uri = 0;  // index into the target's uris
    bool from_offer = false;
    routing::Offer offer;
  };

  // True when the caller is answered; otherwise answers it (unless already answering) and
  // runs `then` once CALL_ANSWERED arrives.
  bool answered_or(std::function<void()> then);
  void decide();
  void try_next();
  bool dial(Attempt attempt);
  bool redirect(Attempt attempt, const std::string &uri);
  bool refer(Attempt attempt, const std::string &uri);
  void on_refer(const sip::SipEvent &event);
  // An attempt that failed before anything was sent or by a REFER's result: the event, the
  // slot released (or the offer withdrawn). Returns false.
  bool fail_attempt(const Attempt &attempt, const std::string &uri, const std::string &why,
                    routing::FailReason reason, int sip_status = 0);
  void on_progress(const sip::SipEvent &event);
  void on_answered(const sip::SipEvent &event);
  void on_leg_ended(const sip::SipEvent &event);
  void on_reinvite(const sip::SipEvent &event);
  bool start_relay(const std::string &sdp);
  void close_leg();
  void enqueue();
  void back_to_queue();
  void arm_escalation();
  void escalate();  // an offer's dial failed: wait on with hold audio
  void leave_queue();
  void finish(std::string outcome, std::string error = {});
  void emit(EventType type, std::string detail, int sip_code = 0);
  CallEvent make_event(EventType type, std::string detail, int sip_code = 0);
  std::vector<sip::SipHeader> leg_headers(const routing::TargetConfig &target);
  // Caller audio while waiting: ringback, hold music, announcements.
  void play(Audio audio);
  void announce();
  std::optional<routing::TargetIndex> target_index(const std::string &name) const;
  static uint32_t elapsed_ms(routing::Instant since, routing::Instant now);

  Engine &engine_;
  RoutingService &routing_;
  std::shared_ptr<Call> call_;
  flow::RouteStart req_;
  Done done_;

  Phase phase_ = Phase::idle;
  std::optional<uint32_t> plan_;
  routing::Decision decision_;
  std::vector<std::string> candidates_;  // decision order, by name
  size_t next_candidate_ = 0;
  std::vector<std::string> tried_;  // targets that refused in this step
  std::optional<Attempt> attempt_;
  sip::DialogId leg_ = 0;
  uint64_t leg_session_ = 0;
  bool relaying_ = false;
  bool refer_pending_ = false;
  std::function<void()> after_answer_;
  sip::LocalMediaCaps caps_;
  uint64_t sdp_session_id_ = 0;
  uint64_t sdp_version_ = 0;
  uint16_t leg_port_ = 0;

  // Result figures.
  unsigned attempts_ = 0;
  int last_status_ = 0;
  std::string last_target_, last_uri_, last_failure_;
  routing::Instant answered_at_{}, queued_at_{};
  bool was_queued_ = false;
  // Targets that refused a queue offer, and when: not offered this call again for a while.
  std::vector<std::pair<std::string, routing::Instant>> refused_offers_;

  Audio audio_ = Audio::none;
  std::string audio_name_;  // the prompt name of the audio playing, to recognise its end
  std::unique_ptr<Timer> announce_timer_;
  std::unique_ptr<Timer> escalate_timer_;
  size_t next_escalation_ = 0;
  std::unique_ptr<Timer> ring_guard_;  // a leg that never reports back
};

}  // namespace ivr::core
