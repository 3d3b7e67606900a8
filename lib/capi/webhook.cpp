// C shims for webhooks (ivr/webhook.h): option conversion, then the dispatcher's work on the
// engine thread through Engine::run_on_engine.
#include <algorithm>
#include <cstring>
#include <vector>

#include "capi/handles.h"
#include "common/text.h"

using ivr::capi::set_error;
using ivr::capi::valid;

namespace {

constexpr const char *kOff = "webhooks are off: the engine has no webhook_spool_dir";

int convert(const ivr_webhook_options *o, ivr::net::WebhookSubscription *s) {
  if (o->version != IVR_WEBHOOK_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "opts.version: unknown webhook options version " + std::to_string(o->version));
  if (!o->name) return set_error(IVR_EINVAL, "opts.name: NULL");
  if (!o->url) return set_error(IVR_EINVAL, "opts.url: NULL");
  s->name = o->name;
  s->url = o->url;
  std::string_view types = o->event_types ? o->event_types : "*";
  size_t start = 0;
  while (start <= types.size()) {
    size_t comma = std::min(types.find(',', start), types.size());
    std::string_view type = ivr::text::trim(types.substr(start, comma - start));
    if (type.empty())
      return set_error(IVR_EINVAL, "opts.event_types: an empty name in \"" + std::string(types) +
                                       "\" (comma-separated types, or \"*\")");
    s->event_types.emplace_back(type);
    start = comma + 1;
  }
  if (!o->secrets || o->secret_count == 0)
    return set_error(IVR_EINVAL, "opts.secrets: at least one signing secret is required");
  for (size_t i = 0; i < o->secret_count; ++i) {
    if (!o->secrets[i])
      return set_error(IVR_EINVAL, "opts.secrets[" + std::to_string(i) + "]: NULL");
    s->secrets.emplace_back(o->secrets[i]);
  }
  s->timeout_ms = o->timeout_ms;
  s->connect_timeout_ms = std::min<uint32_t>(s->connect_timeout_ms, o->timeout_ms);
  s->max_attempts = o->max_attempts;
  s->backoff_base = std::chrono::milliseconds(o->backoff_base_ms);
  s->backoff_max = std::chrono::milliseconds(o->backoff_max_ms);
  s->max_concurrency = o->max_concurrency;
  if (o->ca_file) s->tls.ca_file = o->ca_file;
  s->enabled = o->enabled != 0;
  return IVR_OK;
}

// Runs fn(dispatcher) on the engine thread.
template <typename Fn>
int with_dispatcher(ivr_engine *engine, const char *what, Fn &&fn) {
  if (!valid(engine))
    return set_error(IVR_EINVAL, std::string(what) + ": engine: not a valid engine handle");
  auto &core = *engine->engine;
  if (!core.webhooks_enabled()) return set_error(IVR_ESTATE, std::string(what) + ": " + kOff);
  ivr::Status status = core.run_on_engine([&]() -> ivr::Status {
    auto *dispatcher = core.webhooks();
    if (!dispatcher) return ivr::Error{ivr::Errc::gone, "webhooks: the engine has stopped"};
    return fn(*dispatcher);
  });
  return status ? IVR_OK : set_error(status.error());
}

}  // namespace

extern "C" {

IVR_API int ivr_webhook_options_init(ivr_webhook_options *opts, unsigned int version) {
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (version != IVR_WEBHOOK_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "version: unknown webhook options version " + std::to_string(version));
  ivr_webhook_options defaults = IVR_WEBHOOK_OPTIONS_INIT;
  *opts = defaults;
  return IVR_OK;
}

IVR_API int ivr_engine_set_webhook(ivr_engine *engine,
                                   const ivr_webhook_options *opts){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (!engine->engine->webhooks_enabled()) return set_error(IVR_ESTATE, kOff);
  ivr::net::WebhookSubscription subscription;
  if (int rc = convert(opts, &subscription); rc != IVR_OK) return rc;
  auto status = engine->engine->set_webhook(std::move(subscription));
  return status ? IVR_OK : set_error(status.error());
})}

IVR_API int ivr_engine_remove_webhook(ivr_engine *engine, const char *name){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!name) return set_error(IVR_EINVAL, "name: NULL");
  auto status = engine->engine->remove_webhook(name);
  return status ? IVR_OK : set_error(status.error());
})}

IVR_API int ivr_engine_webhook_stats(ivr_engine *engine, ivr_webhook_stats *out){IVR_CAPI_GUARD({
  if (!out) return set_error(IVR_EINVAL, "out: NULL");
  if (out->version != IVR_WEBHOOK_STATS_VERSION)
    return set_error(IVR_EVERSION,
                     "out.version: unknown webhook stats version " + std::to_string(out->version));
  ivr::net::WebhookCounters c;
  bool healthy = true;
  int rc = with_dispatcher(engine, "webhook_stats", [&](ivr::net::WebhookDispatcher &d) {
    c = d.counters();
    healthy = d.health().ok();
    return ivr::Status{};
  });
  if (rc != IVR_OK) return rc;
  out->published = c.published;
  out->publish_rejected = c.publish_rejected;
  out->delivered = c.delivered;
  out->failed_attempts = c.failed_attempts;
  out->dead_lettered = c.dead_lettered;
  out->requeued = c.requeued;
  out->spool_errors = engine->engine->webhook_spool_errors();
  out->in_flight = c.in_flight;
  out->queued = c.queued;
  out->dead = c.dead;
  out->healthy = healthy ? 1 : 0;
  return IVR_OK;
})}

IVR_API int ivr_engine_webhook_dead_letters(ivr_engine *engine, ivr_dead_letter_cb cb,
                                            void *user_data){IVR_CAPI_GUARD({
  if (!cb) return set_error(IVR_EINVAL, "cb: NULL");
  std::vector<ivr::net::DeadLetter> letters;
  int rc = with_dispatcher(engine, "webhook_dead_letters", [&](ivr::net::WebhookDispatcher &d) {
    letters = d.dead_letters();
    return ivr::Status{};
  });
  if (rc != IVR_OK) return rc;
  // Called outside the engine thread's work: the callback may use the engine.
  for (const auto &l : letters) {
    ivr_dead_letter letter;
    letter.id = l.id.c_str();
    letter.subscription = l.subscription.c_str();
    letter.event_type = l.event_type.c_str();
    letter.attempts = l.attempts;
    letter.last_error = l.last_error.c_str();
    letter.created_ms = l.created_ms;
    if (cb(&letter, user_data) != 0) break;
  }
  return IVR_OK;
})}

IVR_API int ivr_engine_webhook_requeue(ivr_engine *engine, const char *id){IVR_CAPI_GUARD({
  if (!id) return set_error(IVR_EINVAL, "id: NULL");
  std::string key = id;
  return with_dispatcher(engine, "webhook_requeue",
                         [&](ivr::net::WebhookDispatcher &d) { return d.requeue(key); });
})}

IVR_API int ivr_engine_webhook_purge(ivr_engine *engine, const char *id) {
  IVR_CAPI_GUARD({
    if (!id) return set_error(IVR_EINVAL, "id: NULL");
    std::string key = id;
    return with_dispatcher(engine, "webhook_purge",
                           [&](ivr::net::WebhookDispatcher &d) { return d.purge(key); });
  })
}

}  // extern "C"
