// Call-progress tones (ringback) as prompts: a cadence of summed sine tones and silence,
// generated once and played like any other prompt (shared, immutable frames).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "media/prompt.h"

namespace ivr::media {

struct ToneSpec {
  std::string name;                 // the prompt's name (logs)
  std::vector<double> frequencies;  // Hz, summed; 1..4 tones, each below 4000 Hz
  double level_dbm0 = -13.0;        // per tone; the sum must not clip
  uint32_t on_ms = 0, off_ms = 0;   // one cycle: on_ms of tone, then off_ms of silence
  uint32_t repetitions = 1;         // cycles in the prompt (replay it to ring longer)
};

// Checks a spec; the error names the field and the reason.
Status validate(const ToneSpec &spec);

// Builds the prompt (8 kHz, PCMU and PCMA frames); each burst starts and ends with a 5 ms
// ramp so the cadence does not click. nullptr when validate(spec) fails (play() then ends
// with PlaybackEnd::failed).
std::shared_ptr<const Prompt> make_tone(const ToneSpec &spec);

// Presets, one cycle each (set repetitions for more):
ToneSpec ringback_us();  // 440 + 480 Hz, 2 s on, 4 s off (6 s), ANSI T1.401
ToneSpec ringback_eu();  // 425 Hz, 1 s on, 4 s off (5 s), ETSI TR 101 041 / CEPT

}  // namespace ivr::media
