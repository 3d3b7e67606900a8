#include "media/port_allocator.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace ivr::media {

Result<PortAllocator> PortAllocator::create(const std::string &address, uint16_t port_min,
                                            uint16_t port_max) {
  auto local = SockAddr::parse(address, 0);
  if (!local)
    return Error{Errc::invalid_argument,
                 "rtp_address: '" + address + "' is not an IPv4 or IPv6 literal"};
  // Built with append: GCC 12 at -O2 warns a false -Wrestrict on "literal" + std::string.
  std::string range = "[";
  range.append(std::to_string(port_min)).append(", ").append(std::to_string(port_max)).append("]");
  if (port_min == 0 || port_min > port_max)
    return Error{Errc::invalid_argument, "RTP port range " + range + " is empty or starts at 0"};
  uint32_t first = port_min + (port_min & 1u);
  // A pair needs first..first+1 inside the range.
  if (first + 1 > port_max)
    return Error{Errc::invalid_argument,
                 "RTP port range " + range + " holds no even RTP port with RTCP on port + 1"};
  PortAllocator out;
  out.local_ = *local;
  out.address_ = address;
  out.port_min_ = port_min;
  out.port_max_ = port_max;
  out.first_ = static_cast<uint16_t>(first);
  out.pairs_ = (static_cast<uint32_t>(port_max) - first + 1) / 2;
  // Start somewhere random so a restarted process does not reuse the ports (and receive the
  // late packets) of the calls it just had.
  out.cursor_ = std::random_device{}() % out.pairs_;
  return out;
}

PortAllocator::PortAllocator(PortAllocator &&other) noexcept
    : local_(other.local_),
      address_(std::move(other.address_)),
      port_min_(other.port_min_),
      port_max_(other.port_max_),
      first_(other.first_),
      pairs_(other.pairs_),
      cursor_(other.cursor_) {}

Result<UniqueFd> PortAllocator::bind_one(uint16_t port, bool *in_use) const {
  *in_use = false;
  UniqueFd fd(::socket(local_.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{Errc::io, std::string("RTP socket(): ") + std::strerror(errno)};
  SockAddr addr = local_;
  if (addr.family() == AF_INET)
    reinterpret_cast<sockaddr_in *>(&addr.storage)->sin_port = htons(port);
  else
    reinterpret_cast<sockaddr_in6 *>(&addr.storage)->sin6_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr *>(&addr.storage), addr.length) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      *in_use = true;
      return Error{Errc::busy, "in use"};
    }
    return Error{Errc::io,
                 "cannot bind RTP socket on " + addr.to_string() + ": " + std::strerror(err)};
  }
  return fd;
}

Result<PortPair> PortAllocator::allocate() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (uint32_t tried = 0; tried < pairs_; ++tried) {
    uint32_t index = cursor_;
    cursor_ = (cursor_ + 1) % pairs_;
    auto port = static_cast<uint16_t>(first_ + 2 * index);
    bool in_use = false;
    auto rtp = bind_one(port, &in_use);
    if (!rtp) {
      if (in_use) continue;
      return rtp.error();
    }
    auto rtcp = bind_one(static_cast<uint16_t>(port + 1), &in_use);
    if (!rtcp) {
      if (in_use) continue;  // rtp closes here; try the next pair
      return rtcp.error();
    }
    PortPair pair;
    pair.rtp_port = port;
    pair.rtp = std::move(rtp.value());
    pair.rtcp = std::move(rtcp.value());
    return pair;
  }
  return Error{Errc::busy, "no free RTP port pair in [" + std::to_string(port_min_) + ", " +
                               std::to_string(port_max_) + "] on " + address_};
}

}  // namespace ivr::media
