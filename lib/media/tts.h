// Text-to-speech prompts ("say"): espeak-ng through its library on one synthesis thread,
// converted to 8 kHz and encoded exactly like file prompts (media/prompt.h), and cached by
// (text, voice, rate) for every call, bounded by bytes with LRU eviction.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "media/prompt.h"

namespace ivr::media {

constexpr size_t kMaxSayTextBytes = 4096;  // IVR_SAY_MAX_TEXT
constexpr unsigned kMinSayRateWpm = 80;
constexpr unsigned kMaxSayRateWpm = 450;
constexpr unsigned kDefaultSayRateWpm = 160;
constexpr const char *kDefaultSayVoice = "en";
constexpr size_t kMaxSayVoiceBytes = 64;

// What to say and how; (text, voice, rate_wpm) is the cache key, with the voice as the
// synthesiser resolves it (espeak-ng: case-insensitive, so "EN" and "en" share an entry).
struct SayRequest {
  std::string text;                      // UTF-8, 1..kMaxSayTextBytes bytes
  std::string voice = kDefaultSayVoice;  // an espeak-ng voice, optionally "+variant"
  unsigned rate_wpm = kDefaultSayRateWpm;
};

// Synthesised speech before conversion: mono 16-bit at `rate` Hz.
struct SpeechAudio {
  std::vector<int16_t> samples;
  int rate = 0;
};

// A speech engine. synthesize() blocks and is called on the synthesis thread only;
// resolve_voice() is cheap, never blocks and may be called from any thread.
class Synthesizer {
 public:
  virtual ~Synthesizer() = default;
  // The voice spelt as the synthesiser wants it (this spelling goes into the cache key),
  // or Errc::invalid_argument for a malformed voice, Errc::not_found for an unknown one;
  // the message names the voice.
  virtual Result<std::string> resolve_voice(const std::string &voice) const = 0;
  // request.voice is a resolved voice.
  virtual Result<SpeechAudio> synthesize(const SayRequest &request) = 0;
};

// espeak-ng through libespeak-ng (synchronous output). The library is process-wide state:
// it is initialised once per process and every synthesis, whichever TtsService asks,
// holds one process-wide lock. Voices are checked against the table espeak-ng lists at
// initialisation (names, files and file tails as in `espeak-ng --voices`, variants as in
// `espeak-ng --voices=variant`). Errc::unsupported when espeak-ng cannot initialise.
Result<std::unique_ptr<Synthesizer>> make_espeak_synthesizer();

struct TtsOptions {
  size_t cache_bytes = size_t{32} << 20;  // encoded frames plus text; LRU beyond it
  size_t max_queued = 256;                // distinct texts waiting for synthesis
};

struct TtsStats {
  uint64_t syntheses = 0;  // synthesize() calls, successful or not
  uint64_t failures = 0;   // of which failed
  uint64_t hits = 0;       // served from the cache
  uint64_t joined = 0;     // waited for a synthesis already under way for the same key
  uint64_t evictions = 0;
  size_t cached_entries = 0;
  size_t cached_bytes = 0;
};

// The synthesis thread and the cache. Every member function is thread-safe.
class TtsService {
 public:
  using Done = std::function<void(Result<std::shared_ptr<const Prompt>>)>;

  // Starts the synthesis thread.
  TtsService(std::unique_ptr<Synthesizer> synthesizer, TtsOptions options);
  // Abandons queued syntheses (their callbacks get Errc::gone), finishes the one under
  // way, joins the thread.
  ~TtsService();
  TtsService(const TtsService &) = delete;
  TtsService &operator=(const TtsService &) = delete;

  // Cheap checks (text present, within kMaxSayTextBytes, valid UTF-8; rate in range;
  // voice known): Errc::invalid_argument / Errc::not_found naming the field.
  Status check(const SayRequest &request) const;

  // The cached prompt (and it becomes the most recently used), or nullptr. Never waits
  // for a synthesis.
  std::shared_ptr<const Prompt> find(const SayRequest &request);

  // Delivers the prompt for `request` to `done`: at once on the calling thread when it is
  // cached, otherwise on the synthesis thread when it is ready. Concurrent requests for
  // one key share one synthesis. Returns an error without calling `done` when the request
  // fails check(), when max_queued distinct texts already wait (Errc::busy) or when the
  // service is stopping (Errc::gone). A failed synthesis is reported to every waiter
  // and not cached.
  Status request(const SayRequest &request, Done done);

  TtsStats stats() const;

  // The prompt name reported in PROMPT_FINISHED for a say: "say:" + text.
  static std::string prompt_name(const std::string &text);

 private:
  struct Key {
    std::string text, voice;  // voice resolved
    unsigned rate_wpm = 0;
    bool operator==(const Key &) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key &key) const;
  };
  struct Entry {
    std::shared_ptr<const Prompt> prompt;
    size_t bytes = 0;
    std::list<Key>::iterator lru;  // position in lru_
  };

  Result<Key> key_of(const SayRequest &request) const;  // check() plus the resolved voice
  void run();
  void insert(const Key &key, std::shared_ptr<const Prompt> prompt);  // mutex_ held

  std::unique_ptr<Synthesizer> synthesizer_;
  const TtsOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unordered_map<Key, Entry, KeyHash> cache_;
  std::list<Key> lru_;  // front: most recently used
  size_t cached_bytes_ = 0;
  std::unordered_map<Key, std::vector<Done>, KeyHash> waiting_;  // queued or synthesising
  std::deque<Key> queue_;                                        // not yet started
  TtsStats stats_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace ivr::media
