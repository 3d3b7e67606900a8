// One media thread: a libevent base, its sessions, one shared pacing timer and a command
// queue that any thread may post to.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "media/port_allocator.h"
#include "media/rtp_session.h"

struct event;
struct event_base;

namespace ivr::media {

// Work handed to a media thread. A plain struct, not a closure, so an open command can own
// its sockets (closed by RAII if the thread stops before running it).
struct Command {
  enum class Op : uint8_t {
    open,
    set_remote,
    play,
    stop_playback,
    set_inband,
    set_timeout,
    close,
    bridge,
    unbridge,
    quit
  };
  Op op = Op::quit;
  SessionId id = 0;
  // open
  PortPair ports;
  std::shared_ptr<const std::atomic<bool>> closed;
  // set_remote
  RemoteMedia remote;
  SockAddr sdp;
  // set_timeout
  uint32_t timeout_ms = 0;
  // play
  std::shared_ptr<const Prompt> prompt;
  uint64_t playback_id = 0;
  // set_inband
  bool enabled = false;
  // bridge: id and peer (validated by the engine, both on this thread)
  SessionId peer = 0;
};

class MediaThread {
 public:
  // index names the thread ("ivr-media-<index>", seen in top -H and /proc/self/task).
  MediaThread(const MediaEngine::Options &options, int family, unsigned index);
  ~MediaThread();  // stops and joins if still running; closes every socket it owns
  MediaThread(const MediaThread &) = delete;
  MediaThread &operator=(const MediaThread &) = delete;

  // Creates the base and events (evthread_use_pthreads must already be on), then the thread.
  Status start();
  void stop();

  // Any thread. Never blocks on the loop: a short mutex on the queue, then a wake-up.
  void post(Command &&command);

  const MediaCounters &counters() const { return counters_; }

 private:
  static void on_wake(int, short, void *self);
  static void on_timer(int, short, void *self);
  void drain();
  void run(Command &command);
  void tick();
  RtpSession *find(SessionId id);

  const MediaEngine::Options &options_;
  const unsigned index_;
  event_base *base_ = nullptr;
  event *wake_ = nullptr;
  event *timer_ = nullptr;
  bool timer_armed_ = false;
  std::thread thread_;

  std::mutex mutex_;
  std::vector<Command> queue_;  // guarded by mutex_
  bool wake_pending_ = false;   // guarded by mutex_
  std::vector<Command> batch_;  // loop thread only

  // Loop thread only.
  std::unordered_map<SessionId, std::unique_ptr<RtpSession>> sessions_;
  std::mt19937 rng_;
  RecvBatch recv_;
  MediaCounters counters_;
  SessionContext ctx_;
};

}  // namespace ivr::media
