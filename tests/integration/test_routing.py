"""ivrd routing callers of the demo flow (menu choice 3, "an agent now") to dialing systems
played by SIPp UAS processes on free loopback ports (docs/routing.md, docs/flows.md
"enqueue"):

- failover: the first target (by priority) answers 486, the call goes to the second,
  which receives the flow's X- headers, answers, talks and hangs up; the caller hears
  goodbye;
- 503 and no answer: the engine fails over on a server error and CANCELs a target that
  rings past the ring timeout, then reaches the third;
- the queue: with both targets full (capacity 1 each), two more callers wait; the VIP
  caller (X-Priority: vip -> priority 100) goes ahead of the one who came first, and is
  delivered first when a slot frees;
- every decision, failed attempt, queueing and delivery is an event (ivrd's stdout lines
  and the signed webhooks).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import harness

REPO = harness.HERE.parents[1]
TESTS = REPO / "tests"
DEMO_CONFIG = REPO / "examples" / "ivrd" / "demo.json"
DEMO_FLOW = REPO / "examples" / "flows" / "demo.json"
AGENT_PATH = "welcome > menu > agent > connecting > to_agent > goodbye > bye"


def _require_ivrd() -> None:
    if harness.ivrd_binary():
        return
    if os.environ.get("IVR_BUILD_DIR"):
        pytest.fail("ivrd not found under IVR_BUILD_DIR=%s" % os.environ["IVR_BUILD_DIR"])
    pytest.skip("ivrd binary not found (set IVRD or IVR_BUILD_DIR)")


def _prompts() -> str:
    p = harness.prompts_dir()
    if not p or not (Path(p) / "demo_connecting.wav").is_file():
        pytest.fail("the demo flow's prompts are missing (IVR_PROMPTS=%s)" % p)
    return p


def target(port: int, priority: int, capacity: int = 1) -> dict:
    return {"uris": ["sip:agents@127.0.0.1:%d" % port], "capacity": capacity,
            "priority": priority, "probe": {"enabled": False},
            "headers": {"X-Lead-Id": "{{call.from}}"}}


def config(routing: dict, flow: Path = DEMO_FLOW, **extra) -> dict:
    """The shipped demo configuration with the test's routing (ports filled in)."""
    c = json.loads(DEMO_CONFIG.read_text())
    c.pop("sip", None)
    c.pop("rtp", None)
    c["prompt_dir"] = _prompts()
    c["flows"] = [{"file": str(flow), "activate": True}]
    c["log_level"] = "debug"
    c["routing"] = routing
    c.update(extra)
    return c


ROUTE_LINE = re.compile(r"^call (?P<call>\S+) (?P<what>route decided|route attempt|queued|"
                        r"delivered) ?(?P<rest>.*)$")


def route_lines(ivrd: harness.Ivrd) -> list[tuple[float, str, str, str]]:
    """(time, call id, kind, rest) of ivrd's routing lines, in order."""
    out = []
    with ivrd._cv:
        raw = list(ivrd.stdout_lines)
    for t, line in raw:
        m = ROUTE_LINE.match(line)
        if m:
            out.append((t, m["call"], m["what"], m["rest"]))
    return out


def caller(ctx, ivrd, prio: str = "normal", timeout_s: int = 150) -> harness.Sipp:
    return ctx.sipp_bg("uac_route.xml", ivrd.port, keys={"key": "3", "prio": prio},
                       timeout_s=timeout_s)


def dialer(ctx, port: int, scenario: str, calls: int = 1, hold_ms: int = 1500,
           **keys) -> harness.Sipp:
    return ctx.sipp_bg(scenario, None, local_port=port, calls=calls, timeout_s=150,
                       keys=keys or None, extra=["-d", str(hold_ms)])


def call_id(s: harness.Sipp) -> str:
    return "%s-1@%s" % (s.cid_prefix, harness.HOST)


def finish_ok(ctx, s: harness.Sipp, calls: int = 1) -> harness.SippResult:
    r = ctx.finish(s)
    harness.assert_sipp_ok(r, calls)
    return r


def test_failover_from_a_busy_dialing_system_to_the_next(ctx, tmp_path):
    _require_ivrd()
    pa, pb = harness.free_port(), harness.free_port()
    busy = dialer(ctx, pa, "uas_dialer_busy.xml")
    taker = dialer(ctx, pb, "uas_dialer_answer.xml", hold_ms=1500)
    routing = {"targets": {"dialer_a": target(pa, 0), "dialer_b": target(pb, 1)},
               "plans": {"agents": {"entries": [{"strategy": "failover",
                                                 "targets": ["dialer_a", "dialer_b"]}]}}}
    ivrd = harness.Ivrd(config(routing), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    c = caller(ctx, ivrd)
    finish_ok(ctx, c)
    cid = call_id(c)
    line = ivrd.wait_line(cid, timeout=20)
    assert line and line.path == AGENT_PATH, (line, ivrd.stderr_text())
    finish_ok(ctx, busy)
    r = finish_ok(ctx, taker)
    # The dialing system got the flow's headers (the scenario checks they are there).
    assert "department agent caller sipp" in r.logs, r.logs

    lines = [(k, rest) for _, call, k, rest in route_lines(ivrd) if call == cid]
    assert [k for k, _ in lines] == ["route decided", "route attempt", "delivered"], lines
    assert "failover: dialer_a, dialer_b" in lines[0][1], lines
    assert lines[1][1].startswith("1 target dialer_a failed: busy (486"), lines
    assert lines[2][1] == "target dialer_b uri sip:agents@127.0.0.1:%d attempt 2" % pb, lines
    assert ivrd.stop(signal.SIGTERM) == 0


def test_failover_on_503_and_no_answer(ctx, tmp_path):
    _require_ivrd()
    # The demo flow with a short ring timeout, so the no-answer target is cancelled soon.
    flow = json.loads(DEMO_FLOW.read_text())
    flow["nodes"]["to_agent"]["ring_timeout_ms"] = 2000
    flow_path = tmp_path / "demo_short_ring.json"
    flow_path.write_text(json.dumps(flow))
    pa, pb, pc = harness.free_port(), harness.free_port(), harness.free_port()
    down = dialer(ctx, pa, "uas_dialer_503.xml")
    silent = dialer(ctx, pb, "uas_dialer_noanswer.xml")
    taker = dialer(ctx, pc, "uas_dialer_answer.xml", hold_ms=1000)
    routing = {"targets": {"a": target(pa, 0), "b": target(pb, 1), "c": target(pc, 2)},
               "plans": {"agents": {"entries": [{"strategy": "failover",
                                                 "targets": ["a", "b", "c"]}]}}}
    ivrd = harness.Ivrd(config(routing, flow_path), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    c = caller(ctx, ivrd)
    finish_ok(ctx, c)
    cid = call_id(c)
    line = ivrd.wait_line(cid, timeout=20)
    assert line and line.path == AGENT_PATH, (line, ivrd.stderr_text())
    for s in (down, silent, taker):
        finish_ok(ctx, s)
    assert "dialer cancelled" in ctx.results[-2].logs
    lines = [(k, rest) for _, call, k, rest in route_lines(ivrd) if call == cid]
    kinds = [k for k, _ in lines]
    assert kinds == ["route decided", "route attempt", "route attempt", "delivered"], lines
    assert "target a failed: server_error (503" in lines[1][1], lines
    assert "target b failed: no_answer" in lines[2][1], lines
    assert "target c " in lines[3][1] and "attempt 3" in lines[3][1], lines
    assert ivrd.stop(signal.SIGTERM) == 0


def test_a_dialing_system_answering_with_unusable_sdp_is_hung_up_and_skipped(ctx, tmp_path):
    """Bad input from a dialing system: a 200 OK whose SDP has no usable audio. The engine
    acks it, hangs up that leg (BYE), reports the attempt and fails over."""
    _require_ivrd()
    pa, pb = harness.free_port(), harness.free_port()
    broken = dialer(ctx, pa, "uas_dialer_bad_sdp.xml")
    taker = dialer(ctx, pb, "uas_dialer_answer.xml", hold_ms=1000)
    routing = {"targets": {"broken": target(pa, 0), "good": target(pb, 1)},
               "plans": {"agents": {"entries": [{"strategy": "failover",
                                                 "targets": ["broken", "good"]}]}}}
    ivrd = harness.Ivrd(config(routing), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    c = caller(ctx, ivrd)
    finish_ok(ctx, c)
    line = ivrd.wait_line(call_id(c), timeout=20)
    assert line and line.path == AGENT_PATH, (line, ivrd.stderr_text())
    r = finish_ok(ctx, broken)
    assert "dialer got bye" in r.logs, r.logs
    finish_ok(ctx, taker)
    lines = [(k, rest) for _, call, k, rest in route_lines(ivrd) if call == call_id(c)]
    assert [k for k, _ in lines] == ["route decided", "route attempt", "delivered"], lines
    assert "target broken failed: rejected (488 answer without usable SDP)" in lines[1][1], lines
    assert "SDP answer refused" in ivrd.stderr_text()
    assert ivrd.stop(signal.SIGTERM) == 0


def test_callers_wait_in_priority_order_when_every_target_is_full(ctx, tmp_path,
                                                                   monkeypatch):
    _require_ivrd()
    pa, pb = harness.free_port(), harness.free_port()
    # Each dialing system takes two calls, one after the other, each lasting 14 s: long
    # enough for two more callers to reach the queue while both are busy.
    a = dialer(ctx, pa, "uas_dialer_answer.xml", calls=2, hold_ms=14000)
    b = dialer(ctx, pb, "uas_dialer_answer.xml", calls=2, hold_ms=14000)
    hooks = subprocess.Popen(["/usr/bin/python3", str(TESTS / "net" / "webhook_receiver.py"),
                              "--exit-on-stdin-eof"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        banner = {}
        for raw in hooks.stdout:
            if raw.strip() == "ready":
                break
            k, _, v = raw.strip().partition(" ")
            banner.setdefault(k, v)
        monkeypatch.setenv("IVR_SECRET_ROUTE_HOOKS", "route-hook-secret")
        routing = {"targets": {"dialer_a": target(pa, 0), "dialer_b": target(pb, 0)},
                   "plans": {"agents": {"entries": [{"strategy": "least_busy",
                                                     "targets": ["dialer_a", "dialer_b"]}]}}}
        hook_url = "http://127.0.0.1:%s/hooks" % banner["listening"]
        ivrd = harness.Ivrd(config(routing, webhooks={
            "spool_dir": str(tmp_path / "spool"),
            "endpoints": [{"name": "ops", "url": hook_url, "secrets": ["route_hooks"],
                           "events": ["route.decided", "route.attempt", "call.queued",
                                      "call.delivered", "call.ended"]}]}), tmp_path)
        ctx.ivrs.append(ivrd)
        ivrd.start()
        first = caller(ctx, ivrd)
        time.sleep(4)  # the second call ends 4 s after the first: one slot frees at a time
        second = caller(ctx, ivrd)
        # Both targets are taken (delivered) before the next callers arrive.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(1 for l in route_lines(ivrd) if l[2] == "delivered") >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the first two calls were not delivered: %s" % route_lines(ivrd))
        normal = caller(ctx, ivrd, "normal")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the normal caller waits first
            if any(l[1] == call_id(normal) and l[2] == "queued" for l in route_lines(ivrd)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the third caller did not queue: %s" % route_lines(ivrd))
        vip = caller(ctx, ivrd, "vip")
        for s in (first, second, normal, vip):
            finish_ok(ctx, s)
        for s in (a, b):
            finish_ok(ctx, s, calls=2)
        lines = route_lines(ivrd)
        queued = {call: rest for _, call, k, rest in lines if k == "queued"}
        assert queued[call_id(normal)].endswith("position 1 priority 500"), lines
        assert queued[call_id(vip)].endswith("position 1 priority 100"), lines
        delivered = [call for _, call, k, _ in lines if k == "delivered"]
        assert delivered[:2] == [call_id(first), call_id(second)] or \
            delivered[:2] == [call_id(second), call_id(first)], lines
        assert delivered[2:] == [call_id(vip), call_id(normal)], lines
        for s in (first, second, normal, vip):
            line = ivrd.wait_line(call_id(s), timeout=20)
            assert line and line.path == AGENT_PATH, line

        # The same story as webhook events.
        def requests():
            with urllib.request.urlopen("http://127.0.0.1:%s/received" % banner["control"],
                                        timeout=5) as r:
                return json.load(r)["requests"]

        deadline = time.monotonic() + 30
        events = []
        while time.monotonic() < deadline:
            events = [json.loads(q["body"]) for q in requests()]
            if sum(1 for e in events if e["type"] == "call.ended") >= 4:
                break
            time.sleep(0.2)
        by_type = {}
        for e in events:
            by_type.setdefault(e["type"], []).append(e["data"])
        assert len(by_type.get("route.decided", [])) == 4, by_type.keys()
        decided = by_type["route.decided"][0]
        assert decided["plan"] == "agents" and decided["strategy"] == "least_busy", decided
        assert set(decided["candidates"]) <= {"dialer_a", "dialer_b"}, decided
        full = [d for d in by_type["route.decided"] if d["skipped"]]
        assert full and all(s["reason"] == "full" for d in full for s in d["skipped"]), full
        assert sorted(q["priority"] for q in by_type["call.queued"]) == [100, 500]
        assert len(by_type["call.delivered"]) == 4
        assert ivrd.stop(signal.SIGTERM) == 0
    finally:
        hooks.stdin.close()
        hooks.wait(10)


def test_a_dialing_system_that_vanishes_mid_call_hands_the_caller_back(ctx, tmp_path):
    """The dialing system answers, then disappears (killed: no BYE, no RTP): after the
    target's media_timeout_s the engine hangs up its leg, says so in an event, and the flow
    takes the route step's on_error exit (the demo flow: agents busy, goodbye)."""
    _require_ivrd()
    pa = harness.free_port()
    gone = dialer(ctx, pa, "uas_dialer_answer.xml", hold_ms=60000)
    t = target(pa, 0)
    t["media_timeout_s"] = 2
    routing = {"targets": {"dialer_a": t},
               "plans": {"agents": {"entries": [{"targets": ["dialer_a"]}]}}}
    ivrd = harness.Ivrd(config(routing), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    c = caller(ctx, ivrd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(l[1] == call_id(c) and l[2] == "delivered" for l in route_lines(ivrd)):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the call was not delivered: %s" % ivrd.stdout_text())
    gone.kill()
    finish_ok(ctx, c)
    line = ivrd.wait_line(call_id(c), timeout=20)
    assert line and line.path == ("welcome > menu > agent > connecting > to_agent > "
                                  "agents_busy > goodbye > bye"), (line, ivrd.stderr_text())
    lost = [rest for _, call, k, rest in route_lines(ivrd) if k == "route attempt"]
    assert lost and "media lost after delivery: no RTP for" in lost[0], lost
    assert ivrd.stop(signal.SIGTERM) == 0


def test_a_waiting_call_escalates_ahead_of_a_later_higher_priority_one(ctx, tmp_path):
    """queue.escalate: a normal caller (500) who has waited 3 s moves to 200, ahead of a VIP
    (300) who came later; the VIP escalates too but keeps its later enqueue time."""
    _require_ivrd()
    flow = {"flow": "esc", "version": "1", "start": "hello", "nodes": {
        "hello": {"verb": "answer", "next": "wait"},
        "wait": {"verb": "enqueue", "plan": "agents",
                 "headers": {"X-Department": "esc", "X-Caller": "{{call.from}}"},
                 "queue": {"priority": "{{call.headers.x_priority == 'vip' ? 300 : 500}}",
                           "escalate": [{"after_s": 3, "priority": 200}],
                           "announce": {"say": "You are caller number {position}. "
                                               "Your wait is about {wait_minutes} minutes.",
                                        "every_s": 5}},
                 "next": "bye"},
        "bye": {"verb": "hangup", "reason": "done"}}}
    flow_path = tmp_path / "esc.json"
    flow_path.write_text(json.dumps(flow))
    pa = harness.free_port()
    desk = dialer(ctx, pa, "uas_dialer_answer.xml", calls=3, hold_ms=8000)
    routing = {"targets": {"desk": target(pa, 0)},
               "plans": {"agents": {"entries": [{"targets": ["desk"]}]}}}
    c = config(routing, flow_path)
    c["entry_points"] = {"*": "esc"}
    ivrd = harness.Ivrd(c, tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    first = caller(ctx, ivrd)
    time.sleep(1)
    normal = caller(ctx, ivrd, "normal")
    time.sleep(1)
    vip = caller(ctx, ivrd, "vip")
    for s in (first, normal, vip):
        finish_ok(ctx, s)
    finish_ok(ctx, desk, calls=3)
    lines = route_lines(ivrd)
    delivered = [call for _, call, k, _ in lines if k == "delivered"]
    assert delivered == [call_id(first), call_id(normal), call_id(vip)], lines
    queued = [(call, rest) for _, call, k, rest in lines if k == "queued"]
    assert (call_id(normal), "plan agents position 1 priority 500") in queued, queued
    assert (call_id(vip), "plan agents position 1 priority 300") in queued, queued
    assert (call_id(normal), "plan agents position 1 priority 200") in queued, queued
    assert (call_id(vip), "plan agents position 2 priority 200") in queued, queued
    # The VIP waited about 14 s: announcements every 5 s with its position (the estimate
    # exists once a call has left the queue).
    said = [l for l in ivrd.stderr_lines
            if "call %s: queue announcement: You are caller number" % call_id(vip) in l]
    assert len(said) >= 2, ivrd.stderr_text()
    assert any("number 2." in l for l in said) and any("number 1." in l for l in said), said
    assert ivrd.stop(signal.SIGTERM) == 0


def test_a_caller_who_hangs_up_while_waiting_leaves_the_queue(ctx, tmp_path):
    """The only target is busy; a second caller waits, then hangs up: it leaves the queue
    (never dialled), and a third caller who comes later gets the slot when it frees."""
    _require_ivrd()
    pa = harness.free_port()
    desk = dialer(ctx, pa, "uas_dialer_answer.xml", calls=2, hold_ms=12000)
    routing = {"targets": {"desk": target(pa, 0)},
               "plans": {"agents": {"entries": [{"targets": ["desk"]}]}}}
    ivrd = harness.Ivrd(config(routing), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    first = caller(ctx, ivrd)
    time.sleep(1)
    quitter = ctx.sipp_bg("uac_route_hangup.xml", ivrd.port, keys={"key": "3", "prio": "normal"},
                          timeout_s=60)
    finish_ok(ctx, quitter)  # queued about 2 s, then hung up
    last = caller(ctx, ivrd)
    for s in (first, last):
        finish_ok(ctx, s)
    finish_ok(ctx, desk, calls=2)
    lines = route_lines(ivrd)
    assert any(call == call_id(quitter) and k == "queued" for _, call, k, _ in lines), lines
    delivered = [call for _, call, k, _ in lines if k == "delivered"]
    assert delivered == [call_id(first), call_id(last)], lines
    line = ivrd.wait_line(call_id(quitter), timeout=10)
    assert line and line.end == "caller_hangup" and line.path.endswith("to_agent"), line
    assert ivrd.stop(signal.SIGTERM) == 0
