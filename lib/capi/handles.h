// The opaque handles behind the C ABI, and the helpers every shim uses.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "common/result.h"
#include "core/engine.h"
#include "ivr/ivr.h"

// Magic numbers catch a wrong or freed pointer at the boundary.
constexpr uint32_t kEngineMagic = 0x49565245;  // "IVRE"
constexpr uint32_t kCallMagic = 0x49565243;    // "IVRC"
constexpr uint32_t kDeadMagic = 0xdeadbeef;

struct ivr_engine {
  uint32_t magic = kEngineMagic;
  std::shared_ptr<ivr::core::Engine> engine;
  ivr_event_cb event_cb = nullptr;
  void *event_user_data = nullptr;
  ivr_free_cb free_event_user_data = nullptr;
  ivr_log_cb log_cb = nullptr;
  void *log_user_data = nullptr;
};

struct ivr_call {
  uint32_t magic = kCallMagic;
  std::shared_ptr<ivr::core::Call> call;
  std::weak_ptr<ivr::core::Engine> engine;
  std::atomic<int> refs{1};  // the engine's own reference until CALL_ENDED
};

namespace ivr::capi {

// Sets the thread's last error and returns its code.
int set_error(int code, const std::string &message);
int set_error(const Error &error);
void clear_error();
// Maps an exception in flight to an error code (call from a catch (...) block).
int error_from_exception();

// The call's C handle, made on first use (engine thread). The engine holds one reference
// until CALL_ENDED.
ivr_call *call_handle(ivr_engine *handle, const std::shared_ptr<ivr::core::Call> &call);

inline bool valid(const ivr_engine *e) {
  return e && e->magic == kEngineMagic;
}
inline bool valid(const ivr_call *c) {
  return c && c->magic == kCallMagic;
}

}  // namespace ivr::capi

// Wraps a shim body: no exception ever crosses the C boundary.
#define IVR_CAPI_GUARD(...)                     \
  try {                                         \
    __VA_ARGS__                                 \
  } catch (...) {                               \
    return ::ivr::capi::error_from_exception(); \
  }
