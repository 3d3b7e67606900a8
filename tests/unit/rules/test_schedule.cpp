// Schedules: weekly hours, holidays and overrides in IANA zones, across DST changes.
#include <date/date.h>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "rules/schedule.h"

using ivr::rules::HolidaySpec;
using ivr::rules::HoursSpec;
using ivr::rules::OverrideSpec;
using ivr::rules::Schedule;
using ivr::rules::ScheduleRegistry;
using ivr::rules::ScheduleSpec;
using TP = std::chrono::system_clock::time_point;

namespace {

enum Wd { mon, tue, wed, thu, fri, sat, sun };

// An instant given in UTC.
TP utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return date::sys_days{date::year{y} / date::month{mo} / date::day{d}} + std::chrono::hours{h} +
         std::chrono::minutes{mi} + std::chrono::seconds{s};
}

ScheduleSpec weekdays(std::string zone, std::string open, std::string close) {
  ScheduleSpec spec;
  spec.time_zone = std::move(zone);
  for (int d = mon; d <= fri; ++d) spec.weekly[d] = {{open, close}};
  return spec;
}

Schedule make(const ScheduleSpec &spec) {
  auto s = Schedule::create(spec);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s.value());
}

std::string error_of(const ScheduleSpec &spec) {
  auto s = Schedule::create(spec);
  REQUIRE_MESSAGE(!s.ok(), "created unexpectedly");
  CHECK(s.error().code == ivr::Errc::invalid_argument);
  return s.error().message;
}

}  // namespace

TEST_CASE("weekly hours in America/New_York across the spring-forward change (Mar 8 2026)") {
  Schedule s = make(weekdays("America/New_York", "09:00", "17:30"));
  // Fri Mar 6, EST (UTC-5).
  CHECK_FALSE(s.is_open(utc(2026, 3, 6, 13, 59, 59)));
  CHECK(s.is_open(utc(2026, 3, 6, 14, 0)));
  CHECK(s.is_open(utc(2026, 3, 6, 22, 29, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 3, 6, 22, 30)));
  CHECK_FALSE(s.is_open(utc(2026, 3, 7, 15, 0)));  // Saturday
  // Mon Mar 9, EDT (UTC-4).
  CHECK_FALSE(s.is_open(utc(2026, 3, 9, 12, 59, 59)));
  CHECK(s.is_open(utc(2026, 3, 9, 13, 0)));
  CHECK(s.is_open(utc(2026, 3, 9, 21, 29, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 3, 9, 21, 30)));

  SUBCASE("hours spanning the transition are 30 minutes long") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sun] = {{"01:30", "03:00"}};  // 01:30 EST = 06:30Z, 03:00 EDT = 07:00Z
    Schedule t = make(spec);
    CHECK_FALSE(t.is_open(utc(2026, 3, 8, 6, 29, 59)));
    CHECK(t.is_open(utc(2026, 3, 8, 6, 30)));
    CHECK(t.is_open(utc(2026, 3, 8, 6, 59, 59)));   // 01:59:59 EST, just before the change
    CHECK_FALSE(t.is_open(utc(2026, 3, 8, 7, 0)));  // 03:00 EDT, just after
  }
  SUBCASE("an open bound in the gap is the first instant after it") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sun] = {{"02:30", "04:00"}};
    Schedule t = make(spec);
    CHECK_FALSE(t.is_open(utc(2026, 3, 8, 6, 59, 59)));
    CHECK(t.is_open(utc(2026, 3, 8, 7, 0)));  // 03:00 EDT
    CHECK(t.is_open(utc(2026, 3, 8, 7, 59, 59)));
    CHECK_FALSE(t.is_open(utc(2026, 3, 8, 8, 0)));  // 04:00 EDT
  }
}

TEST_CASE("weekly hours in America/New_York across the fall-back change (Nov 1 2026)") {
  Schedule s = make(weekdays("America/New_York", "09:00", "17:30"));
  CHECK(s.is_open(utc(2026, 10, 30, 13, 0)));  // Fri 09:00 EDT
  CHECK_FALSE(s.is_open(utc(2026, 10, 30, 12, 59, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 11, 2, 13, 59, 59)));  // Mon 08:59:59 EST
  CHECK(s.is_open(utc(2026, 11, 2, 14, 0)));

  SUBCASE("a 01:30 open bound is the first 01:30 (EDT)") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sun] = {{"01:30", "03:00"}};  // 01:30 EDT = 05:30Z, 03:00 EST = 08:00Z
    Schedule t = make(spec);
    CHECK_FALSE(t.is_open(utc(2026, 11, 1, 5, 29, 59)));
    CHECK(t.is_open(utc(2026, 11, 1, 5, 30)));
    CHECK(t.is_open(utc(2026, 11, 1, 5, 59, 59)));  // 01:59:59 EDT, just before
    CHECK(t.is_open(utc(2026, 11, 1, 6, 0)));       // 01:00 EST, just after
    CHECK(t.is_open(utc(2026, 11, 1, 6, 30)));      // the second 01:30
    CHECK(t.is_open(utc(2026, 11, 1, 7, 59, 59)));
    CHECK_FALSE(t.is_open(utc(2026, 11, 1, 8, 0)));
  }
  SUBCASE("a 01:30 close bound is the first 01:30: closed through the repeated hour") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sun] = {{"00:00", "01:30"}};
    Schedule t = make(spec);
    CHECK(t.is_open(utc(2026, 11, 1, 4, 0)));  // 00:00 EDT
    CHECK(t.is_open(utc(2026, 11, 1, 5, 29, 59)));
    CHECK_FALSE(t.is_open(utc(2026, 11, 1, 5, 30)));
    CHECK_FALSE(t.is_open(utc(2026, 11, 1, 6, 15)));  // 01:15 EST (second pass)
  }
}

TEST_CASE("weekly hours in Europe/Berlin across both changes of 2026") {
  Schedule s = make(weekdays("Europe/Berlin", "09:00", "17:00"));
  CHECK(s.is_open(utc(2026, 3, 27, 8, 0)));  // Fri 09:00 CET
  CHECK_FALSE(s.is_open(utc(2026, 3, 27, 7, 59, 59)));
  CHECK(s.is_open(utc(2026, 3, 30, 7, 0)));  // Mon 09:00 CEST
  CHECK_FALSE(s.is_open(utc(2026, 3, 30, 6, 59, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 3, 30, 15, 0)));  // Mon 17:00 CEST
  CHECK(s.is_open(utc(2026, 10, 23, 7, 0)));        // Fri 09:00 CEST
  CHECK(s.is_open(utc(2026, 10, 26, 8, 0)));        // Mon 09:00 CET
  CHECK_FALSE(s.is_open(utc(2026, 10, 26, 7, 59, 59)));
  CHECK(s.is_open(utc(2026, 10, 26, 15, 59, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 10, 26, 16, 0)));

  SUBCASE("spring forward Mar 29: 01:30-03:30 lasts one hour") {
    ScheduleSpec spec;
    spec.time_zone = "Europe/Berlin";
    spec.weekly[sun] = {{"01:30", "03:30"}};  // 00:30Z .. 01:30Z
    Schedule t = make(spec);
    CHECK_FALSE(t.is_open(utc(2026, 3, 29, 0, 29, 59)));
    CHECK(t.is_open(utc(2026, 3, 29, 0, 30)));
    CHECK(t.is_open(utc(2026, 3, 29, 0, 59, 59)));  // 01:59:59 CET
    CHECK(t.is_open(utc(2026, 3, 29, 1, 0)));       // 03:00 CEST
    CHECK_FALSE(t.is_open(utc(2026, 3, 29, 1, 30)));
  }
  SUBCASE("fall back Oct 25: 02:30 opens at its first occurrence") {
    ScheduleSpec spec;
    spec.time_zone = "Europe/Berlin";
    spec.weekly[sun] = {{"02:30", "04:00"}};  // 02:30 CEST = 00:30Z, 04:00 CET = 03:00Z
    Schedule t = make(spec);
    CHECK_FALSE(t.is_open(utc(2026, 10, 25, 0, 29, 59)));
    CHECK(t.is_open(utc(2026, 10, 25, 0, 30)));
    CHECK(t.is_open(utc(2026, 10, 25, 0, 59, 59)));  // 02:59:59 CEST
    CHECK(t.is_open(utc(2026, 10, 25, 1, 0)));       // 02:00 CET
    CHECK(t.is_open(utc(2026, 10, 25, 2, 59, 59)));
    CHECK_FALSE(t.is_open(utc(2026, 10, 25, 3, 0)));
  }
}

TEST_CASE("intervals crossing midnight") {
  SUBCASE("in UTC") {
    ScheduleSpec spec;
    spec.time_zone = "UTC";
    spec.weekly[fri] = {{"22:00", "02:00"}};
    Schedule s = make(spec);
    CHECK_FALSE(s.is_open(utc(2026, 6, 5, 21, 59, 59)));  // Fri
    CHECK(s.is_open(utc(2026, 6, 5, 22, 0)));
    CHECK(s.is_open(utc(2026, 6, 6, 1, 59, 59)));  // Sat
    CHECK_FALSE(s.is_open(utc(2026, 6, 6, 2, 0)));
    CHECK_FALSE(s.is_open(utc(2026, 6, 4, 23, 0)));  // Thu: no hours
    CHECK_FALSE(s.is_open(utc(2026, 6, 6, 23, 0)));  // Sat night
  }
  SUBCASE("into the spring-forward gap (New York, Sat Mar 7 -> Sun Mar 8)") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sat] = {{"22:00", "02:00"}};  // 02:00 does not exist: closes at 03:00 EDT
    Schedule s = make(spec);
    CHECK_FALSE(s.is_open(utc(2026, 3, 8, 2, 59, 59)));
    CHECK(s.is_open(utc(2026, 3, 8, 3, 0)));  // Sat 22:00 EST
    CHECK(s.is_open(utc(2026, 3, 8, 6, 59, 59)));
    CHECK_FALSE(s.is_open(utc(2026, 3, 8, 7, 0)));
  }
  SUBCASE("into the fall-back overlap (Berlin, Sat Oct 24 -> Sun Oct 25)") {
    ScheduleSpec spec;
    spec.time_zone = "Europe/Berlin";
    spec.weekly[sat] = {{"22:00", "02:30"}};  // 02:30 first occurs at 02:30 CEST = 00:30Z
    Schedule s = make(spec);
    CHECK_FALSE(s.is_open(utc(2026, 10, 24, 19, 59, 59)));
    CHECK(s.is_open(utc(2026, 10, 24, 20, 0)));
    CHECK(s.is_open(utc(2026, 10, 25, 0, 29, 59)));
    CHECK_FALSE(s.is_open(utc(2026, 10, 25, 0, 30)));
    CHECK_FALSE(s.is_open(utc(2026, 10, 25, 1, 30)));  // 02:30 CET, the second pass
    // 03:00 exists once (03:00 CEST is already 02:00 CET): 22:00-03:00 runs to 02:00Z.
    spec.weekly[sat] = {{"22:00", "03:00"}};
    Schedule t = make(spec);
    CHECK(t.is_open(utc(2026, 10, 25, 1, 59, 59)));
    CHECK_FALSE(t.is_open(utc(2026, 10, 25, 2, 0)));
  }
  SUBCASE("24:00 closes at midnight") {
    ScheduleSpec spec;
    spec.time_zone = "UTC";
    spec.weekly[mon] = {{"20:00", "24:00"}};
    Schedule s = make(spec);
    CHECK(s.is_open(utc(2026, 6, 1, 23, 59, 59)));
    CHECK_FALSE(s.is_open(utc(2026, 6, 2, 0, 0)));
  }
}

TEST_CASE("holidays: fixed, yearly, special hours") {
  ScheduleSpec spec = weekdays("UTC", "09:00", "17:00");
  spec.holidays = {
      {"2026-12-24", std::nullopt},                                // Thu
      {"12-25", std::nullopt},                                     // every year
      {"12-31", std::vector<HoursSpec>{{"09:00", "12:00"}}},       // short day
      {"2026-12-26", std::vector<HoursSpec>{{"10:00", "14:00"}}},  // a Saturday
      {"2027-12-25", std::vector<HoursSpec>{{"10:00", "11:00"}}},  // fixed beats yearly
  };
  Schedule s = make(spec);
  CHECK(s.is_open(utc(2026, 12, 23, 12, 0)));
  CHECK_FALSE(s.is_open(utc(2026, 12, 24, 12, 0)));
  CHECK(s.is_open(utc(2025, 12, 24, 12, 0)));  // the fixed date is 2026 only
  CHECK_FALSE(s.is_open(utc(2026, 12, 25, 12, 0)));
  CHECK_FALSE(s.is_open(utc(2025, 12, 25, 12, 0)));  // Thu, yearly holiday
  CHECK(s.is_open(utc(2026, 12, 31, 11, 59, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 12, 31, 12, 0)));
  CHECK_FALSE(s.is_open(utc(2026, 12, 31, 15, 0)));
  CHECK(s.is_open(utc(2026, 12, 26, 11, 0)));  // Saturday with holiday hours
  CHECK_FALSE(s.is_open(utc(2026, 12, 26, 14, 0)));
  CHECK(s.is_open(utc(2027, 12, 25, 10, 30)));
  CHECK_FALSE(s.is_open(utc(2027, 12, 25, 11, 0)));

  SUBCASE("a holiday cuts yesterday's overnight hours at midnight") {
    ScheduleSpec n;
    n.time_zone = "UTC";
    n.weekly[wed] = {{"22:00", "02:00"}};
    n.holidays = {{"2026-12-24", std::nullopt}};  // Thursday
    Schedule h = make(n);
    CHECK(h.is_open(utc(2026, 12, 23, 23, 0)));
    CHECK_FALSE(h.is_open(utc(2026, 12, 24, 1, 0)));
    CHECK(h.is_open(utc(2026, 12, 17, 1, 0)));  // a normal Thursday morning
  }
}

TEST_CASE("overrides take precedence both ways") {
  ScheduleSpec spec = weekdays("UTC", "09:00", "17:00");
  spec.holidays = {{"2026-06-08", std::nullopt}};
  spec.overrides = {
      {"2026-06-01T12:00", "2026-06-01T13:00", false},  // Mon lunch closed
      {"2026-06-06T10:00", "2026-06-06T14:00", true},   // Sat open
      {"2026-06-08T09:00", "2026-06-08T10:00", true},   // open on the holiday
  };
  Schedule s = make(spec);
  CHECK(s.is_open(utc(2026, 6, 1, 11, 59, 59)));
  CHECK_FALSE(s.is_open(utc(2026, 6, 1, 12, 0)));
  CHECK_FALSE(s.is_open(utc(2026, 6, 1, 12, 59, 59)));
  CHECK(s.is_open(utc(2026, 6, 1, 13, 0)));
  CHECK_FALSE(s.is_open(utc(2026, 6, 6, 9, 59, 59)));
  CHECK(s.is_open(utc(2026, 6, 6, 10, 0)));
  CHECK_FALSE(s.is_open(utc(2026, 6, 6, 14, 0)));
  CHECK(s.is_open(utc(2026, 6, 8, 9, 30)));
  CHECK_FALSE(s.is_open(utc(2026, 6, 8, 10, 30)));

  SUBCASE("a later override wins where they overlap; local bounds in a DST gap") {
    ScheduleSpec n;
    n.time_zone = "America/New_York";
    n.overrides = {
        {"2026-03-08T01:00", "2026-03-08T02:30", true},  // to is in the gap: 07:00Z
        {"2026-03-08T01:30", "2026-03-08T01:45", false},
    };
    Schedule h = make(n);
    CHECK_FALSE(h.is_open(utc(2026, 3, 8, 5, 59, 59)));
    CHECK(h.is_open(utc(2026, 3, 8, 6, 0)));
    CHECK_FALSE(h.is_open(utc(2026, 3, 8, 6, 30)));
    CHECK(h.is_open(utc(2026, 3, 8, 6, 45)));
    CHECK(h.is_open(utc(2026, 3, 8, 6, 59, 59)));
    CHECK_FALSE(h.is_open(utc(2026, 3, 8, 7, 0)));
  }
}

TEST_CASE("UTC and a half-hour zone (Asia/Kolkata)") {
  Schedule u = make(weekdays("UTC", "09:00", "18:00"));
  CHECK_FALSE(u.is_open(utc(2026, 6, 1, 8, 59, 59)));
  CHECK(u.is_open(utc(2026, 6, 1, 9, 0)));
  CHECK_FALSE(u.is_open(utc(2026, 6, 1, 18, 0)));

  Schedule k = make(weekdays("Asia/Kolkata", "09:00", "18:00"));  // UTC+05:30
  CHECK_FALSE(k.is_open(utc(2026, 6, 1, 3, 29, 59)));
  CHECK(k.is_open(utc(2026, 6, 1, 3, 30)));
  CHECK(k.is_open(utc(2026, 6, 1, 12, 29, 59)));
  CHECK_FALSE(k.is_open(utc(2026, 6, 1, 12, 30)));
  CHECK_FALSE(k.is_open(utc(2026, 5, 31, 3, 30)));  // Sunday
  // Sun 20:00 UTC is Mon 01:30 local: the local date decides the weekday.
  ScheduleSpec night;
  night.time_zone = "Asia/Kolkata";
  night.weekly[mon] = {{"01:00", "02:00"}};
  Schedule n = make(night);
  CHECK(n.is_open(utc(2026, 5, 31, 20, 0)));
  CHECK_FALSE(n.is_open(utc(2026, 6, 1, 20, 0)));
}

TEST_CASE("validation errors name the field") {
  ScheduleSpec ok = weekdays("Europe/Paris", "09:00", "17:00");
  CHECK(Schedule::create(ok).ok());

  auto with = [&](auto edit) {
    ScheduleSpec s = ok;
    edit(s);
    return error_of(s);
  };
  CHECK(with([](ScheduleSpec &s) { s.time_zone = "Europe/Pariss"; }) ==
        "time_zone: unknown zone 'Europe/Pariss'");
  CHECK(with([](ScheduleSpec &s) { s.time_zone = ""; }) == "time_zone: missing");
  CHECK(with([](ScheduleSpec &s) {
          s.weekly[mon].push_back({"17:00", "17:00"});
        }) == "weekly.mon[1]: close 17:00 is not after open 17:00");
  CHECK(with([](ScheduleSpec &s) {
          s.weekly[sun] = {{"9:00", "17:00"}};
        }) == "weekly.sun[0]: bad open time '9:00' (want HH:MM, 00:00-23:59)");
  CHECK(with([](ScheduleSpec &s) {
          s.weekly[wed] = {{"24:00", "17:00"}};
        }) == "weekly.wed[0]: bad open time '24:00' (want HH:MM, 00:00-23:59)");
  CHECK(with([](ScheduleSpec &s) {
          s.weekly[tue] = {{"09:00", "17:60"}};
        }) == "weekly.tue[0]: bad close time '17:60' (want HH:MM, 00:00-24:00)");
  CHECK(with([](ScheduleSpec &s) {
          s.weekly[fri] = {{"09:00", "24:01"}};
        }) == "weekly.fri[0]: bad close time '24:01' (want HH:MM, 00:00-24:00)");
  CHECK(with([](ScheduleSpec &s) {
          s.holidays = {{"01-01", {}}, {"2026-12-25", {}}, {"2026-02-30", {}}};
        }) == "holidays[2]: bad date '2026-02-30' (want YYYY-MM-DD or MM-DD)");
  CHECK(with([](ScheduleSpec &s) {
          s.holidays = {{"13-01", {}}};
        }) == "holidays[0]: bad date '13-01' (want YYYY-MM-DD or MM-DD)");
  CHECK(with([](ScheduleSpec &s) {
          s.holidays = {{"2026/12/25", {}}};
        }) == "holidays[0]: bad date '2026/12/25' (want YYYY-MM-DD or MM-DD)");
  CHECK(with([](ScheduleSpec &s) {
          s.holidays = {{"12-25", {}}, {"12-25", {}}};
        }) == "holidays[1]: duplicate date '12-25'");
  CHECK(with([](ScheduleSpec &s) {
          s.holidays = {{"12-24", std::vector<HoursSpec>{{"09:00", "12:00"}, {"08:00", "x"}}}};
        }) == "holidays[0].hours[1]: bad close time 'x' (want HH:MM, 00:00-24:00)");
  CHECK(with([](ScheduleSpec &s) {
          s.overrides = {{"2026-06-01 12:00", "2026-06-01T13:00"}};
        }) == "overrides[0]: bad from '2026-06-01 12:00' (want YYYY-MM-DDTHH:MM)");
  CHECK(with([](ScheduleSpec &s) {
          s.overrides = {{"2026-06-01T12:00", "2026-06-31T13:00"}};
        }) == "overrides[0]: bad to '2026-06-31T13:00' (want YYYY-MM-DDTHH:MM)");
  CHECK(with([](ScheduleSpec &s) {
          s.overrides = {{"2026-06-01T12:00", "2026-06-01T12:00"}};
        }) == "overrides[0]: to 2026-06-01T12:00 is not after from 2026-06-01T12:00");
  ScheduleSpec leap = ok;
  leap.holidays = {{"02-29", {}}, {"2028-02-29", {}}};
  CHECK(Schedule::create(leap).ok());
}

TEST_CASE("next_change across a weekend and across DST") {
  Schedule b = make(weekdays("Europe/Berlin", "09:00", "17:00"));
  // Fri Mar 27 18:00 CET -> Mon Mar 30 09:00 CEST (07:00Z), the weekend of the change.
  auto n = b.next_change(utc(2026, 3, 27, 17, 0));
  REQUIRE(n);
  CHECK(*n == utc(2026, 3, 30, 7, 0));
  n = b.next_change(utc(2026, 3, 27, 11, 0));  // open: closes at 17:00 CET
  REQUIRE(n);
  CHECK(*n == utc(2026, 3, 27, 16, 0));
  n = b.next_change(utc(2026, 3, 27, 8, 0));  // exactly at the open: the close
  REQUIRE(n);
  CHECK(*n == utc(2026, 3, 27, 16, 0));

  Schedule ny = make(weekdays("America/New_York", "09:00", "17:30"));
  // Fri Oct 30 17:30 EDT -> Mon Nov 2 09:00 EST (14:00Z).
  n = ny.next_change(utc(2026, 10, 30, 21, 30));
  REQUIRE(n);
  CHECK(*n == utc(2026, 11, 2, 14, 0));

  SUBCASE("overnight hours, overrides and holidays are change points") {
    ScheduleSpec spec;
    spec.time_zone = "America/New_York";
    spec.weekly[sat] = {{"22:00", "02:00"}};
    Schedule s = make(spec);
    n = s.next_change(utc(2026, 3, 8, 4, 0));  // open since Sat 22:00 EST
    REQUIRE(n);
    CHECK(*n == utc(2026, 3, 8, 7, 0));  // 02:00 in the gap: 03:00 EDT

    ScheduleSpec o = weekdays("UTC", "09:00", "17:00");
    o.overrides = {{"2026-06-01T12:00", "2026-06-01T13:00", false}};
    o.holidays = {{"2026-06-02", std::nullopt}};
    Schedule t = make(o);
    n = t.next_change(utc(2026, 6, 1, 10, 0));
    REQUIRE(n);
    CHECK(*n == utc(2026, 6, 1, 12, 0));
    n = t.next_change(*n);
    REQUIRE(n);
    CHECK(*n == utc(2026, 6, 1, 13, 0));
    n = t.next_change(utc(2026, 6, 1, 18, 0));  // Tue is a holiday
    REQUIRE(n);
    CHECK(*n == utc(2026, 6, 3, 9, 0));
  }
  SUBCASE("bounded search") {
    ScheduleSpec spec;
    spec.time_zone = "UTC";
    CHECK_FALSE(make(spec).next_change(utc(2026, 1, 1, 0, 0)));  // always closed
    for (auto &day : spec.weekly) day = {{"00:00", "24:00"}};
    CHECK_FALSE(make(spec).next_change(utc(2026, 1, 1, 0, 0)));  // always open

    ScheduleSpec yearly;
    yearly.time_zone = "UTC";
    yearly.holidays = {{"12-25", std::vector<HoursSpec>{{"10:00", "11:00"}}}};
    Schedule y = make(yearly);
    n = y.next_change(utc(2026, 1, 1, 0, 0));
    REQUIRE(n);
    CHECK(*n == utc(2026, 12, 25, 10, 0));
    CHECK_FALSE(y.next_change(utc(2026, 1, 1, 0, 0), 30));
  }
}

TEST_CASE("the registry maps names to schedules") {
  ScheduleRegistry reg;
  CHECK(reg.add("office", make(weekdays("UTC", "09:00", "17:00"))).ok());
  auto dup = reg.add("office", make(weekdays("UTC", "10:00", "11:00")));
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ivr::Errc::busy);
  CHECK(dup.error().message == "schedule 'office' already exists");
  CHECK_FALSE(reg.add("", make(weekdays("UTC", "09:00", "17:00"))).ok());
  CHECK(reg.find("nope") == nullptr);
  const Schedule *s = reg.find("office");
  REQUIRE(s != nullptr);
  CHECK(s->is_open(utc(2026, 6, 1, 9, 30)));
  reg.set("office", make(weekdays("UTC", "10:00", "11:00")));
  CHECK_FALSE(reg.find("office")->is_open(utc(2026, 6, 1, 9, 30)));
  CHECK(reg.size() == 1);
}

// Allocation check. test_alloc.cpp already replaces global operator new in this binary (with a
// counter private to that file); its operator new calls malloc, so here every heap allocation
// is counted through the sanitizer runtime's malloc hook. Without a sanitizer runtime (a
// non-IVR_SANITIZE build) the check cannot observe malloc and is skipped.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *,
                                                                             size_t),
                                                         void (*free_hook)(const volatile void *))
    __attribute__((weak));

namespace {
std::atomic<long> g_mallocs{0};
void count_malloc(const volatile void *, size_t) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void *) {}
bool malloc_hook_installed() {
  static bool installed = __sanitizer_install_malloc_and_free_hooks != nullptr &&
                          __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free) != 0;
  return installed;
}
}  // namespace

TEST_CASE("is_open allocates nothing") {
  if (!malloc_hook_installed()) {
    MESSAGE("no sanitizer malloc hook in this build: allocation check skipped");
    return;
  }
  long before = g_mallocs.load();
  auto *p = new std::string(100, 'x');  // the hook sees operator new
  delete p;
  REQUIRE(g_mallocs.load() - before >= 1);

  ScheduleSpec spec = weekdays("America/New_York", "09:00", "17:30");
  spec.weekly[sat] = {{"22:00", "02:00"}};
  spec.holidays = {{"2026-12-24", std::nullopt},
                   {"12-31", std::vector<HoursSpec>{{"09:00", "12:00"}}}};
  spec.overrides = {{"2026-03-08T01:00", "2026-03-08T02:30", true}};
  Schedule s = make(spec);
  TP probes[] = {utc(2026, 3, 8, 6, 59, 59), utc(2026, 3, 8, 7, 0),    utc(2026, 11, 1, 5, 30),
                 utc(2026, 11, 1, 6, 30),    utc(2026, 12, 24, 15, 0), utc(2026, 12, 31, 16, 0),
                 utc(2030, 7, 4, 15, 0),     utc(1999, 1, 1, 0, 0)};
  int opened = 0;
  before = g_mallocs.load();
  for (int i = 0; i < 100; ++i)
    for (TP t : probes) opened += s.is_open(t) ? 1 : 0;
  long after = g_mallocs.load();
  CHECK(after - before == 0);
  CHECK(opened > 0);
}
