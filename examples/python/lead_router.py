#!/usr/bin/python3
"""A small IVR whose routing decision is a Python function reading leads from SQLite.

Every call is answered; the custom verb "lead.route", the function route() below, looks the
caller up in a SQLite file of leads with Python's sqlite3 module and picks a queue from the
lead's score (80 and more: priority, 50 and more: sales, else nurture); the caller hears
where the call goes (espeak-ng), and the call ends with the reason "routed QUEUE NAME".
Callers who are not in the file hear the general message ("routed general").

    PYTHONPATH=build/bindings/python /usr/bin/python3 examples/python/lead_router.py --port 5080

Without --leads the demo leads of leads.sql (beside this file) go into a temporary file.
Call it as the caller 5551234 (Alice, score 91: "routed priority Alice"):

    sipp -sf tests/capi/scenarios/info_call.xml -m 1 -i 127.0.0.1 -p 5090 127.0.0.1:5080
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import ivr

FLOW: Dict[str, Any] = {
    "flow": "lead_router",
    "version": "1",
    "start": "answer",
    "nodes": {
        "answer": {"verb": "answer", "next": "decide"},
        "decide": {
            "verb": "lead.route",
            "args": {"phone": "{{call.from}}"},
            "exits": {"priority": "priority", "sales": "sales", "nurture": "nurture"},
            "timeout_ms": 3000,
            "next": "general", "on_error": "general", "on_timeout": "general",
        },
        "priority": {"verb": "say", "text": "Welcome back, {{steps.decide.name}}. Your account manager will take your call.", "next": "done"},
        "sales": {"verb": "say", "text": "Thank you, {{steps.decide.name}}. Connecting you to sales.", "next": "done"},
        "nurture": {"verb": "say", "text": "Thank you for calling, {{steps.decide.name}}. We will send you our offers.", "next": "done"},
        "general": {"verb": "say", "text": "Thank you for calling. Please hold for the next agent.", "next": "bye"},
        "done": {"verb": "hangup", "reason": "routed {{steps.decide.queue}} {{steps.decide.name}}"},
        "bye": {"verb": "hangup", "reason": "routed general"},
    },
}


def queue_for(score: int) -> str:
    """The routing decision: a lead's score picks a queue (the flow's exit of that name)."""
    if score >= 80:
        return "priority"
    return "sales" if score >= 50 else "nurture"


def make_router(leads: Path) -> Callable[[ivr.VerbRequest], Optional[Tuple[str, Dict[str, str]]]]:
    """The custom verb. A plain function runs on one of the engine's worker threads, never
    on the engine thread, so the blocking sqlite3 query is fine here."""
    uri = leads.resolve().as_uri() + "?mode=ro"

    def route(request: ivr.VerbRequest) -> Optional[Tuple[str, Dict[str, str]]]:
        phone = request.arg("phone", "")
        with closing(sqlite3.connect(uri, uri=True, timeout=2)) as db:
            row = db.execute("SELECT name, score FROM leads WHERE phone = ?", (phone,)).fetchone()
        if row is None:
            return None  # "next": the general queue
        name, score = row
        queue = queue_for(int(score))
        return queue, {"queue": queue, "name": name}  # the exit, and steps.decide.*

    return route


def start(
    leads: Path, listener: Optional[Callable[[ivr.Event], None]] = None, **options: Any
) -> ivr.Engine:
    """An engine running the IVR for every number called; the caller closes it."""
    if not leads.is_file():
        raise FileNotFoundError(f"leads: no such file: {leads}")
    engine = ivr.Engine(**options)
    try:
        engine.register_verb("lead.route", make_router(leads))
        if listener is not None:
            engine.on("*", listener)
        engine.load_flow(FLOW)
        engine.map_flow("*", "lead_router")
        engine.start()
        return engine
    except BaseException:
        engine.close()
        raise


def demo_leads(directory: str) -> Path:
    """The demo leads of leads.sql, in a new SQLite file."""
    path = Path(directory) / "leads.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript((Path(__file__).parent / "leads.sql").read_text())
        db.commit()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description="An IVR routing callers by their lead score.")
    parser.add_argument("--leads", type=Path, help="SQLite file of leads (default: the demo leads)")
    parser.add_argument("--address", default="127.0.0.1", help="SIP address (an IP literal)")
    parser.add_argument("--port", type=int, default=5080, help="SIP port (0: any free one)")
    parser.add_argument("--log-level", default="warn", choices=["error", "warn", "info", "debug"])
    args = parser.parse_args()

    def on_event(event: ivr.Event) -> None:
        if event.type == "call.ended":
            print(f"call from {event.call.from_user}: {event.reason}", flush=True)

    def log(level: str, subsystem: str, message: str) -> None:
        print(f"{level} {subsystem}: {message}", file=sys.stderr, flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    with tempfile.TemporaryDirectory(prefix="lead-router-") as tmp:
        leads = args.leads or demo_leads(tmp)
        try:
            engine = start(
                leads, on_event, sip_address=args.address, sip_port=args.port,
                log=log, log_level=args.log_level,
            )
        except (ivr.Error, ValueError, TypeError, OSError) as e:
            print(f"lead-router: {e}", file=sys.stderr)
            return 1
        with engine:
            print(f"lead-router: SIP on {args.address}:{engine.sip_port}, leads from {leads} "
                  "(Ctrl-C stops)", flush=True)
            while not stopped.wait(0.5):  # woken by SIGINT/SIGTERM
                pass
            print("lead-router: stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
