#include "media/inband_dtmf.h"

#include <new>
#include <vector>

extern "C" {
#include <spandsp.h>
}

namespace ivr::media {
namespace {

constexpr uint32_t kSampleRate = 8000;
// Samples handed to spandsp per call. The realtime callback does not say where in the
// buffer a tone changed, so the position is known to within one chunk (5 ms): finer than
// the detector's own ~13 ms block.
constexpr size_t kChunk = 40;

}  // namespace

struct InbandDtmfDetector::State {
  dtmf_rx_state_t *rx = nullptr;
  uint64_t position = 0;             // samples consumed, through the end of the current chunk
  char current = 0;                  // tone being received, 0 for none
  uint64_t start = 0;                // position at which current started
  std::vector<DtmfDigit> completed;  // filled inside dtmf_rx, delivered after it returns

  static void on_tone(void *user_data, int code, int /*level*/, int /*delay*/) {
    auto *self = static_cast<State *>(user_data);
    const char c = static_cast<char>(code);
    if (c == self->current) return;
    if (self->current != 0) {
      DtmfDigit digit;
      digit.digit = self->current;
      digit.duration_ms =
          static_cast<uint32_t>((self->position - self->start) * 1000 / kSampleRate);
      digit.source = DtmfSource::inband;
      self->completed.push_back(digit);
    }
    // spandsp reports digits as ASCII and 0 for "no tone"; anything else is not a tone.
    self->current = is_dtmf_digit(c) ? c : 0;
    self->start = self->position;
  }

  // Digits are taken from the realtime callback; the buffered string is not needed.
  static void on_digits(void *, const char *, int) {}
};

InbandDtmfDetector::InbandDtmfDetector() : state_(std::make_unique<State>()) {
  state_->rx = dtmf_rx_init(nullptr, &State::on_digits, state_.get());
  if (!state_->rx) throw std::bad_alloc();  // spandsp only fails to allocate
  dtmf_rx_set_realtime_callback(state_->rx, &State::on_tone, state_.get());
}

InbandDtmfDetector::~InbandDtmfDetector() {
  if (state_ && state_->rx) dtmf_rx_free(state_->rx);
}

void InbandDtmfDetector::feed(std::span<const int16_t> samples,
                              const std::function<void(DtmfDigit)> &on_digit) {
  State &s = *state_;
  while (!samples.empty()) {
    const size_t n = samples.size() < kChunk ? samples.size() : kChunk;
    s.position += n;
    dtmf_rx(s.rx, samples.data(), static_cast<int>(n));
    samples = samples.subspan(n);
  }
  if (s.completed.empty()) return;
  // Swap out first so a callback that feeds this detector again cannot disturb the loop.
  std::vector<DtmfDigit> done;
  done.swap(s.completed);
  if (on_digit) {
    for (const DtmfDigit &digit : done) on_digit(digit);
  }
}

}  // namespace ivr::media
