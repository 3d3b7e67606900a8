"""Handing calls over instead of bridging them (docs/routing.md "In the engine", docs/flows.md
"transfer"): ivrd with flows whose route step picks a target delivered by REFER or by 302,
and flows whose transfer step names the URI itself. SIPp callers accept the REFER (NOTIFY
with sipfrag 200 OK) or decline it (603, and the route fails over to a bridged dialing
system), and ack the 302."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

import harness


def _require_ivrd() -> None:
    if harness.ivrd_binary():
        return
    if os.environ.get("IVR_BUILD_DIR"):
        pytest.fail("ivrd not found under IVR_BUILD_DIR=%s" % os.environ["IVR_BUILD_DIR"])
    pytest.skip("ivrd binary not found (set IVRD or IVR_BUILD_DIR)")


def flow(name: str, nodes: dict, start: str) -> dict:
    return {"flow": name, "version": "1", "start": start, "nodes": nodes}


FLOWS = {
    "2001": flow("route_refer", {
        "r": {"verb": "route", "plan": "refer_plan", "on_failed": "sorry"},
        "sorry": {"verb": "hangup", "reason": "failed {{steps.r.error}}"}}, "r"),
    "2002": flow("route_redirect", {
        "r": {"verb": "route", "plan": "redirect_plan", "on_failed": "sorry"},
        "sorry": {"verb": "hangup", "reason": "failed {{steps.r.error}}"}}, "r"),
    "2003": flow("transfer_refer", {
        "hello": {"verb": "answer", "next": "x"},
        "x": {"verb": "transfer", "to": "sip:agent-{{call.from}}@127.0.0.1:5999",
              "method": "refer", "on_failed": "sorry"},
        "sorry": {"verb": "hangup", "reason": "failed {{steps.x.sip_status}}"}}, "hello"),
    "2004": flow("transfer_redirect", {
        "x": {"verb": "transfer", "to": "sip:voicemail@127.0.0.1:5998",
              "method": "redirect"}}, "x"),
    "2005": flow("refer_then_bridge", {
        "r": {"verb": "route", "plan": "refer_then_desk",
              "headers": {"X-Department": "desk", "X-Caller": "{{call.from}}"},
              "next": "bye", "on_failed": "sorry"},
        "bye": {"verb": "hangup", "reason": "{{steps.r.outcome}} {{steps.r.target}}"},
        "sorry": {"verb": "hangup", "reason": "failed {{steps.r.error}}"}}, "r"),
}


def routing(desk_port: int) -> dict:
    def t(uri: str, delivery: str) -> dict:
        return {"uris": [uri], "capacity": 5, "delivery": delivery, "probe": {"enabled": False}}
    return {
        "targets": {"referee": t("sip:agents@127.0.0.1:5999", "refer"),
                    "moved": t("sip:moved@127.0.0.1:5998", "redirect"),
                    "desk": t("sip:desk@127.0.0.1:%d" % desk_port, "bridge")},
        "plans": {"refer_plan": {"entries": [{"targets": ["referee"]}]},
                  "redirect_plan": {"entries": [{"targets": ["moved"]}]},
                  "refer_then_desk": {"entries": [{"strategy": "failover",
                                                   "targets": ["referee", "desk"]}]}}}


@pytest.fixture
def ivrd(ctx, tmp_path):
    _require_ivrd()
    desk = harness.free_port()
    files = []
    for number, doc in FLOWS.items():
        p = tmp_path / ("%s.json" % doc["flow"])
        p.write_text(json.dumps(doc))
        files.append({"file": str(p)})
    config = {"prompt_dir": harness.prompts_dir() or str(tmp_path), "log_level": "debug",
              "flows": files,
              "entry_points": {n: d["flow"] for n, d in FLOWS.items()},
              "routing": routing(desk)}
    d = harness.Ivrd(config, tmp_path)
    d.desk_port = desk
    ctx.ivrs.append(d)
    d.start()
    yield d
    assert d.stop(signal.SIGTERM) == 0


def run(ctx, ivrd, scenario: str, number: str, **keys) -> harness.SippResult:
    r = ctx.finish(ctx.sipp_bg(scenario, ivrd.port, extra=["-s", number], keys=keys or None,
                               timeout_s=40))
    harness.assert_sipp_ok(r)
    return r


def logs(r: harness.SippResult) -> str:
    return re.sub(r"  +", " ", r.logs)  # SIPp keeps the space after a header's colon


def end_line(ivrd, r: harness.SippResult) -> harness.FlowLine:
    line = ivrd.wait_line(r.call_id(1), timeout=15)
    assert line is not None, ivrd.stdout_text()
    return line


def test_route_delivers_by_refer(ctx, ivrd):
    r = run(ctx, ivrd, "uac_refer.xml", "2001", frag="200 OK")
    assert "refer-to <sip:agents@127.0.0.1:5999>" in logs(r), r.logs
    line = end_line(ivrd, r)
    assert (line.flow, line.end, line.path) == ("route_refer", "completed", "r"), line
    assert re.search(r"delivered target referee uri sip:agents@127\.0\.0\.1:5999",
                     ivrd.stdout_text()), ivrd.stdout_text()


def test_route_delivers_by_302_before_answer(ctx, ivrd):
    r = run(ctx, ivrd, "uac_302.xml", "2002")
    assert "redirected to <sip:moved@127.0.0.1:5998>" in logs(r), r.logs
    line = end_line(ivrd, r)
    assert (line.flow, line.path) == ("route_redirect", "r"), line


def test_transfer_step_by_refer(ctx, ivrd):
    r = run(ctx, ivrd, "uac_refer.xml", "2003", frag="200 OK")
    assert "sip:agent-sipp@127.0.0.1:5999" in r.logs, r.logs
    line = end_line(ivrd, r)
    assert (line.end, line.path) == ("completed", "hello > x"), line


def test_transfer_step_by_302(ctx, ivrd):
    r = run(ctx, ivrd, "uac_302.xml", "2004")
    assert "redirected to <sip:voicemail@127.0.0.1:5998>" in logs(r), r.logs
    assert end_line(ivrd, r).path == "x"


def test_declined_refer_fails_over_to_a_bridged_target(ctx, ivrd):
    desk = ctx.sipp_bg("uas_dialer_answer.xml", None, local_port=ivrd.desk_port, timeout_s=40,
                       extra=["-d", "500"])
    r = run(ctx, ivrd, "uac_refer.xml", "2005", frag="603 Declined")
    harness.assert_sipp_ok(ctx.finish(desk))
    line = end_line(ivrd, r)
    assert line.path == "r > bye", line
    out = ivrd.stdout_text()
    assert "route attempt 1 target referee failed: rejected: REFER 603" in out, out
    assert "delivered target desk" in out, out
