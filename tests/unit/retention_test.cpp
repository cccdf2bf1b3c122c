#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "archiver/retention.hpp"
#include "common/core/time_format.hpp"
#include "common/core/plan.hpp"

namespace walvault {
namespace {

constexpr std::uint64_t k_seg = 16ULL << 20;  // 0x1000000
constexpr std::int64_t k_second = 1000000;
constexpr std::int64_t k_hour = 3600 * k_second;
constexpr std::int64_t k_day = 24 * k_hour;
constexpr std::uint64_t k_per_day = 4;                 // one segment archived every 6 hours
constexpr std::int64_t k_segment_time = 6 * k_hour;

// Day 0 begins at 2026-11-01T00:00:00Z. Day d's segments are 4d+1 .. 4d+4; segment n holds
// the commits of [T0 + (n-2)*6h, T0 + (n-1)*6h). The backup of day d starts in segment 4d+1,
// stops in 4d+2 and its STOP TIME is the day boundary T0 + d days.
const std::int64_t k_t0 = *parse_timestamp("2026-11-01T00:00:00Z");

std::int64_t at_day(std::uint64_t d) { return k_t0 + static_cast<std::int64_t>(d) * k_day; }

std::string seg_name(std::uint32_t timeline, std::uint64_t segno) {
  return format_wal_name(segment_from_number(timeline, segno, k_seg));
}

std::string partial_name(std::uint32_t timeline, std::uint64_t segno) { return seg_name(timeline, segno) + ".partial"; }

std::string history_name(std::uint32_t timeline) {
  WalName name;
  name.kind = WalFileKind::history;
  name.timeline = timeline;
  return format_wal_name(name);
}

// A segment whose commits span the 6 hours from `begin`.
IndexedObject seg_from(std::uint32_t timeline, std::uint64_t segno, std::int64_t begin) {
  IndexedObject row;
  row.name = seg_name(timeline, segno);
  row.kind = WalFileKind::segment;
  row.timeline = timeline;
  row.segno = segno;
  row.segment_size = k_seg;
  row.plain_size = k_seg;
  row.stored_size = 100000ULL * timeline + 1000 * segno + 7;  // distinct, so sums name their terms
  row.sha256 = std::string(64, '0');
  row.first_xact_us = begin + k_second;
  row.last_xact_us = begin + k_segment_time - k_second;
  row.xact_count = 10;
  row.stored_at_us = begin + k_segment_time;
  return row;
}

IndexedObject seg(std::uint32_t timeline, std::uint64_t segno) {
  return seg_from(timeline, segno, k_t0 + (static_cast<std::int64_t>(segno) - 2) * k_segment_time);
}

IndexedObject partial(std::uint32_t timeline, std::uint64_t segno) {
  IndexedObject row = seg(timeline, segno);
  row.kind = WalFileKind::partial;
  row.name += ".partial";
  row.stored_size += 3;
  return row;
}

IndexedObject history(std::uint32_t timeline) {
  IndexedObject row;
  row.name = history_name(timeline);
  row.kind = WalFileKind::history;
  row.timeline = timeline;
  row.plain_size = row.stored_size = 40 + timeline;
  row.sha256 = std::string(64, '1');
  return row;
}

// As the indexer records an object it could not decode: no position, no segment size.
IndexedObject unreadable(IndexedObject row) {
  row.sha256 = std::string(k_unreadable_sha256);
  row.segno = 0;
  row.segment_size = 0;
  row.first_xact_us.reset();
  row.last_xact_us.reset();
  row.xact_count = 0;
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

// A backup starting 0x28 into `start_segno` and consistent 0x100 into `stop_segno`.
IndexedBackup backup(std::uint32_t timeline, std::uint64_t start_segno, std::uint64_t stop_segno, std::int64_t stop_us) {
  IndexedBackup b;
  WalName name = segment_from_number(timeline, start_segno, k_seg);
  name.kind = WalFileKind::backup;
  name.backup_offset = 0x28;
  b.name = format_wal_name(name);
  b.timeline = timeline;
  b.start_lsn = start_segno * k_seg + 0x28;
  b.stop_lsn = stop_segno * k_seg + 0x100;
  b.checkpoint_lsn = start_segno * k_seg + 0x60;
  b.label = "backup " + b.name;
  b.start_us = stop_us - k_hour;
  b.stop_us = stop_us;
  return b;
}

IndexedBackup daily(std::uint32_t timeline, std::uint64_t d) {
  return backup(timeline, k_per_day * d + 1, k_per_day * d + 2, at_day(d));
}

std::string backup_name(std::uint32_t timeline, std::uint64_t d) { return daily(timeline, d).name; }

// The .backup file's row: indexed without a position, as the indexer does.
IndexedObject backup_object(const IndexedBackup& b) {
  IndexedObject row;
  row.name = b.name;
  row.kind = WalFileKind::backup;
  row.timeline = b.timeline;
  row.plain_size = 300;
  row.stored_size = 300 + b.start_lsn / k_seg;
  row.sha256 = std::string(64, '2');
  row.stored_at_us = b.stop_us.value_or(0);
  return row;
}

struct Archive {
  std::vector<IndexedObject> objects;
  std::vector<IndexedTimeline> timelines;
  std::vector<IndexedBackup> backups;

  Archive& add(const IndexedBackup& b) {
    backups.push_back(b);
    objects.push_back(backup_object(b));
    return *this;
  }
  Archive& drop(const std::string& name) {
    std::erase_if(objects, [&](const IndexedObject& o) { return o.name == name; });
    return *this;
  }
  Archive& replace(const IndexedObject& row) {
    for (auto& o : objects)
      if (o.name == row.name) o = row;
    return *this;
  }
};

// Ten days on one timeline: segments 1..41 (41 is the first of day 10), a backup each day 0..9.
Archive ten_days() {
  Archive a;
  a.objects = run(1, 1, 41);
  for (std::uint64_t d = 0; d <= 9; ++d) a.add(daily(1, d));
  return a;
}

// Timeline 2 began inside segment 23 (day 5), after that day's backup on timeline 1 had
// stopped: the present path is timeline 1 up to 22, then timeline 2. Timeline 1 went on to
// 26 (its abandoned part), and the promotion archived timeline 1's 23 as a .partial too.
const IndexedTimeline k_tl2{2, 1, 23 * k_seg + 0x1234, "no recovery target specified"};

Archive forked() {
  Archive a;
  a.objects = run(1, 1, 26) + std::vector{partial(1, 23), history(2)} + run(2, 23, 41);
  a.timelines = {k_tl2};
  for (std::uint64_t d = 0; d <= 5; ++d) a.add(daily(1, d));
  for (std::uint64_t d = 6; d <= 9; ++d) a.add(daily(2, d));
  return a;
}

// Whole days in deletion order: each day's .backup file right before its start segment (a
// backup stops being advertised before its WAL goes, so a crash in between is harmless).
std::vector<std::string> days_with_backups(std::uint32_t timeline, std::uint64_t first, std::uint64_t last) {
  std::vector<std::string> out;
  for (std::uint64_t d = first; d <= last; ++d) {
    const std::uint64_t s = k_per_day * d + 1;
    out.insert(out.end(), {backup_name(timeline, d), seg_name(timeline, s), seg_name(timeline, s + 1),
                           seg_name(timeline, s + 2), seg_name(timeline, s + 3)});
  }
  return out;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> without(std::vector<std::string> list, const std::set<std::string>& gone) {
  std::erase_if(list, [&](const std::string& n) { return gone.contains(n); });
  return list;
}

std::vector<std::string> item_names(const std::vector<RetentionItem>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.name);
  return out;
}

std::optional<std::string> reason_of(const PruneDecision& d, const std::string& name) {
  for (const auto* list : {&d.keep, &d.remove})
    for (const auto& i : *list)
      if (i.name == name) return i.reason;
  return std::nullopt;
}

// Position of a removable object: its segment number (a .backup file's start segment).
std::uint64_t position(const std::string& name) {
  auto parsed = parse_wal_name(name);
  return parsed && parsed->kind != WalFileKind::history ? segment_number(*parsed, k_seg) : 0;
}

RetentionPolicy policy(unsigned keep_backups, std::int64_t backup_days_us, std::int64_t wal_days_us) {
  RetentionPolicy p;
  p.keep_backups = keep_backups;
  p.backup_days_us = backup_days_us;
  p.wal_days_us = wal_days_us;
  return p;
}

const RetentionPolicy k_default = policy(1, 30 * k_day, 7 * k_day);
const RetentionPolicy k_short = policy(1, 2 * k_day, 1 * k_day);

// What holds for every decision: every object is either kept or removed, exactly once, with
// a reason; the bytes add up; deletion goes oldest position first.
void check_invariants(const PruneDecision& d, const std::vector<IndexedObject>& objects) {
  if (!d.allowed) {
    EXPECT_FALSE(d.refusal.empty());
    EXPECT_TRUE(d.remove.empty());
    EXPECT_EQ(d.bytes_freed, 0u);
    return;
  }
  EXPECT_EQ(d.refusal, "");
  std::map<std::string, int> seen;
  for (const auto& i : d.keep) {
    EXPECT_FALSE(i.reason.empty()) << "kept without a reason: " << i.name;
    ++seen[i.name];
  }
  std::set<std::string> removed;
  for (const auto& i : d.remove) {
    EXPECT_FALSE(i.reason.empty()) << "removed without a reason: " << i.name;
    ++seen[i.name];
    removed.insert(i.name);
  }
  std::uint64_t bytes = 0;
  for (const auto& o : objects) {
    EXPECT_EQ(seen[o.name], 1) << o.name << " appears " << seen[o.name] << " time(s) across keep and remove";
    if (removed.contains(o.name)) bytes += o.stored_size;
  }
  EXPECT_EQ(seen.size(), objects.size()) << "keep/remove name objects that are not in the index";
  EXPECT_EQ(d.bytes_freed, bytes);
  for (std::size_t i = 1; i < d.remove.size(); ++i) {
    EXPECT_LE(position(d.remove[i - 1].name), position(d.remove[i].name))
        << d.remove[i - 1].name << " is deleted before " << d.remove[i].name;
    // At one position a .backup file goes first: a crash must never leave a backup advertised
    // whose own WAL is already deleted.
    if (position(d.remove[i - 1].name) == position(d.remove[i].name)) {
      EXPECT_FALSE(d.remove[i].name.ends_with(".backup") && !d.remove[i - 1].name.ends_with(".backup"))
          << d.remove[i].name << " is deleted after " << d.remove[i - 1].name << " at the same position";
    }
  }
}

struct RetentionCase {
  std::string name;
  Archive archive;
  RetentionPolicy policy;
  std::int64_t now_us = 0;
  // Expectations.
  bool allowed = true;
  std::string refusal;              // a substring of the refusal
  std::vector<std::string> remove;  // exactly, in order
  std::string window_start;
  std::vector<std::pair<std::string, std::string>> reasons;  // object, substring of its reason
};

void PrintTo(const RetentionCase& c, std::ostream* os) { *os << c.name; }

class RetentionPlan : public ::testing::TestWithParam<RetentionCase> {};

TEST_P(RetentionPlan, Case) {
  const RetentionCase& c = GetParam();
  const PruneDecision d = plan_prune(c.policy, c.now_us, c.archive.objects, c.archive.timelines, c.archive.backups);

  EXPECT_EQ(d.allowed, c.allowed) << d.refusal;
  if (!c.allowed) {
    EXPECT_NE(d.refusal.find(c.refusal), std::string::npos) << "refusal: " << d.refusal;
  }
  EXPECT_EQ(item_names(d.remove), c.remove);
  EXPECT_EQ(d.window_start, c.window_start);
  for (const auto& [object, reason] : c.reasons) {
    auto actual = reason_of(d, object);
    ASSERT_TRUE(actual) << object << " is neither kept nor removed";
    EXPECT_NE(actual->find(reason), std::string::npos) << object << ": '" << *actual << "' lacks '" << reason << "'";
  }
  check_invariants(d, c.archive.objects);
}

std::vector<RetentionCase> retention_cases() {
  std::vector<RetentionCase> cases;
  const std::string before_window = "before the PITR window (starts at ";
  {
    // All ten backups are younger than 30 days; the window starts at day 3's backup, the
    // newest one at least 7 days old. Before it, only what no backup needs goes.
    RetentionCase c;
    c.name = "DefaultPolicyKeepsEveryBackupAndAWeek";
    c.archive = ten_days();
    c.policy = k_default;
    c.now_us = at_day(10);
    c.remove = {seg_name(1, 3), seg_name(1, 4), seg_name(1, 7), seg_name(1, 8), seg_name(1, 11), seg_name(1, 12)};
    c.window_start = seg_name(1, 13);
    c.reasons = {{backup_name(1, 9), "backup: among the newest 1"},
                 {backup_name(1, 0), "backup: younger than " + format_duration(30 * k_day)},
                 {seg_name(1, 1), "needed by backup " + backup_name(1, 0) + " (start to stop)"},
                 {seg_name(1, 14), "needed by backup " + backup_name(1, 3)},
                 {seg_name(1, 15), "PITR window (from " + seg_name(1, 13) + ")"},
                 {seg_name(1, 41), "PITR window"},
                 {seg_name(1, 3), before_window + seg_name(1, 13) + ")"}};
    cases.push_back(c);
  }
  {
    // A second earlier day 3's backup is not yet 7 days old: the window starts at day 2's.
    RetentionCase c;
    c.name = "DefaultPolicyOneSecondBeforeTheBoundary";
    c.archive = ten_days();
    c.policy = k_default;
    c.now_us = at_day(10) - k_second;
    c.remove = {seg_name(1, 3), seg_name(1, 4), seg_name(1, 7), seg_name(1, 8)};
    c.window_start = seg_name(1, 9);
    cases.push_back(c);
  }
  {
    // Backups younger than 2 days (days 8 and 9) are kept; the window starts at day 9's (the
    // newest one at least a day old); day 8's keeps its own start..stop.
    RetentionCase c;
    c.name = "ShortPolicyKeepsTwoDays";
    c.archive = ten_days();
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 7) + std::vector{seg_name(1, 35), seg_name(1, 36)};
    c.window_start = seg_name(1, 37);
    c.reasons = {{backup_name(1, 9), "backup: among the newest 1"},
                 {backup_name(1, 8), "backup: younger than " + format_duration(2 * k_day)},
                 {backup_name(1, 7), "backup beyond the count and older than " + format_duration(2 * k_day)},
                 {seg_name(1, 33), "needed by backup " + backup_name(1, 8)},
                 {seg_name(1, 34), "needed by backup " + backup_name(1, 8)},
                 {seg_name(1, 35), before_window + seg_name(1, 37) + ")"},
                 {seg_name(1, 37), "needed by backup " + backup_name(1, 9)},
                 {seg_name(1, 39), "PITR window"}};
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "ShortPolicyHalfADayLaterKeepsOnlyTheNewest";
    c.archive = ten_days();
    c.policy = k_short;
    c.now_us = at_day(10) + 12 * k_hour;
    c.remove = days_with_backups(1, 0, 8);
    c.window_start = seg_name(1, 37);
    cases.push_back(c);
  }
  {
    // Ten days after the newest backup, the three newest are still kept; each keeps its
    // start..stop, the window starts at the newest.
    RetentionCase c;
    c.name = "KeepThreeNewestRegardlessOfAge";
    c.archive = ten_days();
    c.policy = policy(3, 0, 7 * k_day);
    c.now_us = at_day(20);
    c.remove = days_with_backups(1, 0, 6) + std::vector{seg_name(1, 31), seg_name(1, 32), seg_name(1, 35), seg_name(1, 36)};
    c.window_start = seg_name(1, 37);
    c.reasons = {{backup_name(1, 7), "backup: among the newest 3"},
                 {backup_name(1, 6), "backup beyond the count and older than " + format_duration(0)}};
    cases.push_back(c);
  }
  {
    // No backup is 30 days old: the window starts at the oldest complete backup, which is
    // kept for it; the backups between it and the three newest go, their WAL stays.
    RetentionCase c;
    c.name = "KeepThreeWindowLongerThanTheData";
    c.archive = ten_days();
    c.policy = policy(3, 0, 30 * k_day);
    c.now_us = at_day(10);
    for (std::uint64_t d = 1; d <= 6; ++d) c.remove.push_back(backup_name(1, d));
    c.window_start = seg_name(1, 1);
    c.reasons = {{backup_name(1, 0), "backup: starts the point-in-time window (" + format_duration(30 * k_day) + ")"},
                 {backup_name(1, 7), "backup: among the newest 3"},
                 {seg_name(1, 3), "PITR window (from " + seg_name(1, 1) + ")"}};
    cases.push_back(c);
  }
  {
    // The newest backup at least 3 days old (day 7) anchors the window and is kept although
    // the backup rules (one, or younger than a day) would drop it; day 8's goes, its WAL is
    // inside the window.
    RetentionCase c;
    c.name = "WindowAnchorIsKeptWhateverTheBackupRules";
    c.archive = ten_days();
    c.policy = policy(1, 1 * k_day, 3 * k_day);
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 6) + std::vector{backup_name(1, 8)};
    c.window_start = seg_name(1, 29);
    c.reasons = {{backup_name(1, 7), "backup: starts the point-in-time window (" + format_duration(3 * k_day) + ")"},
                 {backup_name(1, 9), "backup: among the newest 1"},
                 {backup_name(1, 8), "backup beyond the count and older than " + format_duration(1 * k_day)},
                 {seg_name(1, 33), "PITR window (from " + seg_name(1, 29) + ")"}};
    cases.push_back(c);
  }
  {
    // keep_backups 0 still keeps the newest.
    RetentionCase c;
    c.name = "KeepZeroStillKeepsTheNewest";
    c.archive = ten_days();
    c.policy = policy(0, 0, 0);
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 8);
    c.window_start = seg_name(1, 37);
    c.reasons = {{backup_name(1, 9), "backup: among the newest 1"}};
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "WalDaysBeyondAllDataKeepsEverything";
    c.archive = ten_days();
    c.policy = policy(1, 30 * k_day, 100 * k_day);
    c.now_us = at_day(10);
    c.window_start = seg_name(1, 1);
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "WalDaysBeyondAllDataKeepsTheOldestBackup";
    c.archive = ten_days();
    c.policy = policy(1, 2 * k_day, 100 * k_day);
    c.now_us = at_day(10);
    for (std::uint64_t d = 1; d <= 7; ++d) c.remove.push_back(backup_name(1, d));
    c.window_start = seg_name(1, 1);
    c.reasons = {{backup_name(1, 0), "backup: starts the point-in-time window"}};
    cases.push_back(c);
  }
  // Nothing is deleted while the index cannot prove a backup is restorable.
  {
    RetentionCase c;
    c.name = "NoBackupRowsAtAll";
    c.archive.objects = run(1, 1, 41);
    c.policy = k_short;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no complete base backup is known (one whose WAL from start to stop is archived)";
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "OnlyBackupMissesItsStopSegment";
    c.archive.objects = run(1, 1, 41);
    c.archive.add(daily(1, 5)).drop(seg_name(1, 22));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no complete base backup";
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "OnlyBackupMissesItsStartSegment";
    c.archive.objects = run(1, 1, 41);
    c.archive.add(daily(1, 5)).drop(seg_name(1, 21));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no complete base backup";
    cases.push_back(c);
  }
  {
    // An unreadable segment does not count as archived.
    RetentionCase c;
    c.name = "OnlyBackupHasAnUnreadableStopSegment";
    c.archive.objects = run(1, 1, 41);
    c.archive.add(daily(1, 5)).replace(unreadable(seg(1, 22)));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no complete base backup";
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "EveryBackupMissesItsStopSegment";
    c.archive = ten_days();
    for (std::uint64_t d = 0; d <= 9; ++d) c.archive.drop(seg_name(1, k_per_day * d + 2));
    c.policy = k_default;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no complete base backup";
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "NoSegmentAtAll";
    for (std::uint64_t d = 0; d <= 9; ++d) c.archive.add(daily(1, d));
    c.archive.objects.push_back(history(2));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.allowed = false;
    c.refusal = "no WAL segment is archived: nothing to prune";
    cases.push_back(c);
  }
  // Incomplete backups.
  {
    // Day 10's backup is running (its stop segment 42 is not archived): day 9's is the
    // newest; the running one's .backup file is inside the window and stays.
    const IndexedBackup running = backup(1, 41, 42, at_day(10) - k_hour);
    RetentionCase c;
    c.name = "IncompleteNewestBackupDoesNotCount";
    c.archive = ten_days();
    c.archive.add(running);
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 7) + std::vector{seg_name(1, 35), seg_name(1, 36)};
    c.window_start = seg_name(1, 37);
    c.reasons = {{running.name, "backup not complete yet (its WAL is not all archived), inside the window"},
                 {backup_name(1, 9), "backup: among the newest 1"}};
    cases.push_back(c);
  }
  {
    const IndexedBackup running = backup(1, 41, 42, at_day(10) - k_hour);
    RetentionCase c;
    c.name = "IncompleteNewestBackupKeepOne";
    c.archive = ten_days();
    c.archive.add(running);
    c.policy = policy(1, 0, 0);
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 8);
    c.window_start = seg_name(1, 37);
    c.reasons = {{running.name, "backup not complete yet"}, {backup_name(1, 9), "backup: among the newest 1"}};
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "IncompleteBackupBeforeTheWindowGoes";
    c.archive = ten_days();
    c.archive.drop(seg_name(1, 22));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = without(days_with_backups(1, 0, 7), {seg_name(1, 22)}) + std::vector{seg_name(1, 35), seg_name(1, 36)};
    c.window_start = seg_name(1, 37);
    c.reasons = {{backup_name(1, 5), "incomplete backup before the window"}};
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "IncompleteBackupInsideTheWindowStays";
    c.archive = ten_days();
    c.archive.drop(seg_name(1, 22));
    c.policy = k_default;
    c.now_us = at_day(10);
    c.remove = {seg_name(1, 3), seg_name(1, 4), seg_name(1, 7), seg_name(1, 8), seg_name(1, 11), seg_name(1, 12)};
    c.window_start = seg_name(1, 13);
    c.reasons = {{backup_name(1, 5), "backup not complete yet"}, {seg_name(1, 21), "PITR window"}};
    cases.push_back(c);
  }
  // A timeline switch inside segment 23 (see forked()).
  {
    RetentionCase c;
    c.name = "ForkDefaultPolicyKeepsTheAbandonedPartInsideTheWindow";
    c.archive = forked();
    c.policy = k_default;
    c.now_us = at_day(10);
    c.remove = {seg_name(1, 3), seg_name(1, 4), seg_name(1, 7), seg_name(1, 8), seg_name(1, 11), seg_name(1, 12)};
    c.window_start = seg_name(1, 13);
    c.reasons = {{seg_name(1, 20), "PITR window (from " + seg_name(1, 13) + ")"},
                 {seg_name(1, 22), "needed by backup " + backup_name(1, 5)},
                 {seg_name(1, 23), "abandoned timeline 1, inside the window"},
                 {seg_name(1, 26), "abandoned timeline 1, inside the window"},
                 {partial_name(1, 23), "abandoned timeline 1, inside the window"},
                 {seg_name(2, 23), "PITR window"},
                 {seg_name(2, 41), "PITR window"},
                 {history_name(2), "timeline history: always kept"},
                 {backup_name(2, 9), "backup: among the newest 1"}};
    cases.push_back(c);
  }
  {
    // The window starts on timeline 2: timeline 1's abandoned part, its .partial and every
    // segment of the path before the window go; the history stays.
    RetentionCase c;
    c.name = "ForkShortPolicyWindowOnTheNewTimeline";
    c.archive = forked();
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 4) +
               std::vector{backup_name(1, 5), seg_name(1, 21), seg_name(1, 22),
                           seg_name(1, 23), partial_name(1, 23), seg_name(2, 23),
                           seg_name(1, 24), seg_name(2, 24),
                           backup_name(2, 6), seg_name(1, 25), seg_name(2, 25),
                           seg_name(1, 26), seg_name(2, 26),
                           seg_name(2, 27), seg_name(2, 28),
                           backup_name(2, 7), seg_name(2, 29), seg_name(2, 30),
                           seg_name(2, 31), seg_name(2, 32), seg_name(2, 35), seg_name(2, 36)};
    c.window_start = seg_name(2, 37);
    c.reasons = {{seg_name(1, 10), before_window + seg_name(2, 37) + ")"},
                 {seg_name(1, 23), "abandoned timeline 1, before the window"},
                 {partial_name(1, 23), "abandoned timeline 1, before the window"},
                 {seg_name(2, 23), before_window},
                 {seg_name(2, 33), "needed by backup " + backup_name(2, 8)},
                 {history_name(2), "timeline history: always kept"}};
    cases.push_back(c);
  }
  {
    // Day 5's backup (on timeline 1, before the switch) is younger than 5 days: it keeps its
    // start..stop on timeline 1, the abandoned part still goes.
    RetentionCase c;
    c.name = "ForkKeptBackupOnTimeline1KeepsItsSegments";
    c.archive = forked();
    c.policy = policy(1, 5 * k_day, 1 * k_day);
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 4) +
               std::vector{seg_name(1, 23), partial_name(1, 23), seg_name(2, 23), seg_name(1, 24), seg_name(2, 24),
                           seg_name(1, 25), seg_name(1, 26), seg_name(2, 27), seg_name(2, 28), seg_name(2, 31),
                           seg_name(2, 32), seg_name(2, 35), seg_name(2, 36)};
    c.window_start = seg_name(2, 37);
    c.reasons = {{backup_name(1, 5), "backup: younger than"},
                 {seg_name(1, 21), "needed by backup " + backup_name(1, 5)},
                 {seg_name(1, 22), "needed by backup " + backup_name(1, 5)},
                 {seg_name(2, 25), "needed by backup " + backup_name(2, 6)}};
    cases.push_back(c);
  }
  {
    // Two days later the window starts at day 5's backup, before the switch: the abandoned
    // part of timeline 1 is inside the window's LSN range and stays.
    RetentionCase c;
    c.name = "ForkWindowBeforeTheSwitch";
    c.archive = forked();
    c.policy = k_default;
    c.now_us = at_day(12);
    c.remove = {seg_name(1, 3),  seg_name(1, 4),  seg_name(1, 7),  seg_name(1, 8),  seg_name(1, 11),
                seg_name(1, 12), seg_name(1, 15), seg_name(1, 16), seg_name(1, 19), seg_name(1, 20)};
    c.window_start = seg_name(1, 21);
    c.reasons = {{seg_name(1, 23), "abandoned timeline 1, inside the window"},
                 {partial_name(1, 23), "abandoned timeline 1, inside the window"},
                 {seg_name(1, 17), "needed by backup " + backup_name(1, 4)}};
    cases.push_back(c);
  }
  // .partial files and unreadable rows.
  {
    RetentionCase c;
    c.name = "PartialsFollowTheSegmentRule";
    c.archive = ten_days();
    c.archive.objects.push_back(partial(1, 10));
    c.archive.objects.push_back(partial(1, 42));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 7) + std::vector{seg_name(1, 35), seg_name(1, 36)};
    c.remove.insert(std::find(c.remove.begin(), c.remove.end(), seg_name(1, 10)) + 1, partial_name(1, 10));
    c.window_start = seg_name(1, 37);
    c.reasons = {{partial_name(1, 10), "before the"}};
    cases.push_back(c);
  }
  {
    RetentionCase c;
    c.name = "UnreadableRowsAreAlwaysKept";
    c.archive = ten_days();
    c.archive.replace(unreadable(seg(1, 3)));
    c.archive.replace(unreadable(backup_object(daily(1, 0))));
    std::erase_if(c.archive.backups, [](const IndexedBackup& b) { return b.name == backup_name(1, 0); });
    c.archive.objects.push_back(unreadable(partial(1, 5)));
    c.archive.objects.push_back(unreadable(history(2)));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = without(days_with_backups(1, 0, 7), {seg_name(1, 3), backup_name(1, 0)}) +
               std::vector{seg_name(1, 35), seg_name(1, 36)};
    c.window_start = seg_name(1, 37);
    const std::string why = "unreadable object: left for 'walvault verify' and the operator";
    c.reasons = {{seg_name(1, 3), why}, {backup_name(1, 0), why}, {partial_name(1, 5), why}, {history_name(2), why}};
    cases.push_back(c);
  }
  {
    // Day 9's segment 37 is unreadable: day 9's backup is not complete, day 8's is the newest.
    RetentionCase c;
    c.name = "UnreadableSegmentMakesItsBackupIncomplete";
    c.archive = ten_days();
    c.archive.replace(unreadable(seg(1, 37)));
    c.policy = k_short;
    c.now_us = at_day(10);
    c.remove = days_with_backups(1, 0, 7);
    c.window_start = seg_name(1, 33);
    c.reasons = {{backup_name(1, 8), "backup: among the newest 1"},
                 {backup_name(1, 9), "backup not complete yet"},
                 {seg_name(1, 37), "unreadable object"}};
    cases.push_back(c);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Retention, RetentionPlan, ::testing::ValuesIn(retention_cases()),
                         [](const ::testing::TestParamInfo<RetentionCase>& param_info) { return param_info.param.name; });

std::vector<IndexedObject> wal_rows(const std::vector<IndexedObject>& objects) {
  std::vector<IndexedObject> out;
  for (const auto& o : objects)
    if ((o.kind == WalFileKind::segment || o.kind == WalFileKind::partial) && o.sha256 != k_unreadable_sha256) out.push_back(o);
  return out;
}

// Whether the backup's start..stop lies on `path` (as make_plan decides).
bool backup_on_path(const std::vector<PathStep>& path, const IndexedBackup& b) {
  for (std::size_t i = 0; i < path.size(); ++i)
    if (path[i].timeline == b.timeline)
      return b.start_lsn >= path[i].begin_lsn && (i + 1 == path.size() || b.stop_lsn <= path[i + 1].begin_lsn);
  return false;
}

std::string name_on_path(const std::vector<PathStep>& path, std::uint64_t segno) {
  return seg_name(timeline_for_segment(path, segno, k_seg), segno);
}

// After deleting what `d` removes: every kept backup can still be restored to its stop, every
// segment of the present path from the window start on is still there, the newest point is
// reachable from a remaining backup, and so is the oldest point the window promises.
void check_safe(const RetentionPolicy& policy, std::int64_t now_us, const Archive& archive) {
  const PruneDecision d = plan_prune(policy, now_us, archive.objects, archive.timelines, archive.backups);
  ASSERT_TRUE(d.allowed) << d.refusal;
  check_invariants(d, archive.objects);

  std::set<std::string> removed;
  for (const auto& i : d.remove) removed.insert(i.name);
  Archive left;
  left.timelines = archive.timelines;
  for (const auto& o : archive.objects)
    if (!removed.contains(o.name)) left.objects.push_back(o);
  for (const auto& b : archive.backups)
    if (!removed.contains(b.name)) left.backups.push_back(b);
  std::set<std::string> remaining;
  for (const auto& o : wal_rows(left.objects))
    if (o.kind == WalFileKind::segment) remaining.insert(o.name);
  std::set<std::string> original;
  for (const auto& o : wal_rows(archive.objects))
    if (o.kind == WalFileKind::segment) original.insert(o.name);

  // Every kept backup, to its consistency point.
  std::vector<const IndexedBackup*> kept;
  for (const auto& b : archive.backups) {
    auto reason = reason_of(d, b.name);
    if (!reason || !reason->starts_with("backup:")) continue;
    EXPECT_FALSE(removed.contains(b.name));
    kept.push_back(&b);
    auto path = timeline_path(b.timeline, archive.timelines);
    ASSERT_TRUE(path) << path.error().message;
    for (std::uint64_t segno = b.start_lsn / k_seg; segno <= b.stop_lsn / k_seg; ++segno) {
      const std::string name = name_on_path(*path, segno);
      EXPECT_TRUE(remaining.contains(name)) << "backup " << b.name << " lost " << name;
    }
  }
  ASSERT_FALSE(kept.empty()) << "no backup kept";

  // The window, along the present path.
  const std::uint32_t latest = latest_timeline(wal_rows(archive.objects), archive.timelines);
  auto present = timeline_path(latest, archive.timelines);
  ASSERT_TRUE(present) << present.error().message;
  auto window = parse_wal_name(d.window_start);
  ASSERT_TRUE(window) << "window_start '" << d.window_start << "'";
  std::uint64_t newest = 0;
  for (const auto& o : wal_rows(archive.objects))
    if (o.kind == WalFileKind::segment && timeline_for_segment(*present, o.segno, k_seg) == o.timeline)
      newest = std::max(newest, o.segno);
  for (std::uint64_t segno = segment_number(*window, k_seg); segno <= newest; ++segno) {
    const std::string name = name_on_path(*present, segno);
    if (original.contains(name)) {
      EXPECT_TRUE(remaining.contains(name)) << "window lost " << name;
    }
  }

  // Restores on the present timeline from what is left.
  PlanRequest to_end;
  const Plan end = make_plan(to_end, wal_rows(left.objects), left.timelines, left.backups);
  EXPECT_TRUE(end.reachable) << "end of WAL: " << end.reason;

  const std::int64_t oldest_promised = now_us - policy.wal_days_us;
  bool window_is_long_enough = false;  // else it starts at the oldest kept backup
  for (const IndexedBackup* b : kept)
    window_is_long_enough = window_is_long_enough || (backup_on_path(*present, *b) && *b->stop_us <= oldest_promised);
  std::int64_t newest_commit = 0;
  for (const auto& o : wal_rows(archive.objects))
    if (o.last_xact_us && timeline_for_segment(*present, o.segno, k_seg) == o.timeline)
      newest_commit = std::max(newest_commit, *o.last_xact_us);
  if (window_is_long_enough && oldest_promised + k_second < newest_commit) {
    PlanRequest to_time;
    to_time.target.kind = PlanTarget::Kind::time;
    to_time.target.time_us = oldest_promised + k_second;
    const Plan at = make_plan(to_time, wal_rows(left.objects), left.timelines, left.backups);
    EXPECT_TRUE(at.reachable) << "to " << format_timestamp(to_time.target.time_us) << ": " << at.reason;
  }
}

// 400 random policies and clocks, half of them on whole days to land on the boundaries.
void check_random_policies(const std::string& label, const Archive& archive) {
  std::mt19937_64 rng(20261101);
  auto pick = [&](std::int64_t low, std::int64_t high) { return std::uniform_int_distribution<std::int64_t>(low, high)(rng); };
  for (int i = 0; i < 400; ++i) {
    const bool whole = pick(0, 1) == 0;
    auto duration = [&](std::int64_t max_days) { return whole ? pick(0, max_days) * k_day : pick(0, max_days * k_day); };
    const RetentionPolicy p = policy(static_cast<unsigned>(pick(0, 5)), duration(12), duration(12));
    const std::int64_t now = at_day(9) + duration(16);
    SCOPED_TRACE(label + ": keep " + std::to_string(p.keep_backups) + ", backups " + format_duration(p.backup_days_us) +
                 ", wal " + format_duration(p.wal_days_us) + ", now " + format_timestamp(now));
    check_safe(p, now, archive);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RetentionSafety, RandomPoliciesKeepEveryPromise) {
  Archive running = ten_days();
  running.add(backup(1, 41, 42, at_day(10) - k_hour));
  check_random_policies("ten days", ten_days());
  check_random_policies("ten days, a backup running", running);
  check_random_policies("timeline switch", forked());
}

TEST(RetentionSafety, TableArchivesAreSafeAtTheirNow) {
  check_safe(k_default, at_day(10), ten_days());
  check_safe(k_short, at_day(10), ten_days());
  check_safe(k_default, at_day(10), forked());
  check_safe(k_short, at_day(10), forked());
  check_safe(k_default, at_day(12), forked());
}

// After ten days on timeline 1 the operator restored to day 1 (a point-in-time recovery):
// timeline 2 began inside segment 6 and has reached segment 13, with a backup on day 11.
// Timeline 1's abandoned part (6..41) holds higher LSNs than anything on timeline 2 yet.
Archive restored_to_day_1() {
  Archive a = ten_days();
  a.timelines = {{2, 1, 6 * k_seg + 0x1234, "before 2026-11-02 00:00:00+00"}};
  a.objects.push_back(history(2));
  for (std::uint64_t n = 6; n <= 13; ++n)
    a.objects.push_back(seg_from(2, n, at_day(10) + static_cast<std::int64_t>(n - 6) * k_segment_time));
  a.add(backup(2, 10, 11, at_day(11)));
  return a;
}

// Regression: a backup on the abandoned branch (after a point-in-time restore) must not anchor
// the window; before the fix it did, at segment 21, and timeline 2's WAL (6..9, 12, 13: the
// live timeline, including its newest segment) was deleted.
TEST(RetentionFork, AbandonedBranchDoesNotAnchorTheWindow) {
  const Archive a = restored_to_day_1();
  const PruneDecision d = plan_prune(k_default, at_day(12), a.objects, a.timelines, a.backups);
  ASSERT_TRUE(d.allowed) << d.refusal;
  std::set<std::string> removed;
  for (const auto& i : d.remove) removed.insert(i.name);
  for (std::uint64_t n = 6; n <= 13; ++n) EXPECT_FALSE(removed.contains(seg_name(2, n))) << seg_name(2, n);
  for (std::uint64_t n = 5; n <= 5; ++n) EXPECT_FALSE(removed.contains(seg_name(1, n))) << seg_name(1, n);
  check_safe(k_default, at_day(12), a);
}

// Regression: "the newest backup always" means the newest on the present timeline's path,
// not the highest stop LSN (day 9's on the abandoned branch), or timeline 2's only backup
// and its WAL would go and nothing on the present timeline could be restored.
TEST(RetentionFork, NewestBackupIsTheNewestOnThePresentPath) {
  const Archive a = restored_to_day_1();
  const PruneDecision d = plan_prune(policy(1, 0, 0), at_day(12), a.objects, a.timelines, a.backups);
  ASSERT_TRUE(d.allowed) << d.refusal;
  const std::string tl2_backup = backup(2, 10, 11, at_day(11)).name;
  auto reason = reason_of(d, tl2_backup);
  ASSERT_TRUE(reason);
  EXPECT_TRUE(reason->starts_with("backup:")) << tl2_backup << ": " << *reason;
  check_safe(policy(1, 0, 0), at_day(12), a);
}

// The same property over random policies.
TEST(RetentionSafety, RandomPoliciesAfterARestoreToAnEarlierPoint) {
  check_random_policies("restored to day 1", restored_to_day_1());
}

// The window's oldest moment is reachable to one-second granularity: make_plan does not use a
// backup within a second of its STOP TIME (whole seconds), so the first reachable moment is
// one second after the anchor backup's stop.
TEST(RetentionSafety, WindowReachesItsOldestMoment) {
  const Archive a = ten_days();
  const PruneDecision d = plan_prune(k_default, at_day(10), a.objects, a.timelines, a.backups);
  ASSERT_TRUE(d.allowed) << d.refusal;
  std::set<std::string> removed;
  for (const auto& i : d.remove) removed.insert(i.name);
  std::vector<IndexedObject> left;
  for (const auto& o : a.objects)
    if (!removed.contains(o.name)) left.push_back(o);
  PlanRequest request;
  request.target.kind = PlanTarget::Kind::time;
  // The window is `wal_days` to one-second granularity: STOP TIME is written in whole seconds,
  // so make_plan uses a backup only from one second after its stop (docs/retention.md).
  request.target.time_us = at_day(10) - k_default.wal_days_us + k_second;
  const Plan plan = make_plan(request, wal_rows(left), a.timelines, a.backups);
  EXPECT_TRUE(plan.reachable) << plan.reason;
}

// A .partial on the present timeline (pg_receivewal's current segment) is kept, and its reason
// must not call it an abandoned timeline.
TEST(RetentionPlan, PartialOnThePresentPathIsNotAbandoned) {
  Archive a = ten_days();
  a.objects.push_back(partial(1, 42));
  const PruneDecision d = plan_prune(k_short, at_day(10), a.objects, a.timelines, a.backups);
  auto reason = reason_of(d, partial_name(1, 42));
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->find("abandoned"), std::string::npos) << *reason;
}

TEST(RetentionPlanRefusal, EmptyIndex) {
  const PruneDecision d = plan_prune(k_default, at_day(10), {}, {}, {});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refusal, "no WAL segment is archived: nothing to prune");
  EXPECT_TRUE(d.remove.empty());
  EXPECT_TRUE(d.keep.empty());
  EXPECT_EQ(d.window_start, "");
}

TEST(RetentionPlanRefusal, HistoryLoop) {
  Archive a = ten_days();
  a.timelines = {{2, 3, 0x100, "a"}, {3, 2, 0x200, "b"}};
  const PruneDecision d = plan_prune(k_short, at_day(10), a.objects, a.timelines, a.backups);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.refusal, "timeline history loops at timeline 3: nothing is pruned");
  EXPECT_TRUE(d.remove.empty());
}

TEST(RetentionPlan, BytesFreedNamesItsTerms) {
  const Archive a = ten_days();
  const PruneDecision d = plan_prune(k_default, at_day(10), a.objects, a.timelines, a.backups);
  ASSERT_TRUE(d.allowed) << d.refusal;
  // Segments 3, 4, 7, 8, 11, 12 of timeline 1.
  EXPECT_EQ(d.bytes_freed, 6 * 100007u + 1000u * (3 + 4 + 7 + 8 + 11 + 12));
}

TEST(RetentionPlan, InputOrderDoesNotMatter) {
  Archive a = forked();
  const PruneDecision forward = plan_prune(k_short, at_day(10), a.objects, a.timelines, a.backups);
  std::reverse(a.objects.begin(), a.objects.end());
  std::reverse(a.backups.begin(), a.backups.end());
  const PruneDecision backward = plan_prune(k_short, at_day(10), a.objects, a.timelines, a.backups);
  EXPECT_EQ(item_names(forward.remove), item_names(backward.remove));
  EXPECT_EQ(forward.window_start, backward.window_start);
  EXPECT_EQ(forward.bytes_freed, backward.bytes_freed);
}

}  // namespace
}  // namespace walvault
