"""ivr: Python bindings of libivr, an embeddable IVR and call-routing engine.

A five-line IVR::

    import ivr

    with ivr.Engine(sip_port=5080, prompt_dir="prompts") as engine:
        @engine.verb("crm.lookup")
        def lookup(request):                  # a worker thread: blocking is fine
            return "vip" if request.arg("phone") == "5551234" else None

        @engine.on("call.ended")
        def ended(event):                     # the engine thread: keep it short
            print(event.call.from_user, event.flow_path, event.reason)

        engine.load_flow({"flow": "main", "start": "hello", "nodes": {...}})
        engine.map_flow("*", "main")
        engine.start()
        ...                                   # __exit__ ends every call and frees the engine

See docs/bindings.md ("Python") for the tour and the threading and GIL rules.
"""

from ._errors import (
    DbError,
    Error,
    ErrorCode,
    GoneError,
    InvalidArgumentError,
    NotFoundError,
    Problem,
    StateError,
    ValidationError,
)
from . import _ivr
from ._engine import (
    EVENT_TYPES,
    Call,
    DbQuery,
    DeadLetter,
    Engine,
    Event,
    FlowInfo,
    FlowReport,
    LoadedFlow,
    VerbRequest,
    WebhookStats,
)
from ._routing import Availability, QueueStats, TargetState

__version__: str = _ivr.version()

__all__ = [
    "Engine",
    "Call",
    "Event",
    "VerbRequest",
    "DbQuery",
    "LoadedFlow",
    "FlowInfo",
    "FlowReport",
    "WebhookStats",
    "DeadLetter",
    "Availability",
    "TargetState",
    "QueueStats",
    "EVENT_TYPES",
    "Error",
    "ErrorCode",
    "InvalidArgumentError",
    "NotFoundError",
    "StateError",
    "GoneError",
    "Problem",
    "ValidationError",
    "DbError",
    "__version__",
]
