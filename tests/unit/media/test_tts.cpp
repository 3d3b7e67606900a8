#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "media/tts.h"

using namespace ivr;
using namespace ivr::media;
using namespace std::chrono_literals;

namespace {

using PromptPtr = std::shared_ptr<const Prompt>;

std::vector<int16_t> decoded(const Prompt &p) {
  std::vector<int16_t> out(p.frame_count() * kSamplesPerFrame);
  for (size_t i = 0; i < p.frame_count(); ++i) {
    decode(Codec::pcmu, std::span<const uint8_t>(p.frame(Codec::pcmu, i), kSamplesPerFrame),
           std::span<int16_t>(out.data() + i * kSamplesPerFrame, kSamplesPerFrame));
  }
  return out;
}

double rms(const std::vector<int16_t> &s) {
  double sum = 0;
  for (int16_t x : s) sum += double(x) * x;
  return s.empty() ? 0 : std::sqrt(sum / static_cast<double>(s.size()));
}

// Waits for a request's result (bounded).
struct Waiter {
  std::promise<Result<PromptPtr>> promise;
  std::future<Result<PromptPtr>> future = promise.get_future();
  TtsService::Done done() {
    return [this](Result<PromptPtr> r) { promise.set_value(std::move(r)); };
  }
  Result<PromptPtr> get() {
    REQUIRE(future.wait_for(30s) == std::future_status::ready);
    return future.get();
  }
};

Result<PromptPtr> say(TtsService &tts, const SayRequest &request) {
  Waiter w;
  Status s = tts.request(request, w.done());
  if (!s) return s.error();
  return w.get();
}

// A synthesiser for the cache tests: a 1 kHz tone at 16 kHz, `seconds` long, counting its
// calls; optionally held at a gate until released.
class FakeSynthesizer final : public Synthesizer {
 public:
  explicit FakeSynthesizer(double seconds = 1.0, std::atomic<int> *outside = nullptr)
      : seconds_(seconds), outside_(outside) {}

  Result<std::string> resolve_voice(const std::string &voice) const override {
    if (voice == "unknown") return Error{Errc::not_found, "say: voice 'unknown' is unknown"};
    return voice;
  }
  Result<SpeechAudio> synthesize(const SayRequest &request) override {
    calls.fetch_add(1);
    if (outside_) outside_->fetch_add(1);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      started_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
    }
    if (request.voice == "fails") return Error{Errc::media, "say: synthesis failed on purpose"};
    SpeechAudio audio;
    audio.rate = 16000;
    audio.samples.resize(static_cast<size_t>(seconds_ * 16000));
    for (size_t i = 0; i < audio.samples.size(); ++i) {
      audio.samples[i] = static_cast<int16_t>(
          8000 * std::sin(2 * std::numbers::pi * 1000 * static_cast<double>(i) / 16000));
    }
    return audio;
  }
  void close_gate() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
    started_ = false;
  }
  void open_gate() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_started() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, 30s, [this] { return started_; });
  }

  std::atomic<int> calls{0};

 private:
  double seconds_;
  std::atomic<int> *outside_;  // a count that outlives the synthesiser
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = true, started_ = false;
};

// Real espeak-ng, counting syntheses.
class CountingSynthesizer final : public Synthesizer {
 public:
  explicit CountingSynthesizer(std::unique_ptr<Synthesizer> inner) : inner_(std::move(inner)) {}
  Result<std::string> resolve_voice(const std::string &voice) const override {
    return inner_->resolve_voice(voice);
  }
  Result<SpeechAudio> synthesize(const SayRequest &request) override {
    calls.fetch_add(1);
    return inner_->synthesize(request);
  }
  std::atomic<int> calls{0};

 private:
  std::unique_ptr<Synthesizer> inner_;
};

std::unique_ptr<Synthesizer> espeak_or_fail() {
  auto s = make_espeak_synthesizer();
  REQUIRE_MESSAGE(s.ok(), s.error().message);
  return std::move(*s);
}

const std::string kWelcome = "Welcome to the support line. Press one for sales, two for billing.";

}  // namespace

TEST_CASE("tts: espeak-ng speech becomes non-silent 8 kHz frames of plausible length") {
  auto synth = espeak_or_fail();
  auto raw = synth->synthesize(SayRequest{kWelcome, "en", 160});
  REQUIRE_MESSAGE(raw.ok(), raw.error().message);
  CHECK(raw->rate == 22050);
  const double seconds = static_cast<double>(raw->samples.size()) / raw->rate;
  CHECK(seconds > 2.5);  // 12 words at 160 words per minute: about 4.5 s
  CHECK(seconds < 8.0);

  TtsService tts(std::move(synth), {});
  auto prompt = say(tts, SayRequest{kWelcome, "en", 160});
  REQUIRE_MESSAGE(prompt.ok(), prompt.error().message);
  const Prompt &p = **prompt;
  CHECK(p.name() == "say:" + kWelcome);
  // Resampled to 8 kHz: as many 20 ms frames as the raw speech lasts (+- the filter tail).
  const double frames = seconds * 8000 / kSamplesPerFrame;
  CHECK(static_cast<double>(p.frame_count()) == doctest::Approx(frames).epsilon(0.02));
  CHECK(p.duration_ms() == doctest::Approx(seconds * 1000).epsilon(0.02));
  const auto pcm = decoded(p);
  CHECK(rms(pcm) > 1000);  // speech, not silence
  size_t loud = 0;
  for (size_t f = 0; f < p.frame_count(); ++f) {
    std::vector<int16_t> frame(pcm.begin() + f * kSamplesPerFrame,
                               pcm.begin() + (f + 1) * kSamplesPerFrame);
    if (rms(frame) > 500) ++loud;
  }
  CHECK(loud > p.frame_count() / 2);
  // Both codecs carry the same audio.
  CHECK(p.frame(Codec::pcma, p.frame_count() / 2) != nullptr);
}

TEST_CASE("tts: the rate changes the length; the voice changes the audio") {
  TtsService tts(espeak_or_fail(), {});
  auto slow = say(tts, SayRequest{"one two three four five six", "en", 80});
  auto fast = say(tts, SayRequest{"one two three four five six", "en", 320});
  auto german = say(tts, SayRequest{"one two three four five six", "de", 320});
  REQUIRE(slow.ok());
  REQUIRE(fast.ok());
  REQUIRE(german.ok());
  CHECK((*slow)->frame_count() > (*fast)->frame_count() * 2);
  CHECK(*german != *fast);
  CHECK(tts.stats().syntheses == 3);
}

TEST_CASE("tts: a cache hit returns the same frames without synthesising again") {
  auto counting = std::make_unique<CountingSynthesizer>(espeak_or_fail());
  auto &synth = *counting;
  TtsService tts(std::move(counting), {});
  const SayRequest request{"Your call is important to us.", "en", 160};
  CHECK(tts.find(request) == nullptr);

  auto first = say(tts, request);
  REQUIRE(first.ok());
  CHECK(synth.calls == 1);

  // Again, by request (delivered at once on this thread) and by find.
  PromptPtr inline_result;
  REQUIRE(tts.request(request, [&](Result<PromptPtr> r) { inline_result = *r; }).ok());
  CHECK(inline_result == *first);
  CHECK(tts.find(request) == *first);
  // The voice resolves case-insensitively: "EN" is the same entry.
  CHECK(tts.find(SayRequest{request.text, "EN", 160}) == *first);
  CHECK(synth.calls == 1);

  // Another rate or voice is another entry.
  CHECK(tts.find(SayRequest{request.text, "en", 161}) == nullptr);
  CHECK(tts.find(SayRequest{request.text, "en-us", 160}) == nullptr);
  const TtsStats stats = tts.stats();
  CHECK(stats.syntheses == 1);
  CHECK(stats.hits == 3);
  CHECK(stats.cached_entries == 1);
  CHECK(stats.cached_bytes > (*first)->bytes());
}

TEST_CASE(
    "tts: the cache is bounded by bytes, evicts the least recently used, and keeps "
    "evicted prompts alive for their holders") {
  auto fake = std::make_unique<FakeSynthesizer>(1.0);  // 50 frames: 16000 bytes each
  auto &synth = *fake;
  TtsOptions options;
  options.cache_bytes = 40000;  // two entries, not three
  TtsService tts(std::move(fake), options);

  auto a = say(tts, SayRequest{"a", "v", 160});
  auto b = say(tts, SayRequest{"b", "v", 160});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->bytes() == 16000);
  CHECK(tts.stats().cached_entries == 2);
  // A becomes the most recently used, so C evicts B.
  CHECK(tts.find(SayRequest{"a", "v", 160}) == *a);
  PromptPtr playing_b = *b;  // a call still playing B
  auto c = say(tts, SayRequest{"c", "v", 160});
  REQUIRE(c.ok());
  TtsStats stats = tts.stats();
  CHECK(stats.evictions == 1);
  CHECK(stats.cached_entries == 2);
  CHECK(stats.cached_bytes <= options.cache_bytes);
  CHECK(tts.find(SayRequest{"b", "v", 160}) == nullptr);
  CHECK(tts.find(SayRequest{"a", "v", 160}) == *a);
  CHECK(tts.find(SayRequest{"c", "v", 160}) == *c);
  // The evicted prompt is intact for whoever still holds it (ASan would see a dangling one).
  REQUIRE(playing_b->frame_count() == 50);
  CHECK(rms(decoded(*playing_b)) > 1000);

  // B again: synthesised once more.
  CHECK(synth.calls == 3);
  REQUIRE(say(tts, SayRequest{"b", "v", 160}).ok());
  CHECK(synth.calls == 4);

  // A prompt larger than the whole cache is delivered but not kept, and evicts nothing.
  TtsOptions tiny;
  tiny.cache_bytes = 1000;
  TtsService small(std::make_unique<FakeSynthesizer>(1.0), tiny);
  auto big = say(small, SayRequest{"big", "v", 160});
  REQUIRE(big.ok());
  CHECK((*big)->frame_count() == 50);
  CHECK(small.stats().cached_entries == 0);
  CHECK(small.find(SayRequest{"big", "v", 160}) == nullptr);
}

TEST_CASE("tts: concurrent requests for one key wait for a single synthesis") {
  auto fake = std::make_unique<FakeSynthesizer>(0.5);
  auto &synth = *fake;
  TtsService tts(std::move(fake), {});
  synth.close_gate();
  const SayRequest request{"Please hold.", "en", 160};

  constexpr int kThreads = 8;
  std::vector<Waiter> waiters(kThreads);
  Waiter first;
  REQUIRE(tts.request(request, first.done()).ok());
  REQUIRE(synth.wait_started());  // the synthesis is under way, held at the gate
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] { CHECK(tts.request(request, waiters[i].done()).ok()); });
    }
    for (auto &t : threads) t.join();
  }
  CHECK(tts.stats().joined == kThreads);
  synth.open_gate();

  auto result = first.get();
  REQUIRE(result.ok());
  for (auto &w : waiters) {
    auto r = w.get();
    REQUIRE(r.ok());
    CHECK(*r == *result);  // one shared object
  }
  CHECK(synth.calls == 1);
  CHECK(tts.stats().syntheses == 1);
}

TEST_CASE("tts: unknown and malformed voices are refused with the voice named") {
  auto synth = espeak_or_fail();
  CHECK(synth->resolve_voice("en").ok());
  CHECK(*synth->resolve_voice("EN") == "en");
  CHECK(synth->resolve_voice("en-us").ok());
  CHECK(synth->resolve_voice("gmw/en-US").ok());
  CHECK(synth->resolve_voice("de").ok());
  auto variant = synth->resolve_voice("en+alex");
  REQUIRE(variant.ok());
  CHECK(*variant == "en+Alex");  // spelt as the variant's file

  TtsService tts(std::move(synth), {});
  Status unknown = tts.check(SayRequest{"hello", "xx-nowhere", 160});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Errc::not_found);
  CHECK(unknown.error().message.find("voice 'xx-nowhere'") != std::string::npos);

  Status bad_variant = tts.check(SayRequest{"hello", "en+nosuch", 160});
  REQUIRE_FALSE(bad_variant.ok());
  CHECK(bad_variant.error().code == Errc::not_found);
  CHECK(bad_variant.error().message.find("nosuch") != std::string::npos);

  for (const char *voice : {"", "../../etc/passwd", "/etc/passwd", "en\n"}) {
    CAPTURE(voice);
    Status s = tts.check(SayRequest{"hello", voice, 160});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Errc::invalid_argument);
    CHECK(s.error().message.find("voice") != std::string::npos);
  }
  CHECK(tts.check(SayRequest{"hello", std::string(65, 'e'), 160}).error().code ==
        Errc::invalid_argument);
  // request() refuses without calling back.
  bool called = false;
  CHECK(
      tts.request(SayRequest{"hello", "xx-nowhere", 160}, [&](Result<PromptPtr>) { called = true; })
          .error()
          .code == Errc::not_found);
  CHECK_FALSE(called);
  CHECK(tts.stats().syntheses == 0);

  // A voice espeak-ng cannot load at synthesis time is an error, not a crash or silence.
  auto direct = espeak_or_fail()->synthesize(SayRequest{"hello", "no-such-voice", 160});
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.error().message.find("no-such-voice") != std::string::npos);
  // ...and the next synthesis with a good voice works.
  CHECK(espeak_or_fail()->synthesize(SayRequest{"hello", "en", 160}).ok());
}

TEST_CASE("tts: text and rate are checked, naming the field") {
  TtsService tts(std::make_unique<FakeSynthesizer>(), {});
  auto code_of = [&](const SayRequest &r) { return tts.check(r).error().code; };
  auto message_of = [&](const SayRequest &r) { return tts.check(r).error().message; };

  CHECK(tts.check(SayRequest{"Grüße, 東京", "v", 160}).ok());
  CHECK(tts.check(SayRequest{std::string(kMaxSayTextBytes, 'a'), "v", 160}).ok());
  CHECK(tts.check(SayRequest{"x", "v", kMinSayRateWpm}).ok());
  CHECK(tts.check(SayRequest{"x", "v", kMaxSayRateWpm}).ok());

  CHECK(message_of(SayRequest{"", "v", 160}) == "say: text is empty");
  CHECK(message_of(SayRequest{" \t\n", "v", 160}) == "say: text is empty");
  CHECK(message_of(SayRequest{std::string(kMaxSayTextBytes + 1, 'a'), "v", 160}) ==
        "say: text is 4097 bytes; the limit is 4096");
  for (const std::string bad : {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\xff"}) {
    CHECK(message_of(SayRequest{bad, "v", 160}) == "say: text is not valid UTF-8");
  }
  CHECK(message_of(SayRequest{std::string("a\0b", 3), "v", 160}) ==
        "say: text contains a NUL byte");
  CHECK(message_of(SayRequest{"x", "v", 79}) == "say: rate_wpm must be 80..450, got 79");
  CHECK(code_of(SayRequest{"x", "v", 451}) == Errc::invalid_argument);
  CHECK(code_of(SayRequest{"x", "unknown", 160}) == Errc::not_found);
}

TEST_CASE("tts: a failed synthesis reaches every waiter and is not cached") {
  auto fake = std::make_unique<FakeSynthesizer>();
  auto &synth = *fake;
  TtsService tts(std::move(fake), {});
  synth.close_gate();
  Waiter w1, w2;
  REQUIRE(tts.request(SayRequest{"x", "fails", 160}, w1.done()).ok());
  REQUIRE(tts.request(SayRequest{"x", "fails", 160}, w2.done()).ok());
  synth.open_gate();
  auto r1 = w1.get(), r2 = w2.get();
  REQUIRE_FALSE(r1.ok());
  REQUIRE_FALSE(r2.ok());
  CHECK(r1.error().message == "say: synthesis failed on purpose");
  CHECK(synth.calls == 1);
  CHECK(tts.stats().failures == 1);
  CHECK(tts.stats().cached_entries == 0);
  CHECK(tts.find(SayRequest{"x", "fails", 160}) == nullptr);
}

TEST_CASE("tts: the queue is bounded; stopping abandons what waits with Errc::gone") {
  std::atomic<int> calls{0};
  auto fake = std::make_unique<FakeSynthesizer>(0.1, &calls);
  auto &synth = *fake;  // lives as long as the service
  TtsOptions options;
  options.max_queued = 2;
  auto tts = std::make_unique<TtsService>(std::move(fake), options);
  synth.close_gate();

  Waiter running, queued1, queued2, joined;
  REQUIRE(tts->request(SayRequest{"running", "v", 160}, running.done()).ok());
  REQUIRE(synth.wait_started());
  REQUIRE(tts->request(SayRequest{"q1", "v", 160}, queued1.done()).ok());
  REQUIRE(tts->request(SayRequest{"q2", "v", 160}, queued2.done()).ok());
  REQUIRE(tts->request(SayRequest{"q2", "v", 160}, joined.done()).ok());  // joins: no slot
  Status full = tts->request(SayRequest{"q3", "v", 160}, [](Result<PromptPtr>) {});
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == Errc::busy);

  // Destroy while "running" is held at the gate; release it from another thread.
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    synth.open_gate();
  });
  tts.reset();
  opener.join();
  CHECK(running.get().ok());  // the synthesis under way finishes
  for (Waiter *w : {&queued1, &queued2, &joined}) {
    auto r = w->get();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::gone);
  }
  CHECK(calls == 1);
}

TEST_CASE("resampler: one span or many blocks, 22050 Hz to 8 kHz") {
  std::vector<float> tone(22050);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = 0.5f * static_cast<float>(std::sin(2 * std::numbers::pi * 1000 * i / 22050.0));
  }
  auto whole = Resampler8k::create(22050);
  REQUIRE(whole.ok());
  std::vector<int16_t> a;
  REQUIRE(whole->feed(tone, true, a).ok());

  auto blocks = Resampler8k::create(22050);
  REQUIRE(blocks.ok());
  std::vector<int16_t> b;
  for (size_t at = 0; at < tone.size(); at += 1000) {
    const size_t n = std::min<size_t>(1000, tone.size() - at);
    REQUIRE(
        blocks->feed(std::span<const float>(tone.data() + at, n), at + n == tone.size(), b).ok());
  }
  CHECK(a.size() == doctest::Approx(8000).epsilon(0.005));
  CHECK(b.size() == doctest::Approx(8000).epsilon(0.005));
  CHECK(rms(a) == doctest::Approx(0.5 * 32768 / std::sqrt(2.0)).epsilon(0.03));

  CHECK(Resampler8k::create(0).error().code == Errc::unsupported);
  auto passthrough = Resampler8k::create(8000);
  REQUIRE(passthrough.ok());
  std::vector<int16_t> c;
  REQUIRE(passthrough->feed(std::span<const float>(tone.data(), 160), true, c).ok());
  CHECK(c.size() == 160);
}
