#!/usr/bin/python3
"""SIGKILL a webhook sender mid-delivery; every event it acknowledged must arrive.

Usage: webhook_kill_test.py <webhook_kill_sender> [rounds] [events per round]

A receiver (tests/net/webhook_receiver.py, in this process) verifies every request's
X-Ivr-Signature against the raw body and answers according to the event id: some ids
fail twice with 503 (one in three of those with Retry-After: 0), some have their first
connection dropped without an answer, some are slow-walked (400 ms, so a kill finds them
in flight), the rest are accepted at once.

Every round starts the sender on the same spool directory with new events to publish,
waits until it has acknowledged a random number of them, a random while more (0 to
0.5 s), and, when it can within a second, until a delivery is in progress at the receiver,
then SIGKILLs it. A last run publishes nothing and
drains the spool until it is idle. Then every acknowledged id ("A") must have been
accepted (2xx) by the receiver at least once, with a body that carries that id and the
event's seq; duplicates (the same id accepted twice: a kill between the receiver's 2xx and
the spool recording it) are allowed, counted and reported. The seed is printed so a run can
be repeated (WEBHOOK_KILL_SEED).
"""
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webhook_receiver import Receiver  # noqa: E402

SECRET = "whsec_kill_test"


def verify(headers, body):
    items = [p.strip().split("=", 1) for p in headers.get("X-Ivr-Signature", "").split(",")]
    items = [kv for kv in items if len(kv) == 2]
    stamps = [v for k, v in items if k == "t"]
    signatures = [v for k, v in items if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return False
    if abs(time.time() - int(stamps[0])) > 300:
        return False
    expected = hmac.new(SECRET.encode(), stamps[0].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for v in signatures)


class Ledger:
    """What the receiver saw, by event id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}   # id -> requests seen
        self.accepted = {}   # id -> 2xx answers
        self.seq_of = {}     # id -> data.seq from the body
        self.problems = []

    def decide(self, path, headers, body):
        event_id = headers.get("X-Ivr-Event-Id", "")
        if not verify(headers, body):
            with self.lock:
                self.problems.append(f"bad signature for {event_id}")
            return {"status": 401}
        try:
            doc = json.loads(body)
            assert doc["id"] == event_id and doc["type"] == "call.ended"
            seq = doc["data"]["seq"]
        except (ValueError, KeyError, AssertionError, TypeError):
            with self.lock:
                self.problems.append(f"bad body for {event_id}: {body[:200]!r}")
            return {"status": 400}
        with self.lock:
            n = self.requests.get(event_id, 0)
            self.requests[event_id] = n + 1
        kind = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % 10
        action = {"status": 200}
        if kind in (0, 1, 2) and n < 2:
            action = {"status": 503}
            if kind == 0:
                action["retry_after"] = "0"
        elif kind == 3 and n == 0:
            action = {"close": True}
        elif kind == 4:
            action = {"status": 200, "delay_ms": 400}
        elif kind == 5:
            action = {"status": 200, "delay_ms": 30}
        if action.get("status") == 200:
            # Counted before the answer is written: a kill right now still counts as a
            # receipt the sender may not have recorded (a duplicate to come).
            with self.lock:
                self.accepted[event_id] = self.accepted.get(event_id, 0) + 1
                self.seq_of[event_id] = seq
        return action


def run_sender(sender, spool_dir, url, first_seq, count, kill_after, rng, receiver):
    # Requests of an earlier, killed sender still being slow-walked finish first, so the
    # in-flight count at the kill is this sender's.
    quiet = time.monotonic() + 5
    while receiver.in_flight.get("*", 0) > 0 and time.monotonic() < quiet:
        time.sleep(0.01)
    proc = subprocess.Popen([sender, spool_dir, url, SECRET, str(first_seq), str(count)],
                            stdout=subprocess.PIPE, text=True)
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line)

    t = threading.Thread(target=reader)
    t.start()
    in_flight_at_kill = None
    if kill_after is not None:
        deadline = time.monotonic() + 60
        while (sum(1 for l in list(lines) if l.startswith("A ")) < kill_after
               and proc.poll() is None and time.monotonic() < deadline):
            time.sleep(0.002)
        time.sleep(rng.choice([0, rng.uniform(0, 0.05), rng.uniform(0, 0.5)]))
        wait_in_flight = time.monotonic() + 1
        while (receiver.in_flight.get("*", 0) == 0 and proc.poll() is None
               and time.monotonic() < wait_in_flight):
            time.sleep(0.001)
        in_flight_at_kill = receiver.in_flight.get("*", 0)
        if proc.poll() is not None:
            raise SystemExit(f"the sender exited before the kill (rc {proc.returncode})")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    else:
        try:
            proc.wait(timeout=400)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise SystemExit("the draining sender did not finish")
    t.join()
    parsed = [l.rstrip("\n").split(" ") for l in lines if l.endswith("\n")]
    return proc.returncode, parsed, in_flight_at_kill


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    sender = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    per_round = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    seed = int(os.environ.get("WEBHOOK_KILL_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}, {rounds} rounds of {per_round} events", flush=True)
    rng = random.Random(seed)
    ledger = Ledger()
    receiver = Receiver(decide=ledger.decide)
    port = receiver.start()
    url = f"http://127.0.0.1:{port}/hook"
    work = tempfile.mkdtemp(prefix="ivr-webhook-kill-")
    spool_dir = os.path.join(work, "spool")
    acknowledged = {}  # id -> seq
    try:
        kills_in_flight = 0
        for r in range(rounds):
            kill_after = rng.randint(1, per_round)
            rc, out, in_flight = run_sender(sender, spool_dir, url, r * per_round, per_round,
                                            kill_after, rng, receiver)
            acks = [(f[1], int(f[2])) for f in out if f[0] == "A"]
            acknowledged.update(acks)
            kills_in_flight += 1 if in_flight else 0
            print(f"round {r}: killed after {len(acks)} acknowledged publishes, "
                  f"{sum(1 for f in out if f[0] == 'D')} deliveries reported, "
                  f"{in_flight} deliveries in progress at the receiver at the kill", flush=True)
        rc, out, _ = run_sender(sender, spool_dir, url, 0, 0, None, rng, receiver)
        idle = [f for f in out if f[0] == "idle"]
        if rc != 0 or not idle:
            raise SystemExit(f"the draining sender failed (rc {rc})")
        dead = int(idle[0][1])

        with ledger.lock:
            accepted = dict(ledger.accepted)
            seq_of = dict(ledger.seq_of)
            problems = list(ledger.problems)
        lost = sorted(i for i in acknowledged if i not in accepted)
        wrong_seq = sorted(i for i in acknowledged if i in accepted and seq_of[i] != acknowledged[i])
        duplicates = sum(n - 1 for n in accepted.values())
        duplicated_ids = sum(1 for n in accepted.values() if n > 1)
        unacknowledged = len(set(accepted) - set(acknowledged))
        requests = sum(ledger.requests.values())
        print(f"acknowledged {len(acknowledged)}, accepted {len(accepted)} distinct ids in "
              f"{requests} requests; duplicates {duplicates} (of {duplicated_ids} ids); "
              f"accepted but never acknowledged (publish in flight at a kill) {unacknowledged}; "
              f"dead letters {dead}; kills with a delivery in flight {kills_in_flight} "
              f"of {rounds}", flush=True)
        failures = []
        if not acknowledged:
            failures.append("nothing was ever acknowledged")
        if lost:
            failures.append(f"{len(lost)} acknowledged events never arrived: {lost[:5]}")
        if wrong_seq:
            failures.append(f"bodies with the wrong seq: {wrong_seq[:5]}")
        if problems:
            failures.append(f"receiver problems: {problems[:5]}")
        if dead:
            failures.append(f"{dead} dead letters")
        if failures:
            raise SystemExit(f"FAILED (seed {seed}): " + "; ".join(failures))
        print("ok", flush=True)
    finally:
        receiver.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
