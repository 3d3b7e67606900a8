// RTP/RTCP port pairs from a configured range: even RTP port, RTCP on port + 1.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "common/result.h"
#include "media/udp.h"

namespace ivr::media {

struct PortPair {
  uint16_t rtp_port = 0;  // RTCP is rtp_port + 1
  UniqueFd rtp;
  UniqueFd rtcp;
};

// Thread-safe. The kernel is the only record of which ports are taken: a pair is free when
// both binds succeed (SO_REUSEADDR is never set, so a port held by anyone, this process
// included, fails with EADDRINUSE and is skipped). A shared cursor walks the range so a
// port just released is not handed out again at once.
class PortAllocator {
 public:
  // Checks the address literal and that the range holds at least one pair.
  static Result<PortAllocator> create(const std::string &address, uint16_t port_min,
                                      uint16_t port_max);

  PortAllocator(PortAllocator &&other) noexcept;
  PortAllocator(const PortAllocator &) = delete;
  PortAllocator &operator=(const PortAllocator &) = delete;

  // Binds a non-blocking pair; Errc::busy when every pair of the range is in use, Errc::io
  // for any other bind failure (named with address, port and reason).
  Result<PortPair> allocate();

  const SockAddr &local() const { return local_; }

 private:
  PortAllocator() = default;
  Result<UniqueFd> bind_one(uint16_t port, bool *in_use) const;

  SockAddr local_;
  std::string address_;
  uint16_t port_min_ = 0, port_max_ = 0;
  uint16_t first_ = 0;  // first even port of the range
  uint32_t pairs_ = 0;  // how many pairs fit in the range
  std::mutex mutex_;
  uint32_t cursor_ = 0;  // guarded by mutex_: next pair index to try
};

}  // namespace ivr::media
