// SDP offer/answer for audio calls (RFC 3264): PCMU, PCMA and telephone-event.
// Parses with Sofia-SIP's sdp parser; never trusts the input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "media/media_engine.h"

namespace ivr::sip {

// What we can do; codecs in order of our preference when the offer allows both.
struct LocalMediaCaps {
  bool pcmu = true;
  bool pcma = true;
  bool telephone_event = true;
};

struct Negotiated {
  media::RemoteMedia remote;   // where to send, codec, te pt, OUR direction
  bool on_hold = false;        // peer put us on hold (sendonly/inactive/c=0.0.0.0)
  int remote_ptime = 20;
};

// Errors: Errc::parse (not SDP, or an audio stream without a c= address: the message names
// the line), Errc::unsupported (no usable audio stream: no m=audio, port 0, a host name or
// multicast address, or no common codec -> the caller replies 488). The codec is the first
// of the offer's m-line order that caps allow (RFC 3264); a dynamic payload type mapped to
// PCMU/PCMA is kept. The first accepted audio stream is used; others are declined.
Result<Negotiated> negotiate_offer(std::string_view offer_sdp, const LocalMediaCaps &caps);

// Builds the answer to an offer that negotiate_offer accepted. Keeps the m-line order of
// the offer, declining (port 0) streams other than the chosen audio one.
// version must grow each time a new SDP is sent in the same session (o= line).
struct LocalMedia {
  std::string address;  // our RTP address
  uint16_t port = 0;
  uint64_t session_id = 0;
  uint64_t version = 0;
};
Result<std::string> build_answer(std::string_view offer_sdp, const Negotiated &negotiated,
                                 const LocalMedia &local);

// Our offer, for an INVITE without SDP (sent in the 200 OK; the answer comes in the ACK).
std::string build_offer(const LocalMediaCaps &caps, const LocalMedia &local);

// Parses the peer's answer to our offer.
Result<Negotiated> parse_answer(std::string_view answer_sdp, const LocalMediaCaps &caps);

}  // namespace ivr::sip
