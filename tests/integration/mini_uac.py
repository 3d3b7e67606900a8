"""A tiny SIP UDP caller in plain Python for the tests SIPp cannot express well
(sending arbitrary bytes to the SIP port and to the media port learned from the
200 OK). One dialog, no retransmissions of our own (loopback), answers the peer's
BYE/OPTIONS/INFO and acknowledges retransmitted 200 OKs."""

from __future__ import annotations

import queue
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported", "s": "subject"}


@dataclass
class SipMsg:
    first: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.first.startswith("SIP/2.0 ")

    @property
    def code(self) -> int:
        return int(self.first.split()[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        return "" if self.is_response else self.first.split()[0]

    def get(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def cseq(self) -> tuple[int, str]:
        n, m = (self.get("cseq") or "0 X").split()[:2]
        return int(n), m.upper()


def parse_sip(data: bytes) -> SipMsg | None:
    try:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        msg = SipMsg(lines[0], raw=data, body=body)
        for l in lines[1:]:
            if l[:1] in (" ", "\t") and msg.headers:
                k, v = msg.headers[-1]
                msg.headers[-1] = (k, v + " " + l.strip())
                continue
            k, _, v = l.partition(":")
            k = k.strip().lower()
            msg.headers.append((COMPACT.get(k, k), v.strip()))
        return msg
    except Exception:
        return None


def uri_of(nameaddr: str) -> str:
    m = re.search(r"<([^>]+)>", nameaddr)
    return m.group(1) if m else nameaddr.split(";")[0].strip()


class MiniUac:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.host = host
        self.target = (host, target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind((host, 0))
        self.media_port = self.media.getsockname()[1]
        self.call_id = "mini-%08x@%s" % (random.randrange(1 << 32), host)
        self.tag = "mt%06x" % random.randrange(1 << 24)
        self.cseq = 0
        self.remote_tag: str | None = None
        self.remote_target: str | None = None
        self.remote_media: tuple[str, int] | None = None
        self.answer: SipMsg | None = None
        self.log: list[tuple[str, str]] = []  # ("<" or ">", first line)
        self.responses: "queue.Queue[SipMsg]" = queue.Queue()
        self.requests: "queue.Queue[SipMsg]" = queue.Queue()
        self.media_rx = 0
        self.media_packets: list[tuple[float, bytes]] = []  # (monotonic time, datagram)
        self._stop = False
        self._threads = [threading.Thread(target=self._rx, daemon=True),
                         threading.Thread(target=self._media_rx, daemon=True)]
        for t in self._threads:
            t.start()

    # -- plumbing
    def close(self):
        self._stop = True
        for t in self._threads:
            t.join(2)
        self.sock.close()
        self.media.close()

    def _rx(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = parse_sip(data)
            if msg is None:
                continue
            self.log.append(("<", msg.first))
            if msg.is_response:
                if msg.code == 200 and msg.cseq[1] == "INVITE" and self.answer is not None:
                    self._send_ack(msg)  # retransmitted 2xx: ACK again
                self.responses.put(msg)
            else:
                self._auto_answer(msg)
                self.requests.put(msg)

    def _media_rx(self):
        self.media.settimeout(0.2)
        while not self._stop:
            try:
                data, _ = self.media.recvfrom(4096)
                self.media_rx += 1
                if len(self.media_packets) < 20000:
                    self.media_packets.append((time.monotonic(), data))
            except socket.timeout:
                continue
            except OSError:
                return

    def send_raw(self, data: bytes, addr=None):
        self.sock.sendto(data, addr or self.target)

    def _send(self, text: str, body: bytes = b""):
        data = text.replace("\n", "\r\n").encode() + body
        self.log.append((">", text.split("\n", 1)[0]))
        self.sock.sendto(data, self.target)

    def _auto_answer(self, req: SipMsg):
        if req.method == "ACK":
            return
        hdrs = "".join("Via: %s\n" % v for v in req.get_all("via"))
        to = req.get("to") or ""
        if "tag=" not in to:
            to += ";tag=%s" % self.tag
        self._send("SIP/2.0 200 OK\n%sFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s\n"
                   "Content-Length: 0\n\n" % (hdrs, req.get("from"), to, req.get("call-id"),
                                              req.get("cseq")))

    def _headers(self, method: str, uri: str, cseq: int, branch: str | None = None) -> str:
        to = "<sip:ivr@%s:%d>" % self.target
        if self.remote_tag:
            to += ";tag=" + self.remote_tag
        return ("%s %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;rport;branch=%s\n"
                "From: <sip:mini@%s:%d>;tag=%s\nTo: %s\nCall-ID: %s\nCSeq: %d %s\n"
                "Contact: <sip:mini@%s:%d>\nMax-Forwards: 70\n" % (
                    method, uri, self.host, self.port,
                    branch or "z9hG4bK%08x" % random.randrange(1 << 32),
                    self.host, self.port, self.tag, to, self.call_id, cseq, method,
                    self.host, self.port))

    def wait_response(self, cseq: int, method: str, timeout: float = 10.0,
                      final: bool = True, call_id: str | None = None) -> SipMsg | None:
        call_id = call_id or self.call_id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.responses.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if (m.cseq == (cseq, method) and m.get("call-id") == call_id
                    and (m.code >= 200 or not final)):
                return m
        return None

    def wait_request(self, method: str, timeout: float = 10.0) -> SipMsg | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.requests.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if m.method == method:
                return m
        return None

    # -- dialog
    def offer(self, pts=(0, 101)) -> bytes:
        rtpmap = {0: "a=rtpmap:0 PCMU/8000", 8: "a=rtpmap:8 PCMA/8000",
                  101: "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16"}
        lines = ["v=0", "o=mini 1 1 IN IP4 %s" % self.host, "s=-",
                 "c=IN IP4 %s" % self.host, "t=0 0",
                 "m=audio %d RTP/AVP %s" % (self.media_port, " ".join(map(str, pts)))]
        lines += [rtpmap[p] for p in pts if p in rtpmap]
        lines += ["a=ptime:20", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def invite(self, timeout: float = 10.0, pts=(0, 101)) -> SipMsg | None:
        self.cseq += 1
        body = self.offer(pts)
        self._send(self._headers("INVITE", "sip:ivr@%s:%d" % self.target, self.cseq) +
                   "Content-Type: application/sdp\nContent-Length: %d\n\n" % len(body), body)
        resp = self.wait_response(self.cseq, "INVITE", timeout)
        if resp is None:
            return None
        if resp.code == 200:
            to = resp.get("to") or ""
            m = re.search(r";\s*tag=([^;\s>]+)", to)
            self.remote_tag = m.group(1) if m else None
            self.remote_target = uri_of(resp.get("contact") or "") or "sip:%s:%d" % self.target
            self.answer = resp
            self._send_ack(resp)
            self.remote_media = parse_sdp_media(resp.body.decode("utf-8", "replace"))
        return resp

    def _send_ack(self, resp: SipMsg):
        n = resp.cseq[0]
        self._send(self._headers("ACK", self.remote_target or "sip:%s:%d" % self.target, n) +
                   "Content-Length: 0\n\n")

    def request(self, method: str, ctype: str | None = None, body: bytes = b"",
                timeout: float = 5.0) -> SipMsg | None:
        self.cseq += 1
        text = self._headers(method, self.remote_target or "sip:%s:%d" % self.target, self.cseq)
        if ctype:
            text += "Content-Type: %s\n" % ctype
        text += "Content-Length: %d\n\n" % len(body)
        self._send(text, body)
        return self.wait_response(self.cseq, method, timeout)

    def options_out_of_dialog(self, timeout: float = 5.0) -> SipMsg | None:
        saved = (self.call_id, self.remote_tag)
        cid = "mini-opt-%08x@%s" % (random.randrange(1 << 32), self.host)
        self.call_id, self.remote_tag = cid, None
        self.cseq += 1
        n = self.cseq
        self._send(self._headers("OPTIONS", "sip:ivr@%s:%d" % self.target, n) +
                   "Accept: application/sdp\nContent-Length: 0\n\n")
        self.call_id, self.remote_tag = saved
        return self.wait_response(n, "OPTIONS", timeout, call_id=cid)

    def send_media(self, data: bytes, rtcp: bool = False):
        assert self.remote_media
        host, port = self.remote_media
        self.media.sendto(data, (host, port + (1 if rtcp else 0)))


def parse_sdp_media(sdp: str) -> tuple[str, int] | None:
    addr = port = None
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("c=IN IP4 "):
            addr = line.split()[2]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return (addr, port) if addr and port else None
