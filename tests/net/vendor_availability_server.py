#!/usr/bin/python3
"""Dialing systems' real-time APIs, as documented, for the availability connector tests.

Standard library only. Binds 127.0.0.1 on a kernel-chosen port, prints "listening <port>"
then "ready"; with --exit-on-stdin-eof it exits when stdin closes.

Every path may start with /ctl/<key>/<script>/ : <script> is a comma list of answers given
in turn for <key> (the last one repeats): ok, garbage, partial, 503, slow (sleeps 3 s, then
ok), empty. Without the prefix every answer is "ok". /hits/<key> answers the number of
requests seen for <key> (not counted itself).

Vendors (the figures are fixed: 4 available, 9 logged in, 2 waiting, 75 s longest wait):
  GET  /vicidial/non_agent_api.php?source=&user=api&pass=secret-pass&function=in_group_status
       &in_groups=SALES[&header=YES]     pipe text (VICIdial NON-AGENT_API.txt)
       in_group|total_calls|calls_waiting|agents_logged_in|agents_in_calls|agents_waiting|
       agents_paused|agents_in_dispo|agents_in_dial; a wrong user/pass: "ERROR: ..."
  GET  /twilio/v1/Workspaces/<WS>/TaskQueues/<WQ>/RealTimeStatistics   JSON, HTTP Basic
       ACtest:twilio-token (else 401)
  POST /connect/metrics/current/<instance>   JSON (GetCurrentMetricData), needs an
       "AWS4-HMAC-SHA256" Authorization header (else 403); Collections in shuffled order
  POST /five9/ws     SOAP getStatisticsResponse (ACDStatus table), HTTP Basic
       admin:five9-pass (else a SOAP fault, 500)
  GET  /csv?key=Sales       CSV with a header row (quoted fields)
"""

import argparse
import base64
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
SEEN = {}  # key -> requests seen


def next_answer(key, script):
    with LOCK:
        n = SEEN.get(key, 0)
        SEEN[key] = n + 1
    steps = script.split(",")
    return steps[min(n, len(steps) - 1)]


def basic_ok(handler, user, password):
    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return handler.headers.get("Authorization") == want


VICI = ("SALES|14|2|9|5|4|0|0|0\n", "SALES|14|2|9|5\n")  # ok, partial (a short row)

TWILIO = {
    "account_sid": "ACtest", "workspace_sid": "WS1", "task_queue_sid": "WQ1",
    "activity_statistics": [{"friendly_name": "Available", "sid": "WA1", "workers": 4},
                            {"friendly_name": "Offline", "sid": "WA2", "workers": 3}],
    "longest_task_waiting_age": 75, "longest_task_waiting_sid": "WT1",
    "longest_relative_task_age_in_queue": 75, "longest_relative_task_sid_in_queue": "WT1",
    "tasks_by_priority": {"0": 2},
    "tasks_by_status": {"assigned": 5, "pending": 2, "reserved": 0, "wrapping": 1},
    "total_available_workers": 4, "total_eligible_workers": 9, "total_tasks": 8,
    "url": "https://taskrouter.twilio.com/v1/Workspaces/WS1/TaskQueues/WQ1/RealTimeStatistics",
}


def connect_body(partial):
    metrics = [("AGENTS_AVAILABLE", "COUNT", 4.0), ("AGENTS_ONLINE", "COUNT", 9.0),
               ("CONTACTS_IN_QUEUE", "COUNT", 2.0), ("OLDEST_CONTACT_AGE", "SECONDS", 75.0)]
    if partial:
        metrics = metrics[:2]
    random.shuffle(metrics)
    return {"MetricResults": [{
        "Dimensions": {"Queue": {"Id": "q-1", "Arn": "arn:aws:connect:eu-central-1:1:instance/i/queue/q-1"},
                       "Channel": "VOICE"},
        "Collections": [{"Metric": {"Name": n, "Unit": u}, "Value": v} for n, u, v in metrics]}],
        "DataSnapshotTime": 1700000000.0, "ApproximateTotalCount": 1}


def five9_body(partial):
    columns = ["Skill Name", "Agents Logged In", "Agents Ready For Calls", "Agents On Call",
               "Calls In Queue", "Current Longest Queue Time"]
    rows = [["Support", "3", "1", "2", "0", "0"], ["Sales", "9", "4", "5", "2", "75000"]]
    if partial:
        columns = columns[:4]
        rows = [r[:4] for r in rows]

    def values(cells):
        return "<values>" + "".join(f"<data>{c}</data>" for c in cells) + "</values>"
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header/>'
            '<env:Body><ns2:getStatisticsResponse xmlns:ns2="http://service.supervisor.ws.five9.com/">'
            "<return><columns>" + values(columns) + "</columns>" +
            "".join("<rows>" + values(r) + "</rows>" for r in rows) +
            "<timestamp>1700000000000</timestamp><type>ACDStatus</type></return>"
            "</ns2:getStatisticsResponse></env:Body></env:Envelope>")


FIVE9_FAULT = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
               "<env:Fault><faultcode>env:Server</faultcode>"
               "<faultstring>Session parameters were not set</faultstring></env:Fault>"
               "</env:Body></env:Envelope>")

CSV = ('queue,"agents, available",logged_in,waiting,longest\r\n'
       'Support,1,3,0,00:00\r\n"Sales",4,9,2,"01:15"\r\n')
CSV_PARTIAL = 'queue,"agents, available",logged_in\r\nSales,4,9\r\n'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if path.startswith("/hits/"):
            with LOCK:
                return self.send(200, str(SEEN.get(path[6:], 0)))
        answer = "ok"
        if path.startswith("/ctl/"):
            parts = path.split("/", 4)  # "", ctl, key, script, rest
            answer = next_answer(parts[2], parts[3])
            path = "/" + (parts[4] if len(parts) > 4 else "")
        if answer == "slow":
            time.sleep(3)
            answer = "ok"
        if answer == "503":
            return self.send(503, "unavailable")
        if answer == "garbage":
            return self.send(200, b"\x00\xff<<garbage{{[|,\"", "application/octet-stream")
        if answer == "empty":
            return self.send(200, "")
        partial = answer == "partial"

        if path == "/vicidial/non_agent_api.php":
            if query.get("function") != "in_group_status":
                return self.send(200, "ERROR: function not found - " + query.get("function", ""))
            if query.get("user") != "api" or query.get("pass") != "secret-pass":
                return self.send(200, "ERROR: in_group_status USER DOES NOT HAVE PERMISSION "
                                      "TO GET IN-GROUP INFO - " + query.get("user", "") + "|0\n")
            text = VICI[1 if partial else 0]
            if query.get("header") == "YES":
                text = ("in_group|total_calls|calls_waiting|agents_logged_in|agents_in_calls|"
                        "agents_waiting|agents_paused|agents_in_dispo|agents_in_dial\n" + text)
            if query.get("in_groups") != "SALES":
                text = "ERROR: in_group_status INVALID IN-GROUP ID - " + query.get("in_groups", "") + "\n"
            return self.send(200, text)
        if path.startswith("/twilio/v1/Workspaces/") and path.endswith("/RealTimeStatistics"):
            if not basic_ok(self, "ACtest", "twilio-token"):
                return self.send(401, json.dumps({"code": 20003, "message": "Authenticate",
                                                  "status": 401}), "application/json")
            doc = dict(TWILIO)
            if partial:
                del doc["tasks_by_status"]
            return self.send(200, json.dumps(doc), "application/json")
        if path.startswith("/connect/metrics/current/"):
            auth = self.headers.get("Authorization", "")
            if self.command != "POST" or not auth.startswith("AWS4-HMAC-SHA256 "):
                return self.send(403, json.dumps({"message": "Missing Authentication Token"}),
                                 "application/json")
            request = json.loads(body or "{}")
            if request.get("Filters", {}).get("Queues") != ["q-1"]:
                return self.send(400, json.dumps({"message": "bad queue"}), "application/json")
            return self.send(200, json.dumps(connect_body(partial)), "application/json")
        if path == "/five9/ws":
            if not basic_ok(self, "admin", "five9-pass") or "getStatistics" not in body:
                return self.send(500, FIVE9_FAULT, "text/xml")
            return self.send(200, five9_body(partial), "text/xml")
        if path == "/csv":
            return self.send(200, CSV_PARTIAL if partial else CSV, "text/csv")
        return self.send(404, "not found")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {server.server_address[1]}")
    print("ready", flush=True)
    if args.exit_on_stdin_eof:
        sys.stdin.buffer.read()
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    main()
