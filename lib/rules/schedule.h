// Schedules: weekly opening hours, holidays and one-off overrides in an IANA time zone.
// Semantics (DST, precedence, midnight crossing): docs/rules.md, section "Schedules".
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace date {
class time_zone;
}

namespace ivr::rules {

// One local wall-clock interval "HH:MM" .. "HH:MM". open is 00:00..23:59, close is
// 00:00..24:00. A close earlier than the open means the next day ("22:00"-"02:00").
struct HoursSpec {
  std::string open;
  std::string close;
};

// A holiday: date is "YYYY-MM-DD" (one day) or "MM-DD" (every year). Without hours the
// whole local day is closed; with hours, only those hours apply on that day.
struct HolidaySpec {
  std::string date;
  std::optional<std::vector<HoursSpec>> hours;
};

// A one-off override: local date-times "YYYY-MM-DDTHH:MM", [from, to) forced open or
// closed. Overrides take precedence over everything; a later override wins over an
// earlier one in the list where they overlap.
struct OverrideSpec {
  std::string from;
  std::string to;
  bool open = false;
};

struct ScheduleSpec {
  std::string time_zone;                         // IANA name, e.g. "Europe/Berlin"
  std::array<std::vector<HoursSpec>, 7> weekly;  // index 0 = Monday .. 6 = Sunday
  std::vector<HolidaySpec> holidays;
  std::vector<OverrideSpec> overrides;
};

// Weekday names as used in error paths ("weekly.mon[1]"), index 0 = Monday.
inline constexpr std::array<std::string_view, 7> kWeekdayNames = {"mon", "tue", "wed", "thu",
                                                                  "fri", "sat", "sun"};

class Schedule {
 public:
  using time_point = std::chrono::system_clock::time_point;

  // Validates everything; errors are Errc::invalid_argument naming the field
  // ("weekly.mon[1]: close 09:00 is not after open 09:00").
  static Result<Schedule> create(const ScheduleSpec &spec);

  // Whether the schedule is open at t. Never allocates.
  bool is_open(time_point t) const;

  // The first instant after t at which is_open() differs from is_open(t), searching at most
  // max_days local days ahead; nullopt when nothing changes in that window.
  std::optional<time_point> next_change(time_point t, int max_days = 400) const;

  const std::string &time_zone_name() const { return zone_name_; }

  // Internal representation (public for the implementation's helpers).
  struct Interval {
    int32_t open_min = 0;   // minutes after the local midnight of its day
    int32_t close_min = 0;  // > open_min; may exceed 1440 (the next day)
  };
  struct Holiday {
    int32_t day = 0;    // days since 1970-01-01 for a fixed date, else 0
    uint8_t month = 0;  // non-zero for a yearly holiday
    uint8_t mday = 0;
    bool closed = true;
    std::vector<Interval> hours;
  };
  struct Override {
    int64_t from = 0;  // seconds since the epoch (UTC)
    int64_t to = 0;
    bool open = false;
  };

 private:
  Schedule() = default;
  const std::vector<Interval> *day_hours(int32_t day, bool *holiday) const;
  int64_t local_to_sys(int64_t local_seconds) const;
  bool open_at(int64_t sys_seconds) const;

  std::string zone_name_;
  const date::time_zone *zone_ = nullptr;
  std::array<std::vector<Interval>, 7> weekly_;
  std::vector<Holiday> holidays_;  // fixed dates first (sorted by day), then yearly ones
  std::vector<Override> overrides_;
};

// Named schedules, for in_schedule("name").
class ScheduleRegistry {
 public:
  // Errc::invalid_argument for an empty name, Errc::busy when the name is taken.
  Status add(std::string name, Schedule schedule);
  // Replaces or inserts.
  void set(std::string name, Schedule schedule);
  const Schedule *find(std::string_view name) const;
  size_t size() const { return schedules_.size(); }

 private:
  std::map<std::string, Schedule, std::less<>> schedules_;
};

}  // namespace ivr::rules
