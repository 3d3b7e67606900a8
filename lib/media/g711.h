// G.711 mu-law (PCMU) and A-law (PCMA) conversion.
#pragma once

#include <cstdint>
#include <span>

namespace ivr::media {

enum class Codec : uint8_t { pcmu = 0, pcma = 8 };  // value = static RTP payload type

uint8_t linear_to_ulaw(int16_t sample);
int16_t ulaw_to_linear(uint8_t code);
uint8_t linear_to_alaw(int16_t sample);
int16_t alaw_to_linear(uint8_t code);

// Whole buffers; out must be at least in.size() long.
void encode(Codec codec, std::span<const int16_t> in, std::span<uint8_t> out);
void decode(Codec codec, std::span<const uint8_t> in, std::span<int16_t> out);

// Re-encodes G.711 codes from one law to the other through the linear value (the bridge's
// PCMU <-> PCMA transcoding); same codec: a copy. out must be at least in.size() long.
void transcode(Codec from, Codec to, std::span<const uint8_t> in, std::span<uint8_t> out);

const char *codec_name(Codec codec);  // "PCMU" / "PCMA"

}  // namespace ivr::media
