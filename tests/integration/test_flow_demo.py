"""ivrd (examples/ivrd) running the demo flow (examples/flows/demo.json), called by SIPp
on free loopback ports: menu choices by SIP INFO and by RFC 4733 (a generated pcap), the
office-hours check for sales, no input and invalid input with retries, the caller hanging
up in the menu, numbers that map to no flow, stopping with a call up, and configuration
and flow errors (exit status 2, one line naming the field).

The calls of the demo batch run at the same time in one ivrd (the no-input call alone
lasts about 37 s: three 4 s menu timeouts after the menu prompt, plus the prompts).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import harness
import pcap_dtmf

REPO = harness.HERE.parents[1]
DEMO_CONFIG = REPO / "examples" / "ivrd" / "demo.json"
DEMO_FLOW = REPO / "examples" / "flows" / "demo.json"

SUPPORT = "welcome > menu > support > support_msg > goodbye > bye"
GOODBYE = "welcome > menu > goodbye > bye"
SALES = "welcome > menu > sales > office_hours > %s > goodbye > bye"

need_root = pytest.mark.skipif(not harness.is_root(),
                               reason="SIPp's play_pcap_audio needs raw sockets (root)")


def _require_ivrd() -> str:
    binary = harness.ivrd_binary()
    if binary:
        return binary
    if os.environ.get("IVR_BUILD_DIR"):  # under ctest: a missing daemon is a failure
        pytest.fail("ivrd not found under IVR_BUILD_DIR=%s" % os.environ["IVR_BUILD_DIR"])
    pytest.skip("ivrd binary not found (set IVRD or IVR_BUILD_DIR)")


def _prompts() -> str:
    p = harness.prompts_dir()
    if not p or not (Path(p) / "demo_menu.wav").is_file():
        pytest.fail("the demo flow's prompts are missing (IVR_PROMPTS=%s)" % p)
    return p


def demo_config(**changes) -> dict:
    """The shipped demo configuration with absolute paths, debug logging (flow steps on
    stderr) and the test's changes; ports are filled in by harness.Ivrd."""
    config = json.loads(DEMO_CONFIG.read_text())
    config.pop("sip", None)
    config.pop("rtp", None)
    config["prompt_dir"] = _prompts()
    config["flows"] = [{"file": str(DEMO_FLOW), "activate": True}]
    config["log_level"] = "debug"
    config.update(changes)
    return config


# ------------------------------------------------------------ office hours

NEW_YORK = ZoneInfo("America/New_York")


def office_open(t: float) -> bool:
    """The demo flow's "office" schedule: Mon-Fri 09:00-17:00 New York time, closed on
    01-01 and 12-25."""
    d = datetime.fromtimestamp(t, NEW_YORK)
    if (d.month, d.day) in ((1, 1), (12, 25)) or d.weekday() >= 5:
        return False
    return clock(9, 0) <= d.time() < clock(17, 0)


def expected_sales_nodes(t0: float, t1: float) -> set[str]:
    """The node the schedule must pick for a call decided between t0 and t1: both are
    accepted only when the office opened or closed within a minute of the call."""
    states = {office_open(t) for t in range(int(t0) - 60, int(t1) + 62)}
    if len(states) == 2:
        return {"sales_open", "sales_closed"}
    return {"sales_open" if states.pop() else "sales_closed"}


# ---------------------------------------------------------------- the batch

@dataclass
class Case:
    scenario: str
    keys: str = ""  # INFO keys "5;2;-" (uac_flow_info.xml)
    pcap_digits: str = ""  # RFC 4733 keys (uac_flow_rfc4733.xml)
    root: bool = False
    sipp: harness.Sipp | None = None
    result: harness.SippResult | None = None
    t0: float = 0.0  # wall clock when SIPp started
    t1: float = 0.0  # wall clock when SIPp ended
    line: harness.FlowLine | None = None

    @property
    def call_id(self) -> str:
        return "%s-1@%s" % (self.sipp.cid_prefix, harness.HOST)


@dataclass
class Batch:
    ivrd: harness.Ivrd
    cases: dict[str, Case]
    exit_code: int | None = None
    results: list = field(default_factory=list)

    def sections(self):
        out = [("ivrd command", " ".join(self.ivrd.args)),
               ("ivrd config", json.dumps(self.ivrd.config, indent=2)),
               ("ivrd stdout", self.ivrd.stdout_text() or "(empty)"),
               ("ivrd stderr (exit code %s)" % self.exit_code, self.ivrd.stderr_text())]
        for name, c in self.cases.items():
            if c.result is not None:
                out.append(("SIPp %s (%s)" % (name, c.scenario), c.result.diagnostics()))
        return out

    def steps(self, case: Case) -> list[str]:
        """ivrd's FLOW_STEP lines (debug) for the case's call."""
        tag = "call %s flow " % case.call_id
        return [l.split(tag, 1)[1] for l in self.ivrd.stderr_lines if tag in l]


CASES = {
    "info_support": Case("uac_flow_info.xml", keys="2;-;-"),
    "info_sales": Case("uac_flow_info.xml", keys="1;-;-"),
    "info_invalid_3x": Case("uac_flow_info.xml", keys="5;5;5"),
    "info_invalid_then_support": Case("uac_flow_info.xml", keys="5;2;-"),
    "info_repeat_then_support": Case("uac_flow_info.xml", keys="9;2;-"),
    "info_no_input": Case("uac_flow_info.xml", keys="-;-;-"),
    "info_invalid_then_silence": Case("uac_flow_info.xml", keys="5;-;-"),
    "hangup_in_menu": Case("uac_flow_hangup.xml"),
    "rfc4733_support": Case("uac_flow_rfc4733.xml", pcap_digits="2", root=True),
    "rfc4733_invalid_then_support": Case("uac_flow_rfc4733.xml", pcap_digits="52", root=True),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    _require_ivrd()
    tmp = tmp_path_factory.mktemp("flow_demo")
    ivrd = harness.Ivrd(demo_config(), tmp)
    b = Batch(ivrd, {name: dataclasses.replace(case) for name, case in CASES.items()})
    try:
        ivrd.start()
        for name, c in b.cases.items():
            if c.root and not harness.is_root():
                continue
            kw = {"timeout_s": 75}
            if c.keys:
                kw["inf"] = harness.write_csv(tmp / (name + ".csv"), [c.keys.split(";")])
            if c.pcap_digits:
                # Keys 3 s after the ACK (in the menu prompt), 3.5 s apart like the INFO
                # scenario (the second one after the "invalid choice" prompt).
                pcap = tmp / (name + ".pcap")
                pcap_dtmf.write_dtmf_pcap(str(pcap), c.pcap_digits, lead_ms=3000,
                                          tone_ms=160, gap_ms=3340)
                kw["keys"] = {"pcap": pcap}
            c.t0 = time.time()
            c.sipp = harness.Sipp(c.scenario, ivrd.port, tmp, **kw).start()
        for c in b.cases.values():
            if c.sipp is not None:
                c.result = c.sipp.wait()
                c.t1 = time.time()
        started = [c for c in b.cases.values() if c.sipp is not None]
        lines = ivrd.wait_lines([c.call_id for c in started], timeout=15)
        for c in started:
            c.line = lines.get(c.call_id)
        b.exit_code = ivrd.stop(signal.SIGTERM)
        yield b
    finally:
        for c in b.cases.values():
            if c.sipp is not None:
                c.sipp.kill()
        ivrd.kill()


@pytest.fixture
def demo(batch, request):
    request.node._ivr_ctx = batch  # conftest attaches batch.sections() to failures
    return batch


def check_call(b: Batch, name: str, path: str | set[str], end: str = "hangup") -> Case:
    c = b.cases[name]
    if c.sipp is None:
        pytest.skip("case %s not run (needs root)" % name)
    harness.assert_sipp_ok(c.result)
    assert c.line is not None, "ivrd printed no line for %s (%s)" % (name, c.call_id)
    paths = {path} if isinstance(path, str) else path
    assert (c.line.flow, c.line.version) == ("demo", "1"), c.line.raw
    assert c.line.path in paths and c.line.end == end, \
        "%s: want path %s end %s, got %r" % (name, " or ".join(sorted(paths)), end, c.line.raw)
    return c


def test_support_by_info(demo):
    check_call(demo, "info_support", SUPPORT)


def test_sales_follows_office_hours(demo):
    c = demo.cases["info_sales"]
    want = expected_sales_nodes(c.t0, c.t1)
    c = check_call(demo, "info_sales", {SALES % node for node in want})
    decided = [s for s in demo.steps(c) if "office_hours (schedule)" in s]
    assert len(decided) == 1 and (("-> sales_open" in decided[0]) ==
                                  ("sales_open" in c.line.path)), decided


def test_invalid_three_times_says_goodbye(demo):
    c = check_call(demo, "info_invalid_3x", GOODBYE)
    steps = demo.steps(c)
    assert sum('digits "5" (max_digits) invalid, retrying' in s for s in steps) == 2, steps
    assert any('digits "5" (max_digits) invalid, retries exhausted -> goodbye' in s
               for s in steps), steps
    assert sum("file demo_invalid.wav" in s for s in steps) == 2, steps


def test_invalid_then_valid_reaches_support(demo):
    c = check_call(demo, "info_invalid_then_support", SUPPORT)
    steps = demo.steps(c)
    assert any('digits "5" (max_digits) invalid, retrying' in s for s in steps), steps
    assert any("collect attempt 2 of 3" in s for s in steps), steps


def test_nine_repeats_the_welcome(demo):
    check_call(demo, "info_repeat_then_support", "welcome > menu > " + SUPPORT)


def test_no_input_retries_then_goodbye(demo):
    c = check_call(demo, "info_no_input", GOODBYE)
    steps = demo.steps(c)
    assert sum('digits "" (first_timeout) no_input' in s for s in steps) == 3, steps
    assert any("no_input, retries exhausted -> goodbye" in s for s in steps), steps
    assert sum("file demo_no_input.wav" in s for s in steps) == 2, steps
    # each attempt: the menu prompt, the collect, its first-digit timeout (the timer's
    # length is the interpreter's and the simulator's business, not measured here)
    menu = [s.split(": ", 1)[1] for s in steps if s.startswith("demo/1 menu (menu): ")]
    for k in (1, 2, 3):
        i = menu.index("collect attempt %d of 3" % k)
        assert menu[i - 1] == "file demo_menu.wav", menu
        assert menu[i + 1].startswith('digits "" (first_timeout) no_input'), menu


def test_retries_exhausted_by_silence_after_invalid(demo):
    """5, then nothing: the last attempt decides the exit (no input -> goodbye)."""
    c = check_call(demo, "info_invalid_then_silence", GOODBYE)
    steps = demo.steps(c)
    assert any('digits "5" (max_digits) invalid, retrying' in s for s in steps), steps
    assert any("no_input, retries exhausted -> goodbye" in s for s in steps), steps


def test_caller_hangs_up_in_the_menu(demo):
    prompts = demo.ivrd.prompts
    # the scenario's BYE goes 4 s after the ACK: after the welcome, inside the menu
    assert harness.wav_seconds(prompts, "demo_welcome.wav") < 3.5
    c = check_call(demo, "hangup_in_menu", "welcome > menu", end="caller_hangup")
    assert any("collect attempt 1 of 3" in s for s in demo.steps(c))


@need_root
def test_support_by_rfc4733(demo):
    c = check_call(demo, "rfc4733_support", SUPPORT)
    assert any('digits "2" (max_digits) ok -> support' in s for s in demo.steps(c))


@need_root
def test_invalid_then_valid_by_rfc4733(demo):
    c = check_call(demo, "rfc4733_invalid_then_support", SUPPORT)
    steps = demo.steps(c)
    assert any('digits "5" (max_digits) invalid, retrying' in s for s in steps), steps
    assert any('digits "2" (max_digits) ok -> support' in s for s in steps), steps


def test_batch_stdout_and_clean_exit(demo):
    """SIGTERM after the batch: exit 0; stdout holds exactly one line per call, nothing
    else."""
    assert demo.exit_code == 0, "ivrd exit code after SIGTERM: %s" % demo.exit_code
    assert not demo.ivrd.bad_stdout_lines(), demo.ivrd.bad_stdout_lines()
    ids = [l.call_id for l in demo.ivrd.lines()]
    want = sorted(c.call_id for c in demo.cases.values() if c.sipp is not None)
    assert sorted(ids) == want, "one line per call: %r" % ids


# ------------------------------------------------ entry points and stopping

def test_unmapped_number_is_rejected(ctx, tmp_path):
    """Only 1000 maps to the demo: a call to 2000 gets 404 and a "flow -" line."""
    _require_ivrd()
    ivrd = harness.Ivrd(demo_config(entry_points={"1000": "demo"}), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    mapped = ctx.sipp_bg("uac_flow_hangup.xml", ivrd.port, extra=["-s", "1000"], timeout_s=30)
    r404 = ctx.sipp("uac_flow_404.xml", ivrd.port, extra=["-s", "2000"], timeout_s=30)
    r = ctx.finish(mapped)
    harness.assert_sipp_ok(r404)
    harness.assert_sipp_ok(r)
    lines = ivrd.wait_lines([r404.call_id(1), r.call_id(1)], timeout=10)
    assert lines[r404.call_id(1)].raw == "call %s flow - end rejected" % r404.call_id(1)
    mapped_line = lines[r.call_id(1)]
    assert (mapped_line.flow, mapped_line.end, mapped_line.path) == (
        "demo", "caller_hangup", "welcome > menu"), mapped_line.raw
    assert ivrd.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_with_a_call_in_the_menu(ctx, tmp_path, sig):
    """A stop signal while a call waits in the menu: ivrd sends BYE with its Reason,
    prints the call's line and exits 0."""
    _require_ivrd()
    ivrd = harness.Ivrd(demo_config(), tmp_path)
    ctx.ivrs.append(ivrd)
    ivrd.start()
    csv = harness.write_csv(tmp_path / "none.csv", [["-", "-", "-"]])
    s = ctx.sipp_bg("uac_flow_info.xml", ivrd.port, inf=csv, timeout_s=40)
    cid = "%s-1@%s" % (s.cid_prefix, harness.HOST)
    assert ivrd.wait_stderr(r"call %s flow demo/1 menu \(menu\): collect attempt 1"
                            % cid.replace(".", r"\."), timeout=15), "the call never reached the menu"
    assert ivrd.stop(sig) == 0
    r = ctx.finish(s)
    harness.assert_sipp_ok(r)
    byes = harness.received_requests(r, "BYE")
    assert byes and "ivrd shutting down" in byes[0], byes
    lines = ivrd.lines()
    assert len(lines) == 1 and lines[0].call_id == cid, ivrd.stdout_text()
    assert (lines[0].flow, lines[0].path) == ("demo", "welcome > menu"), lines[0].raw


def test_unread_stderr_does_not_stall_calls(ctx, tmp_path):
    """Nobody reads ivrd's stderr (a one-page pipe, already full): calls still run
    and their stdout lines still arrive, because the engine's threads only queue
    output for ivrd's writer thread; once stderr drains, SIGTERM exits 0."""
    binary = _require_ivrd()
    port = harness.free_port()
    rtp = harness.free_port_block(200)
    config = demo_config(sip={"address": harness.HOST, "port": port},
                         rtp={"port_min": rtp, "port_max": rtp + 199})
    path = tmp_path / "ivrd.json"
    path.write_text(json.dumps(config))
    r, w = os.pipe()
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)  # one page
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    p = subprocess.Popen([binary, "--config", str(path)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=w, text=True)
    os.close(w)
    out: list[str] = []
    err = bytearray()
    def pump_stdout():
        for line in p.stdout:
            out.append(line)

    readers = [threading.Thread(target=pump_stdout, daemon=True)]
    try:
        readers[0].start()
        # ready when the SIP port is taken (the "listening" line is stuck in the pipe)
        deadline = time.monotonic() + 15
        while (not harness.udp_port_bound(port) and p.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert harness.udp_port_bound(port), "ivrd never bound its SIP port (exit %s)" % p.poll()
        runs = [ctx.sipp_bg("uac_flow_hangup.xml", port, timeout_s=30) for _ in range(2)]
        results = [ctx.finish(s) for s in runs]
        for res in results:
            harness.assert_sipp_ok(res)
        want = {res.call_id(1) for res in results}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not want <= {
                l.split()[1] for l in list(out) if l.startswith("call ")}:
            time.sleep(0.1)
        lines = [harness.parse_flow_line(l) for l in list(out)]
        assert sorted(l.call_id for l in lines if l) == sorted(want), out
        assert all(l and l.path == "welcome > menu" for l in lines), out
        readers.append(threading.Thread(target=lambda: err.extend(_read_all(r)), daemon=True))
        readers[1].start()
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        readers[1].join(10)
        assert b"ivrd listening on sip:" in err, bytes(err[-2000:])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        for t in readers:
            t.join(5)
        os.close(r)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def test_shipped_config_starts(ctx, tmp_path):
    """examples/ivrd/demo.json as shipped (its relative flow path resolved against its
    own directory), with --listen and --prompts as scripts/demo passes them."""
    binary = _require_ivrd()
    port = harness.free_port()
    p = subprocess.Popen([binary, "--config", str(DEMO_CONFIG), "--listen",
                          "%s:%d" % (harness.HOST, port), "--prompts", _prompts()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        want = "ivrd listening on sip:%s:%d" % (harness.HOST, port)
        deadline = time.monotonic() + 15
        err = []
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            err.append(line)
            if want in line:
                break
        assert any(want in l for l in err), "".join(err)
        assert any("flow demo version 1 loaded from %s" % DEMO_FLOW in l for l in err), err
        p.send_signal(signal.SIGTERM)
        out, rest = p.communicate(timeout=20)
        assert p.returncode == 0, rest
        assert out == ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)


# ----------------------------------------------------------------- webhooks

def _start_receiver(tmp_path):
    """tests/net/webhook_receiver.py on free ports: (process, hook port, control port)."""
    script = Path(__file__).resolve().parents[1] / "net" / "webhook_receiver.py"
    proc = subprocess.Popen(["/usr/bin/python3", str(script), "--exit-on-stdin-eof"],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    hook = control = None
    for line in proc.stdout:
        if line.startswith("listening "):
            hook = int(line.split()[1])
        elif line.startswith("control "):
            control = int(line.split()[1])
        elif line.startswith("ready"):
            break
    assert hook and control, "the webhook receiver did not start"
    return proc, hook, control


def test_call_events_reach_a_webhook_signed(ctx, tmp_path, monkeypatch):
    """ivrd with "webhooks": one call's events arrive at a real receiver, signed with the
    secret from IVR_SECRET_*, each once, in seq order ending with the call record."""
    import hashlib
    import hmac
    import urllib.request
    _require_ivrd()
    monkeypatch.setenv("IVR_SECRET_HOOKS_KEY", "s3cret-for-tests")
    receiver, hook_port, control_port = _start_receiver(tmp_path)
    try:
        config = demo_config(entry_points={"1000": "demo"}, webhooks={
            "spool_dir": str(tmp_path / "spool"),
            "endpoints": [{"name": "crm", "url": "http://%s:%d/hooks" % (harness.HOST, hook_port),
                           "events": ["call.started", "call.answered", "call.ended"],
                           "secrets": ["hooks.key"]}]})
        ivrd = harness.Ivrd(config, tmp_path)
        ctx.ivrs.append(ivrd)
        ivrd.start()
        r = ctx.finish(ctx.sipp_bg("uac_flow_hangup.xml", ivrd.port, extra=["-s", "1000"],
                                   timeout_s=30))
        harness.assert_sipp_ok(r)
        cid = r.call_id(1)
        requests = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with urllib.request.urlopen("http://%s:%d/received" % (harness.HOST, control_port),
                                        timeout=5) as resp:
                requests = json.load(resp)["requests"]
            if any(json.loads(q["body"])["type"] == "call.ended" for q in requests):
                break
            time.sleep(0.2)
        # Deliveries run in parallel (max_concurrency): the order is the events' seq, not
        # their arrival (docs/net.md, "Webhook delivery").
        pairs = sorted(((json.loads(q["body"]), q) for q in requests),
                       key=lambda p: p[0]["data"]["seq"])
        bodies = [b for b, _ in pairs]
        requests = [q for _, q in pairs]
        assert [b["type"] for b in bodies] == ["call.started", "call.answered", "call.ended"], bodies
        for q, b in zip(requests, bodies):
            headers = {k.lower(): v for k, v in q["headers"]}
            assert headers["x-ivr-event-id"] == b["id"] and headers["x-ivr-event-type"] == b["type"]
            t, v1 = [part.split("=", 1)[1] for part in headers["x-ivr-signature"].split(",")[:2]]
            want = hmac.new(b"s3cret-for-tests", (t + "." + q["body"]).encode(),
                            hashlib.sha256).hexdigest()
            assert hmac.compare_digest(v1, want), headers["x-ivr-signature"]
            assert b["subscription"] == "crm" and b["data"]["call_id"] == cid
        record = bodies[-1]["data"]
        assert record["flow_path"] == ["welcome", "menu"], record
        assert ivrd.stop(signal.SIGTERM) == 0
    finally:
        receiver.stdin.close()
        try:
            receiver.wait(10)
        except subprocess.TimeoutExpired:
            receiver.kill()
            receiver.wait(10)


# ----------------------------------------------------------- errors (exit 2)

def run_ivrd(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([_require_ivrd()] + args, capture_output=True, text=True,
                          timeout=timeout)


def valid_config() -> dict:
    return {"sip": {"address": harness.HOST, "port": harness.free_port()},
            "prompt_dir": _prompts(), "log_level": "warn",
            "flows": [{"file": str(DEMO_FLOW)}], "entry_points": {"*": "demo"}}


def _set(config: dict, dotted: str, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        config = config.setdefault(k, {})
    if value is _DELETE:
        del config[keys[-1]]
    else:
        config[keys[-1]] = value


_DELETE = object()


def _routing(dotted: str, value) -> dict:
    """The demo configuration's routing with one member changed."""
    routing = json.loads(DEMO_CONFIG.read_text())["routing"]
    _set(routing, dotted, value)
    return routing

CONFIG_ERRORS = [
    ("sip.port", 70000, "config sip.port: must be 1-65535"),
    ("sip.port", "5060", "config sip.port: must be an integer 1-65535"),
    ("sip.address", "localhost", "config sip.address: must be an IPv4 or IPv6 address literal"),
    ("sip.transport", "sctp", "config sip.transport: must be \"udp\", \"tcp\" or \"udp+tcp\""),
    ("sip.prot", 5060, "config sip.prot: unknown field (known: address, port, transport)"),
    ("rtp.port_min", 20001, "config rtp.port_min: must be even"),
    ("rtp.port_min", 100, "config rtp.port_min: must be 1024-65534, got 100"),
    ("rtp.port_max", 100, "config rtp.port_max: must be larger than rtp.port_min"),
    ("media_threads", 0, "config media_threads: must be 1-64"),
    ("log_level", "loud", "config log_level: must be error, warn, info, debug or trace"),
    ("prompt_dir", "/nonexistent/prompts", "config prompt_dir: not a directory"),
    ("flows", _DELETE, "config flows: missing"),
    ("flows", [], "config flows: must list at least one flow file"),
    ("flows", [{"file": "missing.json"}], "config flows[0].file: cannot read"),
    ("flows", [{"file": "x.json", "active": True}], "config flows[0].active: unknown field"),
    ("entry_points", {"1000": "sales"}, 'config entry_points."1000": no flow "sales" was loaded'),
    ("entry_points", _DELETE, "config entry_points: missing"),
    ("auth", {"crm": {"type": "bearer"}}, "config auth.crm.token_secret: missing"),
    ("auth", [], "config auth: must be an object of named auth profiles"),
    ("webhooks", {"endpoints": []}, "config webhooks.spool_dir: missing"),
    ("webhooks", {"spool_dir": "s", "endpoints": [{"name": "a", "url": "http://127.0.0.1:9/"}]},
     "config webhooks.endpoints[0].secrets: must name at least one signing secret"),
    ("webhooks", {"spool_dir": "s", "endpoints": [{"name": "a", "url": "http://127.0.0.1:9/",
                                                   "secrets": ["no.such.key"]}]},
     'config webhooks.endpoints[0].secrets[0]: secret "no.such.key": environment variable '
     "IVR_SECRET_NO_SUCH_KEY is not set"),
    ("routing", [], "config routing: must be an object (targets, target_sets, schedules, plans)"),
    ("routing", _routing("targets.dialer_a.capacity", 0),
     "config routing.targets.dialer_a.capacity: must be an integer from 1 to 100000"),
    ("routing", _routing("targets.dialer_b.delivery", "fax"),
     'config routing.targets.dialer_b.delivery: must be "bridge", "refer" or "redirect"'),
    ("routing", _routing("plans.agents.entries", [{"targets": ["nobody"]}]),
     "config routing.plans.agents.entries[0].targets"),
]


@pytest.mark.parametrize("dotted,value,message", CONFIG_ERRORS,
                         ids=["%s-%d" % (e[0], i) for i, e in enumerate(CONFIG_ERRORS)])
def test_config_error_is_one_line_and_exit_2(tmp_path, dotted, value, message):
    config = valid_config()
    _set(config, dotted, value)
    path = tmp_path / "ivrd.json"
    path.write_text(json.dumps(config))
    r = run_ivrd(["--config", str(path)])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("ivrd: " + message), r.stderr
    assert r.stdout == ""


def test_config_not_json_and_bad_options(tmp_path):
    path = tmp_path / "ivrd.json"
    path.write_text('{"sip": {"port": 5060,}}')
    r = run_ivrd(["--config", str(path)])
    assert r.returncode == 2 and "config %s: not valid JSON" % path in r.stderr, r.stderr
    r = run_ivrd(["--config", str(tmp_path / "absent.json")])
    assert r.returncode == 2 and "cannot read" in r.stderr, r.stderr
    r = run_ivrd(["--config", str(tmp_path)])
    assert r.returncode == 2 and "config %s: cannot read: is a directory" % tmp_path in r.stderr, \
        r.stderr
    path.write_text("[1, 2]")
    r = run_ivrd(["--config", str(path)])
    assert r.returncode == 2 and "config %s: must be a JSON object" % path in r.stderr, r.stderr
    path.write_text(json.dumps(valid_config()))
    for args, text in ((["--listen", "127.0.0.1"], "--listen: expected IP:PORT"),
                       (["--listen", "127.0.0.1:0"], "--listen: expected IP:PORT"),
                       (["--prompts", str(tmp_path / "none")], "--prompts: not a directory"),
                       (["--log-level", "loud"], "--log-level: must be"),
                       (["--bogus", "1"], "--bogus is not an option")):
        r = run_ivrd(["--config", str(path)] + args)
        assert r.returncode == 2 and text in r.stderr, (args, r.stderr)
    r = run_ivrd([])
    assert r.returncode == 2 and "--config FILE is required" in r.stderr


def test_broken_flow_prints_its_report(tmp_path):
    """Every problem of the document, prefixed with its file name; exit 2 before SIP
    binds. Loading the same version twice is refused the same way."""
    flow = tmp_path / "broken.json"
    flow.write_text('{"flow": "b", "start": "a", "nodes": {\n'
                    '  "a": {"verb": "play", "file": "demo_welcome.wav", "next": "zz"},\n'
                    '  "b": {"verb": "hangup"}}}\n')
    config = valid_config()
    config["flows"] = [{"file": "broken.json"}]
    config["entry_points"] = {"*": "b"}
    (tmp_path / "ivrd.json").write_text(json.dumps(config))
    r = run_ivrd(["--config", str(tmp_path / "ivrd.json")])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert any(l.startswith("%s: line 2, column " % flow) and
               '/nodes/a/next: no node named "zz"' in l for l in lines), r.stderr
    assert any(l.startswith("%s: " % flow) and "/nodes/b" in l and "unreachable" in l
               for l in lines), r.stderr
    assert lines[-1] == "ivrd: %s: 2 problem(s), not loaded" % flow, r.stderr
    assert "listening" not in r.stderr

    config = valid_config()
    config["flows"] = [{"file": str(DEMO_FLOW)}, {"file": str(DEMO_FLOW)}]
    (tmp_path / "ivrd.json").write_text(json.dumps(config))
    r = run_ivrd(["--config", str(tmp_path / "ivrd.json")])
    assert r.returncode == 2 and r.stderr.startswith("%s: " % DEMO_FLOW), r.stderr


@pytest.mark.parametrize("flow_id,version,why", [
    ("demo", "1 beta", 'version "1 beta" has a space or control character'),
    ("-", "1", "flow id \"-\" starts with '-'"),
], ids=["version-with-space", "id-dash"])
def test_flow_that_would_break_the_call_line_is_refused(tmp_path, flow_id, version, why):
    """ivrd's per-call line has the version as one word and "-" for "no flow": a valid
    document that cannot be printed that way is refused, naming the config field."""
    doc = json.loads(DEMO_FLOW.read_text())
    doc["flow"], doc["version"] = flow_id, version
    (tmp_path / "flow.json").write_text(json.dumps(doc))
    config = valid_config()
    config["flows"] = [{"file": "flow.json"}]
    config["entry_points"] = {"*": flow_id}
    (tmp_path / "ivrd.json").write_text(json.dumps(config))
    r = run_ivrd(["--config", str(tmp_path / "ivrd.json")])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith(
        "ivrd: config flows[0].file: %s: %s" % (tmp_path / "flow.json", why)), r.stderr
