/*
 * libivr: routing calls to dialing systems.
 *
 * The routing configuration (JSON, docs/routing.md "Configuration") names the targets (the
 * dialing systems: SIP URIs, capacity, weight, priority, headers, health probe), target sets,
 * schedules and plans. A flow's route or enqueue step names a plan; the engine decides, dials
 * the candidates over an outbound SIP leg (B2BUA), fails over on refusal or no answer and
 * queues the call by priority when no target can take it. Each decision and attempt is an
 * event (IVR_EVENT_ROUTE_DECIDED, IVR_EVENT_ROUTE_ATTEMPT, IVR_EVENT_CALL_QUEUED,
 * IVR_EVENT_CALL_DELIVERED).
 *
 * Agent availability comes from the configuration's HTTP connectors or from the host
 * (ivr_engine_push_availability). Queue and target state are readable at any time.
 */
#ifndef IVR_ROUTING_H
#define IVR_ROUTING_H

#include "ivr/common.h"
#include "ivr/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Sets the routing configuration (a JSON object: "targets", "target_sets", "schedules",
 * "plans", "connectors"). Replaces the previous one; live target state (health, counters,
 * availability, reservations) is kept for targets of the same name; calls in progress go on.
 * Before ivr_engine_start it is kept and applied at start.
 * Errors: IVR_EPARSE (malformed JSON: line and column), IVR_EINVAL (a field, named:
 * "routing.targets.vici.capacity: must be an integer from 1 to 100000"), IVR_EGONE.
 * On error nothing changes. Thread-safety: any thread, also from an event callback.
 */
IVR_API int ivr_engine_set_routing(ivr_engine *engine, const char *json);

#define IVR_AVAILABILITY_VERSION 1

/** Agent availability of one target, as the host's own connector reports it. */
typedef struct ivr_availability {
  unsigned int version;          /**< IVR_AVAILABILITY_VERSION */
  unsigned int agents_available; /**< idle agents ready for a call */
  unsigned int agents_logged_in;
  unsigned int calls_waiting; /**< calls waiting in the dialing system itself */
  unsigned int longest_wait_s;
} ivr_availability;

#define IVR_AVAILABILITY_INIT \
  { IVR_AVAILABILITY_VERSION, 0, 0, 0, 0 }

/**
 * Pushes a fresh availability sample for a target (as a polled connector would): it counts
 * as fresh for the target's availability.stale_after_s, and a waiting call is offered the
 * target at once when the sample leaves room. Errors: IVR_EINVAL, IVR_EVERSION,
 * IVR_ENOTFOUND (no such target), IVR_ESTATE (routing not configured or engine not
 * started), IVR_EGONE. Any thread; the sample is copied.
 */
IVR_API int ivr_engine_push_availability(ivr_engine *engine, const char *target,
                                         const ivr_availability *sample);

/**
 * Marks the host's availability data for a target unusable (its own poll failed): a target
 * whose capacity rule needs agent data takes no call until the next sample. Same errors.
 */
IVR_API int ivr_engine_mark_availability_stale(ivr_engine *engine, const char *target);

/**
 * Drains a target (draining != 0: no new calls; calls in progress go on) or ends the
 * draining. Errors: IVR_EINVAL, IVR_ENOTFOUND, IVR_ESTATE, IVR_EGONE. Any thread.
 */
IVR_API int ivr_engine_set_target_draining(ivr_engine *engine, const char *target, int draining);

typedef enum ivr_target_health {
  IVR_TARGET_UP = 0,
  IVR_TARGET_DOWN = 1,    /**< the health probe (or a transport failure) marked it down */
  IVR_TARGET_DRAINING = 2 /**< an operator is draining it */
} ivr_target_health;

#define IVR_TARGET_STATE_VERSION 1

/** A snapshot of one target's live state. */
typedef struct ivr_target_state {
  unsigned int version; /**< set by the caller: IVR_TARGET_STATE_VERSION */
  ivr_target_health health;
  unsigned int capacity;
  unsigned int active;   /**< delivered calls in progress */
  unsigned int reserved; /**< slots held for calls being dialled or offered */
  unsigned long long offered, answered, completed;
  unsigned long long failed; /**< delivery attempts that failed, every reason */
  int availability_fresh;    /**< 1 when fresh agent data is present */
  long long idle_agents;     /**< as routing counts them (0 when stale) */
} ivr_target_state;

/**
 * Reads a target's live state into *out (out->version must be set). Errors: IVR_EINVAL,
 * IVR_EVERSION, IVR_ENOTFOUND, IVR_ESTATE, IVR_EGONE. Any thread (not from inside an event
 * callback of another engine's thread: it waits for the engine thread).
 */
IVR_API int ivr_engine_target_state(ivr_engine *engine, const char *target, ivr_target_state *out);

#define IVR_QUEUE_STATS_VERSION 1

/** The call queue: calls waiting because no target could take them. */
typedef struct ivr_queue_stats {
  unsigned int version; /**< set by the caller: IVR_QUEUE_STATS_VERSION */
  unsigned int waiting; /**< calls in the queue now */
  unsigned int offered; /**< of those, calls being dialled on an offered slot */
  unsigned long long oldest_wait_ms;
  long long service_interval_ms; /**< the wait estimate's interval; -1 until a call left */
  unsigned long long enqueued, served, abandoned, expired; /**< totals */
} ivr_queue_stats;

/** Reads the queue's state. Errors: IVR_EINVAL, IVR_EVERSION, IVR_ESTATE, IVR_EGONE. */
IVR_API int ivr_engine_queue_stats(ivr_engine *engine, ivr_queue_stats *out);

/**
 * The 1-based queue position of a call, or 0 when it is not waiting. Errors: IVR_EINVAL,
 * IVR_ESTATE, IVR_EGONE. Any thread.
 */
IVR_API int ivr_call_queue_position(ivr_call *call, unsigned int *position);

#ifdef __cplusplus
}
#endif

#endif /* IVR_ROUTING_H */
