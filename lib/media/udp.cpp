#include "media/udp.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cstring>

namespace ivr::media {

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::optional<SockAddr> SockAddr::parse(const std::string &ip, uint16_t port) {
  if (ip.empty()) return std::nullopt;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // literals only: never blocks on DNS
  addrinfo *res = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(ip.c_str(), service.c_str(), &hints, &res) != 0 || !res) return std::nullopt;
  SockAddr out = from(res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return out;
}

SockAddr SockAddr::from(const sockaddr *addr, socklen_t length) {
  SockAddr out;
  if (length > sizeof out.storage) length = sizeof out.storage;
  std::memcpy(&out.storage, addr, length);
  out.length = length;
  return out;
}

uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in *>(&storage)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_port);
  return 0;
}

bool SockAddr::is_unspecified() const {
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in *>(&storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_addr);
  return true;
}

SockAddr SockAddr::to_v4_mapped() const {
  if (family() != AF_INET) return *this;
  const auto *v4 = reinterpret_cast<const sockaddr_in *>(&storage);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = v4->sin_port;
  v6.sin6_addr.s6_addr[10] = 0xff;
  v6.sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(&v6.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
  return from(reinterpret_cast<const sockaddr *>(&v6), sizeof v6);
}

std::string SockAddr::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&storage)->sin_addr, host,
              sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_addr, host,
              sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(port());
  }
  return "(none)";
}

bool SockAddr::operator==(const SockAddr &other) const {
  if (family() != other.family()) return false;
  if (family() == AF_INET) {
    const auto *a = reinterpret_cast<const sockaddr_in *>(&storage);
    const auto *b = reinterpret_cast<const sockaddr_in *>(&other.storage);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    const auto *a = reinterpret_cast<const sockaddr_in6 *>(&storage);
    const auto *b = reinterpret_cast<const sockaddr_in6 *>(&other.storage);
    return a->sin6_port == b->sin6_port &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0 &&
           a->sin6_scope_id == b->sin6_scope_id;
  }
  return length == 0 && other.length == 0;
}

}  // namespace ivr::media
