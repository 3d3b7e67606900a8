/* Webhooks through the C ABI, end to end: an engine with a spool directory runs a flow on a
   real SIPp call and sends its events to tests/net/webhook_receiver.py (started here, ports
   read from its stdout, scripted over its control API). tests/capi/check_webhooks.py then
   checks what arrived: signed, complete and in order per call (by seq), with the call
   record. Covered: a healthy endpoint (two secrets, every type), one failing first with 503
   then recovering, one always failing (dead letters listed, requeued and delivered through
   the C ABI after it recovers), one answering 410 (purged), event-type filters, counters,
   calls from inside an event callback, and an outage across an engine restart on the same
   spool (events published before ivr_engine_stop returned are delivered by the next run). */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capi_test.h"
#include "capi_wait.h"

extern char **environ;

static const char *kFlow =
    "{\"flow\": \"hooks\", \"version\": \"1\", \"start\": \"hello\", \"nodes\": {\n"
    "  \"hello\": {\"verb\": \"answer\", \"next\": \"code\"},\n"
    "  \"code\": {\"verb\": \"gather\", \"max_digits\": 4, \"store\": \"vars.code\",\n"
    "            \"first_digit_timeout_ms\": 10000, \"next\": \"bye\", \"on_no_input\": "
    "\"bye\"},\n"
    "  \"bye\": {\"verb\": \"hangup\", \"reason\": \"code {{vars.code}}\"}}}";

static const char *kSecrets[] = {"whsec_old", "whsec_new"};
static const char *kFlakySecret[] = {"whsec_flaky"};

static ivr_engine *engine = NULL; /* read by the event callback */
static int calls_ended = 0, ended1 = 0, ended2 = 0, stats_in_callback = 1, letters_in_callback = 1;

static unsigned hook_port = 0, control_port = 0;
static pid_t receiver = 0;
static int receiver_stdin = -1;
static FILE *receiver_stdout = NULL;

/* ---- helpers: processes, the receiver's control API, waiting on counters ---- */

static void cloexec(int fd) {
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int start_receiver(void) {
  int in[2], out[2];
  char script[512], line[128];
  posix_spawn_file_actions_t fa;
  char *argv[] = {"/usr/bin/python3", script, "--exit-on-stdin-eof", NULL};
  snprintf(script, sizeof script, "%s/../net/webhook_receiver.py", IVR_TEST_SOURCE_DIR);
  if (pipe(in) != 0 || pipe(out) != 0) return 0;
  cloexec(in[0]);
  cloexec(in[1]);
  cloexec(out[0]);
  cloexec(out[1]);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (posix_spawn(&receiver, argv[0], &fa, NULL, argv, environ) != 0) return 0;
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  receiver_stdin = in[1];
  receiver_stdout = fdopen(out[0], "r");
  while (fgets(line, sizeof line, receiver_stdout)) {
    sscanf(line, "listening %u", &hook_port);
    sscanf(line, "control %u", &control_port);
    if (strncmp(line, "ready", 5) == 0) break;
  }
  return hook_port != 0 && control_port != 0;
}

static void stop_receiver(void) {
  int status;
  if (receiver_stdin >= 0) close(receiver_stdin); /* the receiver exits at EOF */
  if (receiver > 0) waitpid(receiver, &status, 0);
  if (receiver_stdout) fclose(receiver_stdout);
}

/* One request to the receiver's control API; returns the HTTP status (-1: no answer). */
static int control(const char *method, const char *path, const char *body) {
  struct sockaddr_in addr;
  struct timeval timeout = {10, 0};
  char request[1024], answer[256];
  size_t got = 0;
  ssize_t n;
  int status = -1, fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)control_port);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
    int len = snprintf(request, sizeof request,
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: %u\r\nConnection: close\r\n\r\n%s",
                       method, path, (unsigned)strlen(body), body);
    if (write(fd, request, (size_t)len) == len) {
      while (got < sizeof answer - 1 && (n = read(fd, answer + got, sizeof answer - 1 - got)) > 0)
        got += (size_t)n;
      answer[got] = '\0';
      sscanf(answer, "HTTP/1.%*d %d", &status);
    }
  }
  close(fd);
  return status;
}

static pid_t start_call(unsigned short engine_port) {
  char target[64], local_port[16], scenario[512];
  pid_t pid = 0;
  char *argv[] = {"sipp",     "-sf", scenario,         "-m",   "1",
                  "-nostdin", "-i",  "127.0.0.1",      "-p",   local_port,
                  "-timeout", "30s", "-timeout_error", target, NULL};
  snprintf(scenario, sizeof scenario, "%s/scenarios/webhook_call.xml", IVR_TEST_SOURCE_DIR);
  snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)engine_port);
  snprintf(local_port, sizeof local_port, "%u", (unsigned)free_udp_port());
  CHECK(posix_spawnp(&pid, "sipp", NULL, NULL, argv, environ) == 0);
  return pid;
}

static int exited_ok(pid_t pid) {
  int status = 0;
  if (pid <= 0 || waitpid(pid, &status, 0) != pid) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Runs check_webhooks.py with the control port and `args` (NULL-terminated). */
static int check(const char *const *args) {
  char script[512], port[16];
  char *argv[40];
  int n = 0;
  pid_t pid = 0;
  snprintf(script, sizeof script, "%s/check_webhooks.py", IVR_TEST_SOURCE_DIR);
  snprintf(port, sizeof port, "%u", control_port);
  argv[n++] = "/usr/bin/python3";
  argv[n++] = script;
  argv[n++] = "--control";
  argv[n++] = port;
  while (*args && n < 39) argv[n++] = (char *)*args++;
  argv[n] = NULL;
  if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) return 0;
  return exited_ok(pid);
}

typedef int (*stats_ready)(const ivr_webhook_stats *s);
static int drained(const ivr_webhook_stats *s) {
  return s->queued == 0;
}
static int drained_with_two_dead(const ivr_webhook_stats *s) {
  return s->queued == 0 && s->dead >= 2;
}

/* Polls the counters (bounded) until ready(); returns whether it got there. */
static int wait_stats(ivr_engine *e, stats_ready ready, int seconds, ivr_webhook_stats *out) {
  struct timespec pause = {0, 50 * 1000 * 1000};
  int i;
  for (i = 0; i < seconds * 20; i++) {
    ivr_webhook_stats s = IVR_WEBHOOK_STATS_INIT;
    if (ivr_engine_webhook_stats(e, &s) == IVR_OK) {
      *out = s;
      if (ready(&s)) return 1;
    }
    nanosleep(&pause, NULL);
  }
  return 0;
}

/* ---- dead letters, copied out of the callback ---- */

struct letter {
  char id[40], subscription[64], event_type[32], last_error[256];
  unsigned attempts;
  int64_t created_ms;
};
static struct letter letters[8];
static int letter_count = 0;

static int on_letter(const ivr_dead_letter *l, void *user_data) {
  struct letter *copy;
  CHECK(strcmp((const char *)user_data, "letters") == 0);
  if (letter_count == 8) return 1;
  copy = &letters[letter_count++];
  snprintf(copy->id, sizeof copy->id, "%s", l->id);
  snprintf(copy->subscription, sizeof copy->subscription, "%s", l->subscription);
  snprintf(copy->event_type, sizeof copy->event_type, "%s", l->event_type);
  snprintf(copy->last_error, sizeof copy->last_error, "%s", l->last_error);
  copy->attempts = l->attempts;
  copy->created_ms = l->created_ms;
  return 0;
}

static int count_one(const ivr_dead_letter *l, void *user_data) {
  (void)l;
  ++*(int *)user_data;
  return 1; /* stop after the first */
}

static void on_event(const ivr_event *ev, void *user_data) {
  (void)user_data;
  if (ev->type != IVR_EVENT_CALL_ENDED) return;
  {
    /* The webhook functions work from inside a callback (they run here, directly). */
    ivr_webhook_stats s = IVR_WEBHOOK_STATS_INIT;
    int n = 0;
    int rc = ivr_engine_webhook_stats(engine, &s);
    int rc2 = ivr_engine_webhook_dead_letters(engine, count_one, &n);
    pthread_mutex_lock(&mutex);
    if (rc != IVR_OK || s.published == 0) stats_in_callback = 0;
    if (rc2 != IVR_OK) letters_in_callback = 0;
    calls_ended++;
    ended1 = calls_ended >= 1;
    ended2 = calls_ended >= 2;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mutex);
  }
}

static ivr_webhook_options hook(const char *name, const char *path, const char *types) {
  static char urls[32][128]; /* the options keep pointing at them */
  static int next = 0;
  ivr_webhook_options o = IVR_WEBHOOK_OPTIONS_INIT;
  char *url = urls[next++ % 32];
  snprintf(url, 128, "http://127.0.0.1:%u%s", hook_port, path);
  o.name = name;
  o.url = url;
  o.event_types = types;
  o.secrets = kFlakySecret;
  o.secret_count = 1;
  o.timeout_ms = 5000;
  return o;
}

static void option_errors(ivr_engine *e) {
  ivr_webhook_options o = hook("bad", "/bad", "*");
  ivr_webhook_stats s = IVR_WEBHOOK_STATS_INIT;
  o.secrets = NULL;
  o.secret_count = 0;
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "secrets") != NULL);
  o = hook("bad", "/bad", "call.started,,dtmf");
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "event_types") != NULL);
  o = hook("bad name", "/bad", "*");
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "name") != NULL);
  o = hook("bad", "/bad", "*");
  o.url = "ftp://127.0.0.1/x";
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "url") != NULL);
  o = hook("bad", "/bad", "*");
  o.max_concurrency = 0;
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "max_concurrency") != NULL);
  o.version = 99;
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_EVERSION);
  CHECK(ivr_engine_set_webhook(e, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_set_webhook(NULL, &o) == IVR_EINVAL);
  CHECK(ivr_webhook_options_init(&o, 7) == IVR_EVERSION);
  CHECK(ivr_webhook_options_init(&o, IVR_WEBHOOK_OPTIONS_VERSION) == IVR_OK);
  CHECK(strcmp(o.event_types, "*") == 0 && o.max_attempts == 16 && o.enabled == 1);
  CHECK(ivr_engine_remove_webhook(e, "nope") == IVR_ENOTFOUND);
  CHECK(ivr_engine_remove_webhook(e, NULL) == IVR_EINVAL);
  s.version = 42;
  CHECK(ivr_engine_webhook_stats(e, &s) == IVR_EVERSION);
  CHECK(ivr_engine_webhook_dead_letters(e, NULL, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_webhook_requeue(e, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_webhook_purge(NULL, "x") == IVR_EINVAL);
}

/* Engine options of version 1 (an older host) are still accepted, and init writes only
   their fields; webhooks are then off. */
static void older_options(void) {
  size_t v1 = offsetof(ivr_engine_options, webhook_spool_dir), i;
  unsigned char *raw = malloc(sizeof(ivr_engine_options) + 16);
  ivr_engine_options *old = (ivr_engine_options *)raw;
  ivr_engine *e = NULL;
  ivr_webhook_options o = hook("main", "/main", "*");
  int untouched = 1;
  memset(raw, 0xAB, sizeof(ivr_engine_options) + 16);
  CHECK(ivr_engine_options_init(old, 1) == IVR_OK);
  for (i = v1; i < sizeof(ivr_engine_options) + 16; i++) untouched &= raw[i] == 0xAB;
  CHECK(untouched);
  CHECK(old->version == 1 && old->sip_port == 5060);
  old->sip_port = free_udp_port();
  CHECK(ivr_engine_new(&e, old) == IVR_OK); /* must not read the garbage past v1 */
  CHECK(ivr_engine_set_webhook(e, &o) == IVR_ESTATE);
  CHECK(strstr(ivr_error_last()->message, "webhook_spool_dir") != NULL);
  ivr_engine_free(e);
  free(raw);
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *off = NULL;
  ivr_webhook_options main_hook, flaky, dead, gone;
  ivr_webhook_stats s = IVR_WEBHOOK_STATS_INIT;
  char spool[] = "/tmp/ivr-capi-webhooks-XXXXXX", prompts[512];
  char dead_id[40] = "", gone_id[40] = "";
  unsigned short base = (unsigned short)(44000 + (getpid() % 500) * 20);
  pid_t sipp;
  int i, n, rc;

  if (!mkdtemp(spool) || !start_receiver()) {
    fprintf(stderr, "cannot make a spool directory or start the receiver\n");
    return 1;
  }
  snprintf(prompts, sizeof prompts, "%s/prompts", IVR_TEST_BUILD_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = prompts;

  /* Webhooks are off without a spool directory. */
  CHECK(ivr_engine_new(&off, &opts) == IVR_OK);
  main_hook = hook("main", "/main", "*");
  CHECK(ivr_engine_set_webhook(off, &main_hook) == IVR_ESTATE);
  CHECK(ivr_engine_webhook_stats(off, &s) == IVR_ESTATE);
  CHECK(ivr_engine_webhook_requeue(off, "0123") == IVR_ESTATE);
  ivr_engine_free(off);
  older_options();

  opts.webhook_spool_dir = spool;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_event, NULL, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_load(engine, kFlow, strlen(kFlow), 1, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_map(engine, "4000", "hooks") == IVR_OK);
  option_errors(engine);
  CHECK(ivr_engine_webhook_stats(engine, &s) == IVR_ESTATE); /* not started */
  CHECK(ivr_engine_webhook_dead_letters(engine, on_letter, "letters") == IVR_ESTATE);

  /* Two webhooks set before start (kept, applied at start)... */
  main_hook.secrets = kSecrets; /* rotation: two v1 signatures */
  main_hook.secret_count = 2;
  main_hook.max_concurrency = 1;
  main_hook.backoff_base_ms = 100;
  main_hook.backoff_max_ms = 1000;
  main_hook.max_attempts = 1000; /* rides out the outage below */
  CHECK(ivr_engine_set_webhook(engine, &main_hook) == IVR_OK);
  flaky = hook("flaky", "/flaky", "call.started, call.answered ,dtmf,call.ended");
  flaky.backoff_base_ms = 50;
  flaky.backoff_max_ms = 200;
  flaky.max_concurrency = 2;
  CHECK(ivr_engine_set_webhook(engine, &flaky) == IVR_OK);
  CHECK(control("POST", "/script",
                "{\"path\": \"/flaky\", \"responses\": [{\"status\": 503}, {\"status\": 503}, "
                "{\"status\": 503}]}") == 200);
  CHECK(control("POST", "/script", "{\"path\": \"/dead\", \"default\": {\"status\": 500}}") == 200);
  CHECK(control("POST", "/script", "{\"path\": \"/gone\", \"default\": {\"status\": 410}}") == 200);
  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "start: %s\n", ivr_error_last()->message);
    stop_receiver();
    return 1;
  }
  /* ... and two after. */
  dead = hook("dead", "/dead", "call.ended");
  dead.max_attempts = 2;
  dead.backoff_base_ms = 20;
  dead.backoff_max_ms = 50;
  CHECK(ivr_engine_set_webhook(engine, &dead) == IVR_OK);
  gone = hook("gone", "/gone", "call.started");
  CHECK(ivr_engine_set_webhook(engine, &gone) == IVR_OK);
  CHECK(ivr_engine_set_webhook(engine, &gone) == IVR_OK); /* replacing is fine */
  CHECK(ivr_engine_webhook_stats(engine, &s) == IVR_OK);
  CHECK(s.published == 0 && s.queued == 0 && s.dead == 0 && s.healthy == 1);
  {
    /* One engine per spool directory: a second one fails to start, cleanly. */
    ivr_engine_options other = opts;
    other.sip_port = free_udp_port();
    CHECK(ivr_engine_new(&off, &other) == IVR_OK);
    CHECK(ivr_engine_start(off) == IVR_EBUSY);
    CHECK(strstr(ivr_error_last()->message, "webhooks") != NULL);
    ivr_engine_free(off);
  }

  /* Call 1. */
  sipp = start_call(opts.sip_port);
  CHECK(wait_flag(&ended1, 30));
  CHECK(exited_ok(sipp));
  CHECK(wait_stats(engine, drained_with_two_dead, 30, &s));
  CHECK(s.published >= 6 + 6 + 1 + 1); /* main: 6 and flow.node events; flaky 6; dead; gone */
  CHECK(s.failed_attempts >= 3 + 2 + 1);
  CHECK(s.dead_lettered == 2 && s.dead == 2 && s.requeued == 0);
  CHECK(s.publish_rejected == 0 && s.spool_errors == 0 && s.healthy == 1);
  CHECK(s.delivered + s.dead == s.published);
  CHECK(stats_in_callback == 1 && letters_in_callback == 1);

  /* The dead letters through the C ABI. */
  CHECK(ivr_engine_webhook_dead_letters(engine, on_letter, "letters") == IVR_OK);
  CHECK(letter_count == 2);
  for (i = 0; i < letter_count; i++) {
    CHECK(strlen(letters[i].id) == 32);
    CHECK(letters[i].created_ms > 1600000000000LL);
    if (strcmp(letters[i].subscription, "dead") == 0) {
      CHECK(strcmp(letters[i].event_type, "call.ended") == 0);
      CHECK(letters[i].attempts == 2);
      CHECK(strstr(letters[i].last_error, "HTTP 500") != NULL);
      snprintf(dead_id, sizeof dead_id, "%s", letters[i].id);
    } else {
      CHECK(strcmp(letters[i].subscription, "gone") == 0);
      CHECK(strcmp(letters[i].event_type, "call.started") == 0);
      CHECK(strstr(letters[i].last_error, "410") != NULL);
      snprintf(gone_id, sizeof gone_id, "%s", letters[i].id);
    }
  }
  n = 0;
  CHECK(ivr_engine_webhook_dead_letters(engine, count_one, &n) == IVR_OK && n == 1);
  CHECK(ivr_engine_webhook_purge(engine, gone_id) == IVR_OK);
  CHECK(ivr_engine_webhook_purge(engine, gone_id) == IVR_ENOTFOUND);
  CHECK(ivr_engine_webhook_requeue(engine, gone_id) == IVR_ENOTFOUND);
  CHECK(ivr_engine_webhook_requeue(engine, "00000000000000000000000000000000") == IVR_ENOTFOUND);
  /* The endpoint recovers; the requeued event goes out. */
  CHECK(control("POST", "/script", "{\"path\": \"/dead\", \"default\": {\"status\": 200}}") == 200);
  CHECK(ivr_engine_webhook_requeue(engine, dead_id) == IVR_OK);
  rc = ivr_engine_webhook_requeue(engine, dead_id); /* pending (or already delivered) now */
  CHECK(rc == IVR_ESTATE || rc == IVR_ENOTFOUND);
  CHECK(wait_stats(engine, drained, 30, &s));
  CHECK(s.dead == 0 && s.requeued == 1 && s.delivered == s.published - 1); /* one purged */
  letter_count = 0;
  CHECK(ivr_engine_webhook_dead_letters(engine, on_letter, "letters") == IVR_OK);
  CHECK(letter_count == 0);

  {
    const char *main_old[] = {"--path",   "/main",     "--subscription", "main",
                              "--secret", "whsec_old", "--signatures",   "2",
                              "--digits", "42#",       "--flow",         "hooks",
                              NULL};
    const char *main_new[] = {"--path",       "/main",    "--subscription",
                              "main",         "--secret", "whsec_new",
                              "--signatures", "2",        NULL};
    const char *flaky_args[] = {"--path",
                                "/flaky",
                                "--subscription",
                                "flaky",
                                "--secret",
                                "whsec_flaky",
                                "--types",
                                "call.started,call.answered,dtmf,call.ended",
                                "--count",
                                "6",
                                "--digits",
                                "42#",
                                "--failures",
                                "3",
                                NULL};
    const char *dead_args[] = {"--path",      "/dead",   "--subscription", "dead",    "--secret",
                               "whsec_flaky", "--types", "call.ended",     "--count", "1",
                               "--failures",  "2",       "--flow",         "hooks",   "--expect-id",
                               dead_id,       NULL};
    CHECK(check(main_old));
    CHECK(check(main_new));
    CHECK(check(flaky_args));
    CHECK(check(dead_args));
  }

  /* Call 2 during an outage, then a restart: nothing published is lost. */
  CHECK(ivr_engine_remove_webhook(engine, "flaky") == IVR_OK);
  CHECK(ivr_engine_remove_webhook(engine, "flaky") == IVR_ENOTFOUND);
  CHECK(ivr_engine_remove_webhook(engine, "dead") == IVR_OK);
  CHECK(ivr_engine_remove_webhook(engine, "gone") == IVR_OK);
  CHECK(control("POST", "/down", "{}") == 200);
  sipp = start_call(opts.sip_port);
  CHECK(wait_flag(&ended2, 30));
  CHECK(exited_ok(sipp));
  CHECK(ivr_engine_webhook_stats(engine, &s) == IVR_OK);
  CHECK(s.queued > 0 && s.dead == 0); /* waiting for the endpoint */
  CHECK(ivr_engine_stop(engine, "restart") == IVR_OK);
  CHECK(ivr_engine_webhook_stats(engine, &s) == IVR_EGONE);
  CHECK(ivr_engine_set_webhook(engine, &main_hook) == IVR_EGONE);
  ivr_engine_free(engine);
  engine = NULL;
  CHECK(control("POST", "/up", "{}") == 200);

  opts.sip_port = free_udp_port();
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_webhook(engine, &main_hook) == IVR_OK);
  CHECK(ivr_engine_start(engine) == IVR_OK);
  CHECK(wait_stats(engine, drained, 30, &s));
  CHECK(s.delivered >= 6 && s.dead == 0 && s.published == 0); /* all from the last run */
  {
    const char *both[] = {"--path",
                          "/main",
                          "--subscription",
                          "main",
                          "--secret",
                          "whsec_new",
                          "--signatures",
                          "2",
                          "--calls",
                          "2",
                          "--digits",
                          "42#",
                          "--flow",
                          "hooks",
                          NULL};
    CHECK(check(both));
  }
  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  ivr_engine_free(engine);
  stop_receiver();
  {
    char *argv[] = {"rm", "-rf", spool, NULL};
    pid_t rm = 0;
    if (posix_spawnp(&rm, "rm", NULL, NULL, argv, environ) == 0) exited_ok(rm);
  }
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
