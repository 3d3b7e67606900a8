#!/usr/bin/python3
"""A scriptable webhook receiver for the dispatcher tests (standard library only).

Two HTTP listeners on 127.0.0.1, ports picked by the kernel, printed on stdout:
    listening <port>      the webhook endpoint: any POST path is a hook
    control <port>        the control API below
    ready

Every hook request is recorded (path, headers in order, raw body, the status answered).
What a path answers is scripted through the control API; by default 200 "ok".

Control API (JSON bodies and answers):
    POST /script    {"path": "/a", "responses": [ACTION...], "default": ACTION}
                    the next requests to /a take the ACTIONs in order, then the default
                    ACTION: {"status": 503, "retry_after": "1", "delay_ms": 100,
                             "close": true (drop the connection without answering)}
    GET  /received[?path=/a]   {"requests": [{"seq", "path", "headers": [[k, v]...],
                                "body", "status", "time_ms"}...]} in arrival order
    GET  /stats     {"count": n, "in_flight": {path: n}, "max_in_flight": {path: n}}
                    (the key "*" counts over all paths)
    POST /down      close the webhook listener (connections are refused)
    POST /up        listen again on the same port
    POST /reset     forget requests, scripts and statistics

Also importable: Receiver(decide) runs the webhook listener with a Python function that
chooses each answer (tests/net/webhook_kill_test.py).
"""

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the sender went away (killed, or it timed out): expected in these tests
        super().handle_error(request, client_address)

    def drop_connections(self):
        """Cuts kept-alive connections too, so "down" really means down."""
        with self.connections_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Receiver:
    """The webhook listener. decide(path, headers, body) -> ACTION dict (see the docstring)."""

    def __init__(self, decide=None, verbose=False):
        self.lock = threading.Lock()
        self.decide = decide or self.scripted
        self.verbose = verbose
        self.requests = []
        self.scripts = {}
        self.defaults = {}
        self.in_flight = {}
        self.max_in_flight = {}
        self.port = 0
        self.server = None
        self.thread = None

    # -- scripting --
    def scripted(self, path, headers, body):
        with self.lock:
            queue = self.scripts.get(path)
            if queue:
                return queue.pop(0)
            return self.defaults.get(path, {"status": 200})

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.scripts.clear()
            self.defaults.clear()
            self.in_flight.clear()
            self.max_in_flight.clear()

    # -- listening --
    def start(self, port=0):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                if receiver.verbose:
                    sys.stderr.write("receiver: " + (fmt % args) + "\n")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                path = urlsplit(self.path).path
                with receiver.lock:
                    for key in (path, "*"):  # "*": over all paths
                        n = receiver.in_flight.get(key, 0) + 1
                        receiver.in_flight[key] = n
                        receiver.max_in_flight[key] = max(n, receiver.max_in_flight.get(key, 0))
                arrived_ms = int(time.time() * 1000)
                try:
                    action = receiver.decide(path, self.headers, body)
                    if action.get("delay_ms"):
                        time.sleep(action["delay_ms"] / 1000.0)
                    status = 0 if action.get("close") else int(action.get("status", 200))
                    with receiver.lock:
                        receiver.requests.append({
                            "seq": len(receiver.requests), "path": path,
                            "headers": [[k, v] for k, v in self.headers.items()],
                            "body": body.decode("utf-8", "replace"), "status": status,
                            "time_ms": arrived_ms})
                    if action.get("close"):
                        self.close_connection = True
                        return
                    answer = action.get("body", "ok").encode()
                    self.send_response(status)
                    if action.get("retry_after") is not None:
                        self.send_header("Retry-After", str(action["retry_after"]))
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                finally:
                    with receiver.lock:
                        receiver.in_flight[path] -= 1
                        receiver.in_flight["*"] -= 1

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.port

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server.drop_connections()
            self.server = None

    def up(self):
        if not self.server:
            self.start(self.port)


def control_server(receiver):
    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def answer(self, value):
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/received":
                with receiver.lock:
                    reqs = [r for r in receiver.requests
                            if "path" not in query or r["path"] == query["path"][0]]
                    self.answer({"requests": reqs})
            elif url.path == "/stats":
                with receiver.lock:
                    self.answer({"count": len(receiver.requests),
                                 "in_flight": dict(receiver.in_flight),
                                 "max_in_flight": dict(receiver.max_in_flight)})
            else:
                self.send_error(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            path = urlsplit(self.path).path
            if path == "/script":
                with receiver.lock:
                    receiver.scripts[body["path"]] = list(body.get("responses", []))
                    if "default" in body:
                        receiver.defaults[body["path"]] = body["default"]
            elif path == "/down":
                receiver.stop()
            elif path == "/up":
                receiver.up()
            elif path == "/reset":
                receiver.reset()
            else:
                self.send_error(404)
                return
            self.answer({"ok": True})

    return Server(("127.0.0.1", 0), Control)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    receiver = Receiver(verbose=args.verbose)
    port = receiver.start()
    control = control_server(receiver)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(f"listening {port}", flush=True)
    print(f"control {control.server_address[1]}", flush=True)
    print("ready", flush=True)
    if args.exit_on_stdin_eof:
        sys.stdin.read()
    else:
        threading.Event().wait()


if __name__ == "__main__":
    main()
