/* Shared by the C ABI tests: a CHECK that counts failures, and a free loopback port. */
#ifndef IVR_CAPI_TEST_H
#define IVR_CAPI_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ivr/ivr.h>

static int failures = 0;
#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              ivr_error_last()->message);                                                      \
      failures++;                                                                              \
    }                                                                                          \
  } while (0)

/* A loopback UDP port free right now. */
static unsigned short free_udp_port(void) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  unsigned short port;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&addr, sizeof addr);
  getsockname(fd, (struct sockaddr *)&addr, &len);
  port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

#endif
