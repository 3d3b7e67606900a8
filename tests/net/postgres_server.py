#!/usr/bin/python3
"""A throwaway PostgreSQL server for the db tests (standard library only).

Makes a cluster in a temporary directory (superuser "ivr", password "secret", SCRAM
authentication), starts it on 127.0.0.1 with a port picked by the kernel, creates the
database "ivrtest", runs --init FILE there when given, and prints one per line on stdout:
    port <n>
    url postgresql://ivr@127.0.0.1:<n>/ivrtest
    password secret
    sockets <dir>       the unix socket directory (postgresql:///ivrtest?host=<dir>&port=<n>)
    control <port>      the control port below
    log <file>          the server's log
    ready

Control (TCP on 127.0.0.1, one command per line, each answered "ok" or "error <why>"):
    stop                fast shutdown of the server (connections are cut); the port stays ours
    start               start it again on the same port and wait until it accepts connections

The binaries come from the newest /usr/lib/postgresql/<version>/bin, else from PATH. As
root, the cluster belongs to and the server runs as the user "postgres" (the server
refuses to run as root). With --exit-on-stdin-eof the server is stopped and the directory
removed when stdin closes; SIGTERM does the same. Every wait is bounded.
"""

import argparse
import ctypes
import glob
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER = "ivr"
PASSWORD = "secret"
DATABASE = "ivrtest"
START_TIMEOUT_S = 30
PR_SET_PDEATHSIG = 1


def find_bin_dir():
    def version(path):
        m = re.search(r"/postgresql/([0-9.]+)/bin$", path)
        return [int(x) for x in m.group(1).split(".")] if m else []

    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if os.path.exists(os.path.join(d, "initdb"))]
    if dirs:
        return max(dirs, key=version)
    initdb = shutil.which("initdb")
    if not initdb:
        sys.exit("postgres_server: no initdb in /usr/lib/postgresql/*/bin or on PATH")
    return os.path.dirname(initdb)


class Cluster:
    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.dir = tempfile.mkdtemp(prefix="ivr-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sockets = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        self.port = 0
        self.server = None
        self.user = None  # (uid, gid) to run as when we are root
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.user = (pw.pw_uid, pw.pw_gid)

    def tool(self, name):
        return os.path.join(self.bin_dir, name)

    def as_owner(self):
        """Popen arguments that run a server-side program as the cluster's owner."""
        def die_with_us():
            # The server must not outlive this script, even if the script is SIGKILLed.
            # (Set after the uid change: changing credentials clears it.)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)

        args = {"preexec_fn": die_with_us}
        if self.user:
            args.update(user=self.user[0], group=self.user[1], extra_groups=[])
        return args

    def run(self, argv, env=None, owner=False):
        extra = self.as_owner() if owner else {}
        with open(self.log, "ab") as log:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  env=env, timeout=START_TIMEOUT_S, **extra)
        if done.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} failed (exit {done.returncode}), "
                               f"see {self.log}:\n{self.tail()}")

    def tail(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def init(self):
        os.mkdir(self.sockets)
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        open(self.log, "w").close()
        if self.user:
            for path in (self.dir, self.sockets, pwfile, self.log):
                os.chown(path, *self.user)
        self.run([self.tool("initdb"), "-D", self.data, "-U", USER, "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "--encoding=UTF8", "--no-locale", "--no-sync"],
                 owner=True)
        os.unlink(pwfile)
        with socket.socket() as s:  # a free port; the server binds it right after
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def start(self):
        log = open(self.log, "ab")
        self.server = subprocess.Popen(
            [self.tool("postgres"), "-D", self.data, "-k", self.sockets,
             "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "shared_buffers=16MB", "-c", "max_connections=60"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, **self.as_owner())
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.server.returncode}):\n{self.tail()}")
            ready = subprocess.run([self.tool("pg_isready"), "-q", "-h", "127.0.0.1",
                                    "-p", str(self.port), "-d", "postgres", "-U", USER],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=10)
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {START_TIMEOUT_S} s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self):
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL: 4 s at most."""
        if not self.server:
            return
        for sig, wait_s in ((signal.SIGINT, 2), (signal.SIGQUIT, 1), (signal.SIGKILL, 1)):
            try:
                self.server.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.server.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self.server = None

    def psql(self, database, *args):
        env = dict(os.environ, PGPASSWORD=PASSWORD, PGCONNECT_TIMEOUT="10")
        self.run([self.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                  "-p", str(self.port), "-U", USER, "-d", database, *args], env=env)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Stop(Exception):
    pass


def serve(cluster, control, exit_on_stdin_eof):
    """Answers control commands until stdin closes (when asked) or SIGTERM."""
    watched = [control] + ([sys.stdin.buffer] if exit_on_stdin_eof else [])
    while True:
        readable, _, _ = select.select(watched, [], [])
        if sys.stdin.buffer in readable and not os.read(sys.stdin.fileno(), 4096):
            return
        if control not in readable:
            continue
        conn, _ = control.accept()
        with conn, conn.makefile("rwb", buffering=0) as stream:
            conn.settimeout(60)
            for line in stream:
                command = line.decode().strip()
                try:
                    if command == "stop":
                        cluster.stop()
                    elif command == "start":
                        if not cluster.server:
                            cluster.start()
                    else:
                        raise RuntimeError(f"unknown command {command!r}")
                    stream.write(b"ok\n")
                except Exception as e:  # reported to the test, which fails with it
                    stream.write(("error " + str(e).replace("\n", " ") + "\n").encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", metavar="FILE", help="SQL run in the database once created")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop the server and exit when stdin closes (the parent went away)")
    args = parser.parse_args()

    def on_sigterm(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    cluster = Cluster(find_bin_dir())
    control = socket.socket()
    try:
        cluster.init()
        cluster.start()
        cluster.psql("postgres", "-c", f"CREATE DATABASE {DATABASE}")
        if args.init:
            cluster.psql(DATABASE, "-f", os.path.abspath(args.init))
        control.bind(("127.0.0.1", 0))
        control.listen(4)
        print(f"port {cluster.port}", flush=True)
        print(f"url postgresql://{USER}@127.0.0.1:{cluster.port}/{DATABASE}", flush=True)
        print(f"password {PASSWORD}", flush=True)
        print(f"sockets {cluster.sockets}", flush=True)
        print(f"control {control.getsockname()[1]}", flush=True)
        print(f"log {cluster.log}", flush=True)
        print("ready", flush=True)
        serve(cluster, control, args.exit_on_stdin_eof)
    except Stop:
        pass
    except Exception as e:
        sys.stderr.write(f"postgres_server: {e}\n")
        sys.exit(1)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        control.close()
        cluster.stop()
        cluster.remove()


if __name__ == "__main__":
    main()
