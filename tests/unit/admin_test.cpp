#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/core/time_format.hpp"
#include "restorer/admin.hpp"
#include "tests/unit/archive_fixture.hpp"

namespace walvault {
namespace {

using json = nlohmann::ordered_json;
using test::k_mib;
using test::segment_file;
using test::segment_fixture;

constexpr std::string_view k_backup_name = "000000010000000000000002.00000028.backup";

// PostgreSQL's 'YYYY-MM-DD HH:MM:SS UTC' for a Unix time in microseconds (whole seconds).
std::string postgres_time(std::int64_t unix_us) {
  std::string text = format_timestamp(unix_us / 1000000 * 1000000);
  text[10] = ' ';
  text.pop_back();  // 'Z'
  return text + " UTC";
}

protocol::Message request(std::string verb, std::vector<std::pair<std::string, std::string>> fields = {}) {
  protocol::Message m;
  m.line = std::move(verb);
  for (auto& [k, v] : fields) m.set(k, v);
  return m;
}

class AdminTest : public test::ArchiveFixture {
 protected:
  // Stored uncompressed, so a flipped byte lands in the content itself.
  AdminTest() { m_compress = CompressSpec{Codec::none, 0}; }

  void SetUp() override {
    test::ArchiveFixture::SetUp();
    // Whatever disk the tests run on, its usage must not decide these tests.
    m_thresholds.max_disk_usage = 1.0;
    m_admin = std::make_unique<Admin>(*m_repository, *m_index, *m_indexer, std::function<json()>{},
                                      LiveSetting<CheckThresholds>([this] { return m_thresholds; }));
  }

  // A base backup that started in segment 2 and finished `age_us` ago.
  void push_backup(std::int64_t age_us = 60LL * 1000000) {
    const std::int64_t stop = now_unix_us() - age_us;
    push_text(k_backup_name, test::backup_history_text("0/200028", "0/200100", "000000010000000000000002",
                                                       postgres_time(stop - 1000000), postgres_time(stop)));
  }

  void push_segments(std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t n = first; n <= last; ++n) push(segment_file(1, n), segment_fixture(1, n));
  }

  static const json* check_named(const AdminOutput& out, std::string_view name) {
    for (const auto& c : out.json["checks"])
      if (c["name"] == name) return &c;
    return nullptr;
  }

  // Makes every indexed segment look stored `age_us` ago.
  void age_segments(std::int64_t age_us) {
    auto rows = m_index->segments();
    ASSERT_TRUE(rows) << rows.error().message;
    for (auto row : *rows) {
      row.stored_at_us = now_unix_us() - age_us;
      ASSERT_TRUE(m_index->put_object(row));
    }
  }

  void flip_byte(const std::string& path, off_t offset) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd) << path;
    unsigned char byte = 0;
    ASSERT_EQ(::pread(fd.get(), &byte, 1, offset), 1);
    byte = static_cast<unsigned char>(byte ^ 0x01);
    ASSERT_EQ(::pwrite(fd.get(), &byte, 1, offset), 1);
  }

  std::unique_ptr<Admin> m_admin;
  CheckThresholds m_thresholds;  // what the Admin reads, as the daemon's configuration snapshot
};

TEST_F(AdminTest, CheckPassesOnAHealthyArchive) {
  push_segments(1, 4);
  push_backup();
  const AdminOutput out = m_admin->check(request("CHECK"));
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.json["ok"], true) << out.json.dump(2);
  for (const char* name : {"wal_age", "backup_age", "continuity"}) {
    const json* c = check_named(out, name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ((*c)["ok"], true) << c->dump();
  }
  const json* continuity = check_named(out, "continuity");
  ASSERT_NE(continuity, nullptr);
  EXPECT_EQ((*continuity)["value"], json::array());
  const std::string healthy =
      "WAL continuous on the path to timeline 1 from 0/200028, and every base backup's own WAL is archived";
  EXPECT_EQ((*continuity)["message"], healthy);
  EXPECT_NE(out.text.find("ok      " + healthy + "\n"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("FAILED"), std::string::npos) << out.text;
}

TEST_F(AdminTest, CheckContinuityFailureNamesTheMissingSegment) {
  push_segments(1, 2);
  push_segments(4, 5);
  push_backup();
  const AdminOutput out = m_admin->check(request("CHECK"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["ok"], false);
  const json* c = check_named(out, "continuity");
  ASSERT_NE(c, nullptr) << out.json.dump(2);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["value"], json::array({"000000010000000000000003"}));
  const std::string gap =
      "WAL gap: 1 segment(s) recovery needs are missing (path to timeline 1 from 0/200028, or a base backup's own WAL), "
      "first 000000010000000000000003";
  EXPECT_EQ((*c)["message"], gap);
  EXPECT_NE(out.text.find("FAILED  " + gap + "\n"), std::string::npos) << out.text;
  // The other checks still hold.
  EXPECT_EQ((*check_named(out, "wal_age"))["ok"], true);
  EXPECT_EQ((*check_named(out, "backup_age"))["ok"], true);
}

TEST_F(AdminTest, CheckCountsAFileRemovedByHandAsMissing) {
  push_segments(1, 4);
  push_backup();
  ASSERT_EQ(::unlink(object_path(segment_file(1, 3)).c_str()), 0);
  const AdminOutput out = m_admin->check(request("CHECK"));
  EXPECT_EQ(out.exit_code, 1);
  const json* c = check_named(out, "continuity");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["value"], json::array({"000000010000000000000003"}));
}

TEST_F(AdminTest, CheckWalAgeFailsNamingTheThreshold) {
  push_segments(1, 2);
  push_backup();
  age_segments(10LL * 60 * 1000000);  // stored ten minutes ago

  const AdminOutput out = m_admin->check(request("CHECK", {{"max-wal-age", "5m"}}));
  EXPECT_EQ(out.exit_code, 1);
  const json* c = check_named(out, "wal_age");
  ASSERT_NE(c, nullptr) << out.json.dump(2);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["threshold"], 300);
  EXPECT_GE((*c)["value"].get<std::int64_t>(), 600);
  EXPECT_LT((*c)["value"].get<std::int64_t>(), 660);
  const std::string message = (*c)["message"].get<std::string>();
  EXPECT_EQ(message.rfind("newest WAL age 10m ", 0), 0u) << message;
  EXPECT_NE(message.find("(threshold 5m 0s)"), std::string::npos) << message;
  EXPECT_NE(out.text.find("FAILED  newest WAL age 10m "), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("(threshold 5m 0s)\n"), std::string::npos) << out.text;
  // Continuity and the backup still hold.
  EXPECT_EQ((*check_named(out, "continuity"))["ok"], true);

  // A generous threshold passes; so does the configured default (1h).
  EXPECT_EQ((*check_named(m_admin->check(request("CHECK", {{"max-wal-age", "1h30m"}})), "wal_age"))["ok"], true);
  EXPECT_EQ(m_admin->check(request("CHECK")).exit_code, 0);
  // Thresholds set on the Admin are the defaults for a request without the field.
  CheckThresholds tight;
  tight.max_disk_usage = 1.0;
  tight.max_wal_age_us = 60LL * 1000000;
  m_thresholds = tight;  // as a reload would: read by the next request
  const AdminOutput configured = m_admin->check(request("CHECK"));
  EXPECT_EQ(configured.exit_code, 1);
  EXPECT_NE((*check_named(configured, "wal_age"))["message"].get<std::string>().find("(threshold 1m 0s)"), std::string::npos);
}

TEST_F(AdminTest, CheckWalAgeWithATinyThreshold) {
  push_segments(1, 1);
  push_backup();
  age_segments(5LL * 1000000);
  const AdminOutput out = m_admin->check(request("CHECK", {{"max-wal-age", "1s"}}));
  EXPECT_EQ(out.exit_code, 1);
  const json* c = check_named(out, "wal_age");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["threshold"], 1);
  EXPECT_NE((*c)["message"].get<std::string>().find("(threshold 1s)"), std::string::npos) << (*c)["message"];
}

TEST_F(AdminTest, CheckBackupAgeFailsWhenOldOrMissing) {
  push_segments(1, 3);
  AdminOutput out = m_admin->check(request("CHECK"));
  EXPECT_EQ(out.exit_code, 1);
  const json* c = check_named(out, "backup_age");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["message"], "newest base backup: none yet (take one with 'walvault backup', or set backup-schedule)");
  EXPECT_NE(out.text.find("FAILED  newest base backup: none yet (take one with 'walvault backup'"), std::string::npos) << out.text;

  push_backup(3LL * 3600 * 1000000);  // three hours ago
  out = m_admin->check(request("CHECK", {{"max-backup-age", "2h"}}));
  EXPECT_EQ(out.exit_code, 1);
  c = check_named(out, "backup_age");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["threshold"], 7200);
  EXPECT_NE((*c)["message"].get<std::string>().find("newest base backup age 3h 0m (threshold 2h 0m)"), std::string::npos)
      << (*c)["message"];
  EXPECT_EQ(m_admin->check(request("CHECK", {{"max-backup-age", "4h"}})).exit_code, 0);
}

TEST_F(AdminTest, CheckDiskUsageAgainstAThreshold) {
  push_segments(1, 1);
  push_backup();
  const AdminOutput out = m_admin->check(request("CHECK", {{"max-disk-usage", "100%"}}));
  const json* c = check_named(out, "disk_usage");
  ASSERT_NE(c, nullptr) << "the posix backend knows its filesystem's size";
  EXPECT_EQ((*c)["ok"], true);
  EXPECT_DOUBLE_EQ((*c)["threshold"].get<double>(), 1.0);
  EXPECT_NE((*c)["message"].get<std::string>().find("(threshold 100%)"), std::string::npos) << (*c)["message"];
}

TEST_F(AdminTest, CheckRefusesBadThresholdsNamingTheValue) {
  push_segments(1, 1);
  struct Bad {
    const char* field;
    const char* value;
    const char* message;
  };
  for (const Bad& bad : {Bad{"max-wal-age", "5y", "--max-wal-age '5y' is not a duration such as 30m"},
                         Bad{"max-wal-age", "", "--max-wal-age '' is not a duration such as 30m"},
                         Bad{"max-backup-age", "two days", "--max-backup-age 'two days' is not a duration such as 48h"},
                         Bad{"max-disk-usage", "120%", "--max-disk-usage '120%' is not a percentage such as 80%"},
                         Bad{"max-disk-usage", "0", "--max-disk-usage '0' is not a percentage such as 80%"},
                         Bad{"max-disk-usage", "80%%", "--max-disk-usage '80%%' is not a percentage such as 80%"}}) {
    const AdminOutput out = m_admin->check(request("CHECK", {{bad.field, bad.value}}));
    EXPECT_EQ(out.exit_code, 1) << bad.value;
    EXPECT_EQ(out.json["error"], bad.message);
    EXPECT_EQ(out.text, std::string(bad.message) + "\n");
  }
}

TEST_F(AdminTest, CheckOnAnEmptyArchive) {
  const AdminOutput out = m_admin->check(request("CHECK"));
  EXPECT_EQ(out.exit_code, 1);
  const json* c = check_named(out, "wal_age");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["ok"], false);
  EXPECT_EQ((*c)["message"], "newest WAL: none archived yet (set PostgreSQL's archive_command to archive-push; see docs/operator-guide.md)");
  EXPECT_EQ(check_named(out, "continuity"), nullptr);
}

// docs/cli.md: `threshold` of a check is one value; for wal_age it is a number of seconds
// (as for backup_age, whose "none known" case also gives seconds). A monitoring script
// reading it as a number must not break on an empty archive.
TEST_F(AdminTest, CheckWalAgeThresholdIsSecondsEvenWhenNothingIsArchived) {
  const AdminOutput out = m_admin->check(request("CHECK", {{"max-wal-age", "30m"}}));
  const json* wal = check_named(out, "wal_age");
  const json* backup = check_named(out, "backup_age");
  ASSERT_NE(wal, nullptr);
  ASSERT_NE(backup, nullptr);
  EXPECT_TRUE((*backup)["threshold"].is_number()) << backup->dump();
  EXPECT_TRUE((*wal)["threshold"].is_number()) << wal->dump();
  EXPECT_EQ((*wal)["threshold"], 1800) << wal->dump();
}

TEST_F(AdminTest, VerifyPassesOnAHealthyArchive) {
  push_segments(1, 3);
  push_backup();
  push_text("00000002.history", "1\t0/350000\tno recovery target specified\n");
  const AdminOutput out = m_admin->verify(-1);
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.json["ok"], true);
  EXPECT_EQ(out.json["objects"], 5);
  EXPECT_EQ(out.json["problems"], json::array());
  EXPECT_EQ(out.text, "5 object(s) and 0 base backup chunk(s) verified, 0 problem(s)\n");
}

TEST_F(AdminTest, VerifyDetectsAFlippedByteInAStoredObject) {
  push_segments(1, 3);
  const std::string key = object_key_of(segment_file(1, 2));
  // Past the 72-byte object header and the 40-byte long page header: WAL content.
  flip_byte(object_path(segment_file(1, 2)), 72 + 40 + 100);

  const AdminOutput out = m_admin->verify(-1);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["ok"], false);
  ASSERT_EQ(out.json["problems"].size(), 1u) << out.json.dump(2);
  EXPECT_EQ(out.json["problems"][0]["object"], key);
  EXPECT_EQ(out.json["problems"][0]["object"], "wal/0000000100000000/000000010000000000000002");
  const std::string problem = out.json["problems"][0]["problem"].get<std::string>();
  EXPECT_FALSE(problem.empty());
  EXPECT_NE(out.text.find("FAILED  " + key + ": "), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("1 problem(s)"), std::string::npos) << out.text;

  // The fetch path refuses the same object rather than serve it.
  Fetch fetch(*m_repository, *m_index);
  UniqueFd fd = output("fetched");
  auto got = fetch.get(segment_file(1, 2), fd.get(), true);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::corrupt) << got.error().message;
}

TEST_F(AdminTest, VerifyDetectsADamagedObjectHeader) {
  push_segments(1, 2);
  flip_byte(object_path(segment_file(1, 1)), 0);  // the magic
  const AdminOutput out = m_admin->verify(-1);
  EXPECT_EQ(out.exit_code, 1);
  ASSERT_EQ(out.json["problems"].size(), 1u) << out.json.dump(2);
  EXPECT_EQ(out.json["problems"][0]["object"], object_key_of(segment_file(1, 1)));
}

TEST_F(AdminTest, VerifyReportsObjectsMissingFromEitherSide) {
  push_segments(1, 4);
  store_unindexed(segment_file(1, 5), segment_fixture(1, 5));
  ASSERT_EQ(::unlink(object_path(segment_file(1, 2)).c_str()), 0);
  const AdminOutput out = m_admin->verify(-1);
  EXPECT_EQ(out.exit_code, 1);
  std::map<std::string, std::string> problems;
  for (const auto& p : out.json["problems"]) problems[p["object"].get<std::string>()] = p["problem"].get<std::string>();
  EXPECT_EQ(problems[object_key_of(segment_file(1, 5))], "not in the index (run 'walvault reindex')") << out.json.dump(2);
  EXPECT_EQ(problems[segment_file(1, 2)], "in the index but missing from the repository") << out.json.dump(2);
}

TEST_F(AdminTest, VerifyReportsAGapInsideATimeline) {
  push_segments(1, 2);
  push_segments(5, 5);
  const AdminOutput out = m_admin->verify(-1);
  EXPECT_EQ(out.exit_code, 1);
  // Every missing segment where recovery needs WAL is named (no backup, no retention window:
  // continuity is required from the oldest segment).
  ASSERT_EQ(out.json["problems"].size(), 2u) << out.json.dump(2);
  EXPECT_EQ(out.json["problems"][0]["object"], segment_file(1, 3));
  EXPECT_EQ(out.json["problems"][1]["object"], segment_file(1, 4));
  EXPECT_NE(out.json["problems"][0]["problem"].get<std::string>().find("gap: segment missing where recovery needs it"),
            std::string::npos)
      << out.json.dump(2);
}

TEST_F(AdminTest, PlanRefusesAnInvalidTargetTimeNamingIt) {
  push_segments(1, 3);
  push_backup();
  for (const char* bad : {"yesterday", "2026-02-30 10:00:00", "2026-11-24T10:00:00 CET", ""}) {
    const AdminOutput out = m_admin->plan(request("PLAN", {{"target-time", bad}}));
    EXPECT_EQ(out.exit_code, 1) << bad;
    const std::string expected =
        "--target-time '" + std::string(bad) + "' is not a timestamp (RFC 3339 or 'YYYY-MM-DD HH:MM:SS[+TZ]')";
    EXPECT_EQ(out.json["error"], expected);
    EXPECT_EQ(out.text, expected + "\n");
  }
}

TEST_F(AdminTest, PlanRefusesOtherInvalidTargets) {
  push_segments(1, 3);
  AdminOutput out = m_admin->plan(request("PLAN", {{"target-lsn", "0-3000028"}}));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["error"], "--target-lsn '0-3000028' is not an LSN such as 0/3000028");
  out = m_admin->plan(request("PLAN", {{"target-timeline", "two"}}));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["error"], "--target-timeline 'two' is not 'latest' or a number");
  out = m_admin->plan(request("PLAN", {{"target-timeline", "0"}}));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["error"], "--target-timeline '0' is not 'latest' or a number");
}

TEST_F(AdminTest, PlanFromTheIndex) {
  push_segments(1, 4);
  push_backup();
  const AdminOutput out = m_admin->plan(request("PLAN"));
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.json["reachable"], true);
  EXPECT_EQ(out.json["reason"], nullptr);
  EXPECT_EQ(out.json["timeline"], 1);
  EXPECT_EQ(out.json["backup"]["name"], k_backup_name);
  EXPECT_EQ(out.json["backup"]["start_lsn"], "0/200028");
  EXPECT_EQ(out.json["first_segment"], segment_file(1, 2));
  EXPECT_EQ(out.json["last_segment"], segment_file(1, 4));
  EXPECT_EQ(out.json["segment_count"], 3);
  std::uint64_t bytes = 0;
  for (std::uint64_t n = 2; n <= 4; ++n) bytes += file_size(object_path(segment_file(1, n)));
  EXPECT_EQ(out.json["bytes"], bytes);
  EXPECT_EQ(out.json["missing"], json::array());
  ASSERT_EQ(out.json["timelines"].size(), 1u);
  EXPECT_EQ(out.json["timelines"][0]["first_segment"], segment_file(1, 2));
  EXPECT_EQ(out.json["timelines"][0]["segments"], 3);
  EXPECT_EQ(out.text.rfind("reachable: yes\n", 0), 0u) << out.text;

  // A target after the newest commit (the fixtures hold none): unreachable, exit 1.
  const AdminOutput late = m_admin->plan(request("PLAN", {{"target-time", "2999-01-01 00:00:00+01"}}));
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_EQ(late.json["reachable"], false);
  EXPECT_NE(late.json["reason"].get<std::string>().find("after the newest archived commit"), std::string::npos)
      << late.json["reason"];
}

// Each verb renders its text from its model alone: what the JSON says, the text says, for
// a healthy archive and for one with a gap.
TEST_F(AdminTest, TextAndJsonTellTheSameStory) {
  push_segments(1, 3);
  push_segments(5, 6);  // 4 is missing
  push_backup();
  const AdminOutput listed = m_admin->list(request("LIST"));
  ASSERT_EQ(listed.json["segments"].size(), 5u) << listed.json.dump(2);
  for (const auto& row : listed.json["segments"])
    EXPECT_NE(listed.text.find(row["name"].get<std::string>() + " "), std::string::npos) << listed.text;
  EXPECT_NE(listed.text.find("5 file(s)\n"), std::string::npos) << listed.text;

  const AdminOutput checked = m_admin->check(request("CHECK"));
  EXPECT_EQ(checked.exit_code, 1);
  for (const auto& c : checked.json["checks"])
    EXPECT_NE(checked.text.find(std::string(c["ok"].get<bool>() ? "ok    " : "FAILED") + "  " + c["message"].get<std::string>() +
                                "\n"),
              std::string::npos)
        << checked.text;

  const AdminOutput lines = m_admin->timelines();
  ASSERT_EQ(lines.json["timelines"].size(), 1u);
  EXPECT_EQ(lines.json["timelines"][0]["continuous"], false);
  EXPECT_EQ(lines.json["timelines"][0]["first_gap"], segment_file(1, 4));
  EXPECT_NE(lines.text.find(", GAP at " + segment_file(1, 4) + "\n"), std::string::npos) << lines.text;

  const AdminOutput planned = m_admin->plan(request("PLAN"));
  EXPECT_NE(planned.text.find("to fetch: " + planned.json["segment_count"].dump() + " segments"), std::string::npos)
      << planned.text;
  EXPECT_NE(planned.text.find("base backup: " + planned.json["backup"]["name"].get<std::string>()), std::string::npos)
      << planned.text;
}

}  // namespace
}  // namespace walvault
