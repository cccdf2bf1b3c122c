// The chunker alone, fed a tar stream as pg_basebackup writes one: it cuts chunks at entry
// boundaries once they hold chunk_size bytes, keeps backup_label and PG_VERSION, and every
// chunk decodes to a tar archive holding exactly its entries.
#include "archiver/backup_chunker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/core/object_store.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using Files = std::vector<std::pair<std::string, std::string>>;  // path, content

// A tar archive (pax, as pg_basebackup's is ustar; libarchive reads both) of `files`.
std::string make_tar(const Files& files) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open2(
      a, &out, nullptr,
      [](archive*, void* client, const void* buffer, size_t length) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
        return static_cast<la_ssize_t>(length);
      },
      nullptr, nullptr);
  for (const auto& [path, content] : files) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, path.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0600);
    archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
    archive_write_header(a, entry);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// The entries of a tar archive held in memory.
std::map<std::string, std::string> entries_of(const std::vector<std::byte>& tar) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    std::string content(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    if (!content.empty()) archive_read_data(a, content.data(), content.size());
    out[archive_entry_pathname(entry)] = content;
  }
  archive_read_free(a);
  return out;
}

class BackupChunkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repository = Repository::open(m_dir / "repo");
    ASSERT_TRUE(repository) << repository.error().message;
    m_repository = std::move(*repository);
  }

  Result<ChunkedTar> chunk(const std::string& stream, std::uint64_t chunk_size, ChunkerHooks hooks = {}) {
    const std::string path = m_dir / "stream.tar";
    test::write_text_file(path, stream);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return store_tar_as_chunks(fd.get(), m_repository->objects(), "20261203T120000Z", chunk_size, CompressSpec{}, hooks);
  }

  test::TempDir m_dir{"walvault-chunker"};
  std::unique_ptr<Repository> m_repository;
};

TEST_F(BackupChunkerTest, CutsChunksAtEntryBoundariesAndKeepsWhatTheBackupNeeds) {
  const Files files = {{"backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n"},
                       {"PG_VERSION", "15\n"},
                       {"base/1/1259", std::string(300 * 1024, 'a')},
                       {"base/1/1249", std::string(300 * 1024, 'b')},
                       {"global/pg_control", std::string(8192, 'c')},
                       {"backup_manifest", "{}"}};
  std::size_t progress_calls = 0;
  ChunkerHooks hooks;
  hooks.on_progress = [&](const ChunkedTar&) { ++progress_calls; };
  auto tar = chunk(make_tar(files), 256 * 1024, hooks);
  ASSERT_TRUE(tar) << tar.error().message;
  EXPECT_EQ(tar->files, files.size());
  EXPECT_TRUE(tar->has_manifest);
  EXPECT_EQ(tar->backup_label, files[0].second);
  EXPECT_EQ(tar->pg_version, "15\n");
  EXPECT_GT(progress_calls, 0u);
  // 256 KiB chunks: each 300 KiB file closes the chunk it lands in.
  ASSERT_EQ(tar->chunks.size(), 3u);
  std::map<std::string, std::string> restored;
  std::uint64_t plain = 0, stored = 0;
  for (std::size_t i = 0; i < tar->chunks.size(); ++i) {
    const BackupChunk& c = tar->chunks[i];
    EXPECT_EQ(c.key, backup_chunk_key("20261203T120000Z", i + 1));
    auto object = m_repository->objects().read(c.key, ReadChecks::expecting(c.sha256));
    ASSERT_TRUE(object && *object) << c.key;
    EXPECT_EQ((*object)->plain.size(), c.plain_size);
    const auto entries = entries_of((*object)->plain);
    EXPECT_EQ(entries.size(), c.entries) << c.key;
    restored.insert(entries.begin(), entries.end());
    plain += c.plain_size;
    stored += c.stored_size;
  }
  EXPECT_EQ(stored, tar->stored_bytes);
  EXPECT_GT(plain, tar->plain_bytes) << "chunks are tar archives: headers and padding on top of the file data";
  for (const auto& [path, content] : files) EXPECT_EQ(restored[path], content) << path;
}

TEST_F(BackupChunkerTest, ABrokenStreamFailsAndSaysSo) {
  std::string stream = make_tar({{"base/1/1259", std::string(100 * 1024, 'a')}, {"PG_VERSION", "15\n"}});
  stream.resize(stream.size() / 2);  // pg_basebackup died mid-file
  auto tar = chunk(stream, 1 << 20);
  ASSERT_FALSE(tar);
  EXPECT_EQ(tar.error().kind, ErrorKind::io);
  EXPECT_NE(tar.error().message.find("pg_basebackup's tar stream"), std::string::npos) << tar.error().message;
}

TEST_F(BackupChunkerTest, StopsWhenCancelled) {
  ChunkerHooks hooks;
  hooks.cancelled = [] { return true; };
  auto tar = chunk(make_tar({{"PG_VERSION", "15\n"}}), 1 << 20, hooks);
  ASSERT_FALSE(tar);
  EXPECT_NE(tar.error().message.find("cancelled"), std::string::npos) << tar.error().message;
}

}  // namespace
}  // namespace walvault
