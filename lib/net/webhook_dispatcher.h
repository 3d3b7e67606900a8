// WebhookDispatcher: delivers engine events to subscribed HTTP endpoints, at least once.
//
// publish() appends one record per matching subscription to a durable EventSpool (the record
// id is the idempotency id, X-Ivr-Event-Id) and returns at once; a scheduler on the engine
// loop sends each record as a signed JSON POST (X-Ivr-Signature, see webhook_signature.h),
// treats 2xx as delivered and anything else as a failed attempt, retried with exponential
// backoff and full jitter (Retry-After honoured on 429/503) until the subscription's
// max_attempts, after which the record waits in the dead letters until it is requeued or
// purged. An endpoint outage, a restart or a SIGKILL loses nothing whose publish() was
// acknowledged: reopening the spool resumes the pending records.
//
// Threading: a dispatcher belongs to the thread running its event_base (the engine loop).
// Every method is called there and every callback (publish's done, on_report) runs there,
// later, never inside the call that caused it. create(), flush(), close() and the
// destructor block on disk I/O (start-up and shutdown only). Callbacks must not destroy the
// dispatcher. See docs/net.md, "Webhook delivery".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "net/event_spool.h"
#include "net/http_client.h"

struct event_base;

namespace ivr::net {

// The event types the engine emits. Subscriptions may also name other types (host-defined
// events); "*" matches every type.
inline constexpr std::string_view kWebhookEventTypes[] = {
    "call.started",  "call.answered", "dtmf",           "flow.node",  "route.decided",
    "route.attempt", "call.queued",   "call.delivered", "call.ended",
};
inline constexpr std::string_view kWebhookAttemptHeader = "X-Ivr-Attempt";

struct WebhookSubscription {
  std::string name;                      // 1..64 of [A-Za-z0-9._-]; unique
  std::string url;                       // http:// or https://
  std::vector<std::string> event_types;  // at least one; "*" = every type
  // Signing secrets (values, not names: the caller resolves names). One v1 signature per
  // secret, so rotation is: add the new secret, let receivers switch, drop the old one.
  std::vector<std::string> secrets;
  Headers headers;  // extra request headers; not Content-Type, Content-Length, Host, X-Ivr-*
  uint32_t timeout_ms = 10000;                     // one attempt, connect included (1 ms .. 10 min)
  uint32_t connect_timeout_ms = 5000;              // capped at timeout_ms; 0 = timeout_ms
  uint32_t max_attempts = 16;                      // failed attempts before the dead letters (>= 1)
  std::chrono::milliseconds backoff_base{1000};    // cap after attempt n: base * 2^(n-1) ...
  std::chrono::milliseconds backoff_max{3600000};  // ... at most this (<= 24 h)
  uint32_t max_concurrency = 4;  // deliveries in flight to this subscription (>= 1)
  bool enabled = true;           // false: publish() skips it; its queued records wait (paused)
  TlsOptions tls;

  // Errc::invalid_argument naming the field ("subscription 'crm': url: ...").
  Status validate() const;
  bool matches(std::string_view event_type) const;
};

enum class DeliveryOutcome : uint8_t { delivered, retry, dead_lettered };
const char *delivery_outcome_name(DeliveryOutcome o);  // "delivered", "retry", ...

// What happened to one attempt (for logs, metrics and tests).
struct DeliveryReport {
  std::string id, subscription, event_type;
  uint32_t attempt = 0;  // 1-based number of the attempt that just ended
  DeliveryOutcome outcome = DeliveryOutcome::delivered;
  int status = 0;               // HTTP status, 0 when there was no response
  std::string error;            // why it failed ("" when delivered)
  int64_t next_attempt_ms = 0;  // retry: Unix ms of the next attempt
};

struct WebhookDispatcherOptions {
  // The spool's directory and limits. The dispatcher sets `post` (its own wake-up on the
  // loop) and `max_attempts` (it enforces each subscription's own); clock_ms defaults to
  // the dispatcher's.
  EventSpoolOptions spool;
  size_t max_in_flight = 64;              // deliveries in flight over all subscriptions (>= 1)
  size_t max_response_bytes = 64 * 1024;  // a larger response body is a failed attempt
  HttpClientOptions http;
  std::function<int64_t()> clock_ms;  // Unix ms (scheduling, signatures); empty = system
  uint64_t seed = 0;                  // backoff jitter; 0 = from std::random_device
  LoggerPtr logger;
  std::function<void(const DeliveryReport &)> on_report;  // every attempt's outcome
};

// A dead letter as listed for operators.
struct DeadLetter {
  std::string id, subscription, event_type;
  uint32_t attempts = 0;
  std::string last_error;
  int64_t created_ms = 0;  // Unix ms
};

struct WebhookCounters {
  uint64_t published = 0;         // records accepted by publish() (one per subscription)
  uint64_t publish_rejected = 0;  // publish() calls that failed (spool full, bad input, io)
  uint64_t delivered = 0;
  uint64_t failed_attempts = 0;
  uint64_t dead_lettered = 0;  // records moved to the dead letters (any reason)
  uint64_t requeued = 0;
  size_t in_flight = 0;  // now
  size_t queued = 0;     // pending records now (in flight included)
  size_t dead = 0;       // dead letters now
};

struct SubscriptionState {
  std::string name;
  bool enabled = true;
  size_t queued = 0;  // pending, in flight included
  size_t in_flight = 0;
  uint64_t delivered = 0, failed_attempts = 0, dead_lettered = 0;
};

// The JSON body of a delivery, built from the record (the same bytes on every attempt):
// {"id":"<id>","type":"<type>","created_at":"<RFC 3339 UTC, ms>","subscription":"<name>",
//  "data":<payload>}
std::string webhook_body(const SpoolRecord &record);
// "2024-05-01T12:00:00.123Z" for Unix ms.
std::string rfc3339_utc_ms(int64_t unix_ms);

class WebhookDispatcher {
 public:
  using PublishDone = std::function<void(Status)>;

  // Opens (recovers) the spool: blocking. Errors: invalid_argument (an option, named), and
  // every EventSpool::open error (busy: another process has the directory). The event_base
  // must outlive the dispatcher. Nothing is sent before start().
  static Result<std::unique_ptr<WebhookDispatcher>> create(event_base *base,
                                                           WebhookDispatcherOptions options);
  ~WebhookDispatcher();  // drops in-flight requests (they stay pending) and closes the spool
  WebhookDispatcher(const WebhookDispatcher &) = delete;
  WebhookDispatcher &operator=(const WebhookDispatcher &) = delete;

  // Adds a subscription, or replaces the one with the same name (its queued records stay
  // and go out with the new settings). Errc::invalid_argument from validate().
  Status set_subscription(WebhookSubscription subscription);
  // Removes a subscription; its pending records go to the dead letters with the error
  // "subscription removed" (one in flight is settled when it ends: delivered, or a dead
  // letter). not_found.
  Status remove_subscription(std::string_view name);
  std::vector<SubscriptionState> subscriptions() const;  // sorted by name; no secrets

  // Starts delivering. Pending records of subscriptions that are not configured now go to
  // the dead letters ("subscription removed: '<name>' is not configured"). Idempotent.
  void start();

  // Spools the event for every enabled subscription whose types match and returns the new
  // record ids (none when nothing matches). All or nothing: when one append fails, those
  // already made are withdrawn and the error returned: invalid_argument (event_type, or
  // payload that is not one JSON value, or too large), busy (the spool is full), io,
  // bad_state (closed). `done` runs once, later, on the loop: ok when every record is
  // durable (then an acknowledged event survives a crash), else the first error.
  Result<std::vector<std::string>> publish(std::string_view event_type,
                                           std::string_view json_payload, PublishDone done = {});

  std::vector<DeadLetter> dead_letters(
      size_t limit = std::numeric_limits<size_t>::max()) const;  // oldest first
  // A dead letter becomes pending again (attempts 0, due now). not_found (no such record,
  // or its subscription is not configured), bad_state (not a dead letter).
  Status requeue(std::string_view id);
  // Requeues every dead letter (of one subscription, or all when empty) whose subscription
  // is configured; returns how many.
  Result<size_t> requeue_dead_letters(std::string_view subscription = {});
  // Drops one dead letter (bad_state for a pending record: nothing pending is ever dropped).
  Status purge(std::string_view id);
  Result<size_t> purge_dead_letters();

  WebhookCounters counters() const;
  // ok, or the spool error that stopped delivery (a failed write: reopen to recover).
  Status health() const;

  // Blocking: returns once every spool operation issued so far is durable.
  Status flush();
  // Blocking: stops delivery (in-flight requests dropped, they stay pending), closes the
  // spool, then runs the publish callbacks still queued. Idempotent; other calls then fail
  // with bad_state. The destructor does the same but drops those callbacks.
  Status close();

  struct Impl;

 private:
  explicit WebhookDispatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ivr::net
