"""Type stubs of the compiled module ivr._ivr (pybind11 over ivr/ivr.hpp).

Call, Event, VerbRequest and DbQuery are re-exported by the ivr package; the Engine class
here is the raw handle behind ivr.Engine and not meant to be used directly.
"""

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

DEFAULTS: Dict[str, Any]

def version() -> str:
    """The libivr version ("0.1.0")."""

def _in_callback() -> bool: ...

class Call:
    """A call (a reference of its own: readable after the call ended; actions then raise
    GoneError). Every method may be called from any thread; actions release the GIL."""

    @property
    def id(self) -> str:
        """The SIP Call-ID."""
    @property
    def from_header(self) -> str:
        """The From header as received."""
    @property
    def to_header(self) -> str:
        """The To header as received."""
    @property
    def from_user(self) -> str:
        """The user part of the From URI (the caller's number), or ""."""
    @property
    def to_user(self) -> str:
        """The user part of the To URI (the number called), or ""."""
    def header(self, name: str) -> Optional[str]:
        """The first INVITE header of this name (any case), or None."""
    @property
    def codec(self) -> Optional[str]:
        """The negotiated codec ("PCMU", "PCMA"), or None before negotiation."""
    @property
    def remote_media(self) -> Optional[Tuple[str, int]]:
        """Where the call's RTP goes now, (ip, port), or None before SDP."""
    def ring(self) -> None:
        """180 Ringing."""
    def answer(self) -> None:
        """200 OK; the event call.answered follows with the ACK."""
    def reject(self, sip_status: int, reason: str = "") -> None:
        """A final 400-699 response with a Reason header ("" for none)."""
    def hangup(self, reason: str = "") -> None:
        """BYE once answered, 480 before."""
    def play(self, prompt: str) -> None:
        """Plays a prompt file (relative to prompt_dir); prompt.finished follows."""
    def say(self, text: str, *, voice: str = "en", rate_wpm: int = 160) -> None:
        """Speaks text with espeak-ng; prompt.finished follows."""
    def stop_playback(self) -> None:
        """Stops the prompt playing (prompt.finished, stopped)."""
    def collect(
        self,
        *,
        max_digits: int = 1,
        terminators: str = "#",
        first_digit_timeout_ms: int = 5000,
        inter_digit_timeout_ms: int = 3000,
        barge_in: bool = True,
    ) -> None:
        """Collects digits; collect.done follows."""
    def set_inband_dtmf(self, enabled: bool) -> None:
        """Turns inband (audio tone) DTMF detection on or off."""
    @property
    def queue_position(self) -> int:
        """The call's 1-based position in the routing queue, or 0 when it is not waiting
        (releases the GIL: it may wait for the engine thread)."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Event:
    """One engine event, copied (safe to keep). Fields that do not apply to the event's
    type are None (the flow fields are "" instead)."""

    @property
    def type(self) -> str:
        """"call.started", "call.answered", "dtmf", "prompt.finished", "collect.done",
        "media.updated", "flow.step", "route.decided", "route.attempt", "call.queued",
        "call.delivered" or "call.ended"."""
    @property
    def call(self) -> Call: ...
    @property
    def call_id(self) -> str: ...
    @property
    def digit(self) -> Optional[str]:
        """dtmf: the digit."""
    @property
    def duration_ms(self) -> Optional[int]: ...
    @property
    def dtmf_source(self) -> Optional[str]:
        """dtmf: "rfc4733", "info" or "inband"."""
    @property
    def prompt(self) -> Optional[str]: ...
    @property
    def prompt_end(self) -> Optional[str]:
        """prompt.finished: "completed", "stopped", "barged_in" or "failed"."""
    @property
    def digits(self) -> Optional[str]:
        """collect.done: the digits (terminator excluded)."""
    @property
    def collect_end(self) -> Optional[str]: ...
    @property
    def digits_source(self) -> Optional[str]: ...
    @property
    def end_reason(self) -> Optional[str]:
        """call.ended: "remote_hangup", "remote_cancel", "local_hangup", "rejected",
        "no_media", "engine_stop" or "error"."""
    @property
    def sip_code(self) -> Optional[int]:
        """call.ended: the final SIP status involved; route.attempt: the dialing system's
        refusal (0: no response); call.delivered: its answer."""
    @property
    def reason(self) -> str:
        """call.ended: why (a flow's hangup reason); prompt.finished: why it failed."""
    @property
    def on_hold(self) -> Optional[bool]: ...
    @property
    def flow_id(self) -> str: ...
    @property
    def flow_version(self) -> str: ...
    @property
    def flow_node(self) -> str: ...
    @property
    def flow_verb(self) -> str: ...
    @property
    def flow_detail(self) -> str: ...
    @property
    def flow_path(self) -> str:
        """call.ended: every node entered, joined by " > "."""
    @property
    def flow_end(self) -> str: ...
    @property
    def flow_error(self) -> str: ...
    # Routing events (route.decided, route.attempt, call.queued, call.delivered); None for
    # the other types.
    @property
    def route_plan(self) -> Optional[str]:
        """The plan the route step named."""
    @property
    def route_target(self) -> Optional[str]:
        """The target dialled ("" for route.decided)."""
    @property
    def route_uri(self) -> Optional[str]:
        """The URI dialled."""
    @property
    def route_detail(self) -> Optional[str]:
        """route.decided: the candidates in order and the targets skipped, with why;
        route.attempt: what happened ("busy (486 Busy Here)")."""
    @property
    def route_attempt(self) -> Optional[int]:
        """route.attempt, call.delivered: the 1-based number of the INVITE."""
    @property
    def queue_position(self) -> Optional[int]:
        """call.queued: the call's 1-based position in the queue."""
    @property
    def queue_priority(self) -> Optional[int]:
        """call.queued: the call's priority, 0-999, lower first."""

class VerbRequest:
    """One run of a custom verb by a call's flow. The binding completes it from the
    handler's result; every method is thread-safe."""

    @property
    def verb(self) -> str: ...
    @property
    def node(self) -> str: ...
    @property
    def call(self) -> Call: ...
    @property
    def args(self) -> Dict[str, str]:
        """The node's rendered arguments (a new dict)."""
    def arg(self, name: str, default: Optional[str] = None) -> Optional[str]: ...
    def set(self, name: str, value: str) -> None:
        """Sets a result the flow reads as steps.<node>.<name>."""
    def complete(self, exit: Optional[str] = None, error: Optional[str] = None) -> None:
        """Finishes the request: exit None/"next" or one of the node's exits; an error
        takes on_error. StateError when already completed."""
    def fail(self, error: str) -> None: ...
    @property
    def completed(self) -> bool: ...

class DbQuery:
    """One query of a db step handed to a Python connector; every method is thread-safe."""

    @property
    def id(self) -> int: ...
    @property
    def connector(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def params(self) -> List[Optional[str]]:
        """The bound parameters, rendered (None for SQL NULL)."""
    @property
    def timeout_ms(self) -> int: ...
    @property
    def max_rows(self) -> int: ...
    @property
    def completed(self) -> bool: ...
    def answer(self, columns: Sequence[str], rows: Iterable[Iterable[Any]]) -> None:
        """Answers with these columns and rows (None, bool, int, float, str, bytes; other
        values as their str())."""
    def fail(self, status: str, message: str) -> None:
        """Fails the query: status "timeout", "connect", "query" or "busy"."""

class Engine:
    """The raw engine handle behind ivr.Engine."""

    def __init__(
        self,
        *,
        sip_address: str,
        sip_port: int,
        sip_transport: int,
        rtp_address: str,
        rtp_port_min: int,
        rtp_port_max: int,
        media_threads: int,
        prompt_dir: str,
        log: Optional[Callable[[str, str, str], Any]],
        log_level: int,
        user_agent: str,
        webhook_spool_dir: str,
        webhook_spool_max_bytes: int,
        events: Optional[Callable[[Event], Any]],
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self, reason: str = "") -> None: ...
    def close(self, from_gc: bool = False, reason: str = "") -> None: ...
    @property
    def closed(self) -> bool: ...
    def set_events_wanted(self, wanted: bool) -> None: ...
    @property
    def sip_port(self) -> int: ...
    @property
    def call_count(self) -> int: ...
    def flow_validate(self, document: str) -> Tuple[List[Tuple[str, int, int, str]], str, str, str]: ...
    def flow_load(self, document: str, activate: bool) -> Tuple[str, str]: ...
    def flow_activate(self, flow_id: str, version: str) -> None: ...
    def flow_map(self, called: str, flow_id: Optional[str]) -> None: ...
    def flow_list(self) -> List[Tuple[str, str, bool, int]]: ...
    def register_verb(self, name: str, dispatch: Callable[[VerbRequest], Any]) -> None: ...
    def set_auth_profiles(self, json: str) -> None: ...
    def set_secret(self, name: str, value: Optional[str]) -> None: ...
    def add_db(
        self,
        name: str,
        url: str,
        password_secret: str,
        pool_size: int,
        connect_timeout_ms: int,
        max_waiting: int,
        read_only: bool,
    ) -> None: ...
    def register_db_connector(
        self,
        name: str,
        dispatch: Callable[[DbQuery], Any],
        cancel: Optional[Callable[[int], Any]],
    ) -> None: ...
    def remove_db(self, name: str) -> None: ...
    def set_webhook(
        self,
        name: str,
        url: str,
        event_types: str,
        secrets: List[str],
        timeout_ms: int,
        max_attempts: int,
        backoff_base_ms: int,
        backoff_max_ms: int,
        max_concurrency: int,
        ca_file: str,
        enabled: bool,
    ) -> None: ...
    def remove_webhook(self, name: str) -> None: ...
    def webhook_stats(self) -> Dict[str, Any]: ...
    def webhook_dead_letters(self) -> List[Tuple[str, str, str, int, str, int]]: ...
    def webhook_requeue(self, id: str) -> None: ...
    def webhook_purge(self, id: str) -> None: ...
    def set_routing(self, json: str) -> None: ...
    def push_availability(
        self,
        target: str,
        agents_available: int,
        agents_logged_in: int,
        calls_waiting: int,
        longest_wait_s: int,
    ) -> None: ...
    def mark_availability_stale(self, target: str) -> None: ...
    def set_target_draining(self, target: str, draining: bool) -> None: ...
    def target_state(self, target: str) -> Dict[str, Any]: ...
    def queue_stats(self) -> Dict[str, Any]: ...
