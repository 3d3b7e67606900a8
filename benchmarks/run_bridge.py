#!/usr/bin/python3
"""Bridged-call benchmark driver (issue 5, item 8): N calls routed by ivrd to a dialing system,
media relayed both ways.

For each N it starts, on free ports:
  - the dialing system: `ivr-load --answer` on core 1 (answers every INVITE with PCMU SDP, echoes
    RTP from one shared socket re-stamped with its own SSRC/sequence, or with --far paced sends
    its own frames per call; hangs up --hold seconds after its 200 OK);
  - ivrd (Release) on core 0 with a flow `answer -> route (plan "dialers": least_busy over two
    targets of capacity N, probes off) -> hangup`;
  - the callers: `ivr-load --no-digits` on core 1, N calls at --rate, PCMU 20 ms frames.
It waits until the dialing system holds all N calls, measures ivrd's CPU (utime+stime from
/proc/PID/stat, per thread from /proc/PID/task), RSS and both generators' CPU over a window, lets
the dialing system hang up (ivrd's flow then hangs up the caller) and checks from ivrd's stdout
that every call was delivered and ended by the flow's hangup node.

    /usr/bin/python3 benchmarks/run_bridge.py --build build-rel --calls 100,500,1000
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_load import (CLK_TCK, Reader, core_ticks, free_port, free_range, loadavg,  # noqa: E402
                      print_table_from, proc_cpu_ticks, proc_sched_ns, proc_status, proc_threads,
                      raise_fd_limit, stop,
                      thread_roles, udp_drops, udp_snmp, wait_for_text, wait_quiet)


def log(*args):
    print("run_bridge:", *args, file=sys.stderr, flush=True)


FLOW = {
    "flow": "bridge", "version": "1", "start": "pickup",
    "nodes": {
        "pickup": {"verb": "answer", "next": "to_dialers"},
        "to_dialers": {"verb": "route", "plan": "dialers", "ring_timeout_ms": 20000,
                       "next": "bye", "on_failed": "not_delivered", "on_error": "not_delivered"},
        "bye": {"verb": "hangup"},
        "not_delivered": {"verb": "hangup"},
    },
}


def write_config(out, args, n, sip_port, rtp, far_sip):
    cap = max(n, 1)
    targets = {}
    for k in range(args.targets):
        name = f"dialer_{chr(ord('a') + k)}"
        targets[name] = {"uris": [f"sip:agents{k}@127.0.0.1:{far_sip}"], "capacity": cap,
                         "probe": {"enabled": False}}
    cfg = {
        "sip": {"address": "127.0.0.1", "port": sip_port, "transport": "udp"},
        "rtp": {"address": "127.0.0.1", "port_min": rtp[0], "port_max": rtp[1]},
        "media_threads": args.media_threads,
        "log_level": args.log_level,
        "flows": [{"file": "bridge_flow.json"}],
        "entry_points": {"*": "bridge"},
        "routing": {"targets": targets, "plans": {"dialers": {"entries": [
            {"strategy": "least_busy", "targets": sorted(targets)}]}}},
    }
    with open(os.path.join(out, "bridge_flow.json"), "w") as f:
        json.dump(FLOW, f, indent=1)
    path = os.path.join(out, "ivrd.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def ivrd_stdout(path):
    """Counts of ivrd's per-call stdout lines: delivered per target, ends per path."""
    delivered, ends, failed, other = {}, {}, 0, 0
    with open(path) as f:
        for line in f:
            m = re.match(r"call \S+ delivered target (\S+) ", line)
            if m:
                delivered[m.group(1)] = delivered.get(m.group(1), 0) + 1
                continue
            m = re.match(r"call \S+ flow (\S+) version \S+ end (\S+) path (.*)$", line)
            if m:
                key = f"{m.group(2)}: {m.group(3).strip()}"
                ends[key] = ends.get(key, 0) + 1
                continue
            if " route attempt " in line:
                failed += 1
            elif " route decided " not in line:
                other += 1
    return {"delivered": delivered, "delivered_total": sum(delivered.values()), "ends": ends,
            "failed_attempts": failed, "other_lines": other}


class Tracer(threading.Thread):
    """Every 50 ms: run and run-queue time of ivrd's media threads and of both generators, and
    each core's busy and steal ticks, to trace.csv: an RTP gap can then be put on one side."""

    def __init__(self, path, pids, period=0.05):
        super().__init__(daemon=True)
        self.path, self.pids, self.period = path, pids, period
        self.done = threading.Event()

    @staticmethod
    def sched(pid, prefix=None):
        run = wait = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                if prefix:
                    with open(f"/proc/{pid}/task/{tid}/comm") as f:
                        if not f.read().startswith(prefix):
                            continue
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    a, b, _ = f.read().split()
                run, wait = run + int(a), wait + int(b)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return run, wait

    def run(self):
        with open(self.path, "w") as out:
            out.write("mono,ivrd_media_run_ms,ivrd_media_wait_ms,caller_run_ms,caller_wait_ms,"
                      "far_run_ms,far_wait_ms,cpu0_busy,cpu0_steal,cpu1_busy,cpu1_steal\n")
            prev = None
            while not self.done.wait(self.period):
                try:
                    cur = (self.sched(self.pids["ivrd"], "ivr-media") +
                           self.sched(self.pids["caller"]) + self.sched(self.pids["far"]))
                except FileNotFoundError:
                    return
                with open("/proc/stat") as f:
                    cores = [line.split() for line in f if line.startswith(("cpu0", "cpu1"))]
                ticks = []
                for c in cores:
                    v = [int(x) for x in c[1:]]
                    ticks += [sum(v[:8]) - v[3] - v[4] - v[7], v[7]]
                now = (time.monotonic(),) + cur + tuple(ticks)
                if prev:
                    d = [(a - b) for a, b in zip(now, prev)]
                    out.write(f"{now[0]:.3f}," + ",".join(f"{x / 1e6:.1f}" for x in d[1:7]) + "," +
                              ",".join(str(x) for x in d[7:]) + "\n")
                prev = now


def window_sample(pids):
    return {"cpu": {k: proc_cpu_ticks(p) for k, p in pids.items()},
            "media": Tracer.sched(pids["ivrd"], "ivr-media"),
            "sched": proc_sched_ns(pids["ivrd"]), "thr": proc_threads(pids["ivrd"]),
            "cores": core_ticks(), "t": time.monotonic()}


def run_one(args, n):
    out = os.path.join(args.out, f"n{n}")
    k = 2
    while os.path.exists(out):
        out = os.path.join(args.out, f"n{n}-{k}")
        k += 1
    os.makedirs(out)
    ramp_s = n / args.rate
    hold = ramp_s + args.settle + args.window + 8  # the dialing system's BYE after its 200 OK
    ivrd_sip, caller_sip, far_sip = free_port(), free_port(), free_port()
    # ivrd: an even RTP+RTCP pair per leg, two legs per call.
    start = args.rtp_base + (args.rtp_base % 2)
    ivrd_rtp = free_range(start, 4 * n + 400)
    caller_rtp = free_range(ivrd_rtp[1] + 1, n + 100)
    far_rtp = free_range(caller_rtp[1] + 1, (n + 100) if args.far == "paced" else 4)
    res = {"calls": n, "rate": args.rate, "hold_s": round(hold, 1), "window_s": args.window,
           "far": args.far, "targets": args.targets, "media_threads": args.media_threads,
           "loadavg_before": loadavg()}
    cfg = write_config(out, args, n, ivrd_sip, ivrd_rtp, far_sip)
    bench = os.path.join(args.build, "benchmarks", "ivr-load")
    procs = {}
    try:
        far_cmd = ["taskset", "-c", str(args.load_core), bench, "--answer",
                   "--local", f"127.0.0.1:{far_sip}", "--calls", str(n), "--hold", f"{hold:.1f}",
                   "--media", args.far, "--rtp-ports", f"{far_rtp[0]}-{far_rtp[1]}",
                   "--report", os.path.join(out, "far_report.json"),
                   "--calls-csv", os.path.join(out, "far_calls.csv"),
                   "--seed", str(args.seed + 7 * n), "--max-run", str(int(hold + ramp_s + 180))]
        res["far_cmd"] = " ".join(far_cmd)
        log(f"N={n}: dialing system: {res['far_cmd']}")
        procs["far"] = subprocess.Popen(far_cmd, stdout=subprocess.PIPE, text=True,
                                        stderr=open(os.path.join(out, "far.err"), "w"),
                                        stdin=subprocess.DEVNULL)
        far = Reader(procs["far"].stdout, os.path.join(out, "far.out"))
        far.start()
        if far.wait_for(["start"], 20) != "start":
            raise RuntimeError("the dialing system did not start, see far.err")

        ivrd_cmd = ["taskset", "-c", str(args.server_core),
                    os.path.join(args.build, "examples", "ivrd", "ivrd"), "--config", cfg,
                    "--log-level", args.log_level]
        res["ivrd_cmd"] = " ".join(ivrd_cmd)
        log(f"N={n}: ivrd: {res['ivrd_cmd']}")
        ivrd_out, ivrd_err = os.path.join(out, "ivrd.out"), os.path.join(out, "ivrd.err")
        procs["ivrd"] = subprocess.Popen(ivrd_cmd, stdout=open(ivrd_out, "w"),
                                         stderr=open(ivrd_err, "w"), stdin=subprocess.DEVNULL,
                                         cwd=out)
        ivrd = procs["ivrd"]
        if not wait_for_text(ivrd_err, "ivrd listening on", 20, ivrd):
            raise RuntimeError(f"ivrd not ready, see {ivrd_err}")
        time.sleep(2.0)
        idle = proc_status(ivrd.pid)
        c0, t0 = proc_cpu_ticks(ivrd.pid), time.monotonic()
        time.sleep(2.0)
        res["idle_cpu_pct"] = 100.0 * (proc_cpu_ticks(ivrd.pid) - c0) / CLK_TCK / (
            time.monotonic() - t0)
        res["idle_rss_kb"] = idle["VmRSS"]
        roles = thread_roles(ivrd.pid)
        res["thread_roles"] = roles
        snmp0 = udp_snmp()

        caller_cmd = ["taskset", "-c", str(args.load_core), bench,
                      "--target", f"127.0.0.1:{ivrd_sip}", "--local", f"127.0.0.1:{caller_sip}",
                      "--calls", str(n), "--rate", str(args.rate), "--no-digits",
                      "--hold", "100000", "--rtp-ports", f"{caller_rtp[0]}-{caller_rtp[1]}",
                      "--report", os.path.join(out, "caller_report.json"),
                      "--calls-csv", os.path.join(out, "caller_calls.csv"),
                      "--seed", str(args.seed + n), "--max-run", str(int(hold + ramp_s + 120))]
        res["caller_cmd"] = " ".join(caller_cmd)
        log(f"N={n}: callers: {res['caller_cmd']}")
        procs["caller"] = subprocess.Popen(caller_cmd, stdout=subprocess.PIPE, text=True,
                                           stderr=open(os.path.join(out, "caller.err"), "w"),
                                           stdin=subprocess.DEVNULL)
        caller = Reader(procs["caller"].stdout, os.path.join(out, "caller.out"))
        caller.start()
        tracer = None
        if args.trace:
            tracer = Tracer(os.path.join(out, "trace.csv"), {"ivrd": ivrd.pid, "far": procs[
                "far"].pid, "caller": procs["caller"].pid})
            tracer.start()

        # All N bridged: the dialing system holds N answered calls.
        got = far.wait_for(["all_up", "first_end", "done"], ramp_s + 60)
        res["all_bridged"] = got == "all_up"
        if got != "all_up":
            log(f"N={n}: not all calls reached the dialing system ({got}); measuring what is up")
        time.sleep(args.settle)
        pids = {"ivrd": ivrd.pid, "caller": procs["caller"].pid, "far": procs["far"].pid}
        s0 = window_sample(pids)
        rss = []
        while time.monotonic() - s0["t"] < args.window:
            time.sleep(1.0)
            rss.append(proc_status(ivrd.pid))
        s1 = window_sample(pids)
        dt = s1["t"] - s0["t"]
        res["measured_window_s"] = round(dt, 2)
        with far.cond:
            fe = far.events.get("first_end")
        res["window_clean"] = fe is None or fe[1] > s1["t"]
        for name in pids:
            res[f"{name}_cpu_pct"] = 100.0 * (s1["cpu"][name] - s0["cpu"][name]) / CLK_TCK / dt
        res["ivrd_cpu_pct_per_call"] = res["ivrd_cpu_pct"] / n
        res["ivrd_sched_pct"] = 100.0 * (s1["sched"] - s0["sched"]) / 1e9 / dt
        # Time the media threads were runnable but not running (another task had the core).
        res["media_runqueue_wait_pct"] = 100.0 * (s1["media"][1] - s0["media"][1]) / 1e9 / dt
        thr = {}
        for key, v in s1["thr"].items():
            comm, tid = key.rsplit("/", 1)
            role = "media" if comm.startswith("ivr-media") else roles.get(tid, "?")
            thr[f"{role}:{comm}/{tid}"] = round(100.0 * (v - s0["thr"].get(key, 0)) / CLK_TCK / dt,
                                                2)
        res["ivrd_threads_cpu_pct"] = dict(sorted(((k, v) for k, v in thr.items() if v > 0),
                                                  key=lambda kv: -kv[1]))
        res["cores"] = {}
        for cpu in s1["cores"]:
            b = s1["cores"][cpu][0] - s0["cores"][cpu][0]
            tot = s1["cores"][cpu][1] - s0["cores"][cpu][1]
            res["cores"][cpu] = round(100.0 * b / tot, 1) if tot else 0
        mean_rss = sum(s["VmRSS"] for s in rss) / len(rss)
        res["rss_kb"] = round(mean_rss)
        res["rss_per_call_kb"] = (mean_rss - res["idle_rss_kb"]) / n
        res["loadavg_window"] = loadavg()
        res["udp_drops_after_window"] = udp_drops(
            {"ivrd_rtp": ivrd_rtp, "caller_rtp": caller_rtp, "far_rtp": far_rtp})
        log(f"N={n}: window {dt:.1f}s: ivrd {res['ivrd_cpu_pct']:.1f}% of a core "
            f"({res['ivrd_cpu_pct_per_call']:.4f}%/call), {res['rss_per_call_kb']:.1f} KB/call, "
            f"callers {res['caller_cpu_pct']:.0f}%, far end {res['far_cpu_pct']:.0f}%; "
            f"threads {res['ivrd_threads_cpu_pct']}")

        for name, reader in (("far", far), ("caller", caller)):
            procs[name].wait(timeout=hold + ramp_s + 240)
            reader.join(10)
            res[f"{name}_rc"] = procs[name].returncode
            res[f"{name}_report"] = reader.report
        time.sleep(1.0)  # ivrd's stdout writer
        res["udp_snmp_delta"] = {k: v - snmp0[k] for k, v in udp_snmp().items()
                                 if k in ("InDatagrams", "OutDatagrams", "RcvbufErrors",
                                          "SndbufErrors", "NoPorts", "InErrors")}
        res["ivrd_hwm_kb"] = proc_status(ivrd.pid).get("VmHWM")
        if tracer:
            tracer.done.set()
            tracer.join(5)
            with far.cond, caller.cond:  # to put the trace on each generator's own clock
                res["mono_at_start"] = {"caller": caller.events["start"][1] - caller.events[
                    "start"][0], "far": far.events["start"][1] - far.events["start"][0]}
    finally:
        if "ivrd" in procs:
            stop(procs["ivrd"])
            res["ivrd_rc"] = procs["ivrd"].returncode
        for name in ("caller", "far"):
            if name in procs and procs[name].poll() is None:
                stop(procs[name], signal.SIGKILL)
    res["ivrd_stdout"] = ivrd_stdout(os.path.join(out, "ivrd.out"))
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    return res


def direction(rep):
    """'rx / expected by seq, transit p50/p99/max, max gap' for one receiving side."""
    rtp = (rep or {}).get("rtp", {})
    exp = rtp.get("rx_expected_by_seq", 0)
    tr = rtp.get("transit_ms", {})
    return (f"{rtp.get('rx', 0)} / {exp} (lost {exp - rtp.get('rx', 0)}); transit "
            f"{tr.get('p50', -1):.1f} / {tr.get('p99', -1):.1f} / {tr.get('max', -1):.0f} ms; "
            f"gap {rtp.get('max_gap_ms', -1):.0f} ms")


def media_pct(r):
    return sum(v for k, v in r["ivrd_threads_cpu_pct"].items() if k.startswith("media"))


def fmt_row(r):
    cr, fr = r.get("caller_report") or {}, r.get("far_report") or {}
    st = r["ivrd_stdout"]
    hangups = sum(v for k, v in st["ends"].items() if k.startswith("hangup") and k.endswith("bye"))
    lat = cr.get("invite_200_ms", {})
    return (f"| {r['calls']} | {fr.get('max_up', '?')} | {st['delivered_total']} / {hangups} | "
            f"{r['ivrd_cpu_pct']:.1f} % | {r['ivrd_cpu_pct_per_call']:.4f} % | "
            f"{media_pct(r):.1f} % (wait {r.get('media_runqueue_wait_pct', -1):.1f} %) | "
            f"{r['rss_per_call_kb']:.1f} KB | "
            f"{lat.get('p50', -1):.2f} / {lat.get('p99', -1):.2f} ms | "
            f"{direction(fr)} | {direction(cr)} | "
            f"{r['caller_cpu_pct']:.0f} / {r['far_cpu_pct']:.0f} / {r['cores'].get('cpu0', 0):.0f}"
            f" / {r['cores'].get('cpu1', 0):.0f} % | {r['loadavg_before']} |")


HEADER = ("| N | bridged at once | delivered / ended by the dialing system | ivrd CPU (% of one "
          "core) | per call | media thread (run-queue wait) | RSS per call | "
          "caller INVITE->200 p50 / p99 | "
          "to the dialing system: rx / by seq; transit p50 / p99 / max; max gap | to the callers: "
          "the same | "
          "callers / far end / core 0 / core 1 busy | load avg before |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-rel", help="CMake build directory (Release)")
    ap.add_argument("--calls", default="100,500,1000", help="comma-separated N values")
    ap.add_argument("--rate", type=float, default=100.0, help="calls per second")
    ap.add_argument("--window", type=float, default=25.0, help="measured window, seconds")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after all calls are bridged")
    ap.add_argument("--far", choices=("echo", "paced"), default="echo",
                    help="dialing system's media: echo (shared socket) or paced (socket per call)")
    ap.add_argument("--targets", type=int, default=2, choices=(1, 2, 3, 4))
    ap.add_argument("--media-threads", type=int, default=1)
    ap.add_argument("--log-level", default="warn")
    ap.add_argument("--rtp-base", type=int, default=16000)
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per N")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="before each run, wait until the machine is under this %% busy")
    ap.add_argument("--trace", action="store_true",
                    help="sample thread run/wait time and core steal every 50 ms to trace.csv")
    ap.add_argument("--out", default="/tmp/ivr-bridge-results")
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
            log(f"machine quiet enough ({pct} % busy)" if pct is not None else "still busy")
        rows.append(run_one(args, n))
        if len(rows) == 1:
            print(HEADER)
        print(fmt_row(rows[-1]), flush=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(rows, f, indent=1)
    print("\nDetails:")
    for r in rows:
        cr, fr = r.get("caller_report") or {}, r.get("far_report") or {}
        print(f"N={r['calls']}: window {r['measured_window_s']} s clean={r['window_clean']} "
              f"all bridged={r.get('all_bridged')}; load avg {r['loadavg_before']} -> "
              f"{r['loadavg_window']}; cores {r['cores']}; ivrd threads "
              f"{r['ivrd_threads_cpu_pct']}; schedstat {r['ivrd_sched_pct']:.1f} %, media "
              f"run-queue wait {r.get('media_runqueue_wait_pct', -1):.1f} %; idle RSS "
              f"{r['idle_rss_kb']} KB, window RSS {r['rss_kb']} KB (HWM {r.get('ivrd_hwm_kb')}); "
              f"ivrd stdout {r['ivrd_stdout']}; callers: final {cr.get('final_status')}, "
              f"server BYE {cr.get('server_bye')}, our BYE {cr.get('our_bye')}, rtp "
              f"{cr.get('rtp')}, timing {cr.get('generator')}; far end: accepted "
              f"{fr.get('accepted')} refused {fr.get('refused')}, echo {fr.get('echo')}, rtp "
              f"{fr.get('rtp')}, our BYE {fr.get('our_bye')}; UDP drops "
              f"{r.get('udp_drops_after_window')}, UDP counters {r.get('udp_snmp_delta')}; "
              f"rc ivrd {r.get('ivrd_rc')} callers {r.get('caller_rc')} far {r.get('far_rc')}")
    print(f"\nLogs: {args.out}")


if __name__ == "__main__":
    main()
