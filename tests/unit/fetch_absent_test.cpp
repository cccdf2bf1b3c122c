// "Archived once, now missing" is damage, never "not there" (DESIGN.md: fail closed). Every
// reader of an object that vanished behind walvault's back, on a fake storage: segments in the
// middle and at the end, .history, .backup, base-backup chunks, the identity file, the index's
// repair and rebuild; and the cases that are truly "not there".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "common/core/object_format.hpp"
#include "common/core/sha256.hpp"
#include "tests/unit/archive_fixture.hpp"
#include "tests/unit/memory_storage.hpp"

namespace walvault {
namespace {

using test::k_mib;
using test::segment_file;
using test::segment_fixture;

constexpr std::string_view k_backup_file = "000000010000000000000002.00000028.backup";

class FetchAbsentTest : public test::ArchiveFixture {
 protected:
  Result<std::unique_ptr<Repository>> open_repository() override {
    return Repository::open(std::make_unique<test::MemoryStorage>(m_objects));
  }

  void SetUp() override {
    test::ArchiveFixture::SetUp();
    if (HasFatalFailure()) return;
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
    auto repaired = m_indexer->repair();  // as walvaultd does before serving
    ASSERT_TRUE(repaired) << repaired.error().message;
    ASSERT_TRUE(m_index->trusted());
  }

  // Three segments of timeline 1, a timeline-2 history and a backup file.
  void push_archive() {
    for (std::uint64_t segno = 1; segno <= 3; ++segno) push(segment_file(1, segno), segment_fixture(1, segno));
    push_text("00000002.history", "1\t0/450000\tno recovery target specified\n");
    push_text(k_backup_file, test::backup_history_text("0/200028", "0/200100", "000000010000000000000002",
                                                       "2026-11-24 09:56:11 UTC", "2026-11-24 09:56:12 UTC"));
  }

  // The object of `name` vanishes behind walvaultd's back.
  void lose(std::string_view name) {
    std::lock_guard lock(m_objects->mutex);
    ASSERT_EQ(m_objects->objects.erase(object_key(*parse_wal_name(name))), 1u) << name;
  }

  Result<std::uint64_t> get(std::string_view name, bool exact = false) {
    UniqueFd out(::open((m_dir / "fetched").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    EXPECT_TRUE(out);
    return m_fetch->get(name, out.get(), exact);
  }

  // A lost object's answer: corrupt (archive-get exits 126 in recovery, 1 in standby), one
  // line naming the object, when it was archived, and that it is gone.
  void expect_lost(std::string_view name, bool exact = false) {
    auto got = get(name, exact);
    ASSERT_FALSE(got) << name << " was served";
    EXPECT_EQ(got.error().kind, ErrorKind::corrupt) << got.error().message;
    const std::string& m = got.error().message;
    EXPECT_NE(m.find("'" + std::string(name) + "' was archived on 20"), std::string::npos) << m;
    EXPECT_NE(m.find("and is gone from repository 'memory:test' (object " + object_key(*parse_wal_name(name)) + ")"),
              std::string::npos)
        << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
  }

  void expect_not_there(std::string_view name, bool exact = false) {
    auto got = get(name, exact);
    ASSERT_FALSE(got) << name << " was served";
    EXPECT_EQ(got.error().kind, ErrorKind::not_found) << got.error().message;
  }

  std::shared_ptr<test::MemoryStorage::Shared> m_objects = std::make_shared<test::MemoryStorage::Shared>();
  std::unique_ptr<Fetch> m_fetch;
};

TEST_F(FetchAbsentTest, ALostSegmentInTheMiddleIsCorruptBothWays) {
  push_archive();
  lose(segment_file(1, 2));
  expect_lost(segment_file(1, 2));
  expect_lost(segment_file(1, 2), /*exact=*/true);
  ASSERT_TRUE(get(segment_file(1, 3)));  // the rest is served
}

// The newest segment has no later one to betray the hole: only the index row tells.
TEST_F(FetchAbsentTest, ALostNewestSegmentIsCorruptNotTheEndOfWal) {
  push_archive();
  lose(segment_file(1, 3));
  expect_lost(segment_file(1, 3));
  expect_lost(segment_file(1, 3), /*exact=*/true);
}

// The worst case: "not there" for a history file makes PostgreSQL pick that timeline again.
TEST_F(FetchAbsentTest, ALostHistoryFileIsCorrupt) {
  push_archive();
  lose("00000002.history");
  expect_lost("00000002.history");
  expect_not_there("00000003.history");  // PostgreSQL's probe for the next timeline
}

TEST_F(FetchAbsentTest, ALostBackupFileIsCorrupt) {
  push_archive();
  lose(k_backup_file);
  expect_lost(k_backup_file);
}

TEST_F(FetchAbsentTest, NamesNeverArchivedAreNotThere) {
  push_archive();
  expect_not_there(segment_file(1, 4));           // the end of WAL during recovery
  expect_not_there(segment_file(1, 4), true);     // pg_rewind's exact lookup
  expect_not_there("00000005.history");           // timeline probe
  expect_not_there(segment_file(2, 4));           // another timeline, nothing archived there
  auto gap = get(segment_file(1, 0));             // below archived ones: a hole, not the end
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().kind, ErrorKind::corrupt) << gap.error().message;
}

// Retention removing a segment on purpose ends an older backup's island of WAL: "not there".
TEST_F(FetchAbsentTest, ASegmentPrunedOnPurposeIsNotThere) {
  push_archive();
  ASSERT_TRUE(m_index->record_pruned(segment_file(1, 1), 1));
  ASSERT_TRUE(m_index->remove_object(segment_file(1, 1)));
  lose(segment_file(1, 1));
  auto got = get(segment_file(1, 1));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::not_found) << got.error().message;
  EXPECT_NE(got.error().message.find("retention removed it"), std::string::npos) << got.error().message;
}

// An unmounted or emptied repository is damage, not an empty archive.
TEST_F(FetchAbsentTest, WithoutTheIdentityFileNothingIsNotThere) {
  push_archive();
  {
    std::lock_guard lock(m_objects->mutex);
    m_objects->objects.clear();
  }
  for (const std::string& name : {segment_file(1, 4), std::string("00000005.history")}) {
    auto got = get(name);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, ErrorKind::corrupt) << got.error().message;
    EXPECT_NE(got.error().message.find("identity file walvault.repo"), std::string::npos) << got.error().message;
  }
  expect_lost(segment_file(1, 1));
}

// An index that missed a write cannot prove a name was never archived.
TEST_F(FetchAbsentTest, AnUntrustedIndexNeverAnswersNotThere) {
  push_archive();
  m_index->record_failure();
  auto got = get(segment_file(1, 4));
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().kind, ErrorKind::not_found) << got.error().message;
  EXPECT_NE(got.error().message.find("run 'walvault reindex'"), std::string::npos) << got.error().message;
  lose(segment_file(1, 2));
  expect_lost(segment_file(1, 2));  // what the index does hold is still believed
}

// A backend that cannot be read is an error, never absence.
TEST_F(FetchAbsentTest, AStorageErrorIsNotAbsence) {
  push_archive();
  m_objects->fail_reads = true;
  for (const std::string& name : {segment_file(1, 2), segment_file(1, 9), std::string("00000007.history")}) {
    auto got = get(name);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, ErrorKind::io) << got.error().message;
  }
  m_objects->fail_reads = false;
}

TEST_F(FetchAbsentTest, ALostBackupChunkIsCorrupt) {
  const std::string key = "backup/20261124T093001Z/chunk-00001.tar";
  auto reader = m_repository->objects().open_listed(key, ReadChecks::expecting(std::string(64, '0')));
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().kind, ErrorKind::corrupt) << reader.error().message;
  EXPECT_NE(reader.error().message.find("'memory:test/" + key + "'"), std::string::npos) << reader.error().message;
  EXPECT_NE(reader.error().message.find("is gone"), std::string::npos) << reader.error().message;
}

// Start-up repair keeps the rows of lost objects (marked missing) and says so.
TEST_F(FetchAbsentTest, RepairRecordsLostObjectsAndKeepsAnsweringCorrupt) {
  push_archive();
  lose(segment_file(1, 2));
  lose("00000002.history");
  auto report = m_indexer->repair();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->lost_count, 2u);
  EXPECT_EQ(report->removed, 0u);
  EXPECT_EQ(report->lost_names, (std::vector<std::string>{segment_file(1, 2), "00000002.history"}));
  auto row = m_index->find(segment_file(1, 2));
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->sha256, k_missing_sha256);
  auto usable = m_index->segments();
  ASSERT_TRUE(usable);
  EXPECT_EQ(usable->size(), 2u) << "a lost segment is a hole, not a usable segment";
  EXPECT_TRUE(m_index->trusted());
  expect_lost(segment_file(1, 2));
  expect_lost("00000002.history");

  // Still lost at the next start-up: said again, answered the same.
  report = m_indexer->repair();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->lost_count, 2u);
  expect_lost(segment_file(1, 2));

  // Put back from a copy: indexed again and served.
  push(segment_file(1, 2), segment_fixture(1, 2));
  ASSERT_TRUE(get(segment_file(1, 2)));
  report = m_indexer->repair();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->lost_count, 1u);
}

// A prune interrupted after its index step: the row goes, nothing is lost.
TEST_F(FetchAbsentTest, RepairDropsRowsOfObjectsRetentionRemoved) {
  push_archive();
  ASSERT_TRUE(m_index->record_pruned(segment_file(1, 1), 1));
  lose(segment_file(1, 1));
  auto report = m_indexer->repair();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->removed, 1u);
  EXPECT_EQ(report->lost_count, 0u);
  expect_not_there(segment_file(1, 1));
}

// `walvault reindex` rebuilds from the repository; it must not shrink the archive silently.
TEST_F(FetchAbsentTest, RebuildReportsWhatTheIndexHadAndTheRepositoryLost) {
  push_archive();
  lose(segment_file(1, 3));
  lose(k_backup_file);
  auto report = m_indexer->rebuild();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->added, 3u);  // two segments and the history
  EXPECT_EQ(report->lost_count, 2u);
  EXPECT_EQ(report->lost_names, (std::vector<std::string>{std::string(k_backup_file), segment_file(1, 3)}));
  expect_lost(segment_file(1, 3));
  expect_lost(k_backup_file);
  // A second rebuild still knows (the rows survive as missing).
  report = m_indexer->rebuild();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->lost_count, 2u);
  expect_lost(segment_file(1, 3));
}

// DESIGN.md: the checksum is checked against the index on the way out. A valid object of other
// content under an archived name (replaced, or two objects swapped) is never served.
TEST_F(FetchAbsentTest, AnObjectReplacedBehindTheIndexIsNotServed) {
  push_archive();
  auto replace = [&](std::string_view name, std::span<const std::byte> content) {
    auto object = build_object(CompressSpec{Codec::zstd, 1}, content, sha256(content));
    ASSERT_TRUE(object) << object.error().message;
    ASSERT_TRUE(test::raw_storage(*m_repository).put(object_key(*parse_wal_name(name)), *object, PutMode::replace));
  };
  replace(segment_file(1, 2), segment_fixture(1, 2, /*fill=*/7));
  auto got = get(segment_file(1, 2));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::corrupt) << got.error().message;
  EXPECT_NE(got.error().message.find("is not the content archived under its name"), std::string::npos) << got.error().message;
  EXPECT_EQ(test::read_bytes_file(m_dir / "fetched").size(), 0u) << "nothing of the wrong content is left for %p";
  replace("00000002.history", as_bytes(std::string_view("1\t0/460000\tno recovery target specified\n")));
  got = get("00000002.history");
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("is not the content archived under its name"), std::string::npos) << got.error().message;
  ASSERT_TRUE(get(segment_file(1, 3))) << "the rest is served";
}

// A fresh index built from the repository alone (the old index file lost too): what the
// archive itself shows still proves the holes.
class FreshIndexTest : public FetchAbsentTest {
 protected:
  Fetch& rebuilt() {
    auto index = Index::open(m_dir / "fresh.db");
    EXPECT_TRUE(index) << index.error().message;
    m_fresh_index = std::move(*index);
    m_fresh_indexer = std::make_unique<Indexer>(*m_repository, *m_fresh_index);
    auto report = m_fresh_indexer->rebuild();
    EXPECT_TRUE(report) << report.error().message;
    m_fresh_fetch = std::make_unique<Fetch>(*m_repository, *m_fresh_index);
    return *m_fresh_fetch;
  }
  Failure failure_of(Fetch& fetch, std::string_view name) {
    UniqueFd out(::open((m_dir / "fetched").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    auto got = fetch.get(name, out.get(), false);
    EXPECT_FALSE(got) << name << " was served";
    return got ? Failure{ErrorKind::internal, "served"} : got.error();
  }
  std::unique_ptr<Index> m_fresh_index;
  std::unique_ptr<Indexer> m_fresh_indexer;
  std::unique_ptr<Fetch> m_fresh_fetch;
};

TEST_F(FreshIndexTest, ASegmentBelowAChildTimelinesBranchPointIsAHole) {
  push_archive();  // 00000002.history: timeline 2 branched at 0/450000, in segment 4
  lose(segment_file(1, 3));
  const Failure f = failure_of(rebuilt(), segment_file(1, 3));
  EXPECT_EQ(f.kind, ErrorKind::corrupt) << f.message;
  EXPECT_NE(f.message.find("timeline 2 branched off timeline 1 after it"), std::string::npos) << f.message;
}

TEST_F(FreshIndexTest, ASegmentBelowAPartialIsAHole) {
  push_text("00000002.history", "1\t0/450000\tno recovery target specified\n");  // promoted inside segment 4
  for (std::uint64_t segno = 1; segno <= 3; ++segno) push(segment_file(1, segno), segment_fixture(1, segno));
  push(segment_file(1, 4) + ".partial", segment_fixture(1, 4));
  lose(segment_file(1, 3));
  Fetch& fetch = rebuilt();
  const Failure f = failure_of(fetch, segment_file(1, 3));
  EXPECT_EQ(f.kind, ErrorKind::corrupt) << f.message;
  EXPECT_NE(f.message.find("the later '" + segment_file(1, 4) + ".partial'"), std::string::npos) << f.message;
  // The segment of the .partial's own number is the end of timeline 1's archived WAL.
  EXPECT_EQ(failure_of(fetch, segment_file(1, 4)).kind, ErrorKind::not_found);
}

TEST_F(FreshIndexTest, AHistoryFileOfATimelineInUseIsAHole) {
  push_archive();
  push(segment_file(2, 4), segment_fixture(2, 4));
  lose("00000002.history");
  Fetch& fetch = rebuilt();
  const Failure f = failure_of(fetch, "00000002.history");
  EXPECT_EQ(f.kind, ErrorKind::corrupt) << f.message;
  EXPECT_NE(f.message.find("timeline 2 is archived"), std::string::npos) << f.message;
  EXPECT_EQ(failure_of(fetch, "00000003.history").kind, ErrorKind::not_found) << "the next timeline is free";
}

TEST_F(FetchAbsentTest, AnotherRepositoryMountedInItsPlaceIsNotAnEmptyArchive) {
  push_archive();
  ASSERT_TRUE(test::raw_storage(*m_repository).put(std::string(k_identity_key),
                                          as_bytes(std::string_view("format=1\nsystem-identifier=999\npg-version=150000\n")),
                                          PutMode::replace));
  auto got = get(segment_file(1, 9));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::corrupt) << got.error().message;
  EXPECT_NE(got.error().message.find("another repository is mounted there"), std::string::npos) << got.error().message;
}

// An object that vanishes while `reindex` reads it is reported lost, not forgotten.
TEST_F(FetchAbsentTest, AnObjectVanishingDuringRebuildIsLost) {
  push_archive();
  const std::string key = object_key(*parse_wal_name(segment_file(1, 2)));
  m_objects->before_get = [&](const std::string& wanted) {
    if (wanted != key) return;
    std::lock_guard lock(m_objects->mutex);
    m_objects->objects.erase(key);
  };
  auto report = m_indexer->rebuild();
  m_objects->before_get = nullptr;
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->lost_count, 1u);
  EXPECT_EQ(report->lost_names, std::vector<std::string>{segment_file(1, 2)});
  expect_lost(segment_file(1, 2));
}

}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

// A stored object whose header is damaged no longer stalls archiving: PostgreSQL's retry
// replaces it when the index does not say it held other content.
TEST_F(FetchAbsentTest, APushReplacesAnObjectWithADamagedHeader) {
  push_archive();
  const std::string key = object_key(*parse_wal_name(segment_file(1, 2)));
  auto damage_header = [&] {
    std::lock_guard lock(m_objects->mutex);
    auto& bytes = m_objects->objects.at(key);
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = std::byte{0};
  };
  damage_header();
  push(segment_file(1, 2), segment_fixture(1, 2));  // PostgreSQL's retry: asserts it succeeds
  ASSERT_TRUE(get(segment_file(1, 2)));
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == segment_fixture(1, 2));

  // Other content than the index recorded: refused, the stored object left as it is.
  damage_header();
  const auto before = m_objects->objects.at(key);
  const std::string path = m_dir / "other";
  test::write_bytes_file(path, segment_fixture(1, 2, /*fill=*/9));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto other = m_ingest->push(segment_file(1, 2), fd.get());
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().kind, ErrorKind::conflict) << other.error().message;
  EXPECT_NE(other.error().message.find("header is damaged"), std::string::npos) << other.error().message;
  EXPECT_TRUE(m_objects->objects.at(key) == before);
}

}  // namespace
}  // namespace walvault
