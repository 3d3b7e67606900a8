// ivr-flow: the flow author's tool.
//   ivr-flow check FILE [--prompts DIR] [--verb NAME]...
//   ivr-flow simulate FILE [--digits SCRIPT] [--var NAME=VALUE]... [--at YYYY-MM-DDTHH:MM
//            [--tz ZONE]] [--from NUMBER] [--to NUMBER] [--custom VERB=EXIT[:NAME=VALUE,...]]...
//            [--http NODE=STATUS[:BODY|@FILE]|REASON]... [--db NODE=ROWS|@FILE|REASON]...
//            [--route NODE=OUTCOME[:TARGET[:STATUS]]]... [--transfer NODE=ok|STATUS]...
//            [--hangup-at MS] [--prompts DIR]
//            [--verb NAME]...
// Docs: docs/flows.md, section "Tools".
#include <date/tz.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/json.h"
#include "flow/compiler.h"
#include "flow/simulator.h"

namespace {

using namespace ivr::flow;

int usage() {
  std::fprintf(stderr,
               "usage: ivr-flow check FILE [--prompts DIR] [--verb NAME]...\n"
               "       ivr-flow simulate FILE [--digits SCRIPT] [--var NAME=VALUE]...\n"
               "                [--at YYYY-MM-DDTHH:MM [--tz ZONE]] [--from N] [--to N]\n"
               "                [--custom VERB=EXIT[:NAME=VALUE,...]]... [--hangup-at MS]\n"
               "                [--http NODE=STATUS[:BODY|@FILE]|REASON]...\n"
               "                [--db NODE=ROWS|@FILE|REASON]...\n"
               "                [--route NODE=OUTCOME[:TARGET[:STATUS]]]...\n"
               "                [--transfer NODE=ok|STATUS]...\n"
               "                [--prompts DIR] [--verb NAME]...\n");
  return 2;
}

bool read_file(const std::string &path, std::string *out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// "2026-03-29T09:30" in zone -> system time.
bool parse_at(const std::string &at, const std::string &tz,
              std::chrono::system_clock::time_point *out, std::string *err) {
  int y, mo, d, h, mi, s = 0;
  char extra = 0;
  int n = std::sscanf(at.c_str(), "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &s, &extra);
  if (n != 5 && n != 6) {
    *err = "--at: expected YYYY-MM-DDTHH:MM[:SS], got \"" + at + "\"";
    return false;
  }
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                           date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) {
    *err = "--at: \"" + at + "\" is not a valid date and time";
    return false;
  }
  date::local_seconds local = date::local_days{ymd} + std::chrono::hours(h) +
                              std::chrono::minutes(mi) + std::chrono::seconds(s);
  try {
    const date::time_zone *zone = tz.empty() ? date::current_zone() : date::locate_zone(tz);
    *out = zone->to_sys(local, date::choose::earliest);
  } catch (const std::exception &e) {
    *err = "--tz: unknown time zone \"" + tz + "\"";
    return false;
  }
  return true;
}

// "200:BODY", "200@FILE", "404" or a transport failure ("timeout", "connect", ...).
bool parse_http_answer(const std::string &text, SimHttpReply *out, std::string *err) {
  static const char *const kReasons[] = {"timeout",  "connect",      "tls", "too_large",
                                         "protocol", "circuit_open", "auth"};
  for (const char *r : kReasons) {
    if (text == r) {
      out->reason = r;
      out->error = std::string("simulated ") + r;
      if (text == "timeout") {
        out->reason.clear();  // the simulator times the request out itself
        out->delay_ms = 24 * 3600 * 1000;
      }
      return true;
    }
  }
  size_t cut = text.find_first_of(":@");
  std::string status = text.substr(0, cut);
  char *end = nullptr;
  long code = std::strtol(status.c_str(), &end, 10);
  if (status.empty() || *end || code < 100 || code > 599) {
    *err = "\"" + status +
           "\" is neither a status (100-599) nor a failure (timeout, connect, tls, too_large, "
           "protocol, circuit_open, auth)";
    return false;
  }
  out->status = static_cast<int>(code);
  if (cut != std::string::npos) {
    if (text[cut] == '@') {
      if (!read_file(text.substr(cut + 1), &out->body)) {
        *err = "cannot read " + text.substr(cut + 1);
        return false;
      }
    } else {
      out->body = text.substr(cut + 1);
    }
  }
  size_t first = out->body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (out->body[first] == '{' || out->body[first] == '['))
    out->headers.emplace_back("Content-Type", "application/json");
  else if (first != std::string::npos && out->body[first] == '<')
    out->headers.emplace_back("Content-Type", "text/xml; charset=utf-8");
  return true;
}

// '[{"tier":"gold","score":7}]' (rows), '{"tier":"gold"}' (one row), '[]', @FILE, or a
// failure (timeout, connect, query, busy).
bool parse_db_answer(const std::string &text, SimDbReply *out, std::string *err) {
  for (const char *r : {"timeout", "connect", "query", "busy"}) {
    if (text == r) {
      out->reason = r;
      out->error = std::string("simulated ") + r;
      if (text == "timeout") out->delay_ms = 24 * 3600 * 1000;  // the simulator times it out
      return true;
    }
  }
  std::string body = text;
  if (!text.empty() && text[0] == '@' && !read_file(text.substr(1), &body)) {
    *err = "cannot read " + text.substr(1);
    return false;
  }
  auto doc = ivr::json::parse(body);
  if (!doc.ok()) {
    *err = "rows are JSON: " + doc.error().message;
    return false;
  }
  const ivr::json::Value &root = doc->root();
  std::vector<const ivr::json::Value *> objects;
  if (root.is(ivr::json::Kind::object)) objects.push_back(&root);
  for (const auto &item : root.items) objects.push_back(&item);
  if (!root.is(ivr::json::Kind::object) && !root.is(ivr::json::Kind::array)) {
    *err = "rows are a JSON array of objects (or one object), or timeout, connect, query, busy";
    return false;
  }
  ivr::db::Rows &rows = out->rows;
  for (const auto *o : objects) {
    if (!o->is(ivr::json::Kind::object)) {
      *err = "each row is a JSON object of column: value";
      return false;
    }
    for (const auto &m : o->members)
      if (std::find(rows.columns.begin(), rows.columns.end(), m.key) == rows.columns.end())
        rows.columns.push_back(m.key);
  }
  for (const auto *o : objects) {
    std::vector<ivr::db::Cell> row(rows.columns.size());
    for (const auto &m : o->members) {
      size_t c = static_cast<size_t>(std::find(rows.columns.begin(), rows.columns.end(), m.key) -
                                     rows.columns.begin());
      const ivr::json::Value &v = m.value;
      if (v.is(ivr::json::Kind::boolean))
        row[c] = v.boolean;
      else if (v.is(ivr::json::Kind::number))
        row[c] =
            v.integral ? ivr::db::Cell(static_cast<int64_t>(v.number)) : ivr::db::Cell(v.number);
      else if (v.is(ivr::json::Kind::string))
        row[c] = v.string;
      else if (!v.is(ivr::json::Kind::null)) {
        *err = "column \"" + m.key + "\": a value is a string, number, boolean or null";
        return false;
      }
    }
    rows.rows.push_back(std::move(row));
  }
  return true;
}

// "ended", "ended:vici", "failed:vici:503", "timeout", "error:plan unknown".
bool parse_route_answer(const std::string &text, SimRouteReply *out, std::string *err) {
  size_t colon = text.find(':');
  out->outcome = text.substr(0, colon);
  std::string rest = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (out->outcome == "error") {
    out->error = rest.empty() ? "simulated routing error" : rest;
    return true;
  }
  if (out->outcome != "ended" && out->outcome != "failed" && out->outcome != "timeout") {
    *err = "\"" + out->outcome + "\" is not an outcome (ended, failed, timeout, error)";
    return false;
  }
  size_t colon2 = rest.find(':');
  out->target = rest.substr(0, colon2);
  if (colon2 != std::string::npos) {
    std::string status = rest.substr(colon2 + 1);
    char *end = nullptr;
    long code = std::strtol(status.c_str(), &end, 10);
    if (status.empty() || *end || code < 100 || code > 699) {
      *err = "\"" + status + "\" is not a SIP status (100-699)";
      return false;
    }
    out->sip_status = static_cast<int>(code);
  }
  if (out->outcome == "failed")
    out->error = "simulated: " + (out->target.empty() ? std::string("no target could take the call")
                                                      : "refused by " + out->target);
  return true;
}

// "ok" or a SIP status the transfer failed with (a REFER refused, a NOTIFY of 486...).
bool parse_transfer_answer(const std::string &text, SimTransferReply *out, std::string *err) {
  if (text == "ok") return true;
  char *end = nullptr;
  long code = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end || code < 300 || code > 699) {
    *err = "\"" + text + "\" is neither ok nor a failure status (300-699)";
    return false;
  }
  out->ok = false;
  out->sip_status = static_cast<int>(code);
  out->error = "simulated: refused with SIP " + text;
  return true;
}

// One line per route or transfer request the flow made, with its rendered values.
void print_requests(const SimulationResult &r) {
  for (const auto &[node, rs] : r.routes) {
    std::printf(
        "route %s: plan %s, ring %u ms, %s", node.c_str(), rs.plan.c_str(), rs.ring_timeout_ms,
        rs.max_attempts ? ("at most " + std::to_string(rs.max_attempts) + " attempts").c_str()
                        : "every candidate");
    if (!rs.caller_id.empty()) std::printf(", caller id %s", rs.caller_id.c_str());
    if (rs.queue) {
      std::printf(", queue priority %u", rs.priority);
      if (rs.max_wait_s) std::printf(", max wait %u s", rs.max_wait_s);
      if (!rs.hold_file.empty()) std::printf(", hold %s", rs.hold_file.c_str());
      if (rs.announce_every_s)
        std::printf(", announce every %u s: \"%s\"", rs.announce_every_s, rs.announce_text.c_str());
    }
    std::printf("\n");
    for (const auto &[name, value] : rs.headers)
      std::printf("  %s: %s\n", name.c_str(), value.c_str());
  }
  for (const auto &[node, ts] : r.transfers)
    std::printf("transfer %s: %s %s\n", node.c_str(),
                ts.method == TransferStart::Method::redirect ? "redirect (302)" : "refer",
                ts.uri.c_str());
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  std::string cmd = argv[1], file = argv[2];
  if (cmd != "check" && cmd != "simulate") return usage();
  CompileOptions copts;
  SimulationOptions sopts;
  std::string at, tz;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ivr-flow: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--prompts") {
      copts.prompt_dir = value();
    } else if (a == "--verb") {
      copts.custom_verbs.insert(value());
    } else if (cmd == "simulate" && a == "--digits") {
      sopts.digits = value();
    } else if (cmd == "simulate" && a == "--var") {
      std::string kv = value();
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "ivr-flow: --var expects NAME=VALUE, got \"%s\"\n", kv.c_str());
        return 2;
      }
      sopts.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (cmd == "simulate" && a == "--at") {
      at = value();
    } else if (cmd == "simulate" && a == "--tz") {
      tz = value();
    } else if (cmd == "simulate" && a == "--from") {
      sopts.call.from = value();
    } else if (cmd == "simulate" && a == "--to") {
      sopts.call.to = value();
    } else if (cmd == "simulate" && a == "--hangup-at") {
      sopts.hangup_at_ms = std::atoll(value().c_str());
    } else if (cmd == "simulate" && a == "--http") {
      // lookup=200:{"tier":"gold"}   lookup=404   lookup=200@answer.json   lookup=timeout
      std::string spec = value(), err;
      size_t eq = spec.find('=');
      SimHttpReply reply;
      if (eq == std::string::npos || eq == 0 ||
          !parse_http_answer(spec.substr(eq + 1), &reply, &err)) {
        std::fprintf(stderr,
                     "ivr-flow: --http expects NODE=STATUS[:BODY|@FILE] or NODE=REASON%s%s\n",
                     err.empty() ? "" : ": ", err.c_str());
        return 2;
      }
      sopts.http[spec.substr(0, eq)].push_back(std::move(reply));
    } else if (cmd == "simulate" && a == "--db") {
      // lookup=[{"tier":"gold"}]   lookup=[]   lookup=@rows.json   lookup=timeout
      std::string spec = value(), err;
      size_t eq = spec.find('=');
      SimDbReply reply;
      if (eq == std::string::npos || eq == 0 ||
          !parse_db_answer(spec.substr(eq + 1), &reply, &err)) {
        std::fprintf(stderr,
                     "ivr-flow: --db expects NODE=ROWS (JSON), NODE=@FILE or NODE=REASON%s%s\n",
                     err.empty() ? "" : ": ", err.c_str());
        return 2;
      }
      sopts.db[spec.substr(0, eq)].push_back(std::move(reply));
    } else if (cmd == "simulate" && (a == "--route" || a == "--transfer")) {
      // to_sales=ended:vici   to_sales=failed:vici:486   wait=timeout   xfer=ok   xfer=486
      std::string spec = value(), err;
      size_t eq = spec.find('=');
      bool route = a == "--route";
      SimRouteReply rr;
      SimTransferReply tr;
      bool ok = eq != std::string::npos && eq != 0 &&
                (route ? parse_route_answer(spec.substr(eq + 1), &rr, &err)
                       : parse_transfer_answer(spec.substr(eq + 1), &tr, &err));
      if (!ok) {
        std::fprintf(stderr, "ivr-flow: %s expects %s%s%s\n", a.c_str(),
                     route ? "NODE=OUTCOME[:TARGET[:STATUS]] (ended, failed, timeout) or "
                             "NODE=error[:TEXT]"
                           : "NODE=ok or NODE=STATUS",
                     err.empty() ? "" : ": ", err.c_str());
        return 2;
      }
      if (route)
        sopts.route[spec.substr(0, eq)].push_back(std::move(rr));
      else
        sopts.transfer[spec.substr(0, eq)].push_back(std::move(tr));
    } else if (cmd == "simulate" && a == "--custom") {
      // crm.lookup=found:tier=gold,name=Ada   or   crm.lookup=!error text
      std::string spec = value();
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "ivr-flow: --custom expects VERB=EXIT[:NAME=VALUE,...]\n");
        return 2;
      }
      std::string verb = spec.substr(0, eq), rest = spec.substr(eq + 1);
      CustomResult r;
      if (!rest.empty() && rest[0] == '!') {
        r.error = rest.substr(1);
      } else {
        size_t colon = rest.find(':');
        r.exit = rest.substr(0, colon);
        if (colon != std::string::npos) {
          std::stringstream vals(rest.substr(colon + 1));
          std::string kv;
          while (std::getline(vals, kv, ',')) {
            size_t e = kv.find('=');
            if (e == std::string::npos) continue;
            r.values.emplace_back(kv.substr(0, e), kv.substr(e + 1));
          }
        }
      }
      sopts.custom_results[verb] = r;
      copts.custom_verbs.insert(verb);
    } else {
      std::fprintf(stderr, "ivr-flow: unknown option %s\n", a.c_str());
      return usage();
    }
  }

  std::string text;
  if (!read_file(file, &text)) {
    std::fprintf(stderr, "ivr-flow: cannot read %s: %s\n", file.c_str(), std::strerror(errno));
    return 2;
  }
  CompileResult compiled = compile(text, copts);
  if (!compiled.program) {
    for (const Problem &p : compiled.problems)
      std::printf("%s:%s\n", file.c_str(), format_problem(p).c_str());
    std::printf("%zu problem%s\n", compiled.problems.size(),
                compiled.problems.size() == 1 ? "" : "s");
    return 1;
  }
  if (cmd == "check") {
    std::printf("OK: flow %s%s%s, %zu nodes\n", compiled.program->id.c_str(),
                compiled.program->version.empty() ? "" : " version ",
                compiled.program->version.c_str(), compiled.program->node_count());
    return 0;
  }

  if (!at.empty()) {
    std::string err;
    if (!parse_at(at, tz, &sopts.call.started_at, &err)) {
      std::fprintf(stderr, "ivr-flow: %s\n", err.c_str());
      return 2;
    }
  } else if (!tz.empty()) {
    std::fprintf(stderr, "ivr-flow: --tz goes with --at\n");
    return 2;
  }
  if (sopts.call.call_id.empty()) sopts.call.call_id = "simulated";
  SimulationResult r = simulate(compiled.program, sopts);
  for (const SimulationStep &s : r.trace)
    std::printf("%7.3f  %-24s %-10s %s\n", static_cast<double>(s.at_ms) / 1000.0,
                s.entry.node.c_str(), s.entry.verb.c_str(), s.entry.detail.c_str());
  print_requests(r);
  const std::string &path = r.path_text;
  std::printf("end: %s after %.3f s", r.cut_off.empty() ? end_reason_name(r.end) : "none",
              static_cast<double>(r.duration_ms) / 1000.0);
  if (r.hangup_status) std::printf(", SIP %d", r.hangup_status);
  if (!r.hangup_reason.empty()) std::printf(", \"%s\"", r.hangup_reason.c_str());
  std::printf("\n");
  if (!r.error.empty()) std::printf("error: %s\n", r.error.c_str());
  if (!r.cut_off.empty())
    std::printf("simulation %s; the flow was still running\n", r.cut_off.c_str());
  std::printf("path: %s\n", path.c_str());
  for (auto &[k, v] : r.variables) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  return r.end == EndReason::error || r.end == EndReason::step_limit ? 3 : 0;
}
