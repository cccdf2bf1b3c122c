// Several repositories as one (MirrorStorage under the object layer): a push is stored in
// every repository or it failed; a get is served by the first that has the object and
// answers "not there" only when every one answered absent; a repository that lost its
// identity is closed for writes until sync fills it; repositories of two clusters are refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/core/repository_sync.hpp"
#include "restorer/verbs/verb.hpp"
#include "tests/unit/archive_fixture.hpp"
#include "tests/unit/faulty_storage.hpp"

namespace walvault {
namespace {

using test::FaultyStorage;
using test::segment_file;
using test::segment_fixture;

class MirrorTest : public test::ArchiveFixture {
 protected:
  Result<std::unique_ptr<Repository>> open_repository() override { return open_pair(/*allow_create=*/true); }
  Result<std::unique_ptr<Repository>> open_pair(bool allow_create) {
    std::vector<std::unique_ptr<Storage>> storages;
    for (int i = 0; i < 2; ++i) {
      auto posix = open_posix_storage(m_dir / m_names[i]);
      if (!posix) return std::unexpected(posix.error());
      storages.push_back(std::make_unique<FaultyStorage>(std::move(*posix), m_controls[i]));
    }
    RetryPolicy retry;
    retry.sleep = [](std::chrono::milliseconds) {};
    return Repository::open(std::move(storages), allow_create, std::move(retry));
  }
  void SetUp() override {
    test::ArchiveFixture::SetUp();
    if (HasFatalFailure()) return;
    m_index->set_trusted(true);  // nothing archived yet: an empty index is the whole truth
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }
  // The daemon restarted: the same repositories and index, nothing created (objects indexed).
  void reopen() {
    m_ingest.reset();
    m_indexer.reset();
    m_fetch.reset();
    auto repository = open_pair(/*allow_create=*/false);
    ASSERT_TRUE(repository) << repository.error().message;
    m_repository = std::move(*repository);
    m_indexer = std::make_unique<Indexer>(*m_repository, *m_index);
    m_ingest = std::make_unique<Ingest>(*m_repository, m_compress, m_indexer.get());
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }
  Result<std::vector<std::byte>> try_get(std::string_view name) { return fetch_bytes(*m_fetch, name); }
  std::string in(int member, std::string_view name) const { return m_dir / (m_names[member] + "/" + object_key_of(name)); }
  static bool exists(const std::string& path) { return std::filesystem::exists(path); }

  std::string m_names[2] = {"local", "offsite"};
  std::shared_ptr<FaultyStorage::Control> m_controls[2] = {std::make_shared<FaultyStorage::Control>(),
                                                           std::make_shared<FaultyStorage::Control>()};
  std::unique_ptr<Fetch> m_fetch;
};

TEST_F(MirrorTest, APushIsStoredInEveryRepositoryAndAGetIsServedByTheFirstThatHasIt) {
  const std::string s1 = segment_file(1, 1);
  push(s1, segment_fixture(1, 1));
  EXPECT_TRUE(exists(in(0, s1)));
  EXPECT_TRUE(exists(in(1, s1)));
  EXPECT_EQ(test::read_bytes_file(in(0, s1)), test::read_bytes_file(in(1, s1))) << "encoded once, the same bytes in each";
  EXPECT_EQ(test::read_bytes_file(m_dir / "local/walvault.repo"), test::read_bytes_file(m_dir / "offsite/walvault.repo"));

  const int offsite_reads = m_controls[1]->count("open_read");
  ASSERT_TRUE(try_get(s1).value() == segment_fixture(1, 1));
  EXPECT_EQ(m_controls[1]->count("open_read"), offsite_reads) << "the second repository was read although the first had it";

  // The first repository lost it: served by the second.
  std::filesystem::remove(in(0, s1));
  ASSERT_TRUE(try_get(s1).value() == segment_fixture(1, 1));
  // Both lost it: archived once and gone is damage, not "not there".
  std::filesystem::remove(in(1, s1));
  auto gone = try_get(s1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::corrupt) << gone.error().message;
}

TEST_F(MirrorTest, ADamagedCopyInTheFirstRepositoryIsServedFromTheNext) {
  const std::string s1 = segment_file(1, 1), s2 = segment_file(1, 2);
  push(s1, segment_fixture(1, 1));
  push(s2, segment_fixture(1, 2));
  // s1: garbage in place of the first copy (its head fails); s2: one byte of the body flipped
  // (found only at the end of the stream, after bytes were written out).
  test::write_text_file(in(0, s1), "garbage");
  auto body = test::read_bytes_file(in(0, s2));
  body[body.size() / 2] ^= std::byte{0x40};
  test::write_bytes_file(in(0, s2), body);
  auto first = try_get(s1);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(*first == segment_fixture(1, 1));
  auto second = try_get(s2);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(*second == segment_fixture(1, 2));

  // Damaged in both: corrupt, never served, nothing left in the output.
  test::write_text_file(in(1, s1), "garbage too");
  auto neither = try_get(s1);
  ASSERT_FALSE(neither);
  EXPECT_EQ(neither.error().kind, ErrorKind::corrupt) << neither.error().message;
  EXPECT_EQ(file_size(m_dir / "fetched"), 0u);
}

TEST_F(MirrorTest, AnErrorInOneRepositoryAndAbsenceInTheOtherIsAnErrorNeverNotThere) {
  const std::string s1 = segment_file(1, 1), unknown = segment_file(1, 9);
  push(s1, segment_fixture(1, 1));
  // The offsite store fails every read of an unknown name; the local one has no such object.
  for (const char* method : {"get", "open_read", "exists", "info"})
    m_controls[1]->add({method, FailureCategory::permanent, 0, 1000, unknown});
  auto answer = try_get(unknown);
  ASSERT_FALSE(answer);
  EXPECT_NE(answer.error().kind, ErrorKind::not_found) << "absent + error was answered 'not there': " << answer.error().message;
  m_controls[1]->clear();
  answer = try_get(unknown);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().kind, ErrorKind::not_found) << "absent everywhere is 'not there': " << answer.error().message;

  // The first repository fails, the second has the object: served.
  for (const char* method : {"get", "open_read", "exists", "info"})
    m_controls[0]->add({method, FailureCategory::permanent, 0, 1000, s1});
  auto served = try_get(s1);
  ASSERT_TRUE(served) << served.error().message;
  EXPECT_TRUE(*served == segment_fixture(1, 1));
}

TEST_F(MirrorTest, APushOneRepositoryRefusesFailsAndTheRetryFillsIt) {
  const std::string s2 = segment_file(1, 2);
  m_controls[1]->add({"put", FailureCategory::permanent, 0, 1, s2});
  auto refused = try_push(s2, segment_fixture(1, 2));
  ASSERT_FALSE(refused) << "acknowledged while the second repository did not store it";
  EXPECT_FALSE(indexed(s2));
  EXPECT_FALSE(exists(in(1, s2)));

  // PostgreSQL calls again: the repository that has it is not written twice, the one that
  // lacks it gets a copy, and the push is acknowledged.
  auto retried = try_push(s2, segment_fixture(1, 2));
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_TRUE(exists(in(0, s2)));
  ASSERT_TRUE(exists(in(1, s2)));
  EXPECT_EQ(test::read_bytes_file(in(0, s2)), test::read_bytes_file(in(1, s2)));
  EXPECT_TRUE(indexed(s2));

  // Different content under the same name is still refused, and changes neither copy.
  const auto before = test::read_bytes_file(in(1, s2));
  auto other = try_push(s2, segment_fixture(1, 2, 0x5a));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().kind, ErrorKind::conflict) << other.error().message;
  EXPECT_EQ(test::read_bytes_file(in(1, s2)), before);
}

TEST_F(MirrorTest, ADamagedCopyIsReplacedOnlyWhereItIsDamagedAndASoundCopyElsewhereIsTheJudge) {
  const std::string s1 = segment_file(1, 1);
  push(s1, segment_fixture(1, 1));
  const auto sound = test::read_bytes_file(in(1, s1));
  test::write_text_file(in(0, s1), "garbage where the first repository's copy was");
  // The index forgets what it recorded (as after a repair that found the copy unreadable):
  // only the second repository's sound copy can say what the name holds.
  ASSERT_TRUE(m_index->remove_object(s1));

  // Other content under the name: refused by the sound copy, and neither copy is touched.
  auto other = try_push(s1, segment_fixture(1, 1, 0x5a));
  ASSERT_FALSE(other) << "a different segment replaced an archived one";
  EXPECT_EQ(other.error().kind, ErrorKind::conflict) << other.error().message;
  EXPECT_NE(other.error().message.find(m_dir / "offsite"), std::string::npos) << other.error().message;
  EXPECT_EQ(test::read_bytes_file(in(1, s1)), sound);
  EXPECT_EQ(std::string(as_text(test::read_bytes_file(in(0, s1)))), "garbage where the first repository's copy was");

  // The same content again: the damaged copy is replaced, the sound one is left as it is.
  auto same = try_push(s1, segment_fixture(1, 1));
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(*same, PushOutcome::stored);
  EXPECT_EQ(test::read_bytes_file(in(1, s1)), sound);
  EXPECT_TRUE(try_get(s1).value() == segment_fixture(1, 1));
  auto proven = m_repository->objects().member(0).read(object_key_of(s1));
  ASSERT_TRUE(proven && *proven) << "the first repository's copy was not replaced";
}

TEST_F(MirrorTest, ARepositoryThatLostItsIdentityIsClosedForWritesUntilSyncFillsIt) {
  const std::string s1 = segment_file(1, 1), s2 = segment_file(1, 2), s3 = segment_file(1, 3);
  push(s1, segment_fixture(1, 1));
  push(s2, segment_fixture(1, 2));
  // The local repository is deleted (a lost disk); walvaultd restarts.
  std::filesystem::remove_all(m_dir / "local");
  reopen();
  if (HasFatalFailure()) return;
  auto* mirror = m_repository->objects().mirror();
  ASSERT_NE(mirror, nullptr);
  ASSERT_TRUE(mirror->write_block(0));
  EXPECT_NE(mirror->write_block(0)->find(m_dir / "local"), std::string::npos) << *mirror->write_block(0);
  EXPECT_FALSE(mirror->write_block(1));

  // Restores go on from the other repository; pushes fail naming the closed one.
  ASSERT_TRUE(try_get(s1).value() == segment_fixture(1, 1));
  auto refused = try_push(s3, segment_fixture(1, 3));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("walvault sync"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(exists(in(0, s3)));
  EXPECT_FALSE(exists(in(1, s3)));

  auto before = compare_members(*m_repository);
  ASSERT_EQ(before.members.size(), 2u);
  EXPECT_EQ(before.members[0].missing.size(), 2u);
  EXPECT_TRUE(before.members[1].missing.empty());

  auto synced = sync_members(*m_repository, m_index.get(), [](const std::string&) {});
  ASSERT_EQ(synced.size(), 2u);
  EXPECT_EQ(synced[0].copied, 2u);
  EXPECT_TRUE(synced[0].identity_written);
  EXPECT_TRUE(synced[0].failed.empty());
  EXPECT_EQ(synced[1].copied, 0u);
  EXPECT_FALSE(mirror->write_block(0));
  EXPECT_EQ(test::read_bytes_file(in(0, s2)), test::read_bytes_file(in(1, s2)));
  EXPECT_EQ(test::read_bytes_file(m_dir / "local/walvault.repo"), test::read_bytes_file(m_dir / "offsite/walvault.repo"));
  auto after = compare_members(*m_repository);
  EXPECT_TRUE(after.members[0].missing.empty());

  ASSERT_TRUE(try_push(s3, segment_fixture(1, 3)));
  EXPECT_TRUE(exists(in(0, s3)));
  EXPECT_TRUE(exists(in(1, s3)));
}

TEST_F(MirrorTest, OpeningThatMayCreateStillNeverGivesALaggingRepositoryAnIdentity) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  std::filesystem::remove_all(m_dir / "local");
  // walvaultd --check-config (and a start with an empty index) open with allow_create: the
  // other repository names a cluster, so the emptied one must stay closed, not be adopted.
  auto repository = open_pair(/*allow_create=*/true);
  ASSERT_TRUE(repository) << repository.error().message;
  EXPECT_TRUE((*repository)->objects().mirror()->write_block(0));
  EXPECT_FALSE(exists(m_dir / "local/walvault.repo"));
}

TEST_F(MirrorTest, VerifyAndCheckSpeakForEachRepository) {
  const std::string s1 = segment_file(1, 1), s2 = segment_file(1, 2);
  push(s1, segment_fixture(1, 1));
  push(s2, segment_fixture(1, 2));
  const VerbSources sources{*m_repository, *m_index};
  AdminOutput verified = verify_verb(sources, -1, RetentionView{});
  EXPECT_TRUE(verified.json["ok"].get<bool>()) << verified.text;
  EXPECT_EQ(verified.json["objects"].get<int>(), 2);

  // The second repository's copy of s2 is lost, and s1's is damaged: the first repository
  // serves both, so only a per-repository proof can see it.
  std::filesystem::remove(in(1, s2));
  test::write_text_file(in(1, s1), "garbage");
  verified = verify_verb(sources, -1, RetentionView{});
  EXPECT_FALSE(verified.json["ok"].get<bool>());
  const std::string offsite = m_dir / "offsite";
  EXPECT_NE(verified.text.find(offsite + ": " + object_key_of(s1)), std::string::npos) << verified.text;
  EXPECT_NE(verified.text.find(offsite + ": " + s2 + ": in the index but missing"), std::string::npos) << verified.text;
  EXPECT_EQ(verified.text.find(std::string(m_dir / "local") + ": "), std::string::npos) << "the sound repository was blamed: " << verified.text;

  protocol::Message request;
  const AdminOutput checked = check_verb(sources, request, CheckThresholds{}, std::nullopt);
  EXPECT_NE(checked.text.find("repository '" + offsite + "' lags: it lacks 1 object(s)"), std::string::npos) << checked.text;
  EXPECT_NE(checked.text.find("repository '" + std::string(m_dir / "local") + "' holds all 2 object(s)"), std::string::npos) << checked.text;
}

TEST_F(MirrorTest, ASyncCutShortLeavesTheRepositoryClosed) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  push(segment_file(1, 2), segment_fixture(1, 2));
  std::filesystem::remove_all(m_dir / "local");
  reopen();
  if (HasFatalFailure()) return;
  m_controls[0]->add({"commit", FailureCategory::permanent, 0, 1, segment_file(1, 2)});
  auto synced = sync_members(*m_repository, m_index.get(), [](const std::string&) {});
  EXPECT_EQ(synced[0].copied, 1u);
  ASSERT_EQ(synced[0].failed.size(), 1u);
  EXPECT_FALSE(synced[0].identity_written);
  EXPECT_TRUE(m_repository->objects().mirror()->write_block(0)) << "opened for writes while it still lacks an object";
  EXPECT_FALSE(exists(m_dir / "local/walvault.repo"));
  // The next sync completes it.
  synced = sync_members(*m_repository, m_index.get(), [](const std::string&) {});
  EXPECT_EQ(synced[0].copied, 1u);
  EXPECT_TRUE(synced[0].identity_written);
}

TEST_F(MirrorTest, RepositoriesOfTwoClustersAreRefused) {
  push(segment_file(1, 1), segment_fixture(1, 1));
  m_ingest.reset();
  m_indexer.reset();
  m_fetch.reset();
  m_repository.reset();
  const std::string identity = m_dir / "offsite/walvault.repo";
  test::write_text_file(identity, "format=1\nsystem-identifier=42\npg-version=15\n");
  auto refused = open_pair(/*allow_create=*/false);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("hold different clusters"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find(m_dir / "offsite"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace walvault
