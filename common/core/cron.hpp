#pragma once
// The `backup-schedule` option: a five-field cron expression (minute hour day-of-month month
// day-of-week), always in UTC. Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`,
// and comma lists; day-of-week 0-7 (0 and 7 are Sunday). As in cron, when both day fields are
// restricted a day matches if either does. "off" (or empty) means no schedule.
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/error.hpp"

namespace walvault {

struct CronSchedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // bit 1..31
  std::bitset<13> months;         // bit 1..12
  std::bitset<7> days_of_week;    // bit 0..6, 0 = Sunday
  bool day_of_month_restricted = false;
  bool day_of_week_restricted = false;
  std::string text;               // as given, for logs and status
};

// ErrorKind::invalid naming the bad field and why.
Result<CronSchedule> parse_cron(std::string_view spec);

// The first time strictly after `after_us` (Unix microseconds, UTC) at which the schedule fires,
// on a whole minute; nullopt if it never fires within the next 5 years (e.g. "0 0 31 2 *").
std::optional<std::int64_t> next_cron_time(const CronSchedule& schedule, std::int64_t after_us);

}  // namespace walvault
