/*
 * libivr: common definitions of the C ABI.
 *
 * Conventions (see docs/c-api.md):
 *  - every function returns int: 0 on success, a negative IVR_E* code on failure, and then
 *    ivr_error_last() describes the failure on the calling thread;
 *  - outputs come through the first parameters;
 *  - input strings are UTF-8 and copied; returned strings are borrowed, with the lifetime
 *    documented on each function;
 *  - option structs start with a version field and are set up with *_INIT or *_init();
 *  - callbacks take user_data last;
 *  - every *_free accepts NULL.
 */
#ifndef IVR_COMMON_H
#define IVR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(IVR_BUILDING_LIBRARY)
#define IVR_API __attribute__((visibility("default")))
#else
#define IVR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define IVR_VERSION_MAJOR 0
#define IVR_VERSION_MINOR 1
#define IVR_VERSION_PATCH 0

/** Error codes. Values never change once released. */
typedef enum ivr_error_code {
  IVR_OK = 0,
  IVR_EINVAL = -1,     /**< an argument is invalid (the message names it) */
  IVR_ENOMEM = -2,     /**< out of memory */
  IVR_ESTATE = -3,     /**< not allowed in the current state (e.g. answer twice) */
  IVR_ENOTFOUND = -4,  /**< no such header, prompt, ... */
  IVR_EGONE = -5,      /**< the call has ended */
  IVR_EIO = -6,        /**< a file or socket operation failed */
  IVR_ESIP = -7,       /**< the SIP stack failed (e.g. could not bind) */
  IVR_EMEDIA = -8,     /**< the media engine failed */
  IVR_EVERSION = -9,   /**< an options struct has an unknown version */
  IVR_EBUSY = -10,     /**< a resource is exhausted (e.g. RTP ports) */
  IVR_EPARSE = -11,    /**< input could not be parsed */
  IVR_EUNSUPPORTED = -12,
  IVR_EINTERNAL = -99  /**< a bug: please report it with the message */
} ivr_error_code;

typedef struct ivr_error {
  int code;            /**< the ivr_error_code */
  const char *message; /**< never NULL; names the field and the reason */
} ivr_error;

/**
 * The last error on the calling thread. Never NULL; code is IVR_OK with an empty message
 * when no call has failed on this thread yet. Valid until the next failing ivr_* call on
 * the same thread. Thread-safe (thread-local).
 */
IVR_API const ivr_error *ivr_error_last(void);

/** A static description of an error code ("invalid argument"); never NULL. Thread-safe. */
IVR_API const char *ivr_strerror(int code);

/**
 * The library's version string ("0.1.0"); stores the parts when the pointers are not NULL.
 * Static string. Thread-safe.
 */
IVR_API const char *ivr_version(int *major, int *minor, int *patch);

/** Log levels, most severe first. */
typedef enum ivr_log_level {
  IVR_LOG_ERROR = 0,
  IVR_LOG_WARN = 1,
  IVR_LOG_INFO = 2,
  IVR_LOG_DEBUG = 3,
  IVR_LOG_TRACE = 4
} ivr_log_level;

/**
 * Log callback. Called from any of the engine's threads, possibly concurrently: it must be
 * thread-safe and must not call back into the engine. The strings live for the call only.
 */
typedef void (*ivr_log_cb)(ivr_log_level level, const char *subsystem, const char *message,
                           void *user_data);

/** Frees a user_data pointer handed to the library, when the library is done with it. */
typedef void (*ivr_free_cb)(void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* IVR_COMMON_H */
