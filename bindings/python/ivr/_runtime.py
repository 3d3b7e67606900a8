"""Where Python callbacks of an engine run, away from the engine thread.

Plain functions (custom verbs, db connectors) run on a small thread pool, so they may
block (a sqlite3 query, an HTTP call); coroutine functions run on an asyncio event loop:
the user's (``Engine(loop=...)``) or one this module starts in a daemon thread. Neither is
created before it is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, Optional


class Runtime:
    def __init__(self, workers: int, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        self._workers = workers
        self._user_loop = loop
        self._lock = threading.Lock()
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    # ---- the worker threads ----

    def submit(self, fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future[Any]":
        """Runs fn(*args) on a worker thread. Raises RuntimeError once closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="ivr-worker"
                )
            executor = self._executor
        return executor.submit(fn, *args)

    # ---- the event loop ----

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop coroutines run on (started on first use)."""
        if self._user_loop is not None:
            return self._user_loop
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                # A daemon: it never keeps the interpreter from exiting (engines are
                # closed at exit, which stops it).
                thread = threading.Thread(target=run, name="ivr-asyncio", daemon=True)
                thread.start()
                ready.wait(10)
                self._loop, self._thread = loop, thread
            return self._loop

    def run_coroutine(self, coro: "Coroutine[Any, Any, Any]") -> "concurrent.futures.Future[Any]":
        """Schedules a coroutine on the loop from any thread."""
        try:
            loop = self.loop()
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except BaseException:
            close = getattr(coro, "close", None)
            if close is not None:
                close()  # never awaited: say so quietly rather than with a warning
            raise

    # ---- shutdown ----

    def close(self, wait: bool = True) -> None:
        """Cancels what has not started, stops the loop this runtime started. Returns without
        waiting for functions still running on workers (their answers are then dropped)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            executor, loop, thread = self._executor, self._loop, self._thread
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if loop is None or thread is None:
            return
        if thread is threading.current_thread() or not wait:
            # From a coroutine on this very loop, or nothing may be waited for: stop it once
            # the loop gets to it.
            if thread is threading.current_thread():
                asyncio.ensure_future(_stop(loop), loop=loop)
            else:
                asyncio.run_coroutine_threadsafe(_stop(loop), loop)
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(_stop(loop), loop).result(5)
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


async def _stop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancels every other task on the loop, waits for them, then stops the loop."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    loop.call_soon(loop.stop)
