// Storage faults on every path that touches objects: the push, get, backup-read and prune
// paths through a FaultyStorage. Every transient fault is retried (once the fault passes, the
// answer is the normal one); every permanent fault surfaces with the object's name; no fault
// ever reads as "not there".
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "archiver/pruner.hpp"
#include "common/core/base_backup.hpp"
#include "common/core/storage/retrying_storage.hpp"
#include "common/core/time_format.hpp"
#include "restorer/backup_server.hpp"
#include "tests/unit/archive_fixture.hpp"
#include "tests/unit/faulty_storage.hpp"
#include "tests/unit/memory_storage.hpp"

namespace walvault {
namespace {

using test::FaultyStorage;
using test::segment_file;
using test::segment_fixture;

// RetryPolicy's own rules, without sleeping: the waits are counted instead.
TEST(RetryingStorageTest, TransientFailuresAreRetriedWithGrowingBoundedWaitsAndOthersAreNot) {
  auto shared = std::make_shared<test::MemoryStorage::Shared>();
  auto control = std::make_shared<FaultyStorage::Control>();
  std::vector<std::chrono::milliseconds> waits;
  RetryPolicy policy;
  policy.attempts = 5;
  policy.first_delay = std::chrono::milliseconds(100);
  policy.max_delay = std::chrono::milliseconds(300);
  policy.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d); };
  auto storage = make_retrying_storage(std::make_unique<FaultyStorage>(std::make_unique<test::MemoryStorage>(shared), control), policy);

  control->add({"put", FailureCategory::transient, 0, 3, ""});
  ASSERT_TRUE(storage->put("wal/a/x", test::bytes_of("x"), PutMode::create_only));
  EXPECT_EQ(control->count("put"), 4);
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_GE(waits[0].count(), 50);
  EXPECT_LE(waits[0].count(), 100);
  EXPECT_GE(waits[1].count(), 100);
  EXPECT_LE(waits[1].count(), 200);
  EXPECT_LE(waits[2].count(), 300) << "capped by max_delay";

  // Still failing after the last attempt: the failure says how often it was tried.
  waits.clear();
  control->add({"get", FailureCategory::transient, 0, 99, ""});
  auto got = storage->get("wal/a/x", std::nullopt);
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().transient);
  EXPECT_NE(got.error().message.find("(tried 5 times)"), std::string::npos) << got.error().message;
  EXPECT_EQ(control->count("get"), 5);
  EXPECT_EQ(waits.size(), 4u);
  control->clear();

  for (FailureCategory category : {FailureCategory::permanent, FailureCategory::refused}) {
    waits.clear();
    const int before = control->count("remove");
    control->add({"remove", category, 0, 1, ""});
    auto removed = storage->remove("wal/a/x");
    ASSERT_FALSE(removed) << to_string(category);
    EXPECT_EQ(category_of(removed.error()), category);
    EXPECT_EQ(control->count("remove") - before, 1) << to_string(category) << " was retried";
    EXPECT_TRUE(waits.empty());
  }
}

TEST(RetryingStorageTest, CategoriesOfOsErrors) {
  EXPECT_EQ(category_of(fail_os("read file", "/x", EAGAIN).error()), FailureCategory::transient);
  EXPECT_EQ(category_of(fail_os("read file", "/x", ETIMEDOUT).error()), FailureCategory::transient);
  EXPECT_EQ(category_of(fail_os("read file", "/x", EIO).error()), FailureCategory::permanent);
  EXPECT_EQ(category_of(fail_os("write file", "/x", ENOSPC).error()), FailureCategory::permanent);
  EXPECT_EQ(category_of(fail_os("open file", "/x", ENOENT).error()), FailureCategory::permanent) << "absence is a value, not an errno";
  EXPECT_EQ(category_of(Failure{ErrorKind::conflict, "x"}), FailureCategory::refused);
  EXPECT_EQ(category_of(Failure{ErrorKind::not_found, "x"}), FailureCategory::absent);
}

class StorageFaultsTest : public test::ArchiveFixture {
 protected:
  Result<std::unique_ptr<Repository>> open_repository() override {
    RetryPolicy retry;
    retry.sleep = [this](std::chrono::milliseconds) { ++m_waits; };
    return Repository::open(std::make_unique<FaultyStorage>(std::make_unique<test::MemoryStorage>(m_shared), m_control), true,
                            std::move(retry));
  }
  void SetUp() override {
    test::ArchiveFixture::SetUp();
    if (HasFatalFailure()) return;
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }
  Result<std::vector<std::byte>> try_get(std::string_view name) { return fetch_bytes(*m_fetch, name); }
  static std::string key_of(std::string_view name) { return object_key(*parse_wal_name(name)); }

  std::shared_ptr<test::MemoryStorage::Shared> m_shared = std::make_shared<test::MemoryStorage::Shared>();
  std::shared_ptr<FaultyStorage::Control> m_control = std::make_shared<FaultyStorage::Control>();
  int m_waits = 0;
  std::unique_ptr<Fetch> m_fetch;
};

TEST_F(StorageFaultsTest, PushRetriesTransientFaultsAndSurfacesPermanentOnesWithTheName) {
  const std::string s1 = segment_file(1, 1), s2 = segment_file(1, 2);
  // Transient faults on every storage call of the push path: stored all the same.
  for (const char* method : {"open_read", "put", "info"}) m_control->add({method, FailureCategory::transient, 0, 1, s1});
  auto pushed = try_push(s1, segment_fixture(1, 1));
  ASSERT_TRUE(pushed) << pushed.error().message;
  EXPECT_EQ(*pushed, PushOutcome::stored);
  EXPECT_EQ(m_control->injected, 3);
  EXPECT_EQ(m_waits, 3);
  EXPECT_TRUE(try_get(s1).value() == segment_fixture(1, 1));

  // A permanent fault on the write: the push fails naming the object, nothing is stored or
  // indexed, and the name is not archived (PostgreSQL keeps its copy and calls again).
  m_control->add({"put", FailureCategory::permanent, 0, 1, s2});
  const int waits = m_waits;
  auto refused = try_push(s2, segment_fixture(1, 2));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::io);
  EXPECT_NE(refused.error().message.find(key_of(s2)), std::string::npos) << refused.error().message;
  EXPECT_EQ(m_waits, waits) << "a permanent fault was retried";
  EXPECT_FALSE(m_shared->objects.contains(key_of(s2)));
  EXPECT_FALSE(indexed(s2));
  // Once the fault is gone, the push PostgreSQL retries succeeds.
  ASSERT_TRUE(try_push(s2, segment_fixture(1, 2)));

  // A duplicate push whose proof read fails for good is an error, not an acknowledgement.
  m_control->add({"get", FailureCategory::permanent, 0, 1, s1});
  auto duplicate = try_push(s1, segment_fixture(1, 1));
  ASSERT_FALSE(duplicate);
  EXPECT_NE(duplicate.error().message.find(key_of(s1)), std::string::npos) << duplicate.error().message;
}

TEST_F(StorageFaultsTest, GetRetriesTransientFaultsAndNoFaultReadsAsNotThere) {
  for (std::uint64_t n = 1; n <= 3; ++n) push(segment_file(1, n), segment_fixture(1, n));
  const std::string s2 = segment_file(1, 2);
  const auto content = segment_fixture(1, 2);

  for (const char* method : {"open_read", "read", "read_at"}) {
    SCOPED_TRACE(method);
    m_control->add({method, FailureCategory::transient, 0, 2, s2});
    auto got = try_get(s2);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_TRUE(*got == content);
  }
  for (const char* method : {"open_read", "read", "read_at"}) {
    SCOPED_TRACE(method);
    m_control->add({method, FailureCategory::permanent, 0, 1, s2});
    auto got = try_get(s2);
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().kind, ErrorKind::not_found);
    EXPECT_NE(got.error().message.find(key_of(s2)), std::string::npos) << got.error().message;
  }
  // Transient for longer than the retries last: an error (archive-get exits 126), never "not there".
  m_control->add({"open_read", FailureCategory::transient, 0, 99, s2});
  auto gave_up = try_get(s2);
  ASSERT_FALSE(gave_up);
  EXPECT_EQ(gave_up.error().kind, ErrorKind::io) << gave_up.error().message;
  m_control->clear();

  // Storage answers "absent" for an archived name: lost, not "not there".
  m_control->add({"open_read", FailureCategory::absent, 0, 99, s2});
  m_control->add({"exists", FailureCategory::absent, 0, 99, s2});
  auto lost = try_get(s2);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().kind, ErrorKind::corrupt) << lost.error().message;
  m_control->clear();

  // Reads cut short: corrupt naming the object, and the output is left empty.
  m_control->truncate_reads = m_shared->objects.at(key_of(s2)).size() - 10;
  auto cut = try_get(s2);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().kind, ErrorKind::corrupt) << cut.error().message;
  EXPECT_NE(cut.error().message.find(key_of(s2)), std::string::npos) << cut.error().message;
  EXPECT_EQ(test::read_bytes_file(m_dir / "fetched").size(), 0u);
  m_control->clear();
  EXPECT_TRUE(try_get(s2).value() == content) << "the fault went away: served again";
}

TEST_F(StorageFaultsTest, BackupReadRetriesTransientFaultsAndNamesTheChunkOnPermanentOnes) {
  // A stored backup of one chunk, as BackupTaker leaves it.
  const std::string id = "20261124T093001Z";
  std::vector<std::byte> tar(3 << 20);
  for (std::size_t i = 0; i < tar.size(); ++i) tar[i] = static_cast<std::byte>((i * 131) >> 7);
  auto put = m_repository->objects().begin_put(backup_chunk_key(id, 1), m_compress, PutMode::create_only);
  ASSERT_TRUE(put && put->append(tar));
  auto header = put->finish();
  ASSERT_TRUE(header);
  StoredBackup backup;
  backup.id = id;
  backup.timeline = 1;
  backup.backup_file = "000000010000000000000002.00000028.backup";
  backup.chunks.push_back(BackupChunk{backup_chunk_key(id, 1), tar.size(), put->stored_size(), to_hex(header->plain_sha256), 1});
  ASSERT_TRUE(m_index->put_stored_backup(backup));
  BackupReads reads(*m_repository, *m_index);

  auto read_chunk = [&](std::vector<std::byte>& received) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd read_end(fds[0]);
    Request request;
    request.message = protocol::Message{"BACKUP-READ", {{"id", id}, {"chunk", "1"}}};
    request.fd.reset(fds[1]);
    received.clear();
    std::thread reader([&] {
      std::vector<char> buf(1 << 16);
      for (;;) {
        const ssize_t n = ::read(read_end.get(), buf.data(), buf.size());
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) received.push_back(static_cast<std::byte>(buf[static_cast<std::size_t>(i)]));
      }
    });
    auto response = reads.read_chunk(request);
    reader.join();
    return response;
  };
  std::vector<std::byte> received;
  m_control->add({"open_read", FailureCategory::transient, 0, 1, "chunk-00001"});
  m_control->add({"read", FailureCategory::transient, 1, 2, "chunk-00001"});
  auto ok = read_chunk(received);
  EXPECT_EQ(ok.line, "OK") << ok.field("message").value_or("");
  EXPECT_TRUE(received == tar);
  EXPECT_EQ(m_control->injected, 3);

  m_control->add({"read", FailureCategory::permanent, 1, 1, "chunk-00001"});
  auto failed = read_chunk(received);
  EXPECT_NE(failed.line, "OK");
  EXPECT_NE(std::string(failed.field("message").value_or("")).find("chunk-00001.tar"), std::string::npos) << failed.field("message").value_or("");
}

TEST_F(StorageFaultsTest, PruneRetriesTransientFaultsAndStopsWithTheNameOnPermanentOnes) {
  for (std::uint64_t n = 1; n <= 6; ++n) push(segment_file(1, n), segment_fixture(1, n));
  const std::int64_t day = 86400LL * 1000000, now = now_unix_us();
  auto pg_time = [](std::int64_t us) {
    std::string text = format_timestamp(us / 1000000 * 1000000);
    text[10] = ' ';
    text.pop_back();
    return text + " UTC";
  };
  auto push_text = [&](std::string_view name, const std::string& text) { push(name, as_bytes(text)); };
  push_text("000000010000000000000002.00000028.backup",
            test::backup_history_text("0/200028", "0/200100", "000000010000000000000002", pg_time(now - 40 * day), pg_time(now - 40 * day + 1000000)));
  push_text("000000010000000000000004.00000028.backup",
            test::backup_history_text("0/400028", "0/400100", "000000010000000000000004", pg_time(now - 35 * day), pg_time(now - 35 * day + 1000000)));
  Pruner pruner(*m_repository, *m_index, RetentionPolicy{1, 0, 0});

  // Segment 1 cannot be deleted for good: prune stops there and names it; the segment is
  // still stored and served (storage is asked first; nothing reads as "not there").
  const std::string s1 = segment_file(1, 1), s2 = segment_file(1, 2);
  m_control->add({"remove", FailureCategory::permanent, 0, 1, s1});
  PruneReport stopped = pruner.run(/*dry_run=*/false, now);
  ASSERT_TRUE(stopped.failure);
  EXPECT_NE(stopped.failure->message.find(s1), std::string::npos) << stopped.failure->message;
  EXPECT_EQ(stopped.removed, 0u);
  EXPECT_TRUE(try_get(s1).value() == segment_fixture(1, 1));
  EXPECT_TRUE(m_shared->objects.contains(key_of(s2))) << "prune went on after a permanent fault";

  // Transient faults on removals: retried, the prune completes.
  const int before = m_control->count("remove");
  m_control->add({"remove", FailureCategory::transient, 0, 1, ""});  // the next removal, once
  m_control->add({"remove", FailureCategory::transient, 1, 2, ""});  // and a later one, twice
  PruneReport done = pruner.run(/*dry_run=*/false, now);
  EXPECT_FALSE(done.failure) << done.failure->message;
  EXPECT_GE(done.removed, 2u);
  EXPECT_EQ(m_control->count("remove") - before, static_cast<int>(done.removed) + 3) << "three retries";
  EXPECT_FALSE(m_shared->objects.contains(key_of(s2)));
  EXPECT_FALSE(indexed(s2));
}

}  // namespace
}  // namespace walvault
