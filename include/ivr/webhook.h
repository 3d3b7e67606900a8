/*
 * libivr: webhooks. The engine's call events (call.started, call.answered, dtmf, flow.node,
 * call.ended) go to HTTP endpoints as signed JSON POSTs, from a durable spool, retried with
 * backoff until accepted (at least once: receivers de-duplicate on X-Ivr-Event-Id).
 * Webhooks are on when ivr_engine_options.webhook_spool_dir is set. See docs/c-api.md,
 * "Webhooks", and docs/net.md, "Webhook delivery", for the request, signatures and payloads.
 *
 * Thread-safety: every function here may be called from any thread, including inside an
 * event callback; the work runs on the engine thread and the caller waits for it.
 */
#ifndef IVR_WEBHOOK_H
#define IVR_WEBHOOK_H

#include "ivr/common.h"
#include "ivr/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IVR_WEBHOOK_OPTIONS_VERSION 1

/** One webhook subscription. Set up with IVR_WEBHOOK_OPTIONS_INIT; fields only appended. */
typedef struct ivr_webhook_options {
  unsigned int version; /**< IVR_WEBHOOK_OPTIONS_VERSION */
  const char *name;     /**< 1-64 of [A-Za-z0-9._-]; unique per engine (required) */
  const char *url;      /**< http:// or https:// (required) */
  /**
   * Comma-separated event types ("call.started,call.ended"; spaces around names ignored);
   * "*" = every type. Default "*".
   */
  const char *event_types;
  /**
   * Signing secrets (values), at least one; each request carries one v1 signature per
   * secret. To rotate: set {old, new}, let the receiver switch, then set {new}.
   */
  const char *const *secrets;
  size_t secret_count;
  unsigned int timeout_ms;      /**< one attempt, connect included; default 10000 */
  unsigned int max_attempts;    /**< failed attempts before a dead letter; default 16 */
  unsigned int backoff_base_ms; /**< wait cap after attempt n: base * 2^(n-1); default 1000 */
  unsigned int backoff_max_ms;  /**< ... at most this (<= 24 h); default 3600000 */
  unsigned int max_concurrency; /**< deliveries in flight to this endpoint; default 4 */
  const char *ca_file;          /**< PEM bundle to verify https:// with; NULL = system CAs */
  int enabled;                  /**< 0: no new events, queued ones wait; default 1 */
} ivr_webhook_options;

#define IVR_WEBHOOK_OPTIONS_INIT \
  { IVR_WEBHOOK_OPTIONS_VERSION, NULL, NULL, "*", NULL, 0, 10000, 16, 1000, 3600000, 4, NULL, 1 }

/** Fills opts with the defaults of the given version. IVR_EVERSION if unknown. */
IVR_API int ivr_webhook_options_init(ivr_webhook_options *opts, unsigned int version);

/**
 * Adds a webhook, or replaces the one with the same name (its queued events stay and go
 * out with the new settings). Everything is copied. Before ivr_engine_start the webhook is
 * kept and applied at start, before delivery resumes: set webhooks before starting so that
 * events spooled by an earlier run go out (at start, queued events of a subscription that
 * is not set become dead letters; set it, then requeue them).
 * Errors: IVR_EINVAL (a field, named: "subscription 'crm': url: ..."), IVR_EVERSION,
 * IVR_ESTATE (webhooks are off: no webhook_spool_dir), IVR_EGONE (the engine has stopped).
 */
IVR_API int ivr_engine_set_webhook(ivr_engine *engine, const ivr_webhook_options *opts);

/**
 * Removes a webhook. Its queued events become dead letters ("subscription removed"); one in
 * flight is settled when it ends. Errors: IVR_EINVAL, IVR_ENOTFOUND, IVR_ESTATE (off),
 * IVR_EGONE.
 */
IVR_API int ivr_engine_remove_webhook(ivr_engine *engine, const char *name);

#define IVR_WEBHOOK_STATS_VERSION 1

/** Delivery counters. Set version (IVR_WEBHOOK_STATS_INIT); fields only appended. */
typedef struct ivr_webhook_stats {
  unsigned int version;      /**< IVR_WEBHOOK_STATS_VERSION: the fields the caller knows */
  uint64_t published;        /**< events spooled (one per matching webhook), since start */
  uint64_t publish_rejected; /**< events refused (spool full, write error): logged, lost */
  uint64_t delivered;        /**< accepted by their endpoint (2xx) */
  uint64_t failed_attempts;  /**< attempts that failed (retried or dead-lettered) */
  uint64_t dead_lettered;    /**< events moved to the dead letters */
  uint64_t requeued;         /**< dead letters requeued */
  uint64_t spool_errors;     /**< spooled events whose disk write then failed */
  uint64_t in_flight;        /**< now: requests under way */
  uint64_t queued;           /**< now: events waiting for delivery, in flight included */
  uint64_t dead;             /**< now: dead letters */
  int healthy;               /**< 0 once a spool write failed (restart on the spool) */
} ivr_webhook_stats;

#define IVR_WEBHOOK_STATS_INIT \
  { IVR_WEBHOOK_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Fills *out (whose version the caller set) with the counters. Totals count from
 * ivr_engine_start (the "now" values include what an earlier run left in the spool).
 * Errors: IVR_EINVAL, IVR_EVERSION, IVR_ESTATE (off or not started), IVR_EGONE.
 */
IVR_API int ivr_engine_webhook_stats(ivr_engine *engine, ivr_webhook_stats *out);

/** A dead letter: an event its endpoint did not accept after max_attempts (or 410 Gone). */
typedef struct ivr_dead_letter {
  const char *id;           /**< 32 hex digits: the X-Ivr-Event-Id */
  const char *subscription; /**< the webhook's name */
  const char *event_type;   /**< "call.ended", ... */
  unsigned int attempts;    /**< failed attempts */
  const char *last_error;   /**< "HTTP 503: ...", "connect: ...", "subscription removed" */
  int64_t created_ms;       /**< when the event was published, Unix ms */
} ivr_dead_letter;

/**
 * Receives one dead letter; the struct and its strings are valid during the call only.
 * Return 0 to continue, anything else to stop the iteration.
 */
typedef int (*ivr_dead_letter_cb)(const ivr_dead_letter *letter, void *user_data);

/**
 * Calls cb for every dead letter, oldest first. The list is copied on the engine thread,
 * then cb runs on the calling thread (so it may call ivr_engine_webhook_requeue/purge).
 * Errors: IVR_EINVAL, IVR_ESTATE (off or not started), IVR_EGONE.
 */
IVR_API int ivr_engine_webhook_dead_letters(ivr_engine *engine, ivr_dead_letter_cb cb,
                                            void *user_data);

/**
 * Makes a dead letter pending again (attempts 0, due now). Errors: IVR_EINVAL,
 * IVR_ENOTFOUND (no such event, or its webhook is not set), IVR_ESTATE (not a dead letter,
 * or webhooks off / not started), IVR_EGONE.
 */
IVR_API int ivr_engine_webhook_requeue(ivr_engine *engine, const char *id);

/**
 * Drops a dead letter for good. Errors: IVR_EINVAL, IVR_ENOTFOUND, IVR_ESTATE (a pending
 * event: nothing pending is ever dropped; or webhooks off / not started), IVR_EGONE.
 */
IVR_API int ivr_engine_webhook_purge(ivr_engine *engine, const char *id);

#ifdef __cplusplus
}
#endif

#endif /* IVR_WEBHOOK_H */
