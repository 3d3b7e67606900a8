"""Garbage collection while engines run, engines collected inside their own callbacks, and
several Python threads calling into an engine while real calls run."""

from __future__ import annotations

import gc
import socket
import threading
import time
import weakref

import ivr
from conftest import Events, wait_until
from test_calls import MAIN

SIMPLE = {
    "flow": "simple",
    "start": "bye",
    "nodes": {"bye": {"verb": "hangup", "reason": "bye"}},
}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def register_everything(engine: ivr.Engine, events: Events) -> None:
    """Handlers that nothing but the engine refers to once this returns."""

    class Router:
        def __call__(self, request):
            return "vip", {"queue": "gc", "flag": "ok"}

    async def leads(query):
        return [{"score": 99, "tier": "gc"}]

    engine.register_verb("py.route", Router())
    engine.register_db_connector("leads", leads)
    engine.on("*", lambda event: events(event))


def test_handlers_survive_collection(options, call):
    events = Events()
    with ivr.Engine(**options) as engine:
        register_everything(engine, events)
        gc.collect()
        engine.load_flow(MAIN)
        engine.map_flow("*", "main")
        engine.start()
        gc.collect()
        sipp = call(engine)
        end = events.wait_ended(1)[0]
        sipp.wait()
        assert end.reason == "vip gc 99 gc ok", (end.flow_path, end.reason)


def test_engine_collected_while_running_ends_its_calls(options, call):
    events = Events()
    engine = ivr.Engine(**options)
    engine.on("*", events)
    engine.register_verb("py.route", lambda r: None)
    engine.register_db_connector("leads", lambda q: [{"score": 1}])
    engine.load_flow(
        {"flow": "wait", "start": "hello", "nodes": {
            "hello": {"verb": "answer", "next": "hold"},
            "hold": {"verb": "pause", "ms": 20000},
        }}
    )
    engine.map_flow("*", "wait")
    engine.start()
    port = engine.sip_port
    sipp = call(engine)
    assert events.wait_for(lambda items: any(e.type == "call.answered" for e in items))
    ref = weakref.ref(engine)
    del engine
    gc.collect()
    assert ref() is None
    end = events.wait_ended(1)[0]  # stopped by the collection, not by the caller
    assert end.end_reason == "engine_stop"
    assert wait_until(lambda: port_is_free(port))
    sipp.wait()
    # What the events refer to is still readable; actions say the call is gone.
    assert end.call.from_user == "5551234"
    try:
        end.call.answer()
        raise AssertionError("answer() after the engine was freed")
    except ivr.GoneError:
        pass


def test_engine_collected_inside_its_own_callback(options, call):
    """A collection on the engine thread finds the engine unreachable: it must be freed by
    another thread (the engine thread cannot stop itself), without a crash or a hang."""
    events = Events()
    collected = threading.Event()

    def collect_now(event):
        gc.collect()
        collected.set()

    engine = ivr.Engine(**options)
    engine.cycle = engine  # only the cyclic collector can free it
    engine.on("call.started", collect_now)
    engine.on("*", events)
    engine.load_flow(SIMPLE)
    engine.map_flow("*", "simple")
    engine.start()
    port = engine.sip_port
    sipp = call(engine)
    ref = weakref.ref(engine)
    del engine
    assert collected.wait(30)
    assert ref() is None
    events.wait_ended(1)
    assert wait_until(lambda: port_is_free(port), 15)
    sipp.wait()


def test_dropped_requests_and_queries_take_the_error_exit(options, call):
    """A connector that keeps nothing and answers nothing: the query object is collected and
    the wrapper fails it, so the call goes on (no hang until the timeout)."""
    events = Events()
    with ivr.Engine(**options) as engine:
        engine.on("*", events)

        @engine.db_connector("leads")
        def leads(query):
            query.fail("busy", "try later")  # answered by hand; the return value is ignored
            return [{"score": 1}]

        @engine.verb("py.route")
        def route(request):
            request.complete("vip")
            return "ignored"

        engine.load_flow(MAIN)
        engine.map_flow("*", "main")
        engine.start()
        sipp = call(engine)
        end = events.wait_ended(1)[0]
        sipp.wait()
        assert end.flow_path == "hello > lead > failed" and "try later" in end.reason


def test_threads_call_into_the_engine_while_calls_run(options, call):
    events = Events()
    errors = []
    iterations = [0] * 4
    stop = threading.Event()
    with ivr.Engine(**options, workers=2) as engine:
        engine.on("*", events)
        engine.register_db_connector("leads", lambda q: [{"score": 90, "tier": "t"}])
        engine.register_verb("py.route", lambda r: ("vip", {"queue": "stress", "flag": "1"}))
        engine.load_flow(MAIN)
        engine.map_flow("*", "main")
        engine.start()

        def hammer(n: int) -> None:
            try:
                i = 0
                while not stop.is_set():
                    i += 1
                    iterations[n] = i
                    doc = dict(SIMPLE, flow=f"s{n}", version=str(i))
                    engine.load_flow(doc, activate=i % 2 == 0)
                    assert engine.validate_flow(doc).valid
                    assert engine.flows()
                    engine.map_flow(f"9{n}", f"s{n}")
                    engine.set_secret(f"k{n}", str(i))
                    assert engine.call_count >= 0 and engine.sip_port > 0
                    handler = engine.on("dtmf", lambda e: None)
                    engine.off("dtmf", handler)
                    engine.register_verb(f"py.extra{n}", lambda r: None)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            callers = [call(engine) for _ in range(4)]
            ended = events.wait_ended(4, timeout=45)
            for sipp in callers:
                sipp.wait()
            # Enough work overlapped with the calls, however fast they were.
            assert wait_until(lambda: min(iterations) >= 50 or bool(errors), 30), iterations
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        assert [e.reason for e in ended] == ["vip stress 90 t 1"] * 4
        assert len({e.call_id for e in ended}) == 4


def test_close_while_other_threads_use_the_engine(options):
    """close() waits for the methods under way on other threads; later calls raise."""
    engine = ivr.Engine(**options)
    engine.start()
    failures = []
    started = threading.Barrier(5)

    def user() -> None:
        started.wait()
        for i in range(2000):
            try:
                engine.validate_flow(SIMPLE)
                engine.flows()
            except ivr.StateError:
                return  # closed: the expected way out
            except Exception as e:  # pragma: no cover
                failures.append(repr(e))
                return

    threads = [threading.Thread(target=user) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.05)
    engine.close()
    for t in threads:
        t.join(30)
    assert not failures, failures
    assert engine.closed
