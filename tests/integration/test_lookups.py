"""ivrd answering SIPp calls with a flow that looks the caller up in a CRM over HTTPS (a
test CA), in PostgreSQL, in Redis and in a SQLite do-not-call list, all real servers on
free loopback ports, and branches on the answers. Then the services fail: the CRM answers
503 (the flow goes on with its cached answer), PostgreSQL and Redis are stopped (their
steps take on_error with reason connect, the call still ends where the flow says), and
slow services time out through on_timeout. Every call's events reach a webhook receiver
signed, once each, ending with the call record (docs/db.md, docs/flows.md "db" and
"http", docs/net.md "Webhook delivery")."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import harness

TESTS = Path(__file__).resolve().parents[1]
SECRET = "hook-secret-for-lookups"


def _require_ivrd() -> str:
    binary = harness.ivrd_binary()
    if binary:
        return binary
    if os.environ.get("IVR_BUILD_DIR"):
        pytest.fail("ivrd not found under IVR_BUILD_DIR=%s" % os.environ["IVR_BUILD_DIR"])
    pytest.skip("ivrd binary not found (set IVRD or IVR_BUILD_DIR)")


class Server:
    """A test server script (tests/net/*.py) printing "key value" lines up to "ready";
    stopped by closing its stdin."""

    def __init__(self, script: str, *args: str):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(TESTS / "net" / script), *args, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.banner: dict[str, str] = {}
        deadline = time.monotonic() + 60
        line = ""
        for line in self.proc.stdout:
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
            key, _, value = line.strip().partition(" ")
            self.banner.setdefault(key, value)
        if "ready" not in line:
            self.stop()
            raise RuntimeError("%s did not start: %s" % (script, self.banner))

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def lookup_flow(https_port: int) -> dict:
    crm = "https://127.0.0.1:%d/sequence" % https_port
    return {
        "flow": "lookup", "version": "1", "start": "answer", "http_budget_ms": 8000,
        "nodes": {
            "answer": {"verb": "answer", "next": "dnc"},
            "dnc": {"verb": "db", "connector": "dnc",
                    "query": "SELECT reason FROM dnc WHERE phone = ?",
                    "params": ["{{call.from}}"], "map": {"dnc_reason": "reason"},
                    "next": "blocked", "on_empty": "crm", "on_error": "crm"},
            "blocked": {"verb": "hangup", "reason": "blocked {{vars.dnc_reason}}"},
            # The CRM answers 200 once, then 503: the second call lives on the cache.
            "crm": {"verb": "http", "url": crm, "auth": "crm",
                    "query": {"key": "crm-{{call.from}}", "codes": "200,503"},
                    "timeout_ms": 2000, "cache": {"ttl_s": 1, "stale_if_error_s": 600},
                    "map": {"crm_n": "/n"},
                    "next": "account", "on_error": "account", "on_timeout": "account"},
            "account": {"verb": "db", "connector": "crm",
                        "query": "SELECT tier, name, balance FROM customers "
                                 "WHERE phone = $1 AND active = $2",
                        "params": ["{{call.from}}", True], "timeout_ms": 1500,
                        "map": {"tier": "tier", "name": "name"},
                        "next": "lead", "on_empty": "lead", "on_error": "lead",
                        "on_timeout": "lead"},
            "lead": {"verb": "db", "connector": "cache", "query": "HGETALL",
                     "params": ["lead:{{call.from}}"], "timeout_ms": 1000,
                     "map": {"score": "score"},
                     "next": "decide", "on_empty": "decide", "on_error": "decide",
                     "on_timeout": "decide"},
            "decide": {"verb": "if",
                       "condition": "vars.tier == 'gold' && number(vars.score) > 80",
                       "then": "vip", "else": "general"},
            "vip": {"verb": "hangup",
                    "reason": "vip {{vars.name}} {{steps.account.row.balance}} "
                              "score={{vars.score}} crm#{{vars.crm_n}} "
                              "cached={{steps.crm.cached}}"},
            "general": {"verb": "hangup",
                        "reason": "general crm={{steps.crm.reason}}/{{steps.crm.cached}} "
                                  "pg={{steps.account.reason}} redis={{steps.lead.reason}}"},
        }}


def slow_flow(https_port: int) -> dict:
    return {
        "flow": "slow", "version": "1", "start": "answer",
        "nodes": {
            "answer": {"verb": "answer", "next": "crm"},
            "crm": {"verb": "http", "url": "https://127.0.0.1:%d/slow" % https_port,
                    "auth": "crm", "query": {"ms": "3000"}, "timeout_ms": 400,
                    "next": "account", "on_error": "account", "on_timeout": "account"},
            "account": {"verb": "db", "connector": "crm",
                        "query": "SELECT pg_sleep(3), tier FROM customers WHERE phone = $1",
                        "params": ["{{call.from}}"], "timeout_ms": 400,
                        "next": "done", "on_error": "done", "on_timeout": "late"},
            "late": {"verb": "hangup",
                     "reason": "late crm={{steps.crm.reason}} pg={{steps.account.reason}}"},
            "done": {"verb": "hangup", "reason": "not late"},
        }}


def received(control_port: int) -> list[dict]:
    with urllib.request.urlopen("http://127.0.0.1:%d/received" % control_port,
                                timeout=5) as resp:
        return json.load(resp)["requests"]


def wait_for_records(control_port: int, call_ids: set[str], timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        requests = received(control_port)
        ended = {json.loads(q["body"])["data"]["call_id"] for q in requests
                 if json.loads(q["body"])["type"] == "call.ended"}
        if call_ids <= ended or time.monotonic() > deadline:
            return requests
        time.sleep(0.2)


def test_a_flow_looks_callers_up_over_https_postgresql_redis_and_sqlite(ctx, tmp_path,
                                                                       monkeypatch):
    _require_ivrd()
    servers: list[Server] = []
    try:
        (tmp_path / "tls").mkdir()
        https = Server("http_test_server.py", "--tls", "--dir", str(tmp_path / "tls"))
        servers.append(https)
        (tmp_path / "crm.sql").write_text(
            "CREATE TABLE customers (phone text PRIMARY KEY, tier text, name text,"
            " balance numeric(10,2), active boolean);\n"
            "INSERT INTO customers VALUES ('sipp', 'gold', 'Ada', 1250.75, true);\n")
        pg = Server("postgres_server.py", "--init", str(tmp_path / "crm.sql"))
        servers.append(pg)
        (tmp_path / "cache.txt").write_text("HSET lead:sipp score 91 owner emea\n")
        redis = Server("redis_server.py", "--password", "redis-pass",
                       "--init", str(tmp_path / "cache.txt"))
        servers.append(redis)
        hooks = Server("webhook_receiver.py")
        servers.append(hooks)
        dnc = tmp_path / "dnc.db"
        with sqlite3.connect(dnc) as db:
            db.execute("CREATE TABLE dnc (phone TEXT PRIMARY KEY, reason TEXT)")
            db.execute("INSERT INTO dnc VALUES ('+15550000', 'asked')")

        tls_port = int(https.banner["listening-tls"])
        (tmp_path / "lookup.json").write_text(json.dumps(lookup_flow(tls_port)))
        (tmp_path / "slow.json").write_text(json.dumps(slow_flow(tls_port)))
        monkeypatch.setenv("IVR_SECRET_PG_PASSWORD", pg.banner["password"])
        monkeypatch.setenv("IVR_SECRET_REDIS_PASSWORD", "redis-pass")
        monkeypatch.setenv("IVR_SECRET_HOOKS_KEY", SECRET)
        config = {
            "prompt_dir": harness.prompts_dir() or str(tmp_path),
            "log_level": "debug",
            "flows": [{"file": str(tmp_path / "lookup.json")},
                      {"file": str(tmp_path / "slow.json")}],
            "entry_points": {"1000": "lookup", "2000": "slow"},
            "auth": {"crm": {"type": "none", "tls": {"ca_file": https.banner["ca"]}}},
            "databases": {
                "crm": {"url": pg.banner["url"], "password_secret": "pg_password",
                        "pool_size": 2},
                "cache": {"url": redis.banner["url"], "password_secret": "redis_password"},
                "dnc": {"url": "sqlite:dnc.db", "read_only": True},
            },
            "webhooks": {"spool_dir": str(tmp_path / "spool"),
                         "endpoints": [{"name": "crm", "events": "*", "secrets": ["hooks.key"],
                                        "url": "http://127.0.0.1:%s/hooks"
                                               % hooks.banner["listening"]}]},
        }
        # "sqlite:dnc.db" is relative to the configuration file, which Ivrd writes here.
        ivrd = harness.Ivrd(config, tmp_path)
        ctx.ivrs.append(ivrd)
        ivrd.start()

        def call(number: str) -> str:
            r = ctx.finish(ctx.sipp_bg("uac_flow_wait_bye.xml", ivrd.port,
                                       extra=["-s", number], timeout_s=30))
            harness.assert_sipp_ok(r)
            return r.call_id(1)

        # 1. Everything answers: the caller is a gold customer with a high score.
        first = call("1000")
        # 2. The CRM now answers 503: its cached answer (request #1) carries the call.
        time.sleep(1.3)  # past the cache's ttl_s
        second = call("1000")
        # 3. Slow services: both steps time out and the flow takes on_timeout.
        fourth = call("2000")
        # 4. PostgreSQL and Redis are gone: their steps fail with connect, the flow decides
        #    without them.
        pg.stop()
        redis.stop()
        third = call("1000")

        ids = [first, second, third, fourth]
        requests = wait_for_records(int(hooks.banner["control"]), set(ids))
        by_call: dict[str, list[dict]] = {}
        seen_ids = set()
        for q in requests:
            body = json.loads(q["body"])
            headers = {k.lower(): v for k, v in q["headers"]}
            t, v1 = [p.split("=", 1)[1] for p in headers["x-ivr-signature"].split(",")[:2]]
            want = hmac.new(SECRET.encode(), (t + "." + q["body"]).encode(),
                            hashlib.sha256).hexdigest()
            assert hmac.compare_digest(v1, want), headers["x-ivr-signature"]
            assert headers["x-ivr-event-id"] == body["id"]
            seen_ids.add(body["id"])
            by_call.setdefault(body["data"]["call_id"], []).append(body)
        assert len(seen_ids) == len(requests), "an event was delivered twice"

        def record(call_id: str) -> dict:
            events = sorted(by_call[call_id], key=lambda b: b["data"]["seq"])
            types = [e["type"] for e in events]
            assert types[0] == "call.started" and types[-1] == "call.ended", types
            assert "call.answered" in types and "flow.node" in types, types
            steps = [e["data"] for e in events if e["type"] == "flow.node"]
            return {"record": events[-1]["data"], "steps": steps}

        r1 = record(first)
        assert r1["record"]["flow_path"] == ["answer", "dnc", "crm", "account", "lead",
                                             "decide", "vip"], r1["record"]
        assert r1["record"]["reason"] == "vip Ada 1250.75 score=91 crm#1 cached=false"
        # The db steps' events name the connector and statement, never a parameter's value.
        db_steps = [s for s in r1["steps"] if s["verb"] == "db"]
        assert any(s["detail"].startswith("crm: SELECT tier, name, balance") for s in db_steps)
        assert not any("sipp" in s["detail"] for s in db_steps), db_steps

        r2 = record(second)
        assert r2["record"]["reason"] == "vip Ada 1250.75 score=91 crm#1 cached=true"

        r3 = record(third)
        assert r3["record"]["flow_path"][-1] == "general", r3["record"]
        assert r3["record"]["reason"] == "general crm=/true pg=connect redis=connect"

        r4 = record(fourth)
        assert r4["record"]["flow_path"] == ["answer", "crm", "account", "late"]
        assert r4["record"]["reason"] == "late crm=timeout pg=timeout"

        assert ivrd.stop(signal.SIGTERM) == 0
    finally:
        for s in reversed(servers):
            s.stop()
