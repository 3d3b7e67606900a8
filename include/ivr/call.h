/*
 * libivr: calls. A call handle reaches the host in events; it stays valid for the duration
 * of each callback, and for as long as the host holds a reference (ivr_call_ref).
 *
 * Thread-safety: every function here may be called from any thread. Called from the
 * engine thread (inside an event callback) the action runs at once; called from another
 * thread it is handed to the engine thread and the caller waits briefly for its result.
 * Actions on a call that has ended fail with IVR_EGONE. Results of actions arrive as
 * events (IVR_EVENT_PROMPT_FINISHED, IVR_EVENT_COLLECT_DONE, ...).
 */
#ifndef IVR_CALL_H
#define IVR_CALL_H

#include "ivr/common.h"
#include "ivr/event.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Takes a reference: the handle and its borrowed strings stay valid until ivr_call_unref. */
IVR_API int ivr_call_ref(ivr_call *call);
/** Drops a reference taken with ivr_call_ref. NULL is a no-op. */
IVR_API void ivr_call_unref(ivr_call *call);

/** Sends 180 Ringing. IVR_ESTATE once answered or ended. */
IVR_API int ivr_call_ring(ivr_call *call);

/**
 * Answers with 200 OK and our SDP answer (or offer, when the INVITE had none).
 * IVR_EVENT_CALL_ANSWERED follows when the ACK arrives. IVR_ESTATE if already answered.
 */
IVR_API int ivr_call_answer(ivr_call *call);

/**
 * Rejects an unanswered call with a final status (400-699) and a reason text (may be NULL)
 * carried in a Reason header. IVR_EINVAL for a status outside 400-699.
 */
IVR_API int ivr_call_reject(ivr_call *call, int sip_status, const char *reason);

/** Hangs up: BYE once answered, 480 before. reason may be NULL. */
IVR_API int ivr_call_hangup(ivr_call *call, const char *reason);

/**
 * Plays a prompt: a file name relative to the engine's prompt_dir ("welcome.wav"),
 * decoded and cached once for all calls. Replaces the current prompt, which then finishes
 * with IVR_PROMPT_STOPPED. IVR_EVENT_PROMPT_FINISHED follows. A prompt not yet cached is
 * loaded off the engine thread. IVR_EINVAL for names with "..", absolute paths or empty;
 * IVR_ESTATE before the call is answered.
 */
IVR_API int ivr_call_play(ivr_call *call, const char *prompt);

#define IVR_SAY_OPTIONS_VERSION 1
/** The longest text ivr_call_say accepts, in bytes of UTF-8 (without the NUL). */
#define IVR_SAY_MAX_TEXT 4096

/** Text-to-speech. Fields are only ever appended; set up with IVR_SAY_OPTIONS_INIT. */
typedef struct ivr_say_options {
  unsigned int version;  /**< IVR_SAY_OPTIONS_VERSION */
  const char *voice;     /**< an espeak-ng voice: a name, file or language as listed by
                              `espeak-ng --voices` ("en", "en-us", "de", "gmw/en-US"),
                              optionally "+variant" (`espeak-ng --voices=variant`, e.g.
                              "en+f3"); case-insensitive; default "en" (also for NULL) */
  unsigned int rate_wpm; /**< speaking rate in words per minute, 80..450; default 160 */
} ivr_say_options;

#define IVR_SAY_OPTIONS_INIT { IVR_SAY_OPTIONS_VERSION, "en", 160 }

/** Fills opts with the defaults of the given version. IVR_EVERSION if unknown. */
IVR_API int ivr_say_options_init(ivr_say_options *opts, unsigned int version);

/**
 * Speaks text (UTF-8, 1..IVR_SAY_MAX_TEXT bytes) with espeak-ng, and plays it exactly like
 * ivr_call_play plays a file: it replaces the current prompt, a collect's barge-in and
 * ivr_call_stop_playback stop it, and IVR_EVENT_PROMPT_FINISHED follows with prompt
 * "say:" + text. Synthesis runs on the library's text-to-speech thread, never on the
 * engine thread; audio is cached by (text, voice, rate) for every call, so a repeated
 * text starts at once. opts may be NULL (the defaults). text and opts are copied.
 * Errors: IVR_EINVAL for NULL, empty (or all-space), too long or invalid UTF-8 text, a
 * rate_wpm outside 80..450 or a malformed voice; IVR_ENOTFOUND for a voice espeak-ng does
 * not have; IVR_EVERSION for an unknown opts->version; IVR_EBUSY when 256 distinct texts
 * already wait for synthesis; IVR_EUNSUPPORTED when espeak-ng could not start;
 * IVR_ESTATE before the call is answered. ivr_error_last() names the field. A synthesis
 * that fails later ends the prompt with IVR_PROMPT_FAILED and the event's reason says why.
 */
IVR_API int ivr_call_say(ivr_call *call, const char *text, const ivr_say_options *opts);

/** Stops the current prompt (IVR_PROMPT_STOPPED). No-op when nothing plays. */
IVR_API int ivr_call_stop_playback(ivr_call *call);

#define IVR_COLLECT_OPTIONS_VERSION 1

/** Digit collection. Fields are only ever appended; set up with IVR_COLLECT_OPTIONS_INIT. */
typedef struct ivr_collect_options {
  unsigned int version;                /**< IVR_COLLECT_OPTIONS_VERSION */
  unsigned int max_digits;             /**< 1..64; default 1 */
  const char *terminators;             /**< digits that end collection; default "#"; "" none */
  unsigned int first_digit_timeout_ms; /**< default 5000; counted from the end of the
                                            current prompt when one plays */
  unsigned int inter_digit_timeout_ms; /**< default 3000 */
  int barge_in;                        /**< default 1: a digit stops the current prompt */
} ivr_collect_options;

#define IVR_COLLECT_OPTIONS_INIT { IVR_COLLECT_OPTIONS_VERSION, 1, "#", 5000, 3000, 1 }

/** Fills opts with the defaults of the given version. IVR_EVERSION if unknown. */
IVR_API int ivr_collect_options_init(ivr_collect_options *opts, unsigned int version);

/**
 * Starts collecting digits (digits that arrived since the last collect ended and before
 * this one started are kept, as type-ahead). Ends with IVR_EVENT_COLLECT_DONE. A collect
 * already running ends with IVR_COLLECT_CANCELLED. IVR_ESTATE before answer.
 */
IVR_API int ivr_call_collect(ivr_call *call, const ivr_collect_options *opts);

/** Enables or disables inband (audio tone) DTMF detection for this call. Off by default. */
IVR_API int ivr_call_set_inband_dtmf(ivr_call *call, int enabled);

/* ---- facts. Strings are borrowed from the call handle: valid while it is. ---- */

/** The SIP Call-ID. Never NULL ("" for an invalid handle). */
IVR_API const char *ivr_call_id(const ivr_call *call);
/** The From header value as received (display name, URI, tag). Never NULL. */
IVR_API const char *ivr_call_from(const ivr_call *call);
/** The To header value as received. Never NULL. */
IVR_API const char *ivr_call_to(const ivr_call *call);
/** The user part of the From URI (the caller's number), or "". Never NULL. */
IVR_API const char *ivr_call_from_user(const ivr_call *call);
/** The user part of the To URI (the number called), or "". Never NULL. */
IVR_API const char *ivr_call_to_user(const ivr_call *call);

/**
 * Stores in *out the value of the first header of the INVITE with this name (matched
 * case-insensitively, compact forms not expanded). IVR_ENOTFOUND when absent.
 */
IVR_API int ivr_call_header(const char **out, const ivr_call *call, const char *name);

/**
 * Copies the remote media address ("ip") into buf (NUL-terminated) and the port into
 * *port. These change on re-INVITE or when symmetric RTP latches, hence the copy.
 * IVR_ENOTFOUND before SDP was negotiated; IVR_EINVAL if buf is too small (46 is enough).
 */
IVR_API int ivr_call_remote_media(char *buf, size_t buflen, unsigned short *port,
                                  const ivr_call *call);

/** The negotiated codec ("PCMU" or "PCMA") in *out (static string). IVR_ENOTFOUND before. */
IVR_API int ivr_call_codec(const char **out, const ivr_call *call);

/** Host data attached to the call (not freed by the library). */
IVR_API int ivr_call_set_user_data(ivr_call *call, void *user_data);
IVR_API void *ivr_call_user_data(const ivr_call *call);

#ifdef __cplusplus
}
#endif

#endif /* IVR_CALL_H */
