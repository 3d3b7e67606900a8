#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

extern "C" {
#include <spandsp.h>
}

#include "media/g711.h"
#include "media/inband_dtmf.h"

using namespace ivr::media;

namespace {

// Renders digits with spandsp's generator, surrounded by 200 ms of silence.
std::vector<int16_t> generate_dtmf(const char *digits, int on_ms, int off_ms) {
  std::unique_ptr<dtmf_tx_state_t, int (*)(dtmf_tx_state_t *)> owner(dtmf_tx_init(nullptr),
                                                                     &dtmf_tx_free);
  dtmf_tx_state_t *tx = owner.get();
  REQUIRE(tx != nullptr);
  dtmf_tx_set_timing(tx, on_ms, off_ms);
  REQUIRE(dtmf_tx_put(tx, digits, -1) == 0);  // 0.0.6 returns the count NOT queued
  std::vector<int16_t> audio(1600, 0);
  int16_t block[160];
  for (;;) {
    const int n = dtmf_tx(tx, block, 160);
    if (n <= 0) break;
    audio.insert(audio.end(), block, block + n);
  }
  audio.insert(audio.end(), 1600, 0);
  return audio;
}

std::vector<int16_t> through_codec(const std::vector<int16_t> &in, Codec codec) {
  std::vector<uint8_t> encoded(in.size());
  std::vector<int16_t> decoded(in.size());
  encode(codec, in, encoded);
  decode(codec, encoded, decoded);
  return decoded;
}

// Feeds in RTP-sized 20 ms frames, plus a ragged chunk size to exercise the internal split.
std::vector<DtmfDigit> detect(const std::vector<int16_t> &audio, size_t chunk) {
  InbandDtmfDetector detector;
  std::vector<DtmfDigit> out;
  for (size_t i = 0; i < audio.size(); i += chunk) {
    const size_t n = std::min(chunk, audio.size() - i);
    detector.feed(std::span<const int16_t>(audio.data() + i, n),
                  [&](DtmfDigit d) { out.push_back(d); });
  }
  return out;
}

std::string digits_of(const std::vector<DtmfDigit> &ds) {
  std::string s;
  for (const auto &d : ds) s += d.digit;
  return s;
}

}  // namespace

TEST_CASE("inband: digits survive PCMU and PCMA and are detected once each, in order") {
  const auto audio = generate_dtmf("1234#*0", 100, 100);
  for (Codec codec : {Codec::pcmu, Codec::pcma}) {
    for (size_t chunk : {size_t{160}, size_t{37}, size_t{1000}}) {
      const std::string codec_label = codec_name(codec);
      CAPTURE(codec_label);
      CAPTURE(chunk);
      const auto digits = detect(through_codec(audio, codec), chunk);
      CHECK(digits_of(digits) == "1234#*0");
      for (const auto &d : digits) {
        CHECK(d.source == DtmfSource::inband);
        // 100 ms tones; start and end are both confirmed about one detector block late.
        CHECK(d.duration_ms >= 82);
        CHECK(d.duration_ms <= 118);
      }
    }
  }
}

TEST_CASE("inband: short tones with spandsp's default-like timing") {
  const auto audio = through_codec(generate_dtmf("9876543210ABCD", 50, 55), Codec::pcmu);
  const auto digits = detect(audio, 160);
  CHECK(digits_of(digits) == "9876543210ABCD");
  for (const auto &d : digits) {
    CHECK(d.duration_ms >= 32);
    CHECK(d.duration_ms <= 68);
  }
}

TEST_CASE("inband: a long tone is one digit with a long duration") {
  const auto digits = detect(generate_dtmf("5", 1000, 100), 160);
  REQUIRE(digits.size() == 1);
  CHECK(digits[0].digit == '5');
  CHECK(digits[0].duration_ms >= 982);
  CHECK(digits[0].duration_ms <= 1018);
}

TEST_CASE("inband: durations are measured to a few ms whatever the frame size") {
  // 130 ms is no multiple of the detector block (12.75 ms) or of the frame sizes used:
  // the measurement must stay within about one block of the truth.
  const auto audio = generate_dtmf("28", 130, 70);
  for (size_t chunk : {size_t{1}, size_t{160}, size_t{240}, audio.size()}) {
    CAPTURE(chunk);
    const auto digits = detect(audio, chunk);
    REQUIRE(digits_of(digits) == "28");
    for (const auto &d : digits) {
      CHECK(d.duration_ms >= 112);
      CHECK(d.duration_ms <= 148);
    }
  }
}

TEST_CASE("inband: nothing from silence or a 1 kHz tone") {
  std::vector<int16_t> silence(8000 * 3, 0);
  CHECK(detect(silence, 160).empty());

  std::vector<int16_t> tone(8000 * 3);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = static_cast<int16_t>(10000 * std::sin(2 * std::numbers::pi * 1000 * i / 8000.0));
  }
  CHECK(detect(through_codec(tone, Codec::pcmu), 160).empty());
}

TEST_CASE("inband: a tone still sounding is reported only when it ends") {
  const auto audio = generate_dtmf("7", 300, 0);
  InbandDtmfDetector detector;
  std::vector<DtmfDigit> out;
  auto sink = [&](DtmfDigit d) { out.push_back(d); };
  // Silence plus the tone but not its end: nothing yet.
  const size_t tone_end = 1600 + 2400;
  detector.feed(std::span<const int16_t>(audio.data(), tone_end - 160), sink);
  CHECK(out.empty());
  detector.feed(
      std::span<const int16_t>(audio.data() + tone_end - 160, audio.size() - tone_end + 160), sink);
  REQUIRE(out.size() == 1);
  CHECK(out[0].digit == '7');
}
