// Thread-local errors, error strings and the version.
#include <cstring>
#include <string>

#include "capi/handles.h"

namespace {

struct ThreadError {
  std::string message;
  ivr_error error{IVR_OK, ""};
};

ThreadError &thread_error() {
  thread_local ThreadError e;
  return e;
}

}  // namespace

namespace ivr::capi {

int set_error(int code, const std::string &message) {
  auto &e = thread_error();
  try {
    e.message = message;
    e.error.message = e.message.c_str();
  } catch (...) {
    e.error.message = "out of memory while reporting an error";
  }
  e.error.code = code;
  return code;
}

int set_error(const Error &error) {
  return set_error(static_cast<int>(error.code), error.message);
}

void clear_error() {}  // the last error stays until the next failure, like errno

int error_from_exception() {
  try {
    throw;
  } catch (const std::bad_alloc &) {
    return set_error(IVR_ENOMEM, "out of memory");
  } catch (const std::exception &ex) {
    return set_error(IVR_EINTERNAL, std::string("internal error: ") + ex.what());
  } catch (...) {
    return set_error(IVR_EINTERNAL, "internal error: unknown exception");
  }
}

}  // namespace ivr::capi

extern "C" {

IVR_API const ivr_error *ivr_error_last(void) {
  return &thread_error().error;
}

IVR_API const char *ivr_strerror(int code) {
  switch (code) {
    case IVR_OK:
      return "success";
    case IVR_EINVAL:
      return "invalid argument";
    case IVR_ENOMEM:
      return "out of memory";
    case IVR_ESTATE:
      return "not allowed in the current state";
    case IVR_ENOTFOUND:
      return "not found";
    case IVR_EGONE:
      return "the call or engine has ended";
    case IVR_EIO:
      return "input/output error";
    case IVR_ESIP:
      return "SIP error";
    case IVR_EMEDIA:
      return "media error";
    case IVR_EVERSION:
      return "unknown options version";
    case IVR_EBUSY:
      return "resource exhausted";
    case IVR_EPARSE:
      return "parse error";
    case IVR_EUNSUPPORTED:
      return "unsupported";
    case IVR_EINTERNAL:
      return "internal error";
    default:
      return "unknown error code";
  }
}

IVR_API const char *ivr_version(int *major, int *minor, int *patch) {
  if (major) *major = IVR_VERSION_MAJOR;
  if (minor) *minor = IVR_VERSION_MINOR;
  if (patch) *patch = IVR_VERSION_PATCH;
  return "0.1.0";
}

}  // extern "C"
