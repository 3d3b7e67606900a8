#include "flow/simulator.h"

#include <functional>
#include <map>

namespace ivr::flow {

namespace {

// A CallPort whose completions are events on a virtual timeline.
class SimPort : public CallPort {
 public:
  explicit SimPort(const SimulationOptions &o) : opts_(o) {
    size_t start = 0;
    const std::string &d = o.digits;
    while (true) {
      size_t comma = d.find(',', start);
      inputs_.push_back(
          d.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (d.empty()) inputs_.clear();
  }

  Session *session = nullptr;
  std::string cut_off;
  int hangup_status = 0;
  std::string hangup_reason;
  bool hung_up = false;
  std::vector<std::pair<std::string, HttpStart>> requests;
  std::vector<std::pair<std::string, DbStart>> queries;
  std::vector<std::pair<std::string, RouteStart>> routes;
  std::vector<std::pair<std::string, TransferStart>> transfers;

  void start_answer() override {
    at(0, [this] { session->on_answered(); });
  }
  void start_play(const std::string &) override { prompt(opts_.prompt_ms); }
  void start_say(const std::string &text, const std::string &, unsigned rate) override {
    size_t words = 1;
    for (char c : text) words += c == ' ';
    prompt(static_cast<uint32_t>(words * 60000 / (rate ? rate : 160)));
  }
  void start_collect(const CollectRequest &req) override {
    // Digits typed during the prompt barge in; the collect's timers start after it (never
    // before now: a prompt that ended earlier must not move the clock back).
    uint64_t base = req.barge_in ? now_ : std::max(now_, prompt_end_);
    std::string digits;
    CollectEnd end;
    uint64_t t = base;
    if (input_ >= inputs_.size()) {
      end = CollectEnd::first_timeout;
      t = std::max(base, prompt_end_) + req.first_digit_timeout_ms;
    } else {
      std::string &in = inputs_[input_];
      size_t i = 0;
      end = CollectEnd::inter_timeout;
      for (; i < in.size(); ++i) {
        t += 300;  // a keypress every 300 ms
        if (req.terminators.find(in[i]) != std::string::npos) {
          end = CollectEnd::terminator;
          ++i;
          break;
        }
        digits += in[i];
        if (digits.size() >= req.max_digits) {
          end = CollectEnd::max_digits;
          ++i;
          break;
        }
      }
      in.erase(0, i);
      if (end == CollectEnd::inter_timeout) {
        if (digits.empty()) {
          end = CollectEnd::first_timeout;
          t = std::max(base, prompt_end_) + req.first_digit_timeout_ms;
        } else {
          t += req.inter_digit_timeout_ms;
        }
      }
      if (in.empty()) ++input_;
    }
    if (!digits.empty() && req.barge_in && prompt_pending_ && base + 300 < prompt_end_) {
      // The first digit stops the prompt.
      prompt_end_ = base + 300;
      events_.erase(prompt_event_);
      prompt_event_ = at(prompt_end_ - now_, [this] { prompt_done(); });
    }
    at(t - now_, [this, digits, end] { session->on_collect_done(digits, end); });
  }
  void start_timer(uint32_t ms, uint64_t token) override {
    timers_[token] = at(ms, [this, token] {
      timers_.erase(token);
      session->on_timer(token);
    });
  }
  void cancel_timer(uint64_t token) override {
    auto it = timers_.find(token);
    if (it == timers_.end()) return;
    events_.erase(it->second);
    timers_.erase(it);
  }
  void start_custom(const std::string &verb, const CustomArgs &, uint64_t token) override {
    auto it = opts_.custom_results.find(verb);
    CustomResult r;
    if (it == opts_.custom_results.end())
      r.error = "no simulated result for this verb";
    else
      r = it->second;
    at(10, [this, token, r] { session->on_custom_done(token, r); });
  }
  // The node's next scripted answer (the last one repeats), or a failure with `reason` when
  // the script has none for it.
  template <typename Reply>
  Reply next_answer(const std::map<std::string, std::vector<Reply>> &script,
                    const std::string &node, const char *reason, const char *flag,
                    const char *form) {
    Reply reply;
    auto it = script.find(node);
    if (it == script.end() || it->second.empty()) {
      reply.reason = reason;
      reply.error = "no simulated answer for node " + node + " (ivr-flow simulate " + flag + " " +
                    node + "=" + form + ")";
      reply.delay_ms = 10;
      return reply;
    }
    size_t &used = answers_used_[std::string(flag) + " " + node];
    reply = it->second[std::min(used, it->second.size() - 1)];
    ++used;
    return reply;
  }
  void start_http(const HttpStart &req, uint64_t token) override {
    std::string node = session->current_node();
    requests.emplace_back(node, req);
    SimHttpReply reply = next_answer(opts_.http, node, "connect", "--http", "STATUS:BODY");
    HttpDone done;
    uint32_t delay = reply.delay_ms;
    if (reply.reason.empty() && delay >= req.request.timeout_ms) {
      delay = req.request.timeout_ms;
      done.reason = "timeout";
      done.error = "no answer within " + std::to_string(delay) + " ms";
    } else {
      done.reason = reply.reason;
      done.error = reply.error;
      if (reply.reason.empty()) {
        done.response.status = reply.status;
        done.response.body = reply.body;
        done.response.headers = reply.headers;
        done.response.effective_url = req.request.url;
        done.cached = reply.cached;
      }
    }
    lookups_[token] = at(delay, [this, token, done]() mutable {
      lookups_.erase(token);
      session->on_http_done(token, std::move(done));
    });
  }
  void cancel_http(uint64_t token) override {
    auto it = lookups_.find(token);
    if (it == lookups_.end()) return;
    events_.erase(it->second);
    lookups_.erase(it);
  }
  void start_db(const DbStart &req, uint64_t token) override {
    std::string node = session->current_node();
    queries.emplace_back(node, req);
    SimDbReply reply = next_answer(opts_.db, node, "connector", "--db", "ROWS");
    DbDone done;
    uint32_t delay = reply.delay_ms;
    if (delay >= req.query.timeout_ms) {
      delay = req.query.timeout_ms;
      done.reason = "timeout";
      done.error = "no answer within " + std::to_string(delay) + " ms";
    } else {
      done.reason = reply.reason;
      done.error = reply.error;
      if (reply.reason.empty()) {
        done.rows = reply.rows;
        if (done.rows.rows.size() > req.query.max_rows) {
          done.rows.rows.resize(req.query.max_rows);
          done.rows.truncated = true;
        }
      }
    }
    lookups_[token] = at(delay, [this, token, done]() mutable {
      lookups_.erase(token);
      session->on_db_done(token, std::move(done));
    });
  }
  void start_route(const RouteStart &req, uint64_t token) override {
    std::string node = session->current_node();
    routes.emplace_back(node, req);
    routes.back().second.variables = nullptr;
    RouteDone done;
    uint32_t delay = 10;
    auto it = opts_.route.find(node);
    if (it == opts_.route.end() || it->second.empty()) {
      done.outcome = "failed";
      done.error = "no routing in the simulator (use --route " + node + "=OUTCOME[:TARGET])";
    } else {
      size_t &used = answers_used_["--route " + node];
      const SimRouteReply &reply = it->second[std::min(used, it->second.size() - 1)];
      ++used;
      done.outcome = reply.outcome;
      done.target = reply.target;
      done.error = reply.error;
      done.sip_status = reply.sip_status;
      if (done.outcome == "ended") {
        done.attempts = 1;
        done.talk_ms = 60000;
        if (!done.sip_status) done.sip_status = 200;
        delay = 2000 + done.talk_ms;
      } else if (done.outcome == "failed") {
        done.attempts = done.target.empty() ? 0 : 1;
        if (!done.sip_status && !done.target.empty()) done.sip_status = 486;
        if (!done.target.empty()) delay = 2000;
      } else if (done.outcome == "timeout") {
        done.queued_ms = req.max_wait_s ? req.max_wait_s * 1000 : 60000;
        delay = done.queued_ms;
      }
    }
    lookups_[token] = at(delay, [this, token, done]() mutable {
      lookups_.erase(token);
      session->on_route_done(token, std::move(done));
    });
  }
  void cancel_route(uint64_t token) override { cancel_http(token); }
  void start_transfer(const TransferStart &req, uint64_t token) override {
    std::string node = session->current_node();
    transfers.emplace_back(node, req);
    TransferDone done;
    auto it = opts_.transfer.find(node);
    if (it == opts_.transfer.end() || it->second.empty()) {
      done.error = "no transfer in the simulator (use --transfer " + node + "=ok|STATUS)";
    } else {
      size_t &used = answers_used_["--transfer " + node];
      const SimTransferReply &reply = it->second[std::min(used, it->second.size() - 1)];
      ++used;
      done.ok = reply.ok;
      done.sip_status = reply.sip_status;
      done.error = reply.error;
    }
    lookups_[token] = at(100, [this, token, done]() mutable {
      lookups_.erase(token);
      session->on_transfer_done(token, std::move(done));
    });
  }
  void cancel_db(uint64_t token) override { cancel_http(token); }
  void stop_prompt() override {
    if (!prompt_pending_) return;
    events_.erase(prompt_event_);
    prompt_pending_ = false;
  }
  void hangup(int status, const std::string &reason) override {
    hung_up = true;
    hangup_status = status;
    hangup_reason = reason;
    events_.clear();
    timers_.clear();
    lookups_.clear();
    prompt_pending_ = false;
  }

  // Runs events in time order until nothing is left or the session is done.
  void run() {
    if (opts_.hangup_at_ms >= 0)
      at(static_cast<uint64_t>(opts_.hangup_at_ms), [this] {
        hung_up = true;
        session->on_call_ended();
        events_.clear();
        timers_.clear();
        lookups_.clear();
        prompt_pending_ = false;
      });
    uint64_t count = 0;
    while (!events_.empty() && !session->finished()) {
      auto it = events_.begin();
      if (it->first.first > opts_.max_duration_ms) {
        cut_off = "stopped after " + std::to_string(opts_.max_duration_ms / 1000) +
                  " s of simulated time";
        break;
      }
      if (++count > opts_.max_events) {
        cut_off = "stopped after " + std::to_string(opts_.max_events) + " simulated events";
        break;
      }
      now_ = it->first.first;
      auto fn = std::move(it->second);
      events_.erase(it);
      fn();
    }
  }
  uint64_t now() const { return now_; }

 private:
  using Key = std::pair<uint64_t, uint64_t>;  // time, sequence
  using Events = std::map<Key, std::function<void()>>;
  Events::iterator at(uint64_t delay, std::function<void()> fn) {
    return events_.emplace(Key{now_ + delay, seq_++}, std::move(fn)).first;
  }
  // A new prompt replaces one still playing, whose completion is then never reported.
  void prompt(uint32_t ms) {
    if (prompt_pending_) events_.erase(prompt_event_);
    prompt_pending_ = true;
    prompt_end_ = now_ + ms;
    prompt_event_ = at(ms, [this] { prompt_done(); });
  }
  void prompt_done() {
    prompt_pending_ = false;
    session->on_prompt_done(true);
  }

  const SimulationOptions &opts_;
  std::vector<std::string> inputs_;
  size_t input_ = 0;
  Events events_;
  // lookups_: http, db, route and transfer steps
  std::map<uint64_t, Events::iterator> timers_, lookups_;
  std::map<std::string, size_t> answers_used_;  // "--http node" -> answers given
  uint64_t now_ = 0, seq_ = 0, prompt_end_ = 0;
  bool prompt_pending_ = false;
  Events::iterator prompt_event_;
};

}  // namespace

SimulationResult simulate(std::shared_ptr<const Program> program, const SimulationOptions &opts) {
  SimulationResult result;
  SimPort port(opts);
  CallInfo info = opts.call;
  auto t0 = info.started_at.time_since_epoch().count() ? info.started_at
                                                       : std::chrono::system_clock::now();
  Session session(program, port, info, opts.limits);
  port.session = &session;
  session.set_clock([&] { return t0 + std::chrono::milliseconds(port.now()); });
  session.set_trace_sink([&](const TraceEntry &e) {
    result.trace.push_back(SimulationStep{port.now(), e});
  });
  for (auto &[k, v] : opts.vars) session.set_variable(k, v);
  session.start();
  port.run();
  result.path = session.path();
  result.path_text = session.path_text();
  result.end = session.end_reason();
  result.error = session.error();
  result.hangup_status = port.hangup_status;
  result.hangup_reason = port.hangup_reason;
  result.variables = session.variables();
  result.duration_ms = port.now();
  result.cut_off = port.cut_off;
  result.http_requests = std::move(port.requests);
  result.db_queries = std::move(port.queries);
  result.routes = std::move(port.routes);
  result.transfers = std::move(port.transfers);
  return result;
}

}  // namespace ivr::flow
