#include "sip/sofia_message.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/msg_protos.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_string.h>

#include <cstdio>

namespace ivr::sip::sofia {

namespace {

// Sofia's encoders behave like snprintf: they return the length they need.
template <typename Encode>
std::string encode(Encode &&fn) {
  std::string out(256, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    issize_t n = fn(out.data(), static_cast<isize_t>(out.size()));
    if (n < 0) return {};
    if (static_cast<size_t>(n) < out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.assign(static_cast<size_t>(n) + 1, '\0');
  }
  return {};
}

}  // namespace

std::string header_value(const msg_header_t *header) {
  if (!header) return {};
  return encode([header](char *b, isize_t n) { return msg_header_field_e(b, n, header, 0); });
}

std::vector<SipHeader> all_headers(msg_t *msg) {
  std::vector<SipHeader> out;
  msg_header_t **head = msg ? msg_chain_head(msg) : nullptr;
  if (!head) return out;
  for (msg_header_t *h = *head; h; h = h->sh_succ) {
    const msg_hclass_t *hc = h->sh_class;
    if (!hc) continue;
    switch (hc->hc_hash) {
      case msg_request_hash:
      case msg_status_hash:
      case msg_separator_hash:
      case msg_payload_hash:
        continue;
      case msg_error_hash:
        // An unparsable header line: Sofia keeps no value for it.
        continue;
      case msg_unknown_hash: {
        const msg_unknown_t *un = reinterpret_cast<const msg_unknown_t *>(h);
        out.push_back({un->un_name ? un->un_name : "", un->un_value ? un->un_value : ""});
        continue;
      }
      default:
        if (!hc->hc_name) continue;
        out.push_back({hc->hc_name, header_value(h)});
    }
  }
  return out;
}

std::string url_string(const url_t *url) {
  if (!url) return {};
  return encode([url](char *b, isize_t n) { return url_e(b, n, url); });
}

std::string url_user(const url_t *url) {
  if (!url) return {};
  if (url->url_type == url_tel) return url->url_host ? url->url_host : "";
  return url->url_user ? url->url_user : "";
}

std::string source_address(msg_t *msg) {
  if (!msg) return {};
  su_sockaddr_t su{};
  socklen_t len = sizeof su;
  if (msg_get_address(msg, &su, &len) < 0) return {};
  char ip[64] = "";
  const void *addr = nullptr;
  if (su.su_family == AF_INET)
    addr = &su.su_sin.sin_addr;
  else if (su.su_family == AF_INET6)
    addr = &su.su_sin6.sin6_addr;
  else
    return {};
  if (!su_inet_ntop(su.su_family, addr, ip, sizeof ip)) return {};
  unsigned port = ntohs(su.su_port);
  char buf[96];
  if (su.su_family == AF_INET6)
    std::snprintf(buf, sizeof buf, "[%s]:%u", ip, port);
  else
    std::snprintf(buf, sizeof buf, "%s:%u", ip, port);
  return buf;
}

std::string_view body(const sip_t *sip) {
  if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data) return {};
  return {sip->sip_payload->pl_data, static_cast<size_t>(sip->sip_payload->pl_len)};
}

std::string content_type(const sip_t *sip) {
  if (!sip || !sip->sip_content_type || !sip->sip_content_type->c_type) return {};
  return sip->sip_content_type->c_type;
}

bool sdp_body(const sip_t *sip, std::string &out) {
  out.clear();
  if (!sip || !sip->sip_content_type || !sip->sip_content_type->c_type) return false;
  if (!su_casematch(sip->sip_content_type->c_type, "application/sdp")) return false;
  std::string_view b = body(sip);
  if (b.empty()) return false;
  out.assign(b);
  return true;
}

std::string quoted_text(std::string_view text) {
  constexpr size_t kMax = 200;
  std::string out;
  out.reserve(text.size() < kMax ? text.size() : kMax);
  for (char c : text) {
    if (out.size() >= kMax) break;
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += ' ';  // CR/LF would end the header line
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::string reason_header(const char *protocol, int cause, std::string_view text) {
  std::string out = protocol;
  out += ";cause=";
  out += std::to_string(cause);
  if (!text.empty()) {
    out += ";text=\"";
    out += quoted_text(text);
    out += '"';
  }
  return out;
}

}  // namespace ivr::sip::sofia
