// Prompts: audio files decoded and resampled to 8 kHz once, then cached as encoded
// 20 ms frames that every call shares (immutable once built).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "media/g711.h"

struct SRC_STATE_tag;  // libsamplerate's converter

namespace ivr::media {

constexpr size_t kSamplesPerFrame = 160;  // 20 ms at 8 kHz

class Prompt {
 public:
  // Builds from 8 kHz linear samples; pads the last frame with silence.
  Prompt(std::string name, std::vector<int16_t> samples_8k);

  const std::string &name() const { return name_; }
  size_t frame_count() const { return frames_; }
  // 160 encoded bytes of frame i in the given codec.
  const uint8_t *frame(Codec codec, size_t i) const;
  uint32_t duration_ms() const { return static_cast<uint32_t>(frames_ * 20); }
  // Memory held by the encoded frames (both codecs).
  size_t bytes() const { return pcmu_.size() + pcma_.size(); }

 private:
  std::string name_;
  size_t frames_ = 0;
  std::vector<uint8_t> pcmu_;
  std::vector<uint8_t> pcma_;
};

// Converts mono float audio (full scale +-1.0) at any rate to 8 kHz 16-bit, block by block:
// libsamplerate's SRC_SINC_MEDIUM_QUALITY, clipping rather than wrapping. Audio files and
// text-to-speech go through this one path, so every prompt is converted alike.
class Resampler8k {
 public:
  // Errc::unsupported for a rate libsamplerate cannot convert to 8 kHz.
  static Result<Resampler8k> create(int rate);
  // Appends the 8 kHz samples of `mono` to `out`; `last` flushes the filter's tail.
  Status feed(std::span<const float> mono, bool last, std::vector<int16_t> &out);

 private:
  struct SrcDeleter {
    void operator()(SRC_STATE_tag *state) const;
  };
  explicit Resampler8k(int rate) : rate_(rate) {}
  int rate_ = 0;
  std::unique_ptr<SRC_STATE_tag, SrcDeleter> state_;  // null at 8 kHz: passthrough
  std::vector<float> buffer_;
};

// Decodes any libsndfile-readable file (WAV PCM 8/16/24/32-bit, float, mu-law, A-law...),
// mixes to mono and resamples to 8 kHz with libsamplerate. Blocking: never call on the
// engine or media loop. Errors name the file and the reason.
Result<std::shared_ptr<const Prompt>> load_prompt_file(const std::string &path,
                                                       const std::string &name);

// Thread-safe name -> prompt cache. Names are paths relative to the prompt directory;
// names with "..", absolute paths or empty names are rejected (Errc::invalid_argument).
class PromptCache {
 public:
  explicit PromptCache(std::string directory) : directory_(std::move(directory)) {}

  // Returns the cached prompt or nullptr (never blocks on I/O).
  std::shared_ptr<const Prompt> find(const std::string &name) const;
  // Loads (blocking) if not cached, then caches.
  Result<std::shared_ptr<const Prompt>> load(const std::string &name);
  // Loads every audio file directly in the directory; returns how many loaded. Files that
  // fail are reported through errors (name + reason) and skipped.
  size_t preload_all(std::vector<Error> *errors);
  const std::string &directory() const { return directory_; }

 private:
  std::string directory_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Prompt>> prompts_;
};

}  // namespace ivr::media
