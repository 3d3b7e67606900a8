/* For C ABI tests that place real calls: one SIPp caller (scenarios/info_call.xml) to the
   engine on loopback, waited for (SIPp's own -timeout bounds it). */
#ifndef IVR_CAPI_SIPP_H
#define IVR_CAPI_SIPP_H

#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "capi_test.h"

extern char **environ;

static void place_call(unsigned short sip_port, const char *to) {
  char scenario[512], target[64], local_port[16];
  pid_t sipp = 0;
  int status = 0;
  snprintf(scenario, sizeof scenario, "%s/scenarios/info_call.xml", IVR_TEST_SOURCE_DIR);
  snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)sip_port);
  snprintf(local_port, sizeof local_port, "%u", (unsigned)free_udp_port());
  {
    char *argv[] = {"sipp",           "-sf",  scenario,    "-m", "1",        "-s",       (char *)to,
                    "-nostdin",       "-i",   "127.0.0.1", "-p", local_port, "-timeout", "30s",
                    "-timeout_error", target, NULL};
    CHECK(posix_spawnp(&sipp, "sipp", NULL, NULL, argv, environ) == 0);
  }
  if (sipp > 0) waitpid(sipp, &status, 0);
}

#endif
