#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/core/time_format.hpp"
#include "common/core/plan.hpp"

namespace walvault {
namespace {

constexpr std::uint64_t k_seg = 16ULL << 20;  // 0x1000000
constexpr std::int64_t k_second = 1000000;
constexpr std::int64_t k_minute = 60 * k_second;

// 2026-11-24T09:00:00Z: segment N of timeline 1 holds commits from T0 + N minutes to
// T0 + N minutes + 50 seconds.
const std::int64_t k_t0 = *parse_timestamp("2026-11-24T09:00:00Z");

std::string seg_name(std::uint32_t timeline, std::uint64_t segno) {
  return format_wal_name(segment_from_number(timeline, segno, k_seg));
}

IndexedObject seg(std::uint32_t timeline, std::uint64_t segno, bool commits = true) {
  IndexedObject row;
  row.name = seg_name(timeline, segno);
  row.kind = WalFileKind::segment;
  row.timeline = timeline;
  row.segno = segno;
  row.segment_size = k_seg;
  row.plain_size = k_seg;
  row.stored_size = 100000 * timeline + 1000 * segno + 7;  // distinct, so sums name their terms
  row.sha256 = std::string(64, '0');
  row.stored_at_us = k_t0 + static_cast<std::int64_t>(segno) * k_minute + 55 * k_second;
  if (commits) {
    row.first_xact_us = k_t0 + static_cast<std::int64_t>(segno) * k_minute;
    row.last_xact_us = *row.first_xact_us + 50 * k_second;
    row.xact_count = 10;
  }
  return row;
}

IndexedObject partial(std::uint32_t timeline, std::uint64_t segno) {
  IndexedObject row = seg(timeline, segno);
  row.kind = WalFileKind::partial;
  row.name += ".partial";
  return row;
}

std::vector<IndexedObject> run(std::uint32_t timeline, std::uint64_t first, std::uint64_t last) {
  std::vector<IndexedObject> rows;
  for (std::uint64_t n = first; n <= last; ++n) rows.push_back(seg(timeline, n));
  return rows;
}

std::vector<IndexedObject> operator+(std::vector<IndexedObject> a, const std::vector<IndexedObject>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<IndexedObject> without(std::vector<IndexedObject> rows, const std::string& name) {
  std::erase_if(rows, [&](const IndexedObject& r) { return r.name == name; });
  return rows;
}

// A backup that starts 0x28 into segment `segno`, is consistent at 0x100 into it, and
// finished at `stop_us` (unknown when unset).
IndexedBackup backup(std::uint32_t timeline, std::uint64_t segno, std::optional<std::int64_t> stop_us, std::string label = "") {
  IndexedBackup b;
  WalName name = segment_from_number(timeline, segno, k_seg);
  name.kind = WalFileKind::backup;
  name.backup_offset = 0x28;
  b.name = format_wal_name(name);
  b.timeline = timeline;
  b.start_lsn = segno * k_seg + 0x28;
  b.stop_lsn = segno * k_seg + 0x100;
  b.checkpoint_lsn = segno * k_seg + 0x60;
  b.label = label.empty() ? "backup at " + std::to_string(segno) : label;
  b.start_us = stop_us ? std::optional<std::int64_t>(*stop_us - k_second) : std::nullopt;
  b.stop_us = stop_us;
  return b;
}

IndexedBackup backup_at(std::uint32_t timeline, std::uint64_t segno) {
  return backup(timeline, segno, k_t0 + static_cast<std::int64_t>(segno) * k_minute + 10 * k_second);
}

std::vector<std::string> names(std::uint32_t timeline, std::uint64_t first, std::uint64_t last) {
  std::vector<std::string> out;
  for (std::uint64_t n = first; n <= last; ++n) out.push_back(seg_name(timeline, n));
  return out;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::uint64_t stored_bytes(const std::vector<IndexedObject>& rows, const std::vector<std::string>& wanted) {
  const std::set<std::string> set(wanted.begin(), wanted.end());
  std::uint64_t sum = 0;
  for (const auto& r : rows)
    if (r.kind == WalFileKind::segment && set.contains(r.name)) sum += r.stored_size;
  return sum;
}

PlanTarget time_target(std::int64_t us) {
  PlanTarget t;
  t.kind = PlanTarget::Kind::time;
  t.time_us = us;
  return t;
}
PlanTarget lsn_target(std::uint64_t lsn) {
  PlanTarget t;
  t.kind = PlanTarget::Kind::lsn;
  t.lsn = lsn;
  return t;
}
PlanTarget kind_target(PlanTarget::Kind kind, std::string text = "") {
  PlanTarget t;
  t.kind = kind;
  t.text = std::move(text);
  return t;
}

const IndexedTimeline k_tl2{2, 1, 0x4500000, "no recovery target specified"};  // switch inside segment 4
const IndexedTimeline k_tl3{3, 2, 0x7800000, "before 2026-11-24 09:08:00+00"};  // inside segment 7

struct PlanCase {
  std::string name;
  std::vector<IndexedObject> segments;
  std::vector<IndexedTimeline> timelines;
  std::vector<IndexedBackup> backups;
  PlanTarget target;
  std::optional<std::uint32_t> timeline;
  // Expectations.
  bool reachable = false;
  std::string reason;  // a substring of Plan::reason; empty: the reason must be empty
  std::uint32_t plan_timeline = 1;
  std::optional<std::string> backup;  // the chosen backup's name
  std::vector<std::string> segments_expected;
  std::vector<TimelineSpan> spans;
  std::vector<std::string> missing;
};

void PrintTo(const PlanCase& c, std::ostream* os) { *os << c.name; }

class PlanMake : public ::testing::TestWithParam<PlanCase> {};

TEST_P(PlanMake, Case) {
  const PlanCase& c = GetParam();
  PlanRequest request;
  request.target = c.target;
  request.timeline = c.timeline;
  const Plan plan = make_plan(request, c.segments, c.timelines, c.backups);

  EXPECT_EQ(plan.reachable, c.reachable) << plan.reason;
  if (c.reason.empty())
    EXPECT_EQ(plan.reason, "");
  else
    EXPECT_NE(plan.reason.find(c.reason), std::string::npos) << "reason: " << plan.reason;
  EXPECT_EQ(plan.timeline, c.plan_timeline);
  EXPECT_EQ(plan.segment_size, c.segments.empty() ? 0 : k_seg);
  if (c.backup) {
    ASSERT_TRUE(plan.backup.has_value()) << "no backup chosen";
    EXPECT_EQ(plan.backup->name, *c.backup);
  } else {
    EXPECT_FALSE(plan.backup.has_value()) << plan.backup->name;
  }
  if (!c.reachable && c.missing.empty()) return;  // refused before planning segments
  EXPECT_EQ(plan.segments, c.segments_expected);
  EXPECT_EQ(plan.missing, c.missing);
  EXPECT_EQ(plan.bytes, stored_bytes(c.segments, c.segments_expected));
  ASSERT_EQ(plan.spans.size(), c.spans.size());
  for (std::size_t i = 0; i < c.spans.size(); ++i) {
    EXPECT_EQ(plan.spans[i].timeline, c.spans[i].timeline) << "span " << i;
    EXPECT_EQ(plan.spans[i].first_segno, c.spans[i].first_segno) << "span " << i;
    EXPECT_EQ(plan.spans[i].last_segno, c.spans[i].last_segno) << "span " << i;
  }
}

// One timeline, segments 1..10, backups finishing in segments 2 and 6.
const std::vector<IndexedObject> k_line = run(1, 1, 10);
const std::vector<IndexedBackup> k_two_backups = {backup_at(1, 2), backup_at(1, 6)};
// Two timelines: 1 (segments 1..6, it went on after the switch) and 2 (4..7).
const std::vector<IndexedObject> k_fork = run(1, 1, 6) + run(2, 4, 7);

std::vector<PlanCase> plan_cases() {
  std::vector<PlanCase> cases;
  {
    PlanCase c;
    c.name = "EndOfWalUsesTheNewestBackup";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 10);
    c.spans = {{1, 6, 10}};
    cases.push_back(c);
  }
  {
    // Only B(2) finished before 09:04:20; the first commit after it is in segment 4.
    PlanCase c;
    c.name = "TimeTargetPicksTheNewestBackupFinishedBefore";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = time_target(k_t0 + 4 * k_minute + 20 * k_second);
    c.reachable = true;
    c.backup = backup_at(1, 2).name;
    c.segments_expected = names(1, 2, 4);
    c.spans = {{1, 2, 4}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "TimeTargetAfterTheNewerBackup";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = time_target(k_t0 + 8 * k_minute + 20 * k_second);
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 8);
    c.spans = {{1, 6, 8}};
    cases.push_back(c);
  }
  {
    // Exactly the newer backup's stop time: STOP TIME is cut to whole seconds, so the backup
    // may have finished after the target; the older backup is the safe choice.
    PlanCase c;
    c.name = "TimeTargetAtABackupStopTime";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = time_target(*backup_at(1, 6).stop_us);
    c.reachable = true;
    c.backup = backup_at(1, 2).name;
    c.segments_expected = names(1, 2, 6);
    c.spans = {{1, 2, 6}};
    cases.push_back(c);
  }
  {
    // A full second after the stop time the newer backup is certainly complete.
    PlanCase c;
    c.name = "TimeTargetOneSecondAfterABackupStopTime";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = time_target(*backup_at(1, 6).stop_us + k_second);
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 6);
    c.spans = {{1, 6, 6}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "TimeTargetAfterTheNewestCommit";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = time_target(k_t0 + 60 * k_minute);
    c.reason = "after the newest archived commit (" + format_timestamp(k_t0 + 10 * k_minute + 50 * k_second) + ")";
    c.backup = backup_at(1, 6).name;
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "TimeTargetBeforeTheOnlyBackup";
    c.segments = k_line;
    c.backups = {backup_at(1, 6)};
    c.target = time_target(k_t0 + 6 * k_minute);
    c.reason = "the target is before the oldest usable base backup on the path to timeline 1";
    cases.push_back(c);
  }
  {
    // A backup without a known stop time cannot be placed before a time target.
    PlanCase c;
    c.name = "TimeTargetIgnoresABackupWithoutStopTime";
    c.segments = k_line;
    c.backups = {backup(1, 2, std::nullopt, "no time"), backup_at(1, 6)};
    c.target = time_target(k_t0 + 5 * k_minute);
    c.reason = "before the oldest usable base backup";
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "GapNamesTheFirstMissingSegment";
    c.segments = without(without(k_line, seg_name(1, 8)), seg_name(1, 9));
    c.backups = k_two_backups;
    c.reason = "gap in the archive: 2 segment(s) missing, first 000000010000000000000008";
    c.backup = backup_at(1, 6).name;
    c.segments_expected = {seg_name(1, 6), seg_name(1, 7), seg_name(1, 10)};
    c.missing = {seg_name(1, 8), seg_name(1, 9)};
    c.spans = {{1, 6, 10}};
    cases.push_back(c);
  }
  {
    // A gap before the chosen backup does not matter.
    PlanCase c;
    c.name = "GapBeforeTheBackupIsHarmless";
    c.segments = without(k_line, seg_name(1, 3));
    c.backups = k_two_backups;
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 10);
    c.spans = {{1, 6, 10}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "LsnTargetEndsInItsSegment";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = lsn_target(0x8000500);
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 8);
    c.spans = {{1, 6, 8}};
    cases.push_back(c);
  }
  {
    // Inside the newer backup (before its consistency point): the older one is used.
    PlanCase c;
    c.name = "LsnTargetInsideABackupUsesTheOlderOne";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = lsn_target(0x6000050);
    c.reachable = true;
    c.backup = backup_at(1, 2).name;
    c.segments_expected = names(1, 2, 6);
    c.spans = {{1, 2, 6}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "LsnTargetBeyondTheNewestSegment";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = lsn_target(0xB000000);
    c.reason = "the target LSN 0/B000000 is after the newest archived WAL";
    c.backup = backup_at(1, 6).name;
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "LsnTargetBeforeEveryBackup";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = lsn_target(0x2000050);
    c.reason = "before the oldest usable base backup";
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ImmediateEndsAtTheBackupStopSegment";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = kind_target(PlanTarget::Kind::immediate);
    c.reachable = true;
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 6);
    c.spans = {{1, 6, 6}};
    cases.push_back(c);
  }
  {
    // A backup whose stop location is in the segment after its start.
    IndexedBackup spanning = backup_at(1, 6);
    spanning.stop_lsn = 7 * k_seg + 0x200;
    PlanCase c;
    c.name = "ImmediateEndsAtTheStopNotTheStartSegment";
    c.segments = k_line;
    c.backups = {spanning};
    c.target = kind_target(PlanTarget::Kind::immediate);
    c.reachable = true;
    c.backup = spanning.name;
    c.segments_expected = names(1, 6, 7);
    c.spans = {{1, 6, 7}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ImmediateWithoutABackup";
    c.segments = k_line;
    c.target = kind_target(PlanTarget::Kind::immediate);
    c.reason = "--target-immediate needs a base backup and none is known";
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "NoBackupsAtAllStartsFromTheOldestSegment";
    c.segments = run(1, 3, 7);
    c.reachable = true;
    c.reason = "no base backup is known to the index; WAL from the oldest archived segment";
    c.segments_expected = names(1, 3, 7);
    c.spans = {{1, 3, 7}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "XidTargetCoversAllWalWithACaveat";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = kind_target(PlanTarget::Kind::xid, "1234");
    c.reachable = true;
    c.reason = "recovery stops where it finds the transaction";
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 10);
    c.spans = {{1, 6, 10}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "NameTargetCoversAllWalWithACaveat";
    c.segments = k_line;
    c.backups = k_two_backups;
    c.target = kind_target(PlanTarget::Kind::name, "before_upgrade");
    c.reachable = true;
    c.reason = "recovery stops where it finds the restore point";
    c.backup = backup_at(1, 6).name;
    c.segments_expected = names(1, 6, 10);
    c.spans = {{1, 6, 10}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "NothingArchived";
    c.reason = "no WAL segment is archived";
    c.plan_timeline = 0;
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "TimelineWithoutSegments";
    c.segments = k_line;
    c.timeline = 5;
    c.reason = "no archived segment lies on the path to timeline 5";
    c.plan_timeline = 5;
    cases.push_back(c);
  }
  // Two timelines: PostgreSQL reads, for each segment, the newest timeline that began at or
  // before it (XLogFileReadAnyTLI). Timeline 2 began at 0/4500000, inside segment 4.
  {
    PlanCase c;
    c.name = "ForkReadsTheParentBeforeTheSwitchSegment";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1)};
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 7);
    c.spans = {{1, 1, 3}, {2, 4, 7}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ForkExplicitTimeline1IgnoresTimeline2";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1)};
    c.timeline = 1;
    c.reachable = true;
    c.plan_timeline = 1;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 6);
    c.spans = {{1, 1, 6}};
    cases.push_back(c);
  }
  {
    // Timeline 1's .partial of the switch segment is never restored in place of a segment.
    PlanCase c;
    c.name = "ForkPartialIsNotASegment";
    c.segments = run(1, 1, 3) + std::vector{partial(1, 4)} + run(2, 4, 5);
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1)};
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 5);
    c.spans = {{1, 1, 3}, {2, 4, 5}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ForkMissingTheNewTimelinesFirstSegment";
    c.segments = without(k_fork, seg_name(2, 4));
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1)};
    c.reason = "first 000000020000000000000004";
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 5, 7);
    c.missing = {seg_name(2, 4)};
    c.spans = {{1, 1, 3}, {2, 4, 7}};
    cases.push_back(c);
  }
  {
    // A backup taken on timeline 1 after the switch point is not on timeline 2's path.
    PlanCase c;
    c.name = "ForkBackupOnTheAbandonedBranchIsNotUsed";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1), backup_at(1, 5)};
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 7);
    c.spans = {{1, 1, 3}, {2, 4, 7}};
    cases.push_back(c);
  }
  {
    // ... but it is on timeline 1's.
    PlanCase c;
    c.name = "ForkBackupOnTimeline1AfterTheSwitch";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1), backup_at(1, 5)};
    c.timeline = 1;
    c.reachable = true;
    c.plan_timeline = 1;
    c.backup = backup_at(1, 5).name;
    c.segments_expected = names(1, 5, 6);
    c.spans = {{1, 5, 6}};
    cases.push_back(c);
  }
  {
    // A backup taken on timeline 2 starts the plan there; timeline 1 needs no segment.
    PlanCase c;
    c.name = "ForkBackupOnTheNewTimeline";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1), backup_at(2, 6)};
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(2, 6).name;
    c.segments_expected = names(2, 6, 7);
    c.spans = {{2, 6, 7}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ForkTimeTargetInTheNewTimeline";
    c.segments = k_fork;
    c.timelines = {k_tl2};
    c.backups = {backup_at(1, 1)};
    c.target = time_target(k_t0 + 5 * k_minute + 30 * k_second);
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 5);
    c.spans = {{1, 1, 3}, {2, 4, 5}};
    cases.push_back(c);
  }
  {
    // A switch exactly at a segment boundary: the parent's last segment is the one before.
    PlanCase c;
    c.name = "ForkAtASegmentBoundary";
    c.segments = run(1, 1, 5) + run(2, 5, 6);
    c.timelines = {{2, 1, 0x5000000, "at a boundary"}};
    c.backups = {backup_at(1, 1)};
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 4) + names(2, 5, 6);
    c.spans = {{1, 1, 4}, {2, 5, 6}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ThreeTimelinesGiveAThreeStepPath";
    c.segments = run(1, 1, 5) + run(2, 4, 8) + run(3, 7, 9);
    c.timelines = {k_tl2, k_tl3};
    c.backups = {backup_at(1, 1)};
    c.reachable = true;
    c.plan_timeline = 3;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 6) + names(3, 7, 9);
    c.spans = {{1, 1, 3}, {2, 4, 6}, {3, 7, 9}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "ThreeTimelinesTargetTheMiddleOne";
    c.segments = run(1, 1, 5) + run(2, 4, 8) + run(3, 7, 9);
    c.timelines = {k_tl2, k_tl3};
    c.backups = {backup_at(1, 1)};
    c.timeline = 2;
    c.reachable = true;
    c.plan_timeline = 2;
    c.backup = backup_at(1, 1).name;
    c.segments_expected = names(1, 1, 3) + names(2, 4, 8);
    c.spans = {{1, 1, 3}, {2, 4, 8}};
    cases.push_back(c);
  }
  {
    PlanCase c;
    c.name = "HistoryLoopIsRefused";
    c.segments = run(2, 1, 2) + run(3, 1, 2);
    c.timelines = {{2, 3, 0x100, "a"}, {3, 2, 0x200, "b"}};
    c.reason = "timeline history loops at timeline";
    c.plan_timeline = 3;
    cases.push_back(c);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Plan, PlanMake, ::testing::ValuesIn(plan_cases()),
                         [](const ::testing::TestParamInfo<PlanCase>& param_info) { return param_info.param.name; });

TEST(PlanTimelinePath, RootOnly) {
  auto path = timeline_path(1, {});
  ASSERT_TRUE(path) << path.error().message;
  ASSERT_EQ(path->size(), 1u);
  EXPECT_EQ((*path)[0].timeline, 1u);
  EXPECT_EQ((*path)[0].begin_lsn, 0u);
}

TEST(PlanTimelinePath, ThreeSteps) {
  auto path = timeline_path(3, {k_tl3, k_tl2});
  ASSERT_TRUE(path) << path.error().message;
  ASSERT_EQ(path->size(), 3u);
  EXPECT_EQ((*path)[0].timeline, 1u);
  EXPECT_EQ((*path)[0].begin_lsn, 0u);
  EXPECT_EQ((*path)[1].timeline, 2u);
  EXPECT_EQ((*path)[1].begin_lsn, 0x4500000u);
  EXPECT_EQ((*path)[2].timeline, 3u);
  EXPECT_EQ((*path)[2].begin_lsn, 0x7800000u);

  auto middle = timeline_path(2, {k_tl3, k_tl2});
  ASSERT_TRUE(middle);
  ASSERT_EQ(middle->size(), 2u);
  EXPECT_EQ((*middle)[1].timeline, 2u);
}

TEST(PlanTimelinePath, SkippedTimelinesAndAnUnknownRoot) {
  // Timeline 4 forked from 2 (3 was a dead end); 2's own history is not archived here, so 2
  // is the root as far as this repository knows.
  auto path = timeline_path(4, {{4, 2, 0x9000000, "x"}, {3, 2, 0x8000000, "y"}});
  ASSERT_TRUE(path) << path.error().message;
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[0].timeline, 2u);
  EXPECT_EQ((*path)[0].begin_lsn, 0u);
  EXPECT_EQ((*path)[1].timeline, 4u);
  EXPECT_EQ((*path)[1].begin_lsn, 0x9000000u);
}

TEST(PlanTimelinePath, LoopIsCorrupt) {
  auto path = timeline_path(2, {{2, 3, 0x100, "a"}, {3, 2, 0x200, "b"}});
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().kind, ErrorKind::corrupt);
  EXPECT_NE(path.error().message.find("timeline history loops at timeline"), std::string::npos) << path.error().message;
  auto self = timeline_path(2, {{2, 2, 0x100, "self"}});
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().message, "timeline history loops at timeline 2");
}

TEST(PlanLatestTimeline, FromSegmentsAndHistories) {
  EXPECT_EQ(latest_timeline({}, {}), 0u);
  EXPECT_EQ(latest_timeline(run(1, 1, 3), {}), 1u);
  EXPECT_EQ(latest_timeline(k_fork, {k_tl2}), 2u);
  // A history file archived before any segment of its timeline (right after promotion).
  EXPECT_EQ(latest_timeline(run(1, 1, 3), {k_tl2}), 2u);
  EXPECT_EQ(latest_timeline(run(1, 1, 3) + run(3, 7, 7), {k_tl2}), 3u);
}

TEST(PlanFindGaps, ContinuousHasNone) {
  EXPECT_TRUE(find_gaps(1, 0x1000000, k_line, {}).empty());
  EXPECT_TRUE(find_gaps(2, 0x1000028, k_fork, {k_tl2}).empty());
  EXPECT_TRUE(find_gaps(1, 0x1000000, {}, {}).empty());
}

TEST(PlanFindGaps, NamesEachMissingSegmentOnThePath) {
  auto rows = without(without(k_line, seg_name(1, 4)), seg_name(1, 5));
  EXPECT_EQ(find_gaps(1, 0x1000000, rows, {}), (std::vector<std::string>{seg_name(1, 4), seg_name(1, 5)}));
  // Starting after the gap: none.
  EXPECT_TRUE(find_gaps(1, 0x6000000, rows, {}).empty());
  // Starting before the oldest archived segment: those are missing too.
  EXPECT_EQ(find_gaps(1, 0, run(1, 2, 3), {}), (std::vector<std::string>{seg_name(1, 0), seg_name(1, 1)}));
}

TEST(PlanFindGaps, FollowsTheTimelinePath) {
  // Timeline 2's segment 5 is missing; timeline 1's segment 5 (abandoned branch) does not fill it.
  EXPECT_EQ(find_gaps(2, 0x1000000, without(k_fork, seg_name(2, 5)), {k_tl2}),
            (std::vector<std::string>{seg_name(2, 5)}));
  // Timeline 1's segment 3 is on timeline 2's path.
  EXPECT_EQ(find_gaps(2, 0x1000000, without(k_fork, seg_name(1, 3)), {k_tl2}),
            (std::vector<std::string>{seg_name(1, 3)}));
  // Timeline 1's segment 5 is not.
  EXPECT_TRUE(find_gaps(2, 0x1000000, without(k_fork, seg_name(1, 5)), {k_tl2}).empty());
  // ... but it is on timeline 1's own.
  EXPECT_EQ(find_gaps(1, 0x1000000, without(k_fork, seg_name(1, 5)), {k_tl2}),
            (std::vector<std::string>{seg_name(1, 5)}));
  // Three timelines.
  const auto three = run(1, 1, 3) + run(2, 4, 6) + run(3, 7, 9);
  EXPECT_TRUE(find_gaps(3, 0x1000000, three, {k_tl2, k_tl3}).empty());
  EXPECT_EQ(find_gaps(3, 0x1000000, without(three, seg_name(2, 6)), {k_tl2, k_tl3}),
            (std::vector<std::string>{seg_name(2, 6)}));
}

TEST(PlanFindGaps, CommitTimesDoNotMatter) {
  std::vector<IndexedObject> quiet = {seg(1, 1, false), seg(1, 2, false), seg(1, 4, false)};
  EXPECT_EQ(find_gaps(1, 0x1000000, quiet, {}), (std::vector<std::string>{seg_name(1, 3)}));
}

}  // namespace
}  // namespace walvault
