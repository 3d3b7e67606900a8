/*
 * libivr: flows. An engine runs flow documents (docs/flows.md): each inbound call whose
 * called number (To user) maps to a flow runs that flow's active version, pinned for the
 * whole call. Loading or activating a version never disturbs calls in progress.
 *
 * Thread-safety: every function here may be called from any thread, including from an
 * event callback. Handles returned here (reports, lists) belong to the caller.
 */
#ifndef IVR_FLOW_H
#define IVR_FLOW_H

#include <stddef.h>

#include "ivr/common.h"
#include "ivr/engine.h"
#include "ivr/event.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- validation reports ---- */

/** The outcome of validating or loading a flow document. Free with ivr_flow_report_free. */
typedef struct ivr_flow_report ivr_flow_report;

/** Number of problems (0 when the document is valid). */
IVR_API size_t ivr_flow_report_count(const ivr_flow_report *report);

/**
 * Problem i: its JSON Pointer ("" for the document), 1-based line and column (0 when
 * unknown) and reason. Out-pointers may be NULL. Strings are owned by the report.
 * IVR_EINVAL for i out of range.
 */
IVR_API int ivr_flow_report_problem(const ivr_flow_report *report, size_t i, const char **pointer,
                                    unsigned *line, unsigned *column, const char **message);

/** Every problem, one per line: "line L, column C: /pointer: reason". "" when valid. */
IVR_API const char *ivr_flow_report_text(const ivr_flow_report *report);

/** The flow id and version of a valid document ("" otherwise). Owned by the report. */
IVR_API const char *ivr_flow_report_flow_id(const ivr_flow_report *report);
IVR_API const char *ivr_flow_report_version(const ivr_flow_report *report);

/** Frees a report. NULL is a no-op. */
IVR_API void ivr_flow_report_free(ivr_flow_report *report);

/* ---- flows on an engine ---- */

/**
 * Validates a document (UTF-8 JSON, `len` bytes) against this engine: its prompt
 * directory (prompt files named literally must exist) and its registered verbs. Does not
 * load it. On return *report (never NULL on IVR_OK) holds the problems, if any.
 * Returns IVR_OK when the document was checked (valid or not); IVR_EINVAL for bad arguments.
 */
IVR_API int ivr_engine_flow_validate(ivr_engine *engine, const char *document, size_t len,
                                     ivr_flow_report **report);

/**
 * Validates and loads a document as a new version of its flow. The version is the
 * document's "version" field, or the next number ("1", "2", ...) when it has none; a
 * version already loaded for that flow is refused (IVR_ESTATE). With activate != 0 the new
 * version becomes the flow's active version (new calls use it; running calls keep theirs);
 * the first version loaded for a flow is always activated.
 * Returns IVR_EPARSE when the document has problems (listed in *report), IVR_OK when loaded.
 * report may be NULL; otherwise *report receives the report (free it) in every case but
 * IVR_EINVAL.
 */
IVR_API int ivr_engine_flow_load(ivr_engine *engine, const char *document, size_t len,
                                 int activate, ivr_flow_report **report);

/** Makes a loaded version the active one. IVR_ENOTFOUND for an unknown flow or version. */
IVR_API int ivr_engine_flow_activate(ivr_engine *engine, const char *flow_id,
                                     const char *version);

/**
 * Maps calls to a flow by the user part of their To URI (the number called). "*" maps every
 * call that no other entry point matches. flow_id NULL removes the entry point. The flow
 * need not be loaded yet: a call to an entry point whose flow has no active version is
 * handled by the host as if unmapped (and a warning is logged).
 */
IVR_API int ivr_engine_flow_map(ivr_engine *engine, const char *called_user, const char *flow_id);

/** The flows and versions loaded. Free with ivr_flow_list_free. */
typedef struct ivr_flow_list ivr_flow_list;

IVR_API int ivr_engine_flow_list(ivr_engine *engine, ivr_flow_list **out);
IVR_API size_t ivr_flow_list_count(const ivr_flow_list *list);
/** Entry i (sorted by flow id, then load order). Out-pointers may be NULL. */
IVR_API int ivr_flow_list_get(const ivr_flow_list *list, size_t i, const char **flow_id,
                              const char **version, int *active, unsigned *nodes);
IVR_API void ivr_flow_list_free(ivr_flow_list *list);

/* ---- custom verbs ---- */

/** One execution of a custom verb by a call's flow; finished by ivr_verb_request_complete. */
typedef struct ivr_verb_request ivr_verb_request;

/**
 * Runs a custom verb. Called on the engine thread; must not block: start the work and
 * complete the request later, from any thread (or at once, from inside the callback).
 */
typedef void (*ivr_verb_cb)(ivr_verb_request *request, void *user_data);

/**
 * Registers a custom verb (a name such as "crm.lookup": letters, digits, '_', '.', '-').
 * Flows that use the verb validate only after it is registered. Registering a name twice
 * replaces the callback (free_user_data is called for the old user_data).
 */
IVR_API int ivr_engine_register_verb(ivr_engine *engine, const char *name, ivr_verb_cb cb,
                                     void *user_data, ivr_free_cb free_user_data);

/** The verb's name, the flow node running it, and the call (borrowed: valid until complete). */
IVR_API const char *ivr_verb_request_verb(const ivr_verb_request *request);
IVR_API const char *ivr_verb_request_node(const ivr_verb_request *request);
IVR_API ivr_call *ivr_verb_request_call(const ivr_verb_request *request);

/** The node's rendered arguments: count, i-th name/value, or a value by name (NULL if absent). */
IVR_API size_t ivr_verb_request_arg_count(const ivr_verb_request *request);
IVR_API int ivr_verb_request_arg(const ivr_verb_request *request, size_t i, const char **name,
                                 const char **value);
IVR_API const char *ivr_verb_request_get(const ivr_verb_request *request, const char *name);

/** Sets a result value, readable by the flow as steps.<node>.<name>. Copied. */
IVR_API int ivr_verb_request_set(ivr_verb_request *request, const char *name, const char *value);

/**
 * Finishes the request and frees it (the handle is invalid afterwards). exit NULL or "next"
 * takes the node's next exit, another name one of its "exits"; error not NULL fails the
 * step (its on_error exit). A request completed after its call ended, or after the node's
 * timeout_ms, is dropped. Any thread.
 */
IVR_API int ivr_verb_request_complete(ivr_verb_request *request, const char *exit,
                                      const char *error);

#ifdef __cplusplus
}
#endif

#endif /* IVR_FLOW_H */
