#include "media/prompt.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <system_error>

namespace ivr::media {
namespace {

constexpr int kTargetRate = 8000;
constexpr sf_count_t kReadFrames = 4096;  // per sf_readf_float call and per resampler block

struct SndfileCloser {
  void operator()(SNDFILE *f) const { sf_close(f); }
};

int16_t to_int16(float x) {
  // Float sources may exceed full scale; clip rather than wrap.
  const float scaled = std::nearbyint(x * 32768.0f);
  if (scaled >= 32767.0f) return 32767;
  if (scaled <= -32768.0f) return -32768;
  return static_cast<int16_t>(scaled);
}

Error file_error(Errc code, const std::string &path, const std::string &reason) {
  return Error{code, "prompt file '" + path + "': " + reason};
}

}  // namespace

Prompt::Prompt(std::string name, std::vector<int16_t> samples_8k) : name_(std::move(name)) {
  frames_ = (samples_8k.size() + kSamplesPerFrame - 1) / kSamplesPerFrame;
  samples_8k.resize(frames_ * kSamplesPerFrame, 0);  // silence pads the last frame
  pcmu_.resize(samples_8k.size());
  pcma_.resize(samples_8k.size());
  encode(Codec::pcmu, samples_8k, pcmu_);
  encode(Codec::pcma, samples_8k, pcma_);
}

const uint8_t *Prompt::frame(Codec codec, size_t i) const {
  if (i >= frames_) return nullptr;
  const std::vector<uint8_t> &bytes = codec == Codec::pcmu ? pcmu_ : pcma_;
  return bytes.data() + i * kSamplesPerFrame;
}

void Resampler8k::SrcDeleter::operator()(SRC_STATE_tag *state) const {
  src_delete(state);
}

Result<Resampler8k> Resampler8k::create(int rate) {
  Resampler8k resampler(rate);
  if (rate == kTargetRate) return resampler;
  if (rate < 1 || !src_is_valid_ratio(static_cast<double>(kTargetRate) / rate)) {
    return Error{Errc::unsupported, "sample rate " + std::to_string(rate) + " Hz out of range"};
  }
  int err = 0;
  resampler.state_.reset(src_new(SRC_SINC_MEDIUM_QUALITY, 1, &err));
  if (!resampler.state_) return Error{Errc::internal, src_strerror(err)};
  return resampler;
}

Status Resampler8k::feed(std::span<const float> mono, bool last, std::vector<int16_t> &out) {
  if (!state_) {
    for (float x : mono) out.push_back(to_int16(x));
    return {};
  }
  const double ratio = static_cast<double>(kTargetRate) / rate_;
  // Enough for one block at the largest valid ratio (256) plus the filter's tail.
  if (buffer_.empty()) buffer_.resize(static_cast<size_t>(std::ceil(kReadFrames * ratio)) + 4096);
  // Feed in blocks; at the end keep calling with no input until the filter is drained.
  SRC_DATA data{};
  data.data_in = mono.data();
  data.src_ratio = ratio;
  data.end_of_input = last ? 1 : 0;
  size_t remaining = mono.size();
  for (;;) {
    const size_t block = std::min(remaining, static_cast<size_t>(kReadFrames));
    data.input_frames = static_cast<long>(block);
    data.data_out = buffer_.data();
    data.output_frames = static_cast<long>(buffer_.size());
    // The end-of-input flag only on the final block, or the filter drains too early.
    data.end_of_input = (last && block == remaining) ? 1 : 0;
    const int err = src_process(state_.get(), &data);
    if (err != 0) return Error{Errc::internal, src_strerror(err)};
    for (long i = 0; i < data.output_frames_gen; ++i) {
      out.push_back(to_int16(buffer_[static_cast<size_t>(i)]));
    }
    data.data_in += data.input_frames_used;
    remaining -= static_cast<size_t>(data.input_frames_used);
    if (remaining > 0) continue;
    if (!last || data.output_frames_gen == 0) break;
  }
  return {};
}

Result<std::shared_ptr<const Prompt>> load_prompt_file(const std::string &path,
                                                       const std::string &name) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return file_error(Errc::not_found, path, "no such file");
  }
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) return file_error(Errc::media, path, sf_strerror(nullptr));
  if (info.channels < 1 || info.samplerate < 1) {
    return file_error(Errc::media, path, "no channels or no sample rate");
  }
  if (info.frames < 1) return file_error(Errc::media, path, "contains no audio");

  auto resampler = Resampler8k::create(info.samplerate);
  if (!resampler) return file_error(resampler.error().code, path, resampler.error().message);

  const auto channels = static_cast<size_t>(info.channels);
  std::vector<float> interleaved(static_cast<size_t>(kReadFrames) * channels);
  std::vector<float> mono(static_cast<size_t>(kReadFrames));
  const double ratio = static_cast<double>(kTargetRate) / info.samplerate;
  std::vector<int16_t> samples;
  samples.reserve(static_cast<size_t>(static_cast<double>(info.frames) * ratio) + 1);

  bool end_of_input = false;
  while (!end_of_input) {
    const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), kReadFrames);
    if (got < 0) return file_error(Errc::io, path, sf_strerror(file.get()));
    end_of_input = got < kReadFrames;
    if (got == 0 && sf_error(file.get()) != SF_ERR_NO_ERROR) {
      return file_error(Errc::media, path, sf_strerror(file.get()));
    }
    for (sf_count_t i = 0; i < got; ++i) {
      float sum = 0.0f;
      for (size_t c = 0; c < channels; ++c)
        sum += interleaved[static_cast<size_t>(i) * channels + c];
      mono[static_cast<size_t>(i)] = sum / static_cast<float>(channels);
    }
    const std::span<const float> block(mono.data(), static_cast<size_t>(got));
    if (Status fed = resampler->feed(block, end_of_input, samples); !fed) {
      return file_error(fed.error().code, path, fed.error().message);
    }
  }
  if (samples.empty()) return file_error(Errc::media, path, "contains no audio");
  return std::shared_ptr<const Prompt>(std::make_shared<Prompt>(name, std::move(samples)));
}

namespace {

Status validate_name(const std::string &name) {
  if (name.empty()) return Status{Errc::invalid_argument, "prompt name is empty"};
  if (name.find('\0') != std::string::npos) {
    return Status{Errc::invalid_argument, "prompt name contains a NUL byte"};
  }
  if (name.front() == '/') {
    return Status{Errc::invalid_argument, "prompt name '" + name + "' is an absolute path"};
  }
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t end = name.find('/', begin);
    if (end == std::string::npos) end = name.size();
    if (name.compare(begin, end - begin, "..") == 0) {
      return Status{Errc::invalid_argument, "prompt name '" + name + "' contains '..'"};
    }
    begin = end + 1;
  }
  return Status::success();
}

bool has_audio_extension(const std::filesystem::path &path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".wav" || ext == ".au" || ext == ".flac" || ext == ".ogg";
}

}  // namespace

std::shared_ptr<const Prompt> PromptCache::find(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = prompts_.find(name);
  return it == prompts_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<const Prompt>> PromptCache::load(const std::string &name) {
  if (Status valid = validate_name(name); !valid) return valid.error();
  if (auto cached = find(name)) return cached;
  // Decode without the lock so lookups and other loads are not held up by file I/O.
  auto loaded = load_prompt_file((std::filesystem::path(directory_) / name).string(), name);
  if (!loaded) return loaded.error();
  std::lock_guard<std::mutex> lock(mutex_);
  // If another thread loaded it meanwhile, keep the first so every caller shares one object.
  return prompts_.emplace(name, std::move(*loaded)).first->second;
}

size_t PromptCache::preload_all(std::vector<Error> *errors) {
  std::error_code ec;
  std::filesystem::directory_iterator it(directory_, ec);
  if (ec) {
    if (errors) {
      errors->push_back(
          Error{Errc::not_found, "prompt directory '" + directory_ + "': " + ec.message()});
    }
    return 0;
  }
  size_t loaded = 0;
  for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || !has_audio_extension(it->path())) continue;
    auto result = load(it->path().filename().string());
    if (result) {
      ++loaded;
    } else if (errors) {
      errors->push_back(result.error());
    }
  }
  if (ec && errors) {
    errors->push_back(Error{Errc::io, "prompt directory '" + directory_ + "': " + ec.message()});
  }
  return loaded;
}

}  // namespace ivr::media
