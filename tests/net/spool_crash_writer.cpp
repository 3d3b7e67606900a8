// Helper of tests/net/spool_crash_test.py, which SIGKILLs it at random moments.
//
//   spool_crash_writer write <dir> <round>   appends until killed; prints, one line each,
//       "A <id>"  once the append is durable       "d <id>"  before marking it delivered
//       "D <id>"  once the delivery is durable     "F <id>"  once a failure is durable
//   spool_crash_writer dump <dir>             recovers the spool and prints every record:
//       "P <id> <attempts>" (pending) or "X <id> <attempts>" (dead); exits 3 if a payload is
//       not exactly what the writer wrote (a half-present record).
//
// The spool API is used from the main thread only; completions come back through
// EventSpoolOptions::post, as they would on the engine loop.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <string>

#include "common/log.h"
#include "net/event_spool.h"

using namespace ivr::net;

namespace {

std::string payload_for(long round, long seq) {
  // Sizes from a few bytes to several pages, so frames cross page boundaries.
  size_t fill = static_cast<size_t>((seq * 7919) % 6000);
  return "{\"round\":" + std::to_string(round) + ",\"seq\":" + std::to_string(seq) +
         ",\"fill\":\"" + std::string(fill, static_cast<char>('a' + seq % 26)) + "\"}";
}

bool payload_ok(const std::string &p) {
  long round = 0, seq = 0;
  if (std::sscanf(p.c_str(), "{\"round\":%ld,\"seq\":%ld,", &round, &seq) != 2) return false;
  return p == payload_for(round, seq);
}

void emit(char tag, const std::string &id) {
  std::printf("%c %s\n", tag, id.c_str());
  std::fflush(stdout);
}

struct Mailbox {  // the "engine loop": tasks posted by the writer thread
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  void post(std::function<void()> t) {
    {
      std::lock_guard lk(mu);
      tasks.push_back(std::move(t));
    }
    cv.notify_one();
  }
  std::function<void()> take() {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return !tasks.empty(); });
    auto t = std::move(tasks.front());
    tasks.pop_front();
    return t;
  }
};

EventSpoolOptions options(const char *dir) {
  EventSpoolOptions o;
  o.directory = dir;
  o.max_bytes = uint64_t{64} << 20;
  // Compactions happen often during the run, so some kills land in the middle of one.
  o.compaction_min_bytes = uint64_t{256} << 10;
  o.compaction_garbage_ratio = 0.2;
  o.logger = ivr::make_stderr_logger(ivr::LogLevel::warn);
  return o;
}

int write_mode(const char *dir, long round) {
  Mailbox loop;
  auto o = options(dir);
  o.post = [&loop](std::function<void()> t) { loop.post(std::move(t)); };
  auto opened = EventSpool::open(o);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
    return 1;
  }
  EventSpool spool = std::move(opened).value();
  int in_flight = 0;
  long seq = 0;
  bool full = false;
  const int kWindow = 48;

  std::function<void()> top_up = [&] {
    while (!full && in_flight < kWindow) {
      long n = seq++;
      SpoolEvent e;
      e.subscription = "crash-test";
      e.event_type = "call.ended";
      e.payload = payload_for(round, n);
      auto id = std::make_shared<std::string>();
      auto r = spool.append(std::move(e), [&, id, n](ivr::Status st) {
        --in_flight;
        if (!st) {
          std::fprintf(stderr, "append: %s\n", st.error().message.c_str());
          std::exit(1);
        }
        emit('A', *id);
        if (n % 3 == 0) {
          emit('d', *id);
          ++in_flight;
          auto s = spool.mark_delivered(*id, [&, id](ivr::Status st2) {
            --in_flight;
            if (st2) emit('D', *id);
          });
          if (!s) std::exit(1);
        } else if (n % 3 == 1) {
          ++in_flight;
          auto s = spool.record_failure(*id, std::numeric_limits<int64_t>::max() / 2, "HTTP 503",
                                        [&, id](ivr::Status st2) {
                                          --in_flight;
                                          if (st2) emit('F', *id);
                                        });
          if (!s) std::exit(1);
        }
      });
      if (!r) {
        if (r.error().code != ivr::Errc::busy) {
          std::fprintf(stderr, "append: %s\n", r.error().message.c_str());
          return;
        }
        full = true;  // wait to be killed
        std::fprintf(stderr, "spool full\n");
        return;
      }
      *id = *r;
      ++in_flight;
    }
  };
  for (;;) {
    top_up();
    loop.take()();
  }
}

int dump_mode(const char *dir) {
  auto opened = EventSpool::open(options(dir));
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
    return 1;
  }
  EventSpool spool = std::move(opened).value();
  int bad = 0;
  auto print = [&](char tag, const SpoolRecord &r) {
    if (!payload_ok(*r.payload) || r.subscription != "crash-test" || r.event_type != "call.ended") {
      std::fprintf(stderr, "record %s is damaged\n", r.id.c_str());
      ++bad;
    }
    std::printf("%c %s %u\n", tag, r.id.c_str(), r.attempts);
  };
  for (auto &r : spool.due(std::numeric_limits<int64_t>::max(), std::numeric_limits<size_t>::max()))
    print('P', r);
  for (auto &r : spool.dead_letters()) print('X', r);
  auto st = spool.stats();
  std::fprintf(stderr, "dump: %zu pending, %zu dead, %llu bytes, %u corrupt records dropped\n",
               st.pending, st.dead, static_cast<unsigned long long>(st.disk_bytes),
               st.corrupt_records);
  if (auto c = spool.close(); !c) return 1;
  return bad ? 3 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 4) return write_mode(argv[2], std::atol(argv[3]));
  if (mode == "dump" && argc == 3) return dump_mode(argv[2]);
  std::fprintf(stderr, "usage: %s write <dir> <round> | dump <dir>\n", argv[0]);
  return 2;
}
