/* The public headers compile as strict C99 and link. */
#include <ivr/ivr.h>
#include <stdio.h>

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_collect_options collect = IVR_COLLECT_OPTIONS_INIT;
  const ivr_error *err = ivr_error_last();
  printf("libivr %s, options v%u, collect v%u, last error %d\n", ivr_version(NULL, NULL, NULL),
         opts.version, collect.version, err->code);
  return opts.version == IVR_ENGINE_OPTIONS_VERSION && err != NULL ? 0 : 1;
}
