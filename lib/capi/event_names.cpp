// Static names of the public enums, for logs and bindings.
#include "capi/handles.h"

extern "C" {

IVR_API const char *ivr_event_type_name(ivr_event_type type) {
  switch (type) {
    case IVR_EVENT_CALL_STARTED:
      return "call.started";
    case IVR_EVENT_CALL_ANSWERED:
      return "call.answered";
    case IVR_EVENT_DTMF:
      return "dtmf";
    case IVR_EVENT_PROMPT_FINISHED:
      return "prompt.finished";
    case IVR_EVENT_COLLECT_DONE:
      return "collect.done";
    case IVR_EVENT_CALL_ENDED:
      return "call.ended";
    case IVR_EVENT_MEDIA_UPDATED:
      return "media.updated";
    case IVR_EVENT_FLOW_STEP:
      return "flow.step";
    case IVR_EVENT_ROUTE_DECIDED:
      return "route.decided";
    case IVR_EVENT_ROUTE_ATTEMPT:
      return "route.attempt";
    case IVR_EVENT_CALL_QUEUED:
      return "call.queued";
    case IVR_EVENT_CALL_DELIVERED:
      return "call.delivered";
  }
  return "unknown";
}

IVR_API const char *ivr_dtmf_source_name(ivr_dtmf_source source) {
  switch (source) {
    case IVR_DTMF_RFC4733:
      return "rfc4733";
    case IVR_DTMF_INFO:
      return "info";
    case IVR_DTMF_INBAND:
      return "inband";
  }
  return "unknown";
}

IVR_API const char *ivr_end_reason_name(ivr_end_reason reason) {
  switch (reason) {
    case IVR_END_REMOTE_HANGUP:
      return "remote_hangup";
    case IVR_END_REMOTE_CANCEL:
      return "remote_cancel";
    case IVR_END_LOCAL_HANGUP:
      return "local_hangup";
    case IVR_END_REJECTED:
      return "rejected";
    case IVR_END_NO_MEDIA:
      return "no_media";
    case IVR_END_ENGINE_STOP:
      return "engine_stop";
    case IVR_END_ERROR:
      return "error";
  }
  return "unknown";
}

IVR_API const char *ivr_collect_end_name(ivr_collect_end end) {
  switch (end) {
    case IVR_COLLECT_MAX_DIGITS:
      return "max_digits";
    case IVR_COLLECT_TERMINATOR:
      return "terminator";
    case IVR_COLLECT_FIRST_TIMEOUT:
      return "first_timeout";
    case IVR_COLLECT_INTER_TIMEOUT:
      return "inter_timeout";
    case IVR_COLLECT_CANCELLED:
      return "cancelled";
  }
  return "unknown";
}

IVR_API const char *ivr_prompt_end_name(ivr_prompt_end end) {
  switch (end) {
    case IVR_PROMPT_COMPLETED:
      return "completed";
    case IVR_PROMPT_STOPPED:
      return "stopped";
    case IVR_PROMPT_BARGED_IN:
      return "barged_in";
    case IVR_PROMPT_FAILED:
      return "failed";
  }
  return "unknown";
}

}  // extern "C"
