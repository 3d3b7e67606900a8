// Call-progress tones: the cadence, the frequencies (Goertzel) and the level of the presets.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <vector>

#include "media/g711.h"
#include "media/tone.h"

using namespace ivr::media;

namespace {

std::vector<int16_t> decoded(const Prompt &p, Codec codec) {
  std::vector<int16_t> out(p.frame_count() * kSamplesPerFrame);
  for (size_t i = 0; i < p.frame_count(); ++i)
    decode(codec, std::span<const uint8_t>(p.frame(codec, i), kSamplesPerFrame),
           std::span<int16_t>(out.data() + i * kSamplesPerFrame, kSamplesPerFrame));
  return out;
}

// Power of one frequency over a block (Goertzel), normalised so a sine of amplitude A
// gives about A^2 / 4 whatever the block length.
double goertzel(const std::vector<int16_t> &s, size_t begin, size_t n, double hz) {
  const double w = 2 * std::numbers::pi * hz / 8000.0;
  const double coeff = 2 * std::cos(w);
  double s1 = 0, s2 = 0;
  for (size_t i = begin; i < begin + n; ++i) {
    const double s0 = s[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return power / (static_cast<double>(n) * static_cast<double>(n));
}

double rms(const std::vector<int16_t> &s, size_t begin, size_t n) {
  double sum = 0;
  for (size_t i = begin; i < begin + n; ++i) sum += double(s[i]) * s[i];
  return std::sqrt(sum / static_cast<double>(n));
}

// A 0 dBm0 sine has an RMS of about 22 800 / sqrt(2) in 16-bit linear.
double dbm0(double rms_value) {
  return 20 * std::log10(rms_value / (32768.0 * std::pow(10.0, -3.14 / 20) / std::sqrt(2.0)));
}

}  // namespace

TEST_CASE("tone: US ringback is 440 + 480 Hz for 2 s, then 4 s of silence") {
  auto p = make_tone(ringback_us());
  REQUIRE(p);
  CHECK(p->duration_ms() == 6000);
  for (Codec codec : {Codec::pcmu, Codec::pcma}) {
    CAPTURE(codec_name(codec));
    const auto s = decoded(*p, codec);
    // 100 ms blocks inside the burst (clear of the ramps): both tones, nothing elsewhere.
    for (size_t begin : {800u, 4000u, 14400u}) {
      CAPTURE(begin);
      const double p440 = goertzel(s, begin, 800, 440), p480 = goertzel(s, begin, 800, 480);
      const double p350 = goertzel(s, begin, 800, 350), p620 = goertzel(s, begin, 800, 620);
      const double p1000 = goertzel(s, begin, 800, 1000);
      CHECK(p440 > 1000 * p350);
      CHECK(p480 > 1000 * p620);
      CHECK(p440 > 1000 * p1000);
      CHECK(p440 == doctest::Approx(p480).epsilon(0.1));  // equal levels
      // Each tone near -13 dBm0: power A^2/4 with A the tone's peak.
      const double tone_rms = std::sqrt(p440 * 4) / std::sqrt(2.0);
      CHECK(dbm0(tone_rms) == doctest::Approx(-13.0).epsilon(0.05));
    }
    int16_t peak = 0;
    for (size_t i = 0; i < 16000; ++i) peak = std::max<int16_t>(peak, std::abs(s[i]));
    CHECK(peak < 16000);  // two tones at -13 dBm0 stay far from clipping
    CHECK(peak > 8000);
    // The off part decodes to (near) zero.
    CHECK(rms(s, 16000, 32000) < 10);
  }
}

TEST_CASE("tone: EU ringback is 425 Hz for 1 s, then 4 s of silence, repeated") {
  ToneSpec spec = ringback_eu();
  spec.repetitions = 2;
  auto p = make_tone(spec);
  REQUIRE(p);
  CHECK(p->duration_ms() == 10000);
  const auto s = decoded(*p, Codec::pcma);
  for (size_t cycle : {0u, 40000u}) {
    CAPTURE(cycle);
    const double p425 = goertzel(s, cycle + 2000, 800, 425);
    CHECK(p425 > 1000 * goertzel(s, cycle + 2000, 800, 1000));
    CHECK(p425 > 100 * goertzel(s, cycle + 2000, 800, 500));
    CHECK(dbm0(rms(s, cycle + 800, 6400)) == doctest::Approx(-13.0).epsilon(0.05));
    CHECK(rms(s, cycle + 8000, 32000) < 10);
  }
  // The burst starts and ends on a ramp, not a click.
  CHECK(std::abs(s[0]) < 100);
  CHECK(std::abs(s[7999]) < 300);
}

TEST_CASE("tone: invalid specs are refused with the field named") {
  ToneSpec spec = ringback_us();
  spec.frequencies = {};
  CHECK(make_tone(spec) == nullptr);
  auto st = validate(spec);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("frequencies") != std::string::npos);

  spec = ringback_us();
  spec.frequencies = {440, 4500};
  CHECK(validate(spec).error().message.find("4500") != std::string::npos);
  spec = ringback_us();
  spec.level_dbm0 = 0;  // two tones at 0 dBm0 clip
  CHECK(validate(spec).error().message.find("level_dbm0") != std::string::npos);
  spec = ringback_us();
  spec.on_ms = 0;
  CHECK(validate(spec).error().message.find("on_ms") != std::string::npos);
  spec = ringback_us();
  spec.repetitions = 1000;
  CHECK(validate(spec).error().message.find("repetitions") != std::string::npos);
  CHECK(validate(ringback_eu()).ok());
}
