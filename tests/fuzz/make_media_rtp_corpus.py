#!/usr/bin/python3
"""Writes the seed corpus for tests/fuzz/fuzz_media_rtp.cpp (run once; output is committed)."""
import os
import random
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "media_rtp")


def rtp(pt, seq, ts, ssrc, payload, marker=False, first=0x80):
    return struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


def event(ev, end, duration, volume=10):
    return struct.pack("!BBH", ev, (0x80 if end else 0) | volume, duration)


def framed(datagrams):
    # The harness's second pass reads one length byte (mod 48) before each datagram.
    return b"".join(bytes([len(d)]) + d for d in datagrams)


def records(items):
    # The harness's third pass: (timestamp step in 160-unit steps, tick, 4-byte payload).
    return b"".join(struct.pack("!bB", step, tick) + payload for step, tick, payload in items)


def main():
    os.makedirs(OUT, exist_ok=True)
    rnd = random.Random(4733)
    files = {
        "pcmu_packet": rtp(0, 1, 160, 0x1234, bytes([0xFF]) * 20),
        "rfc4733_start": rtp(101, 2, 8000, 0x1234, event(5, False, 160), marker=True),
        "rfc4733_end": rtp(101, 7, 8000, 0x1234, event(5, True, 800)),
        "rtcp_sr": struct.pack("!BBHI", 0x80, 200, 6, 0x1234) + bytes(20),
        "rtcp_rr_empty": struct.pack("!BBHI", 0x80, 201, 1, 0x1234),
        "truncated_header": rtp(0, 1, 160, 0x1234, b"")[:9],
        "csrc_overflow": rtp(0, 1, 160, 0x1234, bytes(8), first=0x8F),
        "extension_overflow": rtp(0, 1, 160, 0x1234, struct.pack("!HH", 0xBEDE, 40) + bytes(4),
                                  first=0x90),
        "csrc_and_extension": rtp(0, 1, 160, 0x1234, bytes(4) + struct.pack("!HH", 0xBEDE, 1)
                                  + bytes(4) + b"\x01\x02", first=0x91),
        "bad_padding_zero": rtp(0, 1, 160, 0x1234, b"\x01\x02\x03\x00", first=0xA0),
        "bad_padding_long": rtp(0, 1, 160, 0x1234, b"\x01\x02\x03\x09", first=0xA0),
        "good_padding": rtp(0, 1, 160, 0x1234, b"\x01\x02\x00\x02", first=0xA0),
        "random_bytes": bytes(rnd.randrange(256) for _ in range(64)),
        "framed_digit": framed(
            [rtp(101, 10 + i, 16000, 7, event(9, False, 160 * (i + 1)), marker=(i == 0))
             for i in range(4)]
            + [rtp(101, 14 + i, 16000, 7, event(9, True, 800)) for i in range(3)]
            + [rtp(101, 17, 17600, 7, event(1, False, 160), marker=True)]),
        "records_lost_end": records(
            [(0, 20, event(3, False, 160)), (0, 20, event(3, False, 320)),
             (10, 21, event(4, True, 800)), (-10, 21, event(3, True, 480)),
             (20, 255, event(200, False, 160)), (0, 255, event(7, False, 160))]),
        "records_restart": records(
            [(0, 20, event(2, False, 160)), (0, 20, event(2, True, 480)),
             (-128, 20, event(6, True, 480)), (0, 20, event(6, True, 480))]),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
