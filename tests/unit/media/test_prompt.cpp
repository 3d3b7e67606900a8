#include <doctest/doctest.h>
#include <sndfile.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "media/prompt.h"

using namespace ivr;
using namespace ivr::media;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ivr_prompt_test_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Writes interleaved float frames with libsndfile in the given format.
void write_audio(const fs::path &path, int rate, int channels, int format,
                 const std::vector<float> &interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE *f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE_MESSAGE(f != nullptr, sf_strerror(nullptr));
  // Float files keep values beyond full scale only if sndfile is told not to clip.
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_FALSE);
  const auto frames = static_cast<sf_count_t>(interleaved.size() / channels);
  REQUIRE(sf_writef_float(f, interleaved.data(), frames) == frames);
  sf_close(f);
}

std::vector<float> sine(int rate, double seconds, double freq, double amplitude, int channels,
                        bool invert_second = false) {
  const auto n = static_cast<size_t>(rate * seconds);
  std::vector<float> out(n * channels);
  for (size_t i = 0; i < n; ++i) {
    const auto v = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * freq * i / rate));
    for (int c = 0; c < channels; ++c) out[i * channels + c] = (invert_second && c == 1) ? -v : v;
  }
  return out;
}

std::vector<int16_t> decoded(const Prompt &p, Codec codec) {
  std::vector<int16_t> out(p.frame_count() * kSamplesPerFrame);
  for (size_t i = 0; i < p.frame_count(); ++i) {
    decode(codec, std::span<const uint8_t>(p.frame(codec, i), kSamplesPerFrame),
           std::span<int16_t>(out.data() + i * kSamplesPerFrame, kSamplesPerFrame));
  }
  return out;
}

// Zero crossings per second over the middle of the signal (edges hold the filter's ramp).
double crossing_rate(const std::vector<int16_t> &s) {
  const size_t begin = s.size() / 10, end = s.size() * 9 / 10;
  size_t crossings = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    if ((s[i - 1] < 0) != (s[i] < 0)) ++crossings;
  }
  return crossings * 8000.0 / static_cast<double>(end - begin);
}

double rms(const std::vector<int16_t> &s) {
  const size_t begin = s.size() / 10, end = s.size() * 9 / 10;
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += double(s[i]) * s[i];
  return std::sqrt(sum / static_cast<double>(end - begin));
}

size_t expected_frames(double seconds) {
  return static_cast<size_t>(std::ceil(seconds * 8000 / kSamplesPerFrame));
}

}  // namespace

TEST_CASE("prompt: frames are encoded once per codec, last frame padded with silence") {
  std::vector<int16_t> samples(170, 1000);
  Prompt p("x", samples);
  CHECK(p.name() == "x");
  REQUIRE(p.frame_count() == 2);
  CHECK(p.duration_ms() == 40);
  CHECK(p.frame(Codec::pcmu, 0)[0] == linear_to_ulaw(1000));
  CHECK(p.frame(Codec::pcma, 0)[0] == linear_to_alaw(1000));
  CHECK(p.frame(Codec::pcmu, 1)[9] == linear_to_ulaw(1000));
  CHECK(p.frame(Codec::pcmu, 1)[10] == linear_to_ulaw(0));
  CHECK(p.frame(Codec::pcma, 1)[159] == linear_to_alaw(0));
  CHECK(p.frame(Codec::pcmu, 2) == nullptr);

  Prompt empty("e", {});
  CHECK(empty.frame_count() == 0);
  CHECK(empty.frame(Codec::pcmu, 0) == nullptr);
}

TEST_CASE("prompt: 8 kHz mono 16-bit WAV loads without resampling") {
  TempDir dir;
  const auto path = dir.path / "a.wav";
  write_audio(path, 8000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16, sine(8000, 1.0, 1000, 0.5, 1));
  auto r = load_prompt_file(path.string(), "a.wav");
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  const Prompt &p = **r;
  CHECK(p.name() == "a.wav");
  CHECK(p.frame_count() == 50);
  const auto pcm = decoded(p, Codec::pcma);
  CHECK(crossing_rate(pcm) == doctest::Approx(2000).epsilon(0.01));
  CHECK(rms(pcm) == doctest::Approx(0.5 * 32768 / std::sqrt(2.0)).epsilon(0.03));
}

TEST_CASE("prompt: 22050 Hz mono (espeak-ng's rate) is resampled to 8 kHz") {
  TempDir dir;
  const auto path = dir.path / "tts.wav";
  write_audio(path, 22050, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16, sine(22050, 1.5, 1000, 0.5, 1));
  auto r = load_prompt_file(path.string(), "tts");
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  const Prompt &p = **r;
  const size_t want = expected_frames(1.5);
  CHECK(p.frame_count() + 1 >= want);
  CHECK(p.frame_count() <= want + 1);
  const auto pcm = decoded(p, Codec::pcmu);
  CHECK(crossing_rate(pcm) == doctest::Approx(2000).epsilon(0.02));
  CHECK(rms(pcm) == doctest::Approx(0.5 * 32768 / std::sqrt(2.0)).epsilon(0.05));
}

TEST_CASE("prompt: 44.1 kHz stereo float is mixed to mono and resampled") {
  TempDir dir;
  const auto path = dir.path / "music.wav";
  write_audio(path, 44100, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, sine(44100, 2.0, 1000, 0.4, 2));
  auto r = load_prompt_file(path.string(), "music");
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  const size_t want = expected_frames(2.0);
  CHECK((*r)->frame_count() + 1 >= want);
  CHECK((*r)->frame_count() <= want + 1);
  const auto pcm = decoded(**r, Codec::pcmu);
  CHECK(crossing_rate(pcm) == doctest::Approx(2000).epsilon(0.02));
  CHECK(rms(pcm) == doctest::Approx(0.4 * 32768 / std::sqrt(2.0)).epsilon(0.05));

  // Channels in opposite phase cancel: the mix is an average, not one channel.
  const auto cancel = dir.path / "cancel.wav";
  write_audio(cancel, 44100, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT,
              sine(44100, 1.0, 1000, 0.4, 2, /*invert_second=*/true));
  auto c = load_prompt_file(cancel.string(), "cancel");
  REQUIRE(c.ok());
  CHECK(rms(decoded(**c, Codec::pcmu)) < 10);
}

TEST_CASE("prompt: a 3.4 kHz tone at 44.1 kHz stays in band, a 6 kHz one is filtered") {
  TempDir dir;
  write_audio(dir.path / "hi.wav", 44100, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(44100, 1.0, 6000, 0.5, 1));
  auto r = load_prompt_file((dir.path / "hi.wav").string(), "hi");
  REQUIRE(r.ok());
  // Without an anti-aliasing filter 6 kHz would fold to 2 kHz at full level.
  CHECK(rms(decoded(**r, Codec::pcmu)) < 0.01 * 32768);
}

TEST_CASE("prompt: float samples beyond full scale are clipped, not wrapped") {
  TempDir dir;
  const auto path = dir.path / "loud.wav";
  write_audio(path, 8000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, std::vector<float>(1600, 1.5f));
  auto r = load_prompt_file(path.string(), "loud");
  REQUIRE(r.ok());
  const auto pcm = decoded(**r, Codec::pcmu);
  CHECK(pcm[100] == 32124);  // the largest mu-law value
  CHECK(pcm[1500] == 32124);
}

TEST_CASE("prompt: other formats libsndfile reads (AU mu-law, FLAC)") {
  TempDir dir;
  write_audio(dir.path / "a.au", 8000, 1, SF_FORMAT_AU | SF_FORMAT_ULAW,
              sine(8000, 0.5, 1000, 0.5, 1));
  write_audio(dir.path / "b.flac", 16000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16,
              sine(16000, 0.5, 1000, 0.5, 1));
  for (const char *name : {"a.au", "b.flac"}) {
    CAPTURE(name);
    auto r = load_prompt_file((dir.path / name).string(), name);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK((*r)->frame_count() == 25);
    CHECK(crossing_rate(decoded(**r, Codec::pcmu)) == doctest::Approx(2000).epsilon(0.02));
  }
}

TEST_CASE("prompt: missing, corrupt and empty files give errors naming the file") {
  TempDir dir;
  const auto missing = (dir.path / "nope.wav").string();
  auto m = load_prompt_file(missing, "nope");
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().code == Errc::not_found);
  CHECK(m.error().message.find(missing) != std::string::npos);

  const auto corrupt = (dir.path / "corrupt.wav").string();
  std::ofstream(corrupt) << "RIFF this is not really a wave file at all";
  auto c = load_prompt_file(corrupt, "corrupt");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == Errc::media);
  CHECK(c.error().message.find(corrupt) != std::string::npos);

  const auto empty = dir.path / "empty.wav";
  write_audio(empty, 8000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16, {});
  auto e = load_prompt_file(empty.string(), "empty");
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find(empty.string()) != std::string::npos);
}

TEST_CASE("prompt cache: name validation") {
  TempDir dir;
  PromptCache cache(dir.path.string());
  const std::vector<std::string> bad = {"",          "/etc/passwd", "..",
                                        "../x.wav",  "a/../b.wav",  "a/..",
                                        "a/../../x", "./../x",      std::string("a\0b.wav", 7)};
  for (const auto &name : bad) {
    CAPTURE(name);
    auto r = cache.load(name);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
  }
  // Dots inside a component are not a parent reference: this is just a missing file.
  auto dots = cache.load("a..b.wav");
  REQUIRE_FALSE(dots.ok());
  CHECK(dots.error().code == Errc::not_found);
}

TEST_CASE("prompt cache: load caches, find returns the same shared object") {
  TempDir dir;
  fs::create_directories(dir.path / "menu");
  write_audio(dir.path / "menu" / "main.wav", 8000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(8000, 0.2, 1000, 0.5, 1));
  PromptCache cache(dir.path.string());
  CHECK(cache.directory() == dir.path.string());
  CHECK(cache.find("menu/main.wav") == nullptr);
  auto r = cache.load("menu/main.wav");
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK((*r)->frame_count() == 10);
  CHECK((*r)->name() == "menu/main.wav");
  CHECK(cache.find("menu/main.wav").get() == r->get());
  auto again = cache.load("menu/main.wav");
  REQUIRE(again.ok());
  CHECK(again->get() == r->get());

  // Once cached, the file is no longer needed.
  fs::remove(dir.path / "menu" / "main.wav");
  CHECK(cache.find("menu/main.wav").get() == r->get());
  auto gone = cache.load("other.wav");
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().message.find("other.wav") != std::string::npos);
}

TEST_CASE("prompt cache: concurrent loads of one name share one object") {
  TempDir dir;
  write_audio(dir.path / "hold.wav", 22050, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(22050, 0.5, 440, 0.3, 1));
  PromptCache cache(dir.path.string());
  std::vector<const Prompt *> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] {
      auto r = cache.load("hold.wav");
      if (r.ok()) seen[i] = r->get();
    });
  }
  for (auto &t : threads) t.join();
  const Prompt *cached = cache.find("hold.wav").get();
  REQUIRE(cached != nullptr);
  for (const Prompt *p : seen) CHECK(p == cached);
}

TEST_CASE("prompt cache: preload_all loads audio files in the directory only") {
  TempDir dir;
  write_audio(dir.path / "one.wav", 8000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(8000, 0.1, 1000, 0.5, 1));
  write_audio(dir.path / "two.WAV", 22050, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(22050, 0.1, 1000, 0.5, 1));
  write_audio(dir.path / "three.flac", 8000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16,
              sine(8000, 0.1, 1000, 0.5, 1));
  std::ofstream(dir.path / "readme.txt") << "not audio";
  std::ofstream(dir.path / "broken.wav") << "garbage";
  fs::create_directories(dir.path / "sub");
  write_audio(dir.path / "sub" / "nested.wav", 8000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16,
              sine(8000, 0.1, 1000, 0.5, 1));

  PromptCache cache(dir.path.string());
  std::vector<Error> errors;
  CHECK(cache.preload_all(&errors) == 3);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("broken.wav") != std::string::npos);
  CHECK(cache.find("one.wav") != nullptr);
  CHECK(cache.find("two.WAV") != nullptr);
  CHECK(cache.find("three.flac") != nullptr);
  CHECK(cache.find("readme.txt") == nullptr);
  CHECK(cache.find("sub/nested.wav") == nullptr);
  CHECK(cache.preload_all(nullptr) == 3);  // already cached files still count

  PromptCache missing((dir.path / "nowhere").string());
  std::vector<Error> missing_errors;
  CHECK(missing.preload_all(&missing_errors) == 0);
  REQUIRE(missing_errors.size() == 1);
  CHECK(missing_errors[0].message.find("nowhere") != std::string::npos);
}
