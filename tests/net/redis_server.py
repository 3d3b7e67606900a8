#!/usr/bin/python3
"""A throwaway redis-server for the db connector tests (standard library only).

Starts redis-server on 127.0.0.1 (a free port, or --port N to reuse one), in a temp dir,
without persistence; waits (at most 20 s) until it answers PING; optionally loads data;
then prints, one per line on stdout:
    port <port>
    url redis://127.0.0.1:<port>/0
    socket <path>          with --unix: the server also listens on this Unix socket
    ready
and waits. It stops the server and removes the temp dir on SIGTERM, or at stdin EOF with
--exit-on-stdin-eof (the parent went away). The server dies with this script (PDEATHSIG).

Options:
    --password SECRET      the server requires it (requirepass)
    --init FILE            one command per line, words split like a shell (quotes work),
                           sent before "ready"; blank lines and lines starting with # skipped
    --port N               listen on N instead of a free port (a restart on the same port)
    --unix                 also listen on a Unix socket in the temp dir
"""

import argparse
import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_DEADLINE_S = 20.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """preexec_fn: the kernel sends SIGTERM to redis-server when this script dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Resp:
    """A tiny RESP client: enough to PING, AUTH and load data."""

    def __init__(self, port, timeout=2.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def command(self, *words):
        out = b"*%d\r\n" % len(words)
        for w in words:
            w = w.encode() if isinstance(w, str) else w
            out += b"$%d\r\n%s\r\n" % (len(w), w)
        self.sock.sendall(out)
        return self.read()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exactly(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"bad RESP line {line!r}")


def redis_major():
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else 0


class Server:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="ivr-redis-test-")
        self.proc = None
        self.port = 0
        self.socket_path = os.path.join(self.dir, "redis.sock") if args.unix else None
        self.stopping = False

    def start(self):
        attempts = 1 if self.args.port else 5  # a free port can be taken before redis binds it
        for _ in range(attempts):
            self.port = self.args.port or free_port()
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.dir,
                   "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"]
            if redis_major() >= 7:
                cmd += ["--enable-debug-command", "yes"]  # DEBUG SLEEP for timeout tests
            if self.args.password:
                cmd += ["--requirepass", self.args.password]
            if self.socket_path:
                cmd += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
            if self.wait_ready():
                return
            self.kill()
        raise RuntimeError("redis-server did not start:\n" + self.log_tail())

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def client(self):
        c = Resp(self.port)
        if self.args.password:
            answer = c.command("AUTH", self.args.password)
            if isinstance(answer, Exception):
                raise answer
        return c

    def wait_ready(self):
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited (port taken?)
            try:
                c = self.client()
                try:
                    if c.command("PING") == "PONG":
                        return True
                finally:
                    c.close()
            except (OSError, ConnectionError, RuntimeError):
                pass
            time.sleep(0.05)
        return False

    def load(self, path):
        c = self.client()
        try:
            with open(path) as f:
                for number, line in enumerate(f, 1):
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    answer = c.command(*shlex.split(line))
                    if isinstance(answer, Exception):
                        raise RuntimeError(f"{path}:{number}: {answer}")
        finally:
            c.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--password", help="the server requires this password")
    parser.add_argument("--init", help="a file of commands to load before 'ready'")
    parser.add_argument("--port", type=int, default=0, help="listen on this port")
    parser.add_argument("--unix", action="store_true", help="also listen on a Unix socket")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (the parent went away)")
    args = parser.parse_args()

    server = Server(args)

    def on_term(signum, frame):
        if server.stopping:
            return  # stdin EOF got there first: the main thread finishes the cleanup
        server.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        server.start()
        if args.init:
            server.load(args.init)
    except Exception as e:  # noqa: BLE001: report any start failure, then clean up
        print(f"redis_server.py: {e}", file=sys.stderr)
        server.stop()
        sys.exit(1)

    print(f"port {server.port}")
    print(f"url redis://127.0.0.1:{server.port}/0")
    if server.socket_path:
        print(f"socket {server.socket_path}")
    print("ready", flush=True)

    if args.exit_on_stdin_eof:
        sys.stdin.buffer.read()
    else:
        signal.pause()
    server.stop()


if __name__ == "__main__":
    main()
