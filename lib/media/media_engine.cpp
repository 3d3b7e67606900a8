// Media runtime: threading and pacing model.
//
// Threads. MediaEngine::create starts Options::threads media threads; each owns one
// libevent event_base and every session sharded to it (thread = session id % threads, or
// the thread of the session named by open_session's colocate_with; the engine keeps the
// id -> thread map and routes every command of a session to its thread, so commands for
// one session, and for two colocated ones, run in the order they were posted).
// A session's state (sockets, latch, playback, DTMF decoders) is touched only by its
// thread. Public methods may be called from any thread: they validate what they can, then
// post a Command to the owning thread's queue (mutex + vector swap) and wake the loop with
// event_active() on a persistent, never-added event (evthread_use_pthreads() is called once
// before the first base). Only open_session does real work on the caller's thread: it binds
// the RTP/RTCP pair synchronously so the port can go into the SDP answer at once; the bound
// sockets travel to the media thread inside the open command. close_session marks the
// session closed (an atomic flag the session checks before every event, so nothing is
// reported after close_session returns) and posts the close; the media thread frees its
// events and closes the sockets. Nothing on a media thread blocks: sockets are
// non-blocking, reads are bounded per wake-up (level-triggered, the rest comes next
// round), the only lock is the queue's, and the event sink must only hand events over.
// The destructor posts a quit to each thread, joins it and then closes every socket.
//
// Pacing. One persistent 10 ms timer per media thread (armed only while it has sessions)
// walks every session of the thread: no timer per call. Each session keeps next_send_ns on
// CLOCK_MONOTONIC and sends every 20 ms frame that is due, advancing next_send_ns by exactly
// 20 ms per frame, so the long-run rate never drifts whatever the timer jitter (frames
// leave up to one tick late). If a session is more than 100 ms behind (the process was
// stalled) it resyncs: skipped slots are not burst at the peer, the RTP timestamp jumps
// by the skipped time, and late_ticks counts the event. Sequence +1 and timestamp +160 per
// frame sent; the timestamp also advances while not sending (hold), and the first packet
// after a pause carries the marker bit.
//
// Receive. One EV_READ|EV_PERSIST event per RTP socket drains it with recvmmsg; RTCP
// (port + 1, or multiplexed) is read and counted only. Symmetric RTP latches to the first
// valid packet's source; a changed SDP address resets the latch.
//
// Relay (bridge). Two bridged sessions share a thread and point at each other. When one
// accepts a packet (the path that feeds packet_tap and DTMF detection) the other sends it at
// once from its own socket to its own remote: its SSRC, its next sequence number, the
// source timestamp plus an offset fixed at the first packet of each source SSRC (so the
// first one continues the sender's paced timeline and gaps carry over), the marker on the
// first packet; audio in its payload type (PCMU <-> PCMA through a code-to-code table),
// telephone-events in its telephone-event type or dropped. No allocation: the packet is
// built on the stack. A bridged session's pacing sends nothing; unbridging resyncs its
// next_send to now with the timestamp advanced by the time elapsed since the last relayed
// audio. The engine's map holds who is bridged with whom, so bridge() answers at once; the
// media thread bridges and ends both sides together (also on close), so a peer pointer
// never outlives its session.

#include "media/media_engine.h"

#include <event2/thread.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "media/media_thread.h"
#include "media/port_allocator.h"

namespace ivr::media {

namespace {

constexpr unsigned kMaxThreads = 64;

class MediaEngineImpl final : public MediaEngine {
 public:
  MediaEngineImpl(Options options, PortAllocator ports)
      : options_(std::move(options)), ports_(std::move(ports)) {}

  ~MediaEngineImpl() override {
    for (auto &t : threads_) t->stop();
    threads_.clear();  // sessions and their sockets close here, loops no longer running
  }

  Status start() {
    for (unsigned i = 0; i < options_.threads; ++i) {
      threads_.push_back(std::make_unique<MediaThread>(options_, ports_.local().family(), i));
      if (auto st = threads_.back()->start(); !st) return st;
    }
    return Status::success();
  }

  Result<uint16_t> open_session(SessionId id, SessionId colocate_with = 0) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sessions_.count(id))
      return Error{Errc::bad_state, "media session " + std::to_string(id) + " is already open"};
    auto thread = static_cast<unsigned>(id % threads_.size());
    if (colocate_with != 0) {
      auto it = sessions_.find(colocate_with);
      if (it == sessions_.end())
        return Error{Errc::not_found, "media session " + std::to_string(id) +
                                          ": colocate_with session " +
                                          std::to_string(colocate_with) + " is not open"};
      thread = it->second.thread;
    }
    auto pair = ports_.allocate();
    if (!pair) return pair.error();
    auto closed = std::make_shared<std::atomic<bool>>(false);
    sessions_.emplace(id, Entry{closed, thread, false, 0});
    const uint16_t port = pair->rtp_port;
    Command c;
    c.op = Command::Op::open;
    c.id = id;
    c.ports = std::move(pair.value());
    c.closed = std::move(closed);
    threads_[thread]->post(std::move(c));
    return port;
  }

  void set_remote(SessionId id, const RemoteMedia &remote) override {
    Command c;
    c.op = Command::Op::set_remote;
    c.id = id;
    c.remote = remote;
    // Parsed here, off the media thread; an unusable address means "do not send".
    if (auto addr = SockAddr::parse(remote.address, remote.port)) {
      c.sdp = *addr;
    } else {
      IVR_LOG(options_.logger, warn, "media",
              "session %llu: remote address '%s' is not an IP literal; not sending",
              static_cast<unsigned long long>(id), remote.address.c_str());
    }
    post(std::move(c));
  }

  void play(SessionId id, std::shared_ptr<const Prompt> prompt, uint64_t playback_id) override {
    Command c;
    c.op = Command::Op::play;
    c.id = id;
    c.prompt = std::move(prompt);
    c.playback_id = playback_id;
    post(std::move(c));
  }

  void stop_playback(SessionId id) override {
    Command c;
    c.op = Command::Op::stop_playback;
    c.id = id;
    post(std::move(c));
  }

  void set_rtp_timeout(SessionId id, uint32_t ms) override {
    Command c;
    c.op = Command::Op::set_timeout;
    c.id = id;
    c.timeout_ms = ms;
    post(std::move(c));
  }

  void set_inband_dtmf(SessionId id, bool enabled) override {
    Command c;
    c.op = Command::Op::set_inband;
    c.id = id;
    c.enabled = enabled;
    post(std::move(c));
  }

  void close_session(SessionId id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    it->second.closed->store(true, std::memory_order_release);
    const unsigned thread = it->second.thread;
    if (it->second.bridged) clear_bridge(it->second.peer);  // the media thread ends its side
    sessions_.erase(it);
    Command c;
    c.op = Command::Op::close;
    c.id = id;
    threads_[thread]->post(std::move(c));
  }

  Status bridge(SessionId a, SessionId b) override {
    if (a == b)
      return Status{Errc::invalid_argument,
                    "bridge: session " + std::to_string(a) + " cannot be bridged with itself"};
    // Checked and posted under the lock, so the map and the thread's queue see bridges,
    // unbridges and closes in the same order.
    std::lock_guard<std::mutex> lock(mutex_);
    auto ia = sessions_.find(a);
    auto ib = sessions_.find(b);
    if (ia == sessions_.end() || ib == sessions_.end())
      return Status{Errc::not_found, "bridge: media session " +
                                         std::to_string(ia == sessions_.end() ? a : b) +
                                         " is not open"};
    if (ia->second.thread != ib->second.thread)
      return Status{Errc::bad_state,
                    "bridge: media sessions " + std::to_string(a) + " and " + std::to_string(b) +
                        " are on different media threads (open one with colocate_with)"};
    for (auto *it : {&ia, &ib})
      if ((*it)->second.bridged)
        return Status{Errc::bad_state, "bridge: media session " + std::to_string((*it)->first) +
                                           " is already bridged with " +
                                           std::to_string((*it)->second.peer)};
    ia->second.bridged = ib->second.bridged = true;
    ia->second.peer = b;
    ib->second.peer = a;
    Command c;
    c.op = Command::Op::bridge;
    c.id = a;
    c.peer = b;
    threads_[ia->second.thread]->post(std::move(c));
    return Status::success();
  }

  void unbridge(SessionId id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !it->second.bridged) return;
    clear_bridge(it->second.peer);
    it->second.bridged = false;
    it->second.peer = 0;
    Command c;
    c.op = Command::Op::unbridge;
    c.id = id;
    threads_[it->second.thread]->post(std::move(c));
  }

  MediaStats stats() const override {
    MediaStats s;
    for (const auto &t : threads_) {
      const MediaCounters &c = t->counters();
      s.packets_sent += c.packets_sent.load(std::memory_order_relaxed);
      s.packets_received += c.packets_received.load(std::memory_order_relaxed);
      s.packets_dropped += c.packets_dropped.load(std::memory_order_relaxed);
      s.bad_packets += c.bad_packets.load(std::memory_order_relaxed);
      s.foreign_packets += c.foreign_packets.load(std::memory_order_relaxed);
      s.late_ticks += c.late_ticks.load(std::memory_order_relaxed);
      s.rtcp_packets += c.rtcp_packets.load(std::memory_order_relaxed);
      s.packets_relayed += c.packets_relayed.load(std::memory_order_relaxed);
    }
    return s;
  }

  size_t session_count() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
  }

 private:
  struct Entry {
    std::shared_ptr<std::atomic<bool>> closed;  // shared with the session on its thread
    unsigned thread = 0;                        // index into threads_
    bool bridged = false;
    SessionId peer = 0;  // when bridged
  };

  // Posts a command to its session's thread; a session that is not open (closed, never
  // opened) has no thread and its command is dropped, as its thread would ignore it.
  void post(Command &&c) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(c.id);
    if (it != sessions_.end()) threads_[it->second.thread]->post(std::move(c));
  }

  // mutex_ held. Marks the peer of a closing or unbridged session as unbridged.
  void clear_bridge(SessionId peer) {
    auto it = sessions_.find(peer);
    if (it == sessions_.end()) return;
    it->second.bridged = false;
    it->second.peer = 0;
  }

  const Options options_;  // threads keep a reference: never reassigned
  PortAllocator ports_;
  std::vector<std::unique_ptr<MediaThread>> threads_;
  mutable std::mutex mutex_;
  std::unordered_map<SessionId, Entry> sessions_;  // open sessions
};

}  // namespace

Result<std::unique_ptr<MediaEngine>> MediaEngine::create(Options options) {
  // Once per process, before any base exists: makes event_active() safe from other threads.
  static const int threads_ready = evthread_use_pthreads();
  if (threads_ready != 0) return Error{Errc::internal, "libevent: evthread_use_pthreads failed"};
  if (options.threads == 0 || options.threads > kMaxThreads)
    return Error{Errc::invalid_argument, "media threads: " + std::to_string(options.threads) +
                                             " is outside 1.." + std::to_string(kMaxThreads)};
  auto ports = PortAllocator::create(options.rtp_address, options.port_min, options.port_max);
  if (!ports) return ports.error();
  auto engine = std::make_unique<MediaEngineImpl>(std::move(options), std::move(ports.value()));
  if (auto st = engine->start(); !st) return st.error();
  return std::unique_ptr<MediaEngine>(std::move(engine));
}

}  // namespace ivr::media
