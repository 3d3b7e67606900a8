/*
 * libivr: the engine. One engine answers SIP calls on one address and owns their media.
 *
 * Threads (see docs/threading.md): the engine runs an engine thread (call state, host
 * callbacks), a SIP thread (Sofia-SIP) and media threads (RTP). Host event callbacks are
 * always called on the engine thread, one at a time.
 */
#ifndef IVR_ENGINE_H
#define IVR_ENGINE_H

#include "ivr/common.h"
#include "ivr/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ivr_engine ivr_engine;

typedef enum ivr_sip_transport {
  IVR_SIP_UDP = 0,
  IVR_SIP_TCP = 1,
  IVR_SIP_UDP_TCP = 2
} ivr_sip_transport;

/** 2 added the webhook spool fields; version 1 structs are still accepted. */
#define IVR_ENGINE_OPTIONS_VERSION 2

/** Engine options. Fields are only ever appended; set up with IVR_ENGINE_OPTIONS_INIT. */
typedef struct ivr_engine_options {
  unsigned int version;            /**< IVR_ENGINE_OPTIONS_VERSION */
  const char *sip_address;         /**< IP literal to listen on; default "127.0.0.1" */
  unsigned short sip_port;         /**< default 5060 */
  ivr_sip_transport sip_transport; /**< default UDP */
  const char *rtp_address;         /**< IP literal for RTP; default = sip_address */
  unsigned short rtp_port_min;     /**< even; default 20000 */
  unsigned short rtp_port_max;     /**< default 30000 */
  unsigned int media_threads;      /**< default 1; at most 64 */
  const char *prompt_dir;          /**< prompts are named relative to it; default "." */
  ivr_log_cb log_cb;               /**< NULL: no logging */
  ivr_log_level log_level;         /**< default IVR_LOG_INFO */
  void *log_user_data;
  const char *user_agent; /**< SIP User-Agent; default "libivr/<version>" */
  /* ---- version 2 ---- */
  /**
   * Directory of the durable webhook spool (created if missing; one engine or process at a
   * time). NULL or "": webhooks are off. See ivr/webhook.h.
   */
  const char *webhook_spool_dir;
  /** Bound of the spooled events on disk; 0 = 256 MiB. Full: new events are refused. */
  unsigned long long webhook_spool_max_bytes;
} ivr_engine_options;

#define IVR_ENGINE_OPTIONS_INIT                                                                   \
  {                                                                                               \
    IVR_ENGINE_OPTIONS_VERSION, "127.0.0.1", 5060, IVR_SIP_UDP, NULL, 20000, 30000, 1, ".", NULL, \
        IVR_LOG_INFO, NULL, NULL, NULL, 0                                                         \
  }

/**
 * Fills opts with the defaults of the given version (1 or 2), writing only that version's
 * fields. Returns IVR_EVERSION if unknown.
 */
IVR_API int ivr_engine_options_init(ivr_engine_options *opts, unsigned int version);

/**
 * Creates an engine (nothing is bound or started yet). The options are copied.
 * On success *out owns a new engine, released with ivr_engine_free().
 * Errors: IVR_EINVAL (a field is invalid: the message names it), IVR_EVERSION.
 * Thread-safety: any thread.
 */
IVR_API int ivr_engine_new(ivr_engine **out, const ivr_engine_options *opts);

/**
 * Sets the callback that receives every event (see ivr/event.h). Call before
 * ivr_engine_start(); IVR_ESTATE afterwards. free_user_data (may be NULL) is called with
 * user_data when the engine is freed or the callback replaced.
 */
IVR_API int ivr_engine_set_event_callback(ivr_engine *engine, ivr_event_cb cb, void *user_data,
                                          ivr_free_cb free_user_data);

/**
 * Binds SIP and starts the engine's threads, then preloads every audio file directly in
 * prompt_dir (files that fail to load are logged and skipped). With webhook_spool_dir set,
 * opens (recovers) the webhook spool on the engine thread before SIP listens, applies the
 * webhooks set so far and resumes delivery. Returns once SIP is listening. Errors: IVR_ESIP
 * (bind failed, the message names the address), IVR_EMEDIA, IVR_ESTATE (already started),
 * IVR_EBUSY (another process holds the webhook spool), IVR_EIO, IVR_EVERSION (a spool
 * written by a newer library). Not from an event callback.
 */
IVR_API int ivr_engine_start(ivr_engine *engine);

/**
 * Stops the engine: ends every call (BYE, or a 503 for calls not answered, carrying
 * `reason` in a Reason header), delivers their IVR_EVENT_CALL_ENDED events, closes the
 * webhook spool (every event published is durable when this returns; deliveries in flight
 * are retried by the next start on the same spool), then stops the threads. Blocks until
 * done (bounded by a few seconds of SIP shutdown). Idempotent.
 * Must not be called from an event callback (IVR_ESTATE). reason may be NULL.
 */
IVR_API int ivr_engine_stop(ivr_engine *engine, const char *reason);

/** Stops if needed and frees the engine. NULL is a no-op. Not from an event callback. */
IVR_API void ivr_engine_free(ivr_engine *engine);

/** The SIP port actually bound (useful with sip_port 0). 0 before start. Any thread. */
IVR_API unsigned short ivr_engine_sip_port(const ivr_engine *engine);

/** Number of calls currently alive. Any thread. */
IVR_API int ivr_engine_call_count(const ivr_engine *engine);

#ifdef __cplusplus
}
#endif

#endif /* IVR_ENGINE_H */
