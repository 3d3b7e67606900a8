/*
 * ivr-hello: the smallest useful program embedding libivr.
 *
 * Answers every call, plays welcome.wav while collecting up to 8 digits ended by '#'
 * (a digit interrupts the prompt), prints one line per call on stdout:
 *
 *     call <Call-ID> digits <digits> source <rfc4733|info|inband|none>
 *
 * then plays goodbye.wav and hangs up. Stop it with Ctrl-C.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ivr/ivr.h>

struct settings {
  unsigned first_timeout_ms, inter_timeout_ms, answer_delay_ms;
  int inband;
  ivr_log_level log_level;
};

/* Per-call state, attached to the call with ivr_call_set_user_data. */
struct hello_call {
  int printed;    /* the call's line is out */
  int saying_bye; /* goodbye.wav is playing */
};

static struct settings g_settings = {5000, 3000, 0, 0, IVR_LOG_INFO};

static void print_line(ivr_call *call, struct hello_call *state, const char *digits,
                       const char *source) {
  if (state->printed) return;
  state->printed = 1;
  printf("call %s digits %s source %s\n", ivr_call_id(call), digits, source);
  fflush(stdout);
}

static void complain(const char *what, ivr_call *call) {
  fprintf(stderr, "ivr-hello: %s failed for call %s: %s\n", what, ivr_call_id(call),
          ivr_error_last()->message);
}

/* Answering later runs on a thread of ours: call functions are safe from any thread. */
static void *answer_later(void *arg) {
  ivr_call *call = arg;
  struct timespec delay;
  delay.tv_sec = g_settings.answer_delay_ms / 1000;
  delay.tv_nsec = (long)(g_settings.answer_delay_ms % 1000) * 1000000L;
  nanosleep(&delay, NULL);
  if (ivr_call_answer(call) != IVR_OK && ivr_error_last()->code != IVR_EGONE)
    complain("answer", call);
  ivr_call_unref(call);
  return NULL;
}

static void on_event(const ivr_event *ev, void *user_data) {
  ivr_call *call = ev->call;
  struct hello_call *state = ivr_call_user_data(call);
  (void)user_data;

  switch (ev->type) {
    case IVR_EVENT_CALL_STARTED: {
      pthread_t thread;
      state = calloc(1, sizeof *state);
      if (!state) {
        ivr_call_reject(call, 503, "out of memory");
        return;
      }
      ivr_call_set_user_data(call, state);
      if (g_settings.inband) ivr_call_set_inband_dtmf(call, 1);
      ivr_call_ring(call);
      if (g_settings.answer_delay_ms == 0) {
        /* Fails (and the engine answers 488) when the offer has no codec we speak. */
        if (ivr_call_answer(call) != IVR_OK) complain("answer", call);
      } else {
        ivr_call_ref(call);
        if (pthread_create(&thread, NULL, answer_later, call) == 0)
          pthread_detach(thread);
        else
          ivr_call_unref(call);
      }
      break;
    }
    case IVR_EVENT_CALL_ANSWERED: {
      ivr_collect_options opts = IVR_COLLECT_OPTIONS_INIT;
      opts.max_digits = 8;
      opts.terminators = "#";
      opts.first_digit_timeout_ms = g_settings.first_timeout_ms;
      opts.inter_digit_timeout_ms = g_settings.inter_timeout_ms;
      opts.barge_in = 1;
      if (ivr_call_play(call, "welcome.wav") != IVR_OK) complain("play", call);
      if (ivr_call_collect(call, &opts) != IVR_OK) complain("collect", call);
      break;
    }
    case IVR_EVENT_DTMF:
      fprintf(stderr, "ivr-hello: call %s digit %c (%u ms, %s)\n", ivr_call_id(call), ev->digit,
              ev->duration_ms, ivr_dtmf_source_name(ev->dtmf_source));
      break;
    case IVR_EVENT_COLLECT_DONE:
      print_line(call, state, ev->digits,
                 ev->digits[0] ? ivr_dtmf_source_name(ev->digits_source) : "none");
      if (ev->collect_end == IVR_COLLECT_CANCELLED) break; /* the call is ending */
      state->saying_bye = 1;
      if (ivr_call_play(call, "goodbye.wav") != IVR_OK) {
        complain("play", call);
        ivr_call_hangup(call, "goodbye");
      }
      break;
    case IVR_EVENT_PROMPT_FINISHED:
      if (state && state->saying_bye && strcmp(ev->prompt, "goodbye.wav") == 0)
        ivr_call_hangup(call, "goodbye");
      break;
    case IVR_EVENT_CALL_ENDED:
      if (state) {
        print_line(call, state, "", "none");
        free(state);
        ivr_call_set_user_data(call, NULL);
      }
      fprintf(stderr, "ivr-hello: call %s ended: %s, %s (%d)\n", ivr_call_id(call),
              ivr_end_reason_name(ev->end_reason), ev->reason, ev->sip_code);
      break;
    case IVR_EVENT_MEDIA_UPDATED:
      fprintf(stderr, "ivr-hello: call %s %s\n", ivr_call_id(call),
              ev->on_hold ? "on hold" : "resumed");
      break;
    default: /* events of later ABI versions (flow steps: ivr-hello runs no flow) */
      break;
  }
}

static void on_log(ivr_log_level level, const char *subsystem, const char *message,
                   void *user_data) {
  static const char *names[] = {"error", "warn", "info", "debug", "trace"};
  (void)user_data;
  fprintf(stderr, "[%s] %s: %s\n", names[level], subsystem, message);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: ivr-hello [--listen HOST:PORT] [--prompts DIR] [--rtp-ports MIN-MAX]\n"
          "                 [--inband] [--first-timeout MS] [--inter-timeout MS]\n"
          "                 [--answer-delay MS] [--media-threads N]\n"
          "                 [--log-level error|warn|info|debug]\n");
}

/* Splits "HOST:PORT" or "[v6]:PORT" in place. */
static int parse_listen(char *arg, const char **host, unsigned short *port) {
  char *colon = strrchr(arg, ':');
  long value;
  char *end;
  if (!colon) return -1;
  *colon = '\0';
  value = strtol(colon + 1, &end, 10);
  if (*end || value < 0 || value > 65535) return -1;
  if (arg[0] == '[') {
    size_t len = strlen(arg);
    if (len < 2 || arg[len - 1] != ']') return -1;
    arg[len - 1] = '\0';
    arg++;
  }
  *host = arg;
  *port = (unsigned short)value;
  return 0;
}

static unsigned parse_ms(const char *s, const char *what) {
  char *end;
  long value = strtol(s, &end, 10);
  if (*end || value < 0 || value > 3600000) {
    fprintf(stderr, "ivr-hello: %s: not a number of milliseconds: %s\n", what, s);
    exit(2);
  }
  return (unsigned)value;
}

int main(int argc, char **argv) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  sigset_t signals;
  int i, sig;

  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(arg, "--inband") == 0) {
      g_settings.inband = 1;
      continue;
    }
    if (!value) {
      usage(stderr);
      return 2;
    }
    i++;
    if (strcmp(arg, "--listen") == 0) {
      if (parse_listen(argv[i], &opts.sip_address, &opts.sip_port) != 0) {
        fprintf(stderr, "ivr-hello: --listen: expected HOST:PORT, got %s\n", value);
        return 2;
      }
    } else if (strcmp(arg, "--prompts") == 0) {
      opts.prompt_dir = value;
    } else if (strcmp(arg, "--rtp-ports") == 0) {
      unsigned lo, hi;
      if (sscanf(value, "%u-%u", &lo, &hi) != 2 || lo > 65535 || hi > 65535) {
        fprintf(stderr, "ivr-hello: --rtp-ports: expected MIN-MAX, got %s\n", value);
        return 2;
      }
      opts.rtp_port_min = (unsigned short)lo;
      opts.rtp_port_max = (unsigned short)hi;
    } else if (strcmp(arg, "--first-timeout") == 0) {
      g_settings.first_timeout_ms = parse_ms(value, arg);
    } else if (strcmp(arg, "--inter-timeout") == 0) {
      g_settings.inter_timeout_ms = parse_ms(value, arg);
    } else if (strcmp(arg, "--media-threads") == 0) {
      opts.media_threads = parse_ms(value, arg); /* a plain count; the engine checks 1..64 */
    } else if (strcmp(arg, "--answer-delay") == 0) {
      g_settings.answer_delay_ms = parse_ms(value, arg);
    } else if (strcmp(arg, "--log-level") == 0) {
      if (strcmp(value, "error") == 0)
        g_settings.log_level = IVR_LOG_ERROR;
      else if (strcmp(value, "warn") == 0)
        g_settings.log_level = IVR_LOG_WARN;
      else if (strcmp(value, "info") == 0)
        g_settings.log_level = IVR_LOG_INFO;
      else if (strcmp(value, "debug") == 0)
        g_settings.log_level = IVR_LOG_DEBUG;
      else {
        fprintf(stderr, "ivr-hello: --log-level: unknown level %s\n", value);
        return 2;
      }
    } else {
      usage(stderr);
      return 2;
    }
  }
  opts.log_cb = on_log;
  opts.log_level = g_settings.log_level;

  /* Block the stop signals before any engine thread exists, so only sigwait sees them. */
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (ivr_engine_new(&engine, &opts) != IVR_OK ||
      ivr_engine_set_event_callback(engine, on_event, NULL, NULL) != IVR_OK ||
      ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "ivr-hello: %s\n", ivr_error_last()->message);
    ivr_engine_free(engine);
    return 1;
  }
  fprintf(stderr, "ivr-hello listening on sip:%s:%u\n", opts.sip_address,
          (unsigned)ivr_engine_sip_port(engine));

  while (sigwait(&signals, &sig) != 0) {
  }
  fprintf(stderr, "ivr-hello: stopping (signal %d)\n", sig);
  ivr_engine_stop(engine, "ivr-hello shutting down");
  ivr_engine_free(engine);
  return 0;
}
