#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/core/time_format.hpp"
#include "tests/unit/archive_fixture.hpp"

namespace walvault {
namespace {

using test::k_mib;
using test::segment_file;
using test::segment_fixture;

constexpr std::string_view k_backup_name = "000000010000000000000002.00000028.backup";
constexpr std::string_view k_history = "1\t0/450000\tno recovery target specified\n";

std::string backup_text() {
  return test::backup_history_text("0/200028", "0/200100", "000000010000000000000002", "2026-11-24 09:56:11 UTC",
                                   "2026-11-24 09:56:12 UTC");
}

void expect_same(const IndexedObject& a, const IndexedObject& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.kind, b.kind) << a.name;
  EXPECT_EQ(a.timeline, b.timeline) << a.name;
  EXPECT_EQ(a.segno, b.segno) << a.name;
  EXPECT_EQ(a.segment_size, b.segment_size) << a.name;
  EXPECT_EQ(a.plain_size, b.plain_size) << a.name;
  EXPECT_EQ(a.stored_size, b.stored_size) << a.name;
  EXPECT_EQ(a.sha256, b.sha256) << a.name;
  EXPECT_EQ(a.stored_at_us, b.stored_at_us) << a.name;
  EXPECT_EQ(a.first_xact_us, b.first_xact_us) << a.name;
  EXPECT_EQ(a.last_xact_us, b.last_xact_us) << a.name;
  EXPECT_EQ(a.xact_count, b.xact_count) << a.name;
}

class IndexerTest : public test::ArchiveFixture {
 protected:
  RepairReport repair() {
    auto report = m_indexer->repair();
    EXPECT_TRUE(report) << report.error().message;
    return report ? *report : RepairReport{};
  }

  bool contains(std::string_view name) {
    auto known = m_index->contains(name);
    EXPECT_TRUE(known) << known.error().message;
    return known && *known;
  }

  struct Snapshot {
    std::vector<std::string> names;
    std::vector<IndexedObject> segments;
    std::vector<IndexedObject> objects;  // every row, by name
    std::vector<IndexedTimeline> timelines;
    std::vector<IndexedBackup> backups;
  };

  Snapshot snapshot() {
    Snapshot s;
    auto names = m_index->names();
    auto segments = m_index->segments();
    auto timelines = m_index->timelines();
    auto backups = m_index->backups();
    EXPECT_TRUE(names && segments && timelines && backups);
    if (!names || !segments || !timelines || !backups) return s;
    s.names = *names;
    s.segments = *segments;
    s.timelines = *timelines;
    s.backups = *backups;
    for (const auto& n : s.names)
      if (auto row = indexed(n)) s.objects.push_back(*row);
    return s;
  }

  void expect_same_snapshot(const Snapshot& a, const Snapshot& b) {
    EXPECT_EQ(a.names, b.names);
    ASSERT_EQ(a.segments.size(), b.segments.size());
    for (std::size_t i = 0; i < a.segments.size(); ++i) expect_same(a.segments[i], b.segments[i]);
    ASSERT_EQ(a.objects.size(), b.objects.size());
    for (std::size_t i = 0; i < a.objects.size(); ++i) expect_same(a.objects[i], b.objects[i]);
    ASSERT_EQ(a.timelines.size(), b.timelines.size());
    for (std::size_t i = 0; i < a.timelines.size(); ++i) {
      EXPECT_EQ(a.timelines[i].timeline, b.timelines[i].timeline);
      EXPECT_EQ(a.timelines[i].parent, b.timelines[i].parent);
      EXPECT_EQ(a.timelines[i].switch_lsn, b.timelines[i].switch_lsn);
      EXPECT_EQ(a.timelines[i].reason, b.timelines[i].reason);
    }
    ASSERT_EQ(a.backups.size(), b.backups.size());
    for (std::size_t i = 0; i < a.backups.size(); ++i) {
      EXPECT_EQ(a.backups[i].name, b.backups[i].name);
      EXPECT_EQ(a.backups[i].timeline, b.backups[i].timeline);
      EXPECT_EQ(a.backups[i].start_lsn, b.backups[i].start_lsn);
      EXPECT_EQ(a.backups[i].stop_lsn, b.backups[i].stop_lsn);
      EXPECT_EQ(a.backups[i].checkpoint_lsn, b.backups[i].checkpoint_lsn);
      EXPECT_EQ(a.backups[i].label, b.backups[i].label);
      EXPECT_EQ(a.backups[i].start_us, b.backups[i].start_us);
      EXPECT_EQ(a.backups[i].stop_us, b.backups[i].stop_us);
    }
  }

  // A repository with two timelines, a backup and a history file, all pushed and indexed.
  void push_two_timelines() {
    for (std::uint64_t segno = 1; segno <= 4; ++segno) push(segment_file(1, segno), segment_fixture(1, segno));
    push_text(k_backup_name, backup_text());
    push_text("00000002.history", k_history);
    for (std::uint64_t segno = 4; segno <= 6; ++segno) push(segment_file(2, segno), segment_fixture(2, segno));
  }
};

TEST_F(IndexerTest, PushIndexesEveryKind) {
  push_two_timelines();
  auto names = m_index->names();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"000000010000000000000001", "000000010000000000000002",
                                              std::string(k_backup_name), "000000010000000000000003",
                                              "000000010000000000000004", "00000002.history", "000000020000000000000004",
                                              "000000020000000000000005", "000000020000000000000006"}));

  const auto content = segment_fixture(2, 5);
  auto row = indexed("000000020000000000000005");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->kind, WalFileKind::segment);
  EXPECT_EQ(row->timeline, 2u);
  EXPECT_EQ(row->segno, 5u);
  EXPECT_EQ(row->segment_size, k_mib);
  EXPECT_EQ(row->plain_size, k_mib);
  EXPECT_EQ(row->sha256, to_hex(sha256(content)));
  EXPECT_EQ(row->stored_size, file_size(object_path("000000020000000000000005")));
  auto info = test::raw_storage(*m_repository).info(object_key_of("000000020000000000000005"));
  ASSERT_TRUE(info && *info);
  EXPECT_EQ(row->stored_at_us, (*info)->modified_us);

  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  ASSERT_EQ(timelines->size(), 1u);
  EXPECT_EQ((*timelines)[0].timeline, 2u);
  EXPECT_EQ((*timelines)[0].parent, 1u);
  EXPECT_EQ((*timelines)[0].switch_lsn, 0x450000u);
  EXPECT_EQ((*timelines)[0].reason, "no recovery target specified");

  auto backups = m_index->backups();
  ASSERT_TRUE(backups);
  ASSERT_EQ(backups->size(), 1u);
  EXPECT_EQ((*backups)[0].name, k_backup_name);
  EXPECT_EQ((*backups)[0].timeline, 1u);
  EXPECT_EQ((*backups)[0].start_lsn, 0x200028u);
  EXPECT_EQ((*backups)[0].stop_lsn, 0x200100u);
  EXPECT_EQ((*backups)[0].label, "pg_basebackup base backup");
  EXPECT_EQ((*backups)[0].stop_us, parse_timestamp("2026-11-24T09:56:12Z"));

  auto backup_row = indexed(k_backup_name);
  ASSERT_TRUE(backup_row);
  EXPECT_EQ(backup_row->kind, WalFileKind::backup);
  EXPECT_EQ(backup_row->plain_size, backup_text().size());
  EXPECT_EQ(backup_row->sha256, to_hex(sha256(as_bytes(std::string_view(backup_text())))));
}

// THE crash: the object became durable, the process died before the index write.
TEST_F(IndexerTest, RepairIndexesAnObjectStoredButNeverIndexed) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  push(segment_file(1, 2), segment_fixture(1, 2));
  ASSERT_TRUE(contains(segment_file(1, 1)));
  ASSERT_TRUE(contains(segment_file(1, 2)));

  const auto third = segment_fixture(1, 3, 7);
  store_unindexed(segment_file(1, 3), third);
  ASSERT_EQ(test::raw_storage(*m_repository).exists(object_key_of(segment_file(1, 3))), true);
  EXPECT_FALSE(contains(segment_file(1, 3)));
  EXPECT_FALSE(m_index->trusted());

  const RepairReport report = repair();
  EXPECT_EQ(report.added, 1u);
  EXPECT_EQ(report.removed, 0u);
  EXPECT_EQ(report.unreadable, 0u);
  EXPECT_TRUE(m_index->trusted());

  auto row = indexed(segment_file(1, 3));
  ASSERT_TRUE(row) << "repair did not index the object";
  EXPECT_EQ(row->name, "000000010000000000000003");
  EXPECT_EQ(row->kind, WalFileKind::segment);
  EXPECT_EQ(row->timeline, 1u);
  EXPECT_EQ(row->segno, 3u);
  EXPECT_EQ(row->segment_size, k_mib);
  EXPECT_EQ(row->plain_size, k_mib);
  EXPECT_EQ(row->sha256, to_hex(sha256(third)));
  EXPECT_NE(row->sha256, to_hex(sha256(segment_fixture(1, 3))));  // the stored content, not a guess
  EXPECT_EQ(row->stored_size, file_size(object_path(segment_file(1, 3))));
  auto info = test::raw_storage(*m_repository).info(object_key_of(segment_file(1, 3)));
  ASSERT_TRUE(info && *info);
  EXPECT_EQ(row->stored_at_us, (*info)->modified_us);

  // The rows pushed before are untouched, and a second repair has nothing to do.
  EXPECT_TRUE(contains(segment_file(1, 1)));
  EXPECT_TRUE(contains(segment_file(1, 2)));
  const RepairReport again = repair();
  EXPECT_EQ(again.added, 0u);
  EXPECT_EQ(again.removed, 0u);
  EXPECT_EQ(again.unreadable, 0u);
}

TEST_F(IndexerTest, RepairIndexesEveryKindLeftBehind) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  store_unindexed(k_backup_name, as_bytes(std::string_view(backup_text())));
  store_unindexed("00000002.history", as_bytes(k_history));
  store_unindexed("000000010000000000000002.partial", segment_fixture(1, 2));

  const RepairReport report = repair();
  EXPECT_EQ(report.added, 3u);
  EXPECT_EQ(report.unreadable, 0u);
  auto backups = m_index->backups();
  ASSERT_TRUE(backups);
  ASSERT_EQ(backups->size(), 1u);
  EXPECT_EQ((*backups)[0].start_lsn, 0x200028u);
  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  ASSERT_EQ(timelines->size(), 1u);
  EXPECT_EQ((*timelines)[0].switch_lsn, 0x450000u);
  auto partial = indexed("000000010000000000000002.partial");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->kind, WalFileKind::partial);
  EXPECT_EQ(partial->segno, 2u);
}

// An object removed by hand is lost, not forgotten: its row stays (marked missing) so that
// archive-get reports it instead of answering "not there" (tests/unit/fetch_absent_test.cpp).
TEST_F(IndexerTest, RepairKeepsRowsWhoseObjectIsGoneAsMissing) {
  push_two_timelines();
  ASSERT_EQ(::unlink(object_path(segment_file(1, 2)).c_str()), 0);

  RepairReport report = repair();
  EXPECT_EQ(report.added, 0u);
  EXPECT_EQ(report.removed, 0u);
  EXPECT_EQ(report.unreadable, 0u);
  EXPECT_EQ(report.lost_count, 1u);
  EXPECT_TRUE(contains(segment_file(1, 2)));
  EXPECT_EQ(indexed(segment_file(1, 2))->sha256, k_missing_sha256);
  EXPECT_TRUE(contains(segment_file(1, 1)));
  EXPECT_TRUE(contains(segment_file(1, 3)));

  ASSERT_EQ(::unlink(object_path("00000002.history").c_str()), 0);
  ASSERT_EQ(::unlink(object_path(k_backup_name).c_str()), 0);
  report = repair();
  EXPECT_EQ(report.lost_count, 3u);
  EXPECT_EQ(report.removed, 0u);
  EXPECT_TRUE(contains("00000002.history"));
  EXPECT_TRUE(contains(std::string(k_backup_name)));
}

TEST_F(IndexerTest, RepairCountsACorruptObjectAsUnreadableAndDoesNotIndexIt) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  // Bad magic: not a walvault object at all.
  std::vector<std::byte> garbage = test::bytes_of("NOTANOBJECT, just some bytes that are long enough for a header.........");
  garbage.resize(200, std::byte{0x5A});
  ASSERT_TRUE(test::raw_storage(*m_repository).put(object_key_of(segment_file(1, 2)), garbage, PutMode::create_only));

  const RepairReport report = repair();
  EXPECT_EQ(report.added, 0u);
  EXPECT_EQ(report.removed, 0u);
  EXPECT_EQ(report.unreadable, 1u);
  // Recorded as existing-but-unreadable: never "not in the archive", never a usable segment.
  EXPECT_TRUE(contains(segment_file(1, 2)));
  auto row = m_index->find(segment_file(1, 2));
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->sha256, k_unreadable_sha256);
  auto usable = m_index->segments();
  ASSERT_TRUE(usable);
  for (const auto& s : *usable) EXPECT_NE(s.name, segment_file(1, 2));
  EXPECT_TRUE(contains(segment_file(1, 1)));

  // It stays unreadable (not removed: the file is there for `verify` to report).
  const RepairReport again = repair();
  EXPECT_EQ(again.unreadable, 1u);
  EXPECT_EQ(again.removed, 0u);
  EXPECT_TRUE(contains(segment_file(1, 2)));
}

TEST_F(IndexerTest, RepairCountsAnUndecodableSegmentAsUnreadable) {
  // A valid object whose content is not WAL: the walvault header is fine, the page header is not.
  std::vector<std::byte> not_wal(k_mib, std::byte{0x11});
  store_unindexed(segment_file(1, 1), not_wal);
  store_unindexed("00000003.history", as_bytes(std::string_view("this is not a history file\n")));
  const RepairReport report = repair();
  EXPECT_EQ(report.added, 0u);
  EXPECT_EQ(report.unreadable, 2u);
  EXPECT_TRUE(contains(segment_file(1, 1)));
  EXPECT_TRUE(contains("00000003.history"));
}

TEST_F(IndexerTest, RepairIgnoresStrayFiles) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  // Not WAL names, or WAL names in the wrong directory.
  ASSERT_TRUE(test::raw_storage(*m_repository).put("wal/0000000100000000/README", test::bytes_of("hello"), PutMode::create_only));
  ASSERT_TRUE(test::raw_storage(*m_repository).put("wal/000000010000000000000005", test::bytes_of("misplaced"), PutMode::create_only));
  const RepairReport report = repair();
  EXPECT_EQ(report.added, 0u);
  EXPECT_EQ(report.removed, 0u);
  EXPECT_EQ(report.unreadable, 0u);
  EXPECT_FALSE(contains("000000010000000000000005"));
}

TEST_F(IndexerTest, RebuildAfterClearGivesTheSameRows) {
  push_two_timelines();
  const Snapshot before = snapshot();
  ASSERT_EQ(before.names.size(), 9u);
  ASSERT_EQ(before.segments.size(), 7u);
  ASSERT_EQ(before.timelines.size(), 1u);
  ASSERT_EQ(before.backups.size(), 1u);

  ASSERT_TRUE(m_index->clear());
  EXPECT_TRUE(snapshot().names.empty());
  auto report = m_indexer->rebuild();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->added, 9u);
  EXPECT_EQ(report->removed, 0u);
  EXPECT_EQ(report->unreadable, 0u);
  EXPECT_TRUE(m_index->trusted());
  expect_same_snapshot(before, snapshot());

  // Rebuilding a full index (no clear first) gives the same again.
  report = m_indexer->rebuild();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->added, 9u);
  expect_same_snapshot(before, snapshot());

  // And so does a fresh index file built from the repository alone.
  auto fresh = Index::open(m_dir / "fresh.db");
  ASSERT_TRUE(fresh) << fresh.error().message;
  Indexer fresh_indexer(*m_repository, **fresh);
  auto fresh_report = fresh_indexer.rebuild();
  ASSERT_TRUE(fresh_report) << fresh_report.error().message;
  EXPECT_EQ(fresh_report->added, 9u);
  auto fresh_segments = (*fresh)->segments();
  ASSERT_TRUE(fresh_segments);
  ASSERT_EQ(fresh_segments->size(), before.segments.size());
  for (std::size_t i = 0; i < before.segments.size(); ++i) expect_same((*fresh_segments)[i], before.segments[i]);
}

TEST_F(IndexerTest, RebuildReportsRowsOfObjectsThatAreGone) {
  push_two_timelines();
  // A row for an object the repository never held.
  IndexedObject ghost = *indexed(segment_file(1, 1));
  ghost.name = segment_file(1, 9);
  ghost.segno = 9;
  ASSERT_TRUE(m_index->put_object(ghost));
  auto report = m_indexer->rebuild();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->added, 9u);
  EXPECT_EQ(report->lost_count, 1u);
  EXPECT_EQ(report->lost_names, std::vector<std::string>{segment_file(1, 9)});
  EXPECT_EQ(indexed(segment_file(1, 9))->sha256, k_missing_sha256);
}

TEST_F(IndexerTest, DuplicatePushIndexesAnObjectTheIndexMissed) {
  const auto content = segment_fixture(1, 1);
  store_unindexed(segment_file(1, 1), content);
  EXPECT_FALSE(contains(segment_file(1, 1)));
  push(segment_file(1, 1), content);  // PostgreSQL retrying after the crash
  EXPECT_TRUE(contains(segment_file(1, 1)));
}

class IndexerFetchTest : public IndexerTest {
 protected:
  void SetUp() override {
    IndexerTest::SetUp();
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }

  Result<std::uint64_t> get(std::string_view name, bool exact) {
    UniqueFd out = output("fetched");
    return m_fetch->get(name, out.get(), exact);
  }

  std::unique_ptr<Fetch> m_fetch;
};

TEST_F(IndexerFetchTest, AnObjectAnotherWriterStoredIsServedThoughTheIndexLacksIt) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  // Stored by another walvaultd sharing the repository (a standby's sidecar): in storage, not
  // in this daemon's index.
  const auto hidden = segment_fixture(1, 2, 3);
  store_unindexed(segment_file(1, 2), hidden);
  m_index->set_trusted(true);

  // A miss in the index is confirmed against storage (one existence check, no LIST), so the
  // object is served, never answered "not there".
  auto recovery = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_TRUE(recovery) << recovery.error().message;
  EXPECT_EQ(*recovery, k_mib);
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == hidden);

  // Exact lookups (pg_rewind's real names) always ask storage.
  auto exact = get(segment_file(1, 2), /*exact=*/true);
  ASSERT_TRUE(exact) << exact.error().message;
  EXPECT_EQ(*exact, k_mib);
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == hidden);

  // An indexed name is served either way.
  auto indexed_get = get(segment_file(1, 1), /*exact=*/false);
  ASSERT_TRUE(indexed_get) << indexed_get.error().message;
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == segment_fixture(1, 1));

  // A name that is nowhere: not found both ways.
  auto nowhere = get(segment_file(1, 7), false);
  ASSERT_FALSE(nowhere);
  EXPECT_EQ(nowhere.error().kind, ErrorKind::not_found);
  auto nowhere_exact = get(segment_file(1, 7), true);
  ASSERT_FALSE(nowhere_exact);
  EXPECT_EQ(nowhere_exact.error().kind, ErrorKind::not_found);
}

TEST_F(IndexerFetchTest, UntrustedIndexFallsThroughToStorage) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  const auto hidden = segment_fixture(1, 2, 3);
  store_unindexed(segment_file(1, 2), hidden);
  m_index->set_trusted(false);
  auto recovery = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_TRUE(recovery) << recovery.error().message;
  EXPECT_EQ(*recovery, k_mib);
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == hidden);
}

TEST_F(IndexerFetchTest, RepairMakesTheIndexTrustworthyAgain) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  const auto hidden = segment_fixture(1, 2, 3);
  store_unindexed(segment_file(1, 2), hidden);
  ASSERT_EQ(repair().added, 1u);
  ASSERT_TRUE(m_index->trusted());
  auto recovery = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_TRUE(recovery) << recovery.error().message;
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == hidden);
}

// After repair, a stored object that could not be decoded is "unreadable", not absent: a
// recovery-mode GET must fail loudly (archive-get exits 126 and recovery stops) instead of
// answering "not in the archive" (exit 1), which PostgreSQL takes as the end of the archive
// and so ends recovery early, before the corrupt segment, without an error.
TEST_F(IndexerFetchTest, CorruptObjectAfterRepairIsNotAnsweredAsMissing) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  std::vector<std::byte> garbage(300, std::byte{0x5A});
  ASSERT_TRUE(test::raw_storage(*m_repository).put(object_key_of(segment_file(1, 2)), garbage, PutMode::create_only));
  ASSERT_EQ(repair().unreadable, 1u);

  auto exact = get(segment_file(1, 2), /*exact=*/true);
  ASSERT_FALSE(exact);
  EXPECT_NE(exact.error().kind, ErrorKind::not_found) << exact.error().message;

  auto recovery = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_FALSE(recovery);
  EXPECT_NE(recovery.error().kind, ErrorKind::not_found)
      << "a corrupt archived segment was answered as missing: " << recovery.error().message;
}

// During recovery a hole is not the end of WAL: a segment missing below an archived later one
// on the same timeline is a hard error (archive-get exits 126 and PostgreSQL stops), while a
// segment past the newest one is simply "not there".
TEST_F(IndexerFetchTest, ASegmentMissingBelowALaterOneIsAGapNotTheEndOfWal) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  push(segment_file(1, 3), segment_fixture(1, 3));
  m_index->set_trusted(true);
  auto hole = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_FALSE(hole);
  EXPECT_EQ(hole.error().kind, ErrorKind::corrupt);
  EXPECT_NE(hole.error().message.find("a gap, not the end of WAL"), std::string::npos) << hole.error().message;
  EXPECT_NE(hole.error().message.find(segment_file(1, 3)), std::string::npos) << hole.error().message;
  auto end = get(segment_file(1, 4), /*exact=*/false);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().kind, ErrorKind::not_found);
  // Exact requests (pg_rewind's names) answer exactly what is stored.
  auto exact = get(segment_file(1, 2), /*exact=*/true);
  ASSERT_FALSE(exact);
  EXPECT_EQ(exact.error().kind, ErrorKind::not_found);
  // A segment retention pruned on purpose (the end of an older backup's island) is the end of
  // WAL for that restore, not a hole.
  ASSERT_TRUE(m_index->record_pruned(segment_file(1, 2), 1));
  auto pruned = get(segment_file(1, 2), /*exact=*/false);
  ASSERT_FALSE(pruned);
  EXPECT_EQ(pruned.error().kind, ErrorKind::not_found) << pruned.error().message;
}


}  // namespace
}  // namespace walvault
