/*
 * libivr: an embeddable IVR and call-routing engine. The one header to include.
 * See docs/c-api.md for the conventions and a walk-through.
 */
#ifndef IVR_IVR_H
#define IVR_IVR_H

#include "ivr/call.h"
#include "ivr/common.h"
#include "ivr/db.h"
#include "ivr/engine.h"
#include "ivr/event.h"
#include "ivr/flow.h"
#include "ivr/http.h"
#include "ivr/routing.h"
#include "ivr/webhook.h"

#endif /* IVR_IVR_H */
