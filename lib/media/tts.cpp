#include "media/tts.h"

#include <espeak-ng/speak_lib.h>

#include <algorithm>
#include <cctype>
#include <unordered_set>
#include <utility>

#include "common/text.h"

namespace ivr::media {
namespace {

constexpr size_t kMaxSpeechSeconds = 600;  // 4096 bytes at 80 wpm stay well below this

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing beyond U+10FFFF.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

Status check_text(const std::string &text) {
  if (text.size() > kMaxSayTextBytes) {
    return Error{Errc::invalid_argument, "say: text is " + std::to_string(text.size()) +
                                             " bytes; the limit is " +
                                             std::to_string(kMaxSayTextBytes)};
  }
  if (text.find('\0') != std::string::npos) {
    return Error{Errc::invalid_argument, "say: text contains a NUL byte"};
  }
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; })) {
    return Error{Errc::invalid_argument, "say: text is empty"};
  }
  if (!valid_utf8(text)) return Error{Errc::invalid_argument, "say: text is not valid UTF-8"};
  return {};
}

Result<std::shared_ptr<const Prompt>> to_prompt(const std::string &name, const SpeechAudio &audio) {
  auto resampler = Resampler8k::create(audio.rate);
  if (!resampler) return Error{resampler.error().code, "say: " + resampler.error().message};
  std::vector<float> mono(audio.samples.size());
  std::transform(audio.samples.begin(), audio.samples.end(), mono.begin(),
                 [](int16_t s) { return static_cast<float>(s) / 32768.0f; });
  std::vector<int16_t> samples;
  samples.reserve(audio.samples.size() * 8000 / static_cast<size_t>(audio.rate) + 1);
  if (Status fed = resampler->feed(mono, true, samples); !fed) {
    return Error{fed.error().code, "say: " + fed.error().message};
  }
  if (samples.empty()) return Error{Errc::media, "say: the synthesiser produced no audio"};
  return std::shared_ptr<const Prompt>(std::make_shared<Prompt>(name, std::move(samples)));
}

// ---- espeak-ng ----

// Voices as espeak-ng resolves them (SetVoiceByName): a voice name, a voice file or the
// tail of one, case-insensitively; then optionally "+variant".
struct VoiceTable {
  std::unordered_set<std::string> voices;                 // lower-cased
  std::unordered_map<std::string, std::string> variants;  // lower-cased -> file name as spelt
};

std::string file_tail(const std::string &identifier) {
  const auto slash = identifier.rfind('/');
  return slash == std::string::npos ? identifier : identifier.substr(slash + 1);
}

// libespeak-ng is one process-wide instance: initialised once, every call under `mutex`.
struct Espeak {
  std::mutex mutex;
  bool initialised = false;
  Error error;  // why initialisation failed, when it did
  int rate = 0;
  std::shared_ptr<const VoiceTable> voices;
  std::string current_voice;             // the voice espeak-ng has loaded
  std::vector<int16_t> *sink = nullptr;  // the synthesis under way
  size_t max_samples = 0;
  bool overflow = false;
};

Espeak &espeak() {
  static Espeak instance;
  return instance;
}

int on_espeak_samples(short *wav, int count, espeak_EVENT *) {
  Espeak &e = espeak();  // e.mutex is held by the synthesising thread
  if (!wav || count <= 0 || !e.sink) return 0;
  if (e.sink->size() + static_cast<size_t>(count) > e.max_samples) {
    e.overflow = true;
    return 1;  // abort the synthesis
  }
  e.sink->insert(e.sink->end(), wav, wav + count);
  return 0;
}

// e.mutex held.
void initialise(Espeak &e) {
  e.initialised = true;
  const int rate =
      espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT);
  if (rate <= 0) {
    e.error =
        Error{Errc::unsupported, "espeak-ng cannot initialise (is espeak-ng-data installed?)"};
    return;
  }
  e.rate = rate;
  espeak_SetSynthCallback(on_espeak_samples);
  auto table = std::make_shared<VoiceTable>();
  for (const espeak_VOICE **v = espeak_ListVoices(nullptr); v && *v; ++v) {
    if ((*v)->name) table->voices.insert(text::to_lower((*v)->name));
    if ((*v)->identifier) {
      table->voices.insert(text::to_lower((*v)->identifier));
      table->voices.insert(text::to_lower(file_tail((*v)->identifier)));
    }
  }
  espeak_VOICE variant_spec{};
  variant_spec.languages = "variant";
  for (const espeak_VOICE **v = espeak_ListVoices(&variant_spec); v && *v; ++v) {
    if (!(*v)->identifier) continue;
    const std::string file = file_tail((*v)->identifier);
    table->variants.emplace(text::to_lower(file), file);
    if ((*v)->name) table->variants.emplace(text::to_lower((*v)->name), file);
  }
  if (table->voices.empty()) {
    e.error = Error{Errc::unsupported, "espeak-ng lists no voices"};
    return;
  }
  e.voices = std::move(table);
}

class EspeakSynthesizer final : public Synthesizer {
 public:
  explicit EspeakSynthesizer(std::shared_ptr<const VoiceTable> voices)
      : voices_(std::move(voices)) {}

  Result<std::string> resolve_voice(const std::string &voice) const override {
    if (voice.empty()) return Error{Errc::invalid_argument, "say: voice is empty"};
    if (voice.size() > kMaxSayVoiceBytes) {
      return Error{Errc::invalid_argument,
                   "say: voice is longer than " + std::to_string(kMaxSayVoiceBytes) + " bytes"};
    }
    const bool printable = std::all_of(voice.begin(), voice.end(),
                                       [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (!printable || voice.front() == '/' || voice.find("..") != std::string::npos) {
      return Error{Errc::invalid_argument, "say: voice '" + voice + "' is not a voice name"};
    }
    const auto plus = voice.find('+');
    std::string base = text::to_lower(voice.substr(0, plus));
    if (!voices_->voices.contains(base)) {
      return Error{Errc::not_found, "say: voice '" + voice.substr(0, plus) +
                                        "' is not an espeak-ng voice (see espeak-ng --voices)"};
    }
    if (plus == std::string::npos) return base;
    const std::string variant = voice.substr(plus + 1);
    const auto it = voices_->variants.find(text::to_lower(variant));
    if (it == voices_->variants.end()) {
      return Error{Errc::not_found, "say: voice '" + voice + "': '" + variant +
                                        "' is not an espeak-ng variant (see espeak-ng "
                                        "--voices=variant)"};
    }
    return base + "+" + it->second;
  }

  Result<SpeechAudio> synthesize(const SayRequest &request) override {
    Espeak &e = espeak();
    std::lock_guard<std::mutex> lock(e.mutex);
    if (request.voice != e.current_voice) {
      if (espeak_SetVoiceByName(request.voice.c_str()) != EE_OK) {
        e.current_voice.clear();
        return Error{Errc::not_found,
                     "say: espeak-ng could not load voice '" + request.voice + "'"};
      }
      e.current_voice = request.voice;
    }
    espeak_SetParameter(espeakRATE, static_cast<int>(request.rate_wpm), 0);
    SpeechAudio audio;
    audio.rate = e.rate;
    e.sink = &audio.samples;
    e.max_samples = kMaxSpeechSeconds * static_cast<size_t>(e.rate);
    e.overflow = false;
    const espeak_ERROR rc = espeak_Synth(request.text.c_str(), request.text.size() + 1, 0,
                                         POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, nullptr);
    e.sink = nullptr;
    if (e.overflow) {
      return Error{Errc::unsupported, "say: the speech would last more than " +
                                          std::to_string(kMaxSpeechSeconds) + " s"};
    }
    if (rc != EE_OK) {
      return Error{Errc::media, "say: espeak-ng synthesis failed (error " +
                                    std::to_string(static_cast<int>(rc)) + ")"};
    }
    if (audio.samples.empty()) return Error{Errc::media, "say: espeak-ng produced no audio"};
    return audio;
  }

 private:
  std::shared_ptr<const VoiceTable> voices_;
};

}  // namespace

Result<std::unique_ptr<Synthesizer>> make_espeak_synthesizer() {
  Espeak &e = espeak();
  std::lock_guard<std::mutex> lock(e.mutex);
  if (!e.initialised) initialise(e);
  if (!e.voices) return e.error;
  return std::unique_ptr<Synthesizer>(std::make_unique<EspeakSynthesizer>(e.voices));
}

// ---- the service ----

size_t TtsService::KeyHash::operator()(const Key &key) const {
  size_t h = std::hash<std::string>{}(key.text);
  h = h * 31 + std::hash<std::string>{}(key.voice);
  return h * 31 + key.rate_wpm;
}

TtsService::TtsService(std::unique_ptr<Synthesizer> synthesizer, TtsOptions options)
    : synthesizer_(std::move(synthesizer)), options_(options) {
  thread_ = std::thread([this] { run(); });
}

TtsService::~TtsService() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string TtsService::prompt_name(const std::string &text) {
  return "say:" + text;
}

Result<TtsService::Key> TtsService::key_of(const SayRequest &request) const {
  if (Status text = check_text(request.text); !text) return text.error();
  if (request.rate_wpm < kMinSayRateWpm || request.rate_wpm > kMaxSayRateWpm) {
    return Error{Errc::invalid_argument, "say: rate_wpm must be " + std::to_string(kMinSayRateWpm) +
                                             ".." + std::to_string(kMaxSayRateWpm) + ", got " +
                                             std::to_string(request.rate_wpm)};
  }
  auto voice = synthesizer_->resolve_voice(request.voice);
  if (!voice) return voice.error();
  return Key{request.text, std::move(*voice), request.rate_wpm};
}

Status TtsService::check(const SayRequest &request) const {
  auto key = key_of(request);
  if (!key) return key.error();
  return {};
}

std::shared_ptr<const Prompt> TtsService::find(const SayRequest &request) {
  auto key = key_of(request);
  if (!key) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = cache_.find(*key);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++stats_.hits;
  return it->second.prompt;
}

Status TtsService::request(const SayRequest &request, Done done) {
  auto key = key_of(request);
  if (!key) return key.error();
  std::shared_ptr<const Prompt> hit;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Error{Errc::gone, "say: text-to-speech is stopping"};
    if (const auto it = cache_.find(*key); it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      ++stats_.hits;
      hit = it->second.prompt;
    } else if (const auto w = waiting_.find(*key); w != waiting_.end()) {
      w->second.push_back(std::move(done));  // one synthesis serves every waiter
      ++stats_.joined;
      return {};
    } else {
      if (queue_.size() >= options_.max_queued) {
        return Error{Errc::busy, "say: " + std::to_string(options_.max_queued) +
                                     " texts already wait for synthesis"};
      }
      queue_.push_back(*key);
      waiting_[*key].push_back(std::move(done));
    }
  }
  if (hit) {
    done(std::move(hit));
  } else {
    cv_.notify_one();
  }
  return {};
}

TtsStats TtsService::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TtsStats s = stats_;
  s.cached_entries = cache_.size();
  s.cached_bytes = cached_bytes_;
  return s;
}

void TtsService::insert(const Key &key, std::shared_ptr<const Prompt> prompt) {
  const size_t bytes = prompt->bytes() + key.text.size() + key.voice.size() + sizeof(Entry);
  if (bytes > options_.cache_bytes) return;  // delivered to its waiters, never kept
  if (const auto old = cache_.find(key); old != cache_.end()) {
    cached_bytes_ -= old->second.bytes;
    lru_.erase(old->second.lru);
    cache_.erase(old);
  }
  lru_.push_front(key);
  cache_.emplace(key, Entry{std::move(prompt), bytes, lru_.begin()});
  cached_bytes_ += bytes;
  // Least recently used first. A call still playing an evicted prompt keeps its frames
  // alive through its own reference; only the cache forgets them.
  while (cached_bytes_ > options_.cache_bytes) {
    const auto victim = cache_.find(lru_.back());
    cached_bytes_ -= victim->second.bytes;
    cache_.erase(victim);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

void TtsService::run() {
  for (;;) {
    Key key;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      key = std::move(queue_.front());
      queue_.pop_front();
    }
    auto audio = synthesizer_->synthesize(SayRequest{key.text, key.voice, key.rate_wpm});
    Result<std::shared_ptr<const Prompt>> prompt =
        audio ? to_prompt(prompt_name(key.text), *audio)
              : Result<std::shared_ptr<const Prompt>>(audio.error());
    std::vector<Done> waiters;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.syntheses;
      if (prompt) {
        insert(key, *prompt);
      } else {
        ++stats_.failures;
      }
      if (auto node = waiting_.extract(key)) waiters = std::move(node.mapped());
    }
    for (auto &done : waiters) done(prompt);
  }
  // Stopping: what has not started is abandoned, and its waiters are told so.
  std::vector<Done> abandoned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    for (auto &[key, waiters] : waiting_) {
      for (auto &done : waiters) abandoned.push_back(std::move(done));
    }
    waiting_.clear();
  }
  for (auto &done : abandoned) done(Error{Errc::gone, "say: text-to-speech stopped"});
}

}  // namespace ivr::media
