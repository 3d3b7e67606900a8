// SDP offer/answer (RFC 3264/4566) over Sofia-SIP's parser.
//
// Sofia 1.12.11 (the Debian package) has input-dependent bugs fixed upstream only in 2022:
// a line of one character makes it read past the end of its buffer, and a non-RTP m= line
// whose format list holds a non-token character (or only whitespace) loops forever while
// allocating. lint() rejects those shapes before Sofia sees the text; it also gives the line
// numbers Sofia's error messages lack.
#include "sip/sdp.h"

#include <arpa/inet.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "common/text.h"

namespace ivr::sip {
namespace {

// Far above real offers (a few KiB and some tens of lines even with many codecs). The line
// limit matters more: Sofia's parse time grows faster than linearly with the line count
// (0.2 ms for 1000 lines, 12 ms for 5000), and an error costs ~log2(lines) parses to locate.
constexpr size_t kMaxSdpSize = 32 * 1024;
constexpr size_t kMaxSdpLines = 1000;
constexpr int kOurPtime = 20;
constexpr int kOfferTelephoneEventPt = 101;  // SIPp's DTMF pcaps use 101 (NOTES-sip-media)

struct ParserDeleter {
  void operator()(sdp_parser_t *p) const { sdp_parser_free(p); }
};
using ParserPtr = std::unique_ptr<sdp_parser_t, ParserDeleter>;

struct Line {
  size_t number;  // 1-based, as an editor counts them
  size_t offset;  // into the SDP text
  std::string_view text;
};

std::string quoted(std::string_view s) { return text::quote_untrusted(s, 48); }

// Sofia's messages quote input bytes verbatim; keep ours printable.
std::string sanitized(const char *msg) {
  std::string out;
  for (const char *p = msg ? msg : "unknown error"; *p && out.size() < 200; ++p) {
    auto c = static_cast<unsigned char>(*p);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  return out;
}

// Splits where Sofia does (CR, LF), counting CRLF as one line end. Empty lines are dropped
// since Sofia skips them too.
std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  size_t number = 1, start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    bool end = i == text.size() || text[i] == '\r' || text[i] == '\n';
    if (!end) continue;
    if (i > start) lines.push_back({number, start, text.substr(start, i - start)});
    if (i < text.size() && text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    ++number;
    start = i + 1;
  }
  return lines;
}

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-!#$%&'*+.^_`{|}~").find(c) != std::string_view::npos;
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), pred);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// m=<media> <port>[/<count>] <proto> <fmt> ... with RFC 4566 token characters.
bool valid_m_line(std::string_view value) {
  auto fields = split_ws(value);
  if (fields.size() < 4) return false;
  if (!all_of(fields[0], is_token_char)) return false;
  auto port = fields[1];
  auto slash = port.find('/');
  if (!all_of(port.substr(0, slash), is_digit)) return false;
  if (slash != std::string_view::npos && !all_of(port.substr(slash + 1), is_digit)) return false;
  if (!all_of(fields[2], [](char c) { return c == '/' || is_token_char(c); })) return false;
  for (size_t i = 3; i < fields.size(); ++i)
    if (!all_of(fields[i], is_token_char)) return false;
  return true;
}

std::string line_error(const Line &line, std::string_view what) {
  return "SDP line " + std::to_string(line.number) + ": " + std::string(what);
}

// Structural checks that keep Sofia away from its crash and hang paths (see top).
Status lint(const std::vector<Line> &lines) {
  if (lines.empty()) return {Errc::parse, "empty SDP body"};
  if (lines.size() > kMaxSdpLines)
    return {Errc::parse, "SDP has too many lines (" + std::to_string(lines.size()) + ", limit " +
                             std::to_string(kMaxSdpLines) + ")"};
  for (const auto &line : lines) {
    if (line.text.find('\0') != std::string_view::npos)
      return {Errc::parse, line_error(line, "contains a NUL byte")};
  }
  if (lines.front().text != "v=0")
    return {Errc::parse,
            line_error(lines.front(), "expected \"v=0\", got " + quoted(lines.front().text))};
  for (const auto &line : lines) {
    auto t = line.text;
    if (t.size() < 2 || t[1] != '=' || t[0] < 'a' || t[0] > 'z')
      return {Errc::parse, line_error(line, "expected <type>=<value>, got " + quoted(t))};
    if (t[0] == 'm' && !valid_m_line(t.substr(2)))
      return {Errc::parse, line_error(line, "malformed m= line " + quoted(t) +
                                                " (expected m=<media> <port> <proto> <fmt> ...)")};
  }
  return {};
}

ParserPtr sofia_parse(std::string_view text, int flags) {
  // sdp_parse() with no home makes one owned by the parser; sdp_parser_free() releases it.
  return ParserPtr(sdp_parse(nullptr, text.data(), static_cast<issize_t>(text.size()), flags));
}

// Strict: RFC 4566 needs s= and t=, and an rtpmap/fmtp for a payload type the m= line does
// not list is an error. c= is checked by us, only for the stream we use.
constexpr int kParseFlags = sdp_f_strict | sdp_f_c_missing;

// Finds the first line Sofia rejects by parsing growing prefixes (binary search; an error in
// a prefix stays an error in every longer one). Only runs on the error path.
std::optional<size_t> failing_line(std::string_view text, const std::vector<Line> &lines) {
  constexpr int flags = kParseFlags | sdp_f_insane;  // skip whole-message checks
  size_t lo = 0, hi = lines.size();                  // answer in [lo, hi)
  auto fails = [&](size_t k) {
    const auto &l = lines[k];
    auto parser = sofia_parse(text.substr(0, l.offset + l.text.size()), flags);
    return sdp_session(parser.get()) == nullptr;
  };
  if (!fails(hi - 1)) return std::nullopt;
  while (lo < hi - 1) {
    size_t mid = lo + (hi - 1 - lo) / 2;
    if (fails(mid))
      hi = mid + 1;
    else
      lo = mid + 1;
  }
  return lines[lo].number;
}

struct Parsed {
  ParserPtr parser;
  const sdp_session_t *session = nullptr;
};

Result<Parsed> parse(std::string_view text) {
  if (text.size() > kMaxSdpSize)
    return Error{Errc::parse, "SDP body too large (" + std::to_string(text.size()) +
                                  " bytes, limit " + std::to_string(kMaxSdpSize) + ")"};
  auto lines = split_lines(text);
  if (auto st = lint(lines); !st) return st.error();
  Parsed out;
  out.parser = sofia_parse(text, kParseFlags);
  out.session = sdp_session(out.parser.get());
  if (!out.session) {
    std::string why = sanitized(sdp_parsing_error(out.parser.get()));
    if (auto n = failing_line(text, lines))
      return Error{Errc::parse, "SDP line " + std::to_string(*n) + ": " + why};
    return Error{Errc::parse, "SDP rejected: " + why};
  }
  return out;
}

// One payload format of an m= line, in m= order.
struct Format {
  unsigned pt = 0;
  std::string_view encoding;  // empty when neither rtpmap nor static table names it
  unsigned long rate = 0;
  std::string_view params;  // channels for audio
};

bool is_rtp_avp(const sdp_media_t *m) {
  return m->m_proto == sdp_proto_rtp ||
         (m->m_proto_name && text::iequals(m->m_proto_name, "RTP/AVPF"));
}

std::string_view proto_name(const sdp_media_t *m) {
  if (m->m_proto == sdp_proto_rtp) return "RTP/AVP";
  return m->m_proto_name ? std::string_view(m->m_proto_name) : std::string_view("RTP/AVP");
}

std::optional<unsigned> parse_pt(std::string_view s) {
  if (s.empty() || s.size() > 3 || !all_of(s, is_digit)) return std::nullopt;
  unsigned v = 0;
  for (char c : s) v = v * 10 + unsigned(c - '0');
  if (v > 127) return std::nullopt;
  return v;
}

// "<pt> <encoding>/<rate>[/<params>]"
std::optional<Format> parse_rtpmap_value(std::string_view v) {
  auto sp = v.find_first_of(" \t");
  if (sp == std::string_view::npos) return std::nullopt;
  auto pt = parse_pt(v.substr(0, sp));
  if (!pt) return std::nullopt;
  auto enc_start = v.find_first_not_of(" \t", sp);
  if (enc_start == std::string_view::npos) return std::nullopt;
  auto rest = v.substr(enc_start);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  Format f;
  f.pt = *pt;
  f.encoding = rest.substr(0, slash);
  auto rate_and_params = rest.substr(slash + 1);
  auto slash2 = rate_and_params.find('/');
  auto rate = rate_and_params.substr(0, slash2);
  if (rate.empty() || rate.size() > 9 || !all_of(rate, is_digit)) return std::nullopt;
  for (char c : rate) f.rate = f.rate * 10 + unsigned(c - '0');
  if (slash2 != std::string_view::npos) f.params = rate_and_params.substr(slash2 + 1);
  return f;
}

// Sofia 1.12.11 only knows RTP/AVP and RTP/SAVP as RTP: for those it fills m_rtpmaps; for
// RTP/AVPF (an unknown proto to it) the formats stay text and rtpmaps stay attributes.
Result<std::vector<Format>> formats_of(const sdp_media_t *m) {
  std::vector<Format> out;
  if (sdp_media_has_rtp(m)) {
    for (auto *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
      Format f;
      f.pt = rm->rm_pt;
      f.encoding = rm->rm_encoding ? rm->rm_encoding : "";
      f.rate = rm->rm_rate;
      f.params = rm->rm_params ? rm->rm_params : "";
      out.push_back(f);
    }
    return out;
  }
  for (auto *l = m->m_format; l; l = l->l_next) {
    std::string_view text = l->l_text ? l->l_text : "";
    auto pt = parse_pt(text);
    if (!pt) return Error{Errc::parse, "bad RTP payload type " + quoted(text) + " in m=audio line"};
    Format f;
    f.pt = *pt;
    if (auto *wk = sdp_rtpmap_well_known[*pt]) {
      f.encoding = wk->rm_encoding;
      f.rate = wk->rm_rate;
      f.params = wk->rm_params ? wk->rm_params : "";
    }
    out.push_back(f);
  }
  for (auto *a = m->m_attributes; a; a = a->a_next) {
    if (!a->a_name || !text::iequals(a->a_name, "rtpmap")) continue;
    std::string_view value = a->a_value ? a->a_value : "";
    auto map = parse_rtpmap_value(value);
    if (!map) return Error{Errc::parse, "bad a=rtpmap:" + quoted(value)};
    for (auto &f : out) {
      if (f.pt == map->pt) {
        f.encoding = map->encoding;
        f.rate = map->rate;
        f.params = map->params;
      }
    }
  }
  return out;
}

std::optional<media::Codec> codec_of(const Format &f, const LocalMediaCaps &caps) {
  if (f.rate != 8000 || !(f.params.empty() || f.params == "1")) return std::nullopt;
  if (caps.pcmu && text::iequals(f.encoding, "PCMU")) return media::Codec::pcmu;
  if (caps.pcma && text::iequals(f.encoding, "PCMA")) return media::Codec::pcma;
  return std::nullopt;
}

bool is_telephone_event(const Format &f) {
  return f.rate == 8000 && text::iequals(f.encoding, "telephone-event");
}

struct Connection {
  std::string address;
  bool unspecified = false;  // 0.0.0.0 / :: (RFC 2543 hold)
};

Result<Connection> connection_of(const sdp_media_t *m, const sdp_session_t *s) {
  const sdp_connection_t *c = m->m_connections ? m->m_connections : s->sdp_connection;
  if (!c || !c->c_address)
    return Error{Errc::parse, "missing c= connection address for audio stream"};
  std::string_view addr = c->c_address;
  if (c->c_mcast)
    return Error{Errc::unsupported,
                 "multicast connection address " + quoted(addr) + " not supported for audio"};
  int family = c->c_addrtype == sdp_addr_ip6 ? AF_INET6 : AF_INET;
  if (c->c_addrtype != sdp_addr_ip4 && c->c_addrtype != sdp_addr_ip6)
    return Error{Errc::unsupported, "connection address type not IP4/IP6"};
  std::string a(addr);
  unsigned char buf[sizeof(struct in6_addr)];
  if (a.size() > 64 || inet_pton(family, a.c_str(), buf) != 1)
    return Error{Errc::unsupported, "connection address " + quoted(addr) + " is not an " +
                                        (family == AF_INET6 ? "IPv6" : "IPv4") +
                                        " literal (names are not resolved)"};
  Connection out;
  out.address = std::move(a);
  out.unspecified = family == AF_INET
                        ? out.address == "0.0.0.0"
                        : std::all_of(buf, buf + 16, [](unsigned char b) { return b == 0; });
  return out;
}

int ptime_of(const sdp_media_t *m, const sdp_session_t *s) {
  const sdp_attribute_t *a = sdp_attribute_find(m->m_attributes, "ptime");
  if (!a) a = sdp_attribute_find(s->sdp_attributes, "ptime");
  if (!a || !a->a_value) return 20;
  std::string_view v = a->a_value;
  int ms = 0;
  size_t i = 0;
  while (i < v.size() && v[i] == ' ') ++i;
  size_t digits = 0;
  for (; i < v.size() && is_digit(v[i]) && digits < 4; ++i, ++digits) ms = ms * 10 + (v[i] - '0');
  // A ptime outside what G.711 over RTP uses is noise, not a request we can honour.
  return digits > 0 && ms >= 10 && ms <= 200 ? ms : 20;
}

media::Direction mirror(unsigned their_mode) {
  switch (their_mode & sdp_sendrecv) {
    case sdp_sendonly:
      return media::Direction::recvonly;
    case sdp_recvonly:
      return media::Direction::sendonly;
    case sdp_inactive:
      return media::Direction::inactive;
    default:
      return media::Direction::sendrecv;
  }
}

const char *direction_attr(media::Direction d) {
  switch (d) {
    case media::Direction::sendonly:
      return "sendonly";
    case media::Direction::recvonly:
      return "recvonly";
    case media::Direction::inactive:
      return "inactive";
    case media::Direction::sendrecv:
      break;
  }
  return "sendrecv";
}

std::string offered_list(const std::vector<Format> &formats) {
  std::string out;
  for (const auto &f : formats) {
    if (!out.empty()) out += ' ';
    out += std::to_string(f.pt);
  }
  return out;
}

std::string accepted_list(const LocalMediaCaps &caps) {
  std::string out;
  if (caps.pcmu) out += "PCMU/8000";
  if (caps.pcma) out += out.empty() ? "PCMA/8000" : " PCMA/8000";
  return out.empty() ? "none" : out;
}

// Checks of an audio stream that do not depend on codecs: port, transport, connection.
Result<Connection> usable_audio(const sdp_media_t *m, const sdp_session_t *s) {
  if (m->m_port == 0) return Error{Errc::unsupported, "audio port 0 (stream declined)"};
  if (!is_rtp_avp(m))
    return Error{Errc::unsupported, "audio transport " + quoted(proto_name(m)) +
                                        " not supported (only RTP/AVP and RTP/AVPF)"};
  if (m->m_port > 65535)
    return Error{Errc::parse, "audio port " + std::to_string(m->m_port) + " out of range"};
  return connection_of(m, s);
}

Result<Negotiated> negotiate(const sdp_session_t *s, const LocalMediaCaps &caps) {
  std::optional<Error> first_error;
  auto declined = [](const Error &e) { return e.message.starts_with("audio port 0"); };
  auto note = [&](Error e) {
    // A declined stream explains less than a live one we could not use.
    if (!first_error || (declined(*first_error) && !declined(e))) first_error = std::move(e);
  };
  std::string media_seen;
  for (const sdp_media_t *m = s->sdp_media; m; m = m->m_next) {
    if (m->m_type != sdp_media_audio) {
      if (!media_seen.empty()) media_seen += ' ';
      media_seen += m->m_type_name ? m->m_type_name : "?";
      continue;
    }
    auto conn = usable_audio(m, s);
    if (!conn) {
      note(conn.error());
      continue;
    }
    auto formats = formats_of(m);
    if (!formats) {
      note(formats.error());
      continue;
    }
    const Format *codec_fmt = nullptr;
    media::Codec codec = media::Codec::pcmu;
    int te_pt = -1;
    for (const auto &f : *formats) {
      if (!codec_fmt) {
        if (auto c = codec_of(f, caps)) {
          codec_fmt = &f;
          codec = *c;
        }
      }
      if (te_pt < 0 && caps.telephone_event && is_telephone_event(f)) te_pt = int(f.pt);
    }
    if (!codec_fmt) {
      note(Error{Errc::unsupported, "no common codec (offered: " + offered_list(*formats) +
                                        "; accepted: " + accepted_list(caps) + ")"});
      continue;
    }
    Negotiated n;
    unsigned their_mode = m->m_mode;
    if (conn->unspecified) their_mode &= ~unsigned(sdp_recvonly);  // they cannot receive
    n.remote.address = std::move(conn->address);
    n.remote.port = static_cast<uint16_t>(m->m_port);
    n.remote.codec = codec;
    n.remote.payload_type = static_cast<uint8_t>(codec_fmt->pt);
    n.remote.telephone_event_pt = te_pt;
    n.remote.direction = mirror(their_mode);
    n.on_hold = conn->unspecified || (their_mode & sdp_recvonly) == 0;
    n.remote_ptime = ptime_of(m, s);
    return n;
  }
  if (first_error) return *first_error;
  return Error{Errc::unsupported, media_seen.empty()
                                      ? "no audio stream (no m= lines)"
                                      : "no audio stream (media offered: " + media_seen + ")"};
}

bool valid_ip(const std::string &addr, bool *v6) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}

void append_session_header(std::string &out, const LocalMedia &local, bool v6) {
  const char *type = v6 ? "IP6" : "IP4";
  out += "v=0\r\n";
  out += "o=- " + std::to_string(local.session_id) + " " + std::to_string(local.version) + " IN " +
         type + " " + local.address + "\r\n";
  out += "s=-\r\n";
  out += std::string("c=IN ") + type + " " + local.address + "\r\n";
  out += "t=0 0\r\n";
}

void append_codec(std::string &out, media::Codec codec, unsigned pt) {
  out += "a=rtpmap:" + std::to_string(pt) + " " + media::codec_name(codec) + "/8000\r\n";
}

void append_telephone_event(std::string &out, int pt) {
  out += "a=rtpmap:" + std::to_string(pt) + " telephone-event/8000\r\n";
  out += "a=fmtp:" + std::to_string(pt) + " 0-16\r\n";
}

// The declined copy of an offered m= line: port 0, same media, proto and formats.
std::string declined_m_line(const sdp_media_t *m) {
  std::string out = "m=";
  out += m->m_type_name ? m->m_type_name : "unknown";
  out += " 0 ";
  out += proto_name(m);
  if (sdp_media_has_rtp(m)) {
    for (auto *rm = m->m_rtpmaps; rm; rm = rm->rm_next) out += " " + std::to_string(rm->rm_pt);
  } else {
    for (auto *l = m->m_format; l; l = l->l_next)
      if (l->l_text) out += std::string(" ") + l->l_text;
  }
  return out + "\r\n";
}

Result<Negotiated> negotiate_text(std::string_view sdp, const LocalMediaCaps &caps) {
  auto parsed = parse(sdp);
  if (!parsed) return parsed.error();
  return negotiate(parsed->session, caps);
}

}  // namespace

Result<Negotiated> negotiate_offer(std::string_view offer_sdp, const LocalMediaCaps &caps) {
  return negotiate_text(offer_sdp, caps);
}

Result<Negotiated> parse_answer(std::string_view answer_sdp, const LocalMediaCaps &caps) {
  // Same rules: the answer's audio stream must keep one of the codecs we offered (caps), in
  // the answerer's order; its telephone-event pt is the one to send DTMF with.
  return negotiate_text(answer_sdp, caps);
}

Result<std::string> build_answer(std::string_view offer_sdp, const Negotiated &negotiated,
                                 const LocalMedia &local) {
  bool v6 = false;
  if (!valid_ip(local.address, &v6))
    return Error{Errc::invalid_argument,
                 "local RTP address " + quoted(local.address) + " is not an IP literal"};
  if (local.port == 0) return Error{Errc::invalid_argument, "local RTP port is 0"};
  auto parsed = parse(offer_sdp);
  if (!parsed) return parsed.error();
  const auto &remote = negotiated.remote;

  // The chosen stream is the first usable audio stream offering the negotiated codec at its
  // payload type: negotiate() picks the first usable stream with any accepted codec, and the
  // negotiated codec is accepted, so no earlier stream can hold it.
  const sdp_media_t *chosen = nullptr;
  for (const sdp_media_t *m = parsed->session->sdp_media; m && !chosen; m = m->m_next) {
    if (m->m_type != sdp_media_audio || !usable_audio(m, parsed->session)) continue;
    auto formats = formats_of(m);
    if (!formats) continue;
    LocalMediaCaps only;
    only.pcmu = remote.codec == media::Codec::pcmu;
    only.pcma = remote.codec == media::Codec::pcma;
    bool has_codec = false, has_te = remote.telephone_event_pt < 0;
    for (const auto &f : *formats) {
      if (f.pt == remote.payload_type && codec_of(f, only)) has_codec = true;
      if (int(f.pt) == remote.telephone_event_pt && is_telephone_event(f)) has_te = true;
    }
    if (has_codec && has_te) chosen = m;
  }
  if (!chosen)
    return Error{Errc::invalid_argument,
                 "offer has no usable audio stream with the negotiated codec " +
                     std::string(media::codec_name(remote.codec)) + " (pt " +
                     std::to_string(remote.payload_type) + ")" +
                     (remote.telephone_event_pt >= 0
                          ? " and telephone-event pt " + std::to_string(remote.telephone_event_pt)
                          : "")};

  std::string out;
  append_session_header(out, local, v6);
  for (const sdp_media_t *m = parsed->session->sdp_media; m; m = m->m_next) {
    if (m != chosen) {
      out += declined_m_line(m);
      continue;
    }
    out += "m=audio " + std::to_string(local.port) + " " + std::string(proto_name(m)) + " " +
           std::to_string(remote.payload_type);
    if (remote.telephone_event_pt >= 0) out += " " + std::to_string(remote.telephone_event_pt);
    out += "\r\n";
    append_codec(out, remote.codec, remote.payload_type);
    if (remote.telephone_event_pt >= 0) append_telephone_event(out, remote.telephone_event_pt);
    out += "a=ptime:" + std::to_string(kOurPtime) + "\r\n";
    out += std::string("a=") + direction_attr(remote.direction) + "\r\n";
  }
  return out;
}

std::string build_offer(const LocalMediaCaps &caps, const LocalMedia &local) {
  bool v6 = local.address.find(':') != std::string::npos;
  std::string out;
  append_session_header(out, local, v6);
  // An m= line needs a format: with no codec enabled PCMU (the G.711 baseline) is offered,
  // and parse_answer() with the same caps then reports "no common codec".
  bool pcmu = caps.pcmu || !caps.pcma;
  out += "m=audio " + std::to_string(local.port) + " RTP/AVP";
  if (pcmu) out += " 0";
  if (caps.pcma) out += " 8";
  if (caps.telephone_event) out += " " + std::to_string(kOfferTelephoneEventPt);
  out += "\r\n";
  if (pcmu) append_codec(out, media::Codec::pcmu, 0);
  if (caps.pcma) append_codec(out, media::Codec::pcma, 8);
  if (caps.telephone_event) append_telephone_event(out, kOfferTelephoneEventPt);
  out += "a=ptime:" + std::to_string(kOurPtime) + "\r\n";
  out += "a=sendrecv\r\n";
  return out;
}

}  // namespace ivr::sip
