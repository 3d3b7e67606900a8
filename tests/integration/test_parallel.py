"""Many simultaneous calls, each with its own digits: ivr-hello must print one line
per call with that call's digits. SIPp takes each call's digits from an injection
file (one line per call, SEQUENTIAL) and writes "call <Call-ID> digits <d>" with a
<log> action, so the expected digits are matched by Call-ID, not by call order."""

from __future__ import annotations

import random
import re

import pytest

import harness
import pcap_dtmf

CALLS = 50


def test_50_parallel_calls_info_digits(ctx):
    ivr = ctx.ivr(rtp_ports=2 * CALLS + 100)
    rng = random.Random(20240607)
    rows = []
    for _ in range(CALLS):
        d = "".join(rng.choice("0123456789") for _ in range(4))
        rows.append(list(d) + ["#"])
    csv = harness.write_csv(ctx.tmp / "digits.csv", rows)
    # all 50 calls start within 0.5 s and each lasts > 2.5 s: they all overlap
    r = ctx.sipp("uac_info_relay.xml", ivr.port, inf=csv, calls=CALLS, rate=100,
                 limit=CALLS, timeout_s=90, trace_msg=False)
    harness.assert_sipp_ok(r, CALLS)
    logged = dict(re.findall(r"^call (\S+) digits (\S+)$", r.logs, re.M))
    assert len(logged) == CALLS, "SIPp logged %d calls: %s" % (len(logged), r.logs[-2000:])
    assert set(logged) == {r.call_id(n) for n in range(1, CALLS + 1)}
    got = ivr.wait_lines(logged.keys(), timeout=15)
    missing = sorted(set(logged) - set(got))
    assert not missing, "no line for %d calls, e.g. %s" % (len(missing), missing[:5])
    wrong = {cid: (want, got[cid].digits, got[cid].source) for cid, want in logged.items()
             if (got[cid].digits, got[cid].source) != (want, "info")}
    assert not wrong, "%d calls with wrong digits/source (want, got, source): %r" % (
        len(wrong), dict(list(wrong.items())[:10]))
    harness.stop_and_check(ivr, list(logged))


@pytest.mark.skipif(not harness.is_root(), reason="play_pcap_audio needs root")
def test_20_parallel_calls_rfc4733(ctx):
    """The same RFC 4733 pcap played into 20 simultaneous calls (SIPp cannot choose a
    pcap per call): every call must report 1234 from rfc4733."""
    n = 20
    ivr = ctx.ivr(rtp_ports=2 * n + 100)
    pcap = ctx.tmp / "dtmf_1234_pound.pcap"
    pcap_dtmf.write_dtmf_pcap(str(pcap), "1234#")
    r = ctx.sipp("uac_rfc4733.xml", ivr.port, keys={"pcap": pcap}, calls=n, rate=100,
                 limit=n, timeout_s=60, trace_msg=False)
    harness.assert_sipp_ok(r, n)
    cids = [r.call_id(i) for i in range(1, n + 1)]
    got = ivr.wait_lines(cids, timeout=15)
    missing = [c for c in cids if c not in got]
    assert not missing, "no line for %d calls, e.g. %s" % (len(missing), missing[:5])
    wrong = {c: got[c].raw for c in cids if (got[c].digits, got[c].source) != ("1234", "rfc4733")}
    assert not wrong, "calls with wrong result: %r" % wrong
    harness.stop_and_check(ivr, cids)
