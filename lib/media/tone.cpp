#include "media/tone.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ivr::media {

namespace {

constexpr double kRate = 8000.0;
// Peak of a 0 dBm0 sine in 16-bit linear: G.711's largest sine is +3.14 dBm0 (A-law) at full
// scale, so 0 dBm0 is 3.14 dB below 32768 (about 22 800; mu-law's +3.17 differs by 0.03 dB).
const double kZeroDbm0Peak = 32768.0 * std::pow(10.0, -3.14 / 20.0);
constexpr uint32_t kRampMs = 5;
constexpr uint64_t kMaxSamples = 10ull * 60 * 8000;  // 10 minutes: a sane upper bound

Status bad(const ToneSpec &spec, const std::string &field, const std::string &reason) {
  return Status{Errc::invalid_argument, "tone '" + spec.name + "': " + field + " " + reason};
}

}  // namespace

Status validate(const ToneSpec &spec) {
  if (spec.frequencies.empty() || spec.frequencies.size() > 4)
    return bad(spec, "frequencies", "must list 1 to 4 tones");
  for (double f : spec.frequencies)
    if (!(f > 0.0 && f < kRate / 2))
      return bad(spec, "frequencies", std::to_string(f) + " Hz is outside (0, 4000)");
  if (!(spec.level_dbm0 <= 3.0 && spec.level_dbm0 >= -60.0))
    return bad(spec, "level_dbm0", "must be within -60..3");
  const double peak = static_cast<double>(spec.frequencies.size()) * kZeroDbm0Peak *
                      std::pow(10.0, spec.level_dbm0 / 20.0);
  if (peak > 32767.0) return bad(spec, "level_dbm0", "makes the summed tones clip");
  if (spec.on_ms == 0) return bad(spec, "on_ms", "must be above 0");
  if (spec.repetitions == 0) return bad(spec, "repetitions", "must be above 0");
  const uint64_t samples = (uint64_t{spec.on_ms} + spec.off_ms) * 8 * spec.repetitions;
  if (samples > kMaxSamples)
    return bad(spec, "repetitions", "make the tone longer than 10 minutes");
  return Status::success();
}

std::shared_ptr<const Prompt> make_tone(const ToneSpec &spec) {
  if (!validate(spec)) return nullptr;
  const size_t on = size_t{spec.on_ms} * 8, off = size_t{spec.off_ms} * 8;
  const double amplitude = kZeroDbm0Peak * std::pow(10.0, spec.level_dbm0 / 20.0);
  const size_t ramp = std::min<size_t>(kRampMs * 8, on / 2);
  // One burst, reused for every cycle (all bursts start at phase 0).
  std::vector<double> burst(on, 0.0);
  for (size_t i = 0; i < on; ++i) {
    double x = 0.0;
    for (double f : spec.frequencies)
      x += std::sin(2.0 * std::numbers::pi * f * static_cast<double>(i) / kRate);
    // Raised-cosine ramps at both ends of the burst.
    const size_t edge = std::min(i, on - 1 - i);
    double gain = 1.0;
    if (edge < ramp)
      gain = 0.5 - 0.5 * std::cos(std::numbers::pi * static_cast<double>(edge) / ramp);
    burst[i] = x * amplitude * gain;
  }
  std::vector<int16_t> samples;
  samples.reserve((on + off) * spec.repetitions);
  for (uint32_t r = 0; r < spec.repetitions; ++r) {
    for (double x : burst) samples.push_back(static_cast<int16_t>(std::lround(x)));
    samples.insert(samples.end(), off, 0);
  }
  return std::make_shared<Prompt>(spec.name, std::move(samples));
}

ToneSpec ringback_us() {
  return ToneSpec{"ringback-us", {440.0, 480.0}, -13.0, 2000, 4000, 1};
}

ToneSpec ringback_eu() {
  return ToneSpec{"ringback-eu", {425.0}, -13.0, 1000, 4000, 1};
}

}  // namespace ivr::media
