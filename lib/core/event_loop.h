// The engine loop: one libevent base on its own thread. Other threads hand work over with
// post() (a queue plus one wake-up), so loop-owned state is never shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

struct event_base;
struct event;

namespace ivr::core {

class EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop &) = delete;
  EventLoop &operator=(const EventLoop &) = delete;

  void start();  // spawns the loop thread
  // Runs every task already posted, then stops and joins. Later posts are refused.
  void stop();

  // Thread-safe. Returns false (and drops the task) once the loop has stopped.
  bool post(std::function<void()> task);
  bool in_loop_thread() const { return std::this_thread::get_id() == thread_id_.load(); }
  bool running() const { return running_.load(); }
  event_base *base() const { return base_; }

 private:
  EventLoop() = default;
  static void on_wake(int, short, void *self);
  void drain();

  event_base *base_ = nullptr;
  event *wake_ = nullptr;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> running_{false};
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool accepting_ = true;  // guarded by mutex_
  bool wake_pending_ = false;
  std::atomic<bool> stop_requested_{false};
};

// A one-shot timer on a loop; loop thread only. Destroying it cancels it.
class Timer {
 public:
  Timer(event_base *base, std::function<void()> on_fire);
  ~Timer();
  Timer(const Timer &) = delete;
  Timer &operator=(const Timer &) = delete;

  void arm(uint32_t ms);  // re-arming replaces the previous deadline
  void cancel();
  bool armed() const;

 private:
  static void on_timer(int, short, void *self);
  event *ev_ = nullptr;
  std::function<void()> on_fire_;
};

}  // namespace ivr::core
