/**
 * @file ivr/http.h
 * Credentials for the http steps of flows: auth profiles and the secrets they name.
 *
 * A flow's http node names an auth profile ("auth": "crm"); the profile says how requests
 * are authenticated (basic, bearer token, API key, HMAC signature, AWS SigV4, OAuth2 client
 * credentials) and names the secrets it needs. Secrets are never written in flows or in
 * profiles: they come from ivr_engine_set_secret() or, failing that, from the environment
 * variable IVR_SECRET_<NAME> (the name upper-cased, other characters as '_'). Profile
 * fields: docs/net.md, "HTTP service".
 */
#ifndef IVR_HTTP_H
#define IVR_HTTP_H

#include "ivr/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Replaces every auth profile with those of json, a JSON object of named profiles, e.g.
 *   {"crm": {"type": "bearer", "token_secret": "crm.token"}}
 * All or nothing: on an error no profile changes. Profiles set before ivr_engine_start()
 * take effect at start. Lookups already being authorized finish with the profile they
 * started with.
 * Errors: IVR_EINVAL (the message names the field: "auth.crm.token_secret: missing"; a
 * secret's value never appears in a message), IVR_EPARSE (not JSON).
 * Thread-safety: any thread, also from an event callback. json is copied.
 */
IVR_API int ivr_engine_set_auth_profiles(ivr_engine *engine, const char *json);

/**
 * Sets the secret called name (1-128 characters of A-Z a-z 0-9 _ . -) to value, or removes
 * it when value is NULL or empty. The engine's secrets are looked up before the
 * environment. The value is copied and never logged.
 * Errors: IVR_EINVAL (name).
 * Thread-safety: any thread, also from an event callback.
 */
IVR_API int ivr_engine_set_secret(ivr_engine *engine, const char *name, const char *value);

#ifdef __cplusplus
}
#endif

#endif /* IVR_HTTP_H */
