/* C ABI text-to-speech: ivr_say_options, argument errors naming the field, and a real SIPp
   call (tests/capi/scenarios/info_call.xml: DTMF 4 2 # by SIP INFO, then waits for our BYE)
   that hears a say barged in by a digit, a say from another thread, the same text again from
   the cache, and a say stopped at once; every one ends with IVR_EVENT_PROMPT_FINISHED. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capi_test.h"

extern char **environ;

#define WELCOME "Welcome to the support line. Press one for sales, two for billing."
#define THANKS "Thank you for calling."
#define STOPPED "This sentence is stopped before anyone hears it."

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static ivr_call *kept = NULL;
static int collect_done = 0, call_ended = 0;
static char collected[16];
/* PROMPT_FINISHED events in order: prompt name and end. */
static char finished_name[8][128];
static ivr_prompt_end finished_end[8];
static size_t finished_count = 0;
static double thanks_started = 0, thanks_ms[2] = {0, 0};
static int thanks_done = 0;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void set_flag(int *flag) {
  pthread_mutex_lock(&lock);
  *flag = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static int wait_for(int *flag, int seconds) {
  struct timespec deadline;
  int ok;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;
  pthread_mutex_lock(&lock);
  while (!*flag && pthread_cond_timedwait(&changed, &lock, &deadline) == 0) {
  }
  ok = *flag;
  pthread_mutex_unlock(&lock);
  return ok;
}

static int error_names(const char *field) {
  return strstr(ivr_error_last()->message, field) != NULL;
}

/* Every argument error while the call is answered (nothing is played by these). */
static void check_argument_errors(ivr_call *call) {
  ivr_say_options opts = IVR_SAY_OPTIONS_INIT;
  char too_long[IVR_SAY_MAX_TEXT + 2];

  CHECK(ivr_call_say(NULL, "hello", NULL) == IVR_EINVAL && error_names("call"));
  CHECK(ivr_call_say(call, NULL, NULL) == IVR_EINVAL && error_names("text"));
  CHECK(ivr_call_say(call, "", NULL) == IVR_EINVAL && error_names("text is empty"));
  CHECK(ivr_call_say(call, "   ", NULL) == IVR_EINVAL && error_names("text is empty"));
  memset(too_long, 'a', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0'; /* IVR_SAY_MAX_TEXT + 1 bytes */
  CHECK(ivr_call_say(call, too_long, NULL) == IVR_EINVAL && error_names("text"));
  CHECK(error_names("4096"));
  CHECK(ivr_call_say(call, "caf\xc3", NULL) == IVR_EINVAL && error_names("UTF-8"));

  opts.rate_wpm = 79;
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_EINVAL && error_names("rate_wpm"));
  opts.rate_wpm = 451;
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_EINVAL && error_names("rate_wpm"));
  opts.rate_wpm = 160;
  opts.voice = "xx-nowhere";
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_ENOTFOUND && error_names("xx-nowhere"));
  CHECK(error_names("voice"));
  opts.voice = "en+nosuchvariant";
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_ENOTFOUND && error_names("nosuchvariant"));
  opts.voice = "../../etc/passwd";
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_EINVAL && error_names("voice"));
  opts.voice = "en";
  opts.version = 99;
  CHECK(ivr_call_say(call, "hello", &opts) == IVR_EVERSION && error_names("opts.version"));
}

static void on_event(const ivr_event *ev, void *user_data) {
  ivr_call *call = ev->call;
  (void)user_data;
  switch (ev->type) {
    case IVR_EVENT_CALL_STARTED:
      CHECK(ivr_call_say(call, "hello", NULL) == IVR_ESTATE); /* not answered yet */
      CHECK(ivr_call_ref(call) == IVR_OK);
      kept = call;
      CHECK(ivr_call_answer(call) == IVR_OK);
      break;
    case IVR_EVENT_CALL_ANSWERED: {
      ivr_collect_options collect = IVR_COLLECT_OPTIONS_INIT;
      ivr_say_options opts;
      check_argument_errors(call);
      CHECK(ivr_say_options_init(&opts, IVR_SAY_OPTIONS_VERSION) == IVR_OK);
      opts.voice = "EN-US"; /* case-insensitive */
      /* About 4.5 s of speech: the caller's first digit (at 0.5 s) barges in. */
      CHECK(ivr_call_say(call, WELCOME, &opts) == IVR_OK);
      collect.max_digits = 8;
      collect.first_digit_timeout_ms = 10000;
      CHECK(ivr_call_collect(call, &collect) == IVR_OK);
      break;
    }
    case IVR_EVENT_PROMPT_FINISHED:
      pthread_mutex_lock(&lock);
      if (finished_count < 8) {
        snprintf(finished_name[finished_count], sizeof finished_name[0], "%s", ev->prompt);
        finished_end[finished_count] = ev->prompt_end;
        finished_count++;
      }
      pthread_mutex_unlock(&lock);
      if (strcmp(ev->prompt, "say:" THANKS) == 0 && ev->prompt_end == IVR_PROMPT_COMPLETED) {
        thanks_ms[thanks_done] = now_ms() - thanks_started;
        if (++thanks_done == 1) {
          /* The same text again: served from the cache. */
          thanks_started = now_ms();
          CHECK(ivr_call_say(call, THANKS, NULL) == IVR_OK);
        } else {
          /* A say stopped at once (still synthesising, or just started). */
          CHECK(ivr_call_say(call, STOPPED, NULL) == IVR_OK);
          CHECK(ivr_call_stop_playback(call) == IVR_OK);
          CHECK(ivr_call_hangup(call, "said everything") == IVR_OK);
        }
      }
      break;
    case IVR_EVENT_COLLECT_DONE:
      snprintf(collected, sizeof collected, "%s", ev->digits);
      set_flag(&collect_done);
      break;
    case IVR_EVENT_CALL_ENDED:
      set_flag(&call_ended);
      break;
    default:
      break;
  }
}

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_say_options say = IVR_SAY_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  char target[64], local_port[16], scenario[512];
  pid_t sipp = 0;
  int status = 0;
  unsigned short base = (unsigned short)(42000 + (getpid() % 500) * 20);

  /* Options: the macro and the function agree; unknown versions are refused. */
  CHECK(say.version == IVR_SAY_OPTIONS_VERSION && strcmp(say.voice, "en") == 0);
  CHECK(say.rate_wpm == 160);
  memset(&say, 0, sizeof say);
  CHECK(ivr_say_options_init(&say, IVR_SAY_OPTIONS_VERSION) == IVR_OK);
  CHECK(say.version == IVR_SAY_OPTIONS_VERSION && strcmp(say.voice, "en") == 0);
  CHECK(say.rate_wpm == 160);
  CHECK(ivr_say_options_init(&say, 7) == IVR_EVERSION && error_names("version"));
  CHECK(ivr_say_options_init(NULL, IVR_SAY_OPTIONS_VERSION) == IVR_EINVAL);

  snprintf(scenario, sizeof scenario, "%s/scenarios/info_call.xml", IVR_TEST_SOURCE_DIR);
  opts.sip_port = free_udp_port();
  opts.rtp_port_min = base;
  opts.rtp_port_max = (unsigned short)(base + 19);
  opts.prompt_dir = IVR_TEST_SOURCE_DIR; /* no audio files: say needs none */
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK);
  CHECK(ivr_engine_set_event_callback(engine, on_event, NULL, NULL) == IVR_OK);
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

  CHECK(wait_for(&collect_done, 30));
  CHECK(strcmp(collected, "42") == 0);
  /* From this thread, not the engine's: handed over like every ivr_call_* action. */
  pthread_mutex_lock(&lock);
  thanks_started = now_ms();
  pthread_mutex_unlock(&lock);
  CHECK(kept != NULL && ivr_call_say(kept, THANKS, NULL) == IVR_OK);
  CHECK(wait_for(&call_ended, 30));

  if (sipp > 0) {
    waitpid(sipp, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

  /* welcome barged in; thanks twice (synthesised, then cached), both played to the end;
     the last one stopped. */
  CHECK(finished_count == 4);
  CHECK(strcmp(finished_name[0], "say:" WELCOME) == 0);
  CHECK(finished_end[0] == IVR_PROMPT_BARGED_IN);
  CHECK(strcmp(finished_name[1], "say:" THANKS) == 0);
  CHECK(finished_end[1] == IVR_PROMPT_COMPLETED);
  CHECK(strcmp(finished_name[2], "say:" THANKS) == 0);
  CHECK(finished_end[2] == IVR_PROMPT_COMPLETED);
  CHECK(strcmp(finished_name[3], "say:" STOPPED) == 0);
  CHECK(finished_end[3] == IVR_PROMPT_STOPPED);
  /* Played in real time: "Thank you for calling." lasts over a second each time. */
  CHECK(thanks_ms[0] > 800 && thanks_ms[1] > 800);
  printf("thanks played in %.0f ms (synthesised) and %.0f ms (cached)\n", thanks_ms[0],
         thanks_ms[1]);

  CHECK(ivr_call_say(kept, THANKS, NULL) == IVR_EGONE); /* the call has ended */
  CHECK(ivr_engine_stop(engine, "done") == IVR_OK);
  ivr_engine_free(engine);
  ivr_call_unref(kept);

  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
