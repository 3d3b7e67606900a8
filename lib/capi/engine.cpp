// C shims for ivr_engine_*: argument checks, option conversion, event delivery.
#include <arpa/inet.h>

#include <cstddef>
#include <cstring>

#include "capi/handles.h"

using ivr::capi::set_error;
using ivr::capi::valid;

namespace {

// A version 1 struct ends where version 2's fields begin.
constexpr size_t kEngineOptionsV1Size = offsetof(ivr_engine_options, webhook_spool_dir);

bool is_ip_literal(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int convert_options(const ivr_engine_options *o, ivr::core::EngineOptions *out) {
  if (o->version < 1 || o->version > IVR_ENGINE_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "options.version: unknown version " + std::to_string(o->version));
  if (!o->sip_address || !is_ip_literal(o->sip_address))
    return set_error(IVR_EINVAL, "options.sip_address: must be an IPv4 or IPv6 literal");
  const char *rtp = o->rtp_address ? o->rtp_address : o->sip_address;
  if (!is_ip_literal(rtp))
    return set_error(IVR_EINVAL, "options.rtp_address: must be an IPv4 or IPv6 literal");
  if (o->sip_transport < IVR_SIP_UDP || o->sip_transport > IVR_SIP_UDP_TCP)
    return set_error(IVR_EINVAL, "options.sip_transport: unknown transport");
  if (o->rtp_port_min < 1024 || o->rtp_port_min % 2 != 0)
    return set_error(IVR_EINVAL, "options.rtp_port_min: must be even and >= 1024");
  if (o->rtp_port_max < o->rtp_port_min + 1)
    return set_error(IVR_EINVAL, "options.rtp_port_max: must be above rtp_port_min");
  if (o->media_threads < 1 || o->media_threads > 64)
    return set_error(IVR_EINVAL, "options.media_threads: must be 1..64");
  if (o->log_level < IVR_LOG_ERROR || o->log_level > IVR_LOG_TRACE)
    return set_error(IVR_EINVAL, "options.log_level: unknown level");
  out->sip.address = o->sip_address;
  out->sip.port = o->sip_port;
  out->sip.transport = static_cast<ivr::sip::Transport>(o->sip_transport);
  out->sip.user_agent = o->user_agent
                            ? o->user_agent
                            : std::string("libivr/") + ivr_version(nullptr, nullptr, nullptr);
  out->media.rtp_address = rtp;
  out->media.port_min = o->rtp_port_min;
  out->media.port_max = o->rtp_port_max;
  out->media.threads = o->media_threads;
  out->prompt_dir = o->prompt_dir && *o->prompt_dir ? o->prompt_dir : ".";
  if (o->version >= 2) {  // a version 1 struct has no such fields: never read them
    if (o->webhook_spool_dir) out->webhook_spool_dir = o->webhook_spool_dir;
    out->webhook_spool_max_bytes = o->webhook_spool_max_bytes;
  }
  return IVR_OK;
}

void deliver(ivr_engine *handle, const ivr::core::CallEvent &e) {
  auto &call = *e.call;
  ivr_call *ch = ivr::capi::call_handle(handle, e.call);
  ivr_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.type = static_cast<ivr_event_type>(e.type);
  ev.call = ch;
  ev.digit = e.dtmf.digit;
  ev.duration_ms = e.dtmf.duration_ms;
  ev.dtmf_source = static_cast<ivr_dtmf_source>(e.dtmf.source);
  ev.prompt = e.prompt.c_str();
  ev.prompt_end = static_cast<ivr_prompt_end>(e.prompt_end);
  ev.digits = e.digits.c_str();
  ev.collect_end = static_cast<ivr_collect_end>(e.collect_end);
  ev.digits_source = static_cast<ivr_dtmf_source>(e.digits_source);
  ev.end_reason = static_cast<ivr_end_reason>(e.end_reason);
  ev.sip_code = e.sip_code;
  ev.reason = e.reason.c_str();
  ev.on_hold = e.on_hold ? 1 : 0;
  ev.version = 3;
  ev.flow_id = e.flow_id.c_str();
  ev.flow_version = e.flow_version.c_str();
  ev.flow_node = e.flow_node.c_str();
  ev.flow_verb = e.flow_verb.c_str();
  ev.flow_detail = e.flow_detail.c_str();
  ev.flow_path = e.flow_path.c_str();
  ev.flow_end = e.flow_end.c_str();
  ev.flow_error = e.flow_error.c_str();
  ev.route_plan = e.route_plan.c_str();
  ev.route_target = e.route_target.c_str();
  ev.route_uri = e.route_uri.c_str();
  ev.route_detail = e.route_detail.c_str();
  ev.route_attempt = e.route_attempt;
  ev.queue_position = e.queue_position;
  ev.queue_priority = e.queue_priority;
  if (handle->event_cb) {
    try {
      handle->event_cb(&ev, handle->event_user_data);
    } catch (...) {
      // A C++ host threw through a C callback: contain it rather than unwind the engine.
    }
  }
  if (e.type == ivr::core::EventType::call_ended) {
    call.c_handle = nullptr;
    ivr_call_unref(ch);  // the engine's reference; host references keep the handle
  }
}

}  // namespace

namespace ivr::capi {

ivr_call *call_handle(ivr_engine *handle, const std::shared_ptr<ivr::core::Call> &call) {
  auto *ch = static_cast<ivr_call *>(call->c_handle);
  if (!ch) {
    ch = new ivr_call();
    ch->call = call;
    ch->engine = handle->engine;
    call->c_handle = ch;
  }
  return ch;
}

}  // namespace ivr::capi

extern "C" {

IVR_API int ivr_engine_options_init(ivr_engine_options *opts, unsigned int version) {
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (version < 1 || version > IVR_ENGINE_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "version: unknown engine options version " + std::to_string(version));
  ivr_engine_options defaults = IVR_ENGINE_OPTIONS_INIT;
  defaults.version = version;
  // The caller's struct may be an older, smaller one: write only its version's fields.
  std::memcpy(opts, &defaults, version == 1 ? kEngineOptionsV1Size : sizeof defaults);
  return IVR_OK;
}

IVR_API int ivr_engine_new(ivr_engine **out, const ivr_engine_options *opts){IVR_CAPI_GUARD({
  if (!out) return set_error(IVR_EINVAL, "out: NULL");
  *out = nullptr;
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  ivr::core::EngineOptions options;
  if (int rc = convert_options(opts, &options); rc != IVR_OK) return rc;
  auto handle = std::make_unique<ivr_engine>();
  handle->log_cb = opts->log_cb;
  handle->log_user_data = opts->log_user_data;
  if (opts->log_cb) {
    ivr_engine *raw = handle.get();
    options.logger = std::make_shared<ivr::Logger>(
        static_cast<ivr::LogLevel>(opts->log_level),
        [raw](ivr::LogLevel level, const char *sub, const char *msg) {
          raw->log_cb(static_cast<ivr_log_level>(level), sub, msg, raw->log_user_data);
        });
  }
  handle->engine = std::make_shared<ivr::core::Engine>(std::move(options));
  ivr_engine *raw = handle.get();
  handle->engine->set_event_sink([raw](const ivr::core::CallEvent &e) { deliver(raw, e); });
  *out = handle.release();
  return IVR_OK;
})}

IVR_API int ivr_engine_set_event_callback(ivr_engine *engine, ivr_event_cb cb, void *user_data,
                                          ivr_free_cb free_user_data) {
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (engine->engine->started())
    return set_error(IVR_ESTATE, "set_event_callback: engine already started");
  if (engine->free_event_user_data) engine->free_event_user_data(engine->event_user_data);
  engine->event_cb = cb;
  engine->event_user_data = user_data;
  engine->free_event_user_data = free_user_data;
  return IVR_OK;
}

IVR_API int ivr_engine_start(ivr_engine *engine){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (engine->engine->in_engine_thread())
    return set_error(IVR_ESTATE, "start: not allowed from an event callback");
  if (auto s = engine->engine->start(); !s) return set_error(s.error());
  return IVR_OK;
})}

IVR_API int ivr_engine_stop(ivr_engine *engine, const char *reason){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (engine->engine->in_engine_thread())
    return set_error(IVR_ESTATE, "stop: not allowed from an event callback");
  engine->engine->stop(reason && *reason ? reason : "engine stopping");
  return IVR_OK;
})}

IVR_API void ivr_engine_free(ivr_engine *engine) {
  if (!valid(engine)) return;
  if (engine->engine->in_engine_thread()) return;  // documented misuse: leak, don't crash
  try {
    engine->engine->stop("engine freed");
  } catch (...) {
  }
  engine->engine.reset();
  if (engine->free_event_user_data) engine->free_event_user_data(engine->event_user_data);
  engine->magic = kDeadMagic;
  delete engine;
}

IVR_API unsigned short ivr_engine_sip_port(const ivr_engine *engine) {
  return valid(engine) ? engine->engine->sip_port() : 0;
}

IVR_API int ivr_engine_call_count(const ivr_engine *engine) {
  return valid(engine) ? engine->engine->call_count() : 0;
}

}  // extern "C"
