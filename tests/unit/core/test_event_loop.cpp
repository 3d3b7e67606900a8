#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "core/blocking_worker.h"
#include "core/event_loop.h"

using namespace ivr::core;

TEST_CASE("event loop: stop right after start never hangs") {
  for (int i = 0; i < 200; ++i) {
    auto loop = EventLoop::create();
    REQUIRE(loop.ok());
    (*loop)->start();
    (*loop)->stop();
  }
}

TEST_CASE("event loop: tasks posted from other threads run in order on the loop thread") {
  auto created = EventLoop::create();
  REQUIRE(created.ok());
  auto &loop = *created;
  loop->start();
  std::atomic<int> sum{0};
  std::atomic<bool> wrong_thread{false};
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        loop->post([&] {
          if (!loop->in_loop_thread()) wrong_thread = true;
          sum.fetch_add(1);
        });
    });
  for (auto &t : threads) t.join();
  for (int i = 0; i < 100; ++i) loop->post([&order, i] { order.push_back(i); });
  std::promise<void> done;
  loop->post([&] { done.set_value(); });
  REQUIRE(done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(sum == 4000);
  CHECK_FALSE(wrong_thread);
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[i] == i);
  loop->stop();
  CHECK_FALSE(loop->post([] {}));  // refused once stopped
}

TEST_CASE("event loop: tasks accepted before stop still run") {
  auto created = EventLoop::create();
  REQUIRE(created.ok());
  auto &loop = *created;
  loop->start();
  std::atomic<int> ran{0};
  for (int i = 0; i < 500; ++i) loop->post([&] { ran.fetch_add(1); });
  loop->stop();
  CHECK(ran == 500);
}

TEST_CASE("timer: fires once, re-arms, cancels") {
  auto created = EventLoop::create();
  REQUIRE(created.ok());
  auto &loop = *created;
  loop->start();
  std::atomic<int> fired{0};
  std::unique_ptr<Timer> timer;
  std::promise<void> armed;
  loop->post([&] {
    timer = std::make_unique<Timer>(loop->base(), [&] { fired.fetch_add(1); });
    timer->arm(20);
    armed.set_value();
  });
  armed.get_future().wait();
  for (int i = 0; i < 200 && fired == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(fired == 1);
  std::promise<bool> cancelled;
  loop->post([&] {
    timer->arm(50);
    timer->cancel();
    cancelled.set_value(!timer->armed());
  });
  CHECK(cancelled.get_future().get());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  CHECK(fired == 1);
  loop->post([&] { timer.reset(); });
  loop->stop();
}

TEST_CASE("blocking worker: runs every job, including those queued at destruction") {
  std::atomic<int> ran{0};
  {
    BlockingWorker worker;
    for (int i = 0; i < 100; ++i) worker.submit([&] { ran.fetch_add(1); });
  }
  CHECK(ran == 100);
}
