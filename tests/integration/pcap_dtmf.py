"""Write (and read back) libpcap files of RTP carrying RFC 4733 DTMF events.

SIPp's play_pcap_audio replays the UDP payloads of a capture with the capture's
timing, rewriting only the UDP ports (destination = the port from the peer's SDP
plus the packet's offset from the lowest destination port in the file; source = our
-mp media port) and the IP addresses. It does not touch the RTP header, so the
payload types written here must match what the scenario's SDP offers: PCMU (0) for
audio and telephone-event on 101.

Layout of the generated stream (20 ms packets, 8 kHz clock):
  lead_ms of PCMU silence, then for every digit: telephone-event packets every
  20 ms (first one with the marker bit, duration growing by 160 per packet) for
  tone_ms, then three end packets (E bit, same final duration, same timestamp,
  increasing sequence numbers, 20 ms apart), then gap_ms of silence; tail_ms of
  silence after the last digit.

Only the Python standard library is used. The reader side (read_pcap,
decode_rtp_events) lets the tests check a generated file independently and decode
what a peer received.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
               "A": 12, "B": 13, "C": 14, "D": 15}
EVENT_CHARS = {v: k for k, v in EVENT_CODES.items()}

PCMU_SILENCE = b"\xff" * 160  # mu-law 0xFF encodes 0 (positive zero)
LINKTYPE_ETHERNET = 1


def _ip_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _ip4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def udp_frame(payload: bytes, src: str, sport: int, dst: str, dport: int,
              ident: int = 0) -> bytes:
    """An Ethernet II / IPv4 / UDP frame with correct IP and UDP checksums."""
    udp_len = 8 + len(payload)
    pseudo = _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, 17, udp_len)
    udp_nock = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    ucs = _ip_checksum(pseudo + udp_nock) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, ucs) + payload
    ip_nock = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, ident & 0xFFFF,
                          0x4000, 64, 17, 0, _ip4(src), _ip4(dst))
    ip = ip_nock[:10] + struct.pack("!H", _ip_checksum(ip_nock)) + ip_nock[12:]
    eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ip + udp


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes,
               marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F),
                       seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def event_payload(code: int, end: bool, volume: int, duration: int) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | (volume & 0x3F), duration)


def build_dtmf_rtp(digits: str, *, pt_audio: int = 0, pt_event: int = 101,
                   ssrc: int = 0x49565231, seq0: int = 4242, ts0: int = 160000,
                   lead_ms: int = 200, tone_ms: int = 160, gap_ms: int = 300,
                   tail_ms: int = 200, volume: int = 10):
    """Return [(time_seconds, rtp_bytes)] for the digit string, 20 ms pacing."""
    out = []
    seq, ts, t = seq0, ts0, 0.0
    first_audio = True

    def audio(ms):
        nonlocal seq, ts, t, first_audio
        for _ in range(ms // 20):
            out.append((t, rtp_packet(pt_audio, seq, ts, ssrc, PCMU_SILENCE,
                                       marker=first_audio)))
            first_audio = False
            seq += 1
            ts += 160
            t += 0.020

    audio(lead_ms)
    for ch in digits:
        code = EVENT_CODES[ch.upper()]
        ev_ts = ts
        n = max(1, tone_ms // 20)
        for i in range(n):
            out.append((t, rtp_packet(pt_event, seq, ev_ts, ssrc,
                                      event_payload(code, False, volume, 160 * (i + 1)),
                                      marker=(i == 0))))
            seq += 1
            t += 0.020
        for _ in range(3):
            out.append((t, rtp_packet(pt_event, seq, ev_ts, ssrc,
                                      event_payload(code, True, volume, 160 * n))))
            seq += 1
            t += 0.020
        ts = ev_ts + 160 * (n + 3)  # the media clock kept running during the event
        audio(gap_ms)
    audio(tail_ms)
    return out


DTMF_FREQS = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


def linear_to_ulaw(sample: int) -> int:
    """G.711 mu-law encoding of a 16-bit linear sample."""
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent, mask = 7, 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa)) & 0xFF


def ulaw_to_linear(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def build_inband_rtp(digits: str, *, pt_audio: int = 0, ssrc: int = 0x49565232,
                     seq0: int = 777, ts0: int = 8000, lead_ms: int = 200,
                     tone_ms: int = 120, gap_ms: int = 300, tail_ms: int = 200,
                     amplitude: float = 6000.0):
    """PCMU RTP carrying DTMF as audio tones (for ivr-hello --inband).
    amplitude is per tone in 16-bit linear units (6000 is about -8.7 dBm0 each)."""
    import math
    samples: list[int] = [0] * (lead_ms * 8)
    for ch in digits:
        lo, hi = DTMF_FREQS[ch.upper()]
        n = tone_ms * 8
        samples += [int(amplitude * (math.sin(2 * math.pi * lo * i / 8000) +
                                     math.sin(2 * math.pi * hi * i / 8000))) for i in range(n)]
        samples += [0] * (gap_ms * 8)
    samples += [0] * (tail_ms * 8)
    samples += [0] * (-len(samples) % 160)
    out = []
    for k in range(len(samples) // 160):
        frame = bytes(linear_to_ulaw(s) for s in samples[k * 160:(k + 1) * 160])
        out.append((k * 0.020, rtp_packet(pt_audio, seq0 + k, ts0 + 160 * k, ssrc, frame,
                                          marker=(k == 0))))
    return out


def goertzel_digits(samples, frame: int = 160) -> str:
    """A plain Goertzel DTMF detector (for self-checks of build_inband_rtp):
    one digit per run of frames where one row and one column tone dominate."""
    import math
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    keys = {v: k for k, v in DTMF_FREQS.items()}

    def power(block, f):
        c = 2 * math.cos(2 * math.pi * f / 8000)
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + c * s1 - s2, s1
        return s1 * s1 + s2 * s2 - c * s1 * s2

    out, prev = [], None
    for k in range(0, len(samples) - frame + 1, frame):
        block = samples[k:k + frame]
        energy = sum(x * x for x in block) * frame / 2 or 1.0
        pr = [power(block, f) for f in rows]
        pc = [power(block, f) for f in cols]
        r, c = max(range(4), key=pr.__getitem__), max(range(4), key=pc.__getitem__)
        hit = None
        if pr[r] + pc[c] > 0.5 * energy and pr[r] > 1e6 and pc[c] > 1e6:
            hit = keys[(rows[r], cols[c])]
        if hit and hit != prev:
            out.append(hit)
        prev = hit
    return "".join(out)


def write_pcap(path: str, packets, *, src=("10.1.1.1", 40000),
               dst=("10.1.1.2", 50000), start: float = 1700000000.0) -> None:
    """packets: [(time_seconds, udp_payload)] all to the same destination port."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for i, (t, payload) in enumerate(packets):
            frame = udp_frame(payload, src[0], src[1], dst[0], dst[1], ident=i)
            ts = start + t
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


def write_dtmf_pcap(path: str, digits: str, **kw) -> int:
    """Write the digit string as RFC 4733 RTP into a pcap; returns the packet count."""
    pkts = build_dtmf_rtp(digits, **kw)
    write_pcap(path, pkts)
    return len(pkts)


# ---------------------------------------------------------------- reading back

@dataclass
class UdpPacket:
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes
    udp_checksum_ok: bool
    ip_checksum_ok: bool


def read_pcap(path: str):
    """Parse a little- or big-endian microsecond libpcap file of Ethernet/IPv4/UDP."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        e = "<"
    elif magic == 0xD4C3B2A1:
        e = ">"
    else:
        raise ValueError("not a microsecond libpcap file")
    _, _, _, _, _, linktype = struct.unpack(e + "HHiIII", data[4:24])
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError("linktype %d" % linktype)
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        if incl != orig or struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        udp = ip[ihl:total]
        sport, dport, ulen, ucs = struct.unpack("!HHHH", udp[:8])
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
        out.append(UdpPacket(sec + usec / 1e6, src, sport, dst, dport, udp[8:ulen],
                             ucs == 0 or _ip_checksum(pseudo + udp[:ulen]) == 0,
                             _ip_checksum(ip[:ihl]) == 0))
    return out


@dataclass
class RtpHeader:
    pt: int
    marker: bool
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def parse_rtp(b: bytes):
    """Return an RtpHeader or None if b is not a plausible RTP v2 packet."""
    if len(b) < 12 or b[0] >> 6 != 2:
        return None
    cc = b[0] & 0x0F
    off = 12 + 4 * cc
    if len(b) < off:
        return None
    if b[0] & 0x10:  # extension
        if len(b) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", b[off + 2:off + 4])[0]
    end = len(b)
    if b[0] & 0x20:
        end -= b[-1]
    if end < off:
        return None
    seq, ts, ssrc = struct.unpack("!HII", b[2:12])
    return RtpHeader(b[1] & 0x7F, bool(b[1] & 0x80), seq, ts, ssrc, b[off:end])


def decode_rtp_events(payloads, pt_event: int = 101) -> str:
    """Digits carried by RFC 4733 packets, one per (ssrc, timestamp), in order."""
    seen, digits = set(), []
    for p in payloads:
        h = parse_rtp(p)
        if h is None or h.pt != pt_event or len(h.payload) < 4:
            continue
        key = (h.ssrc, h.ts)
        if key in seen:
            continue
        seen.add(key)
        digits.append(EVENT_CHARS.get(h.payload[0], "?"))
    return "".join(digits)


if __name__ == "__main__":  # python3 pcap_dtmf.py out.pcap 1234#
    import sys
    n = write_dtmf_pcap(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "1234#")
    print("%s: %d packets" % (sys.argv[1], n))
