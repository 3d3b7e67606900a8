// EventSpool: lifecycles, recovery after close and after damage, compaction, the disk limit.
// The crash test (SIGKILL during appends) is tests/net/spool_crash_test.py.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/event_spool.h"

using namespace ivr::net;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kStart = 1'700'000'000'000;  // the fake clock's start, Unix ms
constexpr size_t kAll = std::numeric_limits<size_t>::max();
constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ivr-spool-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Captured {
  std::mutex mu;
  std::vector<std::string> lines;
  std::vector<std::string> take() {
    std::lock_guard lk(mu);
    return std::exchange(lines, {});
  }
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<Captured> log = std::make_shared<Captured>();
  std::shared_ptr<std::atomic<int64_t>> clock = std::make_shared<std::atomic<int64_t>>(kStart);

  EventSpoolOptions options() {
    EventSpoolOptions o;
    o.directory = dir.path + "/spool";
    auto captured = log;
    o.logger = std::make_shared<ivr::Logger>(
        ivr::LogLevel::warn, [captured](ivr::LogLevel, const char *, const char *message) {
          std::lock_guard lk(captured->mu);
          captured->lines.emplace_back(message);
        });
    auto c = clock;
    o.clock_ms = [c] { return c->load(); };
    return o;
  }
  EventSpool open(EventSpoolOptions o) {
    auto r = EventSpool::open(std::move(o));
    if (!r) FAIL("open: " << r.error().message);
    return std::move(r).value();
  }
  EventSpool open() { return open(options()); }
  int64_t now() const { return clock->load(); }

  // The one segment file (there is exactly one between operations).
  std::string segment() {
    std::vector<std::string> found;
    for (auto &e : fs::directory_iterator(dir.path + "/spool")) {
      std::string name = e.path().filename().string();
      if (name.starts_with("spool-") && name.ends_with(".log")) found.push_back(e.path());
    }
    REQUIRE(found.size() == 1);
    return found[0];
  }
};

SpoolEvent event(std::string payload, std::string type = "call.started",
                 std::string subscription = "crm") {
  SpoolEvent e;
  e.subscription = std::move(subscription);
  e.event_type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

std::string append_ok(EventSpool &spool, SpoolEvent e) {
  auto id = spool.append(std::move(e));
  if (!id) FAIL("append: " << id.error().message);
  return *id;
}

// Every field of every record, pending then dead: two spools with the same description hold
// the same state.
std::vector<std::string> describe(const EventSpool &spool) {
  std::vector<std::string> out;
  auto line = [](const SpoolRecord &r) {
    return r.id + "|" + r.subscription + "|" + r.event_type + "|" + std::to_string(r.created_ms) +
           "|" + std::to_string(r.attempts) + "|" + std::to_string(r.next_attempt_ms) + "|" +
           r.last_error + "|" + (r.dead ? "dead" : "pending") + "|" + std::string(r.body());
  };
  for (auto &r : spool.due(kForever, kAll)) out.push_back(line(r));
  for (auto &r : spool.dead_letters()) out.push_back(line(r));
  return out;
}

std::vector<std::string> ids_of(const std::vector<SpoolRecord> &records) {
  std::vector<std::string> out;
  for (auto &r : records) out.push_back(r.id);
  return out;
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}
uint32_t le32(const std::string &s, size_t off) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(s[off + i]);
  return v;
}
// Start offsets of the records in a segment, walking the documented framing.
std::vector<size_t> record_offsets(const std::string &seg) {
  std::vector<size_t> out;
  for (size_t off = 32; off + 8 <= seg.size(); off += 8 + le32(seg, off)) out.push_back(off);
  return out;
}

bool any_line_has(const std::vector<std::string> &lines, const std::string &a,
                  const std::string &b) {
  for (auto &l : lines)
    if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("crc32c: the standard check value") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  // Incremental equals one-shot.
  CHECK(crc32c("6789", 4, crc32c("12345", 5)) == 0xE3069283u);
}

TEST_CASE("event spool: append, due, deliver") {
  Fixture f;
  EventSpool spool = f.open();
  std::atomic<int> durable{0}, failed{0};
  auto done = [&](ivr::Status st) { (st.ok() ? durable : failed)++; };

  auto a = spool.append(event(R"({"n":1})"), done);
  f.clock->fetch_add(1);
  auto b = spool.append(event(R"({"n":2})", "dtmf", "billing"), done);
  f.clock->fetch_add(1);
  SpoolEvent later = event(R"({"n":3})", "call.ended");
  later.next_attempt_ms = f.now() + 5000;
  auto c = spool.append(later, done);
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(a->size() == 32);
  CHECK(*a < *b);
  CHECK(*b < *c);

  auto due = spool.due(f.now(), 10);
  CHECK(ids_of(due) == std::vector<std::string>{*a, *b});
  CHECK(spool.due(f.now(), 1).size() == 1);
  CHECK(spool.due(f.now() + 5000, 10).size() == 3);
  CHECK(spool.next_due_ms() == kStart);

  auto rec = spool.find(*b);
  REQUIRE(rec);
  CHECK(rec->subscription == "billing");
  CHECK(rec->event_type == "dtmf");
  CHECK(rec->body() == R"({"n":2})");
  CHECK(rec->created_ms == kStart + 1);
  CHECK(rec->next_attempt_ms == kStart + 1);
  CHECK(rec->attempts == 0);
  CHECK_FALSE(rec->dead);

  REQUIRE(spool.mark_delivered(*a, done).ok());
  REQUIRE(spool.mark_delivered(*b, done).ok());
  CHECK(spool.due(f.now(), 10).empty());
  CHECK(spool.next_due_ms() == f.now() + 5000);
  CHECK(spool.mark_delivered(*a).error().code == ivr::Errc::not_found);
  CHECK_FALSE(spool.find(*a));

  REQUIRE(spool.flush().ok());
  CHECK(durable == 5);
  CHECK(failed == 0);
  auto st = spool.stats();
  CHECK(st.pending == 1);
  CHECK(st.dead == 0);

  REQUIRE(spool.close().ok());
  CHECK(spool.append(event("{}")).error().code == ivr::Errc::bad_state);
  CHECK(spool.close().ok());  // idempotent
}

TEST_CASE("event spool: failures, dead letters, requeue, purge") {
  Fixture f;
  auto o = f.options();
  o.max_attempts = 3;
  EventSpool spool = f.open(o);
  std::string id = append_ok(spool, event(R"({"call":"x"})"));
  std::string other = append_ok(spool, event(R"({"call":"y"})"));

  auto r1 = spool.record_failure(id, f.now() + 1000, "HTTP 503");
  REQUIRE(r1.ok());
  CHECK(*r1 == FailureOutcome::retry);
  auto rec = spool.find(id);
  CHECK(rec->attempts == 1);
  CHECK(rec->next_attempt_ms == f.now() + 1000);
  CHECK(rec->last_error == "HTTP 503");
  CHECK(ids_of(spool.due(f.now(), 10)) == std::vector<std::string>{other});
  CHECK(ids_of(spool.due(f.now() + 1000, 10)) == std::vector<std::string>{other, id});

  CHECK(*spool.record_failure(id, f.now() + 2000, "timeout") == FailureOutcome::retry);
  CHECK(*spool.record_failure(id, f.now() + 4000, "connect: refused") ==
        FailureOutcome::dead_lettered);
  CHECK(ids_of(spool.due(kForever, 10)) == std::vector<std::string>{other});
  auto dead = spool.dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].id == id);
  CHECK(dead[0].attempts == 3);
  CHECK(dead[0].dead);
  CHECK(dead[0].last_error == "connect: refused");
  CHECK(spool.record_failure(id, 0, "x").error().code == ivr::Errc::bad_state);
  CHECK(spool.dead_letter(id, "x").error().code == ivr::Errc::bad_state);
  CHECK(spool.requeue_dead_letter(other, 0).error().code == ivr::Errc::bad_state);
  CHECK(spool.stats().dead == 1);

  REQUIRE(spool.requeue_dead_letter(id, f.now() + 10).ok());
  rec = spool.find(id);
  CHECK(rec->attempts == 0);
  CHECK_FALSE(rec->dead);
  CHECK(rec->next_attempt_ms == f.now() + 10);
  CHECK(spool.dead_letters().empty());

  // A permanent failure goes straight to the dead letters, keeping the attempt count.
  CHECK(*spool.record_failure(id, f.now(), "HTTP 500") == FailureOutcome::retry);
  REQUIRE(spool.dead_letter(id, "HTTP 410 Gone").ok());
  rec = spool.find(id);
  CHECK(rec->dead);
  CHECK(rec->attempts == 1);
  CHECK(rec->last_error == "HTTP 410 Gone");

  // Error texts are bounded.
  CHECK(*spool.record_failure(other, f.now(), std::string(5000, 'e')) == FailureOutcome::retry);
  CHECK(spool.find(other)->last_error.size() == 1024);

  auto purged = spool.purge_dead_letters();
  REQUIRE(purged.ok());
  CHECK(*purged == 1);
  CHECK_FALSE(spool.find(id));
  REQUIRE(spool.purge(other).ok());
  CHECK(spool.purge(other).error().code == ivr::Errc::not_found);
  CHECK(spool.stats().pending == 0);
  REQUIRE(spool.close().ok());

  EventSpool again = f.open();
  CHECK(describe(again).empty());
}

TEST_CASE("event spool: reopening restores exactly the pending set and the dead letters") {
  Fixture f;
  std::vector<std::string> before;
  {
    EventSpool spool = f.open();
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) {
      f.clock->fetch_add(3);
      ids.push_back(
          append_ok(spool, event(R"({"i":)" + std::to_string(i) + "}", i % 2 ? "dtmf" : "flow.node",
                                 "sub-" + std::to_string(i % 3))));
    }
    for (int i = 0; i < 20; i += 4) REQUIRE(spool.mark_delivered(ids[i]).ok());
    for (int i = 1; i < 20; i += 3)
      if (i % 4 != 0)
        REQUIRE(spool.record_failure(ids[i], f.now() + 100 * i, "HTTP " + std::to_string(500 + i))
                    .ok());
    REQUIRE(spool.dead_letter(ids[2], "HTTP 404").ok());
    REQUIRE(spool.purge(ids[3]).ok());
    before = describe(spool);
    CHECK(before.size() == 20 - 5 - 1);
    REQUIRE(spool.close().ok());
  }
  {
    EventSpool spool = f.open();
    CHECK(describe(spool) == before);
    CHECK(spool.stats().dead == 1);
    CHECK(spool.stats().corrupt_records == 0);
    // The same after a compaction.
    REQUIRE(spool.compact().ok());
    REQUIRE(spool.flush().ok());
    CHECK(spool.stats().compactions == 1);
  }
  EventSpool spool = f.open();
  CHECK(describe(spool) == before);
  CHECK(f.log->take().empty());
}

TEST_CASE("event spool: a torn or corrupt tail is dropped with a warning naming file and offset") {
  Fixture f;
  std::vector<std::string> ids;
  {
    EventSpool spool = f.open();
    for (int i = 0; i < 5; ++i) ids.push_back(append_ok(spool, event(std::string(100, 'a' + i))));
    REQUIRE(spool.close().ok());
  }
  std::string seg = f.segment();
  const std::string pristine = read_file(seg);
  auto offsets = record_offsets(pristine);
  REQUIRE(offsets.size() == 5);
  size_t last = offsets.back();
  std::vector<std::string> first_four(ids.begin(), ids.begin() + 4);

  auto reopen_expect_four = [&](const std::string &what) {
    INFO(what);
    EventSpool spool = f.open();
    CHECK(ids_of(spool.due(kForever, kAll)) == first_four);
    CHECK(spool.stats().corrupt_records == 1);
    auto lines = f.log->take();
    CHECK(any_line_has(lines, seg, "offset " + std::to_string(last)));
    // Recovery rewrote the survivors: the next open is clean, and appends work.
    std::string id = append_ok(spool, event("{}"));
    REQUIRE(spool.close().ok());
    EventSpool again = f.open();
    CHECK(again.due(kForever, kAll).size() == 5);
    CHECK(again.find(id));
    CHECK(f.log->take().empty());
    REQUIRE(again.close().ok());
  };

  SUBCASE("truncated in the middle of the last record") {
    write_file(seg, pristine.substr(0, pristine.size() - 10));
    reopen_expect_four("truncated body");
  }
  SUBCASE("truncated inside the last record's length and checksum") {
    write_file(seg, pristine.substr(0, last + 3));
    reopen_expect_four("truncated frame header");
  }
  SUBCASE("one flipped byte in the last record") {
    std::string bytes = pristine;
    bytes[bytes.size() - 5] ^= 0x01;
    write_file(seg, bytes);
    reopen_expect_four("flipped payload byte");
  }
  SUBCASE("a flipped bit in the last record's length") {
    std::string bytes = pristine;
    bytes[last] ^= 0x40;
    write_file(seg, bytes);
    reopen_expect_four("flipped length");
  }
  SUBCASE("zeros after the last record (power loss with delayed allocation)") {
    write_file(seg, pristine + std::string(4096, '\0'));
    EventSpool spool = f.open();
    CHECK(ids_of(spool.due(kForever, kAll)) == ids);
    CHECK(any_line_has(f.log->take(), seg, "offset " + std::to_string(pristine.size())));
  }
}

TEST_CASE("event spool: a corrupt record in the middle costs only itself") {
  Fixture f;
  std::vector<std::string> ids;
  {
    EventSpool spool = f.open();
    for (int i = 0; i < 5; ++i) ids.push_back(append_ok(spool, event(std::string(64, 'x'))));
    REQUIRE(spool.close().ok());
  }
  std::string seg = f.segment();
  std::string bytes = read_file(seg);
  auto offsets = record_offsets(bytes);
  bytes[offsets[2] + 20] ^= 0xFF;
  write_file(seg, bytes);
  EventSpool spool = f.open();
  CHECK(ids_of(spool.due(kForever, kAll)) ==
        std::vector<std::string>{ids[0], ids[1], ids[3], ids[4]});
  CHECK(any_line_has(f.log->take(), seg, "offset " + std::to_string(offsets[2])));
}

TEST_CASE("event spool: compaction keeps the live records and shrinks the log") {
  Fixture f;
  auto o = f.options();
  o.compaction_min_bytes = 64 << 10;
  o.compaction_garbage_ratio = 0.5;
  std::vector<std::string> before;
  uint64_t appended_bytes = 0;
  {
    EventSpool spool = f.open(o);
    std::vector<std::string> ids;
    for (int i = 0; i < 400; ++i) {
      std::string payload =
          R"({"i":)" + std::to_string(i) + R"(,"pad":")" + std::string(1000, 'p') + "\"}";
      appended_bytes += payload.size();
      ids.push_back(append_ok(spool, event(payload)));
      if (i % 10 != 0) REQUIRE(spool.mark_delivered(ids[i]).ok());
      if (i % 10 == 0 && i % 20 == 0) REQUIRE(spool.record_failure(ids[i], 5, "503").ok());
    }
    REQUIRE(spool.flush().ok());
    auto st = spool.stats();
    CHECK(st.compactions >= 1);
    CHECK(st.pending == 40);
    CHECK(st.disk_bytes == fs::file_size(f.segment()));
    CHECK(st.disk_bytes < appended_bytes / 2);
    before = describe(spool);

    // An explicit compaction leaves exactly the header and the live records.
    REQUIRE(spool.compact().ok());
    REQUIRE(spool.flush().ok());
    CHECK(fs::file_size(f.segment()) == 32 + spool.stats().live_bytes);
    CHECK(spool.stats().disk_bytes == 32 + spool.stats().live_bytes);
    REQUIRE(spool.close().ok());
  }
  // Nothing but the lock and one segment is left.
  size_t files = 0;
  for ([[maybe_unused]] auto &e : fs::directory_iterator(o.directory)) ++files;
  CHECK(files == 2);
  EventSpool spool = f.open(o);
  CHECK(describe(spool) == before);
  CHECK(f.log->take().empty());
}

TEST_CASE("event spool: the disk limit refuses appends with a clear error and drops nothing") {
  Fixture f;
  auto o = f.options();
  o.max_bytes = 64 << 10;
  const std::string payload(1000, 'z');
  std::vector<std::string> ids;
  {
    EventSpool spool = f.open(o);
    ivr::Error refused;
    for (int i = 0; i < 1000; ++i) {
      auto id = spool.append(event(payload));
      if (!id) {
        refused = id.error();
        break;
      }
      ids.push_back(*id);
    }
    CHECK(refused.code == ivr::Errc::busy);
    CHECK(refused.message.find("full") != std::string::npos);
    CHECK(ids.size() > 40);
    CHECK(ids.size() < 70);
    CHECK(spool.stats().pending == ids.size());

    // Deliveries make room (by compaction when the log itself is at the limit).
    for (size_t i = 0; i < 10; ++i) REQUIRE(spool.mark_delivered(ids[i]).ok());
    for (int i = 0; i < 10; ++i) ids.push_back(append_ok(spool, event(payload)));
    CHECK(spool.append(event(payload)).error().code == ivr::Errc::busy);
    REQUIRE(spool.flush().ok());
    CHECK(fs::file_size(f.segment()) <= o.max_bytes);
    CHECK(spool.stats().disk_bytes <= o.max_bytes);
    REQUIRE(spool.close().ok());
  }
  EventSpool spool = f.open(o);
  std::vector<std::string> kept(ids.begin() + 10, ids.end());
  CHECK(ids_of(spool.due(kForever, kAll)) == kept);
}

TEST_CASE("event spool: ids are unique, time-sortable, and stay unique across reopen") {
  Fixture f;  // the fake clock stands still: every id is made in the same millisecond
  std::set<std::string> seen;
  std::string previous;
  for (int round = 0; round < 3; ++round) {
    EventSpool spool = f.open();
    for (int i = 0; i < 300; ++i) {
      std::string id = append_ok(spool, event("{}"));
      CHECK(seen.insert(id).second);
      if (round == 0 && !previous.empty()) CHECK(previous < id);
      previous = id;
      REQUIRE(spool.mark_delivered(id).ok());
    }
  }
  CHECK(seen.size() == 900);
  // The first 12 hex digits are the creation time in ms.
  char expect[16];
  std::snprintf(expect, sizeof expect, "%012llx", static_cast<unsigned long long>(kStart));
  CHECK(previous.substr(0, 12) == expect);
}

TEST_CASE("event spool: completions run through post, in order") {
  Fixture f;
  std::mutex mu;
  std::vector<std::function<void()>> posted;
  auto o = f.options();
  o.post = [&](std::function<void()> task) {
    std::lock_guard lk(mu);
    posted.push_back(std::move(task));
  };
  EventSpool spool = f.open(o);
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  for (int i = 0; i < 5; ++i) {
    auto id = spool.append(event("{}"), [&, i](ivr::Status st) {
      CHECK(st.ok());
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
    REQUIRE(id.ok());
  }
  REQUIRE(spool.flush().ok());
  CHECK(order.empty());  // nothing ran on the writer thread
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lk(mu);
    tasks.swap(posted);
  }
  for (auto &t : tasks) t();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  for (auto &t : threads) CHECK(t == std::this_thread::get_id());
}

TEST_CASE("event spool: one process at a time, options and input are checked") {
  Fixture f;
  EventSpool spool = f.open();
  auto second = EventSpool::open(f.options());
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ivr::Errc::busy);

  auto bad_options = [&](auto change, const char *field) {
    auto o = f.options();
    o.directory = f.dir.path + "/other";
    change(o);
    auto r = EventSpool::open(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ivr::Errc::invalid_argument);
    CHECK(r.error().message.find(field) != std::string::npos);
  };
  bad_options([](EventSpoolOptions &o) { o.directory = ""; }, "directory");
  bad_options([](EventSpoolOptions &o) { o.max_attempts = 0; }, "max_attempts");
  bad_options([](EventSpoolOptions &o) { o.max_payload_bytes = 17 << 20; }, "max_payload_bytes");
  bad_options([](EventSpoolOptions &o) { o.max_bytes = 100; }, "max_bytes");
  bad_options([](EventSpoolOptions &o) { o.compaction_garbage_ratio = 0; }, "ratio");

  auto bad_event = [&](SpoolEvent e, const char *field) {
    auto r = spool.append(std::move(e));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ivr::Errc::invalid_argument);
    CHECK(r.error().message.find(field) == 0);
  };
  bad_event(event("{}", "call.started", ""), "subscription");
  bad_event(event("{}", "call.started", "a\nb"), "subscription");
  bad_event(event("{}", "call.started", std::string(256, 's')), "subscription");
  bad_event(event("{}", ""), "event_type");
  bad_event(event("{}", "call started"), "event_type");
  bad_event(event(std::string((1 << 20) + 1, 'x')), "payload");
  CHECK(spool.stats().pending == 0);
  CHECK(spool.record_failure("nope", 0, "").error().code == ivr::Errc::not_found);
  CHECK(spool.requeue_dead_letter("nope", 0).error().code == ivr::Errc::not_found);
  CHECK(spool.purge("nope").error().code == ivr::Errc::not_found);

  // A moved spool keeps working; the moved-from one refuses.
  std::string id = append_ok(spool, event("{}"));
  EventSpool moved = std::move(spool);
  CHECK(moved.find(id));
  CHECK(spool.append(event("{}")).error().code == ivr::Errc::bad_state);  // NOLINT: moved from
}

TEST_CASE("event spool: leftovers, damaged headers and newer formats at open") {
  Fixture f;
  std::string dir;
  std::vector<std::string> ids;
  {
    EventSpool spool = f.open();
    dir = f.options().directory;
    for (int i = 0; i < 3; ++i) ids.push_back(append_ok(spool, event("{}")));
    REQUIRE(spool.compact().ok());  // now segment 2
    REQUIRE(spool.close().ok());
  }
  std::string seg = f.segment();
  CHECK(seg.ends_with("spool-0000000000000002.log"));

  SUBCASE("an interrupted compaction: an older segment and a temp file are removed") {
    write_file(dir + "/spool-0000000000000001.log", "stale");
    write_file(dir + "/spool-0000000000000003.log.tmp", "half written");
    EventSpool spool = f.open();
    CHECK(ids_of(spool.due(kForever, kAll)) == ids);
    CHECK_FALSE(fs::exists(dir + "/spool-0000000000000001.log"));
    CHECK_FALSE(fs::exists(dir + "/spool-0000000000000003.log.tmp"));
  }
  SUBCASE("a newer format version is refused, not rewritten") {
    std::string bytes = read_file(seg);
    bytes[8] = 2;  // version
    uint32_t crc = crc32c(bytes.data(), 28);
    for (int i = 0; i < 4; ++i) bytes[28 + i] = static_cast<char>(crc >> (8 * i));
    write_file(seg, bytes);
    auto r = EventSpool::open(f.options());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ivr::Errc::version);
    CHECK(r.error().message.find(seg) != std::string::npos);
    CHECK(read_file(seg) == bytes);
  }
  SUBCASE("a segment with a damaged header is set aside with a warning") {
    std::string bytes = read_file(seg);
    bytes[3] = 'X';
    write_file(seg, bytes);
    EventSpool spool = f.open();
    CHECK(spool.due(kForever, kAll).empty());
    CHECK(fs::exists(seg + ".corrupt"));
    CHECK(any_line_has(f.log->take(), seg, "header"));
  }
}

TEST_CASE("event spool: a failed write is reported, sticky, and recovered from at reopen") {
  Fixture f;
  std::string durable_id;
  {
    EventSpool spool = f.open();
    durable_id = append_ok(spool, event("{}"));
    REQUIRE(spool.flush().ok());

    // A file size limit just past the segment: the writer thread gets a short write, then
    // EFBIG, which leaves a real torn record behind.
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = fs::file_size(f.segment()) + 100;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::atomic<int> io_errors{0};
    auto big = spool.append(event(std::string(4000, 'b')), [&](ivr::Status st) {
      if (!st && st.error().code == ivr::Errc::io) ++io_errors;
    });
    ivr::Status flushed = spool.flush();
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);

    REQUIRE(big.ok());
    REQUIRE_FALSE(flushed.ok());
    CHECK(flushed.error().code == ivr::Errc::io);
    CHECK(io_errors == 1);
    auto again = spool.append(event("{}"));
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ivr::Errc::io);
    CHECK(again.error().message.find("reopen") != std::string::npos);
    CHECK(spool.mark_delivered(durable_id).error().code == ivr::Errc::io);
    CHECK(spool.close().error().code == ivr::Errc::io);
  }
  f.log->take();
  EventSpool spool = f.open();
  CHECK(ids_of(spool.due(kForever, kAll)) == std::vector<std::string>{durable_id});
  CHECK(spool.stats().corrupt_records == 1);
  CHECK(any_line_has(f.log->take(), "torn", "offset"));
}
