/* Flows through the C ABI: validation reports, versions, entry points, a custom verb
   completed from another thread, and a real SIPp call run by a flow, pinned to the version
   it started with while a new version is activated. */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capi_test.h"
#include "capi_wait.h"

extern char **environ;

static int call_ended = 0, verb_calls = 0, steps = 0, in_gather = 0, said = 0;
static char end_flow[32], end_version[16], end_path[256], end_flow_end[32], end_reason[128];
static char verb_phone[32], verb_lead[32], verb_call_id[128];

static const char *kFlowV1 =
    "{\"flow\": \"capi\", \"version\": \"1\", \"start\": \"hello\", \"nodes\": {\n"
    "  \"hello\": {\"verb\": \"answer\", \"next\": \"lookup\"},\n"
    "  \"lookup\": {\"verb\": \"crm.lookup\", \"args\": {\"phone\": \"{{call.from}}\",\n"
    "              \"lead\": \"{{call.headers.x_lead_id}}\"}, \"exits\": {\"vip\": \"code\"},\n"
    "              \"next\": \"bye\", \"timeout_ms\": 5000},\n"
    "  \"code\": {\"verb\": \"gather\", \"max_digits\": 4, \"store\": \"vars.code\",\n"
    "            \"prompt\": {\"say\": \"Your code, {{call.from}}?\", \"voice\": \"en-us\"},\n"
    "            \"first_digit_timeout_ms\": 10000, \"next\": \"check\", \"on_no_input\": "
    "\"bye\"},\n"
    "  \"check\": {\"verb\": \"if\", \"condition\": \"vars.code == '42'\", \"then\": \"ok\", "
    "\"else\": \"bye\"},\n"
    "  \"ok\": {\"verb\": \"hangup\", \"reason\": \"code {{vars.code}} tier "
    "{{steps.lookup.tier}}\"},\n"
    "  \"bye\": {\"verb\": \"hangup\", \"reason\": \"no\"}}}";

static const char *kFlowV2 =
    "{\"flow\": \"capi\", \"version\": \"2\", \"start\": \"a\", \"nodes\": {\n"
    "  \"a\": {\"verb\": \"hangup\", \"reason\": \"version 2\"}}}";

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "(null)");
}

static void *complete_later(void *arg) {
  ivr_verb_request *req = arg;
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  CHECK(ivr_verb_request_set(req, "tier", "gold") == IVR_OK);
  CHECK(ivr_verb_request_set(req, "bad name", "x") == IVR_EINVAL);
  CHECK(ivr_verb_request_complete(req, "vip", NULL) == IVR_OK);
  return NULL;
}

static void on_verb(ivr_verb_request *req, void *user_data) {
  pthread_t t;
  CHECK(strcmp((const char *)user_data, "verb data") == 0);
  CHECK(strcmp(ivr_verb_request_verb(req), "crm.lookup") == 0);
  CHECK(strcmp(ivr_verb_request_node(req), "lookup") == 0);
  CHECK(ivr_verb_request_arg_count(req) == 2);
  pthread_mutex_lock(&mutex);
  verb_calls++;
  copy(verb_phone, sizeof verb_phone, ivr_verb_request_get(req, "phone"));
  copy(verb_lead, sizeof verb_lead, ivr_verb_request_get(req, "lead"));
  copy(verb_call_id, sizeof verb_call_id, ivr_call_id(ivr_verb_request_call(req)));
  pthread_mutex_unlock(&mutex);
  CHECK(ivr_verb_request_get(req, "nothing") == NULL);
  CHECK(pthread_create(&t, NULL, complete_later, req) == 0);
  pthread_detach(t);
}

static void on_event(const ivr_event *ev, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&mutex);
  if (ev->type == IVR_EVENT_FLOW_STEP) {
    steps++;
    CHECK(strcmp(ev->flow_id, "capi") == 0 && strcmp(ev->flow_version, "1") == 0);
    CHECK(ev->flow_node[0] != '\0' && ev->flow_verb[0] != '\0');
    if (strcmp(ev->flow_node, "code") == 0) in_gather = 1;
    if (strstr(ev->flow_detail, "say \"Your code, 5551234?\"") != NULL) said = 1;
  } else if (ev->type == IVR_EVENT_CALL_ENDED) {
    copy(end_flow, sizeof end_flow, ev->flow_id);
    copy(end_version, sizeof end_version, ev->flow_version);
    copy(end_path, sizeof end_path, ev->flow_path);
    copy(end_flow_end, sizeof end_flow_end, ev->flow_end);
    copy(end_reason, sizeof end_reason, ev->reason);
    call_ended = 1;
  }
  CHECK(ev->version >= 2);
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&mutex);
}

static void free_string(void *p) {
  (void)p;
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  ivr_flow_report *report = NULL;
  ivr_flow_list *list = NULL;
  char target[64], local_port[16], scenario[512], prompts[512];
  const char *pointer = NULL, *message = NULL, *id = NULL, *version = NULL;
  unsigned line = 0, column = 0, nodes = 0;
  int active = 0, status = 0;
  size_t i;
  pid_t sipp = 0;
  unsigned short base = (unsigned short)(42000 + (getpid() % 500) * 20);
  static const char broken[] =
      "{\"flow\": \"b\", \"start\": \"a\", \"nodes\": {\n"
      "  \"a\": {\"verb\": \"crm.lookup\", \"next\": \"zz\"}}}";

  snprintf(prompts, sizeof prompts, "%s/prompts", IVR_TEST_BUILD_DIR);
  snprintf(scenario, sizeof scenario, "%s/scenarios/info_call.xml", IVR_TEST_SOURCE_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = prompts;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_event, NULL, NULL) == IVR_OK);

  /* Validation: every problem, with pointer and position; the custom verb is unknown yet. */
  CHECK(ivr_engine_flow_validate(engine, broken, strlen(broken), &report) == IVR_OK);
  CHECK(ivr_flow_report_count(report) == 2);
  CHECK(ivr_flow_report_problem(report, 0, &pointer, &line, &column, &message) == IVR_OK);
  CHECK(strcmp(pointer, "/nodes/a/verb") == 0 && line == 2 && column == 17);
  CHECK(strstr(message, "unknown verb \"crm.lookup\"") != NULL);
  CHECK(ivr_flow_report_problem(report, 2, NULL, NULL, NULL, NULL) == IVR_EINVAL);
  CHECK(strstr(ivr_flow_report_text(report), "/nodes/a/next: no node named \"zz\"") != NULL);
  ivr_flow_report_free(report);
  ivr_flow_report_free(NULL);
  CHECK(ivr_engine_flow_load(engine, broken, strlen(broken), 1, NULL) == IVR_EPARSE);
  CHECK(strstr(ivr_error_last()->message, "2 problems") != NULL);
  CHECK(ivr_engine_flow_validate(engine, NULL, 0, &report) == IVR_EINVAL);

  /* Custom verb, then the flow loads. */
  CHECK(ivr_engine_register_verb(engine, "play", on_verb, NULL, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_register_verb(engine, "crm lookup", on_verb, NULL, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_register_verb(engine, "crm.lookup", on_verb, "verb data", free_string) ==
        IVR_OK);
  CHECK(ivr_engine_flow_load(engine, kFlowV1, strlen(kFlowV1), 0, &report) == IVR_OK);
  CHECK(strcmp(ivr_flow_report_flow_id(report), "capi") == 0);
  CHECK(strcmp(ivr_flow_report_version(report), "1") == 0);
  ivr_flow_report_free(report);
  CHECK(ivr_engine_flow_load(engine, kFlowV1, strlen(kFlowV1), 0, NULL) == IVR_ESTATE);
  CHECK(ivr_engine_flow_activate(engine, "capi", "9") == IVR_ENOTFOUND);
  CHECK(ivr_engine_flow_activate(engine, "nope", "1") == IVR_ENOTFOUND);
  CHECK(ivr_engine_flow_map(engine, "4000", "capi") == IVR_OK);
  CHECK(ivr_engine_flow_map(engine, "", "capi") == IVR_EINVAL);

  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "start: %s\n", ivr_error_last()->message);
    return 1;
  }
  snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)opts.sip_port);
  snprintf(local_port, sizeof local_port, "%u", (unsigned)free_udp_port());
  {
    char *argv[] = {"sipp",     "-sf", scenario,         "-m",   "1",
                    "-nostdin", "-i",  "127.0.0.1",      "-p",   local_port,
                    "-timeout", "30s", "-timeout_error", target, NULL};
    CHECK(posix_spawnp(&sipp, "sipp", NULL, NULL, argv, environ) == 0);
  }

  /* While the call waits in its gather, version 2 becomes active: the call keeps 1. */
  CHECK(wait_flag(&in_gather, 20));
  CHECK(ivr_engine_flow_load(engine, kFlowV2, strlen(kFlowV2), 1, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_list(engine, &list) == IVR_OK);
  CHECK(ivr_flow_list_count(list) == 2);
  for (i = 0; i < ivr_flow_list_count(list); i++) {
    CHECK(ivr_flow_list_get(list, i, &id, &version, &active, &nodes) == IVR_OK);
    CHECK(strcmp(id, "capi") == 0);
    CHECK(active == (strcmp(version, "2") == 0));
  }
  ivr_flow_list_free(list);

  CHECK(wait_flag(&call_ended, 30));
  if (sipp > 0) {
    waitpid(sipp, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  CHECK(verb_calls == 1);
  CHECK(strcmp(verb_phone, "5551234") == 0);
  CHECK(strcmp(verb_lead, "L-42") == 0);
  CHECK(strlen(verb_call_id) > 0);
  CHECK(strcmp(end_flow, "capi") == 0);
  CHECK(strcmp(end_version, "1") == 0);
  CHECK(strcmp(end_path, "hello > lookup > code > check > ok") == 0);
  CHECK(strcmp(end_flow_end, "hangup") == 0);
  CHECK(strcmp(end_reason, "code 42 tier gold") == 0);
  CHECK(steps >= 5);
  CHECK(said == 1); /* the gather's prompt was spoken (text-to-speech) */

  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  ivr_engine_free(engine);
  if (failures) {
    fprintf(stderr, "%d check(s) failed (path \"%s\", end %s, reason \"%s\")\n", failures, end_path,
            end_flow_end, end_reason);
    return 1;
  }
  printf("all checks passed (%d flow steps)\n", steps);
  return 0;
}
