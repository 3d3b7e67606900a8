// G.711 as specified by ITU-T G.711 and implemented by the ITU-T G.191 reference code
// (STL g711.c): 16-bit linear input, negative values taken in one's complement, so the
// codes match what every other G.711 implementation produces and decodes.
#include "media/g711.h"

#include <array>
#include <bit>

namespace ivr::media {
namespace {

constexpr int16_t ulaw_expand(uint8_t code) {
  const int sign = code < 0x80 ? -1 : 1;
  const int inverted = static_cast<uint8_t>(~code);
  const int exponent = (inverted >> 4) & 0x07;
  const int mantissa = inverted & 0x0F;
  const int step = 4 << (exponent + 1);
  return static_cast<int16_t>(sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33));
}

constexpr int16_t alaw_expand(uint8_t code) {
  const int ix = (code ^ 0x55) & 0x7F;
  const int exponent = ix >> 4;
  int mantissa = ix & 0x0F;
  if (exponent > 0) mantissa += 16;
  mantissa = (mantissa << 4) + 0x08;
  if (exponent > 1) mantissa <<= exponent - 1;
  return static_cast<int16_t>(code > 127 ? mantissa : -mantissa);
}

template <int16_t (*Expand)(uint8_t)>
constexpr std::array<int16_t, 256> make_table() {
  std::array<int16_t, 256> table{};
  for (int i = 0; i < 256; ++i) table[i] = Expand(static_cast<uint8_t>(i));
  return table;
}

constexpr auto kUlawTable = make_table<ulaw_expand>();
constexpr auto kAlawTable = make_table<alaw_expand>();

}  // namespace

uint8_t linear_to_ulaw(int16_t sample) {
  // One's complement magnitude of the 14-bit value, biased by 33 (G.191).
  const int x = sample;
  int magnitude = (x < 0 ? (~x) >> 2 : x >> 2) + 33;
  if (magnitude > 0x1FFF) magnitude = 0x1FFF;
  const int segment = 1 + std::bit_width(static_cast<unsigned>(magnitude >> 6));  // 1..8
  const int high = 8 - segment;
  const int low = 0x0F - ((magnitude >> segment) & 0x0F);
  int code = (high << 4) | low;
  if (x >= 0) code |= 0x80;
  return static_cast<uint8_t>(code);
}

int16_t ulaw_to_linear(uint8_t code) {
  return kUlawTable[code];
}

uint8_t linear_to_alaw(int16_t sample) {
  const int x = sample;
  int ix = x < 0 ? (~x) >> 4 : x >> 4;  // 0..2047
  if (ix > 15) {
    const int exponent = std::bit_width(static_cast<unsigned>(ix)) - 4;  // 1..7
    ix = (exponent << 4) | ((ix >> (exponent - 1)) & 0x0F);
  }
  if (x >= 0) ix |= 0x80;
  return static_cast<uint8_t>(ix ^ 0x55);
}

int16_t alaw_to_linear(uint8_t code) {
  return kAlawTable[code];
}

void encode(Codec codec, std::span<const int16_t> in, std::span<uint8_t> out) {
  const size_t n = in.size() < out.size() ? in.size() : out.size();
  if (codec == Codec::pcmu) {
    for (size_t i = 0; i < n; ++i) out[i] = linear_to_ulaw(in[i]);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = linear_to_alaw(in[i]);
  }
}

void decode(Codec codec, std::span<const uint8_t> in, std::span<int16_t> out) {
  const size_t n = in.size() < out.size() ? in.size() : out.size();
  const auto &table = codec == Codec::pcmu ? kUlawTable : kAlawTable;
  for (size_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

namespace {

// Code-to-code tables, built once from the conversions above: one lookup per sample.
template <int16_t (*Expand)(uint8_t), uint8_t (*Compress)(int16_t)>
std::array<uint8_t, 256> make_transcode_table() {
  std::array<uint8_t, 256> table{};
  for (int i = 0; i < 256; ++i) table[i] = Compress(Expand(static_cast<uint8_t>(i)));
  return table;
}

const std::array<uint8_t, 256> kUlawToAlaw = make_transcode_table<ulaw_to_linear, linear_to_alaw>();
const std::array<uint8_t, 256> kAlawToUlaw = make_transcode_table<alaw_to_linear, linear_to_ulaw>();

}  // namespace

void transcode(Codec from, Codec to, std::span<const uint8_t> in, std::span<uint8_t> out) {
  const size_t n = in.size() < out.size() ? in.size() : out.size();
  if (from == to) {
    for (size_t i = 0; i < n; ++i) out[i] = in[i];
    return;
  }
  const auto &table = from == Codec::pcmu ? kUlawToAlaw : kAlawToUlaw;
  for (size_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

const char *codec_name(Codec codec) {
  switch (codec) {
    case Codec::pcmu:
      return "PCMU";
    case Codec::pcma:
      return "PCMA";
  }
  return "unknown";
}

}  // namespace ivr::media
