#include "rules/schedule.h"

#include <date/tz.h>

#include <algorithm>
#include <exception>

namespace ivr::rules {

namespace {

constexpr int64_t kDay = 86400;

Error bad(std::string message) {
  return Error{Errc::invalid_argument, std::move(message)};
}

bool digits(std::string_view s, size_t pos, size_t n, int *out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "HH:MM" → minutes; max_hour 24 allows "24:00" only.
std::optional<int32_t> parse_time(std::string_view s, bool allow_24) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || !digits(s, 0, 2, &h) || !digits(s, 3, 2, &m))
    return std::nullopt;
  if (m > 59) return std::nullopt;
  if (h > 23 && !(allow_24 && h == 24 && m == 0)) return std::nullopt;
  return h * 60 + m;
}

// "YYYY-MM-DD" → days since the epoch.
std::optional<int32_t> parse_date(std::string_view s) {
  int y = 0, mo = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 0, 4, &y) ||
      !digits(s, 5, 2, &mo) || !digits(s, 8, 2, &d))
    return std::nullopt;
  date::year_month_day ymd{date::year{y}, date::month(static_cast<unsigned>(mo)),
                           date::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  return static_cast<int32_t>(date::sys_days{ymd}.time_since_epoch().count());
}

// "MM-DD" (any year: February 29 is accepted and applies in leap years).
bool parse_month_day(std::string_view s, uint8_t *month, uint8_t *mday) {
  int mo = 0, d = 0;
  if (s.size() != 5 || s[2] != '-' || !digits(s, 0, 2, &mo) || !digits(s, 3, 2, &d)) return false;
  date::year_month_day ymd{date::year{2000}, date::month(static_cast<unsigned>(mo)),
                           date::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return false;
  *month = static_cast<uint8_t>(mo);
  *mday = static_cast<uint8_t>(d);
  return true;
}

// "YYYY-MM-DDTHH:MM" → local seconds since the local epoch.
std::optional<int64_t> parse_local_datetime(std::string_view s) {
  if (s.size() != 16 || s[10] != 'T') return std::nullopt;
  auto d = parse_date(s.substr(0, 10));
  auto t = parse_time(s.substr(11), false);
  if (!d || !t) return std::nullopt;
  return int64_t{*d} * kDay + int64_t{*t} * 60;
}

std::string hhmm(int32_t minutes) {
  char buf[8];
  buf[0] = static_cast<char>('0' + minutes / 600);
  buf[1] = static_cast<char>('0' + minutes / 60 % 10);
  buf[2] = ':';
  buf[3] = static_cast<char>('0' + minutes % 60 / 10);
  buf[4] = static_cast<char>('0' + minutes % 10);
  return std::string(buf, 5);
}

Result<std::vector<Schedule::Interval>> parse_hours(const std::vector<HoursSpec> &hours,
                                                    const std::string &path) {
  std::vector<Schedule::Interval> out;
  for (size_t i = 0; i < hours.size(); ++i) {
    std::string where = path + "[" + std::to_string(i) + "]: ";
    auto open = parse_time(hours[i].open, false);
    if (!open)
      return bad(where + "bad open time '" + hours[i].open + "' (want HH:MM, 00:00-23:59)");
    auto close = parse_time(hours[i].close, true);
    if (!close)
      return bad(where + "bad close time '" + hours[i].close + "' (want HH:MM, 00:00-24:00)");
    if (*close == *open)
      return bad(where + "close " + hhmm(*close) + " is not after open " + hhmm(*open));
    int32_t c = *close < *open ? *close + 1440 : *close;  // before the open: the next day
    out.push_back({*open, c});
  }
  return out;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

Result<Schedule> Schedule::create(const ScheduleSpec &spec) {
  Schedule s;
  if (spec.time_zone.empty()) return bad("time_zone: missing");
  try {
    s.zone_ = date::locate_zone(spec.time_zone);
    // Load the zone's transitions now, so that is_open() never does.
    (void)s.zone_->get_info(std::chrono::system_clock::now());
  } catch (const std::exception &) {
    return bad("time_zone: unknown zone '" + spec.time_zone + "'");
  }
  s.zone_name_ = spec.time_zone;

  for (size_t d = 0; d < 7; ++d) {
    auto hours = parse_hours(spec.weekly[d], "weekly." + std::string(kWeekdayNames[d]));
    if (!hours.ok()) return hours.error();
    s.weekly_[d] = std::move(hours.value());
  }

  std::vector<Holiday> fixed, yearly;
  for (size_t i = 0; i < spec.holidays.size(); ++i) {
    const HolidaySpec &h = spec.holidays[i];
    std::string path = "holidays[" + std::to_string(i) + "]";
    Holiday out;
    if (auto day = parse_date(h.date)) {
      out.day = *day;
    } else if (!parse_month_day(h.date, &out.month, &out.mday)) {
      return bad(path + ": bad date '" + h.date + "' (want YYYY-MM-DD or MM-DD)");
    }
    bool dup = false;
    for (const Holiday &o : out.month ? yearly : fixed)
      dup = dup || (o.day == out.day && o.month == out.month && o.mday == out.mday);
    if (dup) return bad(path + ": duplicate date '" + h.date + "'");
    if (h.hours) {
      auto hours = parse_hours(*h.hours, path + ".hours");
      if (!hours.ok()) return hours.error();
      out.hours = std::move(hours.value());
      out.closed = false;
    }
    (out.month ? yearly : fixed).push_back(std::move(out));
  }
  std::sort(fixed.begin(), fixed.end(),
            [](const Holiday &a, const Holiday &b) { return a.day < b.day; });
  s.holidays_ = std::move(fixed);
  for (Holiday &h : yearly) s.holidays_.push_back(std::move(h));

  for (size_t i = 0; i < spec.overrides.size(); ++i) {
    const OverrideSpec &o = spec.overrides[i];
    std::string path = "overrides[" + std::to_string(i) + "]: ";
    auto from = parse_local_datetime(o.from);
    if (!from) return bad(path + "bad from '" + o.from + "' (want YYYY-MM-DDTHH:MM)");
    auto to = parse_local_datetime(o.to);
    if (!to) return bad(path + "bad to '" + o.to + "' (want YYYY-MM-DDTHH:MM)");
    if (*to <= *from) return bad(path + "to " + o.to + " is not after from " + o.from);
    s.overrides_.push_back({s.local_to_sys(*from), s.local_to_sys(*to), o.open});
  }
  return s;
}

// A local wall-clock time to an instant: in a spring-forward gap, the first instant after
// the gap (the transition); in a fall-back overlap, the first occurrence.
int64_t Schedule::local_to_sys(int64_t local_seconds) const {
  date::local_seconds ls{std::chrono::seconds{local_seconds}};
  date::local_info li = zone_->get_info(ls);
  switch (li.result) {
    case date::local_info::nonexistent:
      return li.second.begin.time_since_epoch().count();
    case date::local_info::ambiguous:
    case date::local_info::unique:
    default:
      return local_seconds - li.first.offset.count();
  }
}

// The hours of a local day (days since the epoch): a holiday's, else the weekday's.
const std::vector<Schedule::Interval> *Schedule::day_hours(int32_t day, bool *holiday) const {
  date::sys_days sd{date::days{day}};
  date::year_month_day ymd{sd};
  for (const Holiday &h : holidays_) {
    bool match = h.month ? (static_cast<unsigned>(ymd.month()) == h.month &&
                            static_cast<unsigned>(ymd.day()) == h.mday)
                         : h.day == day;
    if (match) {
      *holiday = true;
      return &h.hours;  // empty when closed
    }
  }
  *holiday = false;
  unsigned wd = date::weekday{sd}.iso_encoding();  // 1 = Monday .. 7 = Sunday
  return &weekly_[wd - 1];
}

bool Schedule::open_at(int64_t t) const {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it)
    if (it->from <= t && t < it->to) return it->open;

  date::sys_seconds st{std::chrono::seconds{t}};
  date::sys_info si = zone_->get_info(st);
  int64_t local = t + si.offset.count();
  auto today = static_cast<int32_t>(floor_div(local, kDay));

  bool today_holiday = false;
  const auto *hours = day_hours(today, &today_holiday);
  for (const Interval &iv : *hours) {
    int64_t base = int64_t{today} * kDay;
    if (local_to_sys(base + iv.open_min * 60) <= t && t < local_to_sys(base + iv.close_min * 60))
      return true;
  }
  // Yesterday's intervals running past midnight, unless today is a holiday (a holiday
  // governs its whole local day).
  if (!today_holiday) {
    bool yesterday_holiday = false;
    const auto *prev = day_hours(today - 1, &yesterday_holiday);
    for (const Interval &iv : *prev) {
      if (iv.close_min <= 1440) continue;
      int64_t base = int64_t{today - 1} * kDay;
      if (local_to_sys(base + iv.open_min * 60) <= t && t < local_to_sys(base + iv.close_min * 60))
        return true;
    }
  }
  return false;
}

bool Schedule::is_open(time_point t) const {
  auto secs = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  return open_at(secs);
}

std::optional<Schedule::time_point> Schedule::next_change(time_point t, int max_days) const {
  int64_t now = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  bool state = open_at(now);
  std::optional<int64_t> best;
  auto consider = [&](int64_t c) {
    if (c <= now || (best && c >= *best)) return;
    if (open_at(c) != state) best = c;
  };
  for (const Override &o : overrides_) {
    consider(o.from);
    consider(o.to);
  }
  date::sys_info si = zone_->get_info(date::sys_seconds{std::chrono::seconds{now}});
  auto today = static_cast<int32_t>(floor_div(now + si.offset.count(), kDay));
  for (int32_t day = today - 1; day <= today + max_days; ++day) {
    int64_t base = int64_t{day} * kDay;
    int64_t midnight = local_to_sys(base);
    // Every candidate of this day or later is after (about) its midnight; stop once the best
    // change found is before it.
    if (best && *best < midnight - kDay) break;
    consider(midnight);
    bool holiday = false;
    for (const Interval &iv : *day_hours(day, &holiday)) {
      consider(local_to_sys(base + iv.open_min * 60));
      consider(local_to_sys(base + iv.close_min * 60));
    }
  }
  if (!best) return std::nullopt;
  return time_point{std::chrono::seconds{*best}};
}

Status ScheduleRegistry::add(std::string name, Schedule schedule) {
  if (name.empty()) return Status(Errc::invalid_argument, "schedule name: empty");
  if (schedules_.count(name)) return Status(Errc::busy, "schedule '" + name + "' already exists");
  schedules_.emplace(std::move(name), std::move(schedule));
  return Status::success();
}

void ScheduleRegistry::set(std::string name, Schedule schedule) {
  schedules_.insert_or_assign(std::move(name), std::move(schedule));
}

const Schedule *ScheduleRegistry::find(std::string_view name) const {
  auto it = schedules_.find(name);
  return it == schedules_.end() ? nullptr : &it->second;
}

}  // namespace ivr::rules
