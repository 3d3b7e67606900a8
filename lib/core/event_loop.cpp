#include "core/event_loop.h"

#include <event2/event.h>
#include <event2/thread.h>

namespace ivr::core {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  static const int threads_ready = evthread_use_pthreads();  // once, before any base
  if (threads_ready != 0) return Error{Errc::internal, "libevent: evthread_use_pthreads failed"};
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->base_ = event_base_new();
  if (!loop->base_) return Error{Errc::internal, "libevent: event_base_new failed"};
  loop->wake_ = event_new(loop->base_, -1, EV_PERSIST, &EventLoop::on_wake, loop.get());
  if (!loop->wake_) return Error{Errc::internal, "libevent: event_new failed"};
  // A persistent event never added with a timeout keeps the loop alive between wake-ups.
  event_add(loop->wake_, nullptr);
  return loop;
}

EventLoop::~EventLoop() {
  stop();
  if (wake_) event_free(wake_);
  if (base_) event_base_free(base_);
}

void EventLoop::start() {
  running_ = true;
  thread_ = std::thread([this] {
    thread_id_ = std::this_thread::get_id();
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
    drain();  // tasks posted before stop() refused new ones still run
  });
}

void EventLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
  }
  if (thread_.joinable()) {
    // Break from inside the loop: a loopbreak issued before the thread has entered
    // event_base_loop would be cleared by it and lost. An activated event waits for it.
    stop_requested_ = true;
    event_active(wake_, EV_READ, 0);
    thread_.join();
  } else {
    drain();
  }
  running_ = false;
  thread_id_ = std::thread::id();
}

bool EventLoop::post(std::function<void()> task) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) return false;
    queue_.push_back(std::move(task));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) event_active(wake_, EV_READ, 0);
  return true;
}

void EventLoop::on_wake(int, short, void *self) {
  auto *loop = static_cast<EventLoop *>(self);
  loop->drain();
  if (loop->stop_requested_) event_base_loopbreak(loop->base_);
}

void EventLoop::drain() {
  std::vector<std::function<void()>> batch;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty()) {
        wake_pending_ = false;
        return;
      }
      batch.swap(queue_);
    }
    for (auto &task : batch) task();
    batch.clear();
  }
}

Timer::Timer(event_base *base, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  ev_ = evtimer_new(base, &Timer::on_timer, this);
}

Timer::~Timer() {
  if (ev_) event_free(ev_);
}

void Timer::arm(uint32_t ms) {
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(ev_, &tv);
}

void Timer::cancel() {
  evtimer_del(ev_);
}

bool Timer::armed() const {
  return evtimer_pending(ev_, nullptr) != 0;
}

void Timer::on_timer(int, short, void *self) {
  auto *timer = static_cast<Timer *>(self);
  auto fire = timer->on_fire_;  // the callback may destroy the timer
  fire();
}

}  // namespace ivr::core
