#include "routing/config.h"

#include <algorithm>
#include <initializer_list>

#include "common/text.h"
#include "routing/router.h"

namespace ivr::routing {

namespace {

using json::Kind;

#define IVR_TRY(expr)              \
  do {                             \
    if (Status s_ = (expr); !s_) { \
      return s_.error();           \
    }                              \
  } while (0)

std::string range(int64_t lo, int64_t hi) {
  return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

// Reads the members of one JSON object, each error naming "<path>.<field>".
class Obj {
 public:
  Obj(const json::Value &v, std::string path) : v_(v), path_(std::move(path)) {}

  const std::string &path() const { return path_; }
  std::string at(std::string_view name) const { return path_ + "." + std::string(name); }
  Error bad(std::string_view name, std::string_view why) const {
    return Error{Errc::invalid_argument, at(name) + ": " + std::string(why)};
  }
  const json::Value *find(std::string_view name) const { return v_.find(name); }

  Status only(std::initializer_list<std::string_view> known) const {
    for (const json::Member &m : v_.members) {
      if (std::find(known.begin(), known.end(), m.key) != known.end()) continue;
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return bad(shown_name(m.key), "unknown field (known: " + list + ")");
    }
    return {};
  }
  Status text(std::string_view name, std::string &out, bool required = false) const {
    const json::Value *v = v_.find(name);
    if (!v) return required ? Status(bad(name, "missing")) : Status();
    if (!v->is(Kind::string)) return bad(name, "must be a string");
    if (v->string.empty()) return bad(name, "must not be empty");
    out = v->string;
    return {};
  }
  Status boolean(std::string_view name, bool &out) const {
    const json::Value *v = v_.find(name);
    if (!v) return {};
    if (!v->is(Kind::boolean)) return bad(name, "must be true or false");
    out = v->boolean;
    return {};
  }
  Status integer(std::string_view name, uint32_t lo, uint32_t hi, uint32_t &out,
                 std::string_view missing = {}) const {
    const json::Value *v = v_.find(name);
    if (!v) return missing.empty() ? Status() : Status(bad(name, missing));
    if (!v->is(Kind::number) || !v->integral || v->number < lo || v->number > hi)
      return bad(name, range(lo, hi));
    out = static_cast<uint32_t>(v->number);
    return {};
  }
  // A required or optional member of a given kind.
  Result<const json::Value *> member(std::string_view name, Kind kind, bool required,
                                     std::string_view what) const {
    const json::Value *v = v_.find(name);
    if (!v) {
      if (required) return bad(name, "missing");
      return static_cast<const json::Value *>(nullptr);
    }
    if (!v->is(kind)) return bad(name, "must be " + std::string(what));
    return v;
  }

 private:
  const json::Value &v_;
  std::string path_;
};

Result<SipTarget> parse_uri(const json::Value &v, const std::string &path) {
  SipTarget u;
  if (v.is(Kind::string)) {
    // "sip:...;transport=tcp": the transport parameter, else tls for sips:, else udp.
    u.uri = v.string;
    std::string lower = text::to_lower(u.uri);
    size_t p = lower.find(";transport=");
    if (lower.rfind("sips:", 0) == 0) u.transport = Transport::tls;
    if (p != std::string::npos) {
      std::string_view t = std::string_view(lower).substr(p + 11);
      t = t.substr(0, t.find_first_of(";?>"));
      if (t == "udp")
        u.transport = Transport::udp;
      else if (t == "tcp")
        u.transport = Transport::tcp;
      else if (t == "tls")
        u.transport = Transport::tls;
      else
        return Error{Errc::invalid_argument,
                     path + ": transport parameter must be udp, tcp or tls"};
    }
    return u;
  }
  if (!v.is(Kind::object))
    return Error{Errc::invalid_argument,
                 path + ": must be a SIP URI string or {\"uri\": ..., \"transport\": ...}"};
  Obj o(v, path);
  IVR_TRY(o.only({"uri", "transport"}));
  IVR_TRY(o.text("uri", u.uri, true));
  std::string t;
  IVR_TRY(o.text("transport", t));
  if (t.empty()) {
    u.transport = u.uri.rfind("sips:", 0) == 0 ? Transport::tls : Transport::udp;
  } else if (t == "udp") {
    u.transport = Transport::udp;
  } else if (t == "tcp") {
    u.transport = Transport::tcp;
  } else if (t == "tls") {
    u.transport = Transport::tls;
  } else {
    return o.bad("transport", "must be udp, tcp or tls");
  }
  return u;
}

Result<TargetConfig> parse_target(const json::Member &m, const std::string &path) {
  if (!m.value.is(Kind::object))
    return Error{Errc::invalid_argument, path +
                                             ": a target is an object with \"uris\" and "
                                             "\"capacity\""};
  Obj o(m.value, path);
  IVR_TRY(
      o.only({"uris", "username", "password_secret", "capacity", "weight", "priority", "headers",
              "delivery", "media_timeout_s", "probe", "availability", "description"}));
  TargetConfig t;
  t.name = m.key;
  auto uris = o.member("uris", Kind::array, true, "an array of SIP URIs");
  if (!uris.ok()) return uris.error();
  if (uris.value()->items.empty()) return o.bad("uris", "at least one SIP URI is needed");
  for (size_t i = 0; i < uris.value()->items.size(); ++i) {
    auto u = parse_uri(uris.value()->items[i], o.at("uris[" + std::to_string(i) + "]"));
    if (!u.ok()) return u.error();
    t.uris.push_back(std::move(u).value());
  }
  IVR_TRY(o.text("username", t.username));
  IVR_TRY(o.text("password_secret", t.password_secret));
  IVR_TRY(o.integer("capacity", 1, kMaxCapacity, t.capacity,
                    "missing (the most concurrent calls the target takes, 1 to 100000)"));
  IVR_TRY(o.integer("weight", 1, kMaxWeight, t.weight));
  IVR_TRY(o.integer("priority", 0, kMaxPriority, t.priority));
  auto headers = o.member("headers", Kind::object, false, "an object of header name -> template");
  if (!headers.ok()) return headers.error();
  if (const json::Value *h = headers.value()) {
    for (const json::Member &hm : h->members) {
      std::string hp = "headers." + shown_name(hm.key);
      if (!hm.value.is(Kind::string)) return o.bad(hp, "must be a string (template text)");
      t.headers.push_back({hm.key, hm.value.string});
    }
  }
  std::string delivery;
  IVR_TRY(o.text("delivery", delivery));
  if (delivery == "refer")
    t.delivery = DeliveryMethod::refer;
  else if (delivery == "redirect")
    t.delivery = DeliveryMethod::redirect;
  else if (!delivery.empty() && delivery != "bridge")
    return o.bad("delivery", "must be \"bridge\", \"refer\" or \"redirect\"");
  IVR_TRY(o.integer("media_timeout_s", 0, kMaxMediaTimeout, t.media_timeout_s));
  auto probe = o.member("probe", Kind::object, false, "an object");
  if (!probe.ok()) return probe.error();
  if (const json::Value *p = probe.value()) {
    Obj po(*p, o.at("probe"));
    IVR_TRY(po.only({"enabled", "interval_s", "down_after", "up_after", "min_hold_s"}));
    IVR_TRY(po.boolean("enabled", t.probe.enabled));
    IVR_TRY(po.integer("interval_s", 1, kMaxProbeInterval, t.probe.interval_s));
    IVR_TRY(po.integer("down_after", 1, kMaxThreshold, t.probe.down_after));
    IVR_TRY(po.integer("up_after", 1, kMaxThreshold, t.probe.up_after));
    IVR_TRY(po.integer("min_hold_s", 0, kMaxHoldSeconds, t.probe.min_hold_s));
  }
  auto avail = o.member("availability", Kind::object, false, "an object");
  if (!avail.ok()) return avail.error();
  if (const json::Value *a = avail.value()) {
    Obj ao(*a, o.at("availability"));
    IVR_TRY(ao.only({"rule", "subtract_calls_waiting", "stale_after_s"}));
    std::string rule;
    IVR_TRY(ao.text("rule", rule));
    if (rule == "idle_agent")
      t.availability.rule = AgentRule::idle_agent;
    else if (!rule.empty() && rule != "none")
      return ao.bad("rule", "must be \"none\" or \"idle_agent\"");
    IVR_TRY(ao.boolean("subtract_calls_waiting", t.availability.subtract_calls_waiting));
    IVR_TRY(ao.integer("stale_after_s", 1, kMaxStaleSeconds, t.availability.stale_after_s));
  }
  return t;
}

Result<std::vector<std::string>> name_list(const json::Value &v, const std::string &path) {
  if (!v.is(Kind::array))
    return Error{Errc::invalid_argument, path + ": must be an array of target names"};
  std::vector<std::string> out;
  for (size_t i = 0; i < v.items.size(); ++i) {
    if (!v.items[i].is(Kind::string))
      return Error{Errc::invalid_argument,
                   path + "[" + std::to_string(i) + "]: must be a target name (a string)"};
    out.push_back(v.items[i].string);
  }
  return out;
}

Result<std::vector<rules::HoursSpec>> hours_list(const json::Value &v, const std::string &path) {
  if (!v.is(Kind::array))
    return Error{Errc::invalid_argument, path + ": must be an array of \"HH:MM-HH:MM\" strings"};
  std::vector<rules::HoursSpec> out;
  for (size_t i = 0; i < v.items.size(); ++i) {
    const json::Value &h = v.items[i];
    size_t dash = h.is(Kind::string) ? h.string.find('-') : std::string::npos;
    if (dash == std::string::npos)
      return Error{Errc::invalid_argument,
                   path + "[" + std::to_string(i) + "]: must be a string \"HH:MM-HH:MM\""};
    out.push_back({h.string.substr(0, dash), h.string.substr(dash + 1)});
  }
  return out;
}

// The shape of a flow document's schedules (docs/flows.md).
Result<rules::Schedule> parse_schedule(const json::Value &v, const std::string &path) {
  if (!v.is(Kind::object))
    return Error{Errc::invalid_argument,
                 path + ": a schedule is an object with \"time_zone\" and \"weekly\""};
  Obj o(v, path);
  IVR_TRY(o.only({"time_zone", "weekly", "holidays", "overrides", "description"}));
  rules::ScheduleSpec spec;
  IVR_TRY(o.text("time_zone", spec.time_zone, true));
  auto weekly = o.member("weekly", Kind::object, false, "an object of day -> hours");
  if (!weekly.ok()) return weekly.error();
  if (const json::Value *w = weekly.value()) {
    for (const json::Member &day : w->members) {
      auto it = std::find(rules::kWeekdayNames.begin(), rules::kWeekdayNames.end(), day.key);
      if (it == rules::kWeekdayNames.end())
        return o.bad("weekly." + shown_name(day.key),
                     "unknown day (mon, tue, wed, thu, fri, sat, sun)");
      auto hours = hours_list(day.value, o.at("weekly." + day.key));
      if (!hours.ok()) return hours.error();
      spec.weekly[static_cast<size_t>(it - rules::kWeekdayNames.begin())] = hours.value();
    }
  }
  auto hol = o.member("holidays", Kind::array, false, "an array");
  if (!hol.ok()) return hol.error();
  if (const json::Value *hs = hol.value()) {
    for (size_t i = 0; i < hs->items.size(); ++i) {
      std::string hp = o.at("holidays[" + std::to_string(i) + "]");
      if (!hs->items[i].is(Kind::object))
        return Error{Errc::invalid_argument, hp + ": a holiday is an object with \"date\""};
      Obj ho(hs->items[i], hp);
      IVR_TRY(ho.only({"date", "hours", "name"}));
      rules::HolidaySpec h;
      IVR_TRY(ho.text("date", h.date, true));
      if (const json::Value *hv = ho.find("hours")) {
        auto hours = hours_list(*hv, ho.at("hours"));
        if (!hours.ok()) return hours.error();
        h.hours = hours.value();
      }
      spec.holidays.push_back(std::move(h));
    }
  }
  auto ov = o.member("overrides", Kind::array, false, "an array");
  if (!ov.ok()) return ov.error();
  if (const json::Value *os = ov.value()) {
    for (size_t i = 0; i < os->items.size(); ++i) {
      std::string op = o.at("overrides[" + std::to_string(i) + "]");
      if (!os->items[i].is(Kind::object))
        return Error{Errc::invalid_argument,
                     op + ": an override is an object with \"from\", \"to\", \"open\""};
      Obj oo(os->items[i], op);
      IVR_TRY(oo.only({"from", "to", "open", "name"}));
      rules::OverrideSpec s;
      IVR_TRY(oo.text("from", s.from, true));
      IVR_TRY(oo.text("to", s.to, true));
      IVR_TRY(oo.boolean("open", s.open));
      spec.overrides.push_back(std::move(s));
    }
  }
  auto sched = rules::Schedule::create(spec);
  if (!sched.ok())  // its messages name the field relative to the schedule
    return Error{Errc::invalid_argument, path + "." + sched.error().message};
  return sched;
}

Result<PlanEntryConfig> parse_entry(const json::Value &v, const std::string &path) {
  if (!v.is(Kind::object))
    return Error{Errc::invalid_argument,
                 path + ": an entry is an object with \"strategy\" and \"set\" or \"targets\""};
  Obj o(v, path);
  IVR_TRY(o.only({"schedule", "strategy", "set", "targets", "rules", "key", "description"}));
  PlanEntryConfig e;
  IVR_TRY(o.text("schedule", e.schedule));
  std::string strategy;
  IVR_TRY(o.text("strategy", strategy));
  if (!strategy.empty() && !parse_strategy(strategy, e.strategy))
    return o.bad("strategy",
                 "must be failover, round_robin, weighted, least_busy, most_idle, sticky or rules");
  IVR_TRY(o.text("set", e.set));
  if (const json::Value *t = o.find("targets")) {
    auto names = name_list(*t, o.at("targets"));
    if (!names.ok()) return names.error();
    e.targets = std::move(names).value();
    if (e.targets.empty()) return o.bad("targets", "at least one target is needed");
  }
  auto rules = o.member("rules", Kind::array, false, "an array of {\"when\", \"then\"}");
  if (!rules.ok()) return rules.error();
  if (const json::Value *rs = rules.value()) {
    for (size_t i = 0; i < rs->items.size(); ++i) {
      std::string rp = o.at("rules[" + std::to_string(i) + "]");
      if (!rs->items[i].is(Kind::object))
        return Error{Errc::invalid_argument,
                     rp + ": a rule is an object with \"when\" and \"then\""};
      Obj ro(rs->items[i], rp);
      IVR_TRY(ro.only({"when", "then"}));
      RuleSpec r;
      IVR_TRY(ro.text("when", r.when, true));
      IVR_TRY(ro.text("then", r.then, true));
      e.rules.push_back(std::move(r));
    }
  }
  if (o.find("key")) {
    if (e.strategy != Strategy::sticky) return o.bad("key", "only with strategy \"sticky\"");
    IVR_TRY(o.text("key", e.key));
  }
  return e;
}

}  // namespace

Result<RoutingConfig> parse_routing_config(std::string_view json_text, std::string_view path) {
  auto doc = json::parse(json_text);
  if (!doc.ok()) return Error{Errc::parse, std::string(path) + ": " + doc.error().message};
  return parse_routing_config(doc->root(), path);
}

Result<RoutingConfig> parse_routing_config(const json::Value &root, std::string_view path) {
  const std::string p(path);
  if (!root.is(Kind::object))
    return Error{Errc::invalid_argument, p + ": must be an object with \"targets\" and \"plans\""};
  Obj o(root, p);
  IVR_TRY(o.only({"targets", "target_sets", "schedules", "plans", "connectors", "description"}));
  RoutingConfig c;

  auto targets = o.member("targets", Kind::object, true, "an object of name -> target");
  if (!targets.ok()) return targets.error();
  for (const json::Member &m : targets.value()->members) {
    auto t = parse_target(m, o.at("targets." + shown_name(m.key)));
    if (!t.ok()) return t.error();
    c.targets.push_back(std::move(t).value());
  }

  auto sets = o.member("target_sets", Kind::object, false, "an object of name -> target list");
  if (!sets.ok()) return sets.error();
  if (const json::Value *s = sets.value()) {
    for (const json::Member &m : s->members) {
      auto names = name_list(m.value, o.at("target_sets." + shown_name(m.key)));
      if (!names.ok()) return names.error();
      c.sets.push_back({m.key, std::move(names).value()});
    }
  }

  auto scheds = o.member("schedules", Kind::object, false, "an object of name -> schedule");
  if (!scheds.ok()) return scheds.error();
  if (const json::Value *s = scheds.value()) {
    for (const json::Member &m : s->members) {
      std::string sp = o.at("schedules." + shown_name(m.key));
      if (!valid_target_name(m.key))
        return Error{Errc::invalid_argument,
                     sp + ": a schedule name is 1-64 characters of letters, digits, '_' and '-'"};
      auto sched = parse_schedule(m.value, sp);
      if (!sched.ok()) return sched.error();
      c.schedules.set(m.key, std::move(sched).value());
    }
  }

  auto plans = o.member("plans", Kind::object, true, "an object of name -> plan");
  if (!plans.ok()) return plans.error();
  for (const json::Member &m : plans.value()->members) {
    std::string pp = o.at("plans." + shown_name(m.key));
    if (!m.value.is(Kind::object))
      return Error{Errc::invalid_argument, pp + ": a plan is an object with \"entries\""};
    Obj po(m.value, pp);
    IVR_TRY(po.only({"entries", "description"}));
    auto entries = po.member("entries", Kind::array, true, "an array of entries");
    if (!entries.ok()) return entries.error();
    PlanConfig plan;
    plan.name = m.key;
    for (size_t i = 0; i < entries.value()->items.size(); ++i) {
      auto e = parse_entry(entries.value()->items[i], po.at("entries[" + std::to_string(i) + "]"));
      if (!e.ok()) return e.error();
      plan.entries.push_back(std::move(e).value());
    }
    c.plans.push_back(std::move(plan));
  }

  if (Status s = validate_routing_config(c, path); !s) return s.error();

  // Availability connectors, each feeding a known target.
  if (const json::Value *cv = o.find("connectors")) {
    auto connectors = parse_availability_connectors(*cv, o.at("connectors"));
    if (!connectors.ok()) return connectors.error();
    for (const ConnectorConfig &k : connectors.value()) {
      const bool known = std::any_of(c.targets.begin(), c.targets.end(),
                                     [&](const TargetConfig &t) { return t.name == k.target; });
      if (!known)
        return Error{Errc::invalid_argument, o.at("connectors." + k.name + ".target") + ": '" +
                                                 shown_name(k.target) + "' is not a target"};
    }
    c.connectors = std::move(connectors).value();
  }
  return c;
}

}  // namespace ivr::routing
