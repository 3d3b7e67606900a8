"""Routing from Python without calls: the configuration's errors, target and queue state,
and availability connectors written in Python (plain and async): samples pushed, failures
and bad values marking the data stale, runs that never overlap, stopped with the engine."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import ivr
from conftest import HERE, Events, free_udp_port, wait_until

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


# ---- routing events from a real routed call ----

DIALERS = HERE.parents[1] / "integration" / "scenarios"


class Dialer:
    """A SIPp UAS playing a dialing system on a free loopback port (one call)."""

    def __init__(self, scenario: str, log_dir: Path, hold_ms: int = 500) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self._log = open(log_dir / f"dialer-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(DIALERS / scenario), "-m", "1", "-nostdin", "-i", "127.0.0.1",
             "-p", str(self.port), "-d", str(hold_ms), "-timeout", "30s", "-timeout_error"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=log_dir,
        )
        # Bound once the port can no longer be bound here.
        assert wait_until(lambda: self._bound() or self.proc.poll() is not None), "sipp UAS bound"
        assert self.proc.poll() is None, f"sipp UAS {scenario} exited early"

    def _bound(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
            return False

    def close(self) -> None:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def test_routing_events_of_a_routed_call(options, call, tmp_path):
    """A caller routed by plan "sales": the first target answers 486, the second takes
    the call and hangs up after 0.5 s; the route step then hangs up the caller."""
    busy = Dialer("uas_dialer_busy.xml", tmp_path / "dialers")
    taker = Dialer("uas_dialer_answer.xml", tmp_path / "dialers")
    try:
        def dialer(port: int, priority: int) -> dict:
            return {"uris": [f"sip:agents@127.0.0.1:{port}"], "capacity": 1,
                    "priority": priority, "probe": {"enabled": False},
                    "headers": {"X-Department": "sales", "X-Caller": "{{call.from}}"}}

        events = Events()
        positions = []
        with ivr.Engine(**options) as engine:
            engine.on("*", events)
            # On the engine thread: a delivered call is not waiting.
            engine.on("call.delivered", lambda e: positions.append(e.call.queue_position))
            engine.set_routing({
                "targets": {"busy": dialer(busy.port, 0), "taker": dialer(taker.port, 1)},
                "plans": {"sales": {"entries": [{"strategy": "failover",
                                                 "targets": ["busy", "taker"]}]}},
            })
            engine.load_flow({"flow": "routed", "start": "hello", "nodes": {
                "hello": {"verb": "answer", "next": "wait"},
                # the caller's SIP INFO digits are over before the dialing system is reached
                "wait": {"verb": "pause", "ms": 1500, "next": "to_sales"},
                "to_sales": {"verb": "route", "plan": "sales", "ring_timeout_ms": 5000,
                             "next": "bye", "on_failed": "bye"},
                "bye": {"verb": "hangup", "reason": "routed {{steps.to_sales.outcome}}"}}})
            engine.map_flow("*", "routed")
            engine.start()
            caller = call(engine)
            ended = events.wait_ended(1, timeout=40)
            caller.wait()
    finally:
        busy.close()
        taker.close()

    assert ended[0].reason == "routed ended", events.items
    by_type = {}
    for e in events.items:
        by_type.setdefault(e.type, []).append(e)
    decided = by_type["route.decided"][0]
    assert decided.route_plan == "sales"
    assert decided.route_target == ""
    assert "busy" in decided.route_detail and "taker" in decided.route_detail
    assert decided.route_attempt is None and decided.queue_position is None
    assert decided.sip_code is None
    attempt = by_type["route.attempt"][0]
    assert (attempt.route_plan, attempt.route_target) == ("sales", "busy")
    assert attempt.route_uri == f"sip:agents@127.0.0.1:{busy.port}"
    assert attempt.sip_code == 486 and attempt.route_attempt == 1
    assert attempt.route_detail
    delivered = by_type["call.delivered"][0]
    assert (delivered.route_target, delivered.route_attempt) == ("taker", 2)
    assert delivered.sip_code == 200
    assert "target=taker" in repr(delivered)
    assert "call.queued" not in by_type
    # Other types: the routing attributes are None.
    end = ended[0]
    assert end.route_plan is None and end.route_target is None and end.queue_priority is None
    assert delivered.call == end.call
    assert positions == [0]
    with pytest.raises(ivr.GoneError):
        end.call.queue_position  # the engine is gone


def test_a_python_connector_releases_a_queued_call(options, call, tmp_path):
    """The only target needs an idle agent; the Python connector reports none, so the call
    waits in the queue (call.queued), until the connector reports one: the call is offered
    at once and delivered."""
    taker = Dialer("uas_dialer_answer.xml", tmp_path / "dialers")
    agents = {"available": 0}
    seen = []
    try:
        events = Events()
        with ivr.Engine(**options) as engine:
            engine.on("*", events)
            engine.on("call.queued", lambda e: seen.append(e.call.queue_position))
            engine.set_routing({
                "targets": {"taker": {
                    "uris": [f"sip:agents@127.0.0.1:{taker.port}"], "capacity": 1,
                    "probe": {"enabled": False},
                    "headers": {"X-Department": "sales", "X-Caller": "{{call.from}}"},
                    "availability": {"rule": "idle_agent", "stale_after_s": 60}}},
                "plans": {"sales": {"entries": [{"targets": ["taker"]}]}},
            })

            @engine.availability_connector("taker", interval=0.1)
            def taker_agents():
                return {"agents_available": agents["available"], "agents_logged_in": 1}

            engine.load_flow({"flow": "queued", "start": "hello", "nodes": {
                "hello": {"verb": "answer", "next": "wait"},
                "wait": {"verb": "pause", "ms": 1500, "next": "to_sales"},
                "to_sales": {"verb": "route", "plan": "sales",
                             "queue": {"priority": 7, "max_wait_s": 30},
                             "next": "bye", "on_failed": "bye", "on_timeout": "bye"},
                "bye": {"verb": "hangup", "reason": "routed {{steps.to_sales.outcome}}"}}})
            engine.map_flow("*", "queued")
            engine.start()
            assert wait_until(lambda: engine.target_state("taker").availability_fresh)
            caller = call(engine)
            assert events.wait_for(lambda items: any(e.type == "call.queued" for e in items), 20)
            stats = engine.queue_stats()
            assert stats.waiting == 1 and stats.enqueued == 1, stats
            agents["available"] = 1  # an agent logs in: the next sample frees the call
            ended = events.wait_ended(1, timeout=40)
            caller.wait()
            stats = engine.queue_stats()
            assert stats.waiting == 0 and stats.served == 1, stats
    finally:
        taker.close()

    assert ended[0].reason == "routed ended", events.items
    queued = next(e for e in events.items if e.type == "call.queued")
    assert (queued.queue_position, queued.queue_priority) == (1, 7)
    assert queued.route_plan == "sales"
    assert queued.route_attempt is None and queued.sip_code is None
    assert seen == [1]  # call.queue_position, read in the handler
    delivered = next(e for e in events.items if e.type == "call.delivered")
    assert delivered.route_target == "taker" and delivered.queue_position is None
