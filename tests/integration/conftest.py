"""pytest glue: the `ctx` fixture starts ivr-hello / SIPp for a test, always stops
what it started, and on failure attaches ivr-hello's stderr and every SIPp run's
error log, stats and message trace to the report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


class Ctx:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.ivrs: list[harness.IvrHello] = []
        self.sipps: list[harness.Sipp] = []
        self.results: list[harness.SippResult] = []
        self.notes: list[tuple[str, str]] = []

    def ivr(self, *args: str, **kw) -> harness.IvrHello:
        """Start ivr-hello (fresh SIP port and RTP range) and wait until it listens."""
        if not harness.hello_binary():
            pytest.skip("ivr-hello binary not found (set IVR_HELLO)")
        p = harness.IvrHello(*args, **kw)
        self.ivrs.append(p)
        p.start()
        return p

    def sipp(self, scenario: str, target_port: int, **kw) -> harness.SippResult:
        s = harness.Sipp(scenario, target_port, self.tmp, **kw)
        self.sipps.append(s)
        s.start()
        r = s.wait()
        self.results.append(r)
        return r

    def sipp_bg(self, scenario: str, target_port: int, **kw) -> harness.Sipp:
        s = harness.Sipp(scenario, target_port, self.tmp, **kw)
        self.sipps.append(s)
        return s.start()

    def finish(self, s: harness.Sipp) -> harness.SippResult:
        r = s.wait()
        self.results.append(r)
        return r

    def note(self, title: str, text: str):
        self.notes.append((title, text))

    def cleanup(self):
        for s in self.sipps:
            s.kill()
        for p in self.ivrs:
            p.kill()

    def sections(self):
        out = []
        for i, p in enumerate(self.ivrs):
            out.append(("ivr-hello #%d command" % i, " ".join(p.args)))
            out.append(("ivr-hello #%d stdout" % i, p.stdout_text() or "(empty)"))
            out.append(("ivr-hello #%d stderr (exit code %s)" % (i, p.returncode),
                        p.stderr_text() or "(empty)"))
        for r in self.results:
            out.append(("SIPp run %s" % r.workdir.name, r.diagnostics()))
        out += self.notes
        return out


@pytest.fixture
def ctx(tmp_path, request):
    c = Ctx(tmp_path)
    request.node._ivr_ctx = c
    yield c
    c.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    c = getattr(item, "_ivr_ctx", None)
    if c is not None and rep.failed and rep.when in ("call", "teardown"):
        for title, text in c.sections():
            rep.sections.append((title, text))


def pytest_report_header(config):
    return ["ivr-hello: %s" % (harness.hello_binary() or "NOT FOUND"),
            "prompts: %s" % (harness.prompts_dir() or "NOT FOUND"),
            "sipp: %s, uid %d" % (harness.SIPP, os.geteuid())]

