/* For C ABI tests that wait for events: one mutex and condition shared with the event
   callback, and a bounded wait for a flag the callback sets (under `mutex`, then
   broadcasting `cond`). */
#ifndef IVR_CAPI_WAIT_H
#define IVR_CAPI_WAIT_H

#include <pthread.h>
#include <time.h>

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* Waits (at most `seconds`) until *flag is set; returns it. */
static int wait_flag(int *flag, int seconds) {
  struct timespec deadline;
  int ok;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;
  pthread_mutex_lock(&mutex);
  while (!*flag && pthread_cond_timedwait(&cond, &mutex, &deadline) == 0) {
  }
  ok = *flag;
  pthread_mutex_unlock(&mutex);
  return ok;
}

#endif
