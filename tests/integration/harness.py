"""Shared machinery of the SIPp integration tests for ivr-hello.

- free loopback ports (SIP, RTP ranges, SIPp media ports),
- IvrHello: start the program, wait for its "listening" line, collect its stdout
  result lines and its stderr log, stop it with a signal and return its exit code,
- Sipp / run_sipp: run SIPp 3.6.1 in the foreground (-nostdin; -bg does not work
  here) with every trace file in a per-run directory, bounded by -timeout and by a
  process timeout, and parse its statistics,
- parse_result_line: the `call <Call-ID> digits <digits> source <source>` lines,
- Ivrd / parse_flow_line: the same for ivrd (examples/ivrd) and its
  `call <Call-ID> flow <id> version <v> end <end> path <path>` lines.

Only Debian's /usr/bin/python3 standard library is used.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
SIPP = os.environ.get("SIPP", "/usr/bin/sipp")
HOST = "127.0.0.1"

# --------------------------------------------------------------------- ports

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def _udp_free(port: int, host: str = HOST) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _tcp_free(port: int, host: str = HOST) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def udp_port_bound(port: int, host: str = HOST) -> bool:
    """True once something (the program under test) has bound the UDP port."""
    return not _udp_free(port, host)


def free_port(host: str = HOST) -> int:
    """A port free for both UDP and TCP (Sofia binds both unless told otherwise),
    found by binding port 0 and closing again."""
    with _port_lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            port = s.getsockname()[1]
            s.close()
            if port in _handed_out or not _tcp_free(port, host):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def free_port_block(n: int, host: str = HOST, lo: int = 20000, hi: int = 60000) -> int:
    """Base of n consecutive UDP ports that are all free (base even)."""
    with _port_lock:
        for _ in range(500):
            base = random.randrange(lo, hi - n) & ~1
            ports = range(base, base + n)
            if any(p in _handed_out for p in ports):
                continue
            if all(_udp_free(p, host) for p in ports):
                _handed_out.update(ports)
                return base
    raise RuntimeError("no free port block of %d" % n)


# ------------------------------------------------------------- result lines

LINE_RE = re.compile(
    r"^call (?P<call_id>\S+) digits (?P<digits>[0-9A-D*#]*) source "
    r"(?P<source>rfc4733|info|inband|none)$")


@dataclass(frozen=True)
class CallLine:
    call_id: str
    digits: str
    source: str
    raw: str


def parse_result_line(line: str) -> CallLine | None:
    m = LINE_RE.match(line.rstrip("\r\n"))
    if not m:
        return None
    return CallLine(m["call_id"], m["digits"], m["source"], line.rstrip("\r\n"))


# ------------------------------------------------------------------ ivr-hello

def hello_binary() -> str | None:
    p = os.environ.get("IVR_HELLO")
    if p and os.access(p, os.X_OK):
        return p
    build = os.environ.get("IVR_BUILD_DIR")
    roots = [Path(build)] if build else []
    roots += [HERE.parents[1] / "build", HERE.parents[2] / "build"]
    for root in roots:
        for cand in (root / "examples" / "embed-c" / "ivr-hello", root / "ivr-hello"):
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
    return None


def prompts_dir() -> str | None:
    p = os.environ.get("IVR_PROMPTS")
    if p:
        return p
    b = hello_binary()
    build = os.environ.get("IVR_BUILD_DIR")
    for cand in ([Path(build) / "prompts"] if build else []) + (
            [Path(b).parents[i] / "prompts" for i in range(3)] if b else []):
        if (cand / "welcome.wav").is_file():
            return str(cand)
    return None


class IvrHello:
    """One ivr-hello process on a free loopback SIP port and RTP range."""

    name = "ivr-hello"  # prints "<name> listening on sip:HOST:PORT" on stderr when ready

    @staticmethod
    def parse_line(line: str):
        return parse_result_line(line)

    def __init__(self, *extra_args: str, log_level: str | None = None,
                 rtp_ports: int = 200, prompts: str | None = None):
        self.binary = hello_binary()
        if not self.binary:
            raise RuntimeError("ivr-hello binary not found (set IVR_HELLO)")
        self.port = free_port()
        self.rtp_min = free_port_block(rtp_ports)
        self.rtp_max = self.rtp_min + rtp_ports - 1
        self.prompts = prompts or prompts_dir()
        self.log_level = log_level or os.environ.get("IVR_TEST_LOG_LEVEL", "info")
        self.args = [self.binary, "--listen", "%s:%d" % (HOST, self.port),
                     "--rtp-ports", "%d-%d" % (self.rtp_min, self.rtp_max),
                     "--log-level", self.log_level]
        if self.prompts:
            self.args += ["--prompts", self.prompts]
        self.args += list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.stdout_lines: list[tuple[float, str]] = []
        self.stderr_lines: list[str] = []
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.ready_line: str | None = None
        self.returncode: int | None = None
        self.started_at = 0.0

    # -- lifecycle
    def start(self, ready_timeout: float = 15.0) -> "IvrHello":
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace", bufsize=1)
        for stream, sink in ((self.proc.stdout, self.stdout_lines),
                             (self.proc.stderr, self.stderr_lines)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        want = "%s listening on sip:%s:%d" % (self.name, HOST, self.port)
        deadline = time.monotonic() + ready_timeout
        with self._cv:
            while True:
                for line in self.stderr_lines:
                    if want in line:
                        self.ready_line = line
                        return self
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.2))
        rc = self.proc.poll()
        self.kill()
        raise RuntimeError("%s did not print %r within %.0f s (exit code %s)\n"
                           "command: %s\nstderr:\n%s" % (self.name, want, ready_timeout, rc,
                                                       " ".join(self.args), self.stderr_text()))

    def _pump(self, stream, sink):
        for line in stream:
            with self._cv:
                if sink is self.stdout_lines:
                    sink.append((time.monotonic(), line.rstrip("\n")))
                else:
                    sink.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send sig, wait for the exit, return the exit code (None if it had to be
        killed: the caller should treat that as a failure)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stderr_lines.append("[harness] no exit %.0f s after signal %d: killed"
                                         % (timeout, sig))
                self.proc.kill()
                self.proc.wait(5)
                self._join()
                self.returncode = None
                return None
        self._join()
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._join()

    def _join(self):
        for t in self._threads:
            t.join(5)

    # -- output
    def stderr_text(self, tail: int = 400) -> str:
        with self._cv:
            lines = list(self.stderr_lines)
        if len(lines) > tail:
            lines = ["[... %d earlier lines]" % (len(lines) - tail)] + lines[-tail:]
        return "\n".join(lines)

    def stdout_text(self) -> str:
        with self._cv:
            return "\n".join(l for _, l in self.stdout_lines)

    def lines(self) -> list[CallLine]:
        with self._cv:
            raw = [l for _, l in self.stdout_lines]
        return [c for c in (self.parse_line(l) for l in raw) if c]

    def bad_stdout_lines(self) -> list[str]:
        with self._cv:
            raw = [l for _, l in self.stdout_lines]
        return [l for l in raw if self.parse_line(l) is None]

    def lines_for(self, call_id: str) -> list[CallLine]:
        return [c for c in self.lines() if c.call_id == call_id]

    def wait_line(self, call_id: str, timeout: float = 10.0) -> CallLine | None:
        return self.wait_lines([call_id], timeout).get(call_id)

    def wait_lines(self, call_ids, timeout: float = 10.0) -> dict[str, CallLine]:
        want = set(call_ids)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = {}
                for _, l in self.stdout_lines:
                    c = self.parse_line(l)
                    if c and c.call_id in want and c.call_id not in got:
                        got[c.call_id] = c
                if len(got) == len(want):
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None
                                 and all(not t.is_alive() for t in self._threads)):
                    return got
                self._cv.wait(min(left, 0.2))

    def wait_stderr(self, pattern: str, timeout: float = 10.0) -> str | None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for l in self.stderr_lines:
                    if rx.search(l):
                        return l
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))


# ----------------------------------------------------------------------- ivrd

FLOW_LINE_RE = re.compile(
    r"^call (?P<call_id>\S+) flow (?:(?P<flow>[^\s-]\S*) version (?P<version>\S+) "
    r"end (?P<flow_end>\S+) path (?P<path>\S.*)|- end (?P<end_reason>\S+))$")


@dataclass(frozen=True)
class FlowLine:
    """ivrd's line for one call: flow "-" (and end = the call's end reason) when no
    flow took the call."""
    call_id: str
    flow: str
    version: str
    end: str
    path: str
    raw: str


def parse_flow_line(line: str) -> FlowLine | None:
    m = FLOW_LINE_RE.match(line.rstrip("\r\n"))
    if not m:
        return None
    if m["flow"]:
        return FlowLine(m["call_id"], m["flow"], m["version"], m["flow_end"], m["path"],
                        line.rstrip("\r\n"))
    return FlowLine(m["call_id"], "-", "", m["end_reason"], "", line.rstrip("\r\n"))


def ivrd_binary() -> str | None:
    p = os.environ.get("IVRD")
    if p and os.access(p, os.X_OK):
        return p
    build = os.environ.get("IVR_BUILD_DIR")
    roots = [Path(build)] if build else []
    roots += [HERE.parents[1] / "build", HERE.parents[2] / "build"]
    for root in roots:
        cand = root / "examples" / "ivrd" / "ivrd"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


class Ivrd(IvrHello):
    """One ivrd process. The test's configuration (a dict, as in examples/ivrd/demo.json)
    is written to workdir with a free loopback SIP port and RTP range filled in (unless
    given); stdout lines are ivrd's per-call lines (FlowLine)."""

    name = "ivrd"

    @staticmethod
    def parse_line(line: str):
        return parse_flow_line(line)

    def __init__(self, config: dict, workdir: Path, *extra_args: str,
                 rtp_ports: int = 200, binary: str | None = None):
        self.binary = binary or ivrd_binary()
        if not self.binary:
            raise RuntimeError("ivrd binary not found (set IVRD or IVR_BUILD_DIR)")
        config = json.loads(json.dumps(config))  # a copy the caller's dict does not see
        sip = config.setdefault("sip", {})
        sip.setdefault("address", HOST)
        if "port" not in sip:
            sip["port"] = free_port()
        rtp = config.setdefault("rtp", {})
        if "port_min" not in rtp:
            rtp["port_min"] = free_port_block(rtp_ports)
            rtp["port_max"] = rtp["port_min"] + rtp_ports - 1
        self.config = config
        self.port = int(sip["port"])
        self.rtp_min, self.rtp_max = rtp["port_min"], rtp["port_max"]
        self.prompts = config.get("prompt_dir")
        self.log_level = config.get("log_level", "info")
        global _ivrd_counter
        _ivrd_counter += 1
        self.config_path = Path(workdir) / ("ivrd-%02d.json" % _ivrd_counter)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")
        self.args = [self.binary, "--config", str(self.config_path)] + list(extra_args)
        self.proc = None
        self.stdout_lines = []
        self.stderr_lines = []
        self._cv = threading.Condition()
        self._threads = []
        self.ready_line = None
        self.returncode = None
        self.started_at = 0.0


_ivrd_counter = 0


# ---------------------------------------------------------------------- SIPp

@dataclass
class SippResult:
    returncode: int | None
    workdir: Path
    cid_prefix: str
    stats: dict = field(default_factory=dict)
    timed_out: bool = False

    def _read(self, name: str) -> str:
        p = self.workdir / name
        try:
            return p.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def errors(self) -> str:
        return self._read("errors.log")

    @property
    def messages(self) -> str:
        return self._read("messages.log")

    @property
    def messages_raw(self) -> bytes:
        try:
            return (self.workdir / "messages.log").read_bytes()
        except FileNotFoundError:
            return b""

    @property
    def logs(self) -> str:
        return self._read("logs.log")

    @property
    def screen(self) -> str:
        return self._read("screen.log")

    @property
    def output(self) -> str:
        return self._read("stdout.txt")

    def call_id(self, n: int = 1) -> str:
        """Call-ID of SIPp's n-th call (1-based): -cid_str <prefix>-%u@%s."""
        return "%s-%d@%s" % (self.cid_prefix, n, HOST)

    def stat(self, name: str) -> int:
        try:
            return int(float(self.stats.get(name, "0")))
        except ValueError:
            return 0

    @property
    def successful(self) -> int:
        return self.stat("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.stat("FailedCall(C)")

    def received_messages(self) -> list[str]:
        """SIP messages SIPp received, from the -trace_msg log."""
        out = []
        for block in re.split(r"^-{20,} [^\n]*\n", self.messages, flags=re.M):
            m = re.match(r"UDP message received \[\d+\] bytes ?:\s*\n\n?(.*)", block, re.S)
            if m:
                out.append(m.group(1).strip("\n"))
        return out

    def sent_messages(self) -> list[str]:
        out = []
        for block in re.split(r"^-{20,} [^\n]*\n", self.messages, flags=re.M):
            m = re.match(r"UDP message sent \(\d+ bytes\):\s*\n\n?(.*)", block, re.S)
            if m:
                out.append(m.group(1).strip("\n"))
        return out

    def diagnostics(self) -> str:
        parts = ["SIPp exit code: %s%s" % (self.returncode,
                                          " (killed after timeout)" if self.timed_out else ""),
                 "SIPp stats: successful=%d failed=%d" % (self.successful, self.failed)]
        for title, text in (("SIPp error log", self.errors),
                            ("SIPp stdout/stderr (tail)", self.output[-3000:]),
                            ("SIPp message trace (tail)", self.messages[-6000:])):
            if text.strip():
                parts.append("--- %s ---\n%s" % (title, text.rstrip()))
        return "\n".join(parts)


_run_counter = 0


class Sipp:
    """One SIPp run (foreground process, started in the background from Python)."""

    def __init__(self, scenario: str, target_port: int | None, workdir: Path, *,
                 local_port: int | None = None, calls: int = 1, rate: float | None = None, rate_period_ms: int | None = None,
                 limit: int | None = None, timeout_s: int = 60, keys: dict | None = None,
                 inf: str | Path | None = None, trace_msg: bool = True,
                 extra: list[str] | None = None, cid_prefix: str | None = None):
        global _run_counter
        _run_counter += 1
        name = Path(scenario).stem
        self.workdir = Path(workdir) / ("sipp-%02d-%s" % (_run_counter, name))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cid_prefix = cid_prefix or "%s-%d-%06x" % (name, os.getpid(),
                                                        random.randrange(1 << 24))
        self.local_port = local_port or free_port()
        self.media_port = free_port_block(4)  # SIPp binds -mp and -mp+2
        scen = Path(scenario)
        if not scen.is_absolute():
            scen = SCENARIOS / scen
        self.timeout_s = timeout_s
        w = self.workdir
        # target_port None: server (UAS) mode, no remote host
        self.cmd = [SIPP] + (["%s:%d" % (HOST, target_port)] if target_port else []) + [
                    "-sf", str(scen),
                    "-nostdin", "-m", str(calls), "-timeout", "%ds" % timeout_s,
                    "-timeout_error",
                    "-i", HOST, "-p", str(self.local_port),
                    "-mi", HOST, "-mp", str(self.media_port),
                    "-cid_str", self.cid_prefix + "-%u@%s",
                    "-trace_err", "-error_file", str(w / "errors.log"),
                    "-trace_stat", "-stf", str(w / "stat.csv"), "-fd", "1",
                    "-trace_screen", "-screen_file", str(w / "screen.log"),
                    "-trace_logs", "-log_file", str(w / "logs.log")]
        if trace_msg:
            self.cmd += ["-trace_msg", "-message_file", str(w / "messages.log")]
        if rate is not None:
            self.cmd += ["-r", str(rate)]
        if rate_period_ms is not None:
            self.cmd += ["-rp", str(rate_period_ms)]
        if limit is not None:
            self.cmd += ["-l", str(limit)]
        if inf is not None:
            self.cmd += ["-inf", str(inf)]
        for k, v in (keys or {}).items():
            self.cmd += ["-key", k, str(v)]
        self.cmd += list(extra or [])
        self.proc: subprocess.Popen | None = None
        self._out = None

    def start(self) -> "Sipp":
        self._out = open(self.workdir / "stdout.txt", "wb")
        (self.workdir / "command.txt").write_text(" ".join(self.cmd) + "\n")
        self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        return self

    def wait(self, extra_s: float = 20.0) -> SippResult:
        timed_out = False
        try:
            rc = self.proc.wait(self.timeout_s + extra_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.send_signal(signal.SIGUSR1)  # soft exit, then hard
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            rc = None
        if self._out:
            self._out.close()
        res = SippResult(rc, self.workdir, self.cid_prefix, timed_out=timed_out)
        res.stats = read_sipp_stats(self.workdir / "stat.csv")
        return res

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self._out:
            self._out.close()

    def wait_sent(self, pattern: str, timeout: float = 10.0) -> bool:
        """Wait until the message trace shows a sent message matching pattern."""
        rx = re.compile(pattern, re.M)
        p = self.workdir / "messages.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if rx.search(p.read_text(errors="replace")):
                    return True
            except FileNotFoundError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False


def run_sipp(scenario: str, target_port: int, workdir: Path, **kw) -> SippResult:
    s = Sipp(scenario, target_port, workdir, **kw).start()
    return s.wait()


def read_sipp_stats(path: Path) -> dict:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def sipp_available() -> bool:
    return shutil.which(SIPP) is not None or os.access(SIPP, os.X_OK)


# ------------------------------------------------------------------ SDP bits

def sdp_body(msg: str) -> str:
    i = msg.find("\n\n")
    j = msg.find("\r\n\r\n")
    if j >= 0 and (i < 0 or j < i):
        return msg[j + 4:]
    return msg[i + 2:] if i >= 0 else ""


def sdp_media(msg: str) -> tuple[str | None, int | None, list[str]]:
    """(connection address, audio port, payload types) of an SDP body."""
    body = sdp_body(msg)
    addr = port = None
    pts: list[str] = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("c=IN IP4 "):
            addr = line.split()[2]
        elif line.startswith("m=audio "):
            f = line.split()
            port = int(f[1])
            pts = f[3:]
    return addr, port, pts


def is_root() -> bool:
    return os.geteuid() == 0


def write_csv(path: Path, rows) -> Path:
    """A SIPp injection file (SEQUENTIAL; ';' separated; no blank line: SIPp stops
    reading at the first empty line, and a line starting with '#' is a comment)."""
    lines = ["SEQUENTIAL"] + [";".join(r) for r in rows]
    for l in lines[1:]:
        assert not l.startswith("#"), "a CSV line may not start with '#'"
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


# ------------------------------------------------------------ common checks

def assert_sipp_ok(r: SippResult, calls: int = 1) -> None:
    assert r.returncode == 0 and r.successful == calls and r.failed == 0, \
        "SIPp did not complete %d call(s) successfully\n%s" % (calls, r.diagnostics())


def expect_line(ivr: IvrHello, call_id: str, digits: str, source: str,
                timeout: float = 15.0) -> CallLine:
    line = ivr.wait_line(call_id, timeout)
    assert line is not None, "ivr-hello printed no line for call %s within %.0f s; stdout:\n%s" % (
        call_id, timeout, ivr.stdout_text())
    assert (line.digits, line.source) == (digits, source), \
        "call %s: expected digits %r source %s, got line %r" % (call_id, digits, source, line.raw)
    if not digits:
        assert "digits  source none" in line.raw, line.raw
    return line


def stop_and_check(ivr: IvrHello, call_ids=(), no_line_ids=()) -> None:
    """SIGTERM ivr-hello; it must exit 0; stdout must hold only result lines, exactly
    one per call of call_ids and none for no_line_ids."""
    rc = ivr.stop(signal.SIGTERM)
    assert rc == 0, "ivr-hello exit code after SIGTERM: %s" % rc
    bad = ivr.bad_stdout_lines()
    assert not bad, "unexpected stdout lines: %r" % bad
    lines = ivr.lines()
    for cid in call_ids:
        n = sum(1 for l in lines if l.call_id == cid)
        assert n == 1, "call %s: %d result lines (want exactly 1)" % (cid, n)
    for cid in no_line_ids:
        assert not any(l.call_id == cid for l in lines), "unexpected line for %s" % cid
    counts: dict[str, int] = {}
    for l in lines:
        counts[l.call_id] = counts.get(l.call_id, 0) + 1
    dup = {k: v for k, v in counts.items() if v > 1}
    assert not dup, "calls with more than one line: %r" % dup


def first_response(r: SippResult, code: int, method: str) -> str | None:
    for m in r.received_messages():
        if m.startswith("SIP/2.0 %d " % code) and re.search(
                r"^CSeq:\s*\d+\s+%s\s*$" % method, m, re.M | re.I):
            return m
    return None


def received_requests(r: SippResult, method: str) -> list[str]:
    return [m for m in r.received_messages() if m.startswith(method + " ")]


def wav_seconds(prompts: str | None, name: str) -> float:
    import wave
    with wave.open(str(Path(prompts or prompts_dir() or ".") / name), "rb") as w:
        return w.getnframes() / float(w.getframerate())
