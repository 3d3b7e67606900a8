// One inbound call: its SIP dialog, its media session and its DTMF/prompt state machine.
// Everything but the facts is owned by the engine thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "core/call_event.h"
#include "core/event_loop.h"
#include "media/media_engine.h"
#include "sip/sdp.h"
#include "sip/sip_stack.h"

namespace ivr::core {

class Engine;

struct CollectOptions {
  unsigned max_digits = 1;
  std::string terminators = "#";
  uint32_t first_digit_timeout_ms = 5000;
  uint32_t inter_digit_timeout_ms = 3000;
  bool barge_in = true;
};

// Text-to-speech (media/tts.h has the limits: text 1..4096 bytes of UTF-8, rate 80..450).
struct SayOptions {
  std::string voice = "en";  // an espeak-ng voice ("en", "en-us", "de", "en+f3", ...)
  unsigned rate_wpm = 160;   // words per minute
};

// Set once when the INVITE arrives, then read-only: safe to read from any thread.
struct CallFacts {
  std::string call_id, from, to, from_user, to_user, request_uri, contact, remote_signaling;
  std::vector<sip::SipHeader> headers;
  const std::string *header(std::string_view name) const;  // case-insensitive
};

// When a call started, was answered and ended: Unix ms, 0 = not (yet). The call record's
// times (webhooks); engine thread.
struct CallTimeline {
  int64_t started_ms = 0;
  int64_t answered_ms = 0;
  int64_t ended_ms = 0;
};

class Call : public std::enable_shared_from_this<Call> {
 public:
  enum class State { incoming, ringing, answering, active, ending, ended };

  Call(Engine &engine, sip::DialogId dialog, CallFacts facts);
  ~Call();

  sip::DialogId id() const { return dialog_; }
  const CallFacts &facts() const { return facts_; }

  // Mutable facts, guarded: re-INVITEs and RTP latching change them.
  struct MediaFacts {
    std::string address;
    uint16_t port = 0;
    std::optional<media::Codec> codec;
  };
  MediaFacts media_facts() const;

  // Host slots used by the C shim (engine thread, or guarded by the shim).
  void *c_handle = nullptr;
  std::atomic<void *> user_data{nullptr};

  // ---- engine thread only ----
  State state() const { return state_; }
  bool ended() const { return state_ == State::ended; }
  const CallTimeline &timeline() const { return timeline_; }
  // Numbers the call's webhook events 1, 2, 3... so receivers can order them.
  uint64_t next_event_seq() { return ++event_seq_; }

  // The INVITE's SDP, negotiated at arrival; an Error decides the 488/400 reply.
  void set_offer(std::optional<std::string> offer_sdp);
  // After CALL_STARTED went out: rejects (488/400) an offer we cannot serve if the host
  // did not already end the call.
  void after_started();

  Status ring();
  Status answer();
  Status reject(int status, const std::string &reason);
  Status hangup(const std::string &reason);
  // Before answer: a 3xx (302) sending the caller to `uri`; the call then ends.
  Status redirect(const std::string &uri);
  // REFER results of this call's dialog (SipStack::refer) go to the handler (nullptr: none).
  void set_refer_handler(std::function<void(const sip::SipEvent &)> handler) {
    refer_handler_ = std::move(handler);
  }
  void on_refer(const sip::SipEvent &event) {
    // A copy: the handler may replace or clear itself while it runs.
    if (auto handler = refer_handler_) handler(event);
  }
  Status play(const std::string &prompt);
  // Speaks text like play() plays a file: replaces the current prompt, obeys barge-in and
  // stop_playback, ends with PROMPT_FINISHED named "say:" + text (failed, with the reason,
  // when synthesis fails). Synthesised on the TTS thread unless cached; never blocks.
  // Errors at once: invalid_argument (text, rate_wpm, malformed voice), not_found (unknown
  // voice), unsupported (no espeak-ng), busy (synthesis queue full), bad_state, gone.
  Status say(const std::string &text, const SayOptions &options = {});
  // Plays an in-memory prompt (a generated tone) like play() plays a file: replaces the
  // current prompt and ends with PROMPT_FINISHED named `name`.
  Status play_prompt(const std::string &name, std::shared_ptr<const media::Prompt> prompt);
  Status stop_playback();
  // The call's media session is open (answered): routing bridges it to an outbound leg.
  bool media_open() const { return media_open_; }
  Status collect(const CollectOptions &options);
  Status set_inband_dtmf(bool enabled);

  void on_ack(const sip::SipEvent &event);
  void on_reinvite(const sip::SipEvent &event);
  void on_dtmf(const media::DtmfDigit &digit);
  void on_playback_finished(uint64_t playback_id, media::PlaybackEnd end);
  void on_prompt_loaded(uint64_t playback_id, Result<std::shared_ptr<const media::Prompt>> prompt);
  void on_latched(const std::string &address);
  void on_terminated(const sip::SipEvent &event);
  void force_end(EndReason reason, const std::string &text);  // engine stop without SIP

 private:
  struct Playback {
    std::string name;
    bool in_media = false;  // handed to the media engine (else still loading)
    bool barged = false;
  };
  struct Collect {
    CollectOptions options;
    std::string digits;
    media::DtmfSource first_source = media::DtmfSource::rfc4733;
    bool waiting_for_prompt = false;  // first-digit timer starts when the prompt ends
  };

  void emit(CallEvent event);
  CallEvent make_event(EventType type);
  Status check_alive() const;
  bool feed_digit(const media::DtmfDigit &digit);  // true when it ended the collect
  void stop_for_barge_in();
  void on_digit_timeout();
  // Stops the current prompt (it reports stopped) and makes `id` the current one.
  void begin_playback(uint64_t id, std::string name);
  void start_prompt(uint64_t id, std::shared_ptr<const media::Prompt> prompt);
  void finish_playback(uint64_t playback_id, PromptEnd end, std::string reason = {});
  void finish_collect(CollectEnd end);
  void arm_first_digit_timer();
  bool playing() const { return current_playback_ != 0; }
  void set_remote(const sip::Negotiated &negotiated);
  void end(EndReason reason, int sip_code, const std::string &text);
  sip::LocalMedia local_media();

  Engine &engine_;
  const sip::DialogId dialog_;
  const CallFacts facts_;
  CallTimeline timeline_;
  uint64_t event_seq_ = 0;

  mutable std::mutex media_mutex_;
  MediaFacts media_facts_;

  State state_ = State::incoming;
  std::optional<std::string> offer_sdp_;          // INVITE body
  std::optional<Result<sip::Negotiated>> offer_;  // its negotiation
  bool offered_in_200_ = false;                   // INVITE without SDP: our offer went in 200
  bool awaiting_ack_answer_ = false;
  bool media_open_ = false;
  uint16_t local_port_ = 0;
  uint64_t sdp_version_ = 0;
  bool on_hold_ = false;

  uint64_t next_playback_id_ = 1;
  uint64_t current_playback_ = 0;
  std::map<uint64_t, Playback> playbacks_;  // started and not yet finished

  std::optional<Collect> collect_;
  std::string type_ahead_;
  media::DtmfSource type_ahead_source_ = media::DtmfSource::rfc4733;
  // Released when the call ends, so a handle the host keeps may outlive the engine.
  std::unique_ptr<Timer> digit_timer_;
  const uint64_t session_id_;  // SDP o= session id
  sip::LocalMediaCaps caps_;
  bool inband_dtmf_ = false;

  std::function<void(const sip::SipEvent &)> refer_handler_;
  EndReason pending_end_reason_ = EndReason::local_hangup;
  int pending_end_code_ = 0;
  std::string pending_end_text_;
};

}  // namespace ivr::core
