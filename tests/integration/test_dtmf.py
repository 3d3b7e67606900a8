"""DTMF collection by ivr-hello from SIPp callers: RFC 4733 events from a generated
pcap, SIP INFO (application/dtmf-relay and application/dtmf), inband tones."""

from __future__ import annotations

import re

import pytest

import time

import harness
import mini_uac
import pcap_dtmf

need_root = pytest.mark.skipif(not harness.is_root(),
                               reason="SIPp's play_pcap_audio needs raw sockets (root)")


def check_answer_and_bye(r: harness.SippResult):
    ok = harness.first_response(r, 200, "INVITE")
    assert ok is not None, "no 200 OK for the INVITE\n" + r.diagnostics()
    addr, port, pts = harness.sdp_media(ok)
    assert addr == harness.HOST and port, "200 OK SDP without usable c=/m=: %s" % ok
    assert pts and pts[0] == "0", "PCMU offered first must be chosen first: m= payloads %s" % pts
    assert "101" in pts, "telephone-event 101 missing from the answer: %s" % pts
    byes = harness.received_requests(r, "BYE")
    assert byes, "ivr-hello sent no BYE\n" + r.diagnostics()
    return ok


@need_root
def test_rfc4733_digits_from_pcap(ctx):
    ivr = ctx.ivr()
    pcap = ctx.tmp / "dtmf_1234_pound.pcap"
    pcap_dtmf.write_dtmf_pcap(str(pcap), "1234#")
    r = ctx.sipp("uac_rfc4733.xml", ivr.port, keys={"pcap": pcap}, timeout_s=40)
    harness.assert_sipp_ok(r)
    ok = check_answer_and_bye(r)
    _, port, _ = harness.sdp_media(ok)
    assert ivr.rtp_min <= port <= ivr.rtp_max, "RTP port %d outside --rtp-ports %d-%d" % (
        port, ivr.rtp_min, ivr.rtp_max)
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "1234", "rfc4733")
    harness.stop_and_check(ivr, [cid])


@need_root
def test_inband_digits_from_pcap(ctx):
    ivr = ctx.ivr("--inband")
    pcap = ctx.tmp / "inband_1234_pound.pcap"
    pcap_dtmf.write_pcap(str(pcap), pcap_dtmf.build_inband_rtp("1234#"))
    r = ctx.sipp("uac_rfc4733.xml", ivr.port, keys={"pcap": pcap}, timeout_s=40)
    harness.assert_sipp_ok(r)
    check_answer_and_bye(r)
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "1234", "inband")
    harness.stop_and_check(ivr, [cid])


@pytest.mark.parametrize("scenario,digits", [
    ("uac_info_relay.xml", "5097"),
    ("uac_info_dtmf.xml", "8603"),
], ids=["dtmf-relay", "dtmf"])
def test_info_digits(ctx, scenario, digits):
    ivr = ctx.ivr()
    csv = harness.write_csv(ctx.tmp / "digits.csv", [list(digits) + ["#"]])
    r = ctx.sipp(scenario, ivr.port, inf=csv, timeout_s=40)
    harness.assert_sipp_ok(r)
    check_answer_and_bye(r)
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, digits, "info")
    harness.stop_and_check(ivr, [cid])


def test_no_digits_times_out_with_source_none(ctx):
    """No digit at all: the first-digit timeout (after the prompt) ends collection,
    the line says `digits  source none`, then goodbye and BYE."""
    ivr = ctx.ivr("--first-timeout", "500")
    prompt_s = harness.wav_seconds(ivr.prompts, "welcome.wav")
    t0 = time.monotonic()
    r = ctx.sipp("uac_wait_bye.xml", ivr.port, timeout_s=40)
    harness.assert_sipp_ok(r)
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "", "none")
    t_line = next(t for t, l in ivr.stdout_lines if cid in l)
    # the first-digit timeout starts when the prompt ends
    assert t_line - t0 >= prompt_s + 0.3, "line %.2f s after the call started, but " \
        "welcome.wav lasts %.2f s and the first-digit timeout is 0.5 s" % (t_line - t0, prompt_s)
    assert re.search(r"bye-reason", r.logs), r.logs
    harness.stop_and_check(ivr, [cid])


@pytest.mark.parametrize("offer,codec", [((0, 8, 101), 0), ((8, 0, 101), 8)],
                         ids=["PCMU-first", "PCMA-first"])
def test_prompt_rtp_follows_offer_order(ctx, offer, codec):
    """The answer keeps the offer's codec order and the welcome prompt arrives as
    20 ms RTP packets of that codec (a Python caller records them), then the caller
    hangs up: one line with no digits."""
    ivr = ctx.ivr()
    uac = mini_uac.MiniUac(ivr.port)
    try:
        resp = uac.invite(pts=offer)
        assert resp is not None and resp.code == 200, uac.log
        m = re.search(r"^m=audio \d+ RTP/AVP ([\d ]+)", resp.body.decode(), re.M)
        assert m, resp.body
        pts = m.group(1).split()
        assert pts[0] == str(codec), "answer m= line %r for offer %r" % (m.group(0), offer)
        time.sleep(1.5)
        r = uac.request("BYE")
        assert r is not None and r.code == 200, uac.log
        time.sleep(0.1)
        pkts = [(t, pcap_dtmf.parse_rtp(d)) for t, d in uac.media_packets]
    finally:
        uac.close()
    harness.expect_line(ivr, uac.call_id, "", "none", timeout=3)
    assert len(pkts) >= 40, "only %d RTP packets in 1.5 s of prompt" % len(pkts)
    assert all(h is not None for _, h in pkts), "non-RTP datagrams on the media port"
    hs = [h for _, h in pkts]
    assert {h.pt for h in hs} == {codec}, "payload types %s" % {h.pt for h in hs}
    assert {len(h.payload) for h in hs} == {160}, "frame sizes %s" % {len(h.payload) for h in hs}
    assert len({h.ssrc for h in hs}) == 1
    for a, b in zip(hs, hs[1:]):
        assert (b.seq - a.seq) & 0xFFFF == 1 and (b.ts - a.ts) & 0xFFFFFFFF == 160, (a, b)
    span = pkts[-1][0] - pkts[0][0]
    rate = (len(pkts) - 1) / span if span > 0 else 0
    assert 40 <= rate <= 60, "%.1f packets/s (want about 50)" % rate
    silence = 0xFF if codec == 0 else 0xD5
    assert any(any(x not in (silence, silence ^ 0x80) for x in h.payload) for h in hs), \
        "the prompt is all silence"
    harness.stop_and_check(ivr, [uac.call_id])


def _info(uac, digit: str, ctype: str = "application/dtmf-relay"):
    body = ("Signal=%s\r\nDuration=160\r\n" % digit if ctype.endswith("relay") else digit)
    r = uac.request("INFO", ctype, body.encode())
    assert r is not None and r.code == 200, "INFO %s: %s" % (digit, r and r.first)


def _call(ctx, ivr) -> mini_uac.MiniUac:
    uac = mini_uac.MiniUac(ivr.port)
    resp = uac.invite()
    assert resp is not None and resp.code == 200, uac.log
    return uac


def test_inter_digit_timeout_ends_collection(ctx):
    ivr = ctx.ivr("--inter-timeout", "800")
    uac = _call(ctx, ivr)
    try:
        _info(uac, "1")
        _info(uac, "2")
        t_last = time.monotonic()
        harness.expect_line(ivr, uac.call_id, "12", "info", timeout=8)
        t_line = next(t for t, l in ivr.stdout_lines if uac.call_id in l)
        assert t_line - t_last >= 0.6, "line %.2f s after the last digit, before the " \
            "800 ms inter-digit timeout" % (t_line - t_last)
        assert uac.wait_request("BYE", timeout=15) is not None, "no BYE after goodbye"
    finally:
        uac.close()
    harness.stop_and_check(ivr, [uac.call_id])


def test_at_most_eight_digits(ctx):
    ivr = ctx.ivr()
    uac = _call(ctx, ivr)
    try:
        for d in "123456789":
            _info(uac, d)
        harness.expect_line(ivr, uac.call_id, "12345678", "info", timeout=8)
        # a '#' after the eighth digit changes nothing (the line is already out)
        assert uac.request("INFO", "application/dtmf-relay", b"Signal=#\r\nDuration=160\r\n")
        assert uac.wait_request("BYE", timeout=15) is not None, "no BYE after goodbye"
    finally:
        uac.close()
    harness.stop_and_check(ivr, [uac.call_id])


def test_source_is_that_of_the_first_digit(ctx):
    """INFO '1', then RFC 4733 '2' and '#': digits 12, source info."""
    ivr = ctx.ivr()
    uac = _call(ctx, ivr)
    try:
        _info(uac, "1")
        start = time.monotonic()
        for t, data in pcap_dtmf.build_dtmf_rtp("2#", lead_ms=100, gap_ms=200):
            delay = start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            uac.send_media(data)
        harness.expect_line(ivr, uac.call_id, "12", "info", timeout=8)
        assert uac.wait_request("BYE", timeout=15) is not None, "no BYE after goodbye"
    finally:
        uac.close()
    harness.stop_and_check(ivr, [uac.call_id])


def _peak(payload: bytes) -> int:
    return max((abs(pcap_dtmf.ulaw_to_linear(x)) for x in payload), default=0)


def test_first_digit_barges_in(ctx):
    """Speech arrives until the first digit; from shortly after it until the
    collection ends (no '#', 3 s inter-digit timeout) the prompt is silent."""
    ivr = ctx.ivr()
    uac = _call(ctx, ivr)
    try:
        time.sleep(1.5)
        t_digit = time.monotonic()
        _info(uac, "7")
        time.sleep(1.7)
        pkts = list(uac.media_packets)
        uac.request("BYE")
    finally:
        uac.close()
    harness.expect_line(ivr, uac.call_id, "7", "info", timeout=3)
    before = [pcap_dtmf.parse_rtp(d) for t, d in pkts if t < t_digit]
    after = [pcap_dtmf.parse_rtp(d) for t, d in pkts if t_digit + 0.3 < t]
    assert before and max(_peak(h.payload) for h in before) > 1000, \
        "no speech from the welcome prompt before the digit"
    loud = [h.seq for h in after if _peak(h.payload) > 300]
    assert not loud, "prompt audio still playing after the first digit (%d loud packets " \
        "from 0.3 s after it)" % len(loud)
    harness.stop_and_check(ivr, [uac.call_id])
