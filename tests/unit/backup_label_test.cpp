#include "common/core/backup_label.hpp"

#include <gtest/gtest.h>

#include <string>

namespace walvault {
namespace {

// As PostgreSQL 15's pg_basebackup writes it into the tar stream.
constexpr std::string_view k_primary_label =
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/2000060\n"
    "BACKUP METHOD: streamed\n"
    "BACKUP FROM: primary\n"
    "START TIME: 2026-11-24 09:30:01 UTC\n"
    "LABEL: walvault 20261124T093001Z\n"
    "START TIMELINE: 1\n";

TEST(BackupLabel, ReadsWhereAndOnWhichTimelineABackupStarts) {
  auto label = parse_backup_label(k_primary_label);
  ASSERT_TRUE(label) << label.error().message;
  EXPECT_EQ(label->start_lsn, 0x2000028u);
  EXPECT_EQ(label->checkpoint_lsn, 0x2000060u);
  EXPECT_EQ(label->timeline, 1u);
  EXPECT_FALSE(label->from_standby);
}

TEST(BackupLabel, KnowsABackupTakenFromAStandby) {
  std::string text(k_primary_label);
  text.replace(text.find("primary"), 7, "standby");
  text.replace(text.find("START TIMELINE: 1"), 17, "START TIMELINE: 3");
  auto label = parse_backup_label(text);
  ASSERT_TRUE(label) << label.error().message;
  EXPECT_TRUE(label->from_standby);
  EXPECT_EQ(label->timeline, 3u);
}

TEST(BackupLabel, ALabelTextThatLooksLikeAKeyDoesNotCount) {
  // The LABEL line is the operator's text; only a line that starts with a key is that key.
  auto label = parse_backup_label("LABEL: START TIMELINE: 9\n" + std::string(k_primary_label));
  ASSERT_TRUE(label) << label.error().message;
  EXPECT_EQ(label->timeline, 1u);
}

TEST(BackupLabel, RefusesALabelWithoutStartOrTimeline) {
  for (std::string_view broken : {
           std::string_view("CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n"),          // no start
           std::string_view("START WAL LOCATION: 0/2000028 (file x)\n"),                     // no timeline
           std::string_view("START WAL LOCATION: zz (file x)\nSTART TIMELINE: 1\n"),         // unreadable start
           std::string_view("START WAL LOCATION: 0/2000028 (file x)\nSTART TIMELINE: 0\n"),  // timeline 0 does not exist
           std::string_view("START WAL LOCATION: 0/2000028 (file x)\nSTART TIMELINE: 1x\n"),
           std::string_view(""),
       }) {
    auto label = parse_backup_label(broken);
    ASSERT_FALSE(label) << "accepted: " << broken;
    EXPECT_EQ(label.error().kind, ErrorKind::refused);
    EXPECT_NE(label.error().message.find("backup_label"), std::string::npos) << label.error().message;
  }
}

}  // namespace
}  // namespace walvault
