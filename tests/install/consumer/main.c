#include <ivr/ivr.h>
#include <stdio.h>

int main(void) {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_engine *engine = NULL;
  int rc = ivr_engine_new(&engine, &opts);
  printf("libivr %s: engine_new -> %d\n", ivr_version(NULL, NULL, NULL), rc);
  ivr_engine_free(engine);
  return rc == IVR_OK ? 0 : 1;
}
