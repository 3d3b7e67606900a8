// A test server written in Python (tests/net/*.py) as a child process: started with
// --exit-on-stdin-eof, its stdout banner of "key value" lines read up to "ready" (bounded:
// 30 s), stopped when destroyed (stdin closed, SIGTERM, then SIGKILL after 5 s).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char **environ;

namespace ivr::test {

class ScriptProcess {
 public:
  // args: the script's path and its arguments (--exit-on-stdin-eof is added).
  explicit ScriptProcess(std::vector<std::string> args) : name_(args.at(0)) {
    int out[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    args.insert(args.begin(), "/usr/bin/python3");
    args.emplace_back("--exit-on-stdin-eof");
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(in[0]);
    stdin_ = in[1];  // closing it tells the script to exit, even if we crash
    if (rc != 0) {
      close(out[0]);
      pid_ = -1;
      stop();
      throw std::runtime_error("posix_spawn python3 failed");
    }
    try {
      read_banner(out[0]);
    } catch (...) {
      close(out[0]);
      stop();
      throw;
    }
    close(out[0]);
  }
  ~ScriptProcess() { stop(); }
  ScriptProcess(const ScriptProcess &) = delete;
  ScriptProcess &operator=(const ScriptProcess &) = delete;

  // The banner's value for key ("" when the script did not print it).
  std::string value(const std::string &key) const {
    auto it = banner_.find(key);
    return it == banner_.end() ? "" : it->second;
  }
  uint16_t port(const std::string &key) const {
    std::string v = value(key);
    return v.empty() ? 0 : static_cast<uint16_t>(std::stoi(v));
  }

  void stop() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

 private:
  void read_banner(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string buffer;
    for (;;) {
      size_t eol;
      while ((eol = buffer.find('\n')) != std::string::npos) {
        const std::string line = buffer.substr(0, eol);
        buffer.erase(0, eol + 1);
        if (line == "ready") return;
        const size_t space = line.find(' ');
        banner_[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error(name_ + " did not start");
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error(name_ + " exited before 'ready'");
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  std::string name_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::map<std::string, std::string> banner_;
};

}  // namespace ivr::test
