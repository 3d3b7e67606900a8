// The public headers compile as C++ (extern "C" linkage) and link; so does the C++ wrapper.
#include <ivr/ivr.h>
#include <ivr/ivr.hpp>

#include <cstdio>

int main() {
  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  ivr_collect_options collect = IVR_COLLECT_OPTIONS_INIT;
  std::printf("libivr %s, %s\n", ivr_version(nullptr, nullptr, nullptr), ivr_strerror(IVR_EGONE));
  return (opts.version == IVR_ENGINE_OPTIONS_VERSION && collect.max_digits == 1 &&
          ivr::EngineOptions().sip_port == opts.sip_port)
             ? 0
             : 1;
}
