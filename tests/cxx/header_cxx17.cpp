// ivr/ivr.hpp compiles as C++17 (this target is built with CXX_STANDARD 17) and links
// against the shared library alone.
#include <ivr/ivr.hpp>

#include <cstdio>

static_assert(__cplusplus == 201703L, "this test must be compiled as C++17");

int main() {
  ivr::EngineOptions options;
  options.sip_address = "not-an-ip";
  try {
    ivr::Engine engine(options);
  } catch (const ivr::Error &e) {
    ivr::DbValue value = int64_t{1};
    std::printf("libivr %s; %s: %s (%zu)\n", ivr::version().c_str(), e.code_name(), e.what(),
                value.index());
    return e.code() == IVR_EINVAL ? 0 : 1;
  }
  return 1;
}
