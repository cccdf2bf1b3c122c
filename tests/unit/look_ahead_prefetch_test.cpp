// Look-ahead push (a pg_wal directory of fixtures, real inotify) and prefetch during recovery
// (a real repository and spool): what each does, and what each must never do.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "archiver/look_ahead.hpp"
#include "common/core/crc32c.hpp"
#include "restorer/prefetch.hpp"
#include "tests/unit/archive_fixture.hpp"

namespace walvault {
namespace {

using test::k_mib;
using test::segment_file;
using test::segment_fixture;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// ---- which names recovery asks for next ----------------------------------------------------

// Timeline 2 branched off 1 in segment 5, timeline 3 off 2 in segment 8; timeline 4 off 1 in
// segment 3 (a sibling: the newest number, but not a descendant of 2).
std::vector<IndexedTimeline> branches() {
  return {{2, 1, 5 * k_mib + 0x158, ""}, {3, 2, 8 * k_mib + 0x28, ""}, {4, 1, 3 * k_mib + 0x100, ""}};
}

TEST(PrefetchPlan, RecoveryHeadsForTheNewestDescendant) {
  EXPECT_EQ(newest_descendant(branches(), 2), 3u);
  EXPECT_EQ(newest_descendant(branches(), 3), 3u);
  EXPECT_EQ(newest_descendant(branches(), 1), 4u) << "timeline 4 descends from 1 and is the newest";
  EXPECT_EQ(newest_descendant({}, 1), 1u);
}

TEST(PrefetchPlan, EachSegmentOnTheNewestTimelineThatHasBegunByThen) {
  auto names = predict_segments(branches(), 1, 3, k_mib, 3, 7);
  std::vector<std::string> got;
  for (const auto& n : names) got.push_back(format_wal_name(n));
  EXPECT_EQ(got, (std::vector<std::string>{segment_file(1, 4), segment_file(2, 5), segment_file(2, 6), segment_file(2, 7),
                                           segment_file(3, 8), segment_file(3, 9), segment_file(3, 10)}));
  // Pinned to timeline 1 (recovery_target_timeline = 'current'): it stays there.
  names = predict_segments(branches(), 1, 5, k_mib, 1, 2);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(format_wal_name(names[0]), segment_file(1, 6));
  // Timeline 2 is not on timeline 4's path: no prediction at all.
  EXPECT_TRUE(predict_segments(branches(), 2, 6, k_mib, 4, 3).empty());
  EXPECT_TRUE(predict_segments(branches(), 1, 3, 12345, 3, 3).empty()) << "not a segment size";
}

// ---- look-ahead ---------------------------------------------------------------------------

class LookAheadTest : public test::ArchiveFixture {
 protected:
  void SetUp() override {
    test::ArchiveFixture::SetUp();
    m_index->set_trusted(true);
    std::filesystem::create_directories(status_dir());
    m_ingest->set_ahead_registry(&m_registry);
  }
  void TearDown() override {
    if (m_look_ahead) m_look_ahead->stop();
  }

  std::string pgdata() const { return m_dir / "pgdata"; }
  std::string status_dir() const { return pgdata() + "/pg_wal/archive_status"; }
  std::string wal_path(const std::string& name) const { return pgdata() + "/pg_wal/" + name; }

  // What PostgreSQL does when a segment is complete: the file, then its .ready.
  void complete_segment(std::uint64_t segno) {
    test::write_bytes_file(wal_path(segment_file(1, segno)), segment_fixture(1, segno));
    test::write_bytes_file(status_dir() + "/" + segment_file(1, segno) + ".ready", {});
  }

  void start(unsigned workers = 2) {
    m_look_ahead = std::make_unique<LookAhead>(*m_ingest, *m_index, m_registry, pgdata(), workers);
    m_look_ahead->start();
  }

  // Name -> inode and mtime of every status file.
  std::map<std::string, std::pair<ino_t, std::int64_t>> status_files() const {
    std::map<std::string, std::pair<ino_t, std::int64_t>> files;
    for (const auto& e : std::filesystem::directory_iterator(status_dir())) {
      struct stat st {};
      EXPECT_EQ(::stat(e.path().c_str(), &st), 0);
      files[e.path().filename()] = {st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
    }
    return files;
  }

  Result<PushOutcome> postgres_pushes(std::uint64_t segno) {
    UniqueFd fd(::open(wal_path(segment_file(1, segno)).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd);
    return m_ingest->push(segment_file(1, segno), fd.get());
  }

  AheadRegistry m_registry;
  std::unique_ptr<LookAhead> m_look_ahead;
};

TEST_F(LookAheadTest, StoresReadySegmentsAndPostgresPushIsAnsweredAhead) {
  for (std::uint64_t s = 1; s <= 3; ++s) complete_segment(s);
  // Status files of other kinds: not look-ahead's business.
  test::write_bytes_file(status_dir() + "/00000002.history.ready", {});
  test::write_bytes_file(status_dir() + "/" + segment_file(1, 9) + ".partial.ready", {});
  const auto before = status_files();
  start();
  ASSERT_TRUE(eventually([&] { return m_look_ahead->status().stored_ahead == 3; })) << m_look_ahead->status().problem;
  const LookAheadStatus status = m_look_ahead->status();
  EXPECT_EQ(status.ready, 3u);
  EXPECT_EQ(status.pushed, 3u);
  EXPECT_EQ(status.failed, 0u);
  EXPECT_TRUE(status.problem.empty()) << status.problem;
  EXPECT_TRUE(status.oldest_ready_us.has_value());
  EXPECT_EQ(status_files(), before) << "look-ahead created, renamed, removed or touched a status file";
  for (std::uint64_t s = 1; s <= 3; ++s) {
    auto fetched = fetch_bytes(*std::make_unique<Fetch>(*m_repository, *m_index), segment_file(1, s));
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_TRUE(*fetched == segment_fixture(1, s));
  }

  // PostgreSQL's own push of a stored file: answered from the record.
  auto pushed = postgres_pushes(2);
  ASSERT_TRUE(pushed) << pushed.error().message;
  EXPECT_EQ(*pushed, PushOutcome::ahead);

  // A file changed since look-ahead read it is not taken on trust: the full check runs, and
  // different content is a conflict, not an "ahead".
  {
    UniqueFd fd(::open(wal_path(segment_file(1, 3)).c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    const std::byte changed[1] = {std::byte{0x5A}};
    ASSERT_TRUE(pwrite_all(fd.get(), changed, 3 * 8192 + 17, "segment"));
  }
  pushed = postgres_pushes(3);
  ASSERT_FALSE(pushed);
  EXPECT_EQ(pushed.error().kind, ErrorKind::conflict);

  // A copy of the same content at another inode (PostgreSQL's file replaced): the full path,
  // which finds the same content stored.
  const auto copy = test::read_bytes_file(wal_path(segment_file(1, 1)));
  std::filesystem::remove(wal_path(segment_file(1, 1)));
  test::write_bytes_file(wal_path(segment_file(1, 1)), copy);
  pushed = postgres_pushes(1);
  ASSERT_TRUE(pushed) << pushed.error().message;
  EXPECT_EQ(*pushed, PushOutcome::duplicate);
  EXPECT_EQ(m_ingest->counters().ahead_misses.load(), 2u) << "segments 3 and 1: recorded, but not the files pushed";
}

TEST_F(LookAheadTest, PostgresPushWaitsForLookAheadStoringTheSameSegment) {
  complete_segment(9);
  const std::string name = segment_file(1, 9);
  // A look-ahead worker's steps, by hand so the test controls the moment: mark, store, record.
  std::optional<AheadRegistry::Storing> storing;
  storing.emplace(m_registry, name);
  std::atomic<bool> done{false};
  Result<PushOutcome> pg_result = PushOutcome::stored;
  std::thread postgres([&] {
    pg_result = postgres_pushes(9);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load()) << "PostgreSQL's push did not wait for look-ahead";
  UniqueFd fd(::open(wal_path(name).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  auto stored = m_ingest->push(name, fd.get(), [] { return Result<void>(); });
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(*stored, PushOutcome::stored);
  const auto content = test::read_bytes_file(wal_path(name));
  m_registry.remember(name, AheadRecord{FileIdentity::of(st), crc32c(std::span(content).first(k_ahead_first_page)),
                                        (*indexed(name)).sha256, std::chrono::steady_clock::now()});
  storing.reset();
  postgres.join();
  ASSERT_TRUE(pg_result) << pg_result.error().message;
  EXPECT_EQ(*pg_result, PushOutcome::ahead);
}

TEST_F(LookAheadTest, ASegmentPostgresIsPushingIsLeftToIt) {
  const AheadRegistry::PostgresPush pushing(m_registry, segment_file(1, 11));  // as Ingest marks PostgreSQL's push
  complete_segment(11);
  complete_segment(12);
  start();
  ASSERT_TRUE(eventually([&] { return m_registry.contains(segment_file(1, 12)) && m_look_ahead->status().queued == 0; }));
  EXPECT_FALSE(m_registry.contains(segment_file(1, 11)));
  auto held = m_repository->objects().exists(object_key(*parse_wal_name(segment_file(1, 11))));
  ASSERT_TRUE(held);
  EXPECT_FALSE(*held) << "look-ahead stored a segment PostgreSQL was pushing itself";
  EXPECT_EQ(m_look_ahead->status().pushed, 1u);
}

TEST_F(LookAheadTest, WhatPostgresStoredDuringThisRunIsNotReadAgain) {
  m_look_ahead = std::make_unique<LookAhead>(*m_ingest, *m_index, m_registry, pgdata(), 1);  // its run starts now
  complete_segment(13);
  ASSERT_EQ(postgres_pushes(13).value_or(PushOutcome::ahead), PushOutcome::stored);
  complete_segment(14);
  m_look_ahead->start();
  ASSERT_TRUE(eventually([&] { return m_registry.contains(segment_file(1, 14)) && m_look_ahead->status().queued == 0; }));
  const LookAheadStatus status = m_look_ahead->status();
  EXPECT_EQ(status.pushed, 1u);
  EXPECT_EQ(status.verified, 0u) << "segment 13 was read and proven again";
  EXPECT_FALSE(m_registry.contains(segment_file(1, 13)));
}

TEST_F(LookAheadTest, AnOldRecordIsCheckedAgainstTheRepository) {
  complete_segment(10);
  const std::string name = segment_file(1, 10);
  auto stored = postgres_pushes(10);
  ASSERT_TRUE(stored) << stored.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(wal_path(name).c_str(), &st), 0);
  const auto page = test::read_bytes_file(wal_path(name));
  AheadRecord record{FileIdentity::of(st), crc32c(std::span(page).first(k_ahead_first_page)), (*indexed(name)).sha256,
                     std::chrono::steady_clock::now()};
  m_registry.remember(name, record);
  EXPECT_EQ(postgres_pushes(10).value_or(PushOutcome::stored), PushOutcome::ahead) << "a fresh record is the proof";
  // The object is gone from the repository behind walvaultd's back, and the record is older
  // than k_ahead_trusted_for: the repository is asked, and the full path stores it again.
  ASSERT_TRUE(test::raw_storage(*m_repository).remove(object_key(*parse_wal_name(name))));
  record.stored_at -= k_ahead_trusted_for + std::chrono::seconds(1);
  m_registry.remember(name, record);
  auto again = postgres_pushes(10);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, PushOutcome::stored);
}

TEST_F(LookAheadTest, AFileThatChangedWhileItWasReadIsNotStored) {
  complete_segment(8);
  UniqueFd fd(::open(wal_path(segment_file(1, 8)).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto pushed = m_ingest->push(segment_file(1, 8), fd.get(), [] { return Result<void>(fail(ErrorKind::io, "recycled while read")); });
  ASSERT_FALSE(pushed);
  EXPECT_EQ(pushed.error().message, "recycled while read");
  auto held = m_repository->objects().exists(object_key(*parse_wal_name(segment_file(1, 8))));
  ASSERT_TRUE(held);
  EXPECT_FALSE(*held) << "a torn read was stored";
  EXPECT_EQ(m_ingest->counters().ahead_misses.load(), 0u);
}

TEST_F(LookAheadTest, ASegmentCompletedWhileRunningIsStoredThroughInotify) {
  start(1);
  ASSERT_TRUE(eventually([&] { return m_look_ahead->status().scans >= 1; }));
  complete_segment(4);
  // Well within the 10 s rescan: the watch is what saw it.
  ASSERT_TRUE(eventually([&] { return m_registry.contains(segment_file(1, 4)); }, std::chrono::seconds(5)));
  EXPECT_TRUE(std::filesystem::exists(status_dir() + "/" + segment_file(1, 4) + ".ready"));
  EXPECT_FALSE(std::filesystem::exists(status_dir() + "/" + segment_file(1, 4) + ".done"));
  // PostgreSQL archived it (renamed to .done): the record goes at the next scan.
  std::filesystem::rename(status_dir() + "/" + segment_file(1, 4) + ".ready", status_dir() + "/" + segment_file(1, 4) + ".done");
  complete_segment(5);
  ASSERT_TRUE(eventually([&] { return m_registry.contains(segment_file(1, 5)); }, std::chrono::seconds(5)));
  EXPECT_TRUE(eventually([&] { return !m_registry.contains(segment_file(1, 4)); }));
}

TEST_F(LookAheadTest, WalOfAnotherClusterIsNotStoredAndNotRetried) {
  test::write_bytes_file(wal_path(segment_file(1, 6)),
                         test::make_segment(test::segment_number_name(1, 6), k_mib, test::SegmentSpec{}.with_system_identifier(99)));
  complete_segment(7);  // the repository adopts the test cluster's identifier first
  ASSERT_TRUE(m_ingest->push(segment_file(1, 7), UniqueFd(::open(wal_path(segment_file(1, 7)).c_str(), O_RDONLY)).get()));
  test::write_bytes_file(status_dir() + "/" + segment_file(1, 6) + ".ready", {});
  start();
  ASSERT_TRUE(eventually([&] { return m_look_ahead->status().failed == 1 && m_look_ahead->status().queued == 0; }));
  EXPECT_FALSE(m_registry.contains(segment_file(1, 6)));
  auto row = m_index->find(segment_file(1, 6));
  ASSERT_TRUE(row);
  EXPECT_FALSE(*row) << "another cluster's WAL was indexed";
}

TEST_F(LookAheadTest, UnreadableArchiveStatusIsReportedAndNothingElse) {
  std::filesystem::remove_all(pgdata() + "/pg_wal");
  start();
  ASSERT_TRUE(eventually([&] { return !m_look_ahead->status().problem.empty(); }));
  EXPECT_NE(m_look_ahead->status().problem.find("archive_status"), std::string::npos) << m_look_ahead->status().problem;
  EXPECT_EQ(m_look_ahead->status().pushed, 0u);
  m_look_ahead->stop();  // prompt, though the watcher sleeps between rescans
}

// ---- prefetch -----------------------------------------------------------------------------

class PrefetchTest : public test::ArchiveFixture {
 protected:
  void SetUp() override {
    test::ArchiveFixture::SetUp();
    m_index->set_trusted(true);
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }
  void TearDown() override {
    if (m_prefetch) m_prefetch->stop();
  }

  void start(std::uint64_t budget = 3 * k_mib) {
    m_budget = budget;
    m_prefetch = std::make_unique<Prefetcher>(*m_repository, *m_index, *m_fetch, spool(),
                                              LiveSetting<std::uint64_t>([this] { return m_budget.load(); }), 2);
    auto started = m_prefetch->start();
    ASSERT_TRUE(started) << started.error().message;
  }

  std::string spool() const { return m_dir / "spool/prefetch"; }

  // A GET as archive-get sends it; the response and what landed in the output.
  std::pair<protocol::Message, std::vector<std::byte>> get(const std::string& name, bool recovery = true) {
    Request request;
    request.message = protocol::Message{"GET " + name, {{"mode", recovery ? "recovery" : "exact"}}};
    const std::string out = "out." + std::to_string(m_outputs++);
    request.fd = output(out);
    auto response = m_prefetch->handle(request);
    return {response, test::read_bytes_file(m_dir / out)};
  }

  // A recovery GET that accepts a handoff, from `uid`, into a fresh file in `directory`.
  struct Answer {
    protocol::Message response;
    std::vector<std::byte> written;  // what landed in the output
    UniqueFd passed;                 // the descriptor passed back (a handoff)
  };
  Answer get_with_handoff(const std::string& name, uid_t uid = ::geteuid(), const std::string& directory = "") {
    Request request;
    request.message = protocol::Message{"GET " + name, {{"mode", "recovery"}, {"handoff", "1"}}};
    request.peer_uid = uid;
    const std::string out = (directory.empty() ? m_dir.path() : directory) + "/handoff-out." + std::to_string(m_outputs++);
    request.fd = UniqueFd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    EXPECT_TRUE(request.fd) << out;
    auto response = m_prefetch->handle(request);
    Answer answer{response, test::read_bytes_file(out), std::move(request.reply_fd)};
    ::unlink(out.c_str());
    return answer;
  }

  static std::vector<std::byte> contents(int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
    EXPECT_TRUE(pread_exact(fd, bytes, 0, "passed file"));
    return bytes;
  }

  // Overwrites one byte of a prefetched copy in the spool, as a failing disk or a stray writer
  // would; `hide` then sets its modification time back, as a careful one would (the change
  // time cannot be set back).
  bool damage_spool_copy(const std::string& name, off_t offset, bool hide = false) {
    UniqueFd fd(::open((spool() + "/" + name).c_str(), O_WRONLY | O_CLOEXEC));
    struct stat before {};
    if (!fd || ::fstat(fd.get(), &before) != 0) return false;
    const std::byte flipped[1] = {std::byte{0xEE}};
    if (!pwrite_all(fd.get(), flipped, offset, "spool file")) return false;
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    return !hide || ::futimens(fd.get(), times) == 0;
  }

  bool settled(std::size_t files) {
    return eventually([&] {
      auto s = m_prefetch->status();
      return s.in_flight == 0 && s.spool_files == files;
    });
  }

  std::unique_ptr<Fetch> m_fetch;
  std::unique_ptr<Prefetcher> m_prefetch;
  std::atomic<std::uint64_t> m_budget{0};
  int m_outputs = 0;
};

TEST_F(PrefetchTest, TheNextSegmentsAreServedFromTheSpool) {
  for (std::uint64_t s = 1; s <= 6; ++s) push(segment_file(1, s), segment_fixture(1, s));
  std::filesystem::create_directories(spool());
  test::write_bytes_file(spool() + "/" + segment_file(1, 3), segment_fixture(1, 3, 7));  // an earlier run's
  start();
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 3))) << "the spool is emptied at start";

  auto [first, first_bytes] = get(segment_file(1, 2));
  EXPECT_EQ(first.line, "OK");
  EXPECT_TRUE(first_bytes == segment_fixture(1, 2));
  ASSERT_TRUE(settled(3)) << "3 MiB of budget: segments 3, 4 and 5";
  for (std::uint64_t s = 3; s <= 5; ++s) EXPECT_TRUE(std::filesystem::exists(spool() + "/" + segment_file(1, s))) << s;
  EXPECT_EQ(m_prefetch->status().spool_bytes, 3 * k_mib);

  auto [second, second_bytes] = get(segment_file(1, 3));
  EXPECT_EQ(second.line, "OK");
  EXPECT_EQ(second.field("size"), std::to_string(k_mib));
  EXPECT_TRUE(second_bytes == segment_fixture(1, 3));
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 3))) << "a served file leaves the spool";
  auto status = m_prefetch->status();
  EXPECT_EQ(status.hits, 1u);
  EXPECT_EQ(status.misses, 1u);
  EXPECT_EQ(m_fetch->served(), 2u);

  // pg_rewind's exact request: straight to the repository, the spool left as it is.
  ASSERT_TRUE(settled(3));  // 4, 5 and now 6
  auto [exact, exact_bytes] = get(segment_file(1, 4), /*recovery=*/false);
  EXPECT_EQ(exact.line, "OK");
  EXPECT_TRUE(exact_bytes == segment_fixture(1, 4));
  EXPECT_EQ(m_prefetch->status().hits, 1u);
  EXPECT_TRUE(std::filesystem::exists(spool() + "/" + segment_file(1, 4)));

  // The end of WAL is not remembered: once segment 7 is archived, it is served.
  auto [end, end_bytes] = get(segment_file(1, 7));
  EXPECT_EQ(end.line, "NOTFOUND");
  push(segment_file(1, 7), segment_fixture(1, 7));
  auto [later, later_bytes] = get(segment_file(1, 7));
  EXPECT_EQ(later.line, "OK");
  EXPECT_TRUE(later_bytes == segment_fixture(1, 7));
}

TEST_F(PrefetchTest, FollowsTheTimelineSwitchAndRePlansWhenRecoveryStaysBehind) {
  // Timeline 2 began in segment 3; the old primary went on writing timeline 1.
  for (std::uint64_t s = 1; s <= 6; ++s) push(segment_file(1, s), segment_fixture(1, s));
  push_text("00000002.history", "1\t0/300158\tno recovery target specified\n");
  for (std::uint64_t s = 3; s <= 6; ++s)
    push(segment_file(2, s), test::make_segment(test::segment_number_name(2, s), k_mib,
                                                s == 3 ? test::SegmentSpec{}.with_header_timeline(1) : test::SegmentSpec{}));
  start();
  get(segment_file(1, 1));
  ASSERT_TRUE(settled(3));
  for (const auto& name : {segment_file(1, 2), segment_file(2, 3), segment_file(2, 4)})
    EXPECT_TRUE(std::filesystem::exists(spool() + "/" + name)) << name << ": the latest timeline's path";

  // Recovery asks for timeline 1's segment 3 (recovery_target_timeline = 'current'): served
  // from the repository, what was fetched for timeline 2 is dropped, and the plan stays on 1.
  auto [stays, bytes] = get(segment_file(1, 3));
  EXPECT_EQ(stays.line, "OK");
  EXPECT_TRUE(bytes == segment_fixture(1, 3));
  ASSERT_TRUE(settled(3));
  auto status = m_prefetch->status();
  EXPECT_EQ(status.pinned_timeline, std::optional<std::uint32_t>(1));
  EXPECT_GE(status.discarded, 1u);
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(2, 4)));
  auto [next, next_bytes] = get(segment_file(1, 4));
  EXPECT_EQ(next.line, "OK");
  EXPECT_TRUE(next_bytes == segment_fixture(1, 4));
  EXPECT_EQ(m_prefetch->status().hits, 1u);
}

TEST_F(PrefetchTest, ADamagedSpoolCopyIsNeverServed) {
  for (std::uint64_t s = 1; s <= 3; ++s) push(segment_file(1, s), segment_fixture(1, s));
  start(k_mib);
  get(segment_file(1, 1));
  ASSERT_TRUE(settled(1));
  ASSERT_TRUE(damage_spool_copy(segment_file(1, 2), 5 * 8192 + 3));
  auto [response, bytes] = get(segment_file(1, 2));
  EXPECT_EQ(response.line, "OK");
  EXPECT_TRUE(bytes == segment_fixture(1, 2)) << "served from the repository instead";
  EXPECT_EQ(m_prefetch->status().hits, 0u);
}

TEST_F(PrefetchTest, AHandoffPassesTheCheckedSpoolFileItselfAndItsNameGoesAtTheNextRequest) {
  for (std::uint64_t s = 1; s <= 6; ++s) push(segment_file(1, s), segment_fixture(1, s));
  start(2 * k_mib);
  EXPECT_FALSE(get_with_handoff(segment_file(1, 1)).passed) << "a miss is copied from the repository";
  ASSERT_TRUE(settled(2));

  auto hit = get_with_handoff(segment_file(1, 2));
  EXPECT_EQ(hit.response.line, "OK");
  EXPECT_EQ(hit.response.field("handoff"), std::optional<std::string_view>("1"));
  EXPECT_EQ(hit.response.field("size"), std::to_string(k_mib));
  EXPECT_TRUE(hit.written.empty()) << "nothing is copied into the client's file";
  ASSERT_TRUE(hit.passed);
  EXPECT_TRUE(contents(hit.passed.get()) == segment_fixture(1, 2));
  // What archive-get does with it: a link of its own, in the same filesystem.
  const std::string linked = m_dir / "RECOVERYXLOG";
  const std::string proc = "/proc/self/fd/" + std::to_string(hit.passed.get());
  ASSERT_EQ(::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, linked.c_str(), AT_SYMLINK_FOLLOW), 0) << std::strerror(errno);
  EXPECT_TRUE(test::read_bytes_file(linked) == segment_fixture(1, 2));
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 2))) << "a later fetch of the name must not meet it";
  EXPECT_TRUE(std::filesystem::exists(spool() + "/" + segment_file(1, 2) + ".served")) << "until the client has linked it";
  auto status = m_prefetch->status();
  EXPECT_EQ(status.hits, 1u);
  EXPECT_EQ(status.handed_over, 1u);
  EXPECT_EQ(m_fetch->served(), 2u);

  ASSERT_TRUE(settled(2));  // 3 and 4
  auto next = get_with_handoff(segment_file(1, 3));
  ASSERT_TRUE(next.passed);
  EXPECT_TRUE(contents(next.passed.get()) == segment_fixture(1, 3));
  EXPECT_TRUE(std::filesystem::exists(spool() + "/" + segment_file(1, 2) + ".served"))
      << "a name handed over moments ago stays (another recovery's client may not have linked it yet)";
  m_prefetch->expire();
  EXPECT_TRUE(std::filesystem::exists(spool() + "/" + segment_file(1, 3) + ".served"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(settled(2));  // 4 and 5
  get_with_handoff(segment_file(1, 4));
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 2) + ".served")) << "removed a second later by a request";
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 3) + ".served"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  m_prefetch->expire();
  EXPECT_FALSE(std::filesystem::exists(spool() + "/" + segment_file(1, 4) + ".served")) << "or by the expiry tick";
  EXPECT_TRUE(test::read_bytes_file(linked) == segment_fixture(1, 2)) << "PostgreSQL's link keeps the file";
  EXPECT_EQ(m_prefetch->status().handed_over, 3u);
}

TEST_F(PrefetchTest, AnotherUserOrFilesystemOrADamagedCopyGetsNoHandoff) {
  for (std::uint64_t s = 1; s <= 5; ++s) push(segment_file(1, s), segment_fixture(1, s));
  start(k_mib);
  get(segment_file(1, 1));
  ASSERT_TRUE(settled(1));
  // Another uid: PostgreSQL could not reuse a file walvaultd owns as a later segment.
  auto other_user = get_with_handoff(segment_file(1, 2), ::geteuid() + 1);
  EXPECT_EQ(other_user.response.line, "OK");
  EXPECT_FALSE(other_user.response.field("handoff"));
  EXPECT_FALSE(other_user.passed);
  EXPECT_TRUE(other_user.written == segment_fixture(1, 2)) << "copied from the spool instead";
  EXPECT_EQ(m_prefetch->status().hits, 1u);

  // A damaged copy is neither passed nor copied, even with its modification time set back: an
  // unchanged file is handed over without being read again, a changed one is read in full.
  ASSERT_TRUE(settled(1));
  ASSERT_TRUE(damage_spool_copy(segment_file(1, 3), 3 * 8192 + 5, /*hide=*/true));
  auto damaged = get_with_handoff(segment_file(1, 3));
  EXPECT_EQ(damaged.response.line, "OK");
  EXPECT_FALSE(damaged.passed);
  EXPECT_TRUE(damaged.written == segment_fixture(1, 3)) << "served from the repository";
  EXPECT_EQ(m_prefetch->status().handed_over, 0u);

  // Another filesystem (the client's file on tmpfs): a link could not work, so a copy.
  struct stat shm {}, here {};
  ASSERT_TRUE(settled(1));
  if (::stat("/dev/shm", &shm) != 0 || ::stat(spool().c_str(), &here) != 0 || shm.st_dev == here.st_dev)
    GTEST_SKIP() << "no /dev/shm on a filesystem of its own";
  auto elsewhere = get_with_handoff(segment_file(1, 4), ::geteuid(), "/dev/shm");
  EXPECT_FALSE(elsewhere.passed);
  EXPECT_TRUE(elsewhere.written == segment_fixture(1, 4));
  EXPECT_EQ(m_prefetch->status().hits, 2u);
  EXPECT_EQ(m_prefetch->status().handed_over, 0u);
}

TEST_F(PrefetchTest, ZeroBudgetIsOffAndHistoryFilesAreNeverPrefetched) {
  for (std::uint64_t s = 1; s <= 3; ++s) push(segment_file(1, s), segment_fixture(1, s));
  push_text("00000002.history", "1\t0/300158\tno recovery target specified\n");
  start(0);
  get(segment_file(1, 1));
  get("00000002.history");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto status = m_prefetch->status();
  EXPECT_FALSE(status.enabled);
  EXPECT_EQ(status.spool_files + status.in_flight, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(spool()));
}

}  // namespace
}  // namespace walvault
