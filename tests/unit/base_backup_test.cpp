// Stored base backups: the backup.json model, the streaming object writer/reader the chunks
// use, and how the index, its repair and retention's pruner treat backup directories.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "archiver/pruner.hpp"
#include "restorer/admin.hpp"
#include "common/core/base_backup.hpp"
#include "common/core/object_store.hpp"
#include "common/core/time_format.hpp"
#include "tests/unit/archive_fixture.hpp"

namespace walvault::test {
namespace {

StoredBackup sample_backup(const std::string& id, std::size_t chunks = 2) {
  StoredBackup b;
  b.id = id;
  b.label = "nightly \"quoted\"";
  b.timeline = 3;
  b.start_lsn = 0x2000028;
  b.stop_lsn = 0x2000100;
  b.checkpoint_lsn = 0x2000060;
  b.backup_file = "000000030000000000000002.00000028.backup";
  b.start_us = 1'790'000'000'000'000;
  b.started_at_us = 1'790'000'000'500'000;
  b.finished_at_us = 1'790'000'010'000'000;
  b.plain_bytes = 123456789;
  b.stored_bytes = 9876543;
  b.files = 971;
  b.has_manifest = true;
  b.pg_version = 15;
  b.system_identifier = 7400000000000000001ULL;  // above 2^53: must survive JSON
  for (std::size_t i = 1; i <= chunks; ++i)
    b.chunks.push_back(BackupChunk{backup_chunk_key(id, i), 1000 * i, 100 * i, std::string(64, 'a'), i});
  return b;
}

std::vector<std::byte> random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(size);
  // Half compressible, half noise, so the encoder does real work on both.
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>(i % 2 ? rng() & 0xff : (i / 4096) & 0xff);
  return out;
}

TEST(BackupId, FormAndValidation) {
  EXPECT_EQ(backup_id_for(1'790'000'000'000'000), "20260921T141320Z");
  EXPECT_TRUE(is_valid_backup_id("20261124T093001Z"));
  EXPECT_TRUE(is_valid_backup_id("20261124T093001Z-2"));
  for (const char* bad : {"", "20261124T093001", "20261124X093001Z", "2026112AT093001Z", "20261124T093001Z-", "20261124T093001Z-x",
                          "../20261124T093001Z", "20261124T093001Z/..", "20261124T093001Z-12345"})
    EXPECT_FALSE(is_valid_backup_id(bad)) << bad;
  EXPECT_EQ(backup_chunk_key("20261124T093001Z", 7), "backup/20261124T093001Z/chunk-00007.tar");
  EXPECT_EQ(backup_info_key("20261124T093001Z"), "backup/20261124T093001Z/backup.json");
}

TEST(BackupInfo, RoundTripsEveryField) {
  const StoredBackup b = sample_backup("20261124T093001Z");
  auto parsed = parse_backup_info(render_backup_info(b), "test");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->id, b.id);
  EXPECT_EQ(parsed->label, b.label);
  EXPECT_EQ(parsed->timeline, b.timeline);
  EXPECT_EQ(parsed->start_lsn, b.start_lsn);
  EXPECT_EQ(parsed->stop_lsn, b.stop_lsn);
  EXPECT_EQ(parsed->checkpoint_lsn, b.checkpoint_lsn);
  EXPECT_EQ(parsed->backup_file, b.backup_file);
  EXPECT_EQ(parsed->start_us, b.start_us);
  EXPECT_FALSE(parsed->stop_us);
  EXPECT_EQ(parsed->system_identifier, b.system_identifier);
  EXPECT_EQ(parsed->has_manifest, true);
  ASSERT_EQ(parsed->chunks.size(), 2u);
  EXPECT_EQ(parsed->chunks[1].key, b.chunks[1].key);
  EXPECT_EQ(parsed->chunks[1].plain_size, 2000u);
}

TEST(BackupInfo, RefusesDocumentsThatAreNotBackups) {
  EXPECT_EQ(parse_backup_info("not json", "x").error().kind, ErrorKind::corrupt);
  EXPECT_EQ(parse_backup_info("{}", "x").error().kind, ErrorKind::corrupt);
  StoredBackup no_chunks = sample_backup("20261124T093001Z", 0);
  EXPECT_EQ(parse_backup_info(render_backup_info(no_chunks), "x").error().kind, ErrorKind::corrupt);
  // A tampered description must not point restore at objects outside its own directory.
  for (const char* key : {"wal/00000001/000000010000000000000001", "backup/20261124T093002Z/chunk-00001.tar",
                          "backup/20261124T093001Z/../../walvault.repo"}) {
    StoredBackup b = sample_backup("20261124T093001Z", 1);
    b.chunks[0].key = key;
    auto parsed = parse_backup_info(render_backup_info(b), "x");
    ASSERT_FALSE(parsed) << key;
    EXPECT_NE(parsed.error().message.find("outside"), std::string::npos) << parsed.error().message;
  }
  StoredBackup bad_id = sample_backup("20261124T093001Z", 1);
  bad_id.id = "../x";
  EXPECT_FALSE(parse_backup_info(render_backup_info(bad_id), "x"));
}

// Found by tests/fuzz/fuzz_backup_files: a float out of an integer's range was converted
// (undefined behaviour), a negative size wrapped. Each is now a corrupt document naming the field.
TEST(BackupInfo, RefusesNumbersThatAreNotIntegersInRange) {
  const std::string good = render_backup_info(sample_backup("20261124T093001Z", 1));
  ASSERT_TRUE(parse_backup_info(good, "x"));
  const std::pair<std::string, std::string> tampered[] = {
      {"\"timeline\": 3", "\"timeline\": 1.79665e+56"},
      {"\"timeline\": 3", "\"timeline\": 4294967296"},
      {"\"timeline\": 3", "\"timeline\": 3.5"},
      {"\"files\": 971", "\"files\": -1"},
      {"\"pg_version\": 15", "\"pg_version\": 1e300"},
      {"\"entries\": 1", "\"entries\": -7"},
  };
  for (const auto& [from, to] : tampered) {
    std::string doc = good;
    const auto at = doc.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    doc.replace(at, from.size(), to);
    auto parsed = parse_backup_info(doc, "x");
    ASSERT_FALSE(parsed) << to;
    EXPECT_EQ(parsed.error().kind, ErrorKind::corrupt) << to;
    const std::string field = from.substr(1, from.find('"', 1) - 1);
    EXPECT_NE(parsed.error().message.find(field), std::string::npos) << parsed.error().message;
  }
}

class ObjectStream : public ::testing::Test {
 protected:
  void SetUp() override {
    auto storage = open_posix_storage(m_dir / "repo");
    ASSERT_TRUE(storage) << storage.error().message;
    m_objects = std::make_unique<ObjectStore>(std::move(*storage));
  }
  std::vector<std::byte> read_all(const std::string& key, std::string expected_sha = {}, Failure* failure = nullptr) {
    std::vector<std::byte> out;
    auto reader = m_objects->open_listed(key, ReadChecks::expecting(std::move(expected_sha)));
    if (!reader) {
      if (failure) *failure = reader.error();
      return out;
    }
    std::vector<std::byte> buf(7777);  // odd size: pieces never line up with zstd blocks
    for (;;) {
      auto n = reader->read(buf);
      if (!n) {
        if (failure) *failure = n.error();
        return {};
      }
      if (*n == 0) break;
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    return out;
  }
  TempDir m_dir{"walvault-stream"};
  std::unique_ptr<ObjectStore> m_objects;
};

TEST_F(ObjectStream, RoundTripsLargeContentInPieces) {
  for (Codec codec : {Codec::zstd, Codec::none}) {
    const std::string key = std::string("backup/20261124T093001Z/chunk-0000") + (codec == Codec::zstd ? "1" : "2") + ".tar";
    const auto plain = random_bytes(5 * 1024 * 1024 + 123, 7);
    auto writer = m_objects->begin_put(key, CompressSpec{codec, 3, codec == Codec::zstd ? 2 : 0}, PutMode::create_only);
    ASSERT_TRUE(writer) << writer.error().message;
    for (std::size_t pos = 0; pos < plain.size(); pos += 300000)
      ASSERT_TRUE(writer->append(std::span<const std::byte>(plain).subspan(pos, std::min<std::size_t>(300000, plain.size() - pos))));
    EXPECT_FALSE(m_objects->exists(key).value()) << "visible before finish";
    auto header = writer->finish();
    ASSERT_TRUE(header) << header.error().message;
    EXPECT_EQ(header->plain_size, plain.size());
    EXPECT_EQ(header->plain_sha256, sha256(plain));
    // The same bytes open_object() accepts: one object format, streamed or not.
    auto opened = m_objects->read(key);
    ASSERT_TRUE(opened && *opened) << (opened ? "absent" : opened.error().message);
    EXPECT_EQ((*opened)->plain, plain);
    EXPECT_EQ(read_all(key, to_hex(sha256(plain))), plain);
  }
}

TEST_F(ObjectStream, AbandonedWriterLeavesNothing) {
  const std::string key = "backup/20261124T093001Z/chunk-00001.tar";
  {
    auto writer = m_objects->begin_put(key, CompressSpec{}, PutMode::create_only);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->append(random_bytes(100000, 1)));
  }
  EXPECT_FALSE(m_objects->exists(key).value());
  EXPECT_EQ(walk_tree(m_dir / "repo/backup/20261124T093001Z").size(), 0u) << "a temp file was left behind";
}

TEST_F(ObjectStream, CreateOnlyNeverOverwrites) {
  const std::string key = "backup/20261124T093001Z/backup.json";
  ASSERT_TRUE(m_objects->put(key, as_bytes("first"), CompressSpec{}, PutMode::create_only));
  auto writer = m_objects->begin_put(key, CompressSpec{}, PutMode::create_only);
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->append(as_bytes("second")));
  auto done = writer->finish();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().kind, ErrorKind::conflict);
  EXPECT_EQ(as_text(m_objects->read(key).value().value().plain), "first");
}

TEST_F(ObjectStream, ReaderProvesContent) {
  const std::string key = "backup/20261124T093001Z/chunk-00001.tar";
  const auto plain = random_bytes(2 * 1024 * 1024, 3);
  auto writer = m_objects->begin_put(key, CompressSpec{}, PutMode::create_only);
  ASSERT_TRUE(writer && writer->append(plain) && writer->finish());
  Failure failure;
  // The index's digest disagrees: corrupt, even though the object is internally consistent.
  EXPECT_TRUE(read_all(key, std::string(64, '0'), &failure).empty());
  EXPECT_EQ(failure.kind, ErrorKind::corrupt);
  EXPECT_NE(failure.message.find("index"), std::string::npos) << failure.message;

  // A flipped body byte: zstd's own check or the digest catches it, never silent bytes.
  const std::string path = m_dir / ("repo/" + key);
  auto bytes = read_file(path).value();
  bytes[bytes.size() / 2] ^= std::byte{0x40};
  ASSERT_TRUE(write_file_durable(path, bytes, true));
  failure = {};
  EXPECT_TRUE(read_all(key, {}, &failure).empty());
  EXPECT_EQ(failure.kind, ErrorKind::corrupt) << failure.message;

  // Truncated: the size on storage disagrees with the header.
  bytes.resize(bytes.size() - 10);
  ASSERT_TRUE(write_file_durable(path, bytes, true));
  failure = {};
  EXPECT_TRUE(read_all(key, {}, &failure).empty());
  EXPECT_EQ(failure.kind, ErrorKind::corrupt) << failure.message;
}

class StoredBackups : public ArchiveFixture {
 protected:
  // Stores a backup's chunks and (when `finished`) its backup.json, as BackupTaker does.
  StoredBackup store(const std::string& id, bool finished, const std::string& backup_file = "000000010000000000000002.00000028.backup") {
    StoredBackup b = sample_backup(id, 2);
    b.backup_file = backup_file;
    for (auto& chunk : b.chunks) {
      auto writer = m_repository->objects().begin_put(chunk.key, m_compress, PutMode::create_only);
      EXPECT_TRUE(writer);
      const auto content = random_bytes(chunk.plain_size, 11);
      EXPECT_TRUE(writer->append(content));
      auto header = writer->finish();
      EXPECT_TRUE(header);
      chunk.sha256 = to_hex(header->plain_sha256);
      chunk.stored_size = writer->stored_size();
    }
    if (finished) {
      const std::string info = render_backup_info(b);
      EXPECT_TRUE(m_repository->objects().put(backup_info_key(id), as_bytes(info), m_compress, PutMode::create_only));
    }
    return b;
  }
  std::set<std::string> keys_under(const std::string& prefix) {
    auto keys = test::raw_storage(*m_repository).list(prefix);
    EXPECT_TRUE(keys);
    return keys ? std::set<std::string>(keys->begin(), keys->end()) : std::set<std::string>{};
  }
};

TEST_F(StoredBackups, RepairIndexesFinishedBackupsOnlyAndDropsVanishedOnes) {
  store("20261124T010000Z", true);
  store("20261124T020000Z", false);  // unfinished: no backup.json
  auto report = m_indexer->repair();
  ASSERT_TRUE(report) << report.error().message;
  auto stored = m_index->stored_backups();
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(stored->front().id, "20261124T010000Z");
  EXPECT_EQ(stored->front().chunks.size(), 2u);

  ASSERT_TRUE(test::raw_storage(*m_repository).remove(backup_info_key("20261124T010000Z")));
  ASSERT_TRUE(m_indexer->repair());
  EXPECT_TRUE(m_index->stored_backups()->empty()) << "a backup whose backup.json is gone is no backup";

  // rebuild() starts from nothing and finds it again.
  store("20261124T030000Z", true);
  ASSERT_TRUE(m_indexer->rebuild());
  ASSERT_EQ(m_index->stored_backups()->size(), 1u);
}

TEST_F(StoredBackups, UnreadableDescriptionIsReportedNotIndexed) {
  store("20261124T010000Z", false);
  ASSERT_TRUE(test::raw_storage(*m_repository).put(backup_info_key("20261124T010000Z"), as_bytes("garbage"), PutMode::create_only));
  auto report = m_indexer->repair();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->unreadable, 1u);
  EXPECT_TRUE(m_index->stored_backups()->empty());
}

TEST_F(StoredBackups, PruneSweepsUnfinishedBackupsButNotTheRunningOne) {
  store("20261124T010000Z", true);
  store("20261124T020000Z", false);
  store("20261124T030000Z", false);
  ASSERT_TRUE(m_indexer->repair());
  Pruner pruner(*m_repository, *m_index);
  pruner.set_running_backup_probe([] { return std::optional<std::string>("20261124T030000Z"); });
  // No .backup files are indexed, so retention itself deletes nothing; the sweep still runs.
  PruneReport report = pruner.run(/*dry_run=*/false, now_unix_us());
  EXPECT_FALSE(report.failure) << report.failure->message;
  EXPECT_EQ(keys_under("backup/20261124T020000Z").size(), 0u) << "unfinished backup not swept";
  EXPECT_EQ(keys_under("backup/20261124T030000Z").size(), 2u) << "the running backup was swept";
  EXPECT_EQ(keys_under("backup/20261124T010000Z").size(), 3u) << "a finished backup was touched";

  // A dry run never deletes.
  pruner.set_running_backup_probe([] { return std::nullopt; });
  pruner.run(/*dry_run=*/true, now_unix_us());
  EXPECT_EQ(keys_under("backup/20261124T030000Z").size(), 2u);
}

TEST_F(StoredBackups, VerifyProvesEveryChunk) {
  store("20261124T010000Z", true);
  ASSERT_TRUE(m_indexer->repair());
  Admin admin(*m_repository, *m_index, *m_indexer, {});
  AdminOutput out = admin.verify(-1);
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.json["backup_chunks"], 2);

  const std::string path = m_dir / ("repo/" + backup_chunk_key("20261124T010000Z", 2));
  auto bytes = read_file(path).value();
  bytes[bytes.size() - 3] ^= std::byte{0x01};
  ASSERT_TRUE(write_file_durable(path, bytes, true));
  out = admin.verify(-1);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.json["backup_chunks"], 1);
  EXPECT_NE(out.text.find("chunk-00002.tar"), std::string::npos) << out.text;
}

// PostgreSQL's 'YYYY-MM-DD HH:MM:SS UTC' for a Unix time in microseconds.
std::string pg_time(std::int64_t unix_us) {
  std::string text = format_timestamp(unix_us / 1000000 * 1000000);
  text[10] = ' ';
  text.pop_back();
  return text + " UTC";
}

// Two backups 40 and 35 days old (A starts in segment 2, B in segment 4), WAL 1..6; keep one.
class RetentionWithStoredBackups : public StoredBackups {
 protected:
  static constexpr const char* k_a = "000000010000000000000002.00000028.backup";
  static constexpr const char* k_b = "000000010000000000000004.00000028.backup";
  void SetUp() override {
    StoredBackups::SetUp();
    for (std::uint64_t n = 1; n <= 6; ++n) push(segment_file(1, n), segment_fixture(1, n));
    const std::int64_t day = 86400LL * 1000000, now = now_unix_us();
    push_text(k_a, backup_history_text("0/200028", "0/200100", "000000010000000000000002", pg_time(now - 40 * day),
                                       pg_time(now - 40 * day + 1000000)));
    push_text(k_b, backup_history_text("0/400028", "0/400100", "000000010000000000000004", pg_time(now - 35 * day),
                                       pg_time(now - 35 * day + 1000000)));
    m_pruner = std::make_unique<Pruner>(*m_repository, *m_index, RetentionPolicy{1, 0, 0});
  }
  bool removes(const PruneReport& report, const std::string& name) {
    for (const auto& item : report.decision.remove)
      if (item.name == name) return true;
    return false;
  }
  std::unique_ptr<Pruner> m_pruner;
};

TEST_F(RetentionWithStoredBackups, WithoutStoredBackupsEveryBackupFileCounts) {
  PruneReport report = m_pruner->run(/*dry_run=*/true, now_unix_us());
  ASSERT_TRUE(report.decision.allowed) << report.decision.refusal;
  EXPECT_TRUE(removes(report, k_a)) << "the older hand-taken backup expires";
  EXPECT_FALSE(removes(report, k_b));
}

TEST_F(RetentionWithStoredBackups, ABackupFileWithoutStoredDataNeverExpiresAStoredBackup) {
  // A is stored by walvault; B's .backup arrived but its data never became a backup (failed
  // after pg_basebackup, or still being taken): A is the only restorable backup and stays.
  store("20261014T000000Z", true, k_a);
  ASSERT_TRUE(m_indexer->repair());
  PruneReport report = m_pruner->run(/*dry_run=*/true, now_unix_us());
  ASSERT_TRUE(report.decision.allowed) << report.decision.refusal;
  EXPECT_FALSE(removes(report, k_a)) << "the only stored backup would be pruned";
  EXPECT_FALSE(removes(report, segment_file(1, 2))) << "the stored backup's WAL would be pruned";
  EXPECT_FALSE(removes(report, k_b)) << "the .backup file of a backup being taken would be pruned";

  // Once B is stored too, A expires: its data goes with its .backup file.
  store("20261019T000000Z", true, k_b);
  ASSERT_TRUE(m_indexer->repair());
  report = m_pruner->run(/*dry_run=*/false, now_unix_us());
  ASSERT_FALSE(report.failure) << report.failure->message;
  EXPECT_TRUE(removes(report, k_a));
  EXPECT_TRUE(keys_under("backup/20261014T000000Z").empty()) << "the expired backup's data is still there";
  EXPECT_EQ(keys_under("backup/20261019T000000Z").size(), 3u);
  ASSERT_EQ(m_index->stored_backups()->size(), 1u);
  EXPECT_EQ(m_index->stored_backups()->front().id, "20261019T000000Z");
}

TEST_F(RetentionWithStoredBackups, OnceBackupsAreStoredARunningBackupDoesNotHoldPruneUp) {
  store("20261014T000000Z", true, k_a);
  store("20261019T000000Z", true, k_b);
  store("20261124T000000Z", false);  // the one being taken
  ASSERT_TRUE(m_indexer->repair());
  m_pruner->set_running_backup_probe([] { return std::optional<std::string>("20261124T000000Z"); });
  PruneReport report = m_pruner->run(/*dry_run=*/false, now_unix_us());
  ASSERT_TRUE(report.decision.allowed) << report.decision.refusal;
  EXPECT_TRUE(removes(report, k_a));
  EXPECT_TRUE(report.swept_backups.empty()) << "an expired backup was reported as unfinished";
  EXPECT_EQ(test::raw_storage(*m_repository).list_children("backup").value(),
            (std::vector<std::string>{"20261019T000000Z", "20261124T000000Z"}));
}

TEST_F(RetentionWithStoredBackups, PruneWaitsWhileABackupIsBeingTaken) {
  m_pruner->set_running_backup_probe([] { return std::optional<std::string>("20261124T000000Z"); });
  PruneReport report = m_pruner->run(/*dry_run=*/false, now_unix_us());
  EXPECT_FALSE(report.decision.allowed);
  EXPECT_NE(report.decision.refusal.find("20261124T000000Z"), std::string::npos) << report.decision.refusal;
  EXPECT_EQ(report.removed, 0u);
  EXPECT_TRUE(m_index->contains(k_a).value());
}

}  // namespace
}  // namespace walvault::test
