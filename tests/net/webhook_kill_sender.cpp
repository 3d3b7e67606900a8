// Helper of tests/net/webhook_kill_test.py, which SIGKILLs it mid-delivery.
//
//   webhook_kill_sender <spool dir> <url> <secret> <first seq> <count>
//
// Runs a WebhookDispatcher on its own libevent loop over the spool directory, with one
// subscription ("kill", every event type) posting to <url>. Publishes <count> events
// ("call.ended", data {"seq": n}), a few every millisecond so that publishing and delivery
// overlap, and prints one line each, flushed at once:
//   "A <id> <seq>"  once the publish is durable (acknowledged: it must never be lost)
//   "D <id>"        delivered (the receiver answered 2xx)
//   "X <id>"        dead-lettered (the test allows none)
// Once everything it published is acknowledged and nothing is pending it prints
// "idle <dead letters>" and exits 0; <count> 0 just drains what an earlier run left.
#include <event2/event.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/log.h"
#include "net/webhook_dispatcher.h"

using namespace ivr;
using namespace ivr::net;

namespace {

struct Sender {
  event_base *base = nullptr;
  std::unique_ptr<WebhookDispatcher> dispatcher;
  long next_seq = 0, end_seq = 0;
  long unacknowledged = 0;
  int exit_code = -1;
};

void line(const std::string &text) {
  std::fputs(text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void on_tick(evutil_socket_t, short, void *arg) {
  auto *s = static_cast<Sender *>(arg);
  for (int i = 0; i < 4 && s->next_seq < s->end_seq; ++i) {
    const long seq = s->next_seq++;
    // done never runs inside publish(), so the id is known by the time it does.
    auto id = std::make_shared<std::string>();
    ++s->unacknowledged;
    auto ids = s->dispatcher->publish("call.ended", "{\"seq\":" + std::to_string(seq) + "}",
                                      [s, seq, id](Status st) {
                                        --s->unacknowledged;
                                        if (st) {
                                          line("A " + *id + " " + std::to_string(seq));
                                        } else {
                                          std::fprintf(stderr, "sender: %s not durable: %s\n",
                                                       id->c_str(), st.error().message.c_str());
                                          s->exit_code = 4;
                                        }
                                      });
    if (!ids || ids->size() != 1) {
      std::fprintf(stderr, "sender: publish %ld: %s\n", seq,
                   ids ? "not exactly one subscription" : ids.error().message.c_str());
      s->exit_code = 4;
      event_base_loopbreak(s->base);
      return;
    }
    *id = (*ids)[0];
  }
}

void on_check(evutil_socket_t, short, void *arg) {
  auto *s = static_cast<Sender *>(arg);
  if (s->exit_code >= 0) {
    event_base_loopbreak(s->base);
    return;
  }
  if (s->next_seq < s->end_seq || s->unacknowledged > 0) return;
  auto c = s->dispatcher->counters();
  if (c.queued > 0 || c.in_flight > 0) return;
  line("idle " + std::to_string(c.dead));
  s->exit_code = 0;
  event_base_loopbreak(s->base);
}

void on_deadline(evutil_socket_t, short, void *arg) {
  auto *s = static_cast<Sender *>(arg);
  std::fprintf(stderr, "sender: not idle after 300 s\n");
  s->exit_code = 5;
  event_base_loopbreak(s->base);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s <spool dir> <url> <secret> <first seq> <count>\n", argv[0]);
    return 2;
  }
  Sender s;
  s.base = event_base_new();
  s.next_seq = std::atol(argv[4]);
  s.end_seq = s.next_seq + std::atol(argv[5]);

  WebhookDispatcherOptions o;
  o.spool.directory = argv[1];
  o.max_in_flight = 16;
  o.logger = make_stderr_logger(LogLevel::warn);
  o.on_report = [](const DeliveryReport &r) {
    if (r.outcome == DeliveryOutcome::delivered) line("D " + r.id);
    if (r.outcome == DeliveryOutcome::dead_lettered) line("X " + r.id);
  };
  auto d = WebhookDispatcher::create(s.base, std::move(o));
  if (!d) {
    std::fprintf(stderr, "sender: %s\n", d.error().message.c_str());
    return 3;
  }
  s.dispatcher = std::move(*d);

  WebhookSubscription sub;
  sub.name = "kill";
  sub.url = argv[2];
  sub.event_types = {"*"};
  sub.secrets = {argv[3]};
  sub.timeout_ms = 2000;
  sub.max_attempts = 10000;  // the receiver always accepts in the end: no dead letters
  sub.backoff_base = std::chrono::milliseconds(20);
  sub.backoff_max = std::chrono::milliseconds(300);
  sub.max_concurrency = 8;
  if (auto st = s.dispatcher->set_subscription(sub); !st) {
    std::fprintf(stderr, "sender: %s\n", st.error().message.c_str());
    return 3;
  }
  s.dispatcher->start();

  event *tick = event_new(s.base, -1, EV_PERSIST, on_tick, &s);
  event *check = event_new(s.base, -1, EV_PERSIST, on_check, &s);
  event *deadline = evtimer_new(s.base, on_deadline, &s);
  timeval every_ms{0, 1000}, every_50ms{0, 50000}, limit{300, 0};
  event_add(tick, &every_ms);
  event_add(check, &every_50ms);
  event_add(deadline, &limit);
  event_base_dispatch(s.base);

  event_free(tick);
  event_free(check);
  event_free(deadline);
  if (auto st = s.dispatcher->close(); !st && s.exit_code == 0) {
    std::fprintf(stderr, "sender: close: %s\n", st.error().message.c_str());
    s.exit_code = 4;
  }
  s.dispatcher.reset();
  event_base_free(s.base);
  return s.exit_code < 0 ? 0 : s.exit_code;
}
