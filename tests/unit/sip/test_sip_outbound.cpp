// The B2BUA's outbound leg (SipStack::invite), REFER and 302 against real SIPp peers on
// loopback: SIPp plays the called party (UAS scenarios) or the caller (UAC scenarios).
#include "sip/sipfrag.h"
#include "sip_test_util.h"

using namespace ivr::test::sipt;
using ivr::sip::OutboundInvite;
using ivr::sip::SipHeader;

namespace {

OutboundInvite leg_to(const std::string &uri, uint32_t ring_timeout_ms = 10000) {
  OutboundInvite leg;
  leg.uri = uri;
  leg.from_user = "4711";
  leg.from_display = "IVR Test";
  leg.sdp = sdp("unit-test 60 1", "sendrecv");
  leg.ring_timeout_ms = ring_timeout_ms;
  return leg;
}

// The terminated event of `dialog`, which must be the next event.
SipEvent expect_end(Stack &stack, ivr::sip::DialogId dialog, TerminationCause cause,
                    std::chrono::milliseconds timeout = 10s) {
  SipEvent end = stack.expect(Kind::terminated, timeout);
  CHECK(end.dialog == dialog);
  CHECK_MESSAGE(end.cause == cause,
                "cause " << static_cast<int>(end.cause) << ", " << end.status << " " << end.phrase);
  return end;
}

}  // namespace

TEST_CASE("sipfrag: status lines of REFER NOTIFY bodies") {
  auto ok = ivr::sip::parse_sipfrag_status("SIP/2.0 200 OK\r\n");
  REQUIRE(ok.ok());
  CHECK(ok->status == 200);
  CHECK(ok->phrase == "OK");
  auto trying = ivr::sip::parse_sipfrag_status("\r\nsip/2.0 100 Trying\r\nVia: x\r\n");
  REQUIRE(trying.ok());
  CHECK(trying->status == 100);
  CHECK(trying->phrase == "Trying");
  auto bare = ivr::sip::parse_sipfrag_status("SIP/2.0 486");
  REQUIRE(bare.ok());
  CHECK(bare->status == 486);
  CHECK(bare->phrase.empty());
  for (const char *bad :
       {"", "\r\n", "garbage", "SIP/2.0", "SIP/2.0 20 OK", "SIP/2.0 2000 OK", "SIP/2.0 099 Low",
        "SIP/2.0 700 High", "SIP/1.0 200 OK", "INVITE sip:a@b SIP/2.0", "SIP/2.0abc 200 OK"}) {
    auto r = ivr::sip::parse_sipfrag_status(bad);
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.error().code == ivr::Errc::parse);
  }
}

TEST_CASE("SipStack outbound: INVITE with headers, 180, 200 with SDP, our BYE") {
  Stack stack;
  Sipp uas(Uas{}, "uas_answer");
  OutboundInvite leg = leg_to(uas.uri());
  leg.headers = {{"X-Lead-Id", "4711"}, {"User-to-User", "3030;encoding=hex"}};
  const auto id = stack.sip->invite(leg);
  REQUIRE(id != 0);

  SipEvent ringing = stack.expect(Kind::progress);
  CHECK(ringing.dialog == id);
  CHECK(ringing.status == 180);
  CHECK(ringing.phrase == "Ringing");
  CHECK_FALSE(ringing.has_sdp);
  SipEvent answered = stack.expect(Kind::answered);
  CHECK(answered.dialog == id);
  CHECK(answered.status == 200);
  CHECK(answered.has_sdp);
  CHECK_MESSAGE(contains(answered.sdp, "o=sipp-uas 60 1"), answered.sdp);

  stack.sip->hangup(id, "transfer done");
  SipEvent end = expect_end(stack, id, TerminationCause::local);
  CHECK(end.status == 200);
  uas.expect_success();
  stack.expect_quiet();
  // Commands for a finished leg are ignored.
  stack.sip->hangup(id, "late");
  stack.sip->refer(id, "sip:late@127.0.0.1");
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack outbound: 180, 183 with SDP (early media), 200") {
  Stack stack;
  Sipp uas(Uas{}, "uas_early_media");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  SipEvent ringing = stack.expect(Kind::progress);
  CHECK(ringing.status == 180);
  CHECK_FALSE(ringing.has_sdp);
  CHECK(ringing.sdp.empty());
  SipEvent early = stack.expect(Kind::progress);
  CHECK(early.dialog == id);
  CHECK(early.status == 183);
  CHECK(early.phrase == "Session Progress");
  CHECK(early.has_sdp);
  CHECK_MESSAGE(contains(early.sdp, "o=sipp-early 61 1"), early.sdp);
  SipEvent answered = stack.expect(Kind::answered);
  CHECK(answered.dialog == id);
  CHECK_MESSAGE(contains(answered.sdp, "o=sipp-answer 61 2"), answered.sdp);
  stack.sip->hangup(id, "done");
  CHECK(expect_end(stack, id, TerminationCause::local).status == 200);
  uas.expect_success();
}

TEST_CASE("SipStack outbound: a final refusal ends the leg as refused with its status") {
  struct Case {
    const char *scenario;
    int status;
    const char *phrase;
  };
  for (Case c :
       {Case{"uas_busy", 486, "Busy Here"}, Case{"uas_unavailable", 503, "Service Unavailable"},
        Case{"uas_moved", 302, "Moved Temporarily"}}) {
    CAPTURE(c.scenario);
    Stack stack;
    Sipp uas(Uas{}, c.scenario);
    const auto id = stack.sip->invite(leg_to(uas.uri()));
    // 100 Trying makes no event; a 3xx is reported, not followed.
    SipEvent end = expect_end(stack, id, TerminationCause::refused);
    CHECK(end.status == c.status);
    CHECK(end.phrase == c.phrase);
    uas.expect_success();
    stack.expect_quiet(200ms);
  }
}

TEST_CASE("SipStack outbound: no answer within the ring timeout sends CANCEL (no_answer, 487)") {
  Stack stack;
  Sipp uas(Uas{}, "uas_no_answer");
  const auto id = stack.sip->invite(leg_to(uas.uri(), 1000));
  CHECK(stack.expect(Kind::progress).status == 180);
  SipEvent end = expect_end(stack, id, TerminationCause::no_answer, 5s);
  CHECK(end.status == 487);
  uas.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: hangup while ringing sends CANCEL (local); REFER needs an answer") {
  Stack stack;
  Sipp uas(Uas{}, "uas_no_answer");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  CHECK(stack.expect(Kind::progress).status == 180);
  stack.sip->refer(id, "sip:transfer-target@127.0.0.1:5099");
  SipEvent refer = stack.expect(Kind::refer);
  CHECK(refer.dialog == id);
  CHECK(refer.refer_final);
  CHECK(refer.status == 0);
  stack.sip->hangup(id, "caller gone");
  SipEvent end = expect_end(stack, id, TerminationCause::local);
  CHECK(end.status == 487);
  uas.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: a peer that never responds ends at the ring timeout at once") {
  Stack stack;
  UdpSocket silent;  // takes the INVITE, answers nothing
  const auto id =
      stack.sip->invite(leg_to("sip:agent@127.0.0.1:" + std::to_string(silent.port), 800));
  REQUIRE(silent.receive(5s).has_value());
  auto t0 = std::chrono::steady_clock::now();
  SipEvent end = expect_end(stack, id, TerminationCause::no_answer, 5s);
  CHECK(end.status == 408);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // not Sofia's 32 s timer B
  stack.expect_quiet();
  // No CANCEL without a provisional response (RFC 3261 9.1): nothing but retransmissions.
  while (auto msg = silent.receive(100ms)) CHECK_MESSAGE(msg->rfind("INVITE ", 0) == 0, *msg);
}

TEST_CASE("SipStack outbound: a closed port ends the leg with cause error") {
  // A short 64*T1 bounds the wait should the ICMP error not reach Sofia.
  Stack stack(Transport::udp, 0, "127.0.0.1", 2000);
  const uint16_t closed = free_port(SOCK_DGRAM);
  const auto id = stack.sip->invite(leg_to("sip:agent@127.0.0.1:" + std::to_string(closed)));
  SipEvent end = expect_end(stack, id, TerminationCause::error, 10s);
  CHECK_MESSAGE((end.status == 503 || end.status == 408), end.status << " " << end.phrase);
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: digest challenge answered once") {
  SUBCASE("valid credentials: 401, INVITE with Authorization, 200") {
    Stack stack;
    Sipp uas(Uas{}, "uas_auth");
    OutboundInvite leg = leg_to(uas.uri());
    leg.username = "u";
    leg.password = "p";
    const auto id = stack.sip->invite(leg);
    SipEvent answered = stack.expect(Kind::answered);
    CHECK(answered.dialog == id);
    CHECK(answered.status == 200);
    stack.sip->hangup(id, "done");
    expect_end(stack, id, TerminationCause::local);
    uas.expect_success();
  }
  SUBCASE("challenged again: refused with 401") {
    Stack stack;
    Sipp uas(Uas{}, "uas_auth_twice");
    OutboundInvite leg = leg_to(uas.uri());
    leg.username = "u";
    leg.password = "wrong";
    const auto id = stack.sip->invite(leg);
    SipEvent end = expect_end(stack, id, TerminationCause::refused);
    CHECK(end.status == 401);
    uas.expect_success();  // and no third INVITE
    stack.expect_quiet();
  }
  SUBCASE("no credentials: refused with the 407") {
    Stack stack;
    Sipp uas(Uas{}, "uas_challenge");
    const auto id = stack.sip->invite(leg_to(uas.uri()));
    SipEvent end = expect_end(stack, id, TerminationCause::refused);
    CHECK(end.status == 407);
    uas.expect_success();
    stack.expect_quiet();
  }
}

TEST_CASE("SipStack outbound: INFO DTMF, re-INVITE and BYE from the far end") {
  Stack stack;
  Sipp uas(Uas{}, "uas_indialog");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  stack.expect(Kind::answered);
  SipEvent nine = stack.expect(Kind::info_dtmf);
  CHECK(nine.dialog == id);
  CHECK(nine.dtmf.digit == '9');
  CHECK(nine.dtmf.duration_ms == 120);
  SipEvent re = stack.expect(Kind::reinvite);
  CHECK(re.dialog == id);
  CHECK_MESSAGE(contains(re.sdp, "a=sendonly"), re.sdp);
  stack.sip->answer_reinvite(id, 200, sdp("unit-test 63 2", "recvonly"));
  CHECK(stack.expect(Kind::ack).dialog == id);
  SipEvent end = expect_end(stack, id, TerminationCause::remote_bye);
  uas.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: REFER accepted, NOTIFY 100 then 200 (terminated)") {
  Stack stack;
  Sipp uas(Uas{}, "uas_refer_accept");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  stack.expect(Kind::answered);
  stack.sip->refer(id, "sip:transfer-target@127.0.0.1:5099");
  SipEvent trying = stack.expect(Kind::refer);
  CHECK(trying.dialog == id);
  CHECK(trying.status == 100);
  CHECK(trying.phrase == "Trying");
  CHECK_FALSE(trying.refer_final);
  SipEvent done = stack.expect(Kind::refer);
  CHECK(done.status == 200);
  CHECK(done.phrase == "OK");
  CHECK(done.refer_final);
  stack.sip->hangup(id, "transferred");
  expect_end(stack, id, TerminationCause::local);
  uas.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: REFER refused with 603") {
  Stack stack;
  Sipp uas(Uas{}, "uas_refer_refuse");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  stack.expect(Kind::answered);
  stack.sip->refer(id, "sip:transfer-target@127.0.0.1:5099");
  SipEvent refused = stack.expect(Kind::refer);
  CHECK(refused.status == 603);
  CHECK(refused.refer_final);
  stack.sip->hangup(id, "transfer refused");
  expect_end(stack, id, TerminationCause::local);
  uas.expect_success();
}

TEST_CASE("SipStack inbound: REFER of the caller; a malformed sipfrag is a final 500") {
  SUBCASE("sipfrag 200") {
    Stack stack;
    Sipp uac("uac_refer_notify", stack.port, "u1", "127.0.0.1", {"-key", "frag", "SIP/2.0 200 OK"});
    SipEvent inv = stack.expect(Kind::invite);
    stack.sip->answer(inv.dialog, sdp("unit-test 66 1", "sendrecv"));
    stack.expect(Kind::ack);
    stack.sip->refer(inv.dialog, "sip:transfer-target@127.0.0.1:5099;transport=udp");
    SipEvent done = stack.expect(Kind::refer);
    CHECK(done.dialog == inv.dialog);
    CHECK(done.status == 200);
    CHECK(done.refer_final);
    stack.sip->hangup(inv.dialog, "transferred");
    expect_end(stack, inv.dialog, TerminationCause::local);
    uac.expect_success();
  }
  SUBCASE("no status line") {
    Stack stack;
    Sipp uac("uac_refer_notify", stack.port, "u1", "127.0.0.1",
             {"-key", "frag", "not a status line"});
    SipEvent inv = stack.expect(Kind::invite);
    stack.sip->answer(inv.dialog, sdp("unit-test 67 1", "sendrecv"));
    stack.expect(Kind::ack);
    stack.sip->refer(inv.dialog, "sip:transfer-target@127.0.0.1:5099;transport=udp");
    SipEvent bad = stack.expect(Kind::refer);
    CHECK(bad.status == 500);
    CHECK(bad.refer_final);
    stack.sip->hangup(inv.dialog, "transfer failed");
    expect_end(stack, inv.dialog, TerminationCause::local);
    uac.expect_success();
  }
}

TEST_CASE("SipStack inbound: redirect answers 302 with the Contacts and ends the dialog") {
  Stack stack;
  Sipp uac("uac_redirect", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->redirect(inv.dialog, 302, {"sip:elsewhere@127.0.0.1:5099"}, "agents elsewhere");
  SipEvent end = expect_end(stack, inv.dialog, TerminationCause::local);
  CHECK(end.status == 302);
  uac.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack outbound: a leg that cannot be placed ends at once with cause error") {
  Stack stack;
  OutboundInvite leg = leg_to("http://example.com/");
  auto id = stack.sip->invite(leg);
  REQUIRE(id != 0);
  SipEvent end = expect_end(stack, id, TerminationCause::error);
  CHECK(end.status == 0);
  CHECK_MESSAGE(contains(end.phrase, "invite.uri"), end.phrase);

  leg = leg_to("sip:agent@127.0.0.1:5099");
  leg.headers = {{"X-Bad", "a\r\nInjected: yes"}};
  id = stack.sip->invite(leg);
  end = expect_end(stack, id, TerminationCause::error);
  CHECK_MESSAGE(contains(end.phrase, "invite.headers"), end.phrase);

  // Sofia's parser has the last word on the URI: its refusal is an error too.
  for (const char *uri : {"sip:", "sip:agent@", "sip:agent@127.0.0.1:99999"}) {
    CAPTURE(uri);
    id = stack.sip->invite(leg_to(uri));
    end = expect_end(stack, id, TerminationCause::error);
  }
  stack.expect_quiet(300ms);

  // Ids are unique across outbound legs and inbound dialogs.
  auto a = stack.sip->invite(leg_to("nonsense"));
  auto b = stack.sip->invite(leg_to("nonsense"));
  CHECK(a != b);
  CHECK(a != id);
  expect_end(stack, a, TerminationCause::error);
  expect_end(stack, b, TerminationCause::error);

  stack.sip->shutdown("test over");
  CHECK(stack.sip->invite(leg_to("sip:agent@127.0.0.1:5099")) == 0);
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack outbound: shutdown cancels a ringing leg (cause shutdown)") {
  Stack stack;
  Sipp uas(Uas{}, "uas_no_answer");
  const auto id = stack.sip->invite(leg_to(uas.uri()));
  CHECK(stack.expect(Kind::progress).status == 180);
  stack.sip->shutdown("maintenance");
  SipEvent end = expect_end(stack, id, TerminationCause::shutdown, 1s);
  CHECK(end.status == 487);
  uas.expect_success();
}
