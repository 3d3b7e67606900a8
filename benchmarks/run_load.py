#!/usr/bin/python3
"""Load benchmark driver (issue 2): N concurrent calls into ivr-hello, two-way RTP, RFC 4733 digits.

For each N it starts ivr-hello pinned to core 0 and ivr-load pinned to core 1, waits until all N
calls are up, measures ivr-hello's CPU (utime+stime from /proc/PID/stat) and RSS (VmRSS minus its
idle RSS) over a window with all N calls up, lets the calls finish (digits, goodbye, BYE) and
prints one table row per N. Logs and per-call CSVs go to --out.

    /usr/bin/python3 benchmarks/run_load.py --build /work/build-h6 --calls 100,1000,2000

--standin runs a SIPp UAS (benchmarks/sipp/standin_uas.xml, RTP echo) instead of ivr-hello: it
validates the generator; the digit check is then skipped.
"""

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(*args):
    print("run_load:", *args, file=sys.stderr, flush=True)


# ---- /proc sampling ----

def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def proc_threads(pid):
    """{"name/tid": cpu ticks} for every thread."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except FileNotFoundError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[f"{name}/{tid}"] = int(fields[11]) + int(fields[12])
    return out


def proc_sched_ns(pid):
    """On-CPU nanoseconds summed over the live threads (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def thread_roles(pid):
    """{tid: role} from one gdb backtrace of the idle server (empty without gdb)."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 40"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    # Checked in order against the whole backtrace of a thread; the media threads are the
    # libevent loops that are not the engine's.
    rules = [("SofiaSipStack", "sip"), ("su_base_port_run", "sip"), ("EventLoop", "engine"),
             ("BlockingWorker", "worker"), ("MediaThread", "media"), (" in main ", "main"),
             ("event_base_loop", "media")]
    roles, stacks, tid = {}, {}, None
    for line in out.splitlines():
        if line.startswith("Thread ") and "LWP " in line:
            tid = line.split("LWP ")[1].split(")")[0]
            stacks[tid] = ""
        elif line.startswith("#") and tid:
            stacks[tid] += line + "\n"
    for tid, stack in stacks.items():
        roles[tid] = next((name for needle, name in rules if needle in stack), "other")
    return roles


def udp_drops(ranges):
    """Per-socket receive drops (/proc/net/udp) summed per named port range."""
    out = {name: 0 for name in ranges}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            p = line.split()
            port = int(p[1].split(":")[1], 16)
            for name, (lo, hi) in ranges.items():
                if lo <= port <= hi:
                    out[name] += int(p[-1])
    return out


def udp_snmp():
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(x) for x in rows[1][1:])))


def core_ticks():
    """{cpuN: (busy, total)} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                v = [int(x) for x in p[1:]]
                idle = v[3] + v[4]
                total = sum(v[:8])
                out[p[0]] = (total - idle, total, v[5] + v[6])  # busy, total, irq+softirq
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- ports ----

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        t.bind(("127.0.0.1", port))
    return port


def free_range(start, count, avoid=()):
    """First run of `count` free UDP ports from `start` (checked by binding each one)."""
    port = start
    while port + count < 32768:
        ok = True
        for p in range(port, port + count):
            if any(lo <= p <= hi for lo, hi in avoid):
                ok = False
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                port = p + 1
                break
        if ok:
            return port, port + count - 1
    raise RuntimeError("no free port range")


# ---- processes ----

class Reader(threading.Thread):
    """Collects a child's stdout lines; remembers EVENT lines and the REPORT."""

    def __init__(self, stream, copy_to):
        super().__init__(daemon=True)
        self.stream, self.copy_to = stream, copy_to
        self.events, self.report = {}, None
        self.cond = threading.Condition()

    def run(self):
        with open(self.copy_to, "w") as copy:
            for line in self.stream:
                copy.write(line)
                copy.flush()
                with self.cond:
                    if line.startswith("EVENT "):
                        parts = line.split()
                        t = float(parts[1][2:])
                        self.events.setdefault(parts[2], (t, time.monotonic(), line.strip()))
                    elif line.startswith("REPORT "):
                        self.report = json.loads(line[7:])
                    self.cond.notify_all()

    def wait_for(self, names, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while not any(n in self.events for n in names):
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return next(n for n in names if n in self.events)


def wait_for_text(path, text, timeout, proc):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with open(path) as f:
                if text in f.read():
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return False


def stop(proc, sig=signal.SIGTERM, timeout=20):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_quiet(limit_pct, timeout_s=3600):
    """Waits until both cores together were under limit_pct busy for 10 s."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        a = core_ticks()
        time.sleep(10)
        b = core_ticks()
        busy = sum(b[c][0] - a[c][0] for c in b)
        total = sum(b[c][1] - a[c][1] for c in b)
        pct = 100.0 * busy / total if total else 0
        if pct < limit_pct:
            return pct
        log(f"machine busy ({pct:.0f} % over 10 s, load {loadavg()}): waiting")
    return None


# ---- one run ----

def pin(args, core):
    """taskset to one core; with --rt also SCHED_RR (only to shield a run from a busy machine)."""
    prefix = ["taskset", "-c", str(core)]
    return prefix + (["chrt", "-r", str(args.rt)] if args.rt else [])


def run_one(args, n):
    out = os.path.join(args.out, f"n{n}")
    k = 2
    while os.path.exists(out):  # repeated runs keep their own logs
        out = os.path.join(args.out, f"n{n}-{k}")
        k += 1
    os.makedirs(out, exist_ok=True)
    ramp_s = n / args.rate
    hold = args.hold if args.hold else ramp_s + args.settle + args.window + 8
    server_sip, load_sip = free_port(), free_port()
    srv_rtp = free_range(args.rtp_base, 2 * n + 200)
    gen_rtp = free_range(srv_rtp[1] + 1, n + 100, avoid=[srv_rtp])
    res = {"calls": n, "rate": args.rate, "hold_s": round(hold, 1), "window_s": args.window,
           "loadavg_before": loadavg(), "server": "sipp-standin" if args.standin else "ivr-hello"}

    server_out = os.path.join(out, "server.out")
    server_err = os.path.join(out, "server.err")
    if args.standin:
        cmd = ["sipp", "-sf", os.path.join(HERE, "sipp", "standin_uas.xml"), "-i", "127.0.0.1",
               "-p", str(server_sip), "-mi", "127.0.0.1", "-mp", str(srv_rtp[0]), "-rtp_echo",
               "-nostdin", "-max_socket", str(4 * n + 100)]
        ready_text = None
    else:
        exe = os.path.join(args.build, "examples", "embed-c", "ivr-hello")
        cmd = [exe, "--listen", f"127.0.0.1:{server_sip}",
               "--prompts", args.prompts or os.path.join(args.build, "prompts"),
               "--rtp-ports", f"{srv_rtp[0]}-{srv_rtp[1]}",
               "--first-timeout", str(int((hold + 60) * 1000)),
               "--inter-timeout", "5000", "--log-level", args.log_level]
        ready_text = "listening on sip:"
    cmd = pin(args, args.server_core) + cmd
    res["server_cmd"] = " ".join(cmd)
    log(f"N={n}: starting server: {res['server_cmd']}")
    server = subprocess.Popen(cmd, stdout=open(server_out, "w"), stderr=open(server_err, "w"),
                              stdin=subprocess.DEVNULL, cwd=out)
    try:
        if ready_text:
            if not wait_for_text(server_err, ready_text, 20, server):
                raise RuntimeError(f"server not ready, see {server_err}")
        else:
            time.sleep(1.0)
        time.sleep(1.0)
        idle_status = proc_status(server.pid)
        c0, t0 = proc_cpu_ticks(server.pid), time.monotonic()
        time.sleep(2.0)
        res["idle_cpu_pct"] = 100.0 * (proc_cpu_ticks(server.pid) - c0) / CLK_TCK / (
            time.monotonic() - t0)
        res["idle_rss_kb"] = idle_status["VmRSS"]
        res["idle_threads"] = idle_status.get("Threads")
        roles = {} if args.standin else thread_roles(server.pid)
        res["thread_roles"] = roles
        snmp0 = udp_snmp()

        gen_cmd = pin(args, args.load_core) + [
                   os.path.join(args.build, "benchmarks", "ivr-load"),
                   "--target", f"127.0.0.1:{server_sip}", "--local", f"127.0.0.1:{load_sip}",
                   "--calls", str(n), "--rate", str(args.rate), "--hold", f"{hold:.1f}",
                   "--bye-after", str(args.bye_after), "--rtp-ports", f"{gen_rtp[0]}-{gen_rtp[1]}",
                   "--report", os.path.join(out, "report.json"),
                   "--calls-csv", os.path.join(out, "calls.csv"), "--seed", str(args.seed + n),
                   "--max-run", str(int(hold + ramp_s + 120))]
        if not args.standin:
            gen_cmd += ["--server-log", server_out]
        res["load_cmd"] = " ".join(gen_cmd)
        log(f"N={n}: starting generator: {res['load_cmd']}")
        gen = subprocess.Popen(gen_cmd, stdout=subprocess.PIPE, text=True,
                               stderr=open(os.path.join(out, "load.err"), "w"),
                               stdin=subprocess.DEVNULL)
        reader = Reader(gen.stdout, os.path.join(out, "load.out"))
        reader.start()

        got = reader.wait_for(["all_up", "first_end", "done"], ramp_s + 60)
        if got != "all_up":
            log(f"N={n}: not all calls came up ({got}); measuring what is up")
            reader.wait_for(["ramp_done"], 30)
        time.sleep(args.settle)
        s0 = {"cpu": proc_cpu_ticks(server.pid), "sched": proc_sched_ns(server.pid),
              "thr": proc_threads(server.pid),
              "gen": proc_cpu_ticks(gen.pid), "cores": core_ticks(), "t": time.monotonic()}
        rss_samples = []
        while time.monotonic() - s0["t"] < args.window:
            time.sleep(1.0)
            rss_samples.append(proc_status(server.pid))
        s1 = {"cpu": proc_cpu_ticks(server.pid), "sched": proc_sched_ns(server.pid),
              "thr": proc_threads(server.pid),
              "gen": proc_cpu_ticks(gen.pid), "cores": core_ticks(), "t": time.monotonic()}
        dt = s1["t"] - s0["t"]
        res["measured_window_s"] = round(dt, 2)
        with reader.cond:
            fe = reader.events.get("first_end")
        res["window_clean"] = fe is None or fe[1] > s1["t"]
        res["server_cpu_pct"] = 100.0 * (s1["cpu"] - s0["cpu"]) / CLK_TCK / dt
        res["server_cpu_pct_per_call"] = res["server_cpu_pct"] / n
        # Cross-check with the scheduler's nanosecond run time (not tick-sampled).
        res["server_sched_pct"] = 100.0 * (s1["sched"] - s0["sched"]) / 1e9 / dt
        thr = {f"{roles.get(k.split('/')[1], '?')}/{k.split('/')[1]}":
               round(100.0 * (v - s0["thr"].get(k, 0)) / CLK_TCK / dt, 2)
               for k, v in s1["thr"].items()}
        res["server_threads_cpu_pct"] = dict(
            sorted(((k, v) for k, v in thr.items() if v > 0), key=lambda kv: -kv[1]))
        res["load_cpu_pct"] = 100.0 * (s1["gen"] - s0["gen"]) / CLK_TCK / dt
        cores = {}
        for cpu in s1["cores"]:
            b = s1["cores"][cpu][0] - s0["cores"][cpu][0]
            tot = s1["cores"][cpu][1] - s0["cores"][cpu][1]
            irq = s1["cores"][cpu][2] - s0["cores"][cpu][2]
            cores[cpu] = {"busy_pct": round(100.0 * b / tot, 1) if tot else 0,
                          "irq_softirq_pct": round(100.0 * irq / tot, 1) if tot else 0}
        res["cores"] = cores
        # What else ran on the two cores during the window (other processes, kernel threads):
        # core busy minus our process. Much above a few % means a noisy run.
        res["other_on_server_core_pct"] = round(
            cores.get(f"cpu{args.server_core}", {}).get("busy_pct", 0) - res["server_cpu_pct"], 1)
        res["other_on_load_core_pct"] = round(
            cores.get(f"cpu{args.load_core}", {}).get("busy_pct", 0) - res["load_cpu_pct"], 1)
        rss = sum(s["VmRSS"] for s in rss_samples) / len(rss_samples)
        res["rss_kb"] = round(rss)
        res["rss_max_kb"] = max(s["VmRSS"] for s in rss_samples)
        res["rss_per_call_kb"] = (rss - res["idle_rss_kb"]) / n
        res["threads"] = rss_samples[-1].get("Threads")
        res["loadavg_window"] = loadavg()
        res["udp_drops_after_window"] = udp_drops({"server_rtp": srv_rtp, "load_rtp": gen_rtp})
        log(f"N={n}: window {dt:.1f}s: server {res['server_cpu_pct']:.1f}% of a core, "
            f"{res['rss_per_call_kb']:.1f} KB/call; threads {res['server_threads_cpu_pct']}")

        gen.wait(timeout=hold + ramp_s + 240)
        reader.join(10)
        res["load_rc"] = gen.returncode
        res["report"] = reader.report
        res["server_hwm_kb"] = proc_status(server.pid).get("VmHWM")
        snmp1 = udp_snmp()
        res["udp_snmp_delta"] = {k: snmp1[k] - snmp0[k] for k in
                                 ("InDatagrams", "OutDatagrams", "RcvbufErrors", "SndbufErrors",
                                  "NoPorts")}
    finally:
        stop(server)
        for p in ("gen",):
            if p in locals() and locals()[p].poll() is None:
                stop(locals()[p], signal.SIGKILL)
    res["server_rc"] = server.returncode
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    return res


def fmt_row(r):
    rep = r.get("report") or {}
    lat = rep.get("invite_200_ms", {})
    rtp = rep.get("rtp", {})
    dt = rep.get("dtmf", {})
    digits = (f"{dt.get('digits_correct')}/{dt.get('digits_sent')} "
              f"({dt.get('calls_correct')}/{dt.get('calls_sent')} calls)"
              if dt.get("checked") else "n/a")
    exp = rtp.get("rx_expected_by_seq") or 0
    rx = rtp.get("rx", 0)
    return (f"| {r['calls']} | {rep.get('max_up', '?')} | {r['server_cpu_pct']:.1f} % | "
            f"{r['server_cpu_pct_per_call']:.4f} % | {r['rss_per_call_kb']:.1f} KB | "
            f"{lat.get('p50', -1):.2f} / {lat.get('p99', -1):.2f} ms | {digits} | "
            f"{rx} / {exp} ({rtp.get('rx_expected_by_time', 0)} by time) | "
            f"{r['server_cpu_pct']:.0f} / {r['load_cpu_pct']:.0f} / "
            f"{r['cores'].get('cpu0', {}).get('busy_pct', 0):.0f} / "
            f"{r['cores'].get('cpu1', {}).get('busy_pct', 0):.0f} % |")


HEADER = ("| N | max up | ivr-hello CPU (% of one core) | per call | RSS per call | "
          "INVITE->200 p50 / p99 | digits correct / sent | RTP rx by generator / expected | "
          "ivr-hello / ivr-load / core 0 / core 1 busy |\n"
          "|---|---|---|---|---|---|---|---|---|")



def print_table_from(path, header, fmt_row):
    """Prints the table of an earlier run's results.json."""
    with open(path) as f:
        print(header)
        for r in json.load(f):
            print(fmt_row(r))


def raise_fd_limit(calls_csv, log):
    """Each call costs a few sockets on each side: raise RLIMIT_NOFILE for the largest N."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 8 * max(int(x) for x in calls_csv.split(",")) + 1024
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    log(f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}; load average {loadavg()}")

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="CMake build directory")
    ap.add_argument("--calls", default="100,1000,2000", help="comma-separated N values")
    ap.add_argument("--rate", type=float, default=100.0, help="calls per second")
    ap.add_argument("--window", type=float, default=25.0, help="measured window, seconds")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after all calls are up")
    ap.add_argument("--hold", type=float, default=0, help="200 OK -> digits (0: auto)")
    ap.add_argument("--bye-after", type=float, default=15.0)
    ap.add_argument("--prompts", help="prompt dir (default BUILD/prompts)")
    ap.add_argument("--log-level", default="warn")
    ap.add_argument("--rtp-base", type=int, default=16000)
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per N")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="before each run, wait until the machine is under this %% busy")
    ap.add_argument("--rt", type=int, default=0,
                    help="run both under SCHED_RR with this priority (busy machine only)")
    ap.add_argument("--standin", action="store_true", help="SIPp UAS instead of ivr-hello")
    ap.add_argument("--out", default="/tmp/ivr-load-results")
    ap.add_argument("--table-from", metavar="RESULTS_JSON",
                    help="only print the table of an earlier run's results.json")
    args = ap.parse_args()
    if args.table_from:
        return print_table_from(args.table_from, HEADER, fmt_row)
    args.build = os.path.abspath(args.build)
    os.makedirs(args.out, exist_ok=True)

    raise_fd_limit(args.calls, log)

    rows = []
    for n in [int(x) for x in args.calls.split(",") for _ in range(args.repeat)]:
        if args.wait_quiet:
            pct = wait_quiet(args.wait_quiet)
            log(f"machine quiet enough ({pct} % busy)" if pct is not None else "still busy: running")
        r = run_one(args, n)
        rows.append(r)
        print(HEADER if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
        print(fmt_row(r), flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\nDetails:")
    for r in rows:
        rep = r.get("report") or {}
        print(f"N={r['calls']}: window {r['measured_window_s']} s clean={r['window_clean']} "
              f"load avg {r['loadavg_before']} -> {r['loadavg_window']}; cores {r['cores']}; "
              f"server threads {r['server_threads_cpu_pct']}; server schedstat "
              f"{r.get('server_sched_pct', 0):.1f} %; generator "
              f"{r['load_cpu_pct']:.1f} %; idle RSS {r['idle_rss_kb']} KB, window RSS "
              f"{r['rss_kb']} KB (HWM {r.get('server_hwm_kb')}), idle CPU "
              f"{r['idle_cpu_pct']:.2f} %; final {rep.get('final_status')}; INVITE->200 "
              f"{rep.get('invite_200_ms')}; rtp {rep.get('rtp')}; generator timing "
              f"{rep.get('generator')}; UDP drops after window {r.get('udp_drops_after_window')}"
              f", UDP counters over the run (system-wide) {r.get('udp_snmp_delta')}; dtmf problems {(rep.get('dtmf') or {}).get('problems')}; "
              f"server BYE {rep.get('server_bye')}, our BYE {rep.get('our_bye')}, server BYE "
              f"before digits {rep.get('server_bye_before_digits')}")
    print(f"\nLogs: {args.out}")


if __name__ == "__main__":
    main()
