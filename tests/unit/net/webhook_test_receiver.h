// Starts tests/net/webhook_receiver.py for a test and talks to its control API with small
// blocking HTTP/1.0 requests (the receiver is another process, so blocking the test's loop
// meanwhile is harmless).
//
//   WebhookTestReceiver rx;
//   rx.script("/crm", R"([{"status":503}])");
//   ... rx.received("/crm") -> parsed JSON array of requests
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/json.h"
#include "script_process.h"

extern char **environ;

namespace ivr::test {

class WebhookTestReceiver {
 public:
  WebhookTestReceiver() {
    std::vector<std::string> args = {IVR_SOURCE_DIR "/tests/net/webhook_receiver.py"};
    if (std::getenv("IVR_HTTP_TEST_VERBOSE")) args.emplace_back("--verbose");
    process_.emplace(std::move(args));
    port_ = process_->port("listening");
    control_port_ = process_->port("control");
  }
  ~WebhookTestReceiver() { stop(); }
  WebhookTestReceiver(const WebhookTestReceiver &) = delete;
  WebhookTestReceiver &operator=(const WebhookTestReceiver &) = delete;

  uint16_t port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // responses: a JSON array of actions; default_action: one action or "" to keep it.
  void script(std::string_view path, std::string_view responses,
              std::string_view default_action = "") {
    std::string body = "{\"path\":\"" + std::string(path) +
                       "\",\"responses\":" + std::string(responses.empty() ? "[]" : responses);
    if (!default_action.empty()) body += ",\"default\":" + std::string(default_action);
    body += "}";
    control("POST", "/script", body);
  }
  void down() { control("POST", "/down", "{}"); }
  void up() { control("POST", "/up", "{}"); }

  // The requests received (for one path, or all when empty): a JSON array.
  json::Document received(std::string_view path = "") {
    std::string target = "/received";
    if (!path.empty()) target += "?path=" + std::string(path);
    auto doc = json::parse(control("GET", target, ""));
    if (!doc) throw std::runtime_error("receiver: bad JSON: " + doc.error().message);
    return std::move(*doc);
  }
  size_t count(std::string_view path = "") {
    auto doc = received(path);
    return doc.root().find("requests")->items.size();
  }
  // The most requests to `path` ("*" = all paths) that were ever in progress at once.
  int max_in_flight(std::string_view path) {
    auto doc = json::parse(control("GET", "/stats", ""));
    if (!doc) throw std::runtime_error("receiver: bad JSON");
    const json::Value *v = doc->root().find("max_in_flight")->find(path);
    return v ? static_cast<int>(v->number) : 0;
  }

  // One request/response on a fresh connection; returns the body.
  std::string control(std::string_view method, std::string_view target, std::string_view body) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(control_port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
      close(fd);
      throw std::runtime_error("receiver: control connect failed");
    }
    std::string req = std::string(method) + " " + std::string(target) +
                      " HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    for (size_t off = 0; off < req.size();) {
      ssize_t n = write(fd, req.data() + off, req.size() - off);
      if (n <= 0) {
        close(fd);
        throw std::runtime_error("receiver: control write failed");
      }
      off += static_cast<size_t>(n);
    }
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      if (std::chrono::steady_clock::now() > deadline) {
        close(fd);
        throw std::runtime_error("receiver: control timed out");
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      answer.append(chunk, static_cast<size_t>(n));
      // HTTP/1.1 answers keep the connection: stop at Content-Length.
      size_t head = answer.find("\r\n\r\n");
      if (head == std::string::npos) continue;
      size_t cl = answer.find("Content-Length: ");
      if (cl != std::string::npos && cl < head) {
        size_t len = std::stoul(answer.substr(cl + 16));
        if (answer.size() >= head + 4 + len) break;
      }
    }
    close(fd);
    size_t head = answer.find("\r\n\r\n");
    if (answer.size() < 12 || answer.rfind("HTTP/1.", 0) != 0 || head == std::string::npos ||
        answer.compare(9, 3, "200") != 0)
      throw std::runtime_error("receiver: control " + std::string(target) + " failed: " + answer);
    return answer.substr(head + 4);
  }

 private:
  void stop() { process_.reset(); }

  std::optional<ScriptProcess> process_;
  uint16_t port_ = 0, control_port_ = 0;
};

}  // namespace ivr::test
