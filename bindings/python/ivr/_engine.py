"""ivr.Engine: the Pythonic surface over the compiled engine handle (_ivr.Engine)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from . import _ivr, _options
from ._errors import DbError, Problem, StateError
from ._routing import (
    AVAILABILITY_FIELDS,
    Availability,
    AvailabilityConnectors,
    QueueStats,
    TargetState,
    availability_of,
    check_interval,
)
from ._runtime import Runtime

logger = logging.getLogger("ivr")

Call = _ivr.Call
Event = _ivr.Event
VerbRequest = _ivr.VerbRequest
DbQuery = _ivr.DbQuery

#: Every event type, as ``Event.type`` spells it.
EVENT_TYPES: Tuple[str, ...] = (
    "call.started",
    "call.answered",
    "dtmf",
    "prompt.finished",
    "collect.done",
    "media.updated",
    "flow.step",
    "route.decided",
    "route.attempt",
    "call.queued",
    "call.delivered",
    "call.ended",
)
# Webhooks call flow steps "flow.node"; both names work in Engine.on().
_EVENT_ALIASES = {"flow.node": "flow.step"}

F = TypeVar("F", bound=Callable[..., Any])
Document = Union[str, bytes, Mapping[str, Any], "os.PathLike[str]"]
VerbResult = Union[None, str, Mapping[str, Any], Tuple[Optional[str], Mapping[str, Any]]]


# ---------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedFlow:
    """A flow version just loaded (Engine.load_flow)."""

    flow_id: str
    version: str


@dataclass(frozen=True)
class FlowInfo:
    """One loaded flow version (Engine.flows)."""

    flow_id: str
    version: str
    active: bool
    nodes: int


@dataclass(frozen=True)
class FlowReport:
    """The outcome of Engine.validate_flow: ``problems`` is empty when the document is valid."""

    problems: List[Problem]
    text: str
    flow_id: str
    version: str

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class WebhookStats:
    """Webhook delivery counters since start (see docs/c-api.md, "Webhooks")."""

    published: int
    publish_rejected: int
    delivered: int
    failed_attempts: int
    dead_lettered: int
    requeued: int
    spool_errors: int
    in_flight: int
    queued: int
    dead: int
    healthy: bool


@dataclass(frozen=True)
class DeadLetter:
    """An event a webhook gave up on."""

    id: str
    subscription: str
    event_type: str
    attempts: int
    last_error: str
    created_ms: int


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


def _event_type(where: str, event_type: Any) -> str:
    if not isinstance(event_type, str):
        raise TypeError(f"{where}: event_type: expected str, got {type(event_type).__name__}")
    event_type = _EVENT_ALIASES.get(event_type, event_type)
    if event_type != "*" and event_type not in EVENT_TYPES:
        raise ValueError(
            f"{where}: event_type: {event_type!r} is not one of {', '.join(EVENT_TYPES)} or '*'"
        )
    return event_type


class _EventHandlers:
    """The handlers of one engine, by event type. Copy-on-write tuples: the engine thread
    reads them without a lock. Holds no reference to the engine (no cycle through C++)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._by_type: Dict[str, Tuple[Callable[[Event], Any], ...]] = {}

    def add(self, event_type: str, handler: Callable[[Event], Any]) -> None:
        with self._lock:
            self._by_type[event_type] = self._by_type.get(event_type, ()) + (handler,)

    def remove(self, event_type: str, handler: Callable[[Event], Any]) -> bool:
        with self._lock:
            handlers = list(self._by_type.get(event_type, ()))
            if handler not in handlers:
                return False
            handlers.remove(handler)
            self._by_type[event_type] = tuple(handlers)
            return True

    def empty(self) -> bool:
        return not any(self._by_type.values())

    def dispatch(self, event: Event) -> None:
        """On the engine thread, with the GIL."""
        by_type = self._by_type
        for handler in by_type.get(event.type, ()) + by_type.get("*", ()):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    future = self._runtime.run_coroutine(_awaited(result))
                    future.add_done_callback(_log_handler_failure(handler, event.type))
            except Exception:
                logger.exception("event handler %r for %s raised", handler, event.type)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _log_handler_failure(handler: Any, event_type: str) -> Callable[[Any], None]:
    def done(future: Any) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            logger.error(
                "event handler %r for %s raised", handler, event_type, exc_info=error
            )

    return done


# ---------------------------------------------------------------------------------------
# Custom verbs
# ---------------------------------------------------------------------------------------


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    )


def _message(error: BaseException) -> str:
    text = str(error)
    return text if text else type(error).__name__


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _verb_result(result: Any) -> Tuple[Optional[str], Mapping[str, Any]]:
    """None -> next; "exit" -> that exit; {values} -> next with values; (exit, {values})."""
    if result is None:
        return None, {}
    if isinstance(result, str):
        return result, {}
    if isinstance(result, Mapping):
        return None, result
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and (result[0] is None or isinstance(result[0], str))
        and isinstance(result[1], Mapping)
    ):
        return result[0], result[1]
    raise TypeError(
        f"returned {type(result).__name__}: expected None, an exit name, a dict of step values "
        "or (exit, dict)"
    )


def _finish_verb(name: str, request: VerbRequest, result: Any) -> None:
    if request.completed:
        return  # the handler completed it itself
    try:
        exit_name, values = _verb_result(result)
        for key, value in values.items():
            request.set(str(key), _text(value))
    except Exception as error:
        _fail_verb(name, request, error)
        return
    try:
        request.complete(exit_name)
    except StateError:
        pass  # the node timed out or the call ended meanwhile: the answer is dropped


def _fail_verb(name: str, request: VerbRequest, error: BaseException) -> None:
    if not isinstance(error, asyncio.CancelledError):
        logger.warning(
            "custom verb %s (node %s) raised %s", name, request.node, type(error).__name__,
            exc_info=error,
        )
    try:
        if not request.completed:
            request.fail("cancelled" if isinstance(error, asyncio.CancelledError) else _message(error))
    except StateError:
        pass


def _run_verb(runtime: Runtime, name: str, fn: Callable[..., Any], request: VerbRequest) -> None:
    """On a worker thread."""
    try:
        result = fn(request)
        if inspect.isawaitable(result):
            runtime.run_coroutine(_await_verb(name, result, request))
            return
    except Exception as error:
        _fail_verb(name, request, error)
        return
    _finish_verb(name, request, result)


async def _await_verb(name: str, awaitable: Awaitable[Any], request: VerbRequest) -> None:
    """On the event loop."""
    try:
        result = await awaitable
    except BaseException as error:
        _fail_verb(name, request, error)
        if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            raise
        return
    _finish_verb(name, request, result)


def _verb_dispatcher(runtime: Runtime, name: str, fn: Callable[..., Any]) -> Callable[[VerbRequest], None]:
    is_async = _is_async(fn)

    def dispatch(request: VerbRequest) -> None:
        # On the engine thread, with the GIL: hand the request on, never run it here.
        if is_async:
            runtime.run_coroutine(_await_verb(name, fn(request), request))
        else:
            runtime.submit(_run_verb, runtime, name, fn, request)

    return dispatch


# ---------------------------------------------------------------------------------------
# Host db connectors
# ---------------------------------------------------------------------------------------


def _row_mapping(row: Any) -> Optional[Mapping[str, Any]]:
    if isinstance(row, Mapping):
        return row
    keys = getattr(row, "keys", None)  # sqlite3.Row and similar
    if callable(keys) and not isinstance(row, (str, bytes)):
        return {k: row[k] for k in keys()}
    return None


def _table(result: Any) -> Tuple[List[str], List[List[Any]]]:
    """A connector's result as (columns, rows)."""
    if result is None:
        return [], []
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[0], (list, tuple))
        and all(isinstance(c, str) for c in result[0])
        and not isinstance(result[1], (str, bytes))
    ):
        return list(result[0]), [list(r) for r in result[1]]
    single = _row_mapping(result)
    rows = [single] if single is not None else result
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise TypeError(
            f"returned {type(result).__name__}: expected a list of dicts, (columns, rows) or None"
        )
    mappings = []
    for row in rows:
        m = _row_mapping(row)
        if m is None:
            raise TypeError(
                f"a row is a {type(row).__name__}: return a list of dicts, or (columns, rows) "
                "to give the column names"
            )
        mappings.append(m)
    columns: List[str] = []
    seen = set()
    for m in mappings:
        for key in m:
            if key not in seen:
                seen.add(key)
                columns.append(str(key))
    return columns, [[m.get(c) for c in columns] for m in mappings]


class _DbConnector:
    """Runs a host connector's function for each query; no reference to the engine."""

    def __init__(self, runtime: Runtime, name: str, fn: Callable[..., Any]) -> None:
        self._runtime = runtime
        self._name = name
        self._fn = fn
        self._async = _is_async(fn)
        self._lock = threading.Lock()
        self._running: Dict[int, Any] = {}

    def dispatch(self, query: DbQuery) -> None:
        """On the engine thread, with the GIL."""
        if self._async:
            future = self._runtime.run_coroutine(self._await(self._fn(query), query))
        else:
            future = self._runtime.submit(self._run, query)
        query_id = query.id
        with self._lock:
            self._running[query_id] = future
        future.add_done_callback(lambda _f: self._forget(query_id))

    def cancel(self, query_id: int) -> None:
        """On the engine thread: the step stopped waiting (timeout, call ended)."""
        with self._lock:
            future = self._running.get(query_id)
        if future is not None:
            future.cancel()

    def _forget(self, query_id: int) -> None:
        with self._lock:
            self._running.pop(query_id, None)

    def _run(self, query: DbQuery) -> None:
        try:
            result = self._fn(query)
            if inspect.isawaitable(result):
                self._runtime.run_coroutine(self._await(result, query))
                return
        except Exception as error:
            self._fail(query, error)
            return
        self._answer(query, result)

    async def _await(self, awaitable: Awaitable[Any], query: DbQuery) -> None:
        try:
            result = await awaitable
        except BaseException as error:
            self._fail(query, error)
            if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            return
        self._answer(query, result)

    def _answer(self, query: DbQuery, result: Any) -> None:
        if query.completed:
            return
        try:
            columns, rows = _table(result)
            query.answer(columns, rows)
        except StateError:
            pass  # the engine stopped waiting meanwhile
        except Exception as error:
            self._fail(query, error)

    def _fail(self, query: DbQuery, error: BaseException) -> None:
        if isinstance(error, DbError):
            status, message = error.status, error.message
        elif isinstance(error, asyncio.CancelledError):
            status, message = "timeout", "cancelled"
        else:
            status, message = "query", _message(error)
            logger.warning(
                "db connector %s raised %s", self._name, type(error).__name__, exc_info=error
            )
        try:
            if not query.completed:
                query.fail(status, message)
        except StateError:
            pass


# ---------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------

_LOG_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def _log_to_logging(level: str, subsystem: str, message: str) -> None:
    logging.getLogger("ivr." + subsystem).log(_LOG_LEVELS.get(level, logging.INFO), "%s", message)


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------


def _release(core: Any, runtime: Runtime, availability: AvailabilityConnectors) -> None:
    """Frees what an Engine owned: on close(), when it is collected, or at exit."""
    in_callback = _ivr._in_callback()
    # Inside a callback (a collection on the engine thread) nothing may be waited for.
    availability.close(wait=not in_callback)
    try:
        core.close(True)
    finally:
        runtime.close(wait=not in_callback)


def _document_text(where: str, document: Any) -> str:
    if isinstance(document, Mapping):
        return json.dumps(document, ensure_ascii=False)
    if isinstance(document, str):
        return document
    if isinstance(document, (bytes, bytearray)):
        return bytes(document).decode("utf-8")
    if isinstance(document, os.PathLike):
        with open(document, encoding="utf-8") as f:
            return f.read()
    raise TypeError(
        f"{where}: document: expected a dict, a JSON str, bytes or a path, got "
        f"{type(document).__name__}"
    )


class Engine:
    """An IVR engine: answers SIP calls on one address and runs flows.

    Options are keyword arguments (defaults are the C library's)::

        sip_address="127.0.0.1", sip_port=5060 (0: any free port), sip_transport="udp"
        ("tcp", "udp_tcp"), rtp_address=None, rtp_port_min=20000, rtp_port_max=30000,
        media_threads=1, prompt_dir=".", log=None (a callable(level, subsystem, message) run
        on engine threads, or True for the logging module's "ivr.<subsystem>" loggers),
        log_level="info", user_agent=None, webhook_spool_dir=None (webhooks off),
        webhook_spool_max_bytes=0, workers=4 (threads for plain-function verbs and
        connectors), loop=None (an asyncio loop for coroutines; default: one of the
        engine's own, in a daemon thread).

    A wrong type raises TypeError, a value out of range ValueError, both naming the
    argument; what only the library checks raises InvalidArgumentError (a ValueError).

    Used as a context manager, ``__enter__`` returns the engine as it is (start it with
    start()) and ``__exit__`` closes it: every call ends, then the engine is freed.
    """

    def __init__(self, **options: Any) -> None:
        o = _options.engine_options(options)
        self._runtime = Runtime(o.pop("workers"), o.pop("loop"))
        self._events = _EventHandlers(self._runtime)
        log = o.pop("log")
        self._core = _ivr.Engine(
            log=_log_to_logging if log is True else log, events=self._events.dispatch, **o
        )
        self._address = o["sip_address"]
        self._availability = AvailabilityConnectors(self._core, self._runtime)
        # Frees the engine when this object is collected or at interpreter exit, whichever
        # comes first; close() runs it at once. It refers to the core, never to self.
        self._finalizer = weakref.finalize(
            self, _release, self._core, self._runtime, self._availability
        )

    # ---- life cycle ----

    def start(self) -> None:
        """Binds SIP and starts the engine's threads; returns once SIP listens. Raises Error
        (code ESIP when the port is taken). Releases the GIL while it waits. Availability
        connectors run from now on."""
        self._core.start()
        self._availability.start()

    def stop(self, reason: str = "") -> None:
        """Ends every call (each gets call.ended, reason engine_stop) and stops the threads
        and the availability connectors. Blocks (GIL released); idempotent. Not from an
        event handler."""
        self._core.stop(_options.check_str("stop()", "reason", reason))
        self._availability.close()

    def close(self, reason: str = "") -> None:
        """Stops the engine and frees it, with every handler registered on it; idempotent.
        Not from an event handler (StateError)."""
        reason = _options.check_str("close()", "reason", reason)
        if not _ivr._in_callback():  # (where close() fails: the connectors go on)
            self._availability.close()  # first: no push may meet an engine half closed
        self._core.close(False, reason)
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive or self._core.closed

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def sip_port(self) -> int:
        """The SIP port bound (0 before start)."""
        return self._core.sip_port

    @property
    def call_count(self) -> int:
        """Calls alive now."""
        return self._core.call_count

    def __repr__(self) -> str:
        if self.closed:
            return "<ivr.Engine closed>"
        port = self._core.sip_port
        return f"<ivr.Engine {self._address}:{port} {'started' if port else 'not started'}>"

    # ---- events ----

    def on(
        self, event_type: str, handler: Optional[Callable[[Event], Any]] = None
    ) -> Any:
        """Registers handler for events of a type ("call.ended", ...; "*" for all), as a
        decorator (``@engine.on("call.ended")``) or directly. Plain handlers run on the engine
        thread, one event at a time: keep them short, never block. ``async def`` handlers run
        on the engine's event loop. Exceptions are logged ("ivr" logger), never raised."""
        event_type = _event_type("on()", event_type)

        def register(fn: F) -> F:
            _options.check_callable("on()", "handler", fn)
            self._events.add(event_type, fn)
            self._core.set_events_wanted(True)
            return fn

        return register if handler is None else register(handler)

    def off(self, event_type: str, handler: Callable[[Event], Any]) -> bool:
        """Removes a handler registered with on(); False if it was not registered."""
        removed = self._events.remove(_event_type("off()", event_type), handler)
        if self._events.empty():
            self._core.set_events_wanted(False)
        return removed

    # ---- flows ----

    def load_flow(self, document: Document, activate: bool = True) -> LoadedFlow:
        """Validates and loads a flow document (a dict, JSON text, bytes or a path to a file)
        as a new version of its flow, active when ``activate`` (and always for a flow's first
        version). Raises ValidationError carrying every problem; StateError for a version
        loaded before."""
        text = _document_text("load_flow()", document)
        flow_id, version = self._core.flow_load(text, _options.check_bool("load_flow()", "activate", activate))
        return LoadedFlow(flow_id, version)

    def validate_flow(self, document: Document) -> FlowReport:
        """Checks a document against this engine (its prompts, its verbs) without loading."""
        text = _document_text("validate_flow()", document)
        problems, report_text, flow_id, version = self._core.flow_validate(text)
        return FlowReport([Problem(*p) for p in problems], report_text, flow_id, version)

    def activate_flow(self, flow_id: str, version: str) -> None:
        """New calls use this version (rollback: activate an older one)."""
        where = "activate_flow()"
        self._core.flow_activate(
            _options.check_str(where, "flow_id", flow_id, empty=False),
            _options.check_str(where, "version", version, empty=False),
        )

    def map_flow(self, called: str, flow_id: Optional[str]) -> None:
        """Calls to this number (the To URI's user; "*" for every other) run this flow;
        None removes the entry."""
        called = _options.check_str("map_flow()", "called", called, empty=False)
        if flow_id is not None:
            _options.check_str("map_flow()", "flow_id", flow_id, empty=False)
        self._core.flow_map(called, flow_id)

    def unmap_flow(self, called: str) -> None:
        """Removes an entry point."""
        self.map_flow(called, None)

    def flows(self) -> List[FlowInfo]:
        """Every loaded flow version, by flow id then load order."""
        return [FlowInfo(*f) for f in self._core.flow_list()]

    # ---- custom verbs ----

    def verb(self, name: str) -> Callable[[F], F]:
        """Decorator: registers a custom verb (see register_verb)."""

        def register(fn: F) -> F:
            self.register_verb(name, fn)
            return fn

        return register

    def register_verb(self, name: str, handler: Callable[[VerbRequest], Any]) -> None:
        """Registers (or replaces) the custom verb ``name`` ("crm.lookup").

        ``handler(request)`` is a plain function, run on one of the engine's worker threads
        (so it may block), or an ``async def``, run on the event loop. Its result completes
        the step: None takes ``next``, a str takes that exit, a dict sets step values
        (``steps.<node>.<key>``, as text) and takes ``next``, ``(exit, dict)`` both. Raising
        takes ``on_error`` with the exception's message. A handler that completed the request
        itself (request.complete / fail) returns anything."""
        where = "register_verb()"
        name = _options.check_name(where, name)
        _options.check_callable(where, "handler", handler)
        self._core.register_verb(name, _verb_dispatcher(self._runtime, name, handler))

    # ---- databases ----

    def db_connector(self, name: str) -> Callable[[F], F]:
        """Decorator: registers a host db connector (see register_db_connector)."""

        def register(fn: F) -> F:
            self.register_db_connector(name, fn)
            return fn

        return register

    def register_db_connector(self, name: str, handler: Callable[[DbQuery], Any]) -> None:
        """Registers (or replaces) a db connector answered by Python: flows' ``db`` steps with
        ``"connector": name`` call ``handler(query)`` (query.statement, query.params, ...).

        Plain functions run on a worker thread, ``async def`` on the event loop. The result is
        the answer: a list of dicts (or sqlite3.Row objects), one dict, ``(columns, rows)``,
        or None / [] for no row. Raise DbError(status, message) to fail with a reason; any
        other exception fails with reason "query". When the step stops waiting (timeout, the
        call ended) a coroutine is cancelled and work not started yet is dropped."""
        where = "register_db_connector()"
        name = _options.check_name(where, name)
        _options.check_callable(where, "handler", handler)
        connector = _DbConnector(self._runtime, name, handler)
        self._core.register_db_connector(name, connector.dispatch, connector.cancel)

    def add_db(
        self,
        name: str,
        url: str,
        *,
        password_secret: Optional[str] = None,
        pool_size: int = _options.DEFAULTS["db_pool_size"],
        connect_timeout_ms: int = _options.DEFAULTS["db_connect_timeout_ms"],
        max_waiting: int = _options.DEFAULTS["db_max_waiting"],
        read_only: bool = False,
    ) -> None:
        """Adds (or replaces) a built-in connector: ``sqlite:///abs.db``, ``sqlite::memory:``,
        ``postgresql://...``, ``redis://...`` (see docs/db.md)."""
        where = "add_db()"
        self._core.add_db(
            _options.check_name(where, name),
            _options.check_str(where, "url", url, empty=False),
            _options.check_optional_str(where, "password_secret", password_secret),
            _options.check_int(where, "pool_size", pool_size, 0, _options.UINT_MAX),
            _options.check_int(where, "connect_timeout_ms", connect_timeout_ms, 0, _options.UINT_MAX),
            _options.check_int(where, "max_waiting", max_waiting, 0, _options.UINT_MAX),
            _options.check_bool(where, "read_only", read_only),
        )

    def remove_db(self, name: str) -> None:
        """Removes a connector, built-in or Python's (NotFoundError when unknown)."""
        self._core.remove_db(_options.check_name("remove_db()", name))

    # ---- HTTP credentials ----

    def set_auth_profiles(self, profiles: Union[str, Mapping[str, Any]]) -> None:
        """Replaces every auth profile of http steps (a dict or JSON text; see docs/net.md).
        All or nothing."""
        if isinstance(profiles, Mapping):
            profiles = json.dumps(profiles)
        self._core.set_auth_profiles(_options.check_str("set_auth_profiles()", "profiles", profiles))

    def set_secret(self, name: str, value: Optional[str]) -> None:
        """Sets a secret named by auth profiles and db connectors; None or "" removes it.
        The value is copied and never logged."""
        where = "set_secret()"
        name = _options.check_name(where, name)
        self._core.set_secret(name, None if value is None else _options.check_str(where, "value", value))

    def remove_secret(self, name: str) -> None:
        """Removes a secret (the environment's IVR_SECRET_<NAME> applies again)."""
        self.set_secret(name, None)

    # ---- webhooks ----

    def set_webhook(
        self,
        name: str,
        url: str,
        *,
        secrets: Sequence[str],
        event_types: Union[str, Iterable[str]] = "*",
        timeout_ms: int = _options.DEFAULTS["webhook_timeout_ms"],
        max_attempts: int = _options.DEFAULTS["webhook_max_attempts"],
        backoff_base_ms: int = _options.DEFAULTS["webhook_backoff_base_ms"],
        backoff_max_ms: int = _options.DEFAULTS["webhook_backoff_max_ms"],
        max_concurrency: int = _options.DEFAULTS["webhook_max_concurrency"],
        ca_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        enabled: bool = True,
    ) -> None:
        """Adds or replaces a webhook (needs ``webhook_spool_dir``; set it before start)."""
        where = "set_webhook()"
        if isinstance(secrets, str) or not isinstance(secrets, Iterable):
            raise TypeError(f"{where}: secrets: expected a list of str, got {type(secrets).__name__}")
        secret_list = [_options.check_str(where, "secrets", s) for s in secrets]
        if not isinstance(event_types, str):
            if not isinstance(event_types, Iterable):
                raise TypeError(f"{where}: event_types: expected str or a list of str")
            event_types = ",".join(_options.check_str(where, "event_types", t) for t in event_types)
        u = _options.UINT_MAX
        self._core.set_webhook(
            _options.check_name(where, name),
            _options.check_str(where, "url", url, empty=False),
            event_types,
            secret_list,
            _options.check_int(where, "timeout_ms", timeout_ms, 0, u),
            _options.check_int(where, "max_attempts", max_attempts, 0, u),
            _options.check_int(where, "backoff_base_ms", backoff_base_ms, 0, u),
            _options.check_int(where, "backoff_max_ms", backoff_max_ms, 0, u),
            _options.check_int(where, "max_concurrency", max_concurrency, 0, u),
            _options.check_path(where, "ca_file", ca_file, optional=True),
            _options.check_bool(where, "enabled", enabled),
        )

    def remove_webhook(self, name: str) -> None:
        """Removes a webhook; its queued events become dead letters."""
        self._core.remove_webhook(_options.check_name("remove_webhook()", name))

    def webhook_stats(self) -> WebhookStats:
        """Delivery counters (StateError when webhooks are off or the engine not started)."""
        return WebhookStats(**self._core.webhook_stats())

    def webhook_dead_letters(self) -> List[DeadLetter]:
        """Every dead letter, oldest first."""
        return [DeadLetter(*d) for d in self._core.webhook_dead_letters()]

    def webhook_requeue(self, event_id: str) -> None:
        """Makes a dead letter pending again."""
        self._core.webhook_requeue(_options.check_str("webhook_requeue()", "event_id", event_id))

    def webhook_purge(self, event_id: str) -> None:
        """Drops a dead letter for good."""
        self._core.webhook_purge(_options.check_str("webhook_purge()", "event_id", event_id))

    # ---- routing (docs/routing.md) ----

    def set_routing(self, config: Union[str, bytes, Mapping[str, Any]]) -> None:
        """Sets the routing configuration: a dict or JSON text with "targets", "target_sets",
        "schedules", "plans" and "connectors" (docs/routing.md). Replaces the previous one;
        live target state is kept for targets of the same name. Before start() it is kept and
        applied at start. Raises InvalidArgumentError naming the field
        ("routing.targets.vici.capacity: must be an integer from 1 to 100000") or, for text
        that is not JSON, its line and column; nothing changes then."""
        where = "set_routing()"
        if isinstance(config, Mapping):
            text = json.dumps(config, ensure_ascii=False)
        elif isinstance(config, (bytes, bytearray)):
            text = bytes(config).decode("utf-8")
        elif isinstance(config, str):
            text = config
        else:
            raise TypeError(
                f"{where}: config: expected a dict or JSON text (str, bytes), got "
                f"{type(config).__name__}"
            )
        self._core.set_routing(_options.check_str(where, "config", text))

    def push_availability(
        self,
        target: str,
        sample: Union[Availability, Mapping[str, int], None] = None,
        *,
        agents_available: Optional[int] = None,
        agents_logged_in: Optional[int] = None,
        calls_waiting: Optional[int] = None,
        longest_wait_s: Optional[int] = None,
    ) -> None:
        """Pushes a fresh agent-availability sample for a target, as a polled connector
        would: an ivr.Availability, a mapping, or the figures as keywords (missing ones are
        0). A waiting call is offered the target at once when the sample leaves room.
        Raises NotFoundError (no such target), StateError (routing not configured or the
        engine not started)."""
        where = "push_availability()"
        target = _options.check_str(where, "target", target, empty=False)
        given = {
            name: value
            for name, value in zip(
                AVAILABILITY_FIELDS,
                (agents_available, agents_logged_in, calls_waiting, longest_wait_s),
            )
            if value is not None
        }
        if sample is not None and given:
            raise TypeError(f"{where}: pass a sample or the figures as keywords, not both")
        a = availability_of(where, given if sample is None else sample, allow_empty=sample is None)
        self._core.push_availability(
            target, a.agents_available, a.agents_logged_in, a.calls_waiting, a.longest_wait_s
        )

    def mark_availability_stale(self, target: str) -> None:
        """The host's own poll for a target failed: a target whose capacity rule needs agent
        data takes no call until the next sample."""
        self._core.mark_availability_stale(
            _options.check_str("mark_availability_stale()", "target", target, empty=False)
        )

    def set_target_draining(self, target: str, draining: bool = True) -> None:
        """Drains a target (no new calls; calls in progress go on), or ends the draining."""
        where = "set_target_draining()"
        self._core.set_target_draining(
            _options.check_str(where, "target", target, empty=False),
            _options.check_bool(where, "draining", draining),
        )

    def target_state(self, target: str) -> TargetState:
        """A target's live state: health, capacity, calls, counters, agent data. Waits for
        the engine thread (not from an event handler of another engine)."""
        return TargetState(
            **self._core.target_state(
                _options.check_str("target_state()", "target", target, empty=False)
            )
        )

    def queue_stats(self) -> QueueStats:
        """The call queue: calls waiting now, the oldest wait, totals."""
        return QueueStats(**self._core.queue_stats())

    def availability_connector(
        self, target: str, interval: float = 5.0
    ) -> Callable[[F], F]:
        """Decorator: registers an availability connector for a target (see
        add_availability_connector)::

            @engine.availability_connector("vicidial", interval=5.0)
            def vicidial():
                figures = my_vicidial_api.agents()      # a worker thread: may block
                return {"agents_available": figures.ready, "calls_waiting": figures.queue}
        """

        def register(fn: F) -> F:
            self.add_availability_connector(target, fn, interval=interval)
            return fn

        return register

    def add_availability_connector(
        self, target: str, fn: Callable[[], Any], *, interval: float = 5.0
    ) -> None:
        """Registers (or replaces) the function that reports a target's agent availability.

        ``fn()`` (no argument) is a plain function, run on one of the engine's worker threads
        (so it may block), or an ``async def``, run on the engine's event loop. It runs when
        the engine starts and then every ``interval`` seconds (0.05-3600) on a fixed grid;
        runs never overlap (a turn that comes while one runs is skipped). It returns a
        mapping with some of agents_available, agents_logged_in, calls_waiting,
        longest_wait_s (missing ones are 0) or an ivr.Availability, which is pushed as a
        fresh sample. An exception, or a value that is not a sample, is logged (the "ivr"
        logger, naming the figure at fault) and marks the target's data stale. The
        connectors stop when the engine stops or closes."""
        where = "add_availability_connector()"
        target = _options.check_str(where, "target", target, empty=False)
        _options.check_callable(where, "fn", fn)
        self._availability.add(target, fn, check_interval(where, interval))

    def remove_availability_connector(self, target: str) -> bool:
        """Stops and removes a target's connector (a run under way has its result dropped);
        False if there was none."""
        return self._availability.remove(
            _options.check_str("remove_availability_connector()", "target", target, empty=False)
        )

    def availability_connectors(self) -> List[str]:
        """The targets that have an availability connector, sorted."""
        return self._availability.targets()
