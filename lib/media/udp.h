// Small UDP helpers for the media runtime: an owning file descriptor and a socket address
// parsed from an IP literal (never a host name: media must not resolve names).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ivr::media {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
  UniqueFd &operator=(UniqueFd &&other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  // Parses an IPv4 or IPv6 literal (IPv6 may carry a %scope). No name resolution.
  static std::optional<SockAddr> parse(const std::string &ip, uint16_t port);
  static SockAddr from(const sockaddr *addr, socklen_t length);

  bool empty() const { return length == 0; }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // 0.0.0.0 / :: (hold in old-style SDP).
  bool is_unspecified() const;
  // An IPv4 address as ::ffff:a.b.c.d so a dual-stack IPv6 socket can reach it.
  SockAddr to_v4_mapped() const;
  // "1.2.3.4:5000" or "[::1]:5000".
  std::string to_string() const;

  bool operator==(const SockAddr &other) const;
};

}  // namespace ivr::media
