"""Interpreter exit with engines still running: the atexit close ends their calls and the
process exits cleanly, whatever Python was doing on the engine's threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import SCENARIO

PROLOGUE = textwrap.dedent(
    """
    import asyncio, atexit, socket, subprocess, sys, threading, time
    import ivr

    callers = []
    # Registered before any engine exists, so it runs after the engines' own exit hook
    # (atexit is last in, first out): the callers have had their BYE by then.
    atexit.register(lambda: [p.wait(30) for p in callers])

    def place_call(port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            local = s.getsockname()[1]
        callers.append(subprocess.Popen(
            ["sipp", "-sf", sys.argv[1], "-m", "1", "-nostdin", "-i", "127.0.0.1",
             "-p", str(local), "-timeout", "30s", "-timeout_error", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    """
)


def run(script: str, tmp_path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROLOGUE + textwrap.dedent(script), str(SCENARIO)],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=dict(os.environ),
    )


def test_exit_with_an_idle_engine(tmp_path):
    result = run(
        """
        engine = ivr.Engine(sip_port=0)
        engine.on("*", lambda e: None)
        engine.register_verb("v", lambda r: None)
        engine.start()
        print("started")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started\n"


def test_exit_during_calls_with_work_in_flight(tmp_path):
    """A call in a slow async verb, another in a slow plain verb, an event handler that
    sleeps on the engine thread: the main thread exits; every call gets its call.ended."""
    result = run(
        """
        ended = []
        engine = ivr.Engine(sip_port=0, workers=2)

        @engine.verb("slow.async")
        async def slow_async(request):
            await asyncio.sleep(20)

        @engine.verb("slow.plain")
        def slow_plain(request):
            time.sleep(1.0)
            return "x"

        @engine.on("flow.step")
        def dawdle(event):
            time.sleep(0.05)

        @engine.on("call.ended")
        def on_end(event):
            ended.append(event.end_reason)
            print("ended", event.end_reason, flush=True)

        answered = threading.Semaphore(0)
        engine.on("call.answered", lambda e: answered.release())
        engine.load_flow({"flow": "a", "start": "hi", "nodes": {
            "hi": {"verb": "answer", "next": "v"},
            "v": {"verb": "slow.async", "timeout_ms": 30000}}})
        engine.load_flow({"flow": "p", "start": "hi", "nodes": {
            "hi": {"verb": "answer", "next": "v"},
            "v": {"verb": "slow.plain", "timeout_ms": 30000}}})
        engine.map_flow("4000", "a")
        engine.start()
        place_call(engine.sip_port)
        assert answered.acquire(timeout=20)
        engine.map_flow("4000", "p")
        place_call(engine.sip_port)
        assert answered.acquire(timeout=20)
        time.sleep(0.3)
        print("exiting", flush=True)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "exiting", result.stdout
    assert sorted(lines[1:]) == ["ended engine_stop", "ended engine_stop"], result.stdout


def test_exit_from_a_worker_thread_closing_the_engine(tmp_path):
    """close() from a verb running on a worker (not an engine thread) is allowed."""
    result = run(
        """
        done = threading.Event()
        engine = ivr.Engine(sip_port=0)

        @engine.verb("closer")
        def closer(request):
            request.complete()
            engine.close()
            done.set()

        engine.load_flow({"flow": "c", "start": "hi", "nodes": {
            "hi": {"verb": "answer", "next": "v"}, "v": {"verb": "closer", "next": "w"},
            "w": {"verb": "pause", "ms": 5000}}})
        engine.map_flow("*", "c")
        engine.start()
        place_call(engine.sip_port)
        assert done.wait(20)
        print("closed", engine.closed, flush=True)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "closed True\n"
