"""Shared helpers of the Python binding tests: loopback engines, SIPp callers, bounded waits.

Run by ctest (python.bindings) with PYTHONPATH at build/bindings/python and
IVR_SIPP_SCENARIO naming tests/capi/scenarios/info_call.xml (From 5551234, To 4000, DTMF 4 2 #
by SIP INFO, then waits for our BYE).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import ivr

HERE = Path(__file__).resolve().parent
SCENARIO = Path(
    os.environ.get("IVR_SIPP_SCENARIO", HERE.parents[1] / "capi" / "scenarios" / "info_call.xml")
)
CALLER = "5551234"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sipp:
    """One SIPp caller placing one call to the engine (its own status is not checked:
    flows that hang up early make its INFO transactions fail)."""

    def __init__(self, sip_port: int, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(log_dir / f"sipp-{sip_port}-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen(
            [
                "sipp", "-sf", str(SCENARIO), "-m", "1", "-nostdin", "-i", "127.0.0.1",
                "-p", str(free_udp_port()), "-timeout", "30s", "-timeout_error",
                f"127.0.0.1:{sip_port}",
            ],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=log_dir,
        )

    def wait(self, timeout: float = 60) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"sipp did not exit within {timeout} s")
        finally:
            self._log.close()


class Events:
    """Records events (thread-safe) and waits for them with deadlines."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: List[ivr.Event] = []

    def __call__(self, event: ivr.Event) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def of_type(self, event_type: str) -> List[ivr.Event]:
        with self._cond:
            return [e for e in self.items if e.type == event_type]

    def wait_for(self, pred: Callable[[List[ivr.Event]], bool], timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_ended(self, count: int = 1, timeout: float = 30) -> List[ivr.Event]:
        ok = self.wait_for(lambda items: sum(e.type == "call.ended" for e in items) >= count, timeout)
        assert ok, f"{count} call(s) ended within {timeout} s; events: {self.items}"
        return self.of_type("call.ended")


def wait_until(cond: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def options(tmp_path: Path) -> Dict[str, Any]:
    """Engine options on loopback: any free SIP port, prompts from an empty temp dir."""
    return {"sip_address": "127.0.0.1", "sip_port": 0, "prompt_dir": str(tmp_path)}


@pytest.fixture
def engine(options: Dict[str, Any]):
    with ivr.Engine(**options) as e:
        yield e


@pytest.fixture
def call(tmp_path: Path) -> Callable[[ivr.Engine], Sipp]:
    """call(engine) starts one SIPp caller; every caller started is waited for."""
    started: List[Sipp] = []

    def place(engine: ivr.Engine) -> Sipp:
        sipp = Sipp(engine.sip_port, tmp_path / "sipp")
        started.append(sipp)
        return sipp

    yield place
    for sipp in started:  # a test that failed half-way may leave one waiting for our BYE
        try:
            sipp.proc.wait(5)
        except subprocess.TimeoutExpired:
            sipp.proc.kill()
        sipp.wait()
