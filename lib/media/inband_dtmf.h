// Inband DTMF detection over 8 kHz linear audio (spandsp's detector).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "media/dtmf.h"

namespace ivr::media {

class InbandDtmfDetector {
 public:
  InbandDtmfDetector();
  ~InbandDtmfDetector();
  InbandDtmfDetector(const InbandDtmfDetector &) = delete;
  InbandDtmfDetector &operator=(const InbandDtmfDetector &) = delete;

  // Feeds samples; calls on_digit once per detected tone, when the tone ends, with its
  // measured duration and source = inband.
  void feed(std::span<const int16_t> samples, const std::function<void(DtmfDigit)> &on_digit);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ivr::media
