/* db steps through the C ABI: real SIPp calls run a flow that asks a host connector
   ("leads", answered from another thread) for the caller's lead score, then writes and reads
   a real SQLite database through the built-in connector (ivr_engine_add_db). Then the host
   fails the query, never answers (the step's timeout cancels it), and the connector is
   removed: each takes its documented exit and reason. Bad arguments name their field. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capi_call_end.h"
#include "capi_sipp.h"
#include "capi_test.h"
#include "capi_wait.h"

enum { ANSWER, FAIL, SILENT };
static int host_mode = ANSWER;
static int cancels = 0, queries = 0;
static uint64_t cancelled_id = 0, last_id = 0;
static char seen_param[64], seen_statement[128];
static ivr_db_query *held = NULL; /* a query the host sits on (SILENT) */

/* The host's back end: answers 50 ms later, on its own thread. */
static void *answer_later(void *arg) {
  ivr_db_query *q = arg;
  const char *columns[] = {"score", "tier", "note"};
  ivr_db_value row[3];
  {
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  if (host_mode == FAIL) {
    CHECK(ivr_db_query_complete(q, IVR_DB_CONNECT, "crm unreachable") == IVR_OK);
    return NULL;
  }
  CHECK(ivr_db_query_set_columns(q, columns, 3) == IVR_OK);
  memset(row, 0, sizeof row);
  row[0].type = IVR_DB_INT;
  row[0].integer = 87;
  row[1].type = IVR_DB_TEXT;
  row[1].text = "gold";
  row[1].text_len = 4;
  row[2].type = IVR_DB_NULL;
  CHECK(ivr_db_query_add_row(q, row, 2) == IVR_EINVAL); /* one value short */
  CHECK(strstr(ivr_error_last()->message, "count: 2 values for 3 columns") != NULL);
  CHECK(ivr_db_query_add_row(q, row, 3) == IVR_OK);
  CHECK(ivr_db_query_complete(q, IVR_DB_OK, NULL) == IVR_OK);
  return NULL;
}

static void on_query(ivr_db_query *q, void *user_data) {
  pthread_t t;
  size_t len = 0;
  const char *p = ivr_db_query_param(q, 0, &len);
  CHECK(strcmp((const char *)user_data, "leads-data") == 0);
  pthread_mutex_lock(&mutex);
  queries++;
  last_id = ivr_db_query_id(q);
  snprintf(seen_param, sizeof seen_param, "%.*s", (int)len, p ? p : "(null)");
  snprintf(seen_statement, sizeof seen_statement, "%s", ivr_db_query_statement(q));
  pthread_mutex_unlock(&mutex);
  CHECK(ivr_db_query_param_count(q) == 2);
  CHECK(ivr_db_query_param(q, 1, NULL) == NULL); /* null in the flow: SQL NULL */
  CHECK(ivr_db_query_param(q, 7, NULL) == NULL);
  CHECK(strcmp(ivr_db_query_connector(q), "leads") == 0);
  CHECK(ivr_db_query_max_rows(q) == 5);
  if (host_mode == SILENT) {
    held = q; /* completed after the engine gave up on it */
    return;
  }
  if (pthread_create(&t, NULL, answer_later, q) == 0) pthread_detach(t);
}

static void on_cancel(uint64_t id, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&mutex);
  cancels++;
  cancelled_id = id;
  pthread_mutex_unlock(&mutex);
}

static void call_and_wait(unsigned short port) {
  pthread_mutex_lock(&mutex);
  calls_ended = 0;
  pthread_mutex_unlock(&mutex);
  place_call(port, "5000");
  CHECK(wait_flag(&calls_ended, 30));
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_db_options dbo = IVR_DB_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  char flow[4096], prompts[512], dir[] = "/tmp/ivr-capi-db-XXXXXX", url[700], dbfile[600];
  unsigned short base = (unsigned short)(45000 + (getpid() % 500) * 20);

  if (!mkdtemp(dir)) return 1;
  snprintf(dbfile, sizeof dbfile, "%s/seen.db", dir);
  snprintf(url, sizeof url, "sqlite://%s", dbfile);
  snprintf(
      flow, sizeof flow, "%s",
      "{\"flow\": \"db\", \"version\": \"1\", \"start\": \"hello\", \"nodes\": {\n"
      "  \"hello\": {\"verb\": \"answer\", \"next\": \"lead\"},\n"
      "  \"lead\": {\"verb\": \"db\", \"connector\": \"leads\", \"query\": \"lead_by_phone\",\n"
      "            \"params\": [\"{{call.from}}\", null], \"max_rows\": 5, \"timeout_ms\": 500,\n"
      "            \"map\": {\"score\": \"score\"}, \"next\": \"create\",\n"
      "            \"on_error\": \"failed\", \"on_timeout\": \"slow\"},\n"
      "  \"create\": {\"verb\": \"db\", \"connector\": \"local\",\n"
      "              \"query\": \"CREATE TABLE IF NOT EXISTS seen (phone TEXT, score INTEGER)\",\n"
      "              \"next\": \"insert\", \"on_error\": \"failed\"},\n"
      "  \"insert\": {\"verb\": \"db\", \"connector\": \"local\",\n"
      "              \"query\": \"INSERT INTO seen VALUES (?, ?)\",\n"
      "              \"params\": [\"{{call.from}}\", \"{{vars.score}}\"],\n"
      "              \"next\": \"count\", \"on_error\": \"failed\"},\n"
      "  \"count\": {\"verb\": \"db\", \"connector\": \"local\",\n"
      "             \"query\": \"SELECT count(*) AS n, max(score) AS best FROM seen WHERE phone = "
      "?\",\n"
      "             \"params\": [\"{{call.from}}\"], \"map\": {\"n\": \"n\", \"best\": \"best\"},\n"
      "             \"next\": \"done\", \"on_error\": \"failed\"},\n"
      "  \"done\": {\"verb\": \"hangup\", \"reason\": \"{{vars.score}} "
      "{{steps.lead.row.tier}} {{vars.n}} {{vars.best}}\"},\n"
      "  \"slow\": {\"verb\": \"hangup\", \"reason\": \"slow {{steps.lead.reason}}\"},\n"
      "  \"failed\": {\"verb\": \"hangup\", \"reason\": \"failed {{steps.lead.reason}}"
      "{{steps.insert.reason}}: {{steps.lead.error}}\"}}}");

  snprintf(prompts, sizeof prompts, "%s/prompts", IVR_TEST_BUILD_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = prompts;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_call_end_event, NULL, NULL) == IVR_OK);

  /* Bad arguments name the field. */
  CHECK(ivr_engine_add_db(engine, "local", NULL) == IVR_EINVAL);
  CHECK(ivr_engine_add_db(engine, "9bad", &dbo) == IVR_EINVAL);
  CHECK(ivr_engine_add_db(engine, "local", &dbo) == IVR_EINVAL); /* no url */
  CHECK(strstr(ivr_error_last()->message, "db.local.url: required") != NULL);
  dbo.version = 99;
  dbo.url = url;
  CHECK(ivr_engine_add_db(engine, "local", &dbo) == IVR_EVERSION);
  CHECK(ivr_db_options_init(&dbo, IVR_DB_OPTIONS_VERSION) == IVR_OK);
  CHECK(ivr_engine_register_db_connector(engine, "leads", NULL, NULL, NULL, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_remove_db(engine, "nothing") == IVR_ENOTFOUND);

  /* Before start: kept, and made at start. */
  dbo.url = url;
  dbo.pool_size = 1;
  CHECK(ivr_engine_add_db(engine, "local", &dbo) == IVR_OK);
  CHECK(ivr_engine_register_db_connector(engine, "leads", on_query, on_cancel, "leads-data",
                                         NULL) == IVR_OK);
  CHECK(ivr_engine_flow_load(engine, flow, strlen(flow), 1, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_map(engine, "*", "db") == IVR_OK);
  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "start: %s\n", ivr_error_last()->message);
    return 1;
  }
  /* After start an unknown scheme is refused at once. */
  dbo.url = "mysql://127.0.0.1/x";
  CHECK(ivr_engine_add_db(engine, "other", &dbo) == IVR_EUNSUPPORTED);
  CHECK(strstr(ivr_error_last()->message, "db.other.url: unsupported scheme \"mysql\"") != NULL);

  /* Two calls: the host's score, written to and counted in SQLite. */
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_path, "hello > lead > create > insert > count > done") == 0);
  CHECK(strcmp(end_reason, "87 gold 1 87") == 0);
  CHECK(strcmp(seen_statement, "lead_by_phone") == 0);
  CHECK(strcmp(seen_param, "5551234") == 0);
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_reason, "87 gold 2 87") == 0);

  /* The host reports its back end down: on_error with reason connect. */
  host_mode = FAIL;
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_path, "hello > lead > failed") == 0);
  CHECK(strcmp(end_reason, "failed connect: db connect: leads: crm unreachable") == 0);

  /* The host never answers in time: on_timeout, and the cancel callback names the query. */
  host_mode = SILENT;
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_path, "hello > lead > slow") == 0);
  CHECK(strcmp(end_reason, "slow timeout") == 0);
  pthread_mutex_lock(&mutex);
  CHECK(cancels == 1);
  CHECK(cancelled_id == last_id && last_id != 0);
  pthread_mutex_unlock(&mutex);
  CHECK(held != NULL);
  if (held) CHECK(ivr_db_query_complete(held, IVR_DB_OK, NULL) == IVR_OK); /* dropped */

  /* Removed: reason connector. */
  CHECK(ivr_engine_remove_db(engine, "leads") == IVR_OK);
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_path, "hello > lead > failed") == 0);
  CHECK(
      strstr(end_reason, "failed connector: db connector: no database connector named \"leads\"") ==
      end_reason);

  /* A query the host still holds when the engine is freed: completing it later is safe
     (the answer is dropped). */
  CHECK(ivr_engine_register_db_connector(engine, "leads", on_query, on_cancel, "leads-data",
                                         NULL) == IVR_OK);
  held = NULL;
  call_and_wait(opts.sip_port);
  CHECK(strcmp(end_reason, "slow timeout") == 0);
  CHECK(held != NULL);
  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  ivr_engine_free(engine);
  if (held) CHECK(ivr_db_query_complete(held, IVR_DB_OK, NULL) == IVR_OK);
  unlink(dbfile);
  {
    char wal[640];
    snprintf(wal, sizeof wal, "%s-wal", dbfile);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", dbfile);
    unlink(wal);
  }
  rmdir(dir);
  if (failures) {
    fprintf(stderr, "%d check(s) failed (path \"%s\", reason \"%s\")\n", failures, end_path,
            end_reason);
    return 1;
  }
  printf("all checks passed (%d queries to the host connector)\n", queries);
  return 0;
}
