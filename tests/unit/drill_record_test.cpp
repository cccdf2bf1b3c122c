// DRILL-RESULT: what walvaultd keeps of `walvault drill` (the last one and the last passing
// one, durable across restarts), what it refuses, and what the metrics show of it.
#include <gtest/gtest.h>

#include <fstream>

#include "daemon/drill_record.hpp"
#include "daemon/metrics.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

protocol::Message drill_result(bool ok, const std::string& finished, const std::string& rto) {
  protocol::Message m{"DRILL-RESULT", {}};
  m.set("ok", ok ? "1" : "0").set("started-at", "2026-12-07T01:00:00Z").set("finished-at", finished).set("rto-seconds", rto);
  m.set("backup", "20261207T000000Z");
  if (!ok) m.set("reason", "PostgreSQL stopped during recovery: segment 000000010000000000000004 is corrupt");
  return m;
}

TEST(DrillRecordTest, KeepsTheLastAndTheLastSuccessAcrossARestart) {
  test::TempDir dir("walvault-drill");
  const std::string path = dir / "drill.json";
  {
    DrillRecord record(path);
    EXPECT_TRUE(record.document()["last"].is_null());
    EXPECT_FALSE(record.summary().last_ok.has_value());
    ASSERT_TRUE(record.record(drill_result(true, "2026-12-07T01:02:03Z", "42.5")));
    ASSERT_TRUE(record.record(drill_result(false, "2026-12-07T02:00:00Z", "7")));
  }
  DrillRecord reopened(path);  // as after a restart
  const auto doc = reopened.document();
  EXPECT_EQ(doc["last"]["ok"], false);
  EXPECT_NE(doc["last"]["reason"].get<std::string>().find("000000010000000000000004"), std::string::npos);
  EXPECT_EQ(doc["last_success"]["ok"], true);
  EXPECT_EQ(doc["last_success"]["rto_seconds"], 42.5);
  EXPECT_EQ(doc["last_success"]["backup"], "20261207T000000Z");
  const DrillSummary summary = reopened.summary();
  EXPECT_EQ(summary.last_ok, std::optional<bool>(false));
  EXPECT_EQ(summary.last_success_rto_seconds, std::optional<double>(42.5));
  ASSERT_TRUE(summary.last_success_us);
  EXPECT_EQ(*summary.last_success_us, 1796605323000000LL);  // 2026-12-07T01:02:03Z

  LiveState live;
  live.drill_last_success_us = summary.last_success_us;
  live.drill_rto_seconds = summary.last_success_rto_seconds;
  live.drill_last_ok = summary.last_ok;
  const std::string text = render_metrics(RequestMetrics{}, StateSnapshot{}, live);
  EXPECT_NE(text.find("\nwalvault_drill_last_success_timestamp_seconds 1796605323\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nwalvault_drill_rto_seconds 42.5\n"), std::string::npos);
  EXPECT_NE(text.find("\nwalvault_drill_last_success 0\n"), std::string::npos);
}

TEST(DrillRecordTest, AMalformedReportIsRefusedAndChangesNothing) {
  test::TempDir dir("walvault-drill");
  DrillRecord record(dir / "drill.json");
  ASSERT_TRUE(record.record(drill_result(true, "2026-12-07T01:02:03Z", "1")));
  protocol::Message no_ok{"DRILL-RESULT", {}};
  no_ok.set("started-at", "2026-12-07T01:00:00Z").set("finished-at", "2026-12-07T01:00:01Z");
  for (const auto& bad : {no_ok, drill_result(true, "yesterday", "1")}) {
    auto r = record.record(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::invalid);
    EXPECT_NE(r.error().message.find("finished-at"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(record.document()["last"]["finished_at"], "2026-12-07T01:02:03Z");
  // A negative or non-numeric RTO is not a number the metrics would show.
  ASSERT_TRUE(record.record(drill_result(true, "2026-12-07T03:00:00Z", "-5")));
  EXPECT_TRUE(record.document()["last"]["rto_seconds"].is_null());
}

TEST(DrillRecordTest, ADamagedRecordFileStartsEmpty) {
  test::TempDir dir("walvault-drill");
  const std::string path = dir / "drill.json";
  std::ofstream(path) << "{ not json";
  DrillRecord record(path);
  EXPECT_TRUE(record.document()["last"].is_null());
  ASSERT_TRUE(record.record(drill_result(true, "2026-12-07T01:02:03Z", "3")));
  EXPECT_EQ(DrillRecord(path).document()["last"]["ok"], true);
}

}  // namespace
}  // namespace walvault
