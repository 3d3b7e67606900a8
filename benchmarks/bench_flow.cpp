// Micro-benchmark for lib/flow (issue 3): (a) compile time of a generated 500-node flow
// (menus, gathers, set with expressions and templates, if, switch with cases, say with
// templates, schedule, play, goto) and of the demo flow, with heap allocations per compile;
// (b) interpreter cost per call step: many calls through the demo flow and through the
// 500-node flow, each a flow::Session over a minimal CallPort whose completions are
// delivered at once from a FIFO queue (no simulator timeline), in ns and allocations per
// node entered. Allocations are counted by replacing global operator new in this binary.
// Self-contained: std::chrono::steady_clock only. Results: docs/benchmarks.md.
//
//   bench-flow [--calls N] [--rounds R] [--compiles C] [--demo PATH]
//              [--only compile|calls]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include "common/json.h"
#include "flow/compiler.h"
#include "flow/interpreter.h"

#include "alloc_counter.h"  // g_news: heap allocations so far

namespace {

using namespace ivr::flow;
using Clock = std::chrono::steady_clock;

volatile uint64_t g_sink = 0;

double ns_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string &what) {
  std::fprintf(stderr, "bench-flow: %s\n", what.c_str());
  std::exit(1);
}

// ---- the generated flow ----
// 50 blocks of 10 nodes; block i:
//   m  menu (prompt, no-input and invalid prompts; 1 -> g, 2 -> s, 9 -> m)
//   g  gather 4-6 digits with a `valid` expression and `store`
//   s  set: an arithmetic expression, a ternary, a template
//   c  if over two comparisons
//   w  switch with three cases and a default
//   y  say with three template parts
//   h  schedule (open -> p, closed -> q)
//   p  play a file;  q  say a constant text
//   x  goto the next block's menu (the last block's x is a hangup with a template reason)
constexpr int kBlocks = 50;

// One block (the x node is added after it); '#' is the block number, '%' its number mod 7.
constexpr const char *kBlock = R"J(
    "m#": {"verb": "menu", "prompt": {"file": "menu_#.wav"}, "no_input_prompt": {"file": "no_input.wav"},
      "invalid_prompt": {"say": "Sorry, {{call.from}}, that is not an option"},
      "timeout_ms": 4000, "retries": 2, "choices": {"1": "g#", "2": "s#", "9": "m#"},
      "on_no_input": "y#", "on_invalid": "y#"},
    "g#": {"verb": "gather", "prompt": {"say": "Enter your account number, then hash"},
      "min_digits": 4, "max_digits": 6, "terminators": "#", "retries": 1,
      "valid": "steps.g#.digits != '0000' && steps.g#.attempts < 3", "store": "vars.account",
      "next": "s#", "on_no_input": "s#", "on_invalid": "s#"},
    "s#": {"verb": "set", "values": {"score": "vars.score + % - 3",
      "tier": "vars.score >= 70 ? 'gold' : (vars.score >= 40 ? 'silver' : 'bronze')",
      "greeting": {"template": "Hello {{call.from}} from block #"}}, "next": "c#"},
    "c#": {"verb": "if", "condition": "vars.score > 20 && call.to != ''", "then": "w#", "else": "y#"},
    "w#": {"verb": "switch", "cases": [
      {"when": "vars.tier == 'gold' && starts_with(call.from, '+44')", "next": "p#"},
      {"when": "vars.tier in ['silver', 'bronze'] && vars.lang == 'de'", "next": "q#"},
      {"when": "lower(call.headers.x_tier) == 'vip'", "next": "h#"}], "default": "y#"},
    "y#": {"verb": "say", "text": "{{vars.greeting}}, your score is {{vars.score}} ({{vars.tier}})",
      "voice": "en-us", "next": "h#"},
    "h#": {"verb": "schedule", "schedule": "office", "open": "p#", "closed": "q#"},
    "p#": {"verb": "play", "file": "block_#.wav", "next": "x#"},
    "q#": {"verb": "say", "text": "We are closed. Please call again.", "next": "x#"},
)J";

std::string generated_flow() {
  std::string d = R"J({"flow": "bench500", "version": "1",
  "description": "generated: 50 blocks of 10 nodes",
  "start": "m0",
  "variables": {"score": 60, "tier": "none", "lang": "en"},
  "schedules": {"office": {"time_zone": "America/New_York",
    "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
               "thu": ["09:00-17:00"], "fri": ["09:00-17:00"], "sat": ["10:00-14:00"]},
    "holidays": [{"date": "01-01", "name": "New Year"}, {"date": "12-25"}]}},
  "nodes": {)J";
  for (int i = 0; i < kBlocks; ++i) {
    std::string n = std::to_string(i);
    for (const char *c = kBlock; *c; ++c) {
      if (*c == '#' && !(c[-1] == '"' && c[1] == '"'))  // the terminator "#" stays
        d += n;
      else if (*c == '%')
        d += std::to_string(i % 7);
      else
        d += *c;
    }
    if (i + 1 < kBlocks)
      d += "    \"x" + n + "\": {\"verb\": \"goto\", \"target\": \"m" + std::to_string(i + 1) +
           "\"},";
    else
      d += "    \"x" + n +
           "\": {\"verb\": \"hangup\", \"reason\": \"done, score {{vars.score}}, tier "
           "{{vars.tier}}\"}";
  }
  d += "\n  }\n}\n";
  return d;
}

// ---- a CallPort whose completions wait in a FIFO and are delivered one at a time ----
class QueuePort : public CallPort {
 public:
  enum class Kind : uint8_t { answered, prompt, collect, timer, custom, http, db };
  struct Completion {
    Kind kind;
    bool live;
    uint64_t token;
    std::string digits;
    CollectEnd end;
  };

  QueuePort() { queue_.reserve(64); }

  // The caller's menu choices for the next call ('1'-'9' per menu; '0' = no input).
  void reset(Session *s, const char *menu_keys) {
    session_ = s;
    queue_.clear();
    head_ = 0;
    prompt_ = -1;
    keys_ = menu_keys;
    key_ = 0;
    hung_up_ = false;
  }

  void start_answer() override { push(Kind::answered, 0); }
  void start_play(const std::string &file) override {
    g_sink = g_sink + file.size();
    new_prompt();
  }
  void start_say(const std::string &text, const std::string &voice, unsigned rate) override {
    g_sink = g_sink + text.size() + voice.size() + rate;
    new_prompt();
  }
  void start_collect(const CollectRequest &req) override {
    Completion &c = push(Kind::collect, 0);
    if (req.max_digits == 1) {  // a menu
      char k = keys_[key_ % std::strlen(keys_)];
      ++key_;
      if (k == '0') {
        c.digits.clear();
        c.end = CollectEnd::first_timeout;
      } else {
        c.digits.assign(1, k);
        c.end = CollectEnd::max_digits;
      }
    } else {
      c.digits.assign("12345");
      c.end = CollectEnd::terminator;
    }
  }
  void start_timer(uint32_t, uint64_t token) override { push(Kind::timer, token); }
  void cancel_timer(uint64_t token) override {
    for (size_t i = head_; i < queue_.size(); ++i)
      if (queue_[i].kind == Kind::timer && queue_[i].token == token) queue_[i].live = false;
  }
  void start_custom(const std::string &, const CustomArgs &, uint64_t token) override {
    push(Kind::custom, token);
  }
  // The benchmark's flow has no http node; a 200 answer keeps the port complete anyway.
  void start_http(const HttpStart &, uint64_t token) override { push(Kind::http, token); }
  void cancel_http(uint64_t token) override {
    for (size_t i = head_; i < queue_.size(); ++i)
      if (queue_[i].kind == Kind::http && queue_[i].token == token) queue_[i].live = false;
  }
  // Nor a db node; an empty answer keeps the port complete.
  void start_db(const DbStart &, uint64_t token) override { push(Kind::db, token); }
  // Nor route or transfer nodes: these stay no-ops.
  void start_route(const RouteStart &, uint64_t) override {}
  void cancel_route(uint64_t) override {}
  void start_transfer(const TransferStart &, uint64_t) override {}
  void cancel_db(uint64_t token) override {
    for (size_t i = head_; i < queue_.size(); ++i)
      if (queue_[i].kind == Kind::db && queue_[i].token == token) queue_[i].live = false;
  }
  void stop_prompt() override {}
  void hangup(int status, const std::string &reason) override {
    g_sink = g_sink + uint64_t(status) + reason.size();
    hung_up_ = true;
  }

  // Delivers the next completion; false when none is left. The completion is copied out
  // first: the session's reaction may queue more (short digit strings stay in SSO).
  bool deliver_one() {
    while (head_ < queue_.size() && !queue_[head_].live) ++head_;
    if (head_ >= queue_.size() || hung_up_) return false;
    size_t i = head_++;
    Kind kind = queue_[i].kind;
    uint64_t token = queue_[i].token;
    CollectEnd end = queue_[i].end;
    std::string digits = queue_[i].digits;
    if (kind == Kind::prompt && static_cast<int64_t>(i) == prompt_) prompt_ = -1;
    if (head_ == queue_.size()) {  // all delivered: reuse the slots
      queue_.clear();
      head_ = 0;
    }
    switch (kind) {
      case Kind::answered:
        session_->on_answered();
        break;
      case Kind::prompt:
        session_->on_prompt_done(true);
        break;
      case Kind::collect:
        session_->on_collect_done(digits, end);
        break;
      case Kind::timer:
        session_->on_timer(token);
        break;
      case Kind::custom:
        session_->on_custom_done(token, CustomResult{});
        break;
      case Kind::http: {
        HttpDone done;
        done.response.status = 200;
        session_->on_http_done(token, std::move(done));
        break;
      }
      case Kind::db:
        session_->on_db_done(token, DbDone{});
        break;
    }
    return true;
  }

 private:
  Completion &push(Kind k, uint64_t token) {
    queue_.push_back(Completion{k, true, token, {}, CollectEnd::max_digits});
    return queue_.back();
  }
  // A newer prompt replaces one still playing, whose completion is then never reported.
  void new_prompt() {
    if (prompt_ >= 0) queue_[static_cast<size_t>(prompt_)].live = false;
    prompt_ = static_cast<int64_t>(queue_.size());
    push(Kind::prompt, 0);
  }

  Session *session_ = nullptr;
  std::vector<Completion> queue_;
  size_t head_ = 0;
  int64_t prompt_ = -1;
  const char *keys_ = "1";
  size_t key_ = 0;
  bool hung_up_ = false;
};

struct Stats {
  double p50, p99, max, min;
};

Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  return {at(0.50), at(0.99), v.back(), v.front()};
}

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::shared_ptr<const Program> must_compile(const std::string &doc, const char *what) {
  CompileResult r = compile(doc);
  if (!r.program) {
    for (auto &p : r.problems) std::fprintf(stderr, "  %s\n", format_problem(p).c_str());
    die(std::string(what) + " does not compile");
  }
  return r.program;
}

// (a) compile time: warm-up, then `runs` compiles, each timed on its own; allocations
// counted over all timed compiles.
void bench_compile(const char *label, const std::string &doc, int runs) {
  for (int i = 0; i < 5; ++i) g_sink = g_sink + must_compile(doc, label)->node_count();
  std::vector<double> full, parse;
  uint64_t news_full = 0, news_parse = 0;
  size_t nodes = 0;
  for (int i = 0; i < runs; ++i) {
    uint64_t n0 = g_news.load();
    auto t0 = Clock::now();
    auto doc_tree = ivr::json::parse(doc);
    parse.push_back(ns_since(t0) / 1e3);
    news_parse += g_news.load() - n0;
    if (!doc_tree.ok()) die("json::parse failed");
    n0 = g_news.load();
    t0 = Clock::now();
    CompileResult r = compile(doc);
    full.push_back(ns_since(t0) / 1e3);
    news_full += g_news.load() - n0;
    if (!r.program) die(std::string(label) + " does not compile");
    nodes = r.program->node_count();
  }
  Stats f = stats_of(full), p = stats_of(parse);
  std::printf("%-14s %6zu %8zu %9.1f %9.1f %9.1f %10.1f %8.0f %13.0f %13.1f\n", label, nodes,
              doc.size(), f.p50, f.p99, f.min, p.p50, double(news_full) / runs,
              double(news_parse) / runs, double(news_full) / runs / double(nodes));
}

// (b) interpreter: `calls` calls per round, `rounds` rounds.
struct CallMix {
  const char *label;
  std::shared_ptr<const Program> program;
  std::vector<const char *> scripts;  // menu keys per call, cycled through
};

void bench_calls(const CallMix &mix, bool with_sink, size_t calls, int rounds) {
  QueuePort port;
  CallInfo info;
  info.call_id = "bench-call-0001";
  info.from = "+15551234567";
  info.to = "+18005550100";
  info.from_uri = "sip:+15551234567@pbx.example.com";
  info.to_uri = "sip:+18005550100@ivr.example.com";
  info.headers = {{"X-Tier", "vip"}, {"X-Lead-Id", "4711"}};
  info.started_at = std::chrono::system_clock::now();
  uint64_t trace_bytes = 0;
  auto run_call = [&](size_t i) -> size_t {
    Session s(mix.program, port, info);
    if (with_sink)
      s.set_trace_sink(
          [&](const TraceEntry &e) { trace_bytes += e.detail.size() + e.node.size(); });
    port.reset(&s, mix.scripts[i % mix.scripts.size()]);
    s.start();
    while (!s.finished() && port.deliver_one()) {
    }
    if (!s.finished()) die(std::string(mix.label) + ": a call stopped without finishing");
    if (s.end_reason() == EndReason::error || s.end_reason() == EndReason::step_limit)
      die(std::string(mix.label) + ": call ended with " + s.error());
    return s.path().size();
  };
  for (size_t i = 0; i < std::max<size_t>(calls / 10, 20); ++i) run_call(i);  // warm-up
  std::vector<double> ns_step, ns_call;
  uint64_t steps = 0, news = 0;
  for (int r = 0; r < rounds; ++r) {
    uint64_t round_steps = 0;
    uint64_t n0 = g_news.load();
    auto t0 = Clock::now();
    for (size_t i = 0; i < calls; ++i) round_steps += run_call(i);
    double ns = ns_since(t0);
    news += g_news.load() - n0;
    steps += round_steps;
    ns_step.push_back(ns / double(round_steps));
    ns_call.push_back(ns / double(calls));
  }
  g_sink = g_sink + trace_bytes;
  Stats st = stats_of(ns_step), sc = stats_of(ns_call);
  double total_calls = double(calls) * rounds;
  std::printf("%-10s %-6s %9.1f %8.1f %9.1f %9.2f %11.1f %10.1f %11.1f\n", mix.label,
              with_sink ? "sink" : "none", double(steps) / total_calls, st.p50, st.min,
              sc.p50 / 1e3, double(news) / double(steps), double(news) / total_calls, 1e3 / st.p50);
}

}  // namespace

int main(int argc, char **argv) {
  size_t calls = 20000;
  int rounds = 15;
  int compiles = 50;
  std::string demo_path = IVR_SOURCE_DIR "/examples/flows/demo.json";
  std::string only;  // "compile" or "calls": one part alone (for profiling)
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--calls") && i + 1 < argc) {
      calls = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--compiles") && i + 1 < argc) {
      compiles = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--demo") && i + 1 < argc) {
      demo_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench-flow [--calls N] [--rounds R] [--compiles C] [--demo PATH] "
                   "[--only compile|calls]\n");
      return 2;
    }
  }
  if (calls < 10) calls = 10;
  if (rounds < 3) rounds = 3;
  if (compiles < 2) compiles = 2;

  double timer_ns;
  {
    constexpr int n = 100000;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) g_sink = g_sink + uint64_t(Clock::now().time_since_epoch().count());
    timer_ns = ns_since(t0) / n;
  }
  std::string demo = read_file(demo_path);
  std::string big = generated_flow();
  std::printf("bench-flow: %zu calls x %d rounds per row, steady_clock::now() %.1f ns\n\n", calls,
              rounds, timer_ns);

  if (only != "calls") {
    std::printf("(a) compile (%d timed compiles after 5 warm-ups; us; allocations per compile)\n",
                compiles);
    std::printf("%-14s %6s %8s %9s %9s %9s %10s %8s %13s %13s\n", "flow", "nodes", "bytes",
                "p50 us", "p99 us", "min us", "parse p50", "allocs", "parse allocs", "allocs/node");
    bench_compile("demo", demo, compiles);
    bench_compile("generated-500", big, compiles);
  }
  if (only == "compile") return 0;

  auto demo_prog = must_compile(demo, "demo");
  auto big_prog = must_compile(big, "generated-500");
  if (big_prog->node_count() != 500) die("the generated flow does not have 500 nodes");

  // Demo calls: sales, support, 9 (back to welcome) then support, invalid then sales, and no
  // input at all (three timeouts, then goodbye).
  CallMix demo_mix{"demo", demo_prog, {"1", "2", "92", "71", "0"}};
  // Generated calls walk all 50 blocks; the menu keys choose gather+set or set only, with an
  // occasional repeat (9) or no input (0, which takes the menu's on_no_input exit after
  // three attempts).
  CallMix big_mix{"gen-500", big_prog, {"1", "2", "12", "2192", "1120", "2222221"}};
  std::printf(
      "\n(b) interpreter: Session + queue CallPort, completions delivered at once; a step is a\n"
      "    node entered (Session::path()); setup and teardown of each Session included\n");
  std::printf("%-10s %-6s %9s %8s %9s %9s %11s %10s %11s\n", "flow", "trace", "steps/call",
              "ns/step", "min", "us/call", "allocs/step", "allocs/call", "Msteps/s");
  for (bool sink : {false, true}) {
    bench_calls(demo_mix, sink, calls, rounds);
    bench_calls(big_mix, sink, calls / 10, rounds);
  }
  return 0;
}
