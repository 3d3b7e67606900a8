/* http steps through the C ABI: a real SIPp call runs a flow that gets an OAuth2 token
   from a real loopback HTTP server (tests/net/http_test_server.py), calls a protected
   route with it, then POSTs JSON with an API key set through ivr_engine_set_secret(); the
   answers are mapped into variables and end up in the hang-up reason. Then a bad profile,
   a missing secret and an unknown profile each take the flow's error exit with reason
   "auth". */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capi_call_end.h"
#include "capi_sipp.h"
#include "capi_test.h"
#include "capi_wait.h"

extern char **environ;

/* Starts the test HTTP server; returns its port (0 on failure). Its stdin is a pipe whose
   end we keep: closing it stops the server. */
static unsigned start_server(pid_t *pid, int *stdin_fd) {
  char script[512], line[256];
  int out[2], in[2];
  unsigned port = 0;
  FILE *f;
  posix_spawn_file_actions_t fa;
  snprintf(script, sizeof script, "%s/../net/http_test_server.py", IVR_TEST_SOURCE_DIR);
  if (pipe(out) != 0 || pipe(in) != 0) return 0;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  {
    char *argv[] = {"/usr/bin/python3", script, "--exit-on-stdin-eof", NULL};
    if (posix_spawn(pid, argv[0], &fa, NULL, argv, environ) != 0) return 0;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(in[0]);
  *stdin_fd = in[1];
  f = fdopen(out[0], "r");
  while (f && fgets(line, sizeof line, f)) {
    if (sscanf(line, "listening %u", &port) == 1) continue;
    if (strncmp(line, "ready", 5) == 0) break;
  }
  if (f) fclose(f);
  return port;
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  char flow[4096], profiles[1024], prompts[512];
  pid_t server = 0;
  int server_stdin = -1, ended = 0;
  unsigned short base = (unsigned short)(44000 + (getpid() % 500) * 20);
  unsigned port = start_server(&server, &server_stdin);
  if (!port) {
    fprintf(stderr, "the test HTTP server did not start\n");
    return 1;
  }

  snprintf(flow, sizeof flow,
           "{\"flow\": \"web\", \"version\": \"1\", \"start\": \"hello\", \"nodes\": {\n"
           "  \"hello\": {\"verb\": \"answer\", \"next\": \"token\"},\n"
           "  \"token\": {\"verb\": \"http\", \"url\": \"http://127.0.0.1:%u/protected\",\n"
           "             \"auth\": \"idp\", \"map\": {\"token\": \"/token\"}, \"next\": \"post\",\n"
           "             \"on_error\": \"failed\"},\n"
           "  \"post\": {\"verb\": \"http\", \"url\": \"http://127.0.0.1:%u/echo\", \"auth\": "
           "\"svc\",\n"
           "            \"body\": {\"json\": {\"caller\": \"{{call.from}}\"}},\n"
           "            \"map\": {\"method\": \"/method\", \"sent\": \"/body\"},\n"
           "            \"next\": \"done\", \"on_error\": \"failed\"},\n"
           "  \"done\": {\"verb\": \"hangup\", \"reason\": \"{{vars.token}} {{vars.method}} "
           "{{vars.sent}}\"},\n"
           "  \"failed\": {\"verb\": \"hangup\", \"reason\": \"failed "
           "{{steps.token.reason}}{{steps.post.reason}}\"}}}",
           port, port);
  snprintf(profiles, sizeof profiles,
           "{\"idp\": {\"type\": \"oauth2\", \"token_url\": \"http://127.0.0.1:%u/oauth/token\",\n"
           "          \"client_id\": \"ivr-test-client\", \"client_secret_secret\": "
           "\"idp.secret\"},\n"
           " \"svc\": {\"type\": \"api_key\", \"key_secret\": \"svc.key\", \"name\": "
           "\"X-Api-Key\"}}",
           port);

  snprintf(prompts, sizeof prompts, "%s/prompts", IVR_TEST_BUILD_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = prompts;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_call_end_event, NULL, NULL) == IVR_OK);

  /* Bad input names the field and never a secret. */
  CHECK(ivr_engine_set_auth_profiles(engine, "{\"x\": {\"type\": \"bearer\"}}") == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "auth.x.token_secret: missing") != NULL);
  CHECK(ivr_engine_set_auth_profiles(engine, "{nope") == IVR_EPARSE);
  CHECK(ivr_engine_set_auth_profiles(engine, NULL) == IVR_EINVAL);
  CHECK(ivr_engine_set_secret(engine, "bad name!", "v") == IVR_EINVAL);
  CHECK(ivr_engine_set_secret(NULL, "a", "v") == IVR_EINVAL);

  /* Profiles before start wait for it; secrets from the host. */
  CHECK(ivr_engine_set_auth_profiles(engine, profiles) == IVR_OK);
  CHECK(ivr_engine_set_secret(engine, "idp.secret", "ivr-test-secret") == IVR_OK);
  CHECK(ivr_engine_set_secret(engine, "svc.key", "k-123") == IVR_OK);
  CHECK(ivr_engine_flow_load(engine, flow, strlen(flow), 1, NULL) == IVR_OK);
  CHECK(ivr_engine_flow_map(engine, "*", "web") == IVR_OK);
  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "start: %s\n", ivr_error_last()->message);
    return 1;
  }

  place_call(opts.sip_port, "4000");
  CHECK(wait_flag(&calls_ended, 30));
  CHECK(strcmp(end_path, "hello > token > post > done") == 0);
  /* tok-1 from the token endpoint; the echo saw a POST with the JSON body. */
  CHECK(strncmp(end_reason, "tok-1 POST {\"caller\":\"", 22) == 0);

  /* A removed secret: the lookup fails with reason auth, the call takes on_error. */
  CHECK(ivr_engine_set_secret(engine, "svc.key", NULL) == IVR_OK);
  pthread_mutex_lock(&mutex);
  calls_ended = 0;
  pthread_mutex_unlock(&mutex);
  place_call(opts.sip_port, "4000");
  CHECK(wait_flag(&calls_ended, 30));
  CHECK(strcmp(end_path, "hello > token > post > failed") == 0);
  CHECK(strcmp(end_reason, "failed auth") == 0);

  /* Profiles replaced after start: "idp" is gone, so the first lookup fails. */
  CHECK(ivr_engine_set_auth_profiles(engine, "{\"open\": {\"type\": \"none\"}}") == IVR_OK);
  pthread_mutex_lock(&mutex);
  calls_ended = 0;
  pthread_mutex_unlock(&mutex);
  place_call(opts.sip_port, "4000");
  CHECK(wait_flag(&calls_ended, 30));
  CHECK(strcmp(end_path, "hello > token > failed") == 0);
  CHECK(strcmp(end_reason, "failed auth") == 0);
  ended = calls_ended;

  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  ivr_engine_free(engine);
  close(server_stdin);
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
  }
  if (failures) {
    fprintf(stderr, "%d check(s) failed (path \"%s\", reason \"%s\")\n", failures, end_path,
            end_reason);
    return 1;
  }
  printf("all checks passed (%d calls)\n", ended);
  return 0;
}
