"""examples/python/lead_router.py run as a user runs it, with a real SIPp call: the caller
5551234 is Alice, score 91, in the demo leads, so the Python routing function sends her to
the priority queue. Then SIGINT stops it cleanly."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = Path(os.environ.get("IVR_PY_EXAMPLE", ROOT / "examples/python/lead_router.py"))
SCENARIO = Path(
    os.environ.get("IVR_SIPP_SCENARIO", ROOT / "tests/capi/scenarios/info_call.xml")
)


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """The example's stdout, line by line, read by a thread; waits have deadlines."""

    def __init__(self, stream) -> None:
        self._queue: "queue.Queue[str]" = queue.Queue()
        self.seen: list = []
        self.reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s; got {self.seen}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match


def load_example():
    spec = importlib.util.spec_from_file_location("lead_router", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_routing_function():
    example = load_example()
    assert [example.queue_for(s) for s in (91, 80, 64, 50, 12)] == [
        "priority", "priority", "sales", "sales", "nurture",
    ]


def test_example_routes_a_real_call(tmp_path):
    leads = tmp_path / "leads.db"
    with closing(sqlite3.connect(leads)) as db:
        db.executescript((EXAMPLE.parent / "leads.sql").read_text())
        db.commit()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--leads", str(leads), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    lines = Lines(proc.stdout)
    try:
        port = int(lines.wait_for(r"SIP on 127\.0\.0\.1:(\d+)", 30).group(1))
        with open(tmp_path / "sipp.log", "wb") as log:
            sipp = subprocess.Popen(
                ["sipp", "-sf", str(SCENARIO), "-m", "1", "-nostdin", "-i", "127.0.0.1",
                 "-p", str(free_udp_port()), "-timeout", "30s", "-timeout_error",
                 f"127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
            )
            try:
                lines.wait_for(r"^call from 5551234: routed priority Alice$", 40)
            finally:
                try:
                    sipp.wait(60)
                except subprocess.TimeoutExpired:
                    sipp.kill()
                    sipp.wait(10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        lines.wait_for(r"lead-router: stopping", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        lines.reader.join(10)  # at EOF once the example exited
        proc.stdout.close()
