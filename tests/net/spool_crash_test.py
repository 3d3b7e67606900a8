#!/usr/bin/python3
"""SIGKILL a spool writer at random moments; nothing it acknowledged may be lost.

Usage: spool_crash_test.py <spool_crash_writer> [rounds]

Every round starts the writer on the same spool directory, waits until it has acknowledged
a random number of appends, waits a random few milliseconds more and SIGKILLs it. Then
`spool_crash_writer dump` recovers the spool and lists what it holds, and the test checks,
over all rounds so far:
  - every acknowledged append ("A") is present, unless its delivery was issued ("d");
  - every acknowledged delivery ("D") is absent;
  - every acknowledged failure ("F") of a record still present shows attempts >= 1;
  - no record is damaged (dump exits 3) and nothing unknown appears.
A record whose append was in flight may or may not be present, never half-present.
The seed is printed so a failing run can be repeated (SPOOL_CRASH_SEED).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


def run_round(writer, spool_dir, round_no, rng):
    proc = subprocess.Popen([writer, "write", spool_dir, str(round_no)],
                            stdout=subprocess.PIPE, text=True)
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line)

    t = threading.Thread(target=reader)
    t.start()
    want = rng.randint(1, 1500)
    deadline = time.monotonic() + 60
    while (sum(1 for l in list(lines) if l.startswith("A ")) < want
           and proc.poll() is None and time.monotonic() < deadline):
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.03))
    exited_early = proc.poll() is not None
    if not exited_early:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    t.join()
    if exited_early:
        raise SystemExit(f"round {round_no}: the writer exited by itself (rc {proc.returncode})")
    return [l.rstrip("\n").split(" ") for l in lines if l.endswith("\n")]


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    writer = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seed = int(os.environ.get("SPOOL_CRASH_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}, {rounds} rounds", flush=True)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="ivr-spool-crash-")
    spool_dir = os.path.join(work, "spool")
    appended, issued_delivery, delivered, failed = set(), set(), set(), set()
    try:
        for r in range(rounds):
            for tag, ident in run_round(writer, spool_dir, r, rng):
                {"A": appended, "d": issued_delivery, "D": delivered, "F": failed}[tag].add(ident)
            dump = subprocess.run([writer, "dump", spool_dir], capture_output=True, text=True,
                                  timeout=300)
            sys.stderr.write(dump.stderr)
            if dump.returncode != 0:
                raise SystemExit(f"round {r}: dump failed with rc {dump.returncode}")
            present = {}
            for line in dump.stdout.splitlines():
                tag, ident, attempts = line.split(" ")
                present[ident] = int(attempts)
            lost = sorted(appended - issued_delivery - present.keys())
            resurrected = sorted(delivered & present.keys())
            unrecorded_failures = sorted(i for i in failed if i in present and present[i] < 1)
            unknown = sorted(present.keys() - appended)
            print(f"round {r}: {len(appended)} appends acknowledged so far, "
                  f"{len(delivered)} deliveries, {len(present)} records present", flush=True)
            # Records whose append was in flight at the kill may be present but unacknowledged:
            # allowed, and the writer of a later round never touches them.
            problems = []
            if lost:
                problems.append(f"acknowledged appends lost: {lost[:5]}")
            if resurrected:
                problems.append(f"acknowledged deliveries came back: {resurrected[:5]}")
            if unrecorded_failures:
                problems.append(f"acknowledged failures lost: {unrecorded_failures[:5]}")
            if problems:
                raise SystemExit(f"round {r} (seed {seed}): " + "; ".join(problems))
            # In-flight appends that made it to disk count as appended from now on, so a later
            # round may not lose them either.
            appended |= set(unknown)
        if not appended:
            raise SystemExit("no append was ever acknowledged")
        print("ok", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
