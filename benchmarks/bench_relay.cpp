// Benchmark for the B2BUA media relay (MediaEngine::bridge): N bridged pairs of sessions on
// loopback. A sender thread pushes one 20 ms PCMU packet per pair every 20 ms (paced from
// the monotonic clock) from a "caller" socket into each pair's first leg; the engine relays
// it out of the second leg to a "dialing system" socket, which a receiver thread drains
// (epoll + recvmmsg). With --both-ways the dialing-system sockets send too and the callers
// receive. Measured over a window after a warm-up: the CPU time of the engine's media
// threads (/proc/self/task/<tid>/schedstat of the threads named "ivr-media-*"), per relayed
// packet and as a share of one core, their run-queue wait, and packets lost (sent by the
// bench, never received) over the whole run. Self-contained, no benchmark library.
//
//   bench-relay [--pairs N] [--seconds S] [--warmup S] [--threads T] [--both-ways]
//               [--transcode] [--port-min P]
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "media/media_engine.h"

namespace {

using ivr::media::Codec;
using ivr::media::MediaEngine;
using ivr::media::MediaStats;
using ivr::media::RemoteMedia;
using ivr::media::SessionId;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string &why) {
  std::fprintf(stderr, "bench-relay: %s\n", why.c_str());
  std::exit(1);
}

struct Options {
  unsigned pairs = 500;
  double seconds = 10;
  double warmup = 2;
  unsigned threads = 1;
  bool both_ways = false;
  bool transcode = false;  // the dialing-system leg negotiates PCMA
  unsigned port_min = 30000;
};

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char * {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench-relay [--pairs N] [--seconds S] [--warmup S] [--threads T] [--both-ways]\n"
          "                   [--transcode] [--port-min P]\n"
          "  --pairs N     bridged session pairs (default 500; 2 legs each)\n"
          "  --seconds S   measured window (default 10), after --warmup S (default 2)\n"
          "  --threads T   media threads (default 1)\n"
          "  --both-ways   the dialing-system side sends too (default: caller -> far only)\n"
          "  --transcode   the far leg negotiates PCMA (PCMU <-> PCMA on every packet)\n"
          "  --port-min P  first RTP port of the engine's range (default 30000)\n");
      std::exit(0);
    }
    if (a == "--pairs") {
      o.pairs = static_cast<unsigned>(std::atoi(value()));
    } else if (a == "--seconds") {
      o.seconds = std::atof(value());
    } else if (a == "--warmup") {
      o.warmup = std::atof(value());
    } else if (a == "--threads") {
      o.threads = static_cast<unsigned>(std::atoi(value()));
    } else if (a == "--port-min") {
      o.port_min = static_cast<unsigned>(std::atoi(value()));
    } else if (a == "--both-ways") {
      o.both_ways = true;
    } else if (a == "--transcode") {
      o.transcode = true;
    } else {
      die("unknown option " + a +
          " (--pairs N --seconds S --warmup S --threads T --both-ways --transcode --port-min P)");
    }
  }
  if (o.pairs == 0 || o.seconds <= 0 || o.threads == 0) die("bad --pairs, --seconds or --threads");
  return o;
}

// A thread's scheduler account: time on a CPU and time runnable but waiting for one.
struct SchedStat {
  int64_t cpu_ns = 0, wait_ns = 0;
};

SchedStat sched_stat(const std::string &tid) {
  SchedStat s;
  std::ifstream in("/proc/self/task/" + tid + "/schedstat");
  in >> s.cpu_ns >> s.wait_ns;
  return s;
}

// The engine's media threads, by the name MediaThread gives them.
std::vector<std::string> media_threads() {
  std::vector<std::string> tids;
  DIR *dir = opendir("/proc/self/task");
  if (!dir) die("cannot list /proc/self/task");
  while (dirent *e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("ivr-media-", 0) == 0) tids.emplace_back(e->d_name);
  }
  closedir(dir);
  return tids;
}

SchedStat media_cpu(const std::vector<std::string> &tids) {
  SchedStat sum;
  for (const auto &t : tids) {
    const SchedStat s = sched_stat(t);
    sum.cpu_ns += s.cpu_ns;
    sum.wait_ns += s.wait_ns;
  }
  return sum;
}

int udp_socket(uint16_t *port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0)
    die(std::string("bind: ") + std::strerror(errno));
  *port = ntohs(a.sin_port);
  return fd;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

struct Stream {  // one sending socket and where it sends
  int fd = -1;
  sockaddr_in to{};
  uint16_t seq = 0;
  uint32_t ts = 0;
  uint32_t ssrc = 0;
  uint8_t pt = 0;
};

}  // namespace

int main(int argc, char **argv) {
  const Options opt = parse(argc, argv);
  const unsigned legs = 2 * opt.pairs;

  // Each leg holds two sockets (RTP + RTCP), plus the bench's own socket per leg.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < 3 * legs + 64)
    die("RLIMIT_NOFILE too low for " + std::to_string(legs) + " legs");

  std::atomic<uint64_t> events{0};
  MediaEngine::Options eo;
  eo.rtp_address = "127.0.0.1";
  eo.port_min = static_cast<uint16_t>(opt.port_min);
  eo.port_max = static_cast<uint16_t>(std::min(65535u, opt.port_min + 4 * legs + 1000));
  eo.threads = opt.threads;
  eo.logger = ivr::make_stderr_logger(ivr::LogLevel::warn);
  eo.sink = [&](ivr::media::MediaEvent &&) { events.fetch_add(1, std::memory_order_relaxed); };
  auto created = MediaEngine::create(eo);
  if (!created) die(created.error().message);
  std::unique_ptr<MediaEngine> engine = std::move(created.value());

  const Codec codec_b = opt.transcode ? Codec::pcma : Codec::pcmu;
  std::vector<Stream> to_a(opt.pairs), to_b(opt.pairs);  // caller -> a, dialing system -> b
  std::vector<int> caller_fds, dialer_fds;
  for (unsigned k = 0; k < opt.pairs; ++k) {
    const SessionId a = 2 * k + 1, b = 2 * k + 2;
    auto pa = engine->open_session(a);
    if (!pa) die(pa.error().message);
    auto pb = engine->open_session(b, a);
    if (!pb) die(pb.error().message);
    uint16_t caller_port = 0, dialer_port = 0;
    const int caller = udp_socket(&caller_port), dialer = udp_socket(&dialer_port);
    caller_fds.push_back(caller);
    dialer_fds.push_back(dialer);
    RemoteMedia ra;
    ra.address = "127.0.0.1";
    ra.port = caller_port;
    ra.telephone_event_pt = 101;
    RemoteMedia rb = ra;
    rb.port = dialer_port;
    rb.codec = codec_b;
    rb.payload_type = static_cast<uint8_t>(codec_b);
    engine->set_remote(a, ra);
    engine->set_remote(b, rb);
    if (auto st = engine->bridge(a, b); !st) die(st.error().message);
    to_a[k] = Stream{caller, loopback(*pa), static_cast<uint16_t>(k * 7), k * 1000, 0x10000 + k, 0};
    to_b[k] = Stream{dialer,   loopback(*pb), static_cast<uint16_t>(k * 11),
                     k * 3000, 0x20000 + k,   static_cast<uint8_t>(codec_b)};
  }

  // Receiver: every socket that can get relayed packets (and the comfort frames sent before
  // the bridges started, which the count below skips).
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  auto watch = [&](int fd, bool counted) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (static_cast<uint64_t>(counted) << 32) | static_cast<uint32_t>(fd);
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  for (int fd : dialer_fds) watch(fd, true);
  for (int fd : caller_fds) watch(fd, true);
  std::atomic<bool> counting{false}, stop_rx{false}, stop_tx{false};
  std::atomic<uint64_t> received{0}, sent{0}, uncounted{0};
  std::thread rx([&] {
    constexpr int kBatch = 16;
    uint8_t bufs[kBatch][256];
    iovec iov[kBatch];
    mmsghdr msgs[kBatch];
    epoll_event evs[256];
    while (!stop_rx.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(ep, evs, 256, 50);
      for (int i = 0; i < n; ++i) {
        const int fd = static_cast<int>(evs[i].data.u64 & 0xFFFFFFFFu);
        for (;;) {
          for (int m = 0; m < kBatch; ++m) {
            iov[m] = {bufs[m], sizeof bufs[m]};
            msgs[m] = mmsghdr{};
            msgs[m].msg_hdr.msg_iov = &iov[m];
            msgs[m].msg_hdr.msg_iovlen = 1;
          }
          const int got = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
          if (got <= 0) break;
          (counting.load(std::memory_order_relaxed) ? received : uncounted)
              .fetch_add(static_cast<uint64_t>(got), std::memory_order_relaxed);
          if (got < kBatch) break;
        }
      }
    }
  });

  // Let the bridges start and the comfort frames sent before them arrive, then count.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  counting = true;

  std::thread tx([&] {
    uint8_t packet[12 + 160];
    std::memset(packet + 12, 0xFF, 160);  // PCMU silence: content does not matter here
    auto send = [&](Stream &s) {
      packet[0] = 0x80;
      packet[1] = s.pt;
      packet[2] = static_cast<uint8_t>(s.seq >> 8);
      packet[3] = static_cast<uint8_t>(s.seq);
      for (int i = 0; i < 4; ++i) {
        packet[4 + i] = static_cast<uint8_t>(s.ts >> (24 - 8 * i));
        packet[8 + i] = static_cast<uint8_t>(s.ssrc >> (24 - 8 * i));
      }
      if (::sendto(s.fd, packet, sizeof packet, 0, reinterpret_cast<sockaddr *>(&s.to),
                   sizeof s.to) == static_cast<ssize_t>(sizeof packet))
        sent.fetch_add(1, std::memory_order_relaxed);
      ++s.seq;
      s.ts += 160;
    };
    auto next = Clock::now();
    while (!stop_tx.load(std::memory_order_relaxed)) {
      for (unsigned k = 0; k < opt.pairs; ++k) {
        send(to_a[k]);
        if (opt.both_ways) send(to_b[k]);
      }
      next += std::chrono::milliseconds(20);
      std::this_thread::sleep_until(next);
    }
  });

  const auto tids = media_threads();
  if (tids.size() != opt.threads) die("found " + std::to_string(tids.size()) + " media threads");
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.warmup));
  const auto t0 = Clock::now();
  const SchedStat c0 = media_cpu(tids);
  const MediaStats s0 = engine->stats();
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
  const auto t1 = Clock::now();
  const SchedStat c1 = media_cpu(tids);
  const MediaStats s1 = engine->stats();
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);

  stop_tx = true;
  tx.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // in-flight packets land
  stop_rx = true;
  rx.join();
  const MediaStats s2 = engine->stats();

  const double wall_s = std::chrono::duration<double>(t1 - t0).count();
  const double cpu_s = static_cast<double>(c1.cpu_ns - c0.cpu_ns) / 1e9;
  const double wait_s = static_cast<double>(c1.wait_ns - c0.wait_ns) / 1e9;
  const uint64_t relayed = s1.packets_relayed - s0.packets_relayed;
  auto tv = [](const timeval &t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  const double proc_cpu_s =
      tv(ru1.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_utime) - tv(ru0.ru_stime);
  const uint64_t lost = sent.load() > received.load() ? sent.load() - received.load() : 0;

  std::printf("bench-relay: %u pairs (%u legs), %u media thread(s), %s, %s\n", opt.pairs, legs,
              opt.threads, opt.both_ways ? "both ways" : "caller -> dialing system only",
              opt.transcode ? "PCMU -> PCMA transcoded" : "PCMU both legs");
  std::printf("window                 %.2f s (after %.1f s warm-up)\n", wall_s, opt.warmup);
  std::printf("relayed                %llu packets, %.0f packets/s\n",
              static_cast<unsigned long long>(relayed), static_cast<double>(relayed) / wall_s);
  std::printf("media threads CPU      %.3f s = %.1f %% of one core\n", cpu_s,
              100.0 * cpu_s / wall_s);
  std::printf("CPU per relayed packet %.2f us\n", relayed ? cpu_s * 1e6 / relayed : 0.0);
  std::printf("media run-queue wait   %.3f s (runnable, waiting for a core)\n", wait_s);
  std::printf("whole process CPU      %.1f %% of one core (sender and receiver included)\n",
              100.0 * proc_cpu_s / wall_s);
  std::printf(
      "whole run              sent %llu, received %llu, lost %llu (%.4f %%)\n",
      static_cast<unsigned long long>(sent.load()),
      static_cast<unsigned long long>(received.load()), static_cast<unsigned long long>(lost),
      sent.load() ? 100.0 * static_cast<double>(lost) / static_cast<double>(sent.load()) : 0.0);
  std::printf(
      "engine                 relayed %llu, dropped %llu, foreign %llu, bad %llu, events %llu\n",
      static_cast<unsigned long long>(s2.packets_relayed),
      static_cast<unsigned long long>(s2.packets_dropped),
      static_cast<unsigned long long>(s2.foreign_packets),
      static_cast<unsigned long long>(s2.bad_packets),
      static_cast<unsigned long long>(events.load()));

  engine.reset();
  for (int fd : caller_fds) ::close(fd);
  for (int fd : dialer_fds) ::close(fd);
  ::close(ep);
  return 0;
}
