"""Self-checks of the test tools, without ivr-hello: every UAC scenario used against
ivr-hello runs here against a small SIPp UAS scenario (scenarios/uas_*.xml) that
behaves the way the spec says ivr-hello does, and the generated pcaps are decoded
both from the file and as received on a UDP socket after SIPp's play_pcap_audio.
When an ivr-hello test fails and these pass, suspect the program, not the tools."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

import harness
import mini_uac
import pcap_dtmf


class RtpSink:
    """A UDP socket standing in for a media endpoint; records every datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((harness.HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, tuple, bytes]] = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.packets.append((time.monotonic(), addr, data))

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


@pytest.fixture
def sink():
    s = RtpSink()
    yield s
    s.close()


def pair(ctx, uac: str, uas: str, *, uas_extra=(), sinkport: int = 9, uac_kw=None,
         calls: int = 1):
    """Run the UAS scenario, then the UAC scenario against it; return both results."""
    uas_port = harness.free_port()
    server = ctx.sipp_bg(uas, None, local_port=uas_port, calls=calls, timeout_s=40,
                         keys={"sinkport": sinkport}, extra=list(uas_extra))
    time.sleep(0.3)
    client = ctx.sipp(uac, uas_port, calls=calls, timeout_s=40, **(uac_kw or {}))
    srv = ctx.finish(server)
    return client, srv


def assert_ok(r: harness.SippResult, calls: int = 1):
    assert r.returncode == 0 and r.successful == calls and r.failed == 0, r.diagnostics()


def test_generated_pcap_structure(tmp_path):
    path = tmp_path / "d.pcap"
    n = pcap_dtmf.write_dtmf_pcap(str(path), "1234#")
    pkts = pcap_dtmf.read_pcap(str(path))
    assert len(pkts) == n
    assert all(p.ip_checksum_ok and p.udp_checksum_ok for p in pkts)
    assert len({p.dport for p in pkts}) == 1  # SIPp maps ports relative to the lowest
    times = [p.time - pkts[0].time for p in pkts]
    assert all(abs((b - a) - 0.020) < 1e-4 for a, b in zip(times, times[1:]))
    rtp = [pcap_dtmf.parse_rtp(p.payload) for p in pkts]
    assert [h.seq for h in rtp] == list(range(rtp[0].seq, rtp[0].seq + n))
    assert pcap_dtmf.decode_rtp_events([p.payload for p in pkts]) == "1234#"
    events = [h for h in rtp if h.pt == 101]
    by_ts: dict[int, list] = {}
    for h in events:
        by_ts.setdefault(h.ts, []).append(h)
    assert len(by_ts) == 5
    for hs in by_ts.values():
        assert hs[0].marker and not any(h.marker for h in hs[1:])
        ends = [h for h in hs if h.payload[1] & 0x80]
        assert len(ends) == 3 and hs[-3:] == ends
        durs = [int.from_bytes(h.payload[2:4], "big") for h in hs]
        assert durs[:-3] == [160 * (i + 1) for i in range(len(hs) - 3)]
        assert durs[-3:] == [durs[-4]] * 3
    audio = [h for h in rtp if h.pt == 0]
    assert all(len(h.payload) == 160 for h in audio)
    # the media clock keeps running through events
    assert audio[-1].ts - audio[0].ts == 160 * (n - 1)


@pytest.mark.skipif(not harness.is_root(), reason="play_pcap_audio needs root")
def test_rfc4733_pcap_through_sipp(ctx, sink):
    pcap = ctx.tmp / "d.pcap"
    n = pcap_dtmf.write_dtmf_pcap(str(pcap), "1234#")
    c, s = pair(ctx, "uac_rfc4733.xml", "uas_answer_bye.xml", sinkport=sink.port,
                uas_extra=["-d", "4000"], uac_kw={"keys": {"pcap": pcap}})
    assert_ok(c)
    assert_ok(s)
    time.sleep(0.3)
    got = list(sink.packets)
    assert len(got) == n, "sink got %d of %d packets" % (len(got), n)
    assert {a for _, a, _ in got} == {(harness.HOST, ctx.sipps[1].media_port)}
    assert pcap_dtmf.decode_rtp_events([d for *_, d in got]) == "1234#"
    span = got[-1][0] - got[0][0]
    assert 2.5 < span < 4.0, span  # pcap timing honoured (2.98 s in the file)


@pytest.mark.skipif(not harness.is_root(), reason="play_pcap_audio needs root")
def test_inband_pcap_through_sipp(ctx, sink):
    pcap = ctx.tmp / "inband.pcap"
    pkts = pcap_dtmf.build_inband_rtp("1234#")
    pcap_dtmf.write_pcap(str(pcap), pkts)
    c, s = pair(ctx, "uac_rfc4733.xml", "uas_answer_bye.xml", sinkport=sink.port,
                uas_extra=["-d", "3000"], uac_kw={"keys": {"pcap": pcap}})
    assert_ok(c)
    time.sleep(0.3)
    samples = []
    for *_, d in sink.packets:
        h = pcap_dtmf.parse_rtp(d)
        samples += [pcap_dtmf.ulaw_to_linear(x) for x in h.payload]
    assert len(sink.packets) == len(pkts)
    assert pcap_dtmf.goertzel_digits(samples) == "1234#"


@pytest.mark.parametrize("scenario,ctype,body", [
    ("uac_info_relay.xml", "application/dtmf-relay", "Signal={d}\r\nDuration=160\r\n"),
    ("uac_info_dtmf.xml", "application/dtmf", "{d}\r\n"),
])
def test_info_scenarios(ctx, scenario, ctype, body):
    csv = harness.write_csv(ctx.tmp / "d.csv", [list("5097#")])
    c, s = pair(ctx, scenario, "uas_answer_bye.xml", uas_extra=["-d", "2500", "-aa"],
                uac_kw={"inf": csv})
    assert_ok(c)
    assert_ok(s)
    raw = c.messages_raw.decode()
    infos = re.findall(r"INFO sip:[^\r\n]*\r\n(.*?)\r\n\r\n(.*?)\r?\n?-{20,}", raw, re.S)
    assert len(infos) == 5, raw[-3000:]
    for (headers, got_body), d in zip(infos, "5097#"):
        assert "Content-Type: %s" % ctype in headers
        want = body.format(d=d)
        assert got_body.startswith(want.rstrip("\r\n"))
        clen = int(re.search(r"Content-Length:\s*(\d+)", headers).group(1))
        # SIPp appends CRLF to the body and counts it
        assert clen == len(got_body) or clen == len(got_body.rstrip("\n")), (clen, got_body)
    assert re.search(r"call %s digits 5097" % re.escape(c.call_id(1)), c.logs)


def test_cancel_scenario(ctx):
    c, s = pair(ctx, "uac_cancel.xml", "uas_cancel.xml")
    assert_ok(c)
    assert_ok(s)
    sent = c.sent_messages()
    inv = next(m for m in sent if m.startswith("INVITE"))
    can = next(m for m in sent if m.startswith("CANCEL"))
    ack = next(m for m in sent if m.startswith("ACK"))
    branch = re.search(r"branch=([^;\s]+)", inv).group(1)
    assert re.search(r"branch=([^;\s]+)", can).group(1) == branch
    assert re.search(r"branch=([^;\s]+)", ack).group(1) == branch


def test_488_scenario(ctx):
    c, s = pair(ctx, "uac_488.xml", "uas_488.xml")
    assert_ok(c)
    assert_ok(s)
    inv = next(m for m in c.sent_messages() if m.startswith("INVITE"))
    assert harness.sdp_media(inv)[2] == ["18"]


def test_options_scenario(ctx):
    c, s = pair(ctx, "uac_options.xml", "uas_options.xml")
    assert_ok(c)
    assert_ok(s)


def test_bye_early_scenario(ctx):
    c, s = pair(ctx, "uac_bye_early.xml", "uas_answer_wait_bye.xml")
    assert_ok(c)
    assert_ok(s)


def pair_keys(ctx, uac, uas, keys, **kw):
    uas_port = harness.free_port()
    server = ctx.sipp_bg(uas, None, local_port=uas_port, timeout_s=40, keys=keys,
                         extra=list(kw.pop("uas_extra", ())))
    time.sleep(0.3)
    client = ctx.sipp(uac, uas_port, timeout_s=40, **kw)
    return client, ctx.finish(server)


def test_hold_scenario(ctx):
    csv = harness.write_csv(ctx.tmp / "d.csv", [list("7777#")])
    c, s = pair_keys(ctx, "uac_hold.xml", "uas_hold.xml",
                     {"sinkport": 9, "holddir": "a=recvonly"},
                     uas_extra=["-d", "2000", "-aa"], inf=csv)
    assert_ok(c)
    assert_ok(s)
    invites = [m for m in c.sent_messages() if m.startswith("INVITE")]
    assert len(invites) == 5
    assert "a=sendonly" in invites[1] and "c=IN IP4 0.0.0.0" in invites[3]
    # the scenario's ACKs carry literal CSeq numbers 1..5: keep them in step
    assert [int(re.search(r"^CSeq: (\d+) INVITE", m, re.M).group(1)) for m in invites] == \
        [1, 2, 3, 4, 5]
    assert len(re.findall(r"hold answer a=recvonly", c.logs)) == 2


def test_hold_scenario_rejects_sendrecv_hold_answer(ctx):
    """Negative control: the hold check really fails when the answer is not recvonly."""
    csv = harness.write_csv(ctx.tmp / "d.csv", [list("7777#")])
    c, _ = pair_keys(ctx, "uac_hold.xml", "uas_hold.xml",
                     {"sinkport": 9, "holddir": "a=sendrecv"},
                     uas_extra=["-d", "500", "-aa"], inf=csv)
    assert c.returncode != 0 and c.failed == 1, c.diagnostics()


def test_info_415_scenario(ctx):
    csv = harness.write_csv(ctx.tmp / "d.csv", [list("4711#")])
    c, s = pair(ctx, "uac_info_415.xml", "uas_info_415.xml", uac_kw={"inf": csv})
    assert_ok(c)
    assert_ok(s)


def test_wait_bye_scenario_checks_reason(ctx):
    c, s = pair(ctx, "uac_wait_bye_reason.xml", "uas_answer_bye.xml", uas_extra=["-d", "500"])
    assert_ok(c)
    assert re.search(r"bye-reason\s+Q\.850;cause=16", c.logs), c.logs


def test_parallel_correlation_by_log(ctx):
    rows = [list("%04d" % (i * 7919 % 10000)) + ["#"] for i in range(50)]
    csv = harness.write_csv(ctx.tmp / "d.csv", rows)
    c, s = pair(ctx, "uac_info_relay.xml", "uas_answer_bye.xml",
                uas_extra=["-d", "2500", "-aa"], calls=50,
                uac_kw={"inf": csv, "rate": 100, "limit": 50})
    assert_ok(c, 50)
    logged = dict(re.findall(r"^call (\S+) digits (\S+)$", c.logs, re.M))
    assert len(logged) == 50
    assert sorted(logged.values()) == sorted("".join(r[:4]) for r in rows)
    assert set(logged) == {c.call_id(n) for n in range(1, 51)}


def test_mini_uac_against_sipp_uas(ctx):
    """The Python caller of test_bad_input: INVITE/200/ACK, INFO, media to the port from
    the SDP, answering the peer's BYE."""
    uas_port = harness.free_port()
    uac = mini_uac.MiniUac(uas_port)
    try:
        sink = RtpSink()
        server = ctx.sipp_bg("uas_answer_bye.xml", None, local_port=uas_port, timeout_s=20,
                             keys={"sinkport": sink.port}, extra=["-d", "1500", "-aa"])
        time.sleep(0.3)
        resp = uac.invite()
        assert resp is not None and resp.code == 200, uac.log
        assert uac.remote_media == (harness.HOST, sink.port)
        r = uac.request("INFO", "application/dtmf-relay", b"Signal=1\r\nDuration=160\r\n")
        assert r is not None and r.code == 200, uac.log
        for t, data in pcap_dtmf.build_dtmf_rtp("42#", lead_ms=0, gap_ms=20, tail_ms=0):
            uac.send_media(data)
        assert uac.wait_request("BYE", timeout=10) is not None, uac.log
        res = ctx.finish(server)
        assert_ok(res)
        time.sleep(0.2)
        assert pcap_dtmf.decode_rtp_events([d for *_, d in sink.packets]) == "42#"
        sink.close()
    finally:
        uac.close()


def test_late_invite_200_is_reacked_not_mistaken(ctx):
    """The UAS re-sends the INVITE's 200 while the caller sends INFOs: SIPp must re-ACK
    it (CSeq 1) and still match each INFO's own 200 (named transactions). The UAS runs
    with -nr: otherwise SIPp takes the identical re-ACK for a retransmission of the
    first ACK and answers it by re-sending the 200 again, forever."""
    csv = harness.write_csv(ctx.tmp / "d.csv", [list("1234#")])
    c, s = pair(ctx, "uac_info_relay.xml", "uas_answer_retrans.xml",
                uas_extra=["-d", "1500", "-aa", "-nr"], uac_kw={"inf": csv})
    assert_ok(c)
    assert_ok(s)
    acks = [m for m in c.sent_messages() if m.startswith("ACK")]
    assert len(acks) >= 3, "the late 200s were not re-ACKed: %d ACKs" % len(acks)
    assert all(re.search(r"^CSeq: 1 ACK$", a, re.M) for a in acks)
    infos = [m for m in c.sent_messages() if m.startswith("INFO")]
    assert len(infos) == 5
