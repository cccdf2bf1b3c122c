#pragma once
// A repository, its index and the push path in a temporary directory, for the tests of the
// indexer and the admin verbs: push fixtures as the daemon would, or store objects behind
// the index's back to simulate a crash between the two.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archiver/ingest.hpp"
#include "common/core/index.hpp"
#include "common/core/indexer.hpp"
#include "common/core/object_format.hpp"
#include "common/core/repository.hpp"
#include "common/core/sha256.hpp"
#include "restorer/fetch.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault::test {

// 1 MiB segments keep the fixtures small; segno N is segment_from_number(tli, N, k_mib).
inline WalName segment_number_name(std::uint32_t timeline, std::uint64_t segno) {
  return segment_from_number(timeline, segno, k_mib);
}
inline std::string segment_file(std::uint32_t timeline, std::uint64_t segno) {
  return format_wal_name(segment_number_name(timeline, segno));
}
inline std::vector<std::byte> segment_fixture(std::uint32_t timeline, std::uint64_t segno, std::uint8_t fill = 0) {
  return make_segment(segment_number_name(timeline, segno), k_mib, SegmentSpec{}.with_fill(fill));
}

// PostgreSQL 15's backup history text for a backup of 1 MiB-segment WAL.
inline std::string backup_history_text(std::string_view start_lsn, std::string_view stop_lsn, std::string_view start_file,
                                       std::string_view start_time, std::string_view stop_time,
                                       std::string_view label = "pg_basebackup base backup", std::uint32_t timeline = 1) {
  return "START WAL LOCATION: " + std::string(start_lsn) + " (file " + std::string(start_file) + ")\n" +
         "STOP WAL LOCATION: " + std::string(stop_lsn) + " (file " + std::string(start_file) + ")\n" +
         "CHECKPOINT LOCATION: " + std::string(start_lsn) + "\n" + "BACKUP METHOD: streamed\n" + "BACKUP FROM: primary\n" +
         "START TIME: " + std::string(start_time) + "\n" + "LABEL: " + std::string(label) + "\n" +
         "START TIMELINE: " + std::to_string(timeline) + "\n" + "STOP TIME: " + std::string(stop_time) + "\n" +
         "STOP TIMELINE: " + std::to_string(timeline) + "\n";
}

class ArchiveFixture : public ::testing::Test {
 protected:
  // The repository under test: a directory by default; a test may give another storage.
  virtual Result<std::unique_ptr<Repository>> open_repository() { return Repository::open(m_dir / "repo"); }

  void SetUp() override {
    auto repository = open_repository();
    ASSERT_TRUE(repository) << repository.error().message;
    m_repository = std::move(*repository);
    auto index = Index::open(m_dir / "index.db");
    ASSERT_TRUE(index) << index.error().message;
    m_index = std::move(*index);
    m_indexer = std::make_unique<Indexer>(*m_repository, *m_index);
    m_ingest = std::make_unique<Ingest>(*m_repository, m_compress, m_indexer.get());
  }

  // Pushes through Ingest, which stores the object durably and then indexes it.
  Result<PushOutcome> try_push(std::string_view name, std::span<const std::byte> content) {
    const std::string path = m_dir / ("source." + std::to_string(m_sources++));
    write_bytes_file(path, content);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd) << path;
    return m_ingest->push(name, fd.get());
  }
  void push(std::string_view name, std::span<const std::byte> content) {
    auto pushed = try_push(name, content);
    ASSERT_TRUE(pushed) << name << ": " << pushed.error().message;
  }
  // What archive-get's fetch writes for `name` (exact = false: as during archive recovery).
  Result<std::vector<std::byte>> fetch_bytes(Fetch& fetch, std::string_view name) {
    UniqueFd out = output("fetched");
    auto size = fetch.get(name, out.get(), /*exact=*/false);
    if (!size) return std::unexpected(size.error());
    return read_bytes_file(m_dir / "fetched");
  }
  void push_text(std::string_view name, std::string_view text) { push(name, as_bytes(text)); }

  // Stores an object exactly as Ingest would, but without indexing it: a crash between the
  // durable store and the index write.
  void store_unindexed(std::string_view name, std::span<const std::byte> content) {
    auto parsed = parse_wal_name(name);
    ASSERT_TRUE(parsed) << name;
    auto stored = m_repository->objects().put(object_key(*parsed), content, m_compress, PutMode::create_only);
    ASSERT_TRUE(stored) << stored.error().message;
  }

  std::string object_path(std::string_view name) const { return m_dir / ("repo/" + object_key(*parse_wal_name(name))); }
  std::string object_key_of(std::string_view name) const { return object_key(*parse_wal_name(name)); }

  std::uint64_t file_size(const std::string& path) const {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return static_cast<std::uint64_t>(st.st_size);
  }

  // An empty regular file to receive a fetched object, as archive-get creates next to %p.
  UniqueFd output(const std::string& name) {
    UniqueFd fd(::open((m_dir / name).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    EXPECT_TRUE(fd);
    return fd;
  }

  std::optional<IndexedObject> indexed(std::string_view name) {
    auto found = m_index->find(name);
    EXPECT_TRUE(found) << found.error().message;
    return found ? *found : std::nullopt;
  }

  TempDir m_dir{"walvault-archive"};
  CompressSpec m_compress{Codec::zstd, 1};
  std::unique_ptr<Repository> m_repository;
  std::unique_ptr<Index> m_index;
  std::unique_ptr<Indexer> m_indexer;
  std::unique_ptr<Ingest> m_ingest;
  int m_sources = 0;
};

}  // namespace walvault::test
