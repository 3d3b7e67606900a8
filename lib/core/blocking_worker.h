// A thread for work that may block (file decoding), so the engine loop never does.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ivr::core {

class BlockingWorker {
 public:
  BlockingWorker();
  ~BlockingWorker();  // finishes queued jobs, then joins
  BlockingWorker(const BlockingWorker &) = delete;
  BlockingWorker &operator=(const BlockingWorker &) = delete;

  void submit(std::function<void()> job);  // thread-safe

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ivr::core
