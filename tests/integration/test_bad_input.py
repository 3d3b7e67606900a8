"""Hostile input during a call: malformed SIP datagrams to the SIP port, garbage
RTP/RTCP and bogus telephone-event packets to the media port (learned from the
200 OK SDP), bogus INFO bodies. ivr-hello must keep running, the call must still
report exactly the real digits, and SIGTERM must still give exit code 0.

The caller here is mini_uac.MiniUac (plain Python), since SIPp cannot send
arbitrary bytes to a port it learns during the call."""

from __future__ import annotations

import random
import struct
import time


import harness
import mini_uac
import pcap_dtmf


def malformed_sip(port: int, target_port: int) -> list[bytes]:
    h = "127.0.0.1"
    via = "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKbad%%d\r\n" % (h, port)
    base = ("From: <sip:bad@%s>;tag=b1\r\nTo: <sip:ivr@%s:%d>\r\nCall-ID: bad-%%d@%s\r\n"
            "Max-Forwards: 70\r\n" % (h, h, target_port, h))
    out = [
        b"",
        b"\x00",
        b"\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\n\r\n",
        b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(random.Random(1).randrange(256) for _ in range(1400)),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnope\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray@x\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        b"SIP/2.0 999999999999 WHAT\r\n\r\n",
        b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: \r\nCSeq: abc INVITE\r\n"
        b"Content-Length: -5\r\n\r\n",
        b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n" + b"X-Long: " + b"a" * 60000 + b"\r\n\r\n",
    ]
    n = 0

    def req(method, extra="", body=b"", clen=None, cseq="1"):
        nonlocal n
        n += 1
        text = ("%s sip:ivr@%s:%d SIP/2.0\r\n" % (method, h, target_port) + via % n +
                base % n + "CSeq: %s %s\r\n" % (cseq, method) + extra +
                "Content-Length: %d\r\n\r\n" % (len(body) if clen is None else clen))
        return text.encode() + body

    out += [
        req("INVITE", "Content-Type: application/sdp\r\n", b"v=0\r\nthis is not sdp\r\n"),
        req("INVITE", "Content-Type: application/sdp\r\n", b"v=0\r\nm=audio 99999999 RTP/AVP\r\n"),
        req("INVITE", "Content-Type: application/sdp\r\n", b"v=0\r\n", clen=5000),
        req("BYE"),                      # no such dialog
        req("INFO", "Content-Type: application/dtmf-relay\r\n", b"Signal=5\r\n"),  # no dialog
        req("CANCEL"),                   # nothing to cancel
        req("ACK"),
        req("NOTAMETHOD"),
        req("INVITE", cseq="99999999999999999999"),
    ]
    return out


def bogus_events(rng: random.Random) -> list[bytes]:
    """RTP packets that look like telephone-events but are not valid negotiated DTMF
    digits: each one is injected in the middle of a real digit's event, where a
    decoder that lets them touch its event state ends the real event early and then
    reports it a second time."""
    def rtp(first, second, payload):
        return struct.pack("!BBHII", first, second, rng.randrange(65536),
                           rng.randrange(1 << 32), rng.randrange(1 << 32)) + payload
    return [
        rtp(0x80, 101, b"\xc8\x8a\x00\xa0"),          # event code 200, end bit
        rtp(0x80, 101, b"\xff\x0a\x01\x40"),          # event code 255
        rtp(0x80, 101 | 0x80, b"\x64\x0a\x00\xa0"),   # event code 100, marker
        rtp(0x80, 101, b"\x05\x0a"),                  # truncated event
        rtp(0x80, 101 | 0x80, b""),                   # empty event
        rtp(0x80, 96, b"\x09\x0a\x00\xa0"),           # '9' on unnegotiated pt 96
        rtp(0x80, 102, b"\x09\x8a\x00\xa0"),          # '9' end on pt 102
        rtp(0x00, 101, b"\x05\x0a\x00\xa0"),          # RTP version 0
        rtp(0xC0, 101, b"\x05\x0a\x00\xa0"),          # version 3
        rtp(0x8F, 101, b"\x09\x0a"),                  # CC=15, too short
        rtp(0x90, 101, b"\x00\x00\xff\xff" + b"\x09\x0a\x00\xa0"),  # ext len 65535
        rtp(0xA0, 101, b"\x09\x0a\x00\xa0\xff"),      # padding 255 > length
    ]


def garbage_media(rng: random.Random) -> list[tuple[bytes, bool]]:
    """(payload, to_rtcp_port) pairs: nothing here is a valid negotiated DTMF event."""
    def rtp(first, second, payload=b"", seq=None, ts=None, ssrc=None):
        return struct.pack("!BBHII", first, second, rng.randrange(65536) if seq is None else seq,
                           rng.randrange(1 << 32) if ts is None else ts,
                           rng.randrange(1 << 32) if ssrc is None else ssrc) + payload

    out = [(b"", False), (b"\x80", False), (b"\x80\x65", False), (b"\x80" * 11, False),
           (bytes(rng.randrange(256) for _ in range(1400)), False),
           (bytes(rng.randrange(256) for _ in range(172)), False),
           (rtp(0x00, 101, b"\x05\x0a\x00\xa0"), False),          # RTP version 0
           (rtp(0xC0, 101, b"\x05\x0a\x00\xa0"), False),          # version 3
           (rtp(0x80, 101, b"\x05\x0a"), False),                  # truncated event
           (rtp(0x80, 101 | 0x80, b""), False),                   # empty event
           (rtp(0x80, 101, b"\xc8\x8a\x00\xa0"), False),          # event code 200
           (rtp(0x80, 101, b"\xff\x0a\x01\x40"), False),          # event code 255
           (rtp(0x80, 96, b"\x09\x0a\x00\xa0"), False),           # '9' on unnegotiated pt 96
           (rtp(0x80, 102, b"\x09\x8a\x00\xa0"), False),          # '9' end on pt 102
           (rtp(0x8F, 101, b"\x09\x0a"), False),                  # CC=15, too short
           (rtp(0x90, 101, b"\x00\x00\xff\xff" + b"\x09\x0a\x00\xa0"), False),  # ext len 65535
           (rtp(0xA0, 101, b"\x09\x0a\x00\xa0\xff"), False),      # padding 255 > length
           (rtp(0xA0, 0, b"\x00"), False),                        # padding count 0
           (rtp(0x80, 0, b""), False),                            # empty audio
           (rtp(0x80, 0, b"\xff" * 2000), False),                 # oversized audio
           (rtp(0x80, 127, b"\x01" * 50), False),                 # unknown payload type
           # RTCP: SR, RR, BYE, APP and a truncated one, to the RTCP and the RTP port
           (bytes.fromhex("80c8000600000001") + b"\x00" * 20, True),
           (bytes.fromhex("81c90007000000010000000200000000000000000000000000000000"), True),
           (bytes.fromhex("81cb000100000001"), True),
           (bytes.fromhex("80cc0002000000014142434400000000"), True),
           (bytes.fromhex("81c9ffff"), True),
           (bytes.fromhex("80c8000600000001") + b"\x00" * 20, False),
           (bytes.fromhex("81cb000100000001"), False),
           (b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12, False),  # STUN header
           ]
    for _ in range(40):  # random RTP-looking junk
        out.append((rtp(0x80 | rng.randrange(16), rng.randrange(256),
                        bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))), False))
    return out


def send_digits_with_junk(uac, rng, digits: str, junk, bogus=None):
    """Send the digits as RFC 4733 from the caller's media socket in real time; every
    5th audio packet is followed by a junk datagram; with bogus, after the 3rd packet
    of digit k's event the bogus packets bogus[k::len(digits)] are sent."""
    pkts = pcap_dtmf.build_dtmf_rtp(digits, lead_ms=100, gap_ms=200)
    event_ts: list[int] = []
    per_event: dict[int, int] = {}
    start = time.monotonic()
    for i, (t, data) in enumerate(pkts):
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        uac.send_media(data)
        h = pcap_dtmf.parse_rtp(data)
        if h.pt == 101:
            if h.ts not in per_event:
                event_ts.append(h.ts)
            per_event[h.ts] = per_event.get(h.ts, 0) + 1
            k = event_ts.index(h.ts)
            if bogus and per_event[h.ts] == 3:
                for b in bogus[k::len(digits)]:
                    uac.send_media(b)
        elif i % 5 == 0:
            payload, rtcp = junk[rng.randrange(len(junk))]
            uac.send_media(payload, rtcp)


def start_call(ctx, ivr) -> mini_uac.MiniUac:
    uac = mini_uac.MiniUac(ivr.port)
    resp = uac.invite()
    if resp is None or resp.code != 200 or not uac.remote_media:
        uac.close()
        raise AssertionError("INVITE: %s\n%s\nbody %r" % (resp and resp.first, uac.log,
                                                        resp and resp.body))
    ctx.note("mini UAC call", "%s media %s" % (uac.call_id, uac.remote_media))
    return uac


def test_garbage_sip_and_media_during_call(ctx):
    """Malformed SIP before and during a call, junk RTP/RTCP and bogus INFO bodies
    during it; then real RFC 4733 digits with junk between packets (but outside the
    events). The digits must be exact, the call must end normally, ivr-hello must
    still answer OPTIONS and a SIPp call, and exit 0 at SIGTERM."""
    ivr = ctx.ivr("--first-timeout", "8000", "--inter-timeout", "4000")
    rng = random.Random(4733)
    probe = mini_uac.MiniUac(ivr.port)
    try:  # malformed SIP before any call
        for d in malformed_sip(probe.port, ivr.port):
            probe.send_raw(d)
        time.sleep(0.3)
    finally:
        probe.close()
    assert ivr.alive(), "ivr-hello died on malformed SIP"

    uac = start_call(ctx, ivr)
    try:
        for d in malformed_sip(uac.port, ivr.port):
            uac.send_raw(d)
        junk = garbage_media(rng)
        for payload, rtcp in junk:
            uac.send_media(payload, rtcp)
        # bogus INFO bodies inside the dialog: whatever the answer, no digit may result
        bogus_info = [("application/dtmf-relay", b"Signal=\r\nDuration=160\r\n"),
                      ("application/dtmf-relay", b"Signal=Z\r\nDuration=160\r\n"),
                      ("application/dtmf-relay", b"Duration=160\r\n"),
                      ("application/dtmf-relay", b"\x00\xff\xfe"),
                      ("application/dtmf", b"xyz"),
                      ("application/dtmf", b""),
                      ("application/dtmf-relay", b"Signal=" + b"1" * 5000 + b"\r\n")]
        info_codes = []
        for ctype, body in bogus_info:
            r = uac.request("INFO", ctype, body)
            info_codes.append(r.code if r else None)
        ctx.note("bogus INFO answers", repr(info_codes))
        assert all(c is not None for c in info_codes), "unanswered INFO: %r" % info_codes
        assert ivr.alive(), "ivr-hello died on garbage"

        send_digits_with_junk(uac, rng, "2580#", junk)
        harness.expect_line(ivr, uac.call_id, "2580", "rfc4733", timeout=10)
        bye = uac.wait_request("BYE", timeout=20)
        assert bye is not None, "no BYE after goodbye; SIP log %r" % uac.log[-20:]
        assert ivr.alive()
        opt = uac.options_out_of_dialog()
        assert opt is not None and opt.code == 200, "OPTIONS after the garbage: %s" % (
            opt and opt.first)
    finally:
        uac.close()

    # and a normal SIPp call still works afterwards
    csv = harness.write_csv(ctx.tmp / "digits.csv", [list("1357#")])
    r = ctx.sipp("uac_info_dtmf.xml", ivr.port, inf=csv, timeout_s=30)
    harness.assert_sipp_ok(r)
    harness.expect_line(ivr, r.call_id(1), "1357", "info")
    harness.stop_and_check(ivr, [uac.call_id, r.call_id(1)])


def test_bogus_telephone_events_inside_real_digits(ctx):
    """Packets on the telephone-event payload type that are not valid DTMF (event
    codes 200/255/100 from another SSRC and timestamp, truncated, wrong version,
    unnegotiated payload types...) arrive in the middle of each real digit's event.
    The digits must come out exactly once each: a decoder that lets such a packet
    close the open event reports the real digit early and then again."""
    ivr = ctx.ivr("--first-timeout", "8000", "--inter-timeout", "4000")
    rng = random.Random(4734)
    uac = start_call(ctx, ivr)
    try:
        send_digits_with_junk(uac, rng, "2580#", garbage_media(rng), bogus_events(rng))
        # (ivr-hello's stderr in the report shows each digit as it was detected)
        harness.expect_line(ivr, uac.call_id, "2580", "rfc4733", timeout=10)
        assert uac.wait_request("BYE", timeout=20) is not None, "no BYE after goodbye"
    finally:
        uac.close()
    harness.stop_and_check(ivr, [uac.call_id])
