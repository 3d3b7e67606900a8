#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "media/g711.h"

using namespace ivr::media;

TEST_CASE("g711: mu-law known code points") {
  CHECK(ulaw_to_linear(0xFF) == 0);
  CHECK(ulaw_to_linear(0x7F) == 0);  // negative zero
  CHECK(ulaw_to_linear(0x80) == 32124);
  CHECK(ulaw_to_linear(0x00) == -32124);
  CHECK(ulaw_to_linear(0xFE) == 8);
  CHECK(ulaw_to_linear(0x7E) == -8);
  CHECK(ulaw_to_linear(0xEF) == 132);  // first step of the second segment is 16 wide
  CHECK(ulaw_to_linear(0xF0) == 120);

  CHECK(linear_to_ulaw(0) == 0xFF);
  CHECK(linear_to_ulaw(-1) == 0x7F);
  CHECK(linear_to_ulaw(32767) == 0x80);
  CHECK(linear_to_ulaw(-32768) == 0x00);
  CHECK(linear_to_ulaw(8) == 0xFE);
  CHECK(linear_to_ulaw(-8) == 0x7E);
  CHECK(linear_to_ulaw(1000) == 0xCE);
  CHECK(linear_to_ulaw(-1000) == 0x4E);
}

TEST_CASE("g711: A-law known code points") {
  CHECK(alaw_to_linear(0xD5) == 8);
  CHECK(alaw_to_linear(0x55) == -8);
  CHECK(alaw_to_linear(0xAA) == 32256);
  CHECK(alaw_to_linear(0x2A) == -32256);
  CHECK(alaw_to_linear(0xD4) == 24);

  CHECK(linear_to_alaw(0) == 0xD5);
  CHECK(linear_to_alaw(-1) == 0x55);
  CHECK(linear_to_alaw(32767) == 0xAA);
  CHECK(linear_to_alaw(-32768) == 0x2A);
  CHECK(linear_to_alaw(1000) == 0xFA);
  CHECK(linear_to_alaw(-1000) == 0x7A);
}

TEST_CASE("g711: every code decodes and re-encodes to itself") {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<uint8_t>(c);
    CAPTURE(c);
    // 0x7F is mu-law's negative zero: it decodes to 0, which encodes as positive zero.
    CHECK(linear_to_ulaw(ulaw_to_linear(code)) == (code == 0x7F ? 0xFF : code));
    CHECK(linear_to_alaw(alaw_to_linear(code)) == code);
  }
}

TEST_CASE("g711: decoding is monotonic in code order") {
  // Positive mu-law codes 0xFF..0x80 and A-law codes by segment/mantissa grow in magnitude.
  for (int c = 0xFF; c > 0x80; --c) {
    CHECK(ulaw_to_linear(static_cast<uint8_t>(c)) < ulaw_to_linear(static_cast<uint8_t>(c - 1)));
  }
  for (int v = 0; v < 127; ++v) {
    const auto a = static_cast<uint8_t>((v | 0x80) ^ 0x55);
    const auto b = static_cast<uint8_t>(((v + 1) | 0x80) ^ 0x55);
    CHECK(alaw_to_linear(a) < alaw_to_linear(b));
  }
}

TEST_CASE("g711: encoding error stays within half a quantisation interval") {
  // Reconstruction levels sit mid-interval and intervals double in width every segment, so
  // the error bound is half the wider gap around the chosen level; +3 covers the 14-bit
  // (mu-law) input truncation and the one's complement handling of negative samples.
  for (Codec codec : {Codec::pcmu, Codec::pcma}) {
    const std::string codec_label = codec_name(codec);
    CAPTURE(codec_label);
    std::vector<int> levels;
    for (int c = 0; c < 256; ++c) {
      const auto code = static_cast<uint8_t>(c);
      levels.push_back(codec == Codec::pcmu ? ulaw_to_linear(code) : alaw_to_linear(code));
    }
    std::sort(levels.begin(), levels.end());
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
    int failures = 0;
    for (int x = -32768; x <= 32767; ++x) {
      const auto s = static_cast<int16_t>(x);
      const int got = codec == Codec::pcmu ? ulaw_to_linear(linear_to_ulaw(s))
                                           : alaw_to_linear(linear_to_alaw(s));
      const int error = std::abs(got - x);
      bool ok;
      if (x > levels.back()) {
        ok = got == levels.back();  // clipped to the largest level
      } else if (x < levels.front()) {
        ok = got == levels.front();
      } else {
        const auto it = std::lower_bound(levels.begin(), levels.end(), got);
        const size_t i = static_cast<size_t>(it - levels.begin());
        const int gap_lo = i > 0 ? levels[i] - levels[i - 1] : 0;
        const int gap_hi = i + 1 < levels.size() ? levels[i + 1] - levels[i] : 0;
        ok = error <= std::max(gap_lo, gap_hi) / 2 + 3 && error <= std::abs(x) / 16 + 8;
      }
      if (!ok && ++failures <= 5) FAIL_CHECK("x=" << x << " decoded " << got);
    }
    CHECK(failures == 0);
  }
}

TEST_CASE("g711: buffer encode/decode matches the per-sample functions") {
  std::vector<int16_t> in;
  for (int x = -32768; x <= 32767; x += 97) in.push_back(static_cast<int16_t>(x));
  for (Codec codec : {Codec::pcmu, Codec::pcma}) {
    std::vector<uint8_t> enc(in.size());
    std::vector<int16_t> dec(in.size());
    encode(codec, in, enc);
    decode(codec, enc, dec);
    for (size_t i = 0; i < in.size(); ++i) {
      const uint8_t e = codec == Codec::pcmu ? linear_to_ulaw(in[i]) : linear_to_alaw(in[i]);
      REQUIRE(enc[i] == e);
      REQUIRE(dec[i] == (codec == Codec::pcmu ? ulaw_to_linear(e) : alaw_to_linear(e)));
    }
  }
  CHECK(std::string(codec_name(Codec::pcmu)) == "PCMU");
  CHECK(std::string(codec_name(Codec::pcma)) == "PCMA");
}

TEST_CASE("g711: buffer functions never write past a short output") {
  const std::vector<int16_t> in(10, 1000);
  std::vector<uint8_t> out(5, 0x11);
  encode(Codec::pcmu, in, std::span<uint8_t>(out.data(), 4));
  CHECK(out[3] == 0xCE);
  CHECK(out[4] == 0x11);
}
