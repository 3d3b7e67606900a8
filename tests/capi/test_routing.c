/* Routing through the C ABI (ivr/routing.h): the configuration with errors by field, kept
   before start; availability pushed by the host, draining, target and queue state; then a
   real call (SIPp caller) routed by a flow to two dialing systems played by SIPp UAS
   processes: the first answers 486, the second takes the call; the events carry the
   decision, the failed attempt and the delivery (ivr_event version 3). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capi_call_end.h"
#include "capi_sipp.h"
#include "capi_test.h"
#include "capi_wait.h"

static char decided[512], attempt[256], delivered[256];
static int attempt_code = 0, delivered_attempt = 0, event_version = 0;

static void on_event(const ivr_event *ev, void *user_data) {
  pthread_mutex_lock(&mutex);
  event_version = (int)ev->version;
  switch (ev->type) {
    case IVR_EVENT_ROUTE_DECIDED:
      snprintf(decided, sizeof decided, "%s: %s", ev->route_plan, ev->route_detail);
      break;
    case IVR_EVENT_ROUTE_ATTEMPT:
      snprintf(attempt, sizeof attempt, "%s %u %s", ev->route_target, ev->route_attempt,
               ev->route_detail);
      attempt_code = ev->sip_code;
      break;
    case IVR_EVENT_CALL_DELIVERED:
      snprintf(delivered, sizeof delivered, "%s %s", ev->route_target, ev->route_uri);
      delivered_attempt = (int)ev->route_attempt;
      break;
    default:
      break;
  }
  pthread_mutex_unlock(&mutex);
  on_call_end_event(ev, user_data);
}

/* A SIPp UAS playing a dialing system on `port`; returns its pid. */
static pid_t dialer(const char *scenario, unsigned short port) {
  char path[600], p[16];
  pid_t pid = 0;
  snprintf(path, sizeof path, "%s/../integration/scenarios/%s", IVR_TEST_SOURCE_DIR, scenario);
  snprintf(p, sizeof p, "%u", (unsigned)port);
  {
    char *argv[] = {"sipp",           "-sf", path, "-m", "1",   "-nostdin", "-i",
                    "127.0.0.1",      "-p",  p,    "-d", "500", "-timeout", "40s",
                    "-timeout_error", NULL};
    CHECK(posix_spawnp(&pid, "sipp", NULL, NULL, argv, environ) == 0);
  }
  return pid;
}

/* Waits (at most 10 s) until something has bound the loopback UDP port. */
static int wait_bound(unsigned short port) {
  int i;
  for (i = 0; i < 200; ++i) {
    struct sockaddr_in addr;
    struct timespec pause = {0, 50 * 1000 * 1000};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), taken;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    taken = bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0;
    close(fd);
    if (taken) return 1;
    nanosleep(&pause, NULL);
  }
  return 0;
}

static int exited_ok(pid_t pid) {
  int status = 0;
  if (pid <= 0 || waitpid(pid, &status, 0) != pid) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  ivr_availability a = IVR_AVAILABILITY_INIT;
  ivr_target_state ts;
  ivr_queue_stats qs;
  char routing[1024], flow[2048], prompts[512];
  unsigned short busy_port = free_udp_port(), good_port = free_udp_port();
  unsigned short base = (unsigned short)(46000 + (getpid() % 500) * 20);
  pid_t busy, good;

  snprintf(prompts, sizeof prompts, "%s/prompts", IVR_TEST_BUILD_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = prompts;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_event, NULL, NULL) == IVR_OK);

  /* Errors name the field; nothing is kept. */
  CHECK(ivr_engine_set_routing(NULL, "{}") == IVR_EINVAL);
  CHECK(ivr_engine_set_routing(engine, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_set_routing(engine, "{\"targets\": ") == IVR_EPARSE);
  CHECK(ivr_engine_set_routing(
            engine,
            "{\"targets\": {\"busy\": {\"uris\": [\"sip:a@127.0.0.1:9\"], \"capacity\": 0}},"
            " \"plans\": {\"p\": {\"entries\": [{\"targets\": [\"busy\"]}]}}}") == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "routing.targets.busy.capacity") != NULL);
  memset(&ts, 0, sizeof ts);
  CHECK(ivr_engine_target_state(engine, "busy", &ts) == IVR_EVERSION); /* version not set */
  ts.version = IVR_TARGET_STATE_VERSION;
  CHECK(ivr_engine_target_state(engine, "busy", &ts) == IVR_ESTATE); /* not started */

  /* Kept before start, applied at start. */
  snprintf(routing, sizeof routing,
           "{\"targets\": {"
           "\"busy\": {\"uris\": [\"sip:agents@127.0.0.1:%u\"], \"capacity\": 2,"
           "           \"probe\": {\"enabled\": false}},"
           "\"good\": {\"uris\": [\"sip:agents@127.0.0.1:%u\"], \"capacity\": 2, \"priority\": 1,"
           "           \"probe\": {\"enabled\": false},"
           "           \"headers\": {\"X-Caller\": \"{{call.from}}\"}},"
           "\"dead\": {\"uris\": [\"sip:agents@127.0.0.1:%u\"], \"capacity\": 1,"
           "           \"probe\": {\"interval_s\": 1, \"down_after\": 2}}},"
           " \"plans\": {\"p\": {\"entries\": [{\"strategy\": \"failover\","
           "                                   \"targets\": [\"busy\", \"good\"]}]}}}",
           (unsigned)busy_port, (unsigned)good_port, (unsigned)free_udp_port());
  CHECK(ivr_engine_set_routing(engine, routing) == IVR_OK);
  snprintf(flow, sizeof flow, "%s",
           "{\"flow\": \"r\", \"version\": \"1\", \"start\": \"hello\", \"nodes\": {\n"
           "  \"hello\": {\"verb\": \"answer\", \"next\": \"agent\"},\n"
           "  \"agent\": {\"verb\": \"route\", \"plan\": \"p\",\n"
           "             \"headers\": {\"X-Department\": \"capi\"},\n"
           "             \"next\": \"done\", \"on_failed\": \"failed\"},\n"
           "  \"done\": {\"verb\": \"hangup\", \"reason\": \"{{steps.agent.outcome}} "
           "{{steps.agent.target}} {{steps.agent.attempts}}\"},\n"
           "  \"failed\": {\"verb\": \"hangup\", \"reason\": \"failed {{steps.agent.error}}\"}}}");
  CHECK(ivr_engine_flow_load(engine, flow, strlen(flow), 1, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_map(engine, "*", "r") == IVR_OK);
  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "start: %s\n", ivr_error_last()->message);
    return 1;
  }

  /* Target state, availability pushed by the host, draining. */
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.health == IVR_TARGET_UP && ts.capacity == 2 && ts.active == 0);
  CHECK(ts.availability_fresh == 0);
  CHECK(ivr_engine_target_state(engine, "nobody", &ts) == IVR_ENOTFOUND);
  CHECK(ivr_engine_push_availability(engine, "good", NULL) == IVR_EINVAL);
  a.version = 7;
  CHECK(ivr_engine_push_availability(engine, "good", &a) == IVR_EVERSION);
  a.version = IVR_AVAILABILITY_VERSION;
  a.agents_available = 3;
  a.agents_logged_in = 5;
  CHECK(ivr_engine_push_availability(engine, "nobody", &a) == IVR_ENOTFOUND);
  CHECK(ivr_engine_push_availability(engine, "good", &a) == IVR_OK);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.availability_fresh == 1 && ts.idle_agents == 3);
  CHECK(ivr_engine_mark_availability_stale(engine, "good") == IVR_OK);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.availability_fresh == 0 && ts.idle_agents == 0);
  CHECK(ivr_engine_set_target_draining(engine, "good", 1) == IVR_OK);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.health == IVR_TARGET_DRAINING);
  CHECK(ivr_engine_set_target_draining(engine, "good", 0) == IVR_OK);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.health == IVR_TARGET_UP);
  memset(&qs, 0, sizeof qs);
  CHECK(ivr_engine_queue_stats(engine, &qs) == IVR_EVERSION);
  qs.version = IVR_QUEUE_STATS_VERSION;
  CHECK(ivr_engine_queue_stats(engine, &qs) == IVR_OK);
  CHECK(qs.waiting == 0 && qs.enqueued == 0 && qs.service_interval_ms == -1);

  /* "dead" answers no OPTIONS: its probe marks it down (two failures, one a second). */
  {
    int i;
    for (i = 0; i < 100; ++i) {
      struct timespec pause = {0, 100 * 1000 * 1000};
      CHECK(ivr_engine_target_state(engine, "dead", &ts) == IVR_OK);
      if (ts.health == IVR_TARGET_DOWN) break;
      nanosleep(&pause, NULL);
    }
    CHECK(ts.health == IVR_TARGET_DOWN);
  }

  /* A routed call: "busy" refuses with 486, "good" answers and hangs up 0.5 s later. */
  busy = dialer("uas_dialer_busy.xml", busy_port);
  good = dialer("uas_dialer_answer.xml", good_port);
  CHECK(wait_bound(busy_port));
  CHECK(wait_bound(good_port));
  place_call(opts.sip_port, "5000");
  CHECK(wait_flag(&calls_ended, 30));
  CHECK(exited_ok(busy));
  CHECK(exited_ok(good));
  pthread_mutex_lock(&mutex);
  CHECK(event_version == 3);
  CHECK(strcmp(end_path, "hello > agent > done") == 0);
  CHECK(strcmp(end_reason, "ended good 2") == 0);
  CHECK(strstr(decided, "p: plan p entry 0 failover: busy, good") == decided);
  CHECK(strstr(attempt, "busy 1 busy (486") == attempt);
  CHECK(attempt_code == 486);
  CHECK(strstr(delivered, "good sip:agents@127.0.0.1:") == delivered);
  CHECK(delivered_attempt == 2);
  pthread_mutex_unlock(&mutex);
  if (failures)
    fprintf(stderr, "decided: %s\nattempt: %s\ndelivered: %s\nend: %s / %s\n", decided, attempt,
            delivered, end_path, end_reason);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.active == 0 && ts.reserved == 0 && ts.answered == 1 && ts.completed == 1);
  CHECK(ivr_engine_target_state(engine, "busy", &ts) == IVR_OK);
  CHECK(ts.failed == 1 && ts.reserved == 0);

  /* Reconfigured without "busy": it is gone, "good" keeps its counters. */
  snprintf(routing, sizeof routing,
           "{\"targets\": {\"good\": {\"uris\": [\"sip:agents@127.0.0.1:%u\"], \"capacity\": 2,"
           " \"probe\": {\"enabled\": false}}},"
           " \"plans\": {\"p\": {\"entries\": [{\"targets\": [\"good\"]}]}}}",
           (unsigned)good_port);
  CHECK(ivr_engine_set_routing(engine, routing) == IVR_OK);
  CHECK(ivr_engine_target_state(engine, "busy", &ts) == IVR_ENOTFOUND);
  CHECK(ivr_engine_target_state(engine, "good", &ts) == IVR_OK);
  CHECK(ts.answered == 1);

  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  CHECK(ivr_engine_queue_stats(engine, &qs) == IVR_EGONE);
  ivr_engine_free(engine);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("capi routing: ok\n");
  return 0;
}
