// PostgreSQL connector: libpq's asynchronous API driven by libevent on the engine loop.
//
// Each pool slot owns one PGconn and moves through backoff -> connecting -> ready <-> busy.
// Everything runs on the loop thread; nothing here blocks, with one documented exception:
// libpq resolves a host *name* with a synchronous getaddrinfo() while connecting. A numeric
// host (127.0.0.1, [::1]) or a unix socket directory (host=/run/postgresql) avoids it; for
// a numeric host we also pass it as hostaddr so libpq never looks it up.
//
// Completions are never run from inside our own code paths: they go through a queue that a
// zero-delay event drains, so a callback may query, cancel, or destroy the connector.
#include "db/postgresql.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>
#include <unordered_map>

namespace ivr::db {
namespace {

constexpr uint32_t kBackoffFirstMs = 100;
constexpr uint32_t kBackoffMaxMs = 5000;
constexpr unsigned kMaxPool = 16;
// Server-side limit on one statement: a query we gave up on (timeout, cancel) is only
// dropped on our side (PG15's PQcancel would block), so the server stops it at this point.
// A URL's own ?options= replaces it (?options= empty behind a PgBouncer that refuses it).
constexpr const char *kServerOptions = "-c statement_timeout=30000";

// Type OIDs (pg_type.dat); libpq does not export the catalog headers to clients.
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kFloat4Oid = 700,
              kFloat8Oid = 701;

struct EventFree {
  void operator()(event *e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;
struct ConnFinish {
  void operator()(PGconn *c) const { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;
struct ResultClear {
  void operator()(PGresult *r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

timeval to_timeval(uint32_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000) * 1000};
}

// libpq's messages end in a newline, wrap long sentences and put hints on tab-indented
// lines ("FATAL:  " has two spaces): one line, a new sentence after "; ".
std::string one_line(const char *text) {
  std::string out;
  bool line_break = false;
  for (const char *p = text ? text : ""; *p; ++p) {
    if (*p == '\n' || *p == '\r') {
      line_break = true;
      continue;
    }
    const bool space = *p == ' ' || *p == '\t';
    if (space && (line_break || out.empty() || out.back() == ' ')) continue;
    if (line_break && !out.empty())
      out += std::islower(static_cast<unsigned char>(*p)) ? " " : "; ";
    line_break = false;
    out += space ? ' ' : *p;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown error" : out;
}

Cell to_cell(const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return std::monostate{};
  const char *v = PQgetvalue(res, row, col);
  const char *end = v + PQgetlength(res, row, col);
  switch (PQftype(res, col)) {
    case kBoolOid:
      return v[0] == 't';
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t n = 0;
      auto [ptr, ec] = std::from_chars(v, end, n);
      if (ec == std::errc() && ptr == end) return n;
      break;
    }
    case kFloat4Oid:
    case kFloat8Oid: {
      double d = 0;  // from_chars: locale-independent, reads Infinity and NaN too
      auto [ptr, ec] = std::from_chars(v, end, d);
      if (ec == std::errc() && ptr == end) return d;
      break;
    }
    default:
      break;
  }
  return std::string(v, end);  // numeric, text, dates, json...: exact as the server wrote it
}

bool is_ip_literal(const std::string &host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

class PostgresConnector final : public Connector {
 public:
  PostgresConnector(const ConnectorConfig &config, const LoopContext &loop, std::string label,
                    std::vector<std::pair<std::string, std::string>> params)
      : base_(loop.base),
        label_(std::move(label)),
        connect_timeout_ms_(config.connect_timeout_ms),
        max_waiting_(config.max_waiting),
        params_(std::move(params)),
        alive_(std::make_shared<bool>(true)) {
    for (auto &[k, v] : params_) {
      keywords_.push_back(k.c_str());
      values_.push_back(v.c_str());
    }
    keywords_.push_back(nullptr);
    values_.push_back(nullptr);
    completions_event_.reset(event_new(base_, -1, 0, &PostgresConnector::on_completions, this));
    for (unsigned i = 0; i < config.pool_size; ++i) {
      auto slot = std::make_unique<Slot>();
      slot->owner = this;
      slots_.push_back(std::move(slot));
    }
    for (auto &slot : slots_) start_connect(*slot);
  }

  ~PostgresConnector() override {
    *alive_ = false;  // a completion running now must not touch us once it returns
    slots_.clear();   // events first (Slot member order), then PQfinish
    jobs_.clear();
  }

  const char *kind() const override { return "postgresql"; }

  void query(uint64_t id, QueryRequest request, QueryDone done) override {
    auto job = std::make_unique<Job>();
    job->owner = this;
    job->id = id;
    job->request = std::move(request);
    job->done = std::move(done);
    if (Slot *slot = free_slot()) {
      Job &j = add_job(std::move(job));
      start_job(*slot, j);
      return;
    }
    if (!can_wait()) {
      finish(std::move(job), DbErrc::connect, last_error_);
      return;
    }
    if (waiting_.size() >= max_waiting_) {
      finish(std::move(job), DbErrc::busy,
             label_ + ": busy: every connection in use, " + std::to_string(waiting_.size()) +
                 " waiting (max_waiting " + std::to_string(max_waiting_) + ")");
      return;
    }
    add_job(std::move(job));
    waiting_.push_back(id);
  }

  void cancel(uint64_t id) override {
    for (auto it = completions_.begin(); it != completions_.end(); ++it) {
      if (it->id == id) {
        completions_.erase(it);
        return;
      }
    }
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job &job = *it->second;
    if (job.slot) {
      Slot &slot = *job.slot;
      jobs_.erase(it);
      slot.job = nullptr;
      // The server would go on sending this query's answer: drop the connection instead
      // of a blocking PQcancel, and open a fresh one.
      reconnect_now(slot);
    } else {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), id));
      jobs_.erase(it);
    }
  }

 private:
  enum class State { backoff, connecting, ready, busy };

  struct Job;
  struct Slot {
    PostgresConnector *owner = nullptr;
    State state = State::backoff;
    ConnPtr conn;  // declared before the events: they go first
    EventPtr io;   // on PQsocket(conn); re-created whenever the socket may change
    short io_what = 0;
    EventPtr timer;  // connect deadline, or the backoff before the next attempt
    uint32_t backoff_ms = kBackoffFirstMs;
    Job *job = nullptr;  // in flight (state busy)
    bool flushing = false;
  };

  struct Job {
    PostgresConnector *owner = nullptr;
    uint64_t id = 0;
    QueryRequest request;
    QueryDone done;
    EventPtr timer;
    Slot *slot = nullptr;  // when in flight
    Rows rows;
    bool columns_set = false;
    DbErrc error = DbErrc::none;
    std::string message;
    bool drop_connection = false;  // the connection is unusable after this answer
  };

  struct Completion {
    uint64_t id;
    QueryDone done;
    QueryResult result;
  };

  // ---- jobs and completions ----

  Job &add_job(std::unique_ptr<Job> job) {
    Job &j = *job;
    if (j.request.timeout_ms > 0) {
      j.timer.reset(evtimer_new(base_, &PostgresConnector::on_job_timer, &j));
      const timeval tv = to_timeval(j.request.timeout_ms);
      evtimer_add(j.timer.get(), &tv);
    }
    jobs_[j.id] = std::move(job);
    return j;
  }

  std::unique_ptr<Job> take_job(uint64_t id) {
    auto it = jobs_.find(id);
    std::unique_ptr<Job> job = std::move(it->second);
    jobs_.erase(it);
    job->timer.reset();
    return job;
  }

  // Queues the job's answer for the completion event (never runs it here).
  void finish(std::unique_ptr<Job> job, DbErrc error, std::string message) {
    QueryResult result;
    result.error = error;
    if (error == DbErrc::none)
      result.rows = std::move(job->rows);
    else
      result.message = std::move(message);
    completions_.push_back(Completion{job->id, std::move(job->done), std::move(result)});
    if (!completions_scheduled_) {
      completions_scheduled_ = true;
      event_active(completions_event_.get(), EV_TIMEOUT, 0);
    }
  }

  static void on_completions(evutil_socket_t, short, void *arg) {
    auto *self = static_cast<PostgresConnector *>(arg);
    std::shared_ptr<bool> alive = self->alive_;
    self->completions_scheduled_ = false;
    // Only those queued now: answers queued by the callbacks wait for the next round.
    size_t n = self->completions_.size();
    while (n-- > 0 && !self->completions_.empty()) {
      Completion c = std::move(self->completions_.front());
      self->completions_.pop_front();
      c.done(std::move(c.result));
      if (!*alive) return;  // the callback destroyed the connector
    }
  }

  static void on_job_timer(evutil_socket_t, short, void *arg) {
    auto *job = static_cast<Job *>(arg);
    job->owner->job_timed_out(job->id);
  }

  void job_timed_out(uint64_t id) {
    std::unique_ptr<Job> job = take_job(id);
    const std::string after = std::to_string(job->request.timeout_ms) + " ms";
    if (Slot *slot = job->slot) {
      slot->job = nullptr;
      reconnect_now(*slot);  // see cancel()
      finish(std::move(job), DbErrc::timeout, label_ + ": timeout: no answer after " + after);
    } else {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), id));
      finish(std::move(job), DbErrc::timeout,
             label_ + ": timeout: no connection free after " + after);
    }
  }

  // ---- the pool ----

  Slot *free_slot() {
    for (auto &s : slots_)
      if (s->state == State::ready) return s.get();
    return nullptr;
  }

  // A query may wait while some connection is up or being opened; when every slot is
  // backing off after a failure the server is down, and waiting would only delay the error.
  bool can_wait() const {
    return std::any_of(slots_.begin(), slots_.end(),
                       [](auto &s) { return s->state != State::backoff; });
  }

  void fail_waiting_if_down() {
    if (can_wait()) return;
    while (!waiting_.empty()) {
      const uint64_t id = waiting_.front();
      waiting_.pop_front();
      finish(take_job(id), DbErrc::connect, last_error_);
    }
  }

  void pump() {
    while (!waiting_.empty()) {
      Slot *slot = free_slot();
      if (!slot) return;
      const uint64_t id = waiting_.front();
      waiting_.pop_front();
      start_job(*slot, *jobs_.at(id));
    }
  }

  void watch(Slot &slot, short what) {
    const evutil_socket_t fd = PQsocket(slot.conn.get());
    if (slot.io && slot.io_what == what && event_get_fd(slot.io.get()) == fd &&
        slot.state != State::connecting)
      return;
    slot.io.reset(event_new(base_, fd, what | EV_PERSIST, &PostgresConnector::on_io, &slot));
    slot.io_what = what;
    event_add(slot.io.get(), nullptr);
  }

  static void on_io(evutil_socket_t, short what, void *arg) {
    auto *slot = static_cast<Slot *>(arg);
    PostgresConnector *self = slot->owner;
    switch (slot->state) {
      case State::connecting:
        self->poll_connect(*slot);
        break;
      case State::ready:
        self->on_idle_input(*slot);
        break;
      case State::busy:
        self->on_busy_io(*slot, what);
        break;
      case State::backoff:
        break;
    }
  }

  static void on_slot_timer(evutil_socket_t, short, void *arg) {
    auto *slot = static_cast<Slot *>(arg);
    PostgresConnector *self = slot->owner;
    if (slot->state == State::connecting)
      self->connect_failed(
          *slot, "no connection after " + std::to_string(self->connect_timeout_ms_) + " ms");
    else if (slot->state == State::backoff)
      self->start_connect(*slot);
  }

  void arm_slot_timer(Slot &slot, uint32_t ms) {
    if (!slot.timer) slot.timer.reset(evtimer_new(base_, &PostgresConnector::on_slot_timer, &slot));
    const timeval tv = to_timeval(ms);
    evtimer_add(slot.timer.get(), &tv);
  }

  void close_slot(Slot &slot) {
    slot.io.reset();
    slot.conn.reset();
    if (slot.timer) evtimer_del(slot.timer.get());
    slot.flushing = false;
  }

  // ---- connecting ----

  void start_connect(Slot &slot) {
    close_slot(slot);
    slot.conn.reset(PQconnectStartParams(keywords_.data(), values_.data(), 1));
    if (!slot.conn) {
      connect_failed(slot, "out of memory");
      return;
    }
    if (PQstatus(slot.conn.get()) == CONNECTION_BAD || PQsocket(slot.conn.get()) < 0) {
      connect_failed(slot, one_line(PQerrorMessage(slot.conn.get())));
      return;
    }
    // libpq prints server notices (and a FATAL that arrives while idle) on stderr.
    PQsetNoticeProcessor(
        slot.conn.get(), [](void *, const char *) {}, nullptr);
    slot.state = State::connecting;
    arm_slot_timer(slot, connect_timeout_ms_);
    watch(slot, EV_WRITE);  // as if PQconnectPoll had answered PGRES_POLLING_WRITING
  }

  void poll_connect(Slot &slot) {
    switch (PQconnectPoll(slot.conn.get())) {
      case PGRES_POLLING_READING:
        watch(slot, EV_READ);
        return;
      case PGRES_POLLING_WRITING:
        watch(slot, EV_WRITE);
        return;
      case PGRES_POLLING_OK:
        connected(slot);
        return;
      default:
        connect_failed(slot, one_line(PQerrorMessage(slot.conn.get())));
        return;
    }
  }

  void connected(Slot &slot) {
    evtimer_del(slot.timer.get());
    if (PQsetnonblocking(slot.conn.get(), 1) != 0) {
      connect_failed(slot, one_line(PQerrorMessage(slot.conn.get())));
      return;
    }
    slot.backoff_ms = kBackoffFirstMs;
    slot.state = State::ready;
    slot.io.reset();  // the socket is final now: one read event for the connection's life
    watch(slot, EV_READ);
    pump();
  }

  void connect_failed(Slot &slot, const std::string &why) {
    close_slot(slot);
    slot.state = State::backoff;
    last_error_ = label_ + ": connect: " + why;
    arm_slot_timer(slot, slot.backoff_ms);
    slot.backoff_ms = std::min(slot.backoff_ms * 2, kBackoffMaxMs);
    fail_waiting_if_down();
  }

  // A connection we gave up on ourselves (timeout, cancel): a new one at once.
  void reconnect_now(Slot &slot) {
    slot.state = State::backoff;
    start_connect(slot);
    // start_connect may have failed synchronously (then the slot backs off).
  }

  // The server went away (restart, crash, network): fail the query in flight, back off.
  void connection_lost(Slot &slot) {
    const std::string why =
        label_ + ": connection lost: " + one_line(PQerrorMessage(slot.conn.get()));
    if (Job *job = slot.job) {
      slot.job = nullptr;
      // The server may have said why before closing (57P01: shutdown): prefer its words.
      std::string message = job->error == DbErrc::connect ? job->message : why;
      finish(take_job(job->id), DbErrc::connect, std::move(message));
    }
    close_slot(slot);
    slot.state = State::backoff;
    last_error_ = why;
    arm_slot_timer(slot, slot.backoff_ms);
    slot.backoff_ms = std::min(slot.backoff_ms * 2, kBackoffMaxMs);
    fail_waiting_if_down();
  }

  // ---- queries ----

  void on_idle_input(Slot &slot) {
    PGconn *conn = slot.conn.get();
    if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD) {
      connection_lost(slot);
      return;
    }
    while (PGnotify *n = PQnotifies(conn)) PQfreemem(n);
  }

  void start_job(Slot &slot, Job &job) {
    PGconn *conn = slot.conn.get();
    std::vector<const char *> values;
    values.reserve(job.request.params.size());
    for (auto &p : job.request.params) values.push_back(p ? p->c_str() : nullptr);
    const int sent =
        PQsendQueryParams(conn, job.request.statement.c_str(), static_cast<int>(values.size()),
                          nullptr, values.data(), nullptr, nullptr, 0);
    slot.state = State::busy;
    slot.job = &job;
    job.slot = &slot;
    if (!sent) {
      if (PQstatus(conn) == CONNECTION_BAD) {
        connection_lost(slot);
        return;
      }
      // Refused before sending (too many parameters...): the connection is still fine.
      slot.state = State::ready;
      slot.job = nullptr;
      finish(take_job(job.id), DbErrc::query,
             label_ + ": query: " + one_line(PQerrorMessage(conn)));
      return;
    }
    // Row by row, so a huge result is not held in memory past max_rows.
    PQsetSingleRowMode(conn);
    flush(slot);
  }

  void flush(Slot &slot) {
    const int r = PQflush(slot.conn.get());
    if (r < 0) {
      connection_lost(slot);
      return;
    }
    slot.flushing = r == 1;
    watch(slot, slot.flushing ? EV_READ | EV_WRITE : EV_READ);
  }

  void on_busy_io(Slot &slot, short what) {
    PGconn *conn = slot.conn.get();
    if (what & EV_READ) {
      if (!PQconsumeInput(conn)) {
        connection_lost(slot);
        return;
      }
    }
    if (slot.flushing) {
      flush(slot);
      if (slot.state != State::busy) return;
    }
    while (!PQisBusy(conn)) {
      ResultPtr res(PQgetResult(conn));
      if (!res) {
        query_done(slot);
        return;
      }
      take_result(*slot.job, res.get());
    }
    if (PQstatus(conn) == CONNECTION_BAD) connection_lost(slot);
  }

  void take_result(Job &job, const PGresult *res) {
    switch (PQresultStatus(res)) {
      case PGRES_SINGLE_TUPLE:
      case PGRES_TUPLES_OK:
        if (job.error == DbErrc::none) add_rows(job, res);
        return;
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        return;
      case PGRES_FATAL_ERROR:
        if (job.error == DbErrc::none) set_server_error(job, res);
        return;
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        // libpq would wait for COPY data forever: answer, and drop the connection.
        job.error = DbErrc::query;
        job.message = label_ + ": query: COPY is not supported";
        job.drop_connection = true;
        return;
      default:
        if (job.error == DbErrc::none) {
          job.error = DbErrc::connect;
          job.message = label_ + ": bad response: " + one_line(PQresultErrorMessage(res));
        }
        job.drop_connection = true;
        return;
    }
  }

  void add_rows(Job &job, const PGresult *res) {
    const int columns = PQnfields(res);
    if (!job.columns_set) {
      job.columns_set = true;
      for (int c = 0; c < columns; ++c) job.rows.columns.emplace_back(PQfname(res, c));
    }
    const int n = PQntuples(res);
    for (int r = 0; r < n; ++r) {
      if (job.rows.rows.size() >= job.request.max_rows) {
        job.rows.truncated = true;  // the rest is still read (and dropped) row by row
        return;
      }
      std::vector<Cell> row;
      row.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) row.push_back(to_cell(res, r, c));
      job.rows.rows.push_back(std::move(row));
    }
  }

  void set_server_error(Job &job, const PGresult *res) {
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const std::string state = sqlstate ? sqlstate : "";
    std::string text = primary ? one_line(primary) : one_line(PQresultErrorMessage(res));
    if (!state.empty()) text += " (" + state + ")";
    if (state == "57014") {  // query_canceled: our statement_timeout
      job.error = DbErrc::timeout;
      job.message = label_ + ": timeout: " + text;
    } else if (state.empty() || (state.rfind("08", 0) == 0 && state != "08P01") ||
               state.rfind("57P", 0) == 0) {
      // libpq's own (connection lost), connection_exception, server shutdown or crash.
      // 08P01 (protocol_violation) is what a wrong parameter count gets: the query's fault.
      job.error = DbErrc::connect;
      job.message = label_ + ": connection lost: " + text;
      job.drop_connection = true;
    } else {
      job.error = DbErrc::query;
      job.message = label_ + ": query: " + text;
    }
    job.rows = Rows{};
  }

  void query_done(Slot &slot) {
    Job *job = slot.job;
    slot.job = nullptr;
    std::unique_ptr<Job> owned = take_job(job->id);
    const bool drop = owned->drop_connection || PQstatus(slot.conn.get()) == CONNECTION_BAD;
    const DbErrc error = owned->error;
    std::string message = std::move(owned->message);
    finish(std::move(owned), error, std::move(message));
    if (drop) {
      connection_lost(slot);
      return;
    }
    slot.state = State::ready;
    watch(slot, EV_READ);
    pump();
  }

  event_base *base_;
  std::string label_;  // "postgresql host:port", first in every message
  uint32_t connect_timeout_ms_;
  size_t max_waiting_;
  std::vector<std::pair<std::string, std::string>> params_;  // libpq keywords and values
  std::vector<const char *> keywords_, values_;              // into params_, null-ended
  std::shared_ptr<bool> alive_;
  std::string last_error_;
  std::unordered_map<uint64_t, std::unique_ptr<Job>> jobs_;  // waiting or in flight
  std::deque<uint64_t> waiting_;                             // FIFO of job ids
  std::deque<Completion> completions_;
  bool completions_scheduled_ = false;
  EventPtr completions_event_;
  std::vector<std::unique_ptr<Slot>> slots_;  // last: destroyed first (their events)
};

}  // namespace

Result<std::unique_ptr<Connector>> open_postgresql(const ConnectorConfig &config,
                                                   const LoopContext &loop) {
  if (!loop.base) return {Errc::invalid_argument, "db: no engine loop"};
  if (config.pool_size < 1 || config.pool_size > kMaxPool)
    return {Errc::invalid_argument, "pool_size: must be 1.." + std::to_string(kMaxPool) +
                                        " for postgresql (got " + std::to_string(config.pool_size) +
                                        ")"};
  if (config.connect_timeout_ms == 0)
    return {Errc::invalid_argument, "connect_timeout_ms: must be above 0"};
  const std::string &url = config.url;
  if (url.rfind("postgresql://", 0) != 0 && url.rfind("postgres://", 0) != 0)
    return {Errc::invalid_argument, "url: not a postgresql:// URL"};

  // Parse once: to check the URL now, and to name the server in every message.
  char *parse_error = nullptr;
  PQconninfoOption *options = PQconninfoParse(url.c_str(), &parse_error);
  if (!options) {
    std::string why = parse_error ? one_line(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return {Errc::invalid_argument, "url: " + why};
  }
  std::string host, hostaddr, port;
  for (PQconninfoOption *o = options; o->keyword; ++o) {
    const std::string value = o->val ? o->val : "";
    if (std::string_view(o->keyword) == "host") host = value;
    if (std::string_view(o->keyword) == "hostaddr") hostaddr = value;
    if (std::string_view(o->keyword) == "port") port = value;
  }
  PQconninfoFree(options);

  std::string label = "postgresql " +
                      (host.empty() ? hostaddr.empty() ? "localhost" : hostaddr : host) + ":" +
                      (port.empty() ? "5432" : port);
  // Later keywords override earlier ones, the URL's (dbname, expanded) included: ours
  // before it are defaults the URL may change; the password after it is the secret's.
  std::vector<std::pair<std::string, std::string>> params = {
      {"fallback_application_name", "ivr"},
      {"options", kServerOptions},
      {"dbname", url},
  };
  if (hostaddr.empty() && is_ip_literal(host)) params.emplace_back("hostaddr", host);
  if (!config.password.empty()) params.emplace_back("password", config.password);
  return std::unique_ptr<Connector>(
      new PostgresConnector(config, loop, std::move(label), std::move(params)));
}

}  // namespace ivr::db
