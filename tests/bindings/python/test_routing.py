"""Routing from Python without calls: the configuration's errors, target and queue state,
and availability connectors written in Python (plain and async): samples pushed, failures
and bad values marking the data stale, runs that never overlap, stopped with the engine."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

import ivr
from conftest import wait_until

# Two targets on a closed port, no health probes: no SIP traffic at all.
ROUTING = {
    "targets": {
        "vici": {
            "uris": ["sip:8300@127.0.0.1:9"],
            "capacity": 4,
            "probe": {"enabled": False},
            "availability": {"rule": "idle_agent", "stale_after_s": 600},
        },
        "five9": {"uris": ["sip:8400@127.0.0.1:9"], "capacity": 2, "probe": {"enabled": False}},
    },
    "plans": {"sales": {"entries": [{"strategy": "failover", "targets": ["vici", "five9"]}]}},
}

BAD_CAPACITY = {
    "targets": {"x": {"uris": ["sip:a@127.0.0.1:9"], "capacity": 0}},
    "plans": {"p": {"entries": [{"targets": ["x"]}]}},
}


@pytest.fixture
def routed(options):
    """A started engine with ROUTING."""
    with ivr.Engine(**options) as engine:
        engine.set_routing(ROUTING)
        engine.start()
        yield engine


def fresh(engine: ivr.Engine, target: str = "vici") -> bool:
    return engine.target_state(target).availability_fresh


def idle(engine: ivr.Engine, target: str = "vici") -> int:
    return engine.target_state(target).idle_agents


def warnings_of(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_set_routing_errors_name_the_field(engine):
    with pytest.raises(ivr.InvalidArgumentError) as info:
        engine.set_routing(BAD_CAPACITY)
    error = info.value
    assert isinstance(error, ivr.Error) and isinstance(error, ValueError)
    assert error.code == ivr.ErrorCode.EINVAL
    assert "routing.targets.x.capacity" in str(error) and "1 to 100000" in str(error)
    with pytest.raises(ivr.InvalidArgumentError) as info:
        engine.set_routing('{"targets":\n  }')
    assert info.value.code == ivr.ErrorCode.EPARSE
    with pytest.raises(ivr.InvalidArgumentError, match="plans"):
        engine.set_routing({"targets": {}})
    with pytest.raises(TypeError, match="config"):
        engine.set_routing(42)
    import json

    engine.set_routing(json.dumps(ROUTING))
    engine.set_routing(json.dumps(ROUTING).encode())
    engine.set_routing(ROUTING)


def test_state_round_trip(options):
    with ivr.Engine(**options) as engine:
        engine.set_routing(ROUTING)  # kept, applied at start
        with pytest.raises(ivr.StateError):
            engine.push_availability("vici", agents_available=1)
        with pytest.raises(ivr.StateError):
            engine.target_state("vici")
        engine.start()

        state = engine.target_state("vici")
        assert state == ivr.TargetState(
            health="up", capacity=4, active=0, reserved=0, offered=0, answered=0,
            completed=0, failed=0, availability_fresh=False, idle_agents=0,
        )
        engine.push_availability("vici", agents_available=3, agents_logged_in=5, calls_waiting=1)
        assert fresh(engine) and idle(engine) == 3
        engine.mark_availability_stale("vici")
        assert not fresh(engine) and idle(engine) == 0
        engine.push_availability("vici", ivr.Availability(agents_available=2, longest_wait_s=30))
        assert idle(engine) == 2
        engine.push_availability("vici", {"agents_available": 1})
        assert idle(engine) == 1
        engine.push_availability("vici")  # every figure 0: fresh, nobody idle
        assert fresh(engine) and idle(engine) == 0

        engine.set_target_draining("five9")
        assert engine.target_state("five9").health == "draining"
        engine.set_target_draining("five9", draining=False)
        assert engine.target_state("five9").health == "up"

        stats = engine.queue_stats()
        assert stats == ivr.QueueStats(
            waiting=0, offered=0, oldest_wait_ms=0, service_interval_ms=None, enqueued=0,
            served=0, abandoned=0, expired=0,
        )

        with pytest.raises(ivr.NotFoundError, match="nope"):
            engine.push_availability("nope", agents_available=1)
        with pytest.raises(ivr.NotFoundError):
            engine.target_state("nope")
        with pytest.raises(ivr.NotFoundError):
            engine.set_target_draining("nope")
        with pytest.raises(ivr.NotFoundError):
            engine.mark_availability_stale("nope")
        with pytest.raises(TypeError, match="not both"):
            engine.push_availability("vici", {"agents_available": 1}, calls_waiting=2)
        with pytest.raises(ValueError, match="agents_available"):
            engine.push_availability("vici", agents_available=-1)
        with pytest.raises(TypeError, match="calls_waiting"):
            engine.push_availability("vici", calls_waiting="2")
        with pytest.raises(TypeError, match="draining"):
            engine.set_target_draining("vici", draining="yes")
        with pytest.raises(ValueError, match="target"):
            engine.target_state("")
        with pytest.raises(ValueError, match="agents_logged_in"):
            ivr.Availability(agents_logged_in=2**32)

        # A new configuration keeps the live state of a target of the same name.
        routing = dict(ROUTING, targets=dict(ROUTING["targets"], vici=dict(ROUTING["targets"]["vici"], capacity=8)))
        engine.push_availability("vici", agents_available=3)
        engine.set_routing(routing)
        state = engine.target_state("vici")
        assert state.capacity == 8 and state.availability_fresh and state.idle_agents == 3


def test_connector_pushes_samples_then_raises_then_recovers(options, caplog):
    caplog.set_level(logging.DEBUG, logger="ivr")
    mode = {"value": "ok"}
    runs = []

    with ivr.Engine(**options) as engine:
        engine.set_routing(ROUTING)

        @engine.availability_connector("vici", interval=0.05)
        def vicidial():
            runs.append(threading.current_thread().name)
            if mode["value"] == "fail":
                raise RuntimeError("vicidial API down")
            return {"agents_available": 3, "agents_logged_in": 5, "calls_waiting": 0}

        assert engine.availability_connectors() == ["vici"]
        time.sleep(0.2)
        assert runs == []  # registered before start: runs from start on
        engine.start()
        assert wait_until(lambda: fresh(engine) and idle(engine) == 3), engine.target_state("vici")
        assert all(name.startswith("ivr-worker") for name in runs), runs

        mode["value"] = "fail"
        assert wait_until(lambda: not fresh(engine)), engine.target_state("vici")
        count = len(runs)
        assert wait_until(lambda: len(runs) >= count + 3)  # it goes on polling
        assert not fresh(engine)
        text = warnings_of(caplog)
        assert "availability connector 'vici' raised RuntimeError: vicidial API down" in text
        assert "availability of target vici marked stale" in text
        # The same failure again is not repeated as a warning.
        assert text.count("vicidial API down") == 1, text
        failure = next(r for r in caplog.records if "vicidial API down" in r.getMessage())
        assert failure.exc_info is not None  # with the traceback

        mode["value"] = "ok"
        assert wait_until(lambda: fresh(engine) and idle(engine) == 3)
        assert any("samples again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "value, words",
    [
        (None, ["availability connector 'vici'", "NoneType", "expected a mapping"]),
        ([3, 5], ["list", "expected a mapping"]),
        ({}, ["empty mapping", "agents_available"]),
        ({"agents_availble": 1}, ["'agents_availble'", "not a figure", "did you mean 'agents_available'"]),
        ({"agents_available": -1}, ["agents_available", "0..4294967295", "-1"]),
        ({"agents_available": "3"}, ["agents_available", "expected int", "str"]),
        ({"agents_available": 2, "calls_waiting": True}, ["calls_waiting", "expected int", "bool"]),
        ({"longest_wait_s": 1.5}, ["longest_wait_s", "expected int", "float"]),
    ],
)
def test_connector_bad_return_values_mark_stale_and_name_the_field(routed, caplog, value, words):
    caplog.set_level(logging.WARNING, logger="ivr")
    routed.push_availability("vici", agents_available=2)
    assert fresh(routed)
    routed.add_availability_connector("vici", lambda: value, interval=0.05)
    assert wait_until(lambda: not fresh(routed)), routed.target_state("vici")
    assert wait_until(lambda: "marked stale" in warnings_of(caplog))
    text = warnings_of(caplog)
    for word in words:
        assert word in text, text


def test_coroutine_connector(routed, caplog):
    caplog.set_level(logging.WARNING, logger="ivr")
    calls = []
    state = {"fail": False}

    @routed.availability_connector("vici", interval=0.05)
    async def vicidial():
        calls.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        if state["fail"]:
            raise ConnectionError("connection refused")
        return ivr.Availability(agents_available=2, agents_logged_in=4)

    assert wait_until(lambda: fresh(routed) and idle(routed) == 2), routed.target_state("vici")
    assert len(set(map(id, calls))) == 1  # always the engine's own loop
    state["fail"] = True
    assert wait_until(lambda: not fresh(routed))
    assert "raised ConnectionError: connection refused" in warnings_of(caplog)


def test_runs_never_overlap_and_close_stops_them(options):
    lock = threading.Lock()
    active = {"now": 0, "max": 0, "runs": 0}

    def slow():
        with lock:
            active["now"] += 1
            active["runs"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.2)  # four turns of 0.05 s: the turns in between are skipped
        with lock:
            active["now"] -= 1
        return {"agents_available": 1}

    engine = ivr.Engine(**options, workers=4)
    try:
        engine.set_routing(ROUTING)
        engine.add_availability_connector("vici", slow, interval=0.05)
        engine.start()
        assert wait_until(lambda: active["runs"] >= 3)
        assert active["max"] == 1
        assert fresh(engine)
    finally:
        engine.close()
    with lock:
        after_close = active["runs"]
    time.sleep(0.5)
    assert active["runs"] == after_close  # nothing runs after close
    with pytest.raises(ivr.StateError):
        engine.add_availability_connector("vici", slow)


def test_stop_stops_connectors(routed):
    runs = []
    routed.add_availability_connector("vici", lambda: runs.append(1) or {"agents_available": 1}, interval=0.05)
    assert wait_until(lambda: len(runs) >= 2)
    routed.stop()
    count = len(runs)
    time.sleep(0.3)
    assert len(runs) <= count + 1  # at most one run that was already under way


def test_an_engine_collected_stops_its_connectors(options):
    runs = []

    def connector():
        runs.append(1)
        return {"agents_available": 1}

    def make():
        engine = ivr.Engine(**options)
        engine.set_routing(ROUTING)
        engine.add_availability_connector("vici", connector, interval=0.05)
        engine.start()
        assert wait_until(lambda: len(runs) >= 2)

    make()  # the engine object is unreachable afterwards
    gc.collect()
    count = len(runs)
    time.sleep(0.3)
    assert len(runs) <= count + 1


def test_connector_arguments_replace_and_remove(routed):
    def a():
        return {"agents_available": 1}

    def b():
        return {"agents_available": 4}

    with pytest.raises(ValueError, match="interval"):
        routed.add_availability_connector("vici", a, interval=0)
    with pytest.raises(TypeError, match="interval"):
        routed.add_availability_connector("vici", a, interval="5")
    with pytest.raises(TypeError, match="interval"):
        routed.add_availability_connector("vici", a, interval=True)
    with pytest.raises(TypeError, match="fn"):
        routed.add_availability_connector("vici", "not callable")
    with pytest.raises(ValueError, match="target"):
        routed.availability_connector("", interval=1.0)(a)

    routed.add_availability_connector("vici", a, interval=0.05)
    assert wait_until(lambda: idle(routed) == 1)
    routed.add_availability_connector("vici", b, interval=0.05)  # replaces a
    assert wait_until(lambda: idle(routed) == 4)
    assert routed.availability_connectors() == ["vici"]
    assert routed.remove_availability_connector("vici")
    assert not routed.remove_availability_connector("vici")
    assert routed.availability_connectors() == []


def test_connector_for_an_unknown_target_logs(routed, caplog):
    caplog.set_level(logging.WARNING, logger="ivr")
    routed.add_availability_connector("genesys", lambda: {"agents_available": 1}, interval=0.05)
    assert wait_until(lambda: "push_availability failed" in warnings_of(caplog))
    assert "genesys" in warnings_of(caplog)


def test_routing_event_types(routed):
    for event_type in ("route.decided", "route.attempt", "call.queued", "call.delivered"):
        assert event_type in ivr.EVENT_TYPES
        handler = routed.on(event_type, lambda e: None)
        assert routed.off(event_type, handler)
