"""Routing from Python: the value types of routing state, and availability connectors
written in Python (``@engine.availability_connector("vicidial", interval=5.0)``).

A connector is a plain function (run on one of the engine's worker threads, so it may
block) or a coroutine function (run on the engine's event loop) that returns a target's
agent figures. One scheduler thread per engine times every connector of that engine on a
fixed grid of ``interval`` seconds, starting when the engine starts; a run still going when
its next turn comes is not doubled: that turn is skipped. A result is pushed with
``ivr_engine_push_availability``; an exception or a value that is not a sample is logged
(the "ivr" logger) and marks the target's data stale, so routing stops trusting it at once
rather than after ``stale_after_s``.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional

from . import _options
from ._errors import ErrorCode, GoneError, StateError

logger = logging.getLogger("ivr")

#: The figures of an availability sample, as a connector's mapping names them.
AVAILABILITY_FIELDS = ("agents_available", "agents_logged_in", "calls_waiting", "longest_wait_s")

#: Bounds of a connector's interval, in seconds (those of the library's HTTP connectors).
MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class Availability:
    """Agent availability of one target: what an availability connector returns (or a
    mapping with the same keys; missing figures are 0)."""

    agents_available: int = 0
    agents_logged_in: int = 0
    calls_waiting: int = 0
    longest_wait_s: int = 0

    def __post_init__(self) -> None:
        for name in AVAILABILITY_FIELDS:
            _options.check_int("Availability()", name, getattr(self, name), 0, _options.UINT_MAX)


@dataclass(frozen=True)
class TargetState:
    """A snapshot of one routing target (Engine.target_state)."""

    health: str  # "up", "down" (probe or transport failure) or "draining"
    capacity: int
    active: int  # delivered calls in progress
    reserved: int  # slots held for calls being dialled or offered
    offered: int
    answered: int
    completed: int
    failed: int  # delivery attempts that failed, every reason
    availability_fresh: bool  # fresh agent data is present
    idle_agents: int  # as routing counts them (0 when stale)


@dataclass(frozen=True)
class QueueStats:
    """The call queue: calls waiting because no target could take them (Engine.queue_stats)."""

    waiting: int
    offered: int  # of those, calls being dialled on an offered slot
    oldest_wait_ms: int
    service_interval_ms: Optional[int]  # the wait estimate's interval; None until a call left
    enqueued: int
    served: int
    abandoned: int
    expired: int


def availability_of(where: str, value: Any, *, allow_empty: bool = False) -> Availability:
    """A sample (an Availability, or a mapping of its figures) as an Availability. Raises
    TypeError or ValueError naming the figure at fault."""
    if isinstance(value, Availability):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where}: got {type(value).__name__} ({value!r}): expected a mapping of "
            f"{', '.join(AVAILABILITY_FIELDS)} or an ivr.Availability"
        )
    if not value and not allow_empty:
        raise ValueError(
            f"{where}: got an empty mapping: expected at least one of "
            f"{', '.join(AVAILABILITY_FIELDS)}"
        )
    figures: Dict[str, int] = {}
    for key, figure in value.items():
        if key not in AVAILABILITY_FIELDS:
            hint = difflib.get_close_matches(str(key), AVAILABILITY_FIELDS, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"{where}: {key!r}: not a figure (known: {', '.join(AVAILABILITY_FIELDS)}){more}"
            )
        figures[key] = _options.check_int(where, key, figure, 0, _options.UINT_MAX)
    return Availability(**figures)


def check_interval(where: str, interval: Any) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(
            f"{where}: interval: expected seconds (int or float), got "
            f"{type(interval).__name__} ({interval!r})"
        )
    if not math.isfinite(interval) or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise ValueError(
            f"{where}: interval: must be {MIN_INTERVAL_S}..{MAX_INTERVAL_S:g} seconds, got {interval}"
        )
    return float(interval)


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    )


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class _Connector:
    """One connector: runs its function, pushes the result or marks the data stale. Runs of
    one connector never overlap (the scheduler sees to it), so its own fields need no lock;
    ``removed`` and the scheduling fields are the scheduler's (under its lock)."""

    def __init__(
        self, core: Any, runtime: Any, target: str, fn: Callable[[], Any], interval: float
    ) -> None:
        self._core = core
        self._runtime = runtime
        self.target = target
        self.fn = fn
        self.interval = interval
        self.is_async = _is_async(fn)
        self.where = f"availability connector {target!r}"
        # The scheduler's, under its lock.
        self.next_due = 0.0
        self.running = False
        self.removed = False  # replaced, removed, or the engine closed: results are dropped
        self.future: Any = None
        self.skipped = 0
        # The runs' (one at a time).
        self._last_problem: Optional[str] = None

    # ---- one run ----

    def launch(self, finished: Callable[["_Connector"], None]) -> None:
        """From the scheduler thread (its lock released): starts one run."""
        try:
            if self.is_async:
                future = self._runtime.run_coroutine(self._run_async())
            else:
                future = self._runtime.submit(self._run_sync)
        except Exception:  # the engine's runtime closed meanwhile
            finished(self)
            return
        self.future = future
        future.add_done_callback(lambda _f: finished(self))

    def _run_sync(self) -> None:
        """On a worker thread."""
        try:
            result = self.fn()
            if inspect.isawaitable(result):  # a plain function that returned a coroutine
                result = self._runtime.run_coroutine(_awaited(result)).result()
        except Exception as error:
            self._failed(error)
            return
        self._deliver(result)

    async def _run_async(self) -> None:
        """On the event loop."""
        try:
            result = await self.fn()
        except asyncio.CancelledError:
            raise  # the engine closed (or the connector went): nothing to report
        except Exception as error:
            self._failed(error)
            return
        self._deliver(result)

    def _deliver(self, result: Any) -> None:
        if self.removed:
            return
        try:
            sample = availability_of(self.where, result)
        except (TypeError, ValueError) as error:
            self._problem(f"{error}", None)
            return
        try:
            self._core.push_availability(
                self.target,
                sample.agents_available,
                sample.agents_logged_in,
                sample.calls_waiting,
                sample.longest_wait_s,
            )
        except Exception as error:
            self._push_failed(error)
            return
        if self._last_problem is not None:
            logger.info("%s: samples again", self.where)
            self._last_problem = None

    def _failed(self, error: BaseException) -> None:
        if self.removed:
            return
        text = str(error)
        self._problem(
            f"{self.where} raised {type(error).__name__}" + (f": {text}" if text else ""), error
        )

    def _problem(self, message: str, error: Optional[BaseException]) -> None:
        """Logs a failed run (the first of a kind as a warning, repeats at debug level, so a
        dialing system that is down does not flood the log) and marks the data stale."""
        if message != self._last_problem:
            logger.warning(
                "%s; availability of target %s marked stale", message, self.target, exc_info=error
            )
        else:
            logger.debug("%s (again)", message)
        self._last_problem = message
        try:
            self._core.mark_availability_stale(self.target)
        except Exception as mark_error:
            if not self.removed:
                logger.debug("%s: mark_availability_stale failed: %s", self.where, mark_error)

    def _push_failed(self, error: BaseException) -> None:
        if self.removed:
            return
        if isinstance(error, GoneError):
            logger.debug("%s: the engine stopped: %s", self.where, error)
            return
        message = f"{self.where}: push_availability failed: {error}"
        if message != self._last_problem:
            logger.warning("%s", message)
        else:
            logger.debug("%s (again)", message)
        self._last_problem = message


class AvailabilityConnectors:
    """The availability connectors of one engine and the thread that times them. Holds the
    compiled engine handle and the runtime, never the ivr.Engine object (which may then be
    collected: its finalizer closes this)."""

    def __init__(self, core: Any, runtime: Any) -> None:
        self._core = core
        self._runtime = runtime
        self._cond = threading.Condition()
        self._by_target: Dict[str, _Connector] = {}
        self._started = False
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    def add(self, target: str, fn: Callable[[], Any], interval: float) -> None:
        connector = _Connector(self._core, self._runtime, target, fn, interval)
        with self._cond:
            if self._closed:
                raise StateError(
                    "add_availability_connector(): the engine is stopped or closed",
                    ErrorCode.ESTATE,
                )
            old = self._by_target.get(target)
            if old is not None:
                old.removed = True  # a run under way finishes; its result is dropped
            self._by_target[target] = connector
            if self._started:
                connector.next_due = time.monotonic()
                self._cond.notify_all()

    def remove(self, target: str) -> bool:
        with self._cond:
            connector = self._by_target.pop(target, None)
            if connector is None:
                return False
            connector.removed = True
            future = connector.future
        if future is not None:
            future.cancel()  # not started yet: dropped; a coroutine: cancelled
        return True

    def targets(self) -> List[str]:
        with self._cond:
            return sorted(self._by_target)

    def start(self) -> None:
        """The engine started: every connector runs now, then every interval."""
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
            now = time.monotonic()
            for connector in self._by_target.values():
                connector.next_due = now
            # A daemon: the interpreter's exit does not wait for it (engines are closed at
            # exit, which stops it).
            self._thread = threading.Thread(
                target=self._loop, name="ivr-availability", daemon=True
            )
            self._thread.start()

    def close(self, wait: bool = True) -> None:
        """Stops every connector: no new run starts; a run under way has its result dropped
        (a coroutine is cancelled). Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            futures = []
            for connector in self._by_target.values():
                connector.removed = True
                futures.append(connector.future)
            thread = self._thread
            self._cond.notify_all()
        for future in futures:
            if future is not None:
                future.cancel()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(5)

    # ---- the scheduler thread ----

    def _finished(self, connector: _Connector) -> None:
        with self._cond:
            connector.running = False
            connector.future = None

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                due: List[_Connector] = []
                wake: Optional[float] = None
                for connector in self._by_target.values():
                    if connector.next_due <= now:
                        # The next turn on the connector's grid; turns missed are skipped.
                        behind = int((now - connector.next_due) // connector.interval) + 1
                        connector.next_due += behind * connector.interval
                        if connector.running:
                            connector.skipped += 1
                            logger.debug(
                                "%s: still running, turn skipped (%d so far)",
                                connector.where,
                                connector.skipped,
                            )
                        else:
                            connector.running = True
                            due.append(connector)
                    wake = connector.next_due if wake is None else min(wake, connector.next_due)
                if due:
                    self._cond.release()
                    try:
                        for connector in due:
                            connector.launch(self._finished)
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.wait(None if wake is None else max(0.0, wake - time.monotonic()))
