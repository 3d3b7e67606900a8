"""Call control against ivr-hello with SIPp callers: CANCEL before the answer, the
caller's BYE during the prompt, hold/resume re-INVITEs, no common codec, OPTIONS,
INFO with an unsupported body, and SIGTERM hanging up a call in progress."""

from __future__ import annotations

import re
import signal
import time

import pytest

import harness


def test_cancel_before_answer(ctx):
    ivr = ctx.ivr("--answer-delay", "3000")
    r = ctx.sipp("uac_cancel.xml", ivr.port, timeout_s=30)
    harness.assert_sipp_ok(r)
    assert harness.first_response(r, 180, "INVITE"), "no 180 Ringing\n" + r.diagnostics()
    assert harness.first_response(r, 200, "CANCEL"), "no 200 for the CANCEL\n" + r.diagnostics()
    assert harness.first_response(r, 487, "INVITE"), "no 487 for the INVITE\n" + r.diagnostics()
    assert not harness.first_response(r, 200, "INVITE"), "the cancelled INVITE was answered"
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "", "none", timeout=5)
    # the delayed answer (3 s after the INVITE) must not resurrect the call
    time.sleep(3.0)
    assert ivr.alive(), "ivr-hello died after the cancelled call's answer delay"
    harness.stop_and_check(ivr, [cid])


def test_caller_bye_during_prompt(ctx):
    ivr = ctx.ivr()
    r = ctx.sipp("uac_bye_early.xml", ivr.port, timeout_s=30)
    harness.assert_sipp_ok(r)
    assert harness.first_response(r, 200, "BYE"), "no 200 for the BYE\n" + r.diagnostics()
    cid = r.call_id(1)
    # printed when the BYE came (SIPp has just finished), not after some timeout
    harness.expect_line(ivr, cid, "", "none", timeout=2)
    harness.stop_and_check(ivr, [cid])


def test_hold_resume_then_info_digits(ctx):
    ivr = ctx.ivr()
    csv = harness.write_csv(ctx.tmp / "digits.csv", [list("2468#")])
    r = ctx.sipp("uac_hold.xml", ivr.port, inf=csv, timeout_s=40)
    harness.assert_sipp_ok(r)
    oks = [m for m in r.received_messages()
           if m.startswith("SIP/2.0 200 ") and re.search(r"^CSeq:\s*\d+ INVITE", m, re.M)]
    # one per transaction (a retransmitted 200 would repeat a CSeq)
    by_cseq = {}
    for m in oks:
        by_cseq.setdefault(re.search(r"^CSeq:\s*(\d+)", m, re.M).group(1), m)
    answers = [by_cseq[k] for k in sorted(by_cseq, key=int)]
    assert len(answers) == 5, "expected 200 for the INVITE and 4 re-INVITEs, got %d" % len(answers)
    for i, kind in ((1, "a=sendonly hold"), (3, "c=0.0.0.0 hold")):
        assert "a=recvonly" in harness.sdp_body(answers[i]), \
            "answer to the %s lacks a=recvonly:\n%s" % (kind, answers[i])
    for i in (2, 4):
        body = harness.sdp_body(answers[i])
        assert not re.search(r"a=(recvonly|sendonly|inactive)", body), \
            "answer to the resume is not sendrecv:\n%s" % answers[i]
        addr, port, pts = harness.sdp_media(answers[i])
        assert addr == harness.HOST and port, answers[i]
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "2468", "info")
    harness.stop_and_check(ivr, [cid])


def test_no_common_codec_gets_488(ctx):
    ivr = ctx.ivr()
    r = ctx.sipp("uac_488.xml", ivr.port, timeout_s=30)
    harness.assert_sipp_ok(r)
    assert harness.first_response(r, 488, "INVITE"), r.diagnostics()
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "", "none", timeout=5)
    harness.stop_and_check(ivr, [cid])


def test_options_200_and_info_text_plain_415(ctx):
    ivr = ctx.ivr()
    o = ctx.sipp("uac_options.xml", ivr.port, timeout_s=20)
    harness.assert_sipp_ok(o)
    csv = harness.write_csv(ctx.tmp / "digits.csv", [list("4711#")])
    r = ctx.sipp("uac_info_415.xml", ivr.port, inf=csv, timeout_s=40)
    harness.assert_sipp_ok(r)
    assert harness.first_response(r, 415, "INFO"), r.diagnostics()
    assert harness.first_response(r, 200, "OPTIONS"), "in-dialog OPTIONS not answered 200"
    cid = r.call_id(1)
    # the text/plain INFO ("Signal=9") must not count as a digit
    harness.expect_line(ivr, cid, "4711", "info")
    # an OPTIONS is not a call: no result line for it
    harness.stop_and_check(ivr, [cid], no_line_ids=[o.call_id(1)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_hangs_up_active_call_with_reason(ctx, sig):
    ivr = ctx.ivr("--first-timeout", "30000")
    s = ctx.sipp_bg("uac_wait_bye_reason.xml", ivr.port, timeout_s=40)
    assert s.wait_sent(r"^ACK ", timeout=10), "SIPp never sent the ACK"
    time.sleep(0.5)  # inside the welcome prompt
    rc = ivr.stop(sig)
    r = ctx.finish(s)
    assert rc == 0, "ivr-hello exit code after %s with a call up: %s" % (sig.name, rc)
    harness.assert_sipp_ok(r)
    assert re.search(r"bye-reason\s+\S", r.logs), "BYE without Reason header: %s" % r.logs
    cid = r.call_id(1)
    harness.expect_line(ivr, cid, "", "none", timeout=1)
    assert len(ivr.lines_for(cid)) == 1 and not ivr.bad_stdout_lines()
