#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/core/time_format.hpp"

namespace walvault {
namespace {

constexpr std::int64_t k_second = 1000000;

// 2026-11-24T09:30:00Z, from `date -u -d '2026-11-24 09:30:00 UTC' +%s`.
constexpr std::int64_t k_reference = 1795512600LL * k_second;

struct TimestampCase {
  std::string_view text;
  std::int64_t expected_us;
};

class TimeParseAccepts : public ::testing::TestWithParam<TimestampCase> {};

TEST_P(TimeParseAccepts, ToTheKnownUnixMicroseconds) {
  const auto& c = GetParam();
  const auto parsed = parse_timestamp(c.text);
  ASSERT_TRUE(parsed.has_value()) << "'" << c.text << "' was refused";
  EXPECT_EQ(*parsed, c.expected_us) << "'" << c.text << "'";
}

INSTANTIATE_TEST_SUITE_P(
    TimeFormat, TimeParseAccepts,
    ::testing::Values(
        // Known epoch values.
        TimestampCase{"1970-01-01T00:00:00Z", 0},
        TimestampCase{"2000-01-01T00:00:00Z", 946684800000000LL},
        TimestampCase{"2000-01-01T00:00:00Z", k_postgres_epoch_offset_us},
        TimestampCase{"1969-12-31T23:59:59Z", -k_second},
        TimestampCase{"1969-07-20T20:17:40Z", -14182940LL * k_second},
        TimestampCase{"2100-03-01T00:00:00Z", 4107542400LL * k_second},
        // RFC 3339.
        TimestampCase{"2026-11-24T09:30:00Z", k_reference},
        TimestampCase{"2026-11-24t09:30:00z", k_reference},
        TimestampCase{"2026-11-24T11:30:00+02:00", k_reference},
        TimestampCase{"2026-11-24T04:00:00-05:30", k_reference},
        TimestampCase{"2026-11-24T09:30:00+00:00", k_reference},
        TimestampCase{"2026-11-24T09:30:00-00:00", k_reference},
        TimestampCase{"2026-11-25T00:30:00+15:00", k_reference},
        TimestampCase{"2026-11-24T09:30:00.123456Z", k_reference + 123456},
        TimestampCase{"2026-11-24T09:30:00.5Z", k_reference + 500000},
        TimestampCase{"2026-11-24T09:30:00.000001Z", k_reference + 1},
        TimestampCase{"2026-11-24T09:30:00.1234567Z", k_reference + 123456},  // beyond µs: truncated
        TimestampCase{"2026-11-24T11:30:00.25+02:00", k_reference + 250000},
        // No zone at all means UTC.
        TimestampCase{"2026-11-24T09:30:00", k_reference},
        // PostgreSQL's text form.
        TimestampCase{"2026-11-24 09:30:00", k_reference},
        TimestampCase{"2026-11-24 09:30:00 UTC", k_reference},
        TimestampCase{"2026-11-24 09:30:00 GMT", k_reference},
        TimestampCase{"2026-11-24 09:30:00+00", k_reference},
        TimestampCase{"2026-11-24 10:30:00+01", k_reference},
        TimestampCase{"2026-11-24 08:30:00-01", k_reference},
        TimestampCase{"2026-11-24 04:00:00-0530", k_reference},
        TimestampCase{"2026-11-24 15:00:00+0530", k_reference},
        TimestampCase{"2026-11-24 10:30:00.654321+01", k_reference + 654321},
        TimestampCase{"2026-11-24 09:56:11 UTC", 1795514171LL * k_second},
        // Leap years: divisible by 4, by 400 (2000), not by 100 alone.
        TimestampCase{"2024-02-29T12:00:00Z", 1709208000LL * k_second},
        TimestampCase{"2000-02-29T00:00:00Z", 951782400LL * k_second},
        // An offset that moves the instant across a day, a month and a year boundary.
        TimestampCase{"2026-12-31T23:30:00-01:00", 1798763400LL * k_second},
        TimestampCase{"2027-01-01T00:30:00+01:00", 1798759800LL * k_second}));

class TimeParseRefuses : public ::testing::TestWithParam<std::string_view> {};

TEST_P(TimeParseRefuses, AnythingElse) {
  const auto parsed = parse_timestamp(GetParam());
  EXPECT_FALSE(parsed.has_value()) << "'" << GetParam() << "' was accepted as " << parsed.value_or(0);
}

INSTANTIATE_TEST_SUITE_P(
    TimeFormat, TimeParseRefuses,
    ::testing::Values(
        "", "yesterday", "2026", "2026-11-24", "2026-11-24T09:30", "2026-11-24T09:30Z", "26-11-24T09:30:00Z",
        "2026/11/24 09:30:00", "2026-11-24X09:30:00Z", "2026-11-24T09.30.00Z", " 2026-11-24T09:30:00Z",
        // Calendar.
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-11-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
        "2026-11-00T00:00:00Z", "2026-11-32T00:00:00Z",
        // Clock.
        "2026-11-24T24:00:00Z", "2026-11-24T09:60:00Z", "2026-11-24T09:30:61Z", "2026-11-24T9:30:00Z",
        // Fractions.
        "2026-11-24T09:30:00.Z", "2026-11-24T09:30:00.", "2026-11-24T09:30:00,5Z",
        // Zones.
        "2026-11-24T09:30:00 CET", "2026-11-24T09:30:00 EST", "2026-11-24T09:30:00Zjunk",
        "2026-11-24T09:30:00Z ", "2026-11-24T09:30:00+2", "2026-11-24T09:30:00+", "2026-11-24T09:30:00-",
        "2026-11-24T09:30:00+16:00", "2026-11-24T09:30:00+02:60", "2026-11-24T09:30:00+02:0",
        "2026-11-24T09:30:00+020", "2026-11-24T09:30:00+02:00junk", "2026-11-24T09:30:00+02:00:00",
        "2026-11-24T09:30:00+0200Z", "2026-11-24T09:30:00 +xx"));

// "+01:" is an offset with a dangling colon: neither RFC 3339 ("+01:00") nor PostgreSQL
// ("+01") writes it, so it must not be read as +01.
TEST(TimeFormat, RefusesAnOffsetWithADanglingColon) {
  EXPECT_FALSE(parse_timestamp("2026-11-24 10:30:00+01:").has_value());
  EXPECT_FALSE(parse_timestamp("2026-11-24T10:30:00+01:").has_value());
}

TEST(TimeFormat, LeapSecondIsAcceptedAsTheNextSecond) {
  // PostgreSQL never writes :60, but RFC 3339 allows it; it must not be refused or misplaced.
  EXPECT_EQ(parse_timestamp("2016-12-31T23:59:60Z"), parse_timestamp("2017-01-01T00:00:00Z"));
}

TEST(TimeFormat, FormatsUtcWithAFractionOnlyWhenNonZero) {
  EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_timestamp(946684800000000LL), "2000-01-01T00:00:00Z");
  EXPECT_EQ(format_timestamp(k_reference), "2026-11-24T09:30:00Z");
  EXPECT_EQ(format_timestamp(k_reference + 123456), "2026-11-24T09:30:00.123456Z");
  EXPECT_EQ(format_timestamp(k_reference + 1), "2026-11-24T09:30:00.000001Z");
  EXPECT_EQ(format_timestamp(1709208000LL * k_second), "2024-02-29T12:00:00Z");
  EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(-k_second), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_timestamp(-14182940LL * k_second), "1969-07-20T20:17:40Z");
  EXPECT_EQ(format_timestamp(4107542400LL * k_second - 1), "2100-02-28T23:59:59.999999Z");
}

TEST(TimeFormat, PostgresEpochConversion) {
  EXPECT_EQ(unix_us_from_postgres(0), 946684800000000LL);
  EXPECT_EQ(format_timestamp(unix_us_from_postgres(0)), "2000-01-01T00:00:00Z");
  EXPECT_EQ(format_timestamp(unix_us_from_postgres(-1)), "1999-12-31T23:59:59.999999Z");
}

TEST(TimeFormat, FormatThenParseRoundTrips) {
  const std::int64_t values[] = {0,
                                 1,
                                 -1,
                                 999999,
                                 -999999,
                                 k_reference,
                                 k_reference + 7,
                                 946684800000000LL,
                                 951782400LL * k_second - 1,  // the second before 2000-02-29
                                 1709208000LL * k_second + 999999,
                                 4107542400LL * k_second,
                                 -14182940LL * k_second + 250000,
                                 253402300799LL * k_second + 999999};  // 9999-12-31T23:59:59.999999Z
  for (std::int64_t us : values) {
    const std::string text = format_timestamp(us);
    const auto back = parse_timestamp(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, us) << text;
  }
  // Every day of a leap year and of the year after, at a non-zero fraction.
  const std::int64_t start = *parse_timestamp("2024-01-01T13:14:15.161718Z");
  for (int day = 0; day < 366 + 365; ++day) {
    const std::int64_t us = start + std::int64_t{day} * 86400 * k_second;
    const auto back = parse_timestamp(format_timestamp(us));
    ASSERT_TRUE(back.has_value()) << format_timestamp(us);
    EXPECT_EQ(*back, us) << format_timestamp(us);
  }
}

TEST(TimeFormat, ParseThenFormatNormalisesToUtc) {
  EXPECT_EQ(format_timestamp(*parse_timestamp("2026-11-24 11:30:00.5+02")), "2026-11-24T09:30:00.500000Z");
  EXPECT_EQ(format_timestamp(*parse_timestamp("2026-11-24 09:56:11 UTC")), "2026-11-24T09:56:11Z");
  EXPECT_EQ(format_timestamp(*parse_timestamp("2027-01-01T00:30:00+01:00")), "2026-12-31T23:30:00Z");
}

TEST(TimeFormat, NowIsRecentAndMonotonicEnough) {
  const std::int64_t a = now_unix_us();
  const std::int64_t b = now_unix_us();
  EXPECT_GT(a, *parse_timestamp("2024-01-01T00:00:00Z"));
  EXPECT_GE(b, a - k_second);
}

struct DurationCase {
  std::string_view text;
  std::int64_t expected_us;
};

class TimeDurationAccepts : public ::testing::TestWithParam<DurationCase> {};

TEST_P(TimeDurationAccepts, ToMicroseconds) {
  const auto& c = GetParam();
  const auto parsed = parse_duration_us(c.text);
  ASSERT_TRUE(parsed.has_value()) << "'" << c.text << "' was refused";
  EXPECT_EQ(*parsed, c.expected_us) << "'" << c.text << "'";
}

INSTANTIATE_TEST_SUITE_P(TimeFormat, TimeDurationAccepts,
                         ::testing::Values(DurationCase{"30m", 1800 * k_second}, DurationCase{"48h", 48LL * 3600 * k_second},
                                           DurationCase{"7d", 7LL * 86400 * k_second}, DurationCase{"90s", 90 * k_second},
                                           DurationCase{"1h30m", 5400 * k_second}, DurationCase{"1s", k_second},
                                           DurationCase{"0s", 0}, DurationCase{"1d2h3m4s", (86400 + 7200 + 180 + 4) * k_second},
                                           DurationCase{"015m", 900 * k_second},
                                           DurationCase{"100000000s", 100000000LL * k_second},
                                           DurationCase{"36500d", 36500LL * 86400 * k_second}));

class TimeDurationRefuses : public ::testing::TestWithParam<std::string_view> {};

TEST_P(TimeDurationRefuses, AnythingElse) {
  const auto parsed = parse_duration_us(GetParam());
  EXPECT_FALSE(parsed.has_value()) << "'" << GetParam() << "' was accepted as " << parsed.value_or(0);
}

INSTANTIATE_TEST_SUITE_P(TimeFormat, TimeDurationRefuses,
                         ::testing::Values("", "5", "x", "5y", "m", "h30m", "1h30", "-5m", "+5m", "5 m", " 5m", "5m ",
                                           "1.5h", "5M", "5H", "5ms", "1w", "100000001s", "99999999999999999999s"));

// Each part is bounded, but a sum of parts is not: the total must not wrap around to a
// negative (or otherwise wrong) duration.
TEST(TimeFormat, DurationWhoseSumOverflowsIsRefused) {
  const auto parsed = parse_duration_us("99999999d99999999d");
  if (parsed) {
    EXPECT_GT(*parsed, 0) << "wrapped around";
  }
  EXPECT_FALSE(parsed.has_value()) << "accepted as " << parsed.value_or(0);
}

TEST(TimeFormat, FormatsDurationsInTheTwoLargestUnits) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(999999), "0s");
  EXPECT_EQ(format_duration(45 * k_second), "45s");
  EXPECT_EQ(format_duration(59 * k_second), "59s");
  EXPECT_EQ(format_duration(60 * k_second), "1m 0s");
  EXPECT_EQ(format_duration(90 * k_second), "1m 30s");
  EXPECT_EQ(format_duration((3 * 3600 + 12 * 60 + 5) * k_second), "3h 12m");
  EXPECT_EQ(format_duration(3600 * k_second), "1h 0m");
  EXPECT_EQ(format_duration(86400 * k_second), "1d 0h");
  EXPECT_EQ(format_duration((2 * 86400 + 5 * 3600 + 59 * 60) * k_second), "2d 5h");
  EXPECT_EQ(format_duration(-90 * k_second), "1m 30s");
  EXPECT_EQ(format_duration(*parse_duration_us("1h30m")), "1h 30m");
  EXPECT_EQ(format_duration(*parse_duration_us("48h")), "2d 0h");
}

}  // namespace
}  // namespace walvault
