#include "core/call.h"

#include <strings.h>
#include <chrono>

#include "core/engine.h"

namespace ivr::core {
namespace {

constexpr size_t kMaxTypeAhead = 64;

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Prompt names are relative to the prompt directory and may not escape it.
Status check_prompt_name(const std::string &name) {
  if (name.empty()) return Error{Errc::invalid_argument, "prompt: name is empty"};
  if (name.front() == '/')
    return Error{Errc::invalid_argument, "prompt: '" + name + "' is absolute; names are relative"};
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0)
      return Error{Errc::invalid_argument, "prompt: '" + name + "' leaves the prompt directory"};
    start = end + 1;
  }
  return {};
}

PromptEnd to_prompt_end(media::PlaybackEnd end, bool barged) {
  switch (end) {
    case media::PlaybackEnd::completed:
      return PromptEnd::completed;
    case media::PlaybackEnd::stopped:
      return barged ? PromptEnd::barged_in : PromptEnd::stopped;
    case media::PlaybackEnd::failed:
      return PromptEnd::failed;
  }
  return PromptEnd::failed;
}

}  // namespace

const std::string *CallFacts::header(std::string_view name) const {
  for (const auto &h : headers)
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0)
      return &h.value;
  return nullptr;
}

Call::Call(Engine &engine, sip::DialogId dialog, CallFacts facts)
    : engine_(engine),
      dialog_(dialog),
      facts_(std::move(facts)),
      digit_timer_(std::make_unique<Timer>(engine.loop().base(), [this] { on_digit_timeout(); })),
      session_id_(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                        std::chrono::seconds(1))) {
  timeline_.started_ms = unix_ms_now();
}

Call::~Call() = default;

Call::MediaFacts Call::media_facts() const {
  std::lock_guard<std::mutex> lock(media_mutex_);
  return media_facts_;
}

void Call::set_offer(std::optional<std::string> offer_sdp) {
  offer_sdp_ = std::move(offer_sdp);
  if (offer_sdp_) offer_ = sip::negotiate_offer(*offer_sdp_, caps_);
}

void Call::after_started() {
  if (state_ != State::incoming && state_ != State::ringing) return;
  if (!offer_ || offer_->ok()) return;
  const Error &error = offer_->error();
  int status = error.code == Errc::parse ? 400 : 488;
  IVR_LOG(engine_.logger(), warn, "call", "call %s: %d, %s", facts_.call_id.c_str(), status,
          error.message.c_str());
  engine_.sip().reject(dialog_, status, error.message);
  pending_end_reason_ = EndReason::no_media;
  pending_end_code_ = status;
  pending_end_text_ = error.message;
  state_ = State::ending;
}

sip::LocalMedia Call::local_media() {
  return sip::LocalMedia{engine_.rtp_address(), local_port_, session_id_, sdp_version_++};
}

Status Call::check_alive() const {
  if (state_ == State::ended || state_ == State::ending)
    return Error{Errc::gone, "call " + facts_.call_id + " has ended"};
  return {};
}

Status Call::ring() {
  if (auto s = check_alive(); !s) return s;
  if (state_ != State::incoming && state_ != State::ringing)
    return Error{Errc::bad_state, "ring: call already answered"};
  if (state_ == State::incoming) engine_.sip().ringing(dialog_);
  state_ = State::ringing;
  return {};
}

Status Call::answer() {
  if (auto s = check_alive(); !s) return s;
  if (state_ == State::answering || state_ == State::active)
    return Error{Errc::bad_state, "answer: call already answered"};
  if (offer_ && !offer_->ok())
    return Error{offer_->error().code, "answer: " + offer_->error().message};
  auto port = engine_.media().open_session(dialog_);
  if (!port) return Error{Errc::media, "answer: " + port.error().message};
  local_port_ = *port;
  media_open_ = true;
  if (inband_dtmf_) engine_.media().set_inband_dtmf(dialog_, true);

  std::string sdp;
  if (offer_) {
    auto answer = sip::build_answer(*offer_sdp_, offer_->value(), local_media());
    if (!answer) return Error{Errc::internal, "answer: " + answer.error().message};
    sdp = std::move(*answer);
    set_remote(offer_->value());
  } else {
    sdp = sip::build_offer(caps_, local_media());  // the answer comes in the ACK
    awaiting_ack_answer_ = true;
  }
  engine_.sip().answer(dialog_, std::move(sdp));
  state_ = State::answering;
  return {};
}

Status Call::reject(int status, const std::string &reason) {
  if (status < 400 || status > 699)
    return Error{Errc::invalid_argument,
                 "reject: sip_status must be 400..699, got " + std::to_string(status)};
  if (auto s = check_alive(); !s) return s;
  if (state_ != State::incoming && state_ != State::ringing)
    return Error{Errc::bad_state, "reject: call already answered; use hangup"};
  engine_.sip().reject(dialog_, status, reason);
  pending_end_reason_ = EndReason::rejected;
  pending_end_code_ = status;
  pending_end_text_ = reason.empty() ? "rejected" : reason;
  state_ = State::ending;
  return {};
}

Status Call::hangup(const std::string &reason) {
  if (auto s = check_alive(); !s) return s;
  bool answered = state_ == State::answering || state_ == State::active;
  engine_.sip().hangup(dialog_, reason);
  pending_end_reason_ = EndReason::local_hangup;
  pending_end_code_ = answered ? 200 : 480;
  pending_end_text_ = reason.empty() ? "hung up" : reason;
  state_ = State::ending;
  return {};
}

Status Call::redirect(const std::string &uri) {
  if (auto s = check_alive(); !s) return s;
  if (state_ != State::incoming && state_ != State::ringing)
    return Error{Errc::bad_state, "redirect: call already answered; use REFER"};
  engine_.sip().redirect(dialog_, 302, {uri}, "redirected");
  pending_end_reason_ = EndReason::rejected;
  pending_end_code_ = 302;
  pending_end_text_ = "redirected to " + uri;
  state_ = State::ending;
  return {};
}

Status Call::play(const std::string &name) {
  if (auto s = check_alive(); !s) return s;
  if (!media_open_) return Error{Errc::bad_state, "play: call not answered"};
  if (auto s = check_prompt_name(name); !s) return s;

  const uint64_t id = next_playback_id_++;
  begin_playback(id, name);
  if (auto prompt = engine_.prompts().find(name)) {
    start_prompt(id, std::move(prompt));
    return {};
  }
  // Not cached yet: decode on the worker, never on the engine loop.
  std::weak_ptr<Call> weak = shared_from_this();
  Engine *engine = &engine_;
  engine_.worker().submit([engine, weak, name, id] {
    auto prompt = engine->prompts().load(name);
    engine->loop().post([weak, id, prompt = std::move(prompt)]() mutable {
      if (auto call = weak.lock()) call->on_prompt_loaded(id, std::move(prompt));
    });
  });
  return {};
}

Status Call::say(const std::string &text, const SayOptions &options) {
  if (auto s = check_alive(); !s) return s;
  if (!media_open_) return Error{Errc::bad_state, "say: call not answered"};
  media::TtsService *tts = engine_.tts();
  if (!tts) {
    return Error{Errc::unsupported,
                 "say: text-to-speech is unavailable: " + engine_.tts_error().message};
  }
  const media::SayRequest request{text, options.voice, options.rate_wpm};
  if (auto s = tts->check(request); !s) return s;

  const uint64_t id = next_playback_id_++;
  if (auto prompt = tts->find(request)) {  // cached: nothing to wait for
    begin_playback(id, media::TtsService::prompt_name(text));
    start_prompt(id, std::move(prompt));
    return {};
  }
  // Synthesised on the TTS thread; the prompt comes back through the engine loop.
  std::weak_ptr<Call> weak = shared_from_this();
  EventLoop *loop = &engine_.loop();  // outlives the TTS thread (Engine::stop)
  auto queued =
      tts->request(request, [loop, weak, id](media::TtsService::Done::argument_type prompt) {
        loop->post([weak, id, prompt = std::move(prompt)]() mutable {
          if (auto call = weak.lock()) call->on_prompt_loaded(id, std::move(prompt));
        });
      });
  if (!queued) return queued;  // the current prompt plays on
  begin_playback(id, media::TtsService::prompt_name(text));
  return {};
}

void Call::begin_playback(uint64_t id, std::string name) {
  if (current_playback_) {
    auto &old = playbacks_.at(current_playback_);
    if (old.in_media)
      engine_.media().stop_playback(dialog_);  // media reports it stopped
    else
      finish_playback(current_playback_, PromptEnd::stopped);
  }
  playbacks_[id] = Playback{std::move(name)};
  current_playback_ = id;
}

void Call::start_prompt(uint64_t id, std::shared_ptr<const media::Prompt> prompt) {
  engine_.media().play(dialog_, std::move(prompt), id);
  playbacks_[id].in_media = true;
}

void Call::on_prompt_loaded(uint64_t id, Result<std::shared_ptr<const media::Prompt>> prompt) {
  auto it = playbacks_.find(id);
  if (it == playbacks_.end() || id != current_playback_ || ended()) return;
  if (!prompt) {
    IVR_LOG(engine_.logger(), warn, "call", "call %s: %s", facts_.call_id.c_str(),
            prompt.error().message.c_str());
    finish_playback(id, PromptEnd::failed, prompt.error().message);
    return;
  }
  start_prompt(id, std::move(*prompt));
}

Status Call::play_prompt(const std::string &name, std::shared_ptr<const media::Prompt> prompt) {
  if (auto s = check_alive(); !s) return s;
  if (!media_open_) return Error{Errc::bad_state, "play: call not answered"};
  if (!prompt) return Error{Errc::invalid_argument, "play: no prompt"};
  const uint64_t id = next_playback_id_++;
  begin_playback(id, name);
  start_prompt(id, std::move(prompt));
  return {};
}

Status Call::stop_playback() {
  if (auto s = check_alive(); !s) return s;
  if (!current_playback_) return {};
  if (playbacks_.at(current_playback_).in_media)
    engine_.media().stop_playback(dialog_);
  else
    finish_playback(current_playback_, PromptEnd::stopped);
  return {};
}

void Call::on_playback_finished(uint64_t id, media::PlaybackEnd end) {
  auto it = playbacks_.find(id);
  if (it == playbacks_.end()) return;
  finish_playback(id, to_prompt_end(end, it->second.barged));
}

void Call::finish_playback(uint64_t id, PromptEnd end, std::string reason) {
  auto it = playbacks_.find(id);
  if (it == playbacks_.end()) return;
  CallEvent event = make_event(EventType::prompt_finished);
  event.prompt = std::move(it->second.name);
  event.prompt_end = end;
  event.reason = std::move(reason);  // why it failed; "" otherwise
  playbacks_.erase(it);
  if (id == current_playback_) current_playback_ = 0;
  emit(std::move(event));
  if (collect_ && collect_->waiting_for_prompt && !playing() && !ended()) {
    collect_->waiting_for_prompt = false;
    digit_timer_->arm(collect_->options.first_digit_timeout_ms);
  }
}

Status Call::collect(const CollectOptions &options) {
  if (auto s = check_alive(); !s) return s;
  if (!media_open_) return Error{Errc::bad_state, "collect: call not answered"};
  if (options.max_digits < 1 || options.max_digits > 64)
    return Error{Errc::invalid_argument,
                 "collect: max_digits must be 1..64, got " + std::to_string(options.max_digits)};
  for (char c : options.terminators)
    if (!media::is_dtmf_digit(c))
      return Error{Errc::invalid_argument,
                   std::string("collect: terminator '") + c + "' is not a DTMF digit"};
  if (collect_) finish_collect(CollectEnd::cancelled);
  collect_ = Collect{options, {}, media::DtmfSource::rfc4733, false};

  std::string pending;
  pending.swap(type_ahead_);
  for (char c : pending) {
    if (feed_digit(media::DtmfDigit{c, 0, type_ahead_source_})) return {};
  }
  if (!collect_->digits.empty()) {
    if (collect_->options.barge_in && playing()) stop_for_barge_in();
    digit_timer_->arm(collect_->options.inter_digit_timeout_ms);
  } else if (playing()) {
    collect_->waiting_for_prompt = true;
  } else {
    digit_timer_->arm(collect_->options.first_digit_timeout_ms);
  }
  return {};
}

void Call::stop_for_barge_in() {
  auto &playback = playbacks_.at(current_playback_);
  playback.barged = true;
  if (playback.in_media)
    engine_.media().stop_playback(dialog_);
  else
    finish_playback(current_playback_, PromptEnd::barged_in);
}

bool Call::feed_digit(const media::DtmfDigit &digit) {
  Collect &c = *collect_;
  c.waiting_for_prompt = false;
  if (c.options.terminators.find(digit.digit) != std::string::npos) {
    if (c.digits.empty()) c.first_source = digit.source;
    finish_collect(CollectEnd::terminator);
    return true;
  }
  if (c.digits.empty()) c.first_source = digit.source;
  c.digits.push_back(digit.digit);
  if (c.digits.size() >= c.options.max_digits) {
    finish_collect(CollectEnd::max_digits);
    return true;
  }
  return false;
}

void Call::on_dtmf(const media::DtmfDigit &digit) {
  if (ended() || !media::is_dtmf_digit(digit.digit)) return;
  CallEvent event = make_event(EventType::dtmf);
  event.dtmf = digit;
  emit(std::move(event));
  if (ended()) return;  // the host may have hung up in the callback
  if (!collect_) {
    if (type_ahead_.empty()) type_ahead_source_ = digit.source;
    if (type_ahead_.size() < kMaxTypeAhead) type_ahead_.push_back(digit.digit);
    return;
  }
  if (collect_->options.barge_in && playing()) stop_for_barge_in();
  if (!feed_digit(digit)) digit_timer_->arm(collect_->options.inter_digit_timeout_ms);
}

void Call::on_digit_timeout() {
  if (!collect_) return;
  finish_collect(collect_->digits.empty() ? CollectEnd::first_timeout : CollectEnd::inter_timeout);
}

void Call::finish_collect(CollectEnd end) {
  if (digit_timer_) digit_timer_->cancel();
  CallEvent event = make_event(EventType::collect_done);
  event.digits = std::move(collect_->digits);
  event.collect_end = end;
  event.digits_source = collect_->first_source;
  collect_.reset();
  emit(std::move(event));
}

Status Call::set_inband_dtmf(bool enabled) {
  if (auto s = check_alive(); !s) return s;
  inband_dtmf_ = enabled;
  if (media_open_) engine_.media().set_inband_dtmf(dialog_, enabled);
  return {};
}

void Call::set_remote(const sip::Negotiated &negotiated) {
  engine_.media().set_remote(dialog_, negotiated.remote);
  on_hold_ = negotiated.on_hold;
  std::lock_guard<std::mutex> lock(media_mutex_);
  media_facts_.address = negotiated.remote.address;
  media_facts_.port = negotiated.remote.port;
  media_facts_.codec = negotiated.remote.codec;
}

void Call::on_ack(const sip::SipEvent &event) {
  if (ended()) return;
  if (awaiting_ack_answer_) {
    awaiting_ack_answer_ = false;
    auto answer = event.has_sdp ? sip::parse_answer(event.sdp, caps_)
                                : Result<sip::Negotiated>(Errc::unsupported,
                                                          "ACK carries no SDP answer to our offer");
    if (!answer) {
      IVR_LOG(engine_.logger(), warn, "call", "call %s: %s; hanging up", facts_.call_id.c_str(),
              answer.error().message.c_str());
      engine_.sip().hangup(dialog_, answer.error().message);
      pending_end_reason_ = EndReason::no_media;
      pending_end_code_ = 488;
      pending_end_text_ = answer.error().message;
      state_ = State::ending;
      return;
    }
    set_remote(*answer);
  }
  if (state_ == State::answering) {
    state_ = State::active;
    timeline_.answered_ms = unix_ms_now();
    emit(make_event(EventType::call_answered));
  }
}

void Call::on_reinvite(const sip::SipEvent &event) {
  if (ended() || !media_open_) {
    engine_.sip().answer_reinvite(dialog_, 491, "");
    return;
  }
  if (!event.has_sdp || event.sdp.empty()) {
    // Offerless re-INVITE: we offer in the 200, the answer comes in the ACK.
    engine_.sip().answer_reinvite(dialog_, 200, sip::build_offer(caps_, local_media()));
    awaiting_ack_answer_ = true;
    return;
  }
  auto negotiated = sip::negotiate_offer(event.sdp, caps_);
  if (!negotiated) {
    IVR_LOG(engine_.logger(), warn, "call", "call %s: re-INVITE refused (488): %s",
            facts_.call_id.c_str(), negotiated.error().message.c_str());
    engine_.sip().answer_reinvite(dialog_, 488, "");
    return;
  }
  auto answer = sip::build_answer(event.sdp, *negotiated, local_media());
  if (!answer) {
    engine_.sip().answer_reinvite(dialog_, 500, "");
    return;
  }
  engine_.sip().answer_reinvite(dialog_, 200, std::move(*answer));
  set_remote(*negotiated);
  CallEvent updated = make_event(EventType::media_updated);
  updated.on_hold = negotiated->on_hold;
  emit(std::move(updated));
}

void Call::on_latched(const std::string &address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return;
  std::lock_guard<std::mutex> lock(media_mutex_);
  media_facts_.address = address.substr(0, colon);
  if (media_facts_.address.size() > 2 && media_facts_.address.front() == '[')
    media_facts_.address = media_facts_.address.substr(1, media_facts_.address.size() - 2);
  media_facts_.port = static_cast<uint16_t>(std::stoul(address.substr(colon + 1)));
}

void Call::on_terminated(const sip::SipEvent &event) {
  if (ended()) return;
  switch (event.cause) {
    case sip::TerminationCause::remote_bye:
      end(EndReason::remote_hangup, event.status ? event.status : 200, "caller hung up");
      break;
    case sip::TerminationCause::remote_cancel:
      end(EndReason::remote_cancel, 487, "caller cancelled");
      break;
    case sip::TerminationCause::local:
      end(pending_end_reason_, pending_end_code_ ? pending_end_code_ : event.status,
          pending_end_text_.empty() ? std::string("ended") : pending_end_text_);
      break;
    case sip::TerminationCause::refused:  // outbound legs only
    case sip::TerminationCause::no_answer:
    case sip::TerminationCause::error:
      end(EndReason::error, event.status,
          event.phrase.empty() ? std::string("SIP failure") : event.phrase);
      break;
    case sip::TerminationCause::shutdown:
      end(EndReason::engine_stop, event.status ? event.status : 200,
          event.phrase.empty() ? std::string("engine stopped") : event.phrase);
      break;
  }
}

void Call::force_end(EndReason reason, const std::string &text) {
  end(reason, 0, text);
}

void Call::end(EndReason reason, int sip_code, const std::string &text) {
  state_ = State::ended;
  timeline_.ended_ms = unix_ms_now();
  digit_timer_.reset();
  if (collect_) finish_collect(CollectEnd::cancelled);
  // A prompt already stopped by barge-in (the media thread had not confirmed yet) ended
  // because of the caller's key, not because of the hang-up.
  while (!playbacks_.empty()) {
    auto first = playbacks_.begin();
    finish_playback(first->first, first->second.barged ? PromptEnd::barged_in : PromptEnd::stopped);
  }
  if (media_open_) {
    engine_.media().close_session(dialog_);
    media_open_ = false;
  }
  IVR_LOG(engine_.logger(), info, "call", "call %s ended: %s (%d)", facts_.call_id.c_str(),
          text.c_str(), sip_code);
  CallEvent event = make_event(EventType::call_ended);
  event.end_reason = reason;
  event.sip_code = sip_code;
  event.reason = text;
  auto self = shared_from_this();  // remove_call drops the engine's reference
  engine_.remove_call(dialog_);
  emit(std::move(event));
}

CallEvent Call::make_event(EventType type) {
  CallEvent event;
  event.type = type;
  event.call = shared_from_this();
  return event;
}

void Call::emit(CallEvent event) {
  engine_.emit(std::move(event));
}

}  // namespace ivr::core
