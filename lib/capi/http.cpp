// C shims of ivr/http.h: auth profiles and secrets for http steps.
#include "capi/handles.h"

using ivr::capi::set_error;
using ivr::capi::valid;

extern "C" {

IVR_API int ivr_engine_set_auth_profiles(ivr_engine *engine, const char *json){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!json) return set_error(IVR_EINVAL, "json: NULL");
  if (auto s = engine->engine->set_auth_profiles(json); !s) return set_error(s.error());
  return IVR_OK;
})}

IVR_API int ivr_engine_set_secret(ivr_engine *engine, const char *name, const char *value) {
  IVR_CAPI_GUARD({
    if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
    if (!name) return set_error(IVR_EINVAL, "name: NULL");
    if (auto s = engine->engine->set_secret(name, value ? value : ""); !s)
      return set_error(s.error());
    return IVR_OK;
  })
}

}  // extern "C"
