"""The engine without calls: options as keyword arguments, errors, flows, life cycle."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import ivr

SIMPLE = {
    "flow": "simple",
    "version": "1",
    "start": "bye",
    "nodes": {"bye": {"verb": "hangup", "reason": "bye"}},
}


def test_version_and_exports():
    assert ivr.__version__.count(".") == 2
    for name in ivr.__all__:
        assert hasattr(ivr, name), name
    assert ivr.Engine.__doc__ and ivr.Engine.load_flow.__doc__ and ivr.Call.answer.__doc__


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"sip_prot": 5060}, TypeError, ["sip_prot", "did you mean 'sip_port'"]),
        ({"sip_port": "5060"}, TypeError, ["sip_port", "expected int", "str"]),
        ({"sip_port": True}, TypeError, ["sip_port", "expected int"]),
        ({"sip_port": 70000}, ValueError, ["sip_port", "0..65535", "70000"]),
        ({"media_threads": 0}, ValueError, ["media_threads", "1..64"]),
        ({"sip_transport": "sctp"}, ValueError, ["sip_transport", "udp, tcp, udp_tcp"]),
        ({"log_level": 3}, TypeError, ["log_level", "expected str"]),
        ({"log_level": "loud"}, ValueError, ["log_level", "'loud'"]),
        ({"log": "yes"}, TypeError, ["log", "callable"]),
        ({"loop": object()}, TypeError, ["loop", "asyncio"]),
        ({"prompt_dir": 42}, TypeError, ["prompt_dir", "PathLike"]),
        ({"rtp_port_min": 30000, "rtp_port_max": 20000}, ValueError, ["rtp_port_min", "rtp_port_max"]),
        ({"workers": 0}, ValueError, ["workers"]),
        # Checked by the library itself: still a ValueError naming the field.
        ({"sip_address": "not-an-ip"}, ivr.InvalidArgumentError, ["sip_address", "IPv4 or IPv6"]),
        ({"rtp_port_min": 20001}, ivr.InvalidArgumentError, ["rtp_port_min"]),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, words):
    with pytest.raises(error) as info:
        ivr.Engine(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_library_errors_are_value_errors_with_codes():
    with pytest.raises(ValueError) as info:
        ivr.Engine(sip_address="999.1.1.1")
    assert isinstance(info.value, ivr.Error)
    assert info.value.code == ivr.ErrorCode.EINVAL
    assert info.value.code_name == "EINVAL"


def test_context_manager_start_stop_close(options):
    with ivr.Engine(**options) as engine:
        assert engine.sip_port == 0  # __enter__ does not start it
        engine.start()
        assert engine.sip_port > 0
        assert engine.call_count == 0
        assert "started" in repr(engine)
        with pytest.raises(ivr.StateError):
            engine.start()
        engine.stop("maintenance")
        engine.stop()  # idempotent
    assert engine.closed
    assert repr(engine) == "<ivr.Engine closed>"
    with pytest.raises(ivr.StateError, match="closed"):
        engine.load_flow(SIMPLE)
    with pytest.raises(ivr.StateError):
        engine.sip_port
    engine.close()  # idempotent


def test_port_taken_is_an_error(options):
    with ivr.Engine(**options) as first:
        first.start()
        with ivr.Engine(**dict(options, sip_port=first.sip_port)) as second:
            with pytest.raises(ivr.Error) as info:
                second.start()
            assert info.value.code == ivr.ErrorCode.ESIP


def test_load_flow_from_dict_str_bytes_and_path(engine, tmp_path):
    loaded = engine.load_flow(SIMPLE)
    assert loaded == ivr.LoadedFlow("simple", "1")
    loaded = engine.load_flow(json.dumps(dict(SIMPLE, version="2")), activate=False)
    assert loaded.version == "2"
    engine.load_flow(json.dumps(dict(SIMPLE, version="3")).encode())
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(dict(SIMPLE, version="4")))
    engine.load_flow(path, activate=False)
    flows = engine.flows()
    assert [(f.version, f.active) for f in flows] == [("1", False), ("2", False), ("3", True), ("4", False)]
    assert all(f.flow_id == "simple" and f.nodes == 1 for f in flows)
    engine.activate_flow("simple", "1")
    assert [f.active for f in engine.flows()] == [True, False, False, False]
    with pytest.raises(ivr.StateError):
        engine.load_flow(SIMPLE)  # version 1 again
    with pytest.raises(ivr.NotFoundError):
        engine.activate_flow("simple", "9")
    with pytest.raises(TypeError, match="document"):
        engine.load_flow(42)
    engine.map_flow("4000", "simple")
    engine.map_flow("*", "simple")
    engine.unmap_flow("4000")


def test_bad_flow_raises_validation_error_with_every_problem(engine):
    bad = {
        "flow": "bad",
        "start": "a",
        "nodes": {
            "a": {"verb": "answer", "next": "nowhere"},
            "b": {"verb": "crm.lookup"},
            "c": {"verb": "say", "text": "{{vars.x +}}"},
        },
    }
    with pytest.raises(ivr.ValidationError) as info:
        engine.load_flow(bad)
    error = info.value
    assert isinstance(error, ValueError) and error.code == ivr.ErrorCode.EPARSE
    pointers = [p.pointer for p in error.problems]
    assert "/nodes/a/next" in pointers
    assert "/nodes/b/verb" in pointers
    assert len(error.problems) >= 3, error.problems
    for p in error.problems:
        assert isinstance(p, ivr.Problem) and p.message and p.line >= 1 and p.column >= 1
    assert any("crm.lookup" in p.message for p in error.problems)
    assert str(error.problems[0]).startswith("line ")
    assert error.text.count("\n") >= 2
    # The same problems, without raising.
    report = engine.validate_flow(bad)
    assert not report.valid
    assert [p.pointer for p in report.problems] == pointers
    # Not JSON at all: a problem with its line and column.
    with pytest.raises(ivr.ValidationError) as info:
        engine.load_flow('{"flow": "x",\n  "start": }')
    assert info.value.problems and info.value.problems[0].line == 2


def test_custom_verb_makes_documents_valid(engine):
    doc = {"flow": "v", "start": "a", "nodes": {"a": {"verb": "crm.lookup"}}}
    assert not engine.validate_flow(doc).valid

    @engine.verb("crm.lookup")
    def lookup(request):
        return None

    report = engine.validate_flow(doc)
    assert report.valid and report.flow_id == "v"
    with pytest.raises(ivr.InvalidArgumentError, match="answer"):
        engine.register_verb("answer", lookup)  # a built-in verb's name
    with pytest.raises(ivr.InvalidArgumentError):
        engine.register_verb("bad name!", lookup)
    with pytest.raises(TypeError, match="handler"):
        engine.register_verb("x", "not callable")


def test_event_type_names_are_checked(engine):
    with pytest.raises(ValueError, match="call.ended"):
        engine.on("call.end", lambda e: None)
    handler = engine.on("flow.node", lambda e: None)  # the webhooks' name for flow.step
    assert engine.off("flow.step", handler)
    assert not engine.off("flow.step", handler)


def test_databases_secrets_auth_profiles(engine, tmp_path):
    engine.add_db("crm", f"sqlite://{tmp_path / 'crm.db'}", pool_size=1)
    engine.add_db("mem", "sqlite::memory:", read_only=False)
    engine.remove_db("mem")
    with pytest.raises(ivr.NotFoundError):
        engine.remove_db("mem")
    with pytest.raises(TypeError, match="pool_size"):
        engine.add_db("x", "sqlite::memory:", pool_size="2")
    engine.set_secret("crm.token", "s3cret")
    engine.remove_secret("crm.token")
    engine.set_auth_profiles({"crm": {"type": "bearer", "token_secret": "crm.token"}})
    with pytest.raises(ivr.InvalidArgumentError, match="auth.crm"):
        engine.set_auth_profiles({"crm": {"type": "bearer"}})
    with pytest.raises(ivr.InvalidArgumentError):
        engine.set_auth_profiles("{not json")

    @engine.db_connector("leads")
    def leads(query):
        return []

    engine.remove_db("leads")


def test_webhooks(options, tmp_path):
    with ivr.Engine(**options) as plain:
        with pytest.raises(ivr.StateError):  # webhooks are off without a spool
            plain.set_webhook("crm", "http://127.0.0.1:9/hook", secrets=["k"])
    with ivr.Engine(**options, webhook_spool_dir=tmp_path / "spool") as engine:
        engine.set_webhook(
            "crm", "http://127.0.0.1:9/hook", secrets=["k1", "k2"],
            event_types=["call.started", "call.ended"], max_attempts=2,
        )
        with pytest.raises(ivr.InvalidArgumentError, match="url"):
            engine.set_webhook("bad", "ftp://x", secrets=["k"])
        with pytest.raises(TypeError, match="secrets"):
            engine.set_webhook("bad", "http://127.0.0.1:9/", secrets="k")
        engine.start()
        stats = engine.webhook_stats()
        assert isinstance(stats, ivr.WebhookStats) and stats.healthy and stats.published == 0
        assert engine.webhook_dead_letters() == []
        with pytest.raises(ivr.NotFoundError):
            engine.webhook_requeue("0" * 32)
        engine.remove_webhook("crm")


def test_log_callback(options):
    lines = []
    lock = threading.Lock()

    def log(level, subsystem, message):
        with lock:
            lines.append((level, subsystem, message))

    with ivr.Engine(**options, log=log, log_level="debug") as engine:
        engine.start()
    assert lines and all(level in ("error", "warn", "info", "debug") for level, _, _ in lines)


def test_log_to_logging(options, caplog):
    caplog.set_level(1, logger="ivr")
    with ivr.Engine(**options, log=True) as engine:
        engine.start()
    assert any(r.name.startswith("ivr.") for r in caplog.records)


def test_user_loop_is_accepted(options):
    loop = asyncio.new_event_loop()
    try:
        with ivr.Engine(**options, loop=loop) as engine:
            assert engine.sip_port == 0
    finally:
        loop.close()
