#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/core/backup_file.hpp"
#include "common/core/time_format.hpp"

namespace walvault {
namespace {

constexpr std::string_view k_file_name = "000000010000000000000002.00000028.backup";

// Written by PostgreSQL 15's pg_basebackup (do_pg_backup_stop), byte for byte.
constexpr std::string_view k_pg15_backup =
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/2000060\n"
    "BACKUP METHOD: streamed\n"
    "BACKUP FROM: primary\n"
    "START TIME: 2026-11-24 09:56:11 UTC\n"
    "LABEL: pg_basebackup base backup\n"
    "START TIMELINE: 1\n"
    "STOP TIME: 2026-11-24 09:56:12 UTC\n"
    "STOP TIMELINE: 1\n";

std::string without_line(std::string_view content, std::string_view prefix) {
  std::string out;
  std::size_t pos = 0;
  while (pos < content.size()) {
    std::size_t end = content.find('\n', pos);
    end = end == std::string_view::npos ? content.size() : end + 1;
    const std::string_view line = content.substr(pos, end - pos);
    if (line.substr(0, prefix.size()) != prefix) out += line;
    pos = end;
  }
  return out;
}

std::string replaced(std::string_view content, std::string_view from, std::string_view to) {
  std::string out(content);
  const auto at = out.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

TEST(BackupFile, ParsesAPostgres15BackupHistoryFile) {
  auto parsed = parse_backup_history(k_pg15_backup, k_file_name);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->start_lsn, 0x2000028u);
  EXPECT_EQ(parsed->stop_lsn, 0x2000100u);
  EXPECT_EQ(parsed->checkpoint_lsn, 0x2000060u);
  EXPECT_EQ(parsed->start_timeline, 1u);
  EXPECT_EQ(parsed->stop_timeline, 1u);
  EXPECT_EQ(parsed->label, "pg_basebackup base backup");
  ASSERT_TRUE(parsed->start_us.has_value());
  ASSERT_TRUE(parsed->stop_us.has_value());
  EXPECT_EQ(*parsed->start_us, 1795514171LL * 1000000);
  EXPECT_EQ(*parsed->stop_us, 1795514172LL * 1000000);
  EXPECT_EQ(format_timestamp(*parsed->start_us), "2026-11-24T09:56:11Z");
  EXPECT_EQ(format_timestamp(*parsed->stop_us), "2026-11-24T09:56:12Z");
}

TEST(BackupFile, ParsesHighLsnsTimelinesAndNumericZones) {
  const std::string content =
      "START WAL LOCATION: 1A/FF000028 (file 000000030000001A000000FF)\n"
      "STOP WAL LOCATION: 1B/138 (file 000000030000001B00000000)\n"
      "CHECKPOINT LOCATION: 1A/FF000060\n"
      "BACKUP METHOD: streamed\n"
      "BACKUP FROM: standby\n"
      "START TIME: 2026-11-24 10:56:11 +01\n"
      "LABEL: nightly: full\n"
      "START TIMELINE: 3\n"
      "STOP TIME: 2026-11-24 04:26:12 -0530\n"
      "STOP TIMELINE: 3\n";
  auto parsed = parse_backup_history(content, "000000030000001A000000FF.00000028.backup");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->start_lsn, 0x1AFF000028u);
  EXPECT_EQ(parsed->stop_lsn, 0x1B00000138u);
  EXPECT_EQ(parsed->checkpoint_lsn, 0x1AFF000060u);
  EXPECT_EQ(parsed->start_timeline, 3u);
  EXPECT_EQ(parsed->stop_timeline, 3u);
  EXPECT_EQ(parsed->label, "nightly: full");  // only the first ": " separates the key
  EXPECT_EQ(parsed->start_us, 1795514171LL * 1000000);
  EXPECT_EQ(parsed->stop_us, 1795514172LL * 1000000);
}

TEST(BackupFile, AZoneAbbreviationLeavesTheTimeUnset) {
  // log_timezone = 'Europe/Paris' makes PostgreSQL write "CET": the instant is ambiguous
  // without a zone database, so it is left unknown rather than guessed.
  std::string content = replaced(k_pg15_backup, "START TIME: 2026-11-24 09:56:11 UTC", "START TIME: 2026-11-24 10:56:11 CET");
  content = replaced(content, "STOP TIME: 2026-11-24 09:56:12 UTC", "STOP TIME: 2026-11-24 10:56:12 CET");
  auto parsed = parse_backup_history(content, k_file_name);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_FALSE(parsed->start_us.has_value());
  EXPECT_FALSE(parsed->stop_us.has_value());
  EXPECT_EQ(parsed->start_lsn, 0x2000028u);
}

TEST(BackupFile, ToleratesMissingOptionalLinesAndNoFinalNewline) {
  const std::string content =
      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
      "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)";
  auto parsed = parse_backup_history(content, k_file_name);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->start_lsn, 0x2000028u);
  EXPECT_EQ(parsed->stop_lsn, 0x2000100u);
  EXPECT_EQ(parsed->checkpoint_lsn, 0u);
  EXPECT_EQ(parsed->start_timeline, 0u);
  EXPECT_EQ(parsed->label, "");
  EXPECT_FALSE(parsed->start_us.has_value());
  EXPECT_FALSE(parsed->stop_us.has_value());
}

TEST(BackupFile, StartAndStopAtTheSameLocationIsAccepted) {
  const std::string content = replaced(k_pg15_backup, "STOP WAL LOCATION: 0/2000100", "STOP WAL LOCATION: 0/2000028");
  auto parsed = parse_backup_history(content, k_file_name);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->stop_lsn, parsed->start_lsn);
}

struct RefusalCase {
  std::string name;
  std::string content;
  std::string expected;  // the whole message
};

class BackupFileRefuses : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(BackupFileRefuses, NamingTheFileAndTheLine) {
  const auto& c = GetParam();
  auto parsed = parse_backup_history(c.content, k_file_name);
  ASSERT_FALSE(parsed) << "accepted";
  EXPECT_EQ(parsed.error().kind, ErrorKind::refused);
  EXPECT_EQ(parsed.error().message, c.expected);
}

const std::string k_prefix = "backup history file '000000010000000000000002.00000028.backup' refused: ";

INSTANTIATE_TEST_SUITE_P(
    BackupFile, BackupFileRefuses,
    ::testing::Values(
        RefusalCase{"NoStart", without_line(k_pg15_backup, "START WAL LOCATION"), k_prefix + "no 'START WAL LOCATION' line"},
        RefusalCase{"NoStop", without_line(k_pg15_backup, "STOP WAL LOCATION"), k_prefix + "no 'STOP WAL LOCATION' line"},
        RefusalCase{"Empty", "", k_prefix + "no 'START WAL LOCATION' line"},
        RefusalCase{"NotABackupFile", "hello world\nthis is not PostgreSQL's\n", k_prefix + "no 'START WAL LOCATION' line"},
        RefusalCase{"StopBeforeStart",
                    replaced(k_pg15_backup, "STOP WAL LOCATION: 0/2000100", "STOP WAL LOCATION: 0/2000000"),
                    k_prefix + "stop location is before the start location"},
        RefusalCase{"BadStart", replaced(k_pg15_backup, "START WAL LOCATION: 0/2000028", "START WAL LOCATION: zero"),
                    k_prefix + "bad START WAL LOCATION 'zero (file 000000010000000000000002)'"},
        RefusalCase{"BadStop", replaced(k_pg15_backup, "STOP WAL LOCATION: 0/2000100", "STOP WAL LOCATION: 0-2000100"),
                    k_prefix + "bad STOP WAL LOCATION '0-2000100 (file 000000010000000000000002)'"},
        RefusalCase{"BadStartTimeline", replaced(k_pg15_backup, "START TIMELINE: 1", "START TIMELINE: one"),
                    k_prefix + "bad START TIMELINE"},
        RefusalCase{"BadStopTimeline", replaced(k_pg15_backup, "STOP TIMELINE: 1", "STOP TIMELINE: -1"),
                    k_prefix + "bad STOP TIMELINE"}),
    [](const ::testing::TestParamInfo<RefusalCase>& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace walvault
