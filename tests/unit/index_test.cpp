#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/core/index.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using test::k_mib;

IndexedObject segment_row(std::uint32_t timeline, std::uint64_t segno, WalFileKind kind = WalFileKind::segment) {
  WalName name = segment_from_number(timeline, segno, 16 * k_mib);
  name.kind = kind;
  IndexedObject row;
  row.name = format_wal_name(name);
  row.kind = kind;
  row.timeline = timeline;
  row.segno = segno;
  row.segment_size = 16 * k_mib;
  row.plain_size = 16 * k_mib;
  row.stored_size = 1000 + segno;
  row.sha256 = std::string(64, 'a');
  row.stored_at_us = 1795512600000000LL + static_cast<std::int64_t>(segno);
  row.first_xact_us = 1795512600000000LL + static_cast<std::int64_t>(segno) * 60000000;
  row.last_xact_us = *row.first_xact_us + 30000000;
  row.xact_count = segno * 3;
  return row;
}

IndexedObject text_row(std::string name, WalFileKind kind, std::uint32_t timeline, std::uint64_t size) {
  IndexedObject row;
  row.name = std::move(name);
  row.kind = kind;
  row.timeline = timeline;
  row.plain_size = size;
  row.stored_size = size + 72;
  row.sha256 = std::string(64, 'b');
  row.stored_at_us = 1795512600000000LL;
  return row;
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

std::vector<std::string> names_of(const std::vector<IndexedObject>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.name);
  return out;
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    m_index.reset();
    auto index = Index::open(m_dir / "index.db");
    ASSERT_TRUE(index) << index.error().message;
    m_index = std::move(*index);
  }

  void put(const IndexedObject& row) {
    auto r = m_index->put_object(row);
    ASSERT_TRUE(r) << r.error().message;
  }

  std::vector<IndexedObject> segments(const SegmentFilter& filter = {}) {
    auto rows = m_index->segments(filter);
    EXPECT_TRUE(rows) << rows.error().message;
    return rows ? *rows : std::vector<IndexedObject>{};
  }

  test::TempDir m_dir{"walvault-index"};
  std::unique_ptr<Index> m_index;
};

TEST_F(IndexTest, OpensEmptyAndUntrusted) {
  EXPECT_EQ(m_index->path(), m_dir / "index.db");
  EXPECT_FALSE(m_index->trusted());
  m_index->set_trusted(true);
  EXPECT_TRUE(m_index->trusted());
  m_index->set_trusted(false);
  EXPECT_FALSE(m_index->trusted());

  EXPECT_TRUE(segments().empty());
  auto names = m_index->names();
  ASSERT_TRUE(names);
  EXPECT_TRUE(names->empty());
  auto totals = m_index->totals();
  ASSERT_TRUE(totals);
  EXPECT_EQ(totals->segments + totals->partials + totals->histories + totals->backups, 0u);
  EXPECT_EQ(totals->plain_bytes, 0u);
  EXPECT_EQ(totals->stored_bytes, 0u);
  auto found = m_index->find("000000010000000000000001");
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(m_index->contains("000000010000000000000001"), false);
}

TEST_F(IndexTest, PutFindContainsKeepEveryField) {
  const IndexedObject row = segment_row(1, 7);
  put(row);
  EXPECT_EQ(m_index->contains(row.name), true);
  EXPECT_EQ(m_index->contains("000000010000000000000008"), false);
  auto found = m_index->find(row.name);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_TRUE(found->has_value());
  expect_same(**found, row);

  // Optional times stay unset, and large values survive the int64 columns.
  IndexedObject bare = segment_row(1, 8);
  bare.first_xact_us.reset();
  bare.last_xact_us.reset();
  bare.xact_count = 0;
  bare.stored_size = (1ULL << 40) + 3;
  bare.stored_at_us = -5;
  put(bare);
  found = m_index->find(bare.name);
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, bare);
}

TEST_F(IndexTest, PutReplacesTheRowOfTheSameName) {
  IndexedObject row = segment_row(1, 7);
  put(row);
  row.sha256 = std::string(64, 'c');
  row.stored_size = 42;
  row.first_xact_us.reset();
  put(row);
  auto found = m_index->find(row.name);
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, row);
  EXPECT_EQ(segments().size(), 1u);
}

TEST_F(IndexTest, SegmentsAreOrderedAndFiltered) {
  // Inserted out of order, with non-segment rows mixed in.
  put(segment_row(2, 5));
  put(segment_row(1, 3));
  put(text_row("00000002.history", WalFileKind::history, 2, 40));
  put(segment_row(1, 1));
  put(segment_row(2, 4));
  put(segment_row(1, 4, WalFileKind::partial));
  put(segment_row(1, 2));
  put(text_row("000000010000000000000001.00000028.backup", WalFileKind::backup, 1, 300));
  put(segment_row(1, 4));

  EXPECT_EQ(names_of(segments()), (std::vector<std::string>{"000000010000000000000001", "000000010000000000000002",
                                                              "000000010000000000000003", "000000010000000000000004",
                                                              "000000010000000000000004.partial", "000000020000000000000004",
                                                              "000000020000000000000005"}));
  const auto all = segments();
  EXPECT_EQ(all[4].kind, WalFileKind::partial);
  EXPECT_EQ(all[4].segno, 4u);

  SegmentFilter tli1;
  tli1.timeline = 1;
  EXPECT_EQ(segments(tli1).size(), 5u);
  SegmentFilter tli2;
  tli2.timeline = 2;
  EXPECT_EQ(names_of(segments(tli2)), (std::vector<std::string>{"000000020000000000000004", "000000020000000000000005"}));
  SegmentFilter tli3;
  tli3.timeline = 3;
  EXPECT_TRUE(segments(tli3).empty());

  SegmentFilter range;
  range.from_segno = 2;
  range.to_segno = 4;
  EXPECT_EQ(names_of(segments(range)), (std::vector<std::string>{"000000010000000000000002", "000000010000000000000003",
                                                                   "000000010000000000000004", "000000010000000000000004.partial",
                                                                   "000000020000000000000004"}));
  SegmentFilter from;
  from.from_segno = 5;
  EXPECT_EQ(names_of(segments(from)), (std::vector<std::string>{"000000020000000000000005"}));
  SegmentFilter to;
  to.to_segno = 1;
  EXPECT_EQ(names_of(segments(to)), (std::vector<std::string>{"000000010000000000000001"}));
  SegmentFilter all_three;
  all_three.timeline = 1;
  all_three.from_segno = 3;
  all_three.to_segno = 3;
  EXPECT_EQ(names_of(segments(all_three)), (std::vector<std::string>{"000000010000000000000003"}));
  SegmentFilter empty_range;
  empty_range.from_segno = 4;
  empty_range.to_segno = 3;
  EXPECT_TRUE(segments(empty_range).empty());

  auto names = m_index->names();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"000000010000000000000001", "000000010000000000000001.00000028.backup",
                                              "000000010000000000000002", "000000010000000000000003",
                                              "000000010000000000000004", "000000010000000000000004.partial",
                                              "00000002.history", "000000020000000000000004", "000000020000000000000005"}));
}

TEST_F(IndexTest, TimelinesAndBackups) {
  ASSERT_TRUE(m_index->put_timeline({3, 2, 0x7800000, "before 2026-11-24 10:00:00+00"}));
  ASSERT_TRUE(m_index->put_timeline({2, 1, 0x4500000, "no recovery target specified"}));
  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines) << timelines.error().message;
  ASSERT_EQ(timelines->size(), 2u);
  EXPECT_EQ((*timelines)[0].timeline, 2u);
  EXPECT_EQ((*timelines)[0].parent, 1u);
  EXPECT_EQ((*timelines)[0].switch_lsn, 0x4500000u);
  EXPECT_EQ((*timelines)[0].reason, "no recovery target specified");
  EXPECT_EQ((*timelines)[1].timeline, 3u);
  EXPECT_EQ((*timelines)[1].parent, 2u);
  EXPECT_EQ((*timelines)[1].switch_lsn, 0x7800000u);
  // Replacing by timeline id.
  ASSERT_TRUE(m_index->put_timeline({3, 2, 0x7900000, "again"}));
  timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  ASSERT_EQ(timelines->size(), 2u);
  EXPECT_EQ((*timelines)[1].switch_lsn, 0x7900000u);
  EXPECT_EQ((*timelines)[1].reason, "again");

  IndexedBackup late;
  late.name = "000000010000000000000006.00000028.backup";
  late.timeline = 1;
  late.start_lsn = 0x6000028;
  late.stop_lsn = 0x6000100;
  late.checkpoint_lsn = 0x6000060;
  late.label = "late";
  late.start_us = 1795514171000000LL;
  late.stop_us = 1795514172000000LL;
  IndexedBackup early;
  early.name = "000000010000000000000002.00000028.backup";
  early.timeline = 1;
  early.start_lsn = 0x2000028;
  early.stop_lsn = 0x2000100;
  early.label = "early, no times";
  ASSERT_TRUE(m_index->put_backup(late));
  ASSERT_TRUE(m_index->put_backup(early));
  auto backups = m_index->backups();
  ASSERT_TRUE(backups) << backups.error().message;
  ASSERT_EQ(backups->size(), 2u);  // ordered by start LSN
  const IndexedBackup& a = (*backups)[0];
  const IndexedBackup& b = (*backups)[1];
  EXPECT_EQ(a.name, early.name);
  EXPECT_EQ(a.label, "early, no times");
  EXPECT_EQ(a.checkpoint_lsn, 0u);
  EXPECT_FALSE(a.start_us.has_value());
  EXPECT_FALSE(a.stop_us.has_value());
  EXPECT_EQ(b.name, late.name);
  EXPECT_EQ(b.timeline, 1u);
  EXPECT_EQ(b.start_lsn, 0x6000028u);
  EXPECT_EQ(b.stop_lsn, 0x6000100u);
  EXPECT_EQ(b.checkpoint_lsn, 0x6000060u);
  EXPECT_EQ(b.label, "late");
  EXPECT_EQ(b.start_us, late.start_us);
  EXPECT_EQ(b.stop_us, late.stop_us);
}

TEST_F(IndexTest, TotalsCountEachKind) {
  put(segment_row(1, 1));
  put(segment_row(1, 2));
  put(segment_row(1, 3, WalFileKind::partial));
  put(text_row("00000002.history", WalFileKind::history, 2, 40));
  put(text_row("000000010000000000000001.00000028.backup", WalFileKind::backup, 1, 300));
  auto totals = m_index->totals();
  ASSERT_TRUE(totals) << totals.error().message;
  EXPECT_EQ(totals->segments, 2u);
  EXPECT_EQ(totals->partials, 1u);
  EXPECT_EQ(totals->histories, 1u);
  EXPECT_EQ(totals->backups, 1u);
  EXPECT_EQ(totals->plain_bytes, 3 * 16 * k_mib + 40 + 300);
  EXPECT_EQ(totals->stored_bytes, (1001u + 1002u + 1003u) + (40u + 72u) + (300u + 72u));
}

TEST_F(IndexTest, ObjectsAreCountedByTheKeyThatEncryptsThem) {
  IndexedObject plain = segment_row(1, 1);
  plain.key_id = 0;
  IndexedObject under_a = segment_row(1, 2);
  under_a.key_id = 0x1a2b3c4d;
  IndexedObject also_a = segment_row(1, 3);
  also_a.key_id = 0x1a2b3c4d;
  IndexedObject unknown = segment_row(1, 4);  // indexed before the key id was recorded
  IndexedObject lost = segment_row(1, 5);     // its object vanished: not counted under any key
  lost.key_id = 0x1a2b3c4d;
  for (const auto& row : {plain, under_a, also_a, unknown, lost}) put(row);
  ASSERT_TRUE(m_index->mark_missing(lost.name));
  EXPECT_EQ(m_index->find(under_a.name).value()->key_id, std::optional<std::uint32_t>(0x1a2b3c4d));
  EXPECT_EQ(m_index->find(unknown.name).value()->key_id, std::nullopt);

  auto counts = m_index->count_by_key_id();
  ASSERT_TRUE(counts) << counts.error().message;
  const std::map<std::optional<std::uint32_t>, std::uint64_t> expected{{std::nullopt, 1}, {0u, 1}, {0x1a2b3c4du, 2}};
  EXPECT_EQ(*counts, expected);

  // rekey moved one object to another key; the counts follow, and the key id survives a reopen.
  ASSERT_TRUE(m_index->set_key_id(under_a.name, 0x5e6f7a8b));
  reopen();
  counts = m_index->count_by_key_id();
  ASSERT_TRUE(counts) << counts.error().message;
  const std::map<std::optional<std::uint32_t>, std::uint64_t> after{{std::nullopt, 1}, {0u, 1}, {0x1a2b3c4du, 1}, {0x5e6f7a8bu, 1}};
  EXPECT_EQ(*counts, after);
  EXPECT_EQ(m_index->find(under_a.name).value()->key_id, std::optional<std::uint32_t>(0x5e6f7a8b));
}

TEST_F(IndexTest, CarryIsKeptWithItsSegment) {
  const std::vector<std::byte> bytes = test::bytes_of("the first half of a record");
  auto r = m_index->put_object(segment_row(1, 5), bytes, 0x5FFFFE8);
  ASSERT_TRUE(r) << r.error().message;
  put(segment_row(1, 6));

  auto carry = m_index->carry(1, 5);
  ASSERT_TRUE(carry) << carry.error().message;
  ASSERT_TRUE(carry->has_value());
  EXPECT_TRUE((*carry)->bytes == bytes);
  EXPECT_EQ((*carry)->lsn, 0x5FFFFE8u);

  // No carry, another timeline, a partial, or nothing at all: none.
  auto none = m_index->carry(1, 6);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  none = m_index->carry(2, 5);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(m_index->put_object(segment_row(1, 7, WalFileKind::partial), bytes, 0x7FFFFE8));
  none = m_index->carry(1, 7);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  none = m_index->carry(1, 99);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());

  // Replacing the row without a carry drops it.
  put(segment_row(1, 5));
  none = m_index->carry(1, 5);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST_F(IndexTest, RemovingAHistoryFileRemovesItsTimeline) {
  put(text_row("00000002.history", WalFileKind::history, 2, 40));
  put(text_row("00000003.history", WalFileKind::history, 3, 80));
  ASSERT_TRUE(m_index->put_timeline({2, 1, 0x4500000, "a"}));
  ASSERT_TRUE(m_index->put_timeline({3, 2, 0x7800000, "b"}));

  auto r = m_index->remove_object("00000002.history");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m_index->contains("00000002.history"), false);
  EXPECT_EQ(m_index->contains("00000003.history"), true);
  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  ASSERT_EQ(timelines->size(), 1u);
  EXPECT_EQ((*timelines)[0].timeline, 3u);
}

TEST_F(IndexTest, RemovingABackupFileRemovesItsBackupRow) {
  put(text_row("000000010000000000000002.00000028.backup", WalFileKind::backup, 1, 300));
  IndexedBackup backup;
  backup.name = "000000010000000000000002.00000028.backup";
  backup.timeline = 1;
  backup.start_lsn = 0x2000028;
  backup.stop_lsn = 0x2000100;
  ASSERT_TRUE(m_index->put_backup(backup));
  put(segment_row(1, 2));

  ASSERT_TRUE(m_index->remove_object("000000010000000000000002.00000028.backup"));
  auto backups = m_index->backups();
  ASSERT_TRUE(backups);
  EXPECT_TRUE(backups->empty());
  EXPECT_EQ(m_index->contains("000000010000000000000002.00000028.backup"), false);
  EXPECT_EQ(m_index->contains("000000010000000000000002"), true);
}

TEST_F(IndexTest, RemovingASegmentLeavesTheRestAndAbsentNamesAreFine) {
  put(segment_row(1, 1));
  put(segment_row(1, 2));
  ASSERT_TRUE(m_index->put_timeline({2, 1, 0x4500000, "a"}));
  ASSERT_TRUE(m_index->remove_object("000000010000000000000001"));
  EXPECT_EQ(names_of(segments()), (std::vector<std::string>{"000000010000000000000002"}));
  ASSERT_TRUE(m_index->remove_object("000000010000000000000001"));   // again
  ASSERT_TRUE(m_index->remove_object("00000009.history"));           // never there
  ASSERT_TRUE(m_index->remove_object("not a wal name at all"));
  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  EXPECT_EQ(timelines->size(), 1u);
}

TEST_F(IndexTest, ClearEmptiesEveryTable) {
  put(segment_row(1, 1));
  put(text_row("00000002.history", WalFileKind::history, 2, 40));
  ASSERT_TRUE(m_index->put_timeline({2, 1, 0x4500000, "a"}));
  IndexedBackup backup;
  backup.name = "000000010000000000000001.00000028.backup";
  ASSERT_TRUE(m_index->put_backup(backup));
  ASSERT_TRUE(m_index->clear());
  EXPECT_TRUE(segments().empty());
  EXPECT_TRUE(m_index->names()->empty());
  EXPECT_TRUE(m_index->timelines()->empty());
  EXPECT_TRUE(m_index->backups()->empty());
  EXPECT_EQ(m_index->totals()->segments, 0u);
  // Usable again afterwards.
  put(segment_row(1, 2));
  EXPECT_EQ(segments().size(), 1u);
}

TEST_F(IndexTest, ReopeningTheSameFileKeepsTheData) {
  const IndexedObject row = segment_row(1, 3);
  ASSERT_TRUE(m_index->put_object(row, test::bytes_of("carried"), 0x3FFFFF0));
  put(text_row("00000002.history", WalFileKind::history, 2, 40));
  ASSERT_TRUE(m_index->put_timeline({2, 1, 0x4500000, "no recovery target specified"}));
  IndexedBackup backup;
  backup.name = "000000010000000000000003.00000028.backup";
  backup.timeline = 1;
  backup.start_lsn = 0x3000028;
  backup.stop_lsn = 0x3000100;
  backup.label = "kept";
  backup.stop_us = 1795514172000000LL;
  ASSERT_TRUE(m_index->put_backup(backup));
  m_index->set_trusted(true);

  reopen();
  EXPECT_FALSE(m_index->trusted()) << "trust is not persisted: a fresh process must repair first";
  auto found = m_index->find(row.name);
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, row);
  EXPECT_EQ(m_index->contains("00000002.history"), true);
  auto timelines = m_index->timelines();
  ASSERT_TRUE(timelines);
  ASSERT_EQ(timelines->size(), 1u);
  EXPECT_EQ((*timelines)[0].switch_lsn, 0x4500000u);
  auto backups = m_index->backups();
  ASSERT_TRUE(backups);
  ASSERT_EQ(backups->size(), 1u);
  EXPECT_EQ((*backups)[0].label, "kept");
  EXPECT_EQ((*backups)[0].stop_us, backup.stop_us);
  auto carry = m_index->carry(1, 3);
  ASSERT_TRUE(carry && carry->has_value());
  EXPECT_TRUE((*carry)->bytes == test::bytes_of("carried"));
  EXPECT_EQ((*carry)->lsn, 0x3FFFFF0u);

  // A second connection to the same file sees the same rows.
  auto second = Index::open(m_dir / "index.db");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ((*second)->contains(row.name), true);
}

TEST_F(IndexTest, OpeningAnUnusablePathFailsNamingIt) {
  auto index = Index::open(m_dir / "no/such/dir/index.db");
  ASSERT_FALSE(index);
  EXPECT_NE(index.error().message.find(m_dir / "no/such/dir/index.db"), std::string::npos) << index.error().message;
}

}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

// A damaged index file (overwritten pages, a clobbered header) is moved aside and replaced by a
// new, empty one that the start-up repair rebuilds; a sound one is left alone.
class DamagedIndexTest : public ::testing::Test {
 protected:
  std::string path() const { return m_dir / "index.db"; }
  void fill() {
    auto index = Index::open(path());
    ASSERT_TRUE(index) << index.error().message;
    for (std::uint64_t segno = 1; segno <= 400; ++segno) ASSERT_TRUE((*index)->put_object(segment_row(1, segno)));
    ASSERT_TRUE((*index)->put_object(segment_row(1, 401)));
  }
  void overwrite(std::size_t offset, std::size_t length) {
    auto data = test::read_bytes_file(path());
    ASSERT_GT(data.size(), offset + length) << "the index is smaller than expected";
    for (std::size_t i = offset; i < offset + length; ++i) data[i] = std::byte{0x55};
    test::write_bytes_file(path(), data);
  }
  test::TempDir m_dir{"walvault-damaged"};
};

TEST_F(DamagedIndexTest, ASoundIndexIsKept) {
  fill();
  auto checked = Index::open_checked(path());
  ASSERT_TRUE(checked) << checked.error().message;
  EXPECT_EQ(checked->moved_aside, "");
  EXPECT_EQ(checked->index->names()->size(), 401u);
}

TEST_F(DamagedIndexTest, OverwrittenPagesAreMovedAsideAndTheIndexStartsEmpty) {
  fill();
  overwrite(2 * 4096, 3 * 4096);
  auto checked = Index::open_checked(path());
  ASSERT_TRUE(checked) << checked.error().message;
  ASSERT_NE(checked->moved_aside, "");
  EXPECT_EQ(checked->moved_aside.rfind(path() + ".damaged.", 0), 0u) << checked->moved_aside;
  EXPECT_NE(checked->damage, "");
  EXPECT_TRUE(test::read_bytes_file(checked->moved_aside).size() > 0) << "the damaged file is kept for inspection";
  auto names = checked->index->names();
  ASSERT_TRUE(names) << names.error().message;
  EXPECT_TRUE(names->empty());
  EXPECT_FALSE(checked->index->trusted()) << "trusted only after the repair rebuilt it";
  EXPECT_TRUE(checked->index->put_object(segment_row(1, 1))) << "the new index is usable";
}

TEST_F(DamagedIndexTest, AClobberedHeaderIsMovedAsideToo) {
  fill();
  overwrite(0, 64);
  auto checked = Index::open_checked(path());
  ASSERT_TRUE(checked) << checked.error().message;
  EXPECT_NE(checked->moved_aside, "");
  EXPECT_TRUE(checked->index->names()->empty());
}

}  // namespace
}  // namespace walvault
