// A libevent loop for connector tests, run on the test thread in bounded slices, with a
// LoopContext whose post() works from any thread (a mutex-guarded queue and a pipe that
// wakes the loop). Self-contained: libevent and the standard library only.
#pragma once

#include <event2/event.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "db/connector.h"

namespace ivr::test {

class TestLoop {
 public:
  TestLoop() : base_(event_base_new()), shared_(std::make_shared<Shared>()) {
    if (!base_ || pipe2(shared_->wake, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::runtime_error("TestLoop: event_base_new or pipe2 failed");
    wake_event_ =
        event_new(base_, shared_->wake[0], EV_READ | EV_PERSIST, &TestLoop::on_wake, shared_.get());
    event_add(wake_event_, nullptr);
  }
  ~TestLoop() {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->stopped = true;  // post() now answers false
      shared_->tasks.clear();
    }
    event_free(wake_event_);
    event_base_free(base_);
  }
  TestLoop(const TestLoop &) = delete;
  TestLoop &operator=(const TestLoop &) = delete;

  event_base *base() const { return base_; }

  db::LoopContext context() const {
    db::LoopContext ctx;
    ctx.base = base_;
    ctx.post = [shared = shared_](std::function<void()> task) {
      std::lock_guard lock(shared->mutex);
      if (shared->stopped) return false;
      shared->tasks.push_back(std::move(task));
      const char byte = 1;
      (void)!write(shared->wake[1], &byte, 1);  // a full pipe is already a wake-up
      return true;
    };
    return ctx;
  }

  // Runs the loop in 10 ms slices until pred() holds; false when `limit` passes first.
  bool run_until(const std::function<bool()> &pred,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      timeval tv{0, 10000};
      event_base_loopexit(base_, &tv);
      event_base_dispatch(base_);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    (void)run_until([&] { return std::chrono::steady_clock::now() >= end; },
                    d + std::chrono::seconds(1));
  }

 private:
  struct Shared {
    std::mutex mutex;
    std::deque<std::function<void()>> tasks;
    bool stopped = false;
    int wake[2] = {-1, -1};
    ~Shared() {
      for (int fd : wake)
        if (fd >= 0) close(fd);
    }
  };

  static void on_wake(evutil_socket_t fd, short, void *arg) {
    auto *shared = static_cast<Shared *>(arg);
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lock(shared->mutex);
      tasks.swap(shared->tasks);
    }
    for (auto &task : tasks) task();
  }

  event_base *base_;
  std::shared_ptr<Shared> shared_;  // outlives the loop while a post() copy is held
  event *wake_event_ = nullptr;
};

}  // namespace ivr::test
