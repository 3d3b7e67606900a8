// Delivery, part two: waiting in the queue (offers, escalation, the maximum wait) and what
// the caller hears meanwhile (ringback, hold audio, announcements). Part one, deciding and
// dialling, is delivery.cpp.
#include <algorithm>
#include <chrono>

#include "core/delivery.h"
#include "core/engine.h"
#include "core/routing_service.h"
#include "media/tone.h"

namespace ivr::core {
namespace {

// A target that refused a queue offer is not offered the same call again for this long.
constexpr auto kRefusedOfferPause = std::chrono::seconds(10);

// One US ringback cycle (2 s tone, 4 s silence), built once and looped.
std::shared_ptr<const media::Prompt> ringback_prompt() {
  static const auto prompt = media::make_tone(media::ringback_us());
  return prompt;
}

std::string replace_all(std::string text, std::string_view what, std::string_view with) {
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
  return text;
}

}  // namespace

void Delivery::enqueue() {
  if (!answered_or([this] { enqueue(); })) return;  // hold audio needs the caller's media
  const auto now = routing_.now();
  std::optional<routing::Duration> max_wait;
  if (req_.max_wait_s) max_wait = std::chrono::seconds(req_.max_wait_s);
  auto pos = routing_.queue().enqueue(call_->id(), req_.priority, now, max_wait);
  if (!pos) return finish("failed", "queue: " + pos.error().message);
  was_queued_ = true;
  queued_at_ = now;
  phase_ = Phase::queued;
  emit(EventType::call_queued,
       "position " + std::to_string(*pos) + " priority " + std::to_string(req_.priority));
  play(Audio::hold);
  if (req_.announce_every_s && !req_.announce_text.empty()) {
    std::weak_ptr<Delivery> weak = weak_from_this();
    announce_timer_ = std::make_unique<Timer>(engine_.loop().base(), [weak] {
      if (auto self = weak.lock()) self->announce();
    });
    announce_timer_->arm(req_.announce_every_s * 1000);
  }
  routing_.add_waiting(call_->id(), weak_from_this());
  next_escalation_ = 0;
  arm_escalation();
}

void Delivery::arm_escalation() {
  if (next_escalation_ >= req_.escalate.size()) return;
  const auto due = queued_at_ + std::chrono::seconds(req_.escalate[next_escalation_].first);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - routing_.now());
  std::weak_ptr<Delivery> weak = weak_from_this();
  escalate_timer_ = std::make_unique<Timer>(engine_.loop().base(), [weak] {
    if (auto self = weak.lock()) self->escalate();
  });
  escalate_timer_->arm(static_cast<uint32_t>(std::max<int64_t>(0, left.count())));
}

// The call has waited long enough for the next step: it moves up (keeping its enqueue time,
// so it goes behind calls of that priority that waited longer).
void Delivery::escalate() {
  if (next_escalation_ >= req_.escalate.size()) return;
  const auto [after_s, priority] = req_.escalate[next_escalation_++];
  if (!routing_.queue().find(call_->id())) return;  // delivered or gone meanwhile
  if (priority < req_.priority) {
    auto pos = routing_.queue().set_priority(call_->id(), priority);
    if (pos) {
      req_.priority = priority;
      emit(EventType::call_queued, "priority raised to " + std::to_string(priority) + " after " +
                                       std::to_string(after_s) + " s, position " +
                                       std::to_string(*pos));
      routing_.pump_soon();
    }
  }
  arm_escalation();
}

bool Delivery::accepts(routing::TargetIndex target) const {
  if (phase_ != Phase::queued || !plan_ || !routing_.configured()) return false;
  auto &router = routing_.router();
  const std::string &name = router.pool().name(target);
  const auto now = routing_.now();
  for (const auto &[refused, when] : refused_offers_)
    if (refused == name && now - when < kRefusedOfferPause) return false;
  // The targets of the plan entry open now: a call waits for its own plan's targets only.
  int32_t entry = router.open_entry(*plan_, std::chrono::system_clock::now());
  if (entry < 0) return false;
  for (auto t : router.entry_targets(*plan_, static_cast<uint32_t>(entry)))
    if (t == target) return true;
  return false;
}

void Delivery::on_offer(const routing::Offer &offer) {
  const std::string name = routing_.pool().name(offer.slot.target);
  IVR_LOG(engine_.logger(), info, "routing", "call %s: offered a slot on %s after %u ms",
          call_->facts().call_id.c_str(), name.c_str(), elapsed_ms(queued_at_, routing_.now()));
  if (!dial(Attempt{name, offer.slot, 0, true, offer})) back_to_queue();
}

void Delivery::back_to_queue() {
  phase_ = Phase::queued;
  if (audio_ != Audio::hold) play(Audio::hold);
  routing_.pump_soon();
}

void Delivery::on_queue_expired() {
  if (phase_ != Phase::queued) return;
  finish("timeout", "waited " + std::to_string(req_.max_wait_s) + " s in the queue");
}

void Delivery::leave_queue() {
  if (!was_queued_) return;
  auto &queue = routing_.queue();
  if (queue.find(call_->id())) (void)queue.remove(call_->id(), routing_.pool());
  routing_.remove_waiting(call_->id());
}

void Delivery::announce() {
  if (phase_ != Phase::queued) return;
  announce_timer_->arm(req_.announce_every_s * 1000);
  auto pos = routing_.queue().position(call_->id());
  if (!pos) return;
  auto wait = routing_.queue().estimated_wait(call_->id());
  std::string minutes = "a few", seconds = "a few";
  if (wait) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(*wait).count();
    seconds = std::to_string(s);
    minutes = std::to_string(std::max<int64_t>(1, (s + 59) / 60));
  }
  std::string text = replace_all(req_.announce_text, "{position}", std::to_string(*pos));
  text = replace_all(std::move(text), "{wait_minutes}", minutes);
  text = replace_all(std::move(text), "{wait_seconds}", seconds);
  IVR_LOG(engine_.logger(), debug, "routing", "call %s: queue announcement: %s",
          call_->facts().call_id.c_str(), text.c_str());
  audio_ = Audio::announce;
  audio_name_ = media::TtsService::prompt_name(text);
  if (auto s = call_->say(text, SayOptions{req_.announce_voice, req_.announce_rate_wpm}); !s) {
    IVR_LOG(engine_.logger(), warn, "routing", "call %s: queue announcement: %s",
            call_->facts().call_id.c_str(), s.error().message.c_str());
    play(Audio::hold);
  }
}

void Delivery::play(Audio audio) {
  audio_ = audio;
  Status s;
  switch (audio) {
    case Audio::none:
    case Audio::announce:
      return;
    case Audio::ringback:
      audio_name_ = "tone:ringback";
      s = call_->play_prompt(audio_name_, ringback_prompt());
      break;
    case Audio::hold:
      if (req_.hold_file.empty()) {
        audio_ = Audio::none;
        audio_name_.clear();
        s = call_->stop_playback();  // silence
        break;
      }
      audio_name_ = req_.hold_file;
      s = call_->play(req_.hold_file);
      break;
  }
  if (!s) {
    IVR_LOG(engine_.logger(), warn, "routing", "call %s: %s: %s", call_->facts().call_id.c_str(),
            audio_name_.c_str(), s.error().message.c_str());
    audio_ = Audio::none;
  }
}

bool Delivery::on_prompt_finished(const CallEvent &event) {
  if (audio_name_.empty() || event.prompt != audio_name_) return false;
  if (audio_ == Audio::none || phase_ == Phase::done) return true;
  if (event.prompt_end == PromptEnd::failed) {
    IVR_LOG(engine_.logger(), warn, "routing", "call %s: %s failed: %s",
            call_->facts().call_id.c_str(), audio_name_.c_str(), event.reason.c_str());
    audio_ = Audio::none;
    return true;
  }
  if (event.prompt_end != PromptEnd::completed) return true;  // replaced or bridged
  if (audio_ == Audio::announce)
    play(Audio::hold);
  else
    play(audio_);  // ringback and hold loop
  return true;
}

}  // namespace ivr::core
