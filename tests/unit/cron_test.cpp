#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "common/core/cron.hpp"
#include "common/core/time_format.hpp"

namespace walvault {
namespace {

std::int64_t at(std::string_view text) {
  const auto parsed = parse_timestamp(text);
  EXPECT_TRUE(parsed.has_value()) << "bad test timestamp '" << text << "'";
  return parsed.value_or(0);
}

// The next firing as RFC 3339 text, "never", or the parse error, so that failures read well.
std::string next_after(std::string_view spec, std::string_view from) {
  const auto schedule = parse_cron(spec);
  if (!schedule) return "refused: " + schedule.error().message;
  const auto next = next_cron_time(*schedule, at(from));
  return next ? format_timestamp(*next) : "never";
}

struct NextCase {
  std::string_view spec;
  std::string_view from;
  std::string_view expected;
};

std::ostream& operator<<(std::ostream& out, const NextCase& c) {
  return out << "'" << c.spec << "' after " << c.from;
}

class CronNext : public ::testing::TestWithParam<NextCase> {};

TEST_P(CronNext, FiresAtTheExpectedMinute) {
  const auto& c = GetParam();
  EXPECT_EQ(next_after(c.spec, c.from), c.expected) << "'" << c.spec << "' after " << c.from;
}

// Weekdays used below: 2026-11-24 Tue, 11-27 Fri, 11-29 Sun, 11-30 Mon, 12-04 Fri, 12-07 Mon,
// 12-12 Sat, 12-13 Sun, 12-31 Thu, 2027-01-01 Fri (checked with `date -u -d ... +%a`).
INSTANTIATE_TEST_SUITE_P(
    Cron, CronNext,
    ::testing::Values(
        // Daily at 02:00, and the strictly-after rule: exactly on a firing minute, or seconds
        // or microseconds into it, moves on to the next firing.
        NextCase{"0 2 * * *", "2026-11-24T09:30:00Z", "2026-11-25T02:00:00Z"},
        NextCase{"0 2 * * *", "2026-11-24T01:59:59.999999Z", "2026-11-24T02:00:00Z"},
        NextCase{"0 2 * * *", "2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"},
        NextCase{"0 2 * * *", "2026-11-24T02:00:00.000001Z", "2026-11-25T02:00:00Z"},
        NextCase{"0 2 * * *", "2026-11-24T02:00:59Z", "2026-11-25T02:00:00Z"},
        NextCase{"* * * * *", "2026-11-24T09:30:00Z", "2026-11-24T09:31:00Z"},
        NextCase{"* * * * *", "2026-11-24T09:30:00.5Z", "2026-11-24T09:31:00Z"},
        NextCase{"* * * * *", "2026-11-24T09:30:59.999999Z", "2026-11-24T09:31:00Z"},
        NextCase{"* * * * *", "2026-12-31T23:59:30Z", "2027-01-01T00:00:00Z"},
        // Steps.
        NextCase{"*/15 * * * *", "2026-11-24T09:30:00Z", "2026-11-24T09:45:00Z"},
        NextCase{"*/15 * * * *", "2026-11-24T09:50:00Z", "2026-11-24T10:00:00Z"},
        NextCase{"*/15 * * * *", "2026-12-31T23:45:00Z", "2027-01-01T00:00:00Z"},
        NextCase{"10-40/10 * * * *", "2026-11-24T09:35:00Z", "2026-11-24T09:40:00Z"},
        NextCase{"10-40/10 * * * *", "2026-11-24T09:40:00Z", "2026-11-24T10:10:00Z"},
        NextCase{"5/20 * * * *", "2026-11-24T09:30:00Z", "2026-11-24T09:45:00Z"},  // n/step: 5,25,45
        NextCase{"5/20 * * * *", "2026-11-24T09:45:00Z", "2026-11-24T10:05:00Z"},
        NextCase{"0 */6 * * *", "2026-11-24T19:00:00Z", "2026-11-25T00:00:00Z"},
        NextCase{"0 0 */10 * *", "2026-11-21T00:00:00Z", "2026-12-01T00:00:00Z"},  // 1,11,21,31: none in Nov after 21
        NextCase{"0 0 1 */4 *", "2026-06-01T00:00:00Z", "2026-09-01T00:00:00Z"},   // Jan, May, Sep
        NextCase{"0 0 1 jan-dec/3 *", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z"},
        // Lists, mixed with ranges.
        NextCase{"0 6,18 * * *", "2026-11-24T12:00:00Z", "2026-11-24T18:00:00Z"},
        NextCase{"0 6,18 * * *", "2026-11-24T18:00:00Z", "2026-11-25T06:00:00Z"},
        NextCase{"15,45 1-2,22 * * *", "2026-11-24T02:45:00Z", "2026-11-24T22:15:00Z"},
        NextCase{"0 9-17/2 * * mon-fri", "2026-11-27T17:00:00Z", "2026-11-30T09:00:00Z"},
        NextCase{"0 9-17/2 * * mon-fri", "2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z"},
        // Month and year boundaries; months too short for the day are skipped.
        NextCase{"0 0 1 1 *", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
        NextCase{"30 23 31 12 *", "2026-12-31T23:30:00Z", "2027-12-31T23:30:00Z"},
        NextCase{"0 0 31 * *", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"},
        NextCase{"0 12 30 * *", "2027-01-30T12:00:00Z", "2027-03-30T12:00:00Z"},
        // Leap years: Feb 29 only in 2028 and 2032; 2100 is not a leap year, so from 2096 the
        // next one (2104) lies beyond the five-year search.
        NextCase{"0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
        NextCase{"0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
        NextCase{"0 0 29 2 *", "2096-03-01T00:00:00Z", "never"},
        NextCase{"0 0 29 * *", "2027-01-29T00:00:00Z", "2027-03-29T00:00:00Z"},
        NextCase{"0 0 29 * *", "2028-01-29T00:00:00Z", "2028-02-29T00:00:00Z"},
        // Never.
        NextCase{"0 0 30 2 *", "2026-01-01T00:00:00Z", "never"},
        NextCase{"0 0 31 2 *", "2026-01-01T00:00:00Z", "never"},
        NextCase{"0 0 31 4,6,9,11 *", "2026-01-01T00:00:00Z", "never"},
        // Names, case-insensitive.
        NextCase{"0 0 1 jan,JUL *", "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z"},
        NextCase{"0 0 1 Jul *", "2026-07-01T00:00:00Z", "2027-07-01T00:00:00Z"},
        NextCase{"0 12 * * SAT", "2026-11-24T00:00:00Z", "2026-11-28T12:00:00Z"},
        NextCase{"0 0 * dec sun", "2026-11-24T00:00:00Z", "2026-12-06T00:00:00Z"},
        // Sunday is 0 and 7; ranges may end in 7 or in the name sun.
        NextCase{"0 0 * * 0", "2026-11-24T00:00:00Z", "2026-11-29T00:00:00Z"},
        NextCase{"0 0 * * 7", "2026-11-24T00:00:00Z", "2026-11-29T00:00:00Z"},
        NextCase{"0 0 * * 6-7", "2026-11-24T00:00:00Z", "2026-11-28T00:00:00Z"},
        NextCase{"0 0 * * 6-7", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"},
        NextCase{"0 0 * * 6-7", "2026-11-29T00:00:00Z", "2026-12-05T00:00:00Z"},
        NextCase{"0 0 * * fri-sun", "2026-11-29T00:00:00Z", "2026-12-04T00:00:00Z"},
        NextCase{"0 0 * * 0-7", "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"},
        // Both day fields restricted: a day matches if either does (Friday, or the 13th).
        NextCase{"0 0 13 * fri", "2026-11-24T00:00:00Z", "2026-11-27T00:00:00Z"},
        NextCase{"0 0 13 * fri", "2026-11-27T00:00:00Z", "2026-12-04T00:00:00Z"},
        NextCase{"0 0 13 * fri", "2026-12-12T00:00:00Z", "2026-12-13T00:00:00Z"},
        // Only one restricted: the other is `*` and both must hold.
        NextCase{"0 0 13 * *", "2026-11-24T00:00:00Z", "2026-12-13T00:00:00Z"},
        NextCase{"0 0 * * fri", "2026-12-12T00:00:00Z", "2026-12-18T00:00:00Z"},
        NextCase{"0 0 13 * * ", "2026-11-24T00:00:00Z", "2026-12-13T00:00:00Z"},
        // Vixie cron quirk kept on purpose: a day field starting with `*` ("*/2") is not
        // restricted, so it combines with the other by AND (odd-numbered Mondays) ...
        NextCase{"0 0 */2 * mon", "2026-11-24T00:00:00Z", "2026-12-07T00:00:00Z"},
        // ... while the same days written as a range are restricted, so OR (any odd day).
        NextCase{"0 0 1-31/2 * mon", "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"},
        // Macros.
        NextCase{"@hourly", "2026-11-24T09:30:00Z", "2026-11-24T10:00:00Z"},
        NextCase{"@daily", "2026-11-24T09:30:00Z", "2026-11-25T00:00:00Z"},
        NextCase{"@midnight", "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"},
        NextCase{"@weekly", "2026-11-24T09:30:00Z", "2026-11-29T00:00:00Z"},
        NextCase{"@monthly", "2026-11-24T09:30:00Z", "2026-12-01T00:00:00Z"},
        NextCase{"@yearly", "2026-11-24T09:30:00Z", "2027-01-01T00:00:00Z"},
        NextCase{"@annually", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"},
        NextCase{"@Daily", "2026-11-24T09:30:00Z", "2026-11-25T00:00:00Z"},
        // Whitespace between and around fields.
        NextCase{"  0\t2  *  * *  ", "2026-11-24T09:30:00Z", "2026-11-25T02:00:00Z"},
        // Before the Unix epoch the minute still rounds down, not towards zero.
        NextCase{"* * * * *", "1969-12-31T23:59:30Z", "1970-01-01T00:00:00Z"},
        NextCase{"0 0 1 1 *", "1969-06-01T00:00:00Z", "1970-01-01T00:00:00Z"}));

TEST(CronParse, FillsTheFieldsAndKeepsTheText) {
  const auto schedule = parse_cron("5,10 0-2 1,15 jan-mar mon-fri");
  ASSERT_TRUE(schedule.has_value()) << schedule.error().message;
  EXPECT_EQ(schedule->minutes.count(), 2u);
  EXPECT_TRUE(schedule->minutes[5] && schedule->minutes[10]);
  EXPECT_EQ(schedule->hours.count(), 3u);
  EXPECT_TRUE(schedule->hours[0] && schedule->hours[2]);
  EXPECT_EQ(schedule->days_of_month.count(), 2u);
  EXPECT_TRUE(schedule->days_of_month[1] && schedule->days_of_month[15]);
  EXPECT_EQ(schedule->months.count(), 3u);
  EXPECT_TRUE(schedule->months[1] && schedule->months[3]);
  EXPECT_EQ(schedule->days_of_week.count(), 5u);
  EXPECT_FALSE(schedule->days_of_week[0] || schedule->days_of_week[6]);
  EXPECT_TRUE(schedule->day_of_month_restricted);
  EXPECT_TRUE(schedule->day_of_week_restricted);
  EXPECT_EQ(schedule->text, "5,10 0-2 1,15 jan-mar mon-fri");
}

TEST(CronParse, SevenIsSunday) {
  const auto schedule = parse_cron("0 0 * * 7");
  ASSERT_TRUE(schedule.has_value()) << schedule.error().message;
  EXPECT_EQ(schedule->days_of_week.count(), 1u);
  EXPECT_TRUE(schedule->days_of_week[0]);
}

TEST(CronParse, StarFieldsAreUnrestricted) {
  const auto schedule = parse_cron("* * * * *");
  ASSERT_TRUE(schedule.has_value()) << schedule.error().message;
  EXPECT_EQ(schedule->minutes.count(), 60u);
  EXPECT_EQ(schedule->hours.count(), 24u);
  EXPECT_EQ(schedule->days_of_month.count(), 31u);
  EXPECT_FALSE(schedule->days_of_month[0]);
  EXPECT_EQ(schedule->months.count(), 12u);
  EXPECT_FALSE(schedule->months[0]);
  EXPECT_EQ(schedule->days_of_week.count(), 7u);
  EXPECT_FALSE(schedule->day_of_month_restricted);
  EXPECT_FALSE(schedule->day_of_week_restricted);
}

TEST(CronParse, MacroKeepsItsOwnText) {
  const auto schedule = parse_cron("@weekly");
  ASSERT_TRUE(schedule.has_value()) << schedule.error().message;
  EXPECT_EQ(schedule->text, "@weekly");
  EXPECT_EQ(schedule->days_of_week.count(), 1u);
  EXPECT_TRUE(schedule->days_of_week[0]);
  EXPECT_TRUE(schedule->day_of_week_restricted);
  EXPECT_FALSE(schedule->day_of_month_restricted);
}

TEST(CronNextTime, NeverFiringScheduleStopsQuickly) {
  // Five years of a schedule that never fires: skipping months keeps this far below a
  // minute-by-minute walk (2.6 million steps).
  const auto schedule = parse_cron("* * 31 2 *");
  ASSERT_TRUE(schedule.has_value());
  EXPECT_FALSE(next_cron_time(*schedule, at("2026-01-01T00:00:00Z")).has_value());
}

TEST(CronNextTime, FiresOnWholeMinutes) {
  const auto schedule = parse_cron("*/7 * * * *");
  ASSERT_TRUE(schedule.has_value());
  std::int64_t t = at("2026-11-24T09:30:12.345678Z");
  for (int i = 0; i < 500; ++i) {
    const auto next = next_cron_time(*schedule, t);
    ASSERT_TRUE(next.has_value());
    EXPECT_GT(*next, t);
    EXPECT_EQ(*next % 60000000, 0);
    EXPECT_EQ(*next / 60000000 % 60 % 7, 0);
    t = *next;
  }
}

TEST(CronNextTime, OutsideTheCalendarIsNever) {
  const auto schedule = parse_cron("* * * * *");
  ASSERT_TRUE(schedule.has_value());
  EXPECT_FALSE(next_cron_time(*schedule, INT64_MAX).has_value());
  EXPECT_FALSE(next_cron_time(*schedule, INT64_MIN).has_value());
}

struct BadCase {
  std::string_view spec;
  std::string_view expected_in_message;
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << "'" << c.spec << "'"; }

class CronRefuses : public ::testing::TestWithParam<BadCase> {};

TEST_P(CronRefuses, NamingTheField) {
  const auto& c = GetParam();
  const auto schedule = parse_cron(c.spec);
  ASSERT_FALSE(schedule.has_value()) << "'" << c.spec << "' was accepted";
  EXPECT_EQ(schedule.error().kind, ErrorKind::invalid);
  EXPECT_NE(schedule.error().message.find(c.expected_in_message), std::string::npos)
      << "'" << c.spec << "': " << schedule.error().message;
  EXPECT_EQ(schedule.error().message.rfind("backup-schedule: ", 0), 0u) << schedule.error().message;
}

constexpr std::string_view k_format = "expected 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 2 * * *')";

INSTANTIATE_TEST_SUITE_P(
    Cron, CronRefuses,
    ::testing::Values(
        // Wrong number of fields.
        BadCase{"", k_format},
        BadCase{"   ", k_format},
        BadCase{"off", k_format},
        BadCase{"0 2 * *", "got 4 in '0 2 * *'"},
        BadCase{"0 2 * * * *", "got 6"},
        BadCase{"0 2 * * * 2026", k_format},
        // Macros.
        BadCase{"@reboot", "unknown macro '@reboot'"},
        BadCase{"@", "unknown macro '@'"},
        BadCase{"@daily 5", "unknown macro '@daily 5'"},
        // Out of range, each field.
        BadCase{"60 * * * *", "minute field '60': value 60 is out of range 0-59"},
        BadCase{"* 24 * * *", "hour field '24': value 24 is out of range 0-23"},
        BadCase{"* * 0 * *", "day-of-month field '0': value 0 is out of range 1-31"},
        BadCase{"* * 32 * *", "day-of-month field '32'"},
        BadCase{"* * * 0 *", "month field '0': value 0 is out of range 1-12"},
        BadCase{"* * * 13 *", "month field '13'"},
        BadCase{"* * * * 8", "day-of-week field '8': value 8 is out of range 0-7"},
        BadCase{"0-60 * * * *", "minute field '0-60'"},
        BadCase{"1,2,99 * * * *", "minute field '1,2,99': value 99"},
        BadCase{"99999999999999999999 * * * *", "minute field '99999999999999999999': value 99999999999999999999 is out"},
        // Steps.
        BadCase{"*/0 * * * *", "minute field '*/0': step 0 is out of range 1-60"},
        BadCase{"* 1-5/0 * * *", "hour field '1-5/0': step 0"},
        BadCase{"*/61 * * * *", "minute field '*/61': step 61 is out of range 1-60"},
        BadCase{"*/ * * * *", "minute field '*/': missing step"},
        BadCase{"*/x * * * *", "minute field '*/x': step 'x' is not a number"},
        BadCase{"*/2/3 * * * *", "minute field '*/2/3': step '2/3'"},
        BadCase{"* * * * mon/0", "day-of-week field 'mon/0'"},
        // Ranges.
        BadCase{"5-1 * * * *", "minute field '5-1': range '5-1' is reversed"},
        BadCase{"* * * dec-jan *", "month field 'dec-jan': range 'dec-jan' is reversed"},
        BadCase{"* * * * fri-mon", "day-of-week field 'fri-mon': range 'fri-mon' is reversed"},
        BadCase{"* * * * 5-0", "day-of-week field '5-0'"},
        BadCase{"1-2-3 * * * *", "minute field '1-2-3'"},
        BadCase{"-1 * * * *", "minute field '-1': missing number"},
        BadCase{"1- * * * *", "minute field '1-': missing number"},
        BadCase{"*-5 * * * *", "minute field '*-5'"},
        // Lists.
        BadCase{"1,,2 * * * *", "minute field '1,,2': empty entry"},
        BadCase{"1, * * * *", "minute field '1,': empty entry"},
        BadCase{",1 * * * *", "minute field ',1': empty entry"},
        // Garbage and names where they do not belong.
        BadCase{"x * * * *", "minute field 'x': 'x' is not a number"},
        BadCase{"1.5 * * * *", "minute field '1.5'"},
        BadCase{"jan * * * *", "minute field 'jan'"},
        BadCase{"* mon * * *", "hour field 'mon'"},
        BadCase{"* * mon * *", "day-of-month field 'mon'"},
        BadCase{"* * * mon *", "month field 'mon': 'mon' is neither a number in 1-12 nor a month name (jan..dec)"},
        BadCase{"* * * * jan", "day-of-week field 'jan': 'jan' is neither a number in 0-7 nor a day name (sun..sat)"},
        BadCase{"* * * * x", "day-of-week field 'x'"},
        BadCase{"* * * * monday", "day-of-week field 'monday'"},
        BadCase{"* * * january *", "month field 'january'"},
        BadCase{"* * * * ?", "day-of-week field '?'"},
        BadCase{"* * L * *", "day-of-month field 'L'"},
        BadCase{"* * * * 1#2", "day-of-week field '1#2'"},
        BadCase{"+5 * * * *", "minute field '+5'"}));

}  // namespace
}  // namespace walvault
