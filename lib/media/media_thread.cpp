#include "media/media_thread.h"

#include <event2/event.h>
#include <pthread.h>

#include <string>

namespace ivr::media {

namespace {

constexpr timeval kTick = {0, 10'000};  // 10 ms: half a frame, bounds pacing jitter

}  // namespace

MediaThread::MediaThread(const MediaEngine::Options &options, int family, unsigned index)
    : options_(options), index_(index), rng_(std::random_device{}()) {
  ctx_.counters = &counters_;
  ctx_.options = &options_;
  ctx_.recv = &recv_;
  ctx_.rng = &rng_;
  ctx_.family = family;
}

MediaThread::~MediaThread() {
  stop();
  sessions_.clear();  // frees their events (before the base) and closes their sockets
  queue_.clear();
  batch_.clear();
  if (timer_) event_free(timer_);
  if (wake_) event_free(wake_);
  if (base_) event_base_free(base_);
}

Status MediaThread::start() {
  base_ = event_base_new();
  if (!base_) return Status(Errc::internal, "libevent: event_base_new failed");
  ctx_.base = base_;
  // Persistent and never added: it only runs when event_active() is called on it.
  wake_ = event_new(base_, -1, EV_PERSIST, &MediaThread::on_wake, this);
  timer_ = event_new(base_, -1, EV_PERSIST, &MediaThread::on_timer, this);
  if (!wake_ || !timer_) return Status(Errc::internal, "libevent: event_new failed");
  thread_ = std::thread([this] {
    const std::string name = "ivr-media-" + std::to_string(index_);  // at most 15 chars
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return Status::success();
}

void MediaThread::stop() {
  if (!thread_.joinable()) return;
  Command quit;
  quit.op = Command::Op::quit;
  post(std::move(quit));
  thread_.join();
}

void MediaThread::post(Command &&command) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(command));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) event_active(wake_, EV_READ, 0);
}

void MediaThread::on_wake(int, short, void *self) {
  static_cast<MediaThread *>(self)->drain();
}

void MediaThread::on_timer(int, short, void *self) {
  static_cast<MediaThread *>(self)->tick();
}

void MediaThread::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_.swap(queue_);
    wake_pending_ = false;
  }
  for (auto &command : batch_) run(command);
  batch_.clear();  // keeps its capacity for the next swap
}

RtpSession *MediaThread::find(SessionId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void MediaThread::run(Command &c) {
  switch (c.op) {
    case Command::Op::open: {
      auto session = std::make_unique<RtpSession>(ctx_, c.id, c.ports.rtp_port,
                                                  std::move(c.ports.rtp), std::move(c.ports.rtcp),
                                                  std::move(c.closed), monotonic_ns());
      if (auto st = session->start(); !st) {
        IVR_LOG(options_.logger, error, "media", "%s", st.error().message.c_str());
        return;  // sockets close with the session; later commands for it are ignored
      }
      sessions_[c.id] = std::move(session);
      if (!timer_armed_) {
        // The shared pacing timer runs only while the thread has sessions.
        event_add(timer_, &kTick);
        timer_armed_ = true;
      }
      return;
    }
    case Command::Op::set_remote:
      if (auto *s = find(c.id)) s->set_remote(c.remote, c.sdp);
      return;
    case Command::Op::play:
      if (auto *s = find(c.id)) s->play(std::move(c.prompt), c.playback_id);
      return;
    case Command::Op::stop_playback:
      if (auto *s = find(c.id)) s->stop_playback();
      return;
    case Command::Op::set_inband:
      if (auto *s = find(c.id)) s->set_inband_dtmf(c.enabled);
      return;
    case Command::Op::set_timeout:
      if (auto *s = find(c.id)) s->set_rtp_timeout(c.timeout_ms, monotonic_ns());
      return;
    case Command::Op::close: {
      auto it = sessions_.find(c.id);
      if (it == sessions_.end()) return;
      if (RtpSession *peer = it->second->peer()) peer->end_bridge(monotonic_ns());
      sessions_.erase(it);
      if (sessions_.empty() && timer_armed_) {
        event_del(timer_);
        timer_armed_ = false;
      }
      return;
    }
    case Command::Op::bridge: {
      RtpSession *a = find(c.id);
      RtpSession *b = find(c.peer);
      if (!a || !b || a->peer() || b->peer()) {
        // The engine validated the pair; only a session whose start failed gets here.
        IVR_LOG(options_.logger, warn, "media", "cannot bridge sessions %llu and %llu: %s",
                static_cast<unsigned long long>(c.id), static_cast<unsigned long long>(c.peer),
                !a || !b ? "one is not running on its media thread" : "one is already bridged");
        return;
      }
      a->start_bridge(b);
      b->start_bridge(a);
      return;
    }
    case Command::Op::unbridge:
      if (auto *s = find(c.id); s && s->peer()) {
        const uint64_t now = monotonic_ns();
        RtpSession *peer = s->peer();
        s->end_bridge(now);
        peer->end_bridge(now);
      }
      return;
    case Command::Op::quit:
      event_base_loopbreak(base_);
      return;
  }
}

void MediaThread::tick() {
  // One clock read for the whole batch: every session of the thread is walked once.
  const uint64_t now = monotonic_ns();
  for (auto &[id, session] : sessions_) session->on_tick(now);
}

}  // namespace ivr::media
