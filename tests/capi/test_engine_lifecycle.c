/* C ABI: options, argument checks, errors, engine lifecycle, NULL safety. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_test.h"

static int events_seen = 0;
static void on_event(const ivr_event *ev, void *user_data) {
  (void)ev;
  (void)user_data;
  events_seen++;
}
static int freed = 0;
static void free_data(void *p) {
  (void)p;
  freed++;
}

int main(void) {
  ivr_engine_options opts;
  ivr_engine *engine = NULL, *second = NULL;
  int major = -1, minor = -1, patch = -1;
  const char *v = ivr_version(&major, &minor, &patch);

  CHECK(v && strlen(v) > 0);
  CHECK(major == IVR_VERSION_MAJOR && minor == IVR_VERSION_MINOR && patch == IVR_VERSION_PATCH);
  CHECK(ivr_error_last() != NULL && ivr_error_last()->message != NULL);
  CHECK(strcmp(ivr_strerror(IVR_EINVAL), "invalid argument") == 0);
  CHECK(ivr_strerror(12345) != NULL);
  CHECK(strcmp(ivr_event_type_name(IVR_EVENT_DTMF), "dtmf") == 0);
  CHECK(strcmp(ivr_dtmf_source_name(IVR_DTMF_INFO), "info") == 0);

  /* options */
  CHECK(ivr_engine_options_init(&opts, 999) == IVR_EVERSION);
  CHECK(ivr_error_last()->code == IVR_EVERSION);
  CHECK(ivr_engine_options_init(&opts, IVR_ENGINE_OPTIONS_VERSION) == IVR_OK);
  CHECK(strcmp(opts.sip_address, "127.0.0.1") == 0 && opts.sip_port == 5060);

  opts.sip_address = "not-an-ip";
  CHECK(ivr_engine_new(&engine, &opts) == IVR_EINVAL && engine == NULL);
  CHECK(strstr(ivr_error_last()->message, "sip_address") != NULL);
  opts.sip_address = "127.0.0.1";
  opts.rtp_port_min = 20001;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "rtp_port_min") != NULL);
  opts.rtp_port_min = 30000;
  opts.rtp_port_max = 20000;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_EINVAL);
  CHECK(strstr(ivr_error_last()->message, "rtp_port_max") != NULL);
  opts.rtp_port_min = 31000;
  opts.rtp_port_max = 31100;
  opts.media_threads = 0;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_EINVAL);
  opts.media_threads = 1;
  opts.version = 77;
  CHECK(ivr_engine_new(&engine, &opts) == IVR_EVERSION);
  opts.version = IVR_ENGINE_OPTIONS_VERSION;
  CHECK(ivr_engine_new(NULL, &opts) == IVR_EINVAL);
  CHECK(ivr_engine_new(&engine, NULL) == IVR_EINVAL);

  /* NULL safety */
  ivr_engine_free(NULL);
  ivr_call_unref(NULL);
  CHECK(ivr_engine_start(NULL) == IVR_EINVAL);
  CHECK(ivr_call_answer(NULL) == IVR_EINVAL);
  CHECK(strcmp(ivr_call_id(NULL), "") == 0);
  CHECK(ivr_engine_sip_port(NULL) == 0);

  /* start, stop, free */
  opts.sip_port = free_udp_port();
  CHECK(ivr_engine_new(&engine, &opts) == IVR_OK && engine != NULL);
  CHECK(ivr_engine_set_event_callback(engine, on_event, &events_seen, free_data) == IVR_OK);
  CHECK(ivr_engine_start(engine) == IVR_OK);
  CHECK(ivr_engine_sip_port(engine) == opts.sip_port);
  CHECK(ivr_engine_start(engine) == IVR_ESTATE);
  CHECK(ivr_engine_set_event_callback(engine, on_event, NULL, NULL) == IVR_ESTATE);
  CHECK(ivr_engine_call_count(engine) == 0);

  /* a second engine on the same SIP port fails with a clear error */
  opts.rtp_port_min = 31200;
  opts.rtp_port_max = 31300;
  CHECK(ivr_engine_new(&second, &opts) == IVR_OK);
  CHECK(ivr_engine_start(second) == IVR_ESIP);
  CHECK(strstr(ivr_error_last()->message, "127.0.0.1") != NULL);
  ivr_engine_free(second);

  CHECK(ivr_engine_stop(engine, "test over") == IVR_OK);
  CHECK(ivr_engine_stop(engine, NULL) == IVR_OK); /* idempotent */
  ivr_engine_free(engine);
  CHECK(freed == 1);
  CHECK(events_seen == 0);

  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
