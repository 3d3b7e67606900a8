// A real libevent loop run on the test thread, every run bounded by a safety timer.
// (To be unified with tests/unit/db/loop_fixture.h.)
#pragma once

#include <doctest/doctest.h>
#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>

#include "db/connector.h"

namespace ivr::test {

class RedisTestLoop {
 public:
  RedisTestLoop() : base_(event_base_new()) { REQUIRE(base_ != nullptr); }
  ~RedisTestLoop() { event_base_free(base_); }
  RedisTestLoop(const RedisTestLoop &) = delete;
  RedisTestLoop &operator=(const RedisTestLoop &) = delete;
  event_base *base() const { return base_; }

  // What a connector gets; post runs the task from the loop (single-threaded tests).
  ivr::db::LoopContext context() {
    ivr::db::LoopContext ctx;
    ctx.base = base_;
    ctx.post = [this](std::function<void()> task) {
      after(std::chrono::milliseconds(0), std::move(task));
      return true;
    };
    return ctx;
  }

  // Runs the loop until done() holds or `limit` passes; returns done().
  bool run_until(const std::function<bool()> &done,
                 std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    bool expired = false;
    event *guard = evtimer_new(base_, &RedisTestLoop::on_expire, &expired);
    event *tick = event_new(
        base_, -1, EV_PERSIST, [](evutil_socket_t, short, void *) {}, nullptr);
    const timeval tv = to_timeval(limit);
    const timeval tick_tv{0, 20 * 1000};  // re-checks done() even when nothing happens
    evtimer_add(guard, &tv);
    evtimer_add(tick, &tick_tv);
    while (!done() && !expired) event_base_loop(base_, EVLOOP_ONCE);
    event_free(tick);
    event_free(guard);
    return done();
  }
  void run_for(std::chrono::milliseconds span) {
    run_until([] { return false; }, span);
  }

  // Calls fn once after `delay`, from the loop.
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto *owned = new std::function<void()>(std::move(fn));
    const timeval tv = to_timeval(delay);
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void *arg) {
          std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()> *>(arg));
          (*f)();
        },
        owned, &tv);
  }

 private:
  static timeval to_timeval(std::chrono::milliseconds ms) {
    return {static_cast<time_t>(ms.count() / 1000),
            static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
  }
  static void on_expire(evutil_socket_t, short, void *arg) { *static_cast<bool *>(arg) = true; }
  event_base *base_;
};

}  // namespace ivr::test
