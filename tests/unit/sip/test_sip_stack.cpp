// SipStack against a real peer: SIPp plays the caller on loopback (scenarios/ next to this
// file), the test plays the engine (reads events, sends commands).
#include "sip_test_util.h"

using namespace ivr::test::sipt;

TEST_CASE("SipStack: start reports the bound port and a bind failure names the address") {
  Stack stack;
  CHECK(stack.port != 0);

  UdpSocket taken;
  SipOptions options;
  options.address = "127.0.0.1";
  options.port = taken.port;
  options.transport = Transport::udp;
  options.logger = test_logger();
  options.sink = [](SipEvent &&) {};
  auto failed = SipStack::start(options);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ivr::Errc::sip);
  CHECK_MESSAGE(contains(failed.error().message, "127.0.0.1:" + std::to_string(taken.port)),
                failed.error().message);

  options.port = 0;
  options.sink = nullptr;
  CHECK_FALSE(SipStack::start(options).ok());  // a stack without a sink would lose calls
}

TEST_CASE("SipStack: inbound INVITE with SDP, answer, ACK, caller BYE") {
  Stack stack;
  Sipp sipp("uac_invite_bye", stack.port);

  SipEvent inv = stack.expect(Kind::invite);
  const std::string port = std::to_string(stack.port);
  CHECK(inv.dialog != 0);
  CHECK_MESSAGE(contains(inv.call_id, "@127.0.0.1"), inv.call_id);  // SIPp: n-pid@ip
  CHECK_MESSAGE(contains(inv.from, "\"Alice Caller\" <sip:alice@127.0.0.1:"), inv.from);
  CHECK_MESSAGE(contains(inv.from, ";tag="), inv.from);
  CHECK(inv.from_user == "alice");
  CHECK(inv.to == "<sip:ivr@127.0.0.1:" + port + ">");
  CHECK(inv.to_user == "ivr");
  CHECK(inv.request_uri == "sip:ivr@127.0.0.1:" + port + ";foo=bar");
  // SIPp's Contact names the port it sends from: the source address must match it.
  const std::string prefix = "<sip:alice@127.0.0.1:";
  REQUIRE_MESSAGE(inv.contact.rfind(prefix, 0) == 0, inv.contact);
  const std::string sipp_port =
      inv.contact.substr(prefix.size(), inv.contact.find('>') - prefix.size());
  CHECK(inv.remote_signaling == "127.0.0.1:" + sipp_port);

  REQUIRE(!inv.headers.empty());
  CHECK(inv.headers.front().name == "Via");
  size_t lead = 0, campaign = 0;
  const auto *lead_h = find_header(inv, "X-Lead-Id", &lead);
  const auto *campaign_h = find_header(inv, "X-Campaign", &campaign);
  REQUIRE(lead_h);
  REQUIRE(campaign_h);
  CHECK(lead_h->value == "4711");
  CHECK(campaign_h->value == "spring sale");
  CHECK(lead < campaign);
  const auto *subject = find_header(inv, "Subject");
  REQUIRE(subject);
  CHECK(subject->value == "sip stack unit test");
  const auto *ctype = find_header(inv, "Content-Type");
  REQUIRE(ctype);
  CHECK(ctype->value == "application/sdp");
  CHECK(find_header(inv, "Call-ID")->value == inv.call_id);
  CHECK(inv.has_sdp);
  CHECK(inv.sdp.rfind("v=0", 0) == 0);
  CHECK(contains(inv.sdp, "a=rtpmap:101 telephone-event/8000"));

  stack.sip->answer(inv.dialog, sdp("unit-test 42 1", "sendrecv"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  CHECK_FALSE(ack.has_sdp);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
  stack.expect_quiet();  // exactly one terminated event
  // Commands for a finished dialog are ignored.
  stack.sip->hangup(inv.dialog, "late");
  stack.sip->answer(inv.dialog, "v=0\r\n");
  stack.expect_quiet();
}

TEST_CASE("SipStack: INVITE without SDP gets our offer, the ACK carries the answer") {
  Stack stack;
  Sipp sipp("uac_invite_nosdp", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  CHECK_FALSE(inv.has_sdp);
  CHECK(inv.sdp.empty());
  stack.sip->answer(inv.dialog, sdp("unit-test 43 1", "sendrecv"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  CHECK(ack.has_sdp);
  CHECK_MESSAGE(contains(ack.sdp, "o=sipp-answer 7 7 IN IP4 127.0.0.1"), ack.sdp);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: CANCEL before the answer") {
  Stack stack;
  Sipp sipp("uac_cancel", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->ringing(inv.dialog);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::remote_cancel);
  CHECK(end.status == 487);
  sipp.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack: reject carries the status and an RFC 3326 Reason") {
  Stack stack;
  Sipp sipp("uac_reject", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->reject(inv.dialog, 486, "all agents \"busy\"");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 486);
  sipp.expect_success();
}

TEST_CASE("SipStack: our hangup sends BYE with a Reason") {
  Stack stack;
  Sipp sipp("uac_wait_bye_hangup", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 44 1", "sendrecv"));
  stack.expect(Kind::ack);
  stack.sip->hangup(inv.dialog, "flow finished");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 200);
  sipp.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack: hangup before the answer refuses the call with 480 and a Reason") {
  Stack stack;
  Sipp sipp("uac_hangup_unanswered", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->hangup(inv.dialog, "no agents");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 480);
  sipp.expect_success();
}

TEST_CASE("SipStack: hangup right after the answer still sends BYE (after the ACK)") {
  Stack stack;
  Sipp sipp("uac_wait_bye_hangup", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 49 1", "sendrecv"));
  stack.sip->hangup(inv.dialog, "flow finished");  // most likely before the ACK is in
  stack.expect(Kind::ack);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 200);
  sipp.expect_success();
}

TEST_CASE("SipStack: re-INVITE (hold) is handed to the engine and answered by it") {
  Stack stack;
  Sipp sipp("uac_reinvite", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 45 1", "sendrecv"));
  stack.expect(Kind::ack);
  SipEvent re = stack.expect(Kind::reinvite);
  CHECK(re.dialog == inv.dialog);
  CHECK(re.has_sdp);
  CHECK_MESSAGE(contains(re.sdp, "a=sendonly"), re.sdp);
  stack.sip->answer_reinvite(re.dialog, 200, sdp("unit-test 45 2", "recvonly"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: INFO DTMF in both formats; other bodies get 415 or 400") {
  Stack stack;
  Sipp sipp("uac_info", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 46 1", "sendrecv"));
  stack.expect(Kind::ack);
  SipEvent five = stack.expect(Kind::info_dtmf);
  CHECK(five.dialog == inv.dialog);
  CHECK(five.dtmf.digit == '5');
  CHECK(five.dtmf.duration_ms == 160);
  CHECK(five.dtmf.source == ivr::media::DtmfSource::info);
  SipEvent seven = stack.expect(Kind::info_dtmf);
  CHECK(seven.dtmf.digit == '7');
  // text/plain (415) and the bad relay body (400) produce no events.
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: OPTIONS out of dialog is answered 200 over UDP and TCP") {
  SUBCASE("udp") {
    Stack stack(Transport::udp);
    Sipp sipp("uac_options", stack.port);
    sipp.expect_success();
    stack.expect_quiet(100ms);
  }
  SUBCASE("tcp") {
    Stack stack(Transport::tcp);
    Sipp sipp("uac_options", stack.port, "t1");
    sipp.expect_success();
    stack.expect_quiet(100ms);
  }
}

TEST_CASE("SipStack: udp_tcp binds both transports on one port") {
  uint16_t port = 0;
  for (int attempt = 0; attempt < 20 && port == 0; ++attempt) {
    UdpSocket probe;  // a UDP port whose TCP twin is free as well
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(probe.port);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0) port = probe.port;
    ::close(fd);
  }
  REQUIRE(port != 0);
  Stack stack(Transport::udp_tcp, port);
  CHECK(stack.port == port);
  {
    Sipp udp("uac_options", stack.port, "u1");
    udp.expect_success();
  }
  {
    Sipp tcp("uac_options", stack.port, "t1");
    tcp.expect_success();
  }
}

TEST_CASE("SipStack: IPv6 loopback") {
  Stack stack(Transport::udp, 0, "::1");
  Sipp sipp("uac_options", stack.port, "u1", "::1");
  sipp.expect_success();
}

TEST_CASE("SipStack: malformed datagrams do not hurt the stack") {
  Stack stack;
  UdpSocket raw;
  const std::string port = std::to_string(stack.port);
  const std::string via = "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(raw.port);
  raw.send_to(stack.port, std::string("\x00\x01\x02\xff garbage\r\n\r\n", 17));
  raw.send_to(stack.port, std::string(4000, 'A'));
  raw.send_to(stack.port, "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\n\r\n");
  raw.send_to(stack.port, "INVITE sip:ivr@127.0.0.1:" + port + " SIP/2.0\r\n" + via +
                              ";branch=z9hG4bK-bad-1\r\nCall-ID: bad-1\r\nCSeq: x INVITE\r\n"
                              "Content-Length: 9999\r\n\r\nv=0\r\n");
  // Mandatory From/To missing: Sofia answers 400.
  raw.send_to(stack.port, "OPTIONS sip:ivr@127.0.0.1:" + port + " SIP/2.0\r\n" + via +
                              ";branch=z9hG4bK-bad-2\r\nCall-ID: bad-2\r\nCSeq: 1 OPTIONS\r\n"
                              "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
  int replies = 0;
  while (auto reply = raw.receive(500ms)) {
    INFO("reply: " << *reply);
    CHECK(reply->rfind("SIP/2.0 400 ", 0) == 0);
    ++replies;
  }
  CHECK(replies >= 1);  // requests with a usable Via are refused, not ignored
  stack.expect_quiet(100ms);

  // Commands for dialogs that never existed are ignored.
  stack.sip->answer(987654, "v=0\r\n");
  stack.sip->hangup(987655, "nothing");
  stack.sip->answer_reinvite(987656, 200, "");

  Sipp sipp("uac_options", stack.port);
  sipp.expect_success();
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack: shutdown sends BYE with the reason to established calls") {
  Stack stack;
  Sipp sipp("uac_wait_bye_shutdown", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 47 1", "sendrecv"));
  stack.expect(Kind::ack);

  auto t0 = std::chrono::steady_clock::now();
  stack.sip->shutdown("maintenance window");
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 10s);
  SipEvent end = stack.expect(Kind::terminated, 1s);  // emitted before shutdown returned
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  sipp.expect_success();

  stack.sip->shutdown("again");  // idempotent
  stack.sip->hangup(inv.dialog, "after shutdown");
  stack.expect_quiet(100ms);
  stack.sip.reset();  // the destructor after shutdown is a no-op
}

TEST_CASE("SipStack: shutdown refuses an unanswered call with 503 and the reason") {
  Stack stack;
  Sipp sipp("uac_shutdown_unanswered", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->shutdown("maintenance window");
  SipEvent end = stack.expect(Kind::terminated, 1s);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  CHECK(end.status == 503);
  sipp.expect_success();
}

TEST_CASE("SipStack: shutdown is bounded when the peer never answers our BYE") {
  Stack stack;
  Sipp sipp("uac_ignore_bye", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 48 1", "sendrecv"));
  stack.expect(Kind::ack);
  auto t0 = std::chrono::steady_clock::now();
  stack.sip->shutdown("maintenance window");
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 1500ms);  // it waited for the BYE to be answered...
  CHECK(took < 6s);       // ...but not for Sofia's 32 s transaction timeout
  SipEvent end = stack.expect(Kind::terminated, 1s);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  sipp.expect_success();
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack: no ACK for our 200 ends the dialog with cause error (408)") {
  // A short 64*T1 keeps the test quick; the default is RFC 3261's 32 s.
  Stack stack(Transport::udp, 0, "127.0.0.1", 2000);
  SipEvent inv;
  {
    Sipp sipp("uac_invite_vanish", stack.port);
    inv = stack.expect(Kind::invite);
    sipp.expect_success();  // gone: the 200 will never be acknowledged
  }
  auto t0 = std::chrono::steady_clock::now();
  stack.sip->answer(inv.dialog, sdp("unit-test 50 1", "sendrecv"));
  SipEvent end = stack.expect(Kind::terminated, 10s);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::error);
  CHECK(end.status == 408);
  CHECK(took >= 1500ms);  // the stack did wait for the ACK
  stack.expect_quiet();
}
