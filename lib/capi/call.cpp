// C shims for ivr_call_*: handle checks, then the action on the engine thread.
#include <cstring>

#include "capi/handles.h"

using ivr::capi::set_error;
using ivr::capi::valid;

namespace {

// Runs an action on the call's engine thread and maps its Status to a return code.
template <typename Fn>
int act(ivr_call *call, const char *what, Fn &&fn) {
  if (!valid(call))
    return set_error(IVR_EINVAL, std::string(what) + ": call: not a valid call handle");
  auto engine = call->engine.lock();
  if (!engine) return set_error(IVR_EGONE, std::string(what) + ": the engine is gone");
  auto *core_call = call->call.get();
  ivr::Status status = engine->run_on_engine([&] { return fn(*core_call); });
  return status ? IVR_OK : set_error(status.error());
}

const char *fact(const ivr_call *call, const std::string ivr::core::CallFacts::*field) {
  return valid(call) ? (call->call->facts().*field).c_str() : "";
}

}  // namespace

extern "C" {

IVR_API int ivr_call_ref(ivr_call *call) {
  if (!valid(call)) return set_error(IVR_EINVAL, "call: not a valid call handle");
  call->refs.fetch_add(1);
  return IVR_OK;
}

IVR_API void ivr_call_unref(ivr_call *call) {
  if (!valid(call)) return;
  if (call->refs.fetch_sub(1) == 1) {
    call->magic = kDeadMagic;
    delete call;
  }
}

IVR_API int ivr_call_ring(ivr_call *call){
    IVR_CAPI_GUARD({ return act(call, "ring", [](ivr::core::Call &c) { return c.ring(); }); })}

IVR_API int ivr_call_answer(ivr_call *call){
    IVR_CAPI_GUARD({ return act(call, "answer", [](ivr::core::Call &c) { return c.answer(); }); })}

IVR_API int ivr_call_reject(ivr_call *call, int sip_status, const char *reason){IVR_CAPI_GUARD({
  std::string text = reason ? reason : "";
  return act(call, "reject", [&](ivr::core::Call &c) { return c.reject(sip_status, text); });
})}

IVR_API int ivr_call_hangup(ivr_call *call, const char *reason){IVR_CAPI_GUARD({
  std::string text = reason ? reason : "";
  return act(call, "hangup", [&](ivr::core::Call &c) { return c.hangup(text); });
})}

IVR_API int ivr_call_play(ivr_call *call, const char *prompt){IVR_CAPI_GUARD({
  if (!prompt) return set_error(IVR_EINVAL, "play: prompt: NULL");
  std::string name = prompt;
  return act(call, "play", [&](ivr::core::Call &c) { return c.play(name); });
})}

IVR_API int ivr_say_options_init(ivr_say_options *opts, unsigned int version) {
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (version != IVR_SAY_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "version: unknown say options version " + std::to_string(version));
  ivr_say_options defaults = IVR_SAY_OPTIONS_INIT;
  *opts = defaults;
  return IVR_OK;
}

IVR_API int ivr_call_say(ivr_call *call, const char *text,
                         const ivr_say_options *opts){IVR_CAPI_GUARD({
  if (!text) return set_error(IVR_EINVAL, "say: text: NULL");
  // Measure at most one byte past the limit: never copy a huge text only to refuse it.
  const size_t length = strnlen(text, IVR_SAY_MAX_TEXT + 1);
  if (length > IVR_SAY_MAX_TEXT)
    return set_error(IVR_EINVAL,
                     "say: text: longer than " + std::to_string(IVR_SAY_MAX_TEXT) + " bytes");
  ivr::core::SayOptions options;
  if (opts) {
    if (opts->version != IVR_SAY_OPTIONS_VERSION)
      return set_error(IVR_EVERSION,
                       "say: opts.version: unknown version " + std::to_string(opts->version));
    if (opts->voice) options.voice = opts->voice;
    options.rate_wpm = opts->rate_wpm;
  }
  std::string words(text, length);
  return act(call, "say", [&](ivr::core::Call &c) { return c.say(words, options); });
})}

IVR_API int ivr_call_stop_playback(ivr_call *call){IVR_CAPI_GUARD({
  return act(call, "stop_playback", [](ivr::core::Call &c) { return c.stop_playback(); });
})}

IVR_API int ivr_collect_options_init(ivr_collect_options *opts, unsigned int version) {
  if (!opts) return set_error(IVR_EINVAL, "opts: NULL");
  if (version != IVR_COLLECT_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "version: unknown collect options version " + std::to_string(version));
  ivr_collect_options defaults = IVR_COLLECT_OPTIONS_INIT;
  *opts = defaults;
  return IVR_OK;
}

IVR_API int ivr_call_collect(ivr_call *call, const ivr_collect_options *opts){IVR_CAPI_GUARD({
  if (!opts) return set_error(IVR_EINVAL, "collect: opts: NULL");
  if (opts->version != IVR_COLLECT_OPTIONS_VERSION)
    return set_error(IVR_EVERSION,
                     "collect: opts.version: unknown version " + std::to_string(opts->version));
  ivr::core::CollectOptions options;
  options.max_digits = opts->max_digits;
  options.terminators = opts->terminators ? opts->terminators : "";
  options.first_digit_timeout_ms = opts->first_digit_timeout_ms;
  options.inter_digit_timeout_ms = opts->inter_digit_timeout_ms;
  options.barge_in = opts->barge_in != 0;
  return act(call, "collect", [&](ivr::core::Call &c) { return c.collect(options); });
})}

IVR_API int ivr_call_set_inband_dtmf(ivr_call *call, int enabled){IVR_CAPI_GUARD({
  return act(call, "set_inband_dtmf",
             [&](ivr::core::Call &c) { return c.set_inband_dtmf(enabled != 0); });
})}

IVR_API const char *ivr_call_id(const ivr_call *call) {
  return fact(call, &ivr::core::CallFacts::call_id);
}
IVR_API const char *ivr_call_from(const ivr_call *call) {
  return fact(call, &ivr::core::CallFacts::from);
}
IVR_API const char *ivr_call_to(const ivr_call *call) {
  return fact(call, &ivr::core::CallFacts::to);
}
IVR_API const char *ivr_call_from_user(const ivr_call *call) {
  return fact(call, &ivr::core::CallFacts::from_user);
}
IVR_API const char *ivr_call_to_user(const ivr_call *call) {
  return fact(call, &ivr::core::CallFacts::to_user);
}

IVR_API int ivr_call_header(const char **out, const ivr_call *call, const char *name) {
  if (!out) return set_error(IVR_EINVAL, "header: out: NULL");
  *out = nullptr;
  if (!valid(call)) return set_error(IVR_EINVAL, "header: call: not a valid call handle");
  if (!name || !*name) return set_error(IVR_EINVAL, "header: name: empty");
  const std::string *value = call->call->facts().header(name);
  if (!value) return set_error(IVR_ENOTFOUND, std::string("header: no ") + name + " header");
  *out = value->c_str();
  return IVR_OK;
}

IVR_API int ivr_call_remote_media(char *buf, size_t buflen, unsigned short *port,
                                  const ivr_call *call){IVR_CAPI_GUARD({
  if (!buf || !port) return set_error(IVR_EINVAL, "remote_media: buf or port: NULL");
  if (!valid(call)) return set_error(IVR_EINVAL, "remote_media: call: not a valid call handle");
  auto facts = call->call->media_facts();
  if (facts.address.empty())
    return set_error(IVR_ENOTFOUND, "remote_media: no media negotiated yet");
  if (facts.address.size() + 1 > buflen)
    return set_error(IVR_EINVAL, "remote_media: buflen: too small for the address");
  std::memcpy(buf, facts.address.c_str(), facts.address.size() + 1);
  *port = facts.port;
  return IVR_OK;
})}

IVR_API int ivr_call_codec(const char **out, const ivr_call *call) {
  if (!out) return set_error(IVR_EINVAL, "codec: out: NULL");
  *out = nullptr;
  if (!valid(call)) return set_error(IVR_EINVAL, "codec: call: not a valid call handle");
  auto facts = call->call->media_facts();
  if (!facts.codec) return set_error(IVR_ENOTFOUND, "codec: no media negotiated yet");
  *out = ivr::media::codec_name(*facts.codec);
  return IVR_OK;
}

IVR_API int ivr_call_set_user_data(ivr_call *call, void *user_data) {
  if (!valid(call)) return set_error(IVR_EINVAL, "call: not a valid call handle");
  call->call->user_data.store(user_data);
  return IVR_OK;
}

IVR_API void *ivr_call_user_data(const ivr_call *call) {
  return valid(call) ? call->call->user_data.load() : nullptr;
}

}  // extern "C"
