/*
 * libivr: events delivered to the host's callback, on the engine thread.
 */
#ifndef IVR_EVENT_H
#define IVR_EVENT_H

#include "ivr/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ivr_call ivr_call;

typedef enum ivr_event_type {
  IVR_EVENT_CALL_STARTED = 1,    /**< a new INVITE: answer, reject or ring */
  IVR_EVENT_CALL_ANSWERED = 2,   /**< media is up (our 200 OK was acknowledged) */
  IVR_EVENT_DTMF = 3,            /**< one digit: digit, duration_ms, dtmf_source */
  IVR_EVENT_PROMPT_FINISHED = 4, /**< prompt, prompt_end */
  IVR_EVENT_COLLECT_DONE = 5,    /**< digits, collect_end */
  IVR_EVENT_CALL_ENDED = 6,      /**< end_reason, sip_code, reason; the last event of a call */
  IVR_EVENT_MEDIA_UPDATED = 7,   /**< re-INVITE: on_hold, new remote media address */
  IVR_EVENT_FLOW_STEP = 8,       /**< the call's flow entered a node or decided: flow_node,
                                      flow_verb, flow_detail */
  IVR_EVENT_ROUTE_DECIDED = 9,   /**< a routing decision: route_plan, route_detail (candidates
                                      in order, targets skipped and why) */
  IVR_EVENT_ROUTE_ATTEMPT = 10,  /**< a delivery attempt failed: route_target, route_uri,
                                      sip_code, route_detail ("busy (486 Busy Here)") */
  IVR_EVENT_CALL_QUEUED = 11,    /**< no target could take the call: queue_position,
                                      queue_priority */
  IVR_EVENT_CALL_DELIVERED = 12  /**< a dialing system answered; the call is bridged to it:
                                      route_target, route_uri, sip_code */
} ivr_event_type;

typedef enum ivr_dtmf_source {
  IVR_DTMF_RFC4733 = 0, /**< RTP telephone-event */
  IVR_DTMF_INFO = 1,    /**< SIP INFO (application/dtmf-relay or application/dtmf) */
  IVR_DTMF_INBAND = 2   /**< tones detected in the audio (when enabled on the call) */
} ivr_dtmf_source;

typedef enum ivr_prompt_end {
  IVR_PROMPT_COMPLETED = 0, /**< played to the end */
  IVR_PROMPT_STOPPED = 1,   /**< ivr_call_stop_playback(), or replaced by another play */
  IVR_PROMPT_BARGED_IN = 2, /**< a digit stopped it (collect with barge_in) */
  IVR_PROMPT_FAILED = 3     /**< could not be loaded or played; see the log */
} ivr_prompt_end;

typedef enum ivr_collect_end {
  IVR_COLLECT_MAX_DIGITS = 0,    /**< max_digits were collected */
  IVR_COLLECT_TERMINATOR = 1,    /**< a terminator digit arrived (not included in digits) */
  IVR_COLLECT_FIRST_TIMEOUT = 2, /**< no digit within first_digit_timeout_ms */
  IVR_COLLECT_INTER_TIMEOUT = 3, /**< no further digit within inter_digit_timeout_ms */
  IVR_COLLECT_CANCELLED = 4      /**< the call ended or a new collect replaced it */
} ivr_collect_end;

typedef enum ivr_end_reason {
  IVR_END_REMOTE_HANGUP = 0, /**< the caller sent BYE */
  IVR_END_REMOTE_CANCEL = 1, /**< the caller cancelled before we answered */
  IVR_END_LOCAL_HANGUP = 2,  /**< the host hung up */
  IVR_END_REJECTED = 3,      /**< the host rejected the call */
  IVR_END_NO_MEDIA = 4,      /**< no usable media (488 sent) */
  IVR_END_ENGINE_STOP = 5,   /**< ivr_engine_stop() */
  IVR_END_ERROR = 6          /**< SIP transaction or transport failure */
} ivr_end_reason;

/**
 * One event. Fields are only ever appended; read only those documented for the type.
 * The event, its strings and `call` are borrowed for the duration of the callback; take
 * ivr_call_ref() to keep the call handle longer.
 */
typedef struct ivr_event {
  unsigned int version; /**< 3 (fields after on_hold arrived in 2, route_* in 3) */
  ivr_event_type type;
  ivr_call *call;

  /* IVR_EVENT_DTMF */
  char digit;
  unsigned int duration_ms;
  ivr_dtmf_source dtmf_source;

  /* IVR_EVENT_PROMPT_FINISHED */
  const char *prompt;
  ivr_prompt_end prompt_end;

  /* IVR_EVENT_COLLECT_DONE */
  const char *digits; /**< the collected digits, terminator excluded; may be "" */
  ivr_collect_end collect_end;
  ivr_dtmf_source digits_source; /**< source of the first collected digit */

  /* IVR_EVENT_CALL_ENDED */
  ivr_end_reason end_reason;
  int sip_code;       /**< the final SIP status involved (e.g. 487, 488, 200 for BYE) */
  const char *reason; /**< human-readable reason; never NULL for CALL_ENDED */

  /* IVR_EVENT_MEDIA_UPDATED */
  int on_hold;
  /* version 2: every event of a call that runs a flow ("" / NULL otherwise) */
  const char *flow_id;      /**< the flow the call runs, or "" */
  const char *flow_version; /**< its pinned version, or "" */
  const char *flow_node;    /**< the node the call is in ("sub/node" in a subflow), or "" */
  /* IVR_EVENT_FLOW_STEP */
  const char *flow_verb;   /**< the node's verb */
  const char *flow_detail; /**< what happened: "file welcome.wav", "digits 12 ... -> sales" */
  /* IVR_EVENT_CALL_ENDED of a call that ran a flow: its record */
  const char *flow_path;  /**< every node entered, joined by " > " */
  const char *flow_end;   /**< "completed", "hangup", "caller_hangup", "error", "step_limit" */
  const char *flow_error; /**< why the flow failed, or "" */
  /* version 3: routing events (IVR_EVENT_ROUTE_*, IVR_EVENT_CALL_QUEUED/DELIVERED) */
  const char *route_plan;     /**< the plan the route step named */
  const char *route_target;   /**< the target dialled ("" for ROUTE_DECIDED) */
  const char *route_uri;      /**< the URI dialled */
  const char *route_detail;   /**< the decision, or what happened */
  unsigned int route_attempt; /**< 1-based number of the INVITE */
  int queue_position;         /**< 1-based; 0 when not waiting */
  int queue_priority;         /**< 0-999, lower first */
} ivr_event;

/** The event callback. Runs on the engine thread; keep it short and never block. */
typedef void (*ivr_event_cb)(const ivr_event *event, void *user_data);

/** Static names for logs: "call.started", "rfc4733", "barged_in", ... Never NULL. */
IVR_API const char *ivr_event_type_name(ivr_event_type type);
IVR_API const char *ivr_dtmf_source_name(ivr_dtmf_source source);
IVR_API const char *ivr_end_reason_name(ivr_end_reason reason);
IVR_API const char *ivr_collect_end_name(ivr_collect_end end);
IVR_API const char *ivr_prompt_end_name(ivr_prompt_end end);

#ifdef __cplusplus
}
#endif

#endif /* IVR_EVENT_H */
