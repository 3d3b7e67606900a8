/* For C ABI tests that place calls through a flow and check how each ended: an event
   callback that records the last call's flow path and end reason and counts the calls. */
#ifndef IVR_CAPI_CALL_END_H
#define IVR_CAPI_CALL_END_H

#include <stdio.h>

#include "capi_test.h"
#include "capi_wait.h"

static int calls_ended = 0;
static char end_path[256], end_reason[512];

static void on_call_end_event(const ivr_event *ev, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&mutex);
  if (ev->type == IVR_EVENT_CALL_ENDED) {
    snprintf(end_path, sizeof end_path, "%s", ev->flow_path ? ev->flow_path : "");
    snprintf(end_reason, sizeof end_reason, "%s", ev->reason ? ev->reason : "");
    calls_ended++;
  }
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&mutex);
}

#endif
