#!/usr/bin/python3
"""A scriptable HTTP/HTTPS server for the net tests (standard library only).

Binds 127.0.0.1 on ports picked by the kernel and prints, one per line on stdout:
    listening <port>                plain HTTP
    listening-tls <port>            with --tls: HTTPS, client certificates not asked for
    listening-mtls <port>           with --mtls: HTTPS that requires a client certificate
    ca <file> / client-cert <file> / client-key <file>   with --tls or --mtls
    ready
TLS material (a test CA, a server certificate for IP:127.0.0.1 and a client certificate,
both signed by the CA) is made with the openssl command line tool into --dir (a temporary
directory when not given; files already there are reused).

Routes (any method; every response carries X-Client-Port and X-Request-Number):
    /status/<code>              answers <code>
    /slow?ms=N                  sleeps N ms, then answers 200 "slow"
    /drip?chunks=N&size=S&ms=M  sends N chunks of S bytes, sleeping M ms before each
    /echo                       JSON {method, path, query, headers, body, client_port}
    /json?body=TEXT             TEXT as application/json; without body= the query as JSON
    /huge?bytes=N[&chunked=1]   N bytes of 'x' (chunked transfer encoding when asked)
    /headers?Name=Value...      200 with those response headers (a name may repeat)
    /many-headers?count=N&size=S  200 with N headers X-Filler-<i> of S bytes each
    /redirect?to=URL&code=302   redirect with a Location header and X-Redirect: yes
    /redirect-loop              redirects to itself forever
    /malformed                  answers garbage instead of a status line, then closes
    /close                      reads the request and closes without answering
    /count                      JSON {count, client_port}: requests seen so far
    /sequence?key=K&codes=503,503,200[&retry_after=S][&ms=N]
                                answers the codes in turn, per key K (the last one repeats),
                                after N ms; Retry-After: S on every answer that is not 2xx;
                                body JSON {key, n, code}
    /hits?path=P[&key=K]        JSON {count}: requests seen for path P (with key=K when
                                given); /hits itself is not counted
    /oauth/token[?expires_in=N&fail=CODE]
                                OAuth2 client credentials (POST, form body): client id
                                "ivr-test-client", secret "ivr-test-secret" (HTTP Basic or
                                form fields); issues "tok-<n>" with expires_in N (3600);
                                fail=CODE answers CODE instead (JSON error)
    /oauth/expire               every token issued so far is now expired (server side)
    /protected[?deny=1]         200 JSON {token} for a valid Authorization: Bearer token,
                                401 with WWW-Authenticate for a missing, unknown or expired one
                                (deny=1: for every token)
"""

import argparse
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, unquote_plus, urlsplit


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.hits = {}       # path, or (path, key) -> requests seen
        self.sequences = {}  # key -> answers given
        self.tokens = {}     # access token -> still valid
        self.issued = 0

    def next_request(self):
        with self.lock:
            self.count += 1
            return self.count

    def hit(self, path, key):
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            if key is not None:
                self.hits[(path, key)] = self.hits.get((path, key), 0) + 1

    def hits_of(self, path, key):
        with self.lock:
            return self.hits.get(path if key is None else (path, key), 0)

    def next_in_sequence(self, key):
        with self.lock:
            n = self.sequences.get(key, 0)
            self.sequences[key] = n + 1
            return n

    def issue_token(self):
        with self.lock:
            self.issued += 1
            token = f"tok-{self.issued}"
            self.tokens[token] = True
            return token

    def expire_tokens(self):
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = False
            return len(self.tokens)

    def token_valid(self, token):
        with self.lock:
            return self.tokens.get(token, False)


TEST_CLIENT_ID = "ivr-test-client"
TEST_CLIENT_SECRET = "ivr-test-secret"


def make_tls_material(directory):
    """Creates ca.pem, server.pem/key, client.pem/key in directory (kept if present)."""
    paths = {name: os.path.join(directory, name) for name in (
        "ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", paths["ca.key"], "-out", paths["ca.pem"],
            "-days", "2", "-subj", "/CN=libivr test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(name, subject, extensions):
        csr = os.path.join(directory, name + ".csr")
        ext = os.path.join(directory, name + ".ext")
        with open(ext, "w") as f:
            f.write(extensions)
        openssl("req", "-new", *ec, "-keyout", paths[name + ".key"], "-out", csr,
                "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"],
                "-CAcreateserial", "-out", paths[name + ".pem"], "-days", "2",
                "-extfile", ext)

    leaf("server", "/CN=127.0.0.1",
         "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
         "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    leaf("client", "/CN=libivr test client",
         "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
         "extendedKeyUsage=clientAuth\n")
    return paths


def lingering_close(sock):
    """Closes like a careful server: FIN after our last bytes (a TLS alert), then reads what
    the client still sends, so that unread input does not turn the close into a reset that
    could overtake the alert. With TLS 1.3 the client learns that its certificate was
    refused only from that alert, after it has already sent its request."""
    try:
        sock.shutdown(socket.SHUT_WR)  # an SSLSocket drops its TLS state here: raw TCP below
        sock.settimeout(1)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the concurrency tests connect many sockets at once

    def __init__(self, state, verbose, tls_context=None):
        self.state = state
        self.verbose = verbose
        self.tls_context = tls_context
        super().__init__(("127.0.0.1", 0), Handler)

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            return super().finish_request(request, client_address)
        # The handshake runs here, on the request's own thread, not in the accept loop.
        request.settimeout(10)
        tls = self.tls_context.wrap_socket(request, server_side=True,
                                           do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            if self.verbose:
                print(f"tls handshake from {client_address}: {e}", file=sys.stderr)
            lingering_close(tls)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    server_version = "ivr-test"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def handle_any(self):
        self.number = self.server.state.next_request()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        self.request_body = self.rfile.read(length) if length > 0 else b""

        def arg(name, default):
            return query.get(name, [default])[0]

        path = url.path
        if path != "/hits":
            self.server.state.hit(path, arg("key", None))
        if path.startswith("/status/"):
            code = int(path[len("/status/"):])
            body = b"" if code in (204, 304) or code < 200 else f"status {code}\n".encode()
            self.reply(code, body)
        elif path == "/slow":
            time.sleep(int(arg("ms", "1000")) / 1000)
            self.reply(200, b"slow")
        elif path == "/drip":
            chunks, size, ms = int(arg("chunks", "10")), int(arg("size", "1")), int(arg("ms", "100"))
            self.start_reply(200, chunks * size)
            for _ in range(chunks):
                time.sleep(ms / 1000)
                self.wfile.write(b"d" * size)
                self.wfile.flush()
        elif path == "/echo":
            self.reply_json({
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": self.request_body.decode("utf-8", "replace"),
                "client_port": self.client_address[1],
            })
        elif path == "/json":
            if "body" in query:
                self.reply(200, arg("body", "").encode(), "application/json")
            else:
                self.reply_json({k: v[0] for k, v in query.items()})
        elif path == "/huge":
            n = int(arg("bytes", "1048576"))
            if arg("chunked", "0") == "1":
                self.send_response(200)
                self.common_headers()
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                piece = b"x" * 65536
                left = n
                while left > 0:
                    part = piece[:min(left, len(piece))]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    left -= len(part)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.reply(200, b"x" * n)
        elif path == "/headers":
            self.reply(200, b"headers", extra=parse_qsl(url.query))
        elif path == "/many-headers":
            size = int(arg("size", "100"))
            extra = [(f"X-Filler-{i}", "f" * size) for i in range(int(arg("count", "10")))]
            self.reply(200, b"many", extra=extra)
        elif path == "/redirect":
            code = int(arg("code", "302"))
            self.reply(code, b"redirect", extra=[("Location", arg("to", "/")),
                                                 ("X-Redirect", "yes")])
        elif path == "/redirect-loop":
            self.reply(302, b"again", extra=[("Location", "/redirect-loop")])
        elif path == "/malformed":
            self.wfile.write(b"this is not an HTTP response\r\n\r\ngarbage\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/close":
            self.close_connection = True
        elif path == "/count":
            self.reply_json({"count": self.number, "client_port": self.client_address[1]})
        elif path == "/sequence":
            key = arg("key", "")
            codes = [int(c) for c in arg("codes", "200").split(",")]
            n = self.server.state.next_in_sequence(key)
            code = codes[min(n, len(codes) - 1)]
            time.sleep(int(arg("ms", "0")) / 1000)
            extra = []
            if not 200 <= code < 300 and "retry_after" in query:
                extra.append(("Retry-After", arg("retry_after", "0")))
            body = json.dumps({"key": key, "n": n + 1, "code": code}).encode()
            self.reply(code, body, "application/json", extra)
        elif path == "/hits":
            self.reply_json({"count": self.server.state.hits_of(arg("path", ""),
                                                               arg("key", None))})
        elif path == "/oauth/token":
            self.oauth_token(query)
        elif path == "/oauth/expire":
            self.reply_json({"expired": self.server.state.expire_tokens()})
        elif path == "/protected":
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth[:7].lower() == "bearer " else ""
            if token and self.server.state.token_valid(token) and arg("deny", "0") != "1":
                self.reply_json({"token": token})
            else:
                self.reply(401, b'{"error":"invalid_token"}', "application/json",
                           [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        else:
            self.reply(404, b"no such route\n")

    def oauth_token(self, query):
        def error(code, name, description):
            body = json.dumps({"error": name, "error_description": description}).encode()
            self.reply(code, body, "application/json")

        if "fail" in query:
            return error(int(query["fail"][0]), "temporarily_unavailable", "asked to fail")
        if self.command != "POST":
            return error(405, "invalid_request", "POST only")
        form = dict(parse_qsl(self.request_body.decode("utf-8", "replace")))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                pair = base64.b64decode(auth[6:]).decode()
                client_id, _, secret = pair.partition(":")
                client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            except ValueError:
                return error(400, "invalid_request", "bad Basic credentials")
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type", "client_credentials only")
        if client_id != TEST_CLIENT_ID or secret != TEST_CLIENT_SECRET:
            return error(401, "invalid_client", "unknown client or wrong secret")
        expires_in = int(query.get("expires_in", ["3600"])[0])
        self.reply_json({"access_token": self.server.state.issue_token(),
                         "token_type": "Bearer", "expires_in": expires_in})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def common_headers(self):
        self.send_header("X-Client-Port", str(self.client_address[1]))
        self.send_header("X-Request-Number", str(self.number))

    def start_reply(self, code, length, content_type="text/plain", extra=()):
        self.send_response(code)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()

    def reply(self, code, body, content_type="text/plain", extra=()):
        self.start_reply(code, len(body), content_type, extra)
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def reply_json(self, value):
        self.reply(200, json.dumps(value).encode(), "application/json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", action="store_true", help="also serve HTTPS")
    parser.add_argument("--mtls", action="store_true",
                        help="also serve HTTPS that requires a client certificate")
    parser.add_argument("--dir", help="where the TLS material goes (default: a temp dir)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (the parent went away)")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args()

    state = State()
    servers = [("listening", Server(state, args.verbose))]
    lines = []
    if args.tls or args.mtls:
        directory = args.dir or tempfile.mkdtemp(prefix="ivr-http-test-")
        paths = make_tls_material(directory)

        def context(require_client_cert):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(paths["server.pem"], paths["server.key"])
            if require_client_cert:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(paths["ca.pem"])
            return ctx

        if args.tls:
            servers.append(("listening-tls", Server(state, args.verbose, context(False))))
        if args.mtls:
            servers.append(("listening-mtls", Server(state, args.verbose, context(True))))
        lines += [f"ca {paths['ca.pem']}", f"client-cert {paths['client.pem']}",
                  f"client-key {paths['client.key']}"]

    for label, server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"{label} {server.server_address[1]}")
    for line in lines:
        print(line)
    print("ready", flush=True)

    if args.exit_on_stdin_eof:
        sys.stdin.buffer.read()
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    main()
