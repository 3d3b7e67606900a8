/*
 * libivr: database connectors for the db steps of flows.
 *
 * A flow's db node names a connector ("connector": "crm") and gives a literal statement with
 * bound parameters ("query": "SELECT tier FROM customers WHERE phone = $1", "params":
 * ["{{call.from}}"]). A connector is either built in, opened from a URL (SQLite, PostgreSQL,
 * Redis: ivr_engine_add_db), or the host's own (ivr_engine_register_db_connector), which
 * answers each query asynchronously with rows. Statements are never built from parameter
 * text. See docs/db.md.
 */
#ifndef IVR_DB_H
#define IVR_DB_H

#include "ivr/common.h"
#include "ivr/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- built-in connectors ---- */

#define IVR_DB_OPTIONS_VERSION 1

/** A built-in connector. Set up with IVR_DB_OPTIONS_INIT; fields only appended. */
typedef struct ivr_db_options {
  unsigned int version; /**< IVR_DB_OPTIONS_VERSION */
  /**
   * Required. sqlite:///abs/path.db, sqlite:relative.db, sqlite::memory:;
   * postgresql://user@host:port/dbname?options (libpq's URI); redis://[user@]host:port[/db]
   * or unix:///path/redis.sock[?db=N]. Hosts are IP literals or localhost (no blocking DNS).
   */
  const char *url;
  /** The name of a secret holding the password (ivr_engine_set_secret, else the environment
   *  variable IVR_SECRET_<NAME>); NULL for none. Read when the connector is made. */
  const char *password_secret;
  unsigned int pool_size;          /**< connections (PostgreSQL 1-16), workers (SQLite 1-8); 2 */
  unsigned int connect_timeout_ms; /**< one connection attempt; default 2000 */
  unsigned int max_waiting;        /**< queries waiting for a connection before "busy"; 1000 */
  int read_only;                   /**< SQLite: open read-only; default 0 */
} ivr_db_options;

#define IVR_DB_OPTIONS_INIT \
  { IVR_DB_OPTIONS_VERSION, NULL, NULL, 2, 2000, 1000, 0 }

/** Fills opts with the defaults of the given version. IVR_EVERSION if unknown. */
IVR_API int ivr_db_options_init(ivr_db_options *opts, unsigned int version);

/**
 * Adds the built-in connector called name (an identifier: letters, digits, '_'), or
 * replaces the one of that name (its queries in flight fail with reason "connect").
 * Connecting is asynchronous: a server that is down is retried with backoff while queries
 * fail with reason "connect". Before ivr_engine_start the connector is kept and made at
 * start (errors are logged then); after start the error is returned.
 * Errors: IVR_EINVAL (a field, named: "db.crm.url: ..."), IVR_EUNSUPPORTED (the URL's
 * scheme), IVR_EVERSION, IVR_EGONE (stopped).
 * Thread-safety: any thread, also from an event callback. Everything is copied.
 */
IVR_API int ivr_engine_add_db(ivr_engine *engine, const char *name, const ivr_db_options *opts);

/**
 * Removes a connector, built-in or the host's. Queries in flight on it fail with reason
 * "connect". Errors: IVR_EINVAL, IVR_ENOTFOUND. Any thread.
 */
IVR_API int ivr_engine_remove_db(ivr_engine *engine, const char *name);

/* ---- the host's own connectors ---- */

/** One query handed to a host connector; answered by ivr_db_query_complete. */
typedef struct ivr_db_query ivr_db_query;

/**
 * Runs a query. Called on the engine thread; must not block: start the work and complete
 * the query later, from any thread (or at once, from inside the callback). The query is
 * the host's until it calls ivr_db_query_complete, which it must do exactly once, even
 * after a cancel.
 */
typedef void (*ivr_db_query_cb)(ivr_db_query *query, void *user_data);

/**
 * Optional: the engine no longer waits for the query of this id (the call ended or the
 * step's timeout passed). Called on the engine thread. The host may stop the work; it
 * still completes the query (the answer is dropped).
 */
typedef void (*ivr_db_cancel_cb)(uint64_t query_id, void *user_data);

/**
 * Registers a host connector called name (an identifier), or replaces the connector of that
 * name. user_data lives until the connector is replaced, removed or the engine is freed;
 * then free_user_data (if not NULL) is called with it, on the engine thread or in
 * ivr_engine_free.
 * Errors: IVR_EINVAL (engine, name, query NULL), IVR_EGONE. Any thread.
 */
IVR_API int ivr_engine_register_db_connector(ivr_engine *engine, const char *name,
                                             ivr_db_query_cb query, ivr_db_cancel_cb cancel,
                                             void *user_data, ivr_free_cb free_user_data);

/* What the flow asks (borrowed: valid until ivr_db_query_complete). Any thread. */
IVR_API uint64_t ivr_db_query_id(const ivr_db_query *query);
IVR_API const char *ivr_db_query_connector(const ivr_db_query *query);
/** The statement, literal from the flow document. */
IVR_API const char *ivr_db_query_statement(const ivr_db_query *query);
IVR_API size_t ivr_db_query_param_count(const ivr_db_query *query);
/** The i-th bound parameter, rendered (UTF-8 text); NULL for SQL NULL or i out of range.
 *  len (if not NULL) receives its length in bytes. */
IVR_API const char *ivr_db_query_param(const ivr_db_query *query, size_t i, size_t *len);
IVR_API unsigned int ivr_db_query_timeout_ms(const ivr_db_query *query);
/** Rows the flow reads at most; more are dropped and the result marked truncated. */
IVR_API size_t ivr_db_query_max_rows(const ivr_db_query *query);

/** The type of one value of a row. */
typedef enum ivr_db_type {
  IVR_DB_NULL = 0,
  IVR_DB_BOOL = 1,
  IVR_DB_INT = 2,
  IVR_DB_REAL = 3,
  IVR_DB_TEXT = 4
} ivr_db_type;

/** One value of a row; only the member of its type is read. */
typedef struct ivr_db_value {
  ivr_db_type type;
  int boolean;      /**< IVR_DB_BOOL: 0 or 1 */
  int64_t integer;  /**< IVR_DB_INT */
  double real;      /**< IVR_DB_REAL */
  const char *text; /**< IVR_DB_TEXT: UTF-8, copied */
  size_t text_len;  /**< its length in bytes */
} ivr_db_value;

/**
 * Sets the result's column names (copied), before any row. Calling it again replaces them
 * and drops the rows added so far. Errors: IVR_EINVAL (NULL name, duplicate name).
 */
IVR_API int ivr_db_query_set_columns(ivr_db_query *query, const char *const *names, size_t count);

/**
 * Adds a row of count values, one per column (copied). Rows past max_rows are counted as
 * truncated, not kept. Errors: IVR_EINVAL (count differs from the columns, bad type).
 */
IVR_API int ivr_db_query_add_row(ivr_db_query *query, const ivr_db_value *values, size_t count);

/** How a host query ended: the step's reason when it is not IVR_DB_OK. */
typedef enum ivr_db_status {
  IVR_DB_OK = 0,      /**< the rows set (possibly none) are the answer */
  IVR_DB_TIMEOUT = 1, /**< reason "timeout" */
  IVR_DB_CONNECT = 2, /**< reason "connect": the back end is unreachable */
  IVR_DB_QUERY = 3,   /**< reason "query": the back end refused the statement */
  IVR_DB_BUSY = 4     /**< reason "busy": too much waiting work */
} ivr_db_status;

/**
 * Finishes the query and frees it (the handle is invalid afterwards). message (copied)
 * explains a failure: it reaches the flow as steps.<node>.error and the logs. A query the
 * engine no longer waits for is dropped. Any thread, also after the connector was removed or
 * the engine stopped or freed: every query handed out must still be completed (or leaks).
 * Errors: IVR_EINVAL (not a valid query; status out of range: the query is still freed).
 */
IVR_API int ivr_db_query_complete(ivr_db_query *query, ivr_db_status status, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* IVR_DB_H */
