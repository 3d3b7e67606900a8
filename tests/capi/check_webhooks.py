#!/usr/bin/python3
"""Checks what tests/net/webhook_receiver.py received from the engine (used by
test_webhooks.c, which drives the calls and the C ABI; this side verifies the requests).

    check_webhooks.py --control PORT --path /main --subscription main --secret S [...]

For every request answered 2xx on the path: X-Ivr-Signature verifies with one of the
secrets (and carries --signatures v1 values), X-Ivr-Event-Id / -Type match the body, the
body is the delivery envelope for the subscription. Events are de-duplicated by id and
grouped per call_id; per call, ordered by data.seq, they must read as a call:
call.started first, call.answered before the first dtmf, the digits in order, call.ended
last with its record. Exits 0 when everything holds, else prints each problem and exits 1.
With IVR_CHECK_WEBHOOKS_DUMP=<dir> the received requests are also written to
<dir>/<path>.json (for debugging).
"""

import argparse
import calendar
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.request

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
problems = []


def problem(text):
    problems.append(text)


def verify_signature(header, body, secrets, tolerance=300):
    items = [p.strip().split("=", 1) for p in header.split(",")]
    items = [kv for kv in items if len(kv) == 2]
    stamps = [v for k, v in items if k == "t"]
    signatures = [v.lower() for k, v in items if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return False, 0
    if abs(time.time() - int(stamps[0])) > tolerance:
        return False, len(signatures)
    signed = stamps[0].encode() + b"." + body
    expected = [hmac.new(s, signed, hashlib.sha256).hexdigest() for s in secrets]
    ok = any(hmac.compare_digest(e, v) for e in expected for v in signatures)
    return ok, len(signatures)


def ms(stamp):
    t = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(stamp[20:23])


def check_call(call_id, events, args):
    events.sort(key=lambda e: e["seq"])
    types = [e["type"] for e in events]
    where = f"call {call_id}"
    seqs = [e["seq"] for e in events]
    if len(set(seqs)) != len(seqs):
        problem(f"{where}: repeated seq values {seqs}")
    if args.all_types and seqs != list(range(1, len(seqs) + 1)):
        problem(f"{where}: seq values not 1..n (an event is missing): {seqs}")
    wanted = set(args.types.split(",")) if args.types else None
    if wanted and not set(types) <= wanted:
        problem(f"{where}: types {sorted(set(types) - wanted)} not subscribed")
    if args.count and len(events) != args.count:
        problem(f"{where}: {len(events)} events, expected {args.count}: {types}")
    def subscribed(t):
        return not wanted or t in wanted

    if subscribed("call.started") and (not types or types[0] != "call.started"):
        problem(f"{where}: first event is not call.started: {types}")
    if subscribed("call.ended") and (not types or types[-1] != "call.ended"):
        problem(f"{where}: last event is not call.ended: {types}")
    if "call.answered" in types and "dtmf" in types:
        if types.index("call.answered") > types.index("dtmf"):
            problem(f"{where}: dtmf before call.answered: {types}")
    digits = "".join(e["data"]["digit"] for e in events if e["type"] == "dtmf")
    if args.digits is not None and subscribed("dtmf") and digits != args.digits:
        problem(f"{where}: digits {digits!r}, expected {args.digits!r}")
    for e in events:
        d = e["data"]
        if e["type"] == "dtmf" and d.get("source") != "info":
            problem(f"{where}: dtmf source {d.get('source')!r}")
        if e["type"] == "flow.node":
            for key in ("flow_id", "flow_version", "node", "verb", "detail"):
                if key not in d:
                    problem(f"{where}: flow.node without {key}: {d}")
    for e in events:
        if e["type"] in ("call.started", "call.ended"):
            d = e["data"]
            if 'Al\\"ice\\\\ {\\"admin\\":true}' not in d.get("from", ""):
                problem(f"{where}: {e['type']} from is {d.get('from')!r}")
            if d.get("from_user") != "5551234" or d.get("to_user") != "4000":
                problem(f"{where}: {e['type']} parties {d.get('from_user')} -> {d.get('to_user')}")
            if "admin" in d:
                problem(f"{where}: the display name injected a member: {d}")
            if ["X-Lead-Id", 'L-42"},{"x":1'] not in d.get("headers", []):
                problem(f"{where}: {e['type']} headers {d.get('headers')}")
    ended = [e["data"] for e in events if e["type"] == "call.ended"]
    if ended:
        d = ended[0]
        stamps = ("started_at", "answered_at", "ended_at")
        for key in stamps:
            if not RFC3339_MS.match(str(d.get(key))):
                problem(f"{where}: call.ended {key} = {d.get(key)!r}")
        if all(RFC3339_MS.match(str(d.get(key))) for key in stamps):
            start, answer, end = ms(d["started_at"]), ms(d["answered_at"]), ms(d["ended_at"])
            if not start <= answer <= end:
                problem(f"{where}: times out of order: {d}")
            if d.get("duration_ms") != end - start or d.get("talk_ms") != end - answer:
                problem(f"{where}: durations {d.get('duration_ms')}/{d.get('talk_ms')} vs times")
        if d.get("end_reason") != "local_hangup" or not isinstance(d.get("sip_status"), int):
            problem(f"{where}: end {d.get('end_reason')} {d.get('sip_status')}")
        if d.get("call_id") != call_id:
            problem(f"{where}: call.ended call_id {d.get('call_id')}")
        if args.flow:
            if d.get("flow_id") != args.flow or d.get("flow_end") != "hangup":
                problem(f"{where}: flow record {d}")
            if d.get("flow_path") != ["hello", "code", "bye"] or d.get("reason") != "code 42":
                problem(f"{where}: flow path {d.get('flow_path')} reason {d.get('reason')!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--subscription", required=True)
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--signatures", type=int, default=1, help="v1 values per request")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--types", default="", help="the subscribed types (default: all)")
    parser.add_argument("--count", type=int, default=0, help="events per call")
    parser.add_argument("--digits")
    parser.add_argument("--flow")
    parser.add_argument("--failures", type=int, default=0, help="at least this many non-2xx")
    parser.add_argument("--expect-id", action="append", default=[])
    args = parser.parse_args()
    args.all_types = not args.types

    url = f"http://127.0.0.1:{args.control}/received?path={args.path}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        requests = json.load(answer)["requests"]
    dump = os.environ.get("IVR_CHECK_WEBHOOKS_DUMP")
    if dump:
        with open(os.path.join(dump, args.path.strip("/") + ".json"), "w") as f:
            json.dump(requests, f, indent=1)
    secrets = [s.encode() for s in args.secret]
    accepted = {}
    failures = 0
    for r in requests:
        if not 200 <= r["status"] < 300:
            failures += 1
            continue
        headers = {k.lower(): v for k, v in r["headers"]}
        body = r["body"].encode()
        ok, count = verify_signature(headers.get("x-ivr-signature", ""), body, secrets)
        if not ok:
            problem(f"request {r['seq']}: signature does not verify: {headers}")
        if count != args.signatures:
            problem(f"request {r['seq']}: {count} v1 signatures, expected {args.signatures}")
        try:
            envelope = json.loads(body)
        except ValueError as e:
            problem(f"request {r['seq']}: body is not JSON ({e}): {body[:200]!r}")
            continue
        if envelope.get("id") != headers.get("x-ivr-event-id"):
            problem(f"request {r['seq']}: id {envelope.get('id')} vs header")
        if envelope.get("type") != headers.get("x-ivr-event-type"):
            problem(f"request {r['seq']}: type {envelope.get('type')} vs header")
        if envelope.get("subscription") != args.subscription:
            problem(f"request {r['seq']}: subscription {envelope.get('subscription')}")
        if not RFC3339_MS.match(str(envelope.get("created_at"))):
            problem(f"request {r['seq']}: created_at {envelope.get('created_at')!r}")
        if envelope["id"] in accepted and accepted[envelope["id"]] != envelope:
            problem(f"request {r['seq']}: a redelivery with another body")
        accepted[envelope["id"]] = envelope
    if failures < args.failures:
        problem(f"{failures} failed requests on {args.path}, expected at least {args.failures}")
    for wanted in args.expect_id:
        if wanted not in accepted:
            problem(f"event {wanted} was not accepted on {args.path}")

    calls = {}
    for envelope in accepted.values():
        data = envelope["data"]
        calls.setdefault(data["call_id"], []).append(
            {"type": envelope["type"], "seq": data["seq"], "data": data})
    if len(calls) != args.calls:
        problem(f"{len(calls)} calls on {args.path}, expected {args.calls}")
    for call_id, events in calls.items():
        check_call(call_id, events, args)

    for p in problems:
        print(f"check_webhooks {args.path}: {p}", file=sys.stderr)
    print(f"check_webhooks {args.path}: {len(requests)} requests, {len(accepted)} events, "
          f"{len(calls)} calls, {failures} failed attempts, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
