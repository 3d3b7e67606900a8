// Loopback ports for tests that start SIPp peers: a socket bound by the kernel's choice,
// a port free right now, and a pair for SIPp's media (-mp binds port and port + 2).
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace ivr::test {

// Binds a loopback socket (port 0: any); returns the fd, or -1.
inline int bind_loopback(int type, uint16_t port, uint16_t *bound) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  if (bound) *bound = ntohs(a.sin_port);
  return fd;
}

// A port the kernel just handed out on loopback. SIPp binds with SO_REUSEADDR, so two SIPp
// processes left on their default port (5060) would steal each other's datagrams.
inline uint16_t free_port(int type = SOCK_DGRAM) {
  uint16_t port = 0;
  int fd = bind_loopback(type, 0, &port);
  REQUIRE(fd >= 0);
  ::close(fd);
  return port;
}

// SIPp's -mp: it binds the port and port + 2 (audio and video RTP) and gives up if either
// is taken, which happens on a machine running other RTP tests.
inline uint16_t free_media_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    uint16_t port = 0;
    int a = bind_loopback(SOCK_DGRAM, 0, &port);
    if (a < 0 || port > 65000) {
      if (a >= 0) ::close(a);
      continue;
    }
    int b = bind_loopback(SOCK_DGRAM, static_cast<uint16_t>(port + 2), nullptr);
    ::close(a);
    if (b >= 0) {
      ::close(b);
      return port;
    }
  }
  FAIL("no free UDP port pair for SIPp's media");
  return 0;
}

}  // namespace ivr::test
