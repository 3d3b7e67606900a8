"""Real SIPp calls through an engine driven from Python: flows whose custom verbs and db
connectors are Python functions (plain and async), event order, Call methods, and Python
exceptions turned into the steps' error exits."""

from __future__ import annotations

import asyncio
import threading

import pytest

import ivr
from conftest import CALLER, Events

# The lead's score from a Python connector, the routing decision from a Python verb.
MAIN = {
    "flow": "main",
    "version": "1",
    "start": "hello",
    "nodes": {
        "hello": {"verb": "answer", "next": "lead"},
        "lead": {
            "verb": "db", "connector": "leads", "query": "lead_by_phone",
            "params": ["{{call.from}}", None, 7],
            "map": {"score": "score"}, "timeout_ms": 5000,
            "next": "route", "on_empty": "unknown", "on_error": "failed",
        },
        "route": {
            "verb": "py.route",
            "args": {"score": "{{vars.score}}", "tier": "{{steps.lead.row.tier}}", "n": 7},
            "exits": {"vip": "vip"}, "timeout_ms": 10000,
            "next": "std", "on_error": "failed",
        },
        "vip": {
            "verb": "hangup",
            "reason": "vip {{steps.route.queue}} {{vars.score}} {{steps.lead.row.tier}} {{steps.route.flag}}",
        },
        "std": {"verb": "hangup", "reason": "std"},
        "unknown": {"verb": "hangup", "reason": "unknown caller"},
        "failed": {"verb": "hangup", "reason": "failed {{steps.lead.error}}{{steps.route.error}}"},
    },
}


def run_call(engine: ivr.Engine, call, flow=MAIN):
    """Loads flow for every number, places one SIPp call; returns (call.ended, Events)."""
    events = Events()
    engine.on("*", events)
    engine.load_flow(flow)
    engine.map_flow("*", flow["flow"])
    engine.start()
    sipp = call(engine)
    ended = events.wait_ended(1)
    sipp.wait()
    return ended[0], events


def test_plain_verb_and_connector_with_event_order(engine, call):
    seen = {}

    @engine.db_connector("leads")
    def leads(query):
        seen["query"] = (query.connector, query.statement, query.params, query.timeout_ms)
        seen["query_thread"] = threading.current_thread().name
        return [{"score": 87, "tier": "gold", "active": True, "ratio": 0.5, "note": None}]

    @engine.verb("py.route")
    def route(request):
        seen["verb"] = (request.verb, request.node, request.args, request.arg("none", "dflt"))
        seen["caller"] = request.call.from_user
        seen["verb_thread"] = threading.current_thread().name
        if int(request.arg("score")) > 80:
            return "vip", {"queue": "gold-desk", "flag": True}
        return None

    end, events = run_call(engine, call)
    assert end.reason == "vip gold-desk 87 gold true", (end.flow_path, end.flow_error)
    assert end.flow_path == "hello > lead > route > vip"
    assert end.flow_end == "hangup" and end.flow_id == "main" and end.flow_version == "1"
    assert end.end_reason == "local_hangup"
    assert seen["query"] == ("leads", "lead_by_phone", [CALLER, None, "7"], 5000)
    assert seen["verb"] == ("py.route", "route", {"score": "87", "tier": "gold", "n": "7"}, "dflt")
    assert seen["caller"] == CALLER
    # Plain functions run on the engine's workers, never on the engine thread.
    assert seen["verb_thread"].startswith("ivr-worker")
    assert seen["query_thread"].startswith("ivr-worker")

    types = [e.type for e in events.items]
    assert types[0] == "call.started"
    assert types[-1] == "call.ended"
    assert types.index("call.answered") < types.index("call.ended")
    steps = [e for e in events.items if e.type == "flow.step"]
    assert [s.flow_node for s in steps][:1] == ["hello"]
    assert {"hello", "lead", "route", "vip"} <= {s.flow_node for s in steps}
    assert all(s.flow_verb for s in steps)
    # One call throughout, and the event objects stay readable after the call.
    assert len({e.call_id for e in events.items}) == 1
    started = events.items[0]
    assert started.call.from_user == CALLER and started.call.to_user == "4000"
    assert started.call.header("X-Lead-Id") == "L-42"
    assert started.call.header("X-Missing") is None
    assert started.call == end.call and hash(started.call) == hash(end.call)
    assert started.end_reason is None and started.digit is None
    assert "call.started" in repr(started)
    with pytest.raises(ivr.GoneError):
        end.call.hangup()


def test_async_verb_and_connector(engine, call):
    loops = {}

    @engine.db_connector("leads")
    async def leads(query):
        loops["query"] = asyncio.get_running_loop()
        await asyncio.sleep(0.05)
        return (["score", "tier"], [(91, "platinum"), (12, "tin")])

    @engine.verb("py.route")
    async def route(request):
        loops["verb"] = asyncio.get_running_loop()
        await asyncio.sleep(0.05)
        request.set("queue", "async-desk")
        request.set("flag", "x")
        return "vip"

    end, _ = run_call(engine, call)
    assert end.reason == "vip async-desk 91 platinum x", (end.flow_path, end.flow_error)
    assert loops["query"] is loops["verb"]  # the engine's own loop, in its own thread


def test_exception_in_verb_takes_on_error_with_message(engine, call):
    @engine.db_connector("leads")
    def leads(query):
        return [{"score": 50}]

    @engine.verb("py.route")
    def route(request):
        raise ValueError("CRM timed out")

    end, _ = run_call(engine, call)
    assert end.flow_path == "hello > lead > route > failed"
    assert end.reason.startswith("failed ") and "CRM timed out" in end.reason, end.reason


def test_exception_in_async_verb(engine, call):
    @engine.db_connector("leads")
    def leads(query):
        return [{"score": 50}]

    @engine.verb("py.route")
    async def route(request):
        await asyncio.sleep(0.01)
        raise LookupError("no agent free")

    end, _ = run_call(engine, call)
    assert end.flow_path == "hello > lead > route > failed"
    assert "no agent free" in end.reason, end.reason


def test_db_error_from_async_connector(engine, call):
    @engine.db_connector("leads")
    async def leads(query):
        raise ivr.DbError("connect", "crm is down")

    engine.register_verb("py.route", lambda r: None)
    end, _ = run_call(engine, call)
    assert end.flow_path == "hello > lead > failed"
    assert "crm is down" in end.reason, end.reason


def test_connector_exception_and_empty_answer(options, call):
    with ivr.Engine(**options) as engine:
        @engine.db_connector("leads")
        def leads(query):
            return 42  # not rows

        engine.register_verb("py.route", lambda r: None)
        end, _ = run_call(engine, call)
        assert end.flow_path == "hello > lead > failed"
        assert "int" in end.reason, end.reason

    with ivr.Engine(**options) as engine:
        @engine.db_connector("leads")
        def no_rows(query):
            return []

        engine.register_verb("py.route", lambda r: None)
        end, _ = run_call(engine, call)
        assert end.reason == "unknown caller"


def test_verb_without_exit_and_bad_result(options, call):
    with ivr.Engine(**options) as engine:
        engine.register_db_connector("leads", lambda q: [{"score": 10}])
        engine.register_verb("py.route", lambda r: {"queue": "q"})  # values, exit next
        end, _ = run_call(engine, call)
        assert end.reason == "std"
    with ivr.Engine(**options) as engine:
        engine.register_db_connector("leads", lambda q: [{"score": 10}])
        engine.register_verb("py.route", lambda r: 3.5)  # not a result
        end, _ = run_call(engine, call)
        assert end.flow_path.endswith("failed") and "float" in end.reason, end.reason
    with ivr.Engine(**options) as engine:
        engine.register_db_connector("leads", lambda q: [{"score": 10}])
        engine.register_verb("py.route", lambda r: "no_such_exit")
        end, _ = run_call(engine, call)
        assert end.flow_path.endswith("failed"), end.flow_path


def test_host_driven_call_with_call_methods(engine, call):
    """No flow for the number: Python answers, collects the DTMF and hangs up."""
    events = Events()
    errors = []

    @engine.on("call.started")
    def started(event):
        event.call.ring()
        event.call.answer()

    @engine.on("call.answered")
    def answered(event):
        event.call.collect(max_digits=8, terminators="#", first_digit_timeout_ms=5000)

    @engine.on("collect.done")
    def collected(event):
        event.call.hangup("digits " + event.digits)

    @engine.on("call.ended")
    def close_inside(event):
        try:
            engine.close()  # never from the engine thread
        except ivr.StateError as e:
            errors.append(str(e))

    engine.on("*", events)
    engine.start()
    sipp = call(engine)
    end = events.wait_ended(1)[0]
    sipp.wait()
    assert end.reason == "digits 42" and end.end_reason == "local_hangup"
    assert end.flow_id == "" and end.flow_path == ""
    dtmf = events.of_type("dtmf")
    assert [d.digit for d in dtmf] == ["4", "2", "#"]
    assert {d.dtmf_source for d in dtmf} == {"info"}
    done = events.of_type("collect.done")[0]
    assert done.digits == "42" and done.collect_end == "terminator" and done.digits_source == "info"
    assert end.call.codec in ("PCMA", "PCMU")
    assert errors and "callback" in errors[0]
    assert not engine.closed


def test_exception_in_event_handler_is_logged_not_raised(engine, call, caplog):
    events = Events()

    @engine.on("call.started")
    def broken(event):
        raise RuntimeError("handler bug")

    @engine.on("call.started")
    def answer(event):
        event.call.answer()

    @engine.on("call.answered")
    def bye(event):
        event.call.hangup("after a broken handler")

    engine.on("call.ended", events)
    engine.start()
    sipp = call(engine)
    end = events.wait_ended(1)[0]
    sipp.wait()
    assert end.reason == "after a broken handler"
    assert any("handler bug" in (r.exc_text or "") or "broken" in r.getMessage() for r in caplog.records)


def test_async_event_handler(engine, call):
    got = []
    done = threading.Event()

    @engine.on("call.ended")
    async def ended(event):
        await asyncio.sleep(0.01)
        got.append(event.reason)
        done.set()

    engine.register_db_connector("leads", lambda q: [])
    engine.register_verb("py.route", lambda r: None)
    end, _ = run_call(engine, call)
    assert done.wait(10)
    assert got == ["unknown caller"]


def test_slow_async_work_times_out_and_is_cancelled(engine, call):
    """The step stops waiting: the db step's coroutine is cancelled (the connector's cancel),
    a verb's late answer is dropped without an error."""
    cancelled = threading.Event()
    late = threading.Event()

    @engine.db_connector("leads")
    async def leads(query):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    @engine.verb("py.route")
    async def route(request):
        await asyncio.sleep(0.6)
        late.set()
        return "vip"

    flow = {
        "flow": "slow", "start": "hello", "nodes": {
            "hello": {"verb": "answer", "next": "lead"},
            "lead": {"verb": "db", "connector": "leads", "query": "q", "timeout_ms": 200,
                     "next": "route", "on_timeout": "route", "on_error": "route"},
            "route": {"verb": "py.route", "exits": {"vip": "vip"}, "timeout_ms": 200,
                      "next": "vip", "on_timeout": "late", "on_error": "vip"},
            "vip": {"verb": "hangup", "reason": "vip"},
            "late": {"verb": "pause", "ms": 800, "next": "bye"},
            "bye": {"verb": "hangup", "reason": "timed out {{steps.lead.reason}}"},
        },
    }
    end, _ = run_call(engine, call, flow)
    assert end.flow_path == "hello > lead > route > late > bye"
    assert end.reason == "timed out timeout"
    assert cancelled.wait(10)
    assert late.wait(10)  # it finished after the node had moved on; nothing broke
