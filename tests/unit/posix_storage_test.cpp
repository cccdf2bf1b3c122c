#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "common/core/storage/storage.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using test::bytes_of;
using test::TempDir;

// The keys of a list() answer, in its order; a failure becomes one entry naming it.
std::vector<std::string> keys_of(const Result<std::vector<std::string>>& listed) {
  if (!listed) return {"<failed: " + listed.error().message + ">"};
  return *listed;
}

class PosixStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto storage = open_posix_storage(m_dir.path());
    ASSERT_TRUE(storage) << storage.error().message;
    m_storage = std::move(*storage);
  }

  std::string text_of(const std::string& key) {
    auto data = m_storage->get(key);
    EXPECT_TRUE(data) << (data ? "" : data.error().message);
    return data && *data ? std::string(as_text(**data)) : std::string("<missing>");
  }

  TempDir m_dir{"walvault-storage"};
  std::unique_ptr<Storage> m_storage;
};

TEST_F(PosixStorageTest, PutGetExistsRemoveListWithNestedKeys) {
  EXPECT_EQ(m_storage->describe(), m_dir.path());
  ASSERT_TRUE(m_storage->put("wal/0000000100000000/000000010000000000000001", bytes_of("segment one"), PutMode::create_only));
  ASSERT_TRUE(m_storage->put("wal/0000000100000000/000000010000000000000002", bytes_of("segment two"), PutMode::create_only));
  ASSERT_TRUE(m_storage->put("wal/history/00000002.history", bytes_of("1\t0/3000158\tx\n"), PutMode::create_only));
  ASSERT_TRUE(m_storage->put("walvault.repo", bytes_of("format=1\n"), PutMode::replace));
  ASSERT_TRUE(m_storage->put("a/b/c/d/e", bytes_of(""), PutMode::create_only));

  EXPECT_EQ(text_of("wal/0000000100000000/000000010000000000000001"), "segment one");
  EXPECT_EQ(text_of("a/b/c/d/e"), "");
  // The object is a plain file where the key says.
  EXPECT_EQ(as_text(test::read_bytes_file(m_dir / "wal/0000000100000000/000000010000000000000002")), "segment two");

  EXPECT_EQ(m_storage->exists("walvault.repo"), true);
  EXPECT_EQ(m_storage->exists("wal/history/00000002.history"), true);
  EXPECT_EQ(m_storage->exists("wal/history/00000003.history"), false);
  EXPECT_EQ(m_storage->exists("nothing/below/here"), false);
  EXPECT_EQ(m_storage->exists("walvault.repo/below"), false);  // ENOTDIR is "not there"

  auto all = m_storage->list("");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(keys_of(all), (std::vector<std::string>{"a/b/c/d/e", "wal/0000000100000000/000000010000000000000001",
                                            "wal/0000000100000000/000000010000000000000002",
                                            "wal/history/00000002.history", "walvault.repo"}));
  auto wal = m_storage->list("wal/0000000100000000");
  ASSERT_TRUE(wal);
  EXPECT_EQ(keys_of(wal), (std::vector<std::string>{"wal/0000000100000000/000000010000000000000001",
                                            "wal/0000000100000000/000000010000000000000002"}));
  auto none = m_storage->list("wal/0000000200000000");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(m_storage->remove("wal/0000000100000000/000000010000000000000001"));
  EXPECT_EQ(m_storage->exists("wal/0000000100000000/000000010000000000000001"), false);
  ASSERT_TRUE(m_storage->remove("wal/0000000100000000/000000010000000000000001"));  // missing: fine
  ASSERT_TRUE(m_storage->remove("never/was/here"));
  // Absence is a value, not an error: only the caller knows what a missing key means.
  auto missing = m_storage->get("wal/0000000100000000/000000010000000000000001");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  auto missing_reader = m_storage->open_read("wal/0000000100000000/000000010000000000000001");
  ASSERT_TRUE(missing_reader) << missing_reader.error().message;
  EXPECT_FALSE(missing_reader->has_value());
  // A key below a plain file (ENOTDIR) is absent as well.
  ASSERT_TRUE(m_storage->put("plain", bytes_of("x"), PutMode::create_only));
  auto below_file = m_storage->get("plain/child");
  ASSERT_TRUE(below_file) << below_file.error().message;
  EXPECT_FALSE(below_file->has_value());
  ASSERT_TRUE(m_storage->remove("plain"));
  EXPECT_TRUE(test::temp_files_below(m_dir.path()).empty());
}

TEST_F(PosixStorageTest, CreateOnlyRefusesExistingKeyAndKeepsContent) {
  ASSERT_TRUE(m_storage->put("wal/x/key", bytes_of("original"), PutMode::create_only));
  auto again = m_storage->put("wal/x/key", bytes_of("different content"), PutMode::create_only);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::conflict);
  EXPECT_NE(again.error().message.find("'" + m_dir.path() + "/wal/x/key'"), std::string::npos) << again.error().message;
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos) << again.error().message;
  EXPECT_EQ(text_of("wal/x/key"), "original");
  // The same content is still refused: create_only is about the name, not the bytes.
  auto same = m_storage->put("wal/x/key", bytes_of("original"), PutMode::create_only);
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().kind, ErrorKind::conflict);
  EXPECT_TRUE(test::temp_files_below(m_dir.path()).empty()) << test::temp_files_below(m_dir.path())[0];
  EXPECT_EQ(keys_of(m_storage->list("")), std::vector<std::string>{"wal/x/key"});
}

TEST_F(PosixStorageTest, ReplaceReplaces) {
  ASSERT_TRUE(m_storage->put("k", bytes_of("first version, longer"), PutMode::replace));
  ASSERT_TRUE(m_storage->put("k", bytes_of("second"), PutMode::replace));
  EXPECT_EQ(text_of("k"), "second");
  EXPECT_TRUE(test::temp_files_below(m_dir.path()).empty());
}

TEST_F(PosixStorageTest, ObjectsAreNotWorldReadable) {
  ASSERT_TRUE(m_storage->put("wal/x/key", bytes_of("secret"), PutMode::create_only));
  struct stat st {};
  ASSERT_EQ(::stat((m_dir / "wal/x/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0007, 0u);
}

TEST_F(PosixStorageTest, GetWithMaxBytes) {
  ASSERT_TRUE(m_storage->put("obj", bytes_of("0123456789"), PutMode::create_only));
  auto head = m_storage->get("obj", 4);
  ASSERT_TRUE(head && *head);
  EXPECT_EQ(as_text(**head), "0123");
  auto zero = m_storage->get("obj", 0);
  ASSERT_TRUE(zero && *zero);
  EXPECT_TRUE((*zero)->empty());
  auto more = m_storage->get("obj", 1000);
  ASSERT_TRUE(more && *more);
  EXPECT_EQ(as_text(**more), "0123456789");
  auto missing = m_storage->get("nope", 4);
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
}

TEST_F(PosixStorageTest, InfoAndListReportSizeAndTime) {
  const auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  ASSERT_TRUE(m_storage->put("wal/a/one", bytes_of("12345"), PutMode::create_only));
  ASSERT_TRUE(m_storage->put("wal/b/two", bytes_of(""), PutMode::create_only));
  const auto after = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  auto found = m_storage->info("wal/a/one");
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_TRUE(found->has_value());
  const ObjectInfo* info = &**found;
  EXPECT_EQ(info->key, "wal/a/one");
  EXPECT_EQ(info->size, 5u);
  // File systems keep coarse timestamps; allow a little slack on either side.
  EXPECT_GE(info->modified_us, before - 20000);
  EXPECT_LE(info->modified_us, after + 20000);

  auto listed = m_storage->list_objects("wal");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].key, "wal/a/one");
  EXPECT_EQ((*listed)[0].size, 5u);
  EXPECT_EQ((*listed)[0].modified_us, info->modified_us);
  EXPECT_EQ((*listed)[1].key, "wal/b/two");
  EXPECT_EQ((*listed)[1].size, 0u);

  auto missing = m_storage->info("wal/a/none");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  auto invalid = m_storage->info("../x");
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().kind, ErrorKind::invalid);
}

TEST_F(PosixStorageTest, GetOfADirectoryIsNotAnObject) {
  ASSERT_TRUE(m_storage->put("dir/obj", bytes_of("x"), PutMode::create_only));
  auto dir = m_storage->get("dir");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().message.find("is not a regular file"), std::string::npos) << dir.error().message;
}

TEST_F(PosixStorageTest, InvalidKeysAreRefused) {
  for (const std::string& key : std::vector<std::string>{"../x", "/abs", "a//b", "", "a/", "/", ".", "..", "a/../b", "a/./b", "./a", "a b",
                                "a\\b", "wal/x/\nkey", "key\x01", std::string(1025, 'a'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(is_valid_storage_key(key)) << "'" << key << "'";
    auto put = m_storage->put(key, bytes_of("x"), PutMode::replace);
    ASSERT_FALSE(put) << "'" << key << "'";
    EXPECT_EQ(put.error().kind, ErrorKind::invalid);
    EXPECT_NE(put.error().message.find("invalid storage key"), std::string::npos) << put.error().message;
    auto get = m_storage->get(key);
    ASSERT_FALSE(get);
    EXPECT_EQ(get.error().kind, ErrorKind::invalid);
    auto exists = m_storage->exists(key);
    ASSERT_FALSE(exists);
    EXPECT_EQ(exists.error().kind, ErrorKind::invalid);
    auto removed = m_storage->remove(key);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().kind, ErrorKind::invalid);
  }
  for (const char* key : {"a", "a/b", "A-Z_0.9/x.y", "wal/0000000100000000/000000010000000000000001.partial", "..a", "a.."})
    EXPECT_TRUE(is_valid_storage_key(key)) << key;
  EXPECT_TRUE(is_valid_storage_key(std::string(1024, 'a')));
  // Nothing escaped the repository.
  EXPECT_TRUE(test::walk_tree(m_dir.path()).empty());
}

// list() takes a prefix from its caller just like get() takes a key; it must not walk
// outside the repository either.
TEST_F(PosixStorageTest, ListRefusesPrefixThatEscapesTheRepository) {
  TempDir outside("walvault-outside");
  test::write_text_file(outside / "secret", "x");
  const std::string escape = "../" + std::string(base_name(outside.path()));
  auto listed = m_storage->list(escape);
  if (listed) {
    ADD_FAILURE() << "list('" << escape << "') walked outside the repository and returned " << listed->size()
                  << " key(s)" << (listed->empty() ? "" : ", first '" + listed->front() + "'");
  } else {
    EXPECT_EQ(listed.error().kind, ErrorKind::invalid);
    EXPECT_NE(listed.error().message.find(escape), std::string::npos) << listed.error().message;
  }
  for (const char* prefix : {"..", "/", "/etc", "a//b", "wal/../..", "wal/"}) {
    auto bad = m_storage->list(prefix);
    ASSERT_FALSE(bad) << prefix;
    EXPECT_EQ(bad.error().kind, ErrorKind::invalid) << prefix;
    auto bad_objects = m_storage->list_objects(prefix);
    ASSERT_FALSE(bad_objects) << prefix;
    EXPECT_EQ(bad_objects.error().kind, ErrorKind::invalid) << prefix;
  }
}

TEST_F(PosixStorageTest, NoTempFilesLeftAfterFailures) {
  // A directory where the object should go: rename/link onto it fails.
  ASSERT_EQ(::mkdir((m_dir / "blocked").c_str(), 0750), 0);
  ASSERT_EQ(::mkdir((m_dir / "blocked/inner").c_str(), 0750), 0);
  auto replaced = m_storage->put("blocked", bytes_of("x"), PutMode::replace);
  ASSERT_FALSE(replaced);
  EXPECT_NE(replaced.error().message.find(m_dir.path() + "/blocked"), std::string::npos) << replaced.error().message;
  auto linked = m_storage->put("blocked", bytes_of("x"), PutMode::create_only);
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().kind, ErrorKind::conflict);
  // A file where a directory should be.
  ASSERT_TRUE(m_storage->put("file", bytes_of("x"), PutMode::create_only));
  auto below_file = m_storage->put("file/obj", bytes_of("x"), PutMode::create_only);
  ASSERT_FALSE(below_file);
  EXPECT_NE(below_file.error().message.find(m_dir.path() + "/file"), std::string::npos) << below_file.error().message;
  const auto leftovers = test::temp_files_below(m_dir.path());
  EXPECT_TRUE(leftovers.empty()) << leftovers.front();
}

TEST(OpenStorage, SchemesAndPaths) {
  // s3:// selects the S3 backend (tests/unit/s3_storage_test.cpp); without credentials it is
  // refused by name, with them it opens without contacting the store.
  auto s3 = open_storage("s3://bucket/prefix");
  ASSERT_FALSE(s3);
  EXPECT_EQ(s3.error().kind, ErrorKind::invalid);
  EXPECT_NE(s3.error().message.find("'s3://bucket/prefix'"), std::string::npos) << s3.error().message;
  EXPECT_NE(s3.error().message.find("no S3 credentials"), std::string::npos) << s3.error().message;
  StorageOptions options;
  options.s3_key = "AKIDEXAMPLE";
  options.s3_key_secret = "secret-value";
  options.s3_endpoint = "http://127.0.0.1:9";
  auto opened = open_storage("s3://bucket/prefix/", options);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ((*opened)->describe(), "s3://bucket/prefix (http://127.0.0.1:9)");
  EXPECT_EQ((*opened)->describe().find("secret-value"), std::string::npos);

  auto relative = open_storage("relative/repo");
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().kind, ErrorKind::invalid);
  EXPECT_NE(relative.error().message.find("'relative/repo' must be an absolute path"), std::string::npos)
      << relative.error().message;

  auto relative_url = open_storage("file://relative/repo");
  ASSERT_FALSE(relative_url);
  EXPECT_NE(relative_url.error().message.find("must be an absolute path"), std::string::npos);

  auto unknown = open_storage("ftp://host/dir");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown scheme"), std::string::npos) << unknown.error().message;

  auto empty = open_storage("");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("repo"), std::string::npos) << empty.error().message;

  TempDir dir("walvault-open");
  auto url = open_storage("file://" + dir.path() + "/nested/repo");
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_EQ((*url)->describe(), dir.path() + "/nested/repo");
  ASSERT_TRUE((*url)->put("k", bytes_of("v"), PutMode::create_only));
  EXPECT_EQ(as_text(test::read_bytes_file(dir / "nested/repo/k")), "v");
  // The write probe leaves nothing behind.
  EXPECT_EQ(test::walk_tree(dir / "nested/repo"), std::vector<std::string>{"k"});

  auto path = open_storage(dir.path() + "/nested/repo");
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_TRUE((*path)->exists("k").value_or(false));
}

TEST(OpenStorage, RefusesAFileAsRepository) {
  TempDir dir("walvault-open");
  test::write_text_file(dir / "plain", "x");
  auto storage = open_storage(dir / "plain");
  ASSERT_FALSE(storage);
  EXPECT_NE(storage.error().message.find("'" + dir.path() + "/plain'"), std::string::npos) << storage.error().message;
}

// Real faults on real file systems: a read-only mount and a full one.
class StorageFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (m_mounted) {
      if (::umount2(m_dir.path().c_str(), MNT_DETACH) != 0) {
        ADD_FAILURE() << "umount " << m_dir.path() << ": " << std::strerror(errno);
      }
      m_mounted = false;
    }
    ::chmod(m_dir.path().c_str(), 0700);
  }

  // A tmpfs of `size_option` on the test directory; false when this process may not mount.
  bool mount_tmpfs(const std::string& options) {
    if (::geteuid() != 0) return false;
    if (::mount("tmpfs", m_dir.path().c_str(), "tmpfs", 0, options.c_str()) != 0) return false;
    m_mounted = true;
    return true;
  }

  bool remount_read_only() {
    return ::mount("tmpfs", m_dir.path().c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=64k") == 0;
  }

  TempDir m_dir{"walvault-fault"};
  bool m_mounted = false;
};

TEST_F(StorageFaultTest, ReadOnlyRepository) {
  const std::string root = m_dir.path();
  if (::geteuid() != 0) {
    // Without root, permissions do stop writes.
    auto storage = open_posix_storage(root);
    ASSERT_TRUE(storage) << storage.error().message;
    ASSERT_EQ(::chmod(root.c_str(), 0500), 0);
    auto put = (*storage)->put("k", bytes_of("x"), PutMode::create_only);
    ASSERT_FALSE(put);
    EXPECT_NE(put.error().message.find("'" + root + "/k.tmp."), std::string::npos) << put.error().message;
    EXPECT_NE(put.error().message.find("[13] Permission denied"), std::string::npos) << put.error().message;
    return;
  }
  if (!mount_tmpfs("ro,size=64k")) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);

  // Opening a read-only repository fails at once, naming it and the cause.
  auto refused = open_posix_storage(root);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::io);
  EXPECT_NE(refused.error().message.find("'" + root + "'"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("[30] Read-only file system"), std::string::npos) << refused.error().message;

  // A repository that turns read-only while open: put fails, naming the path and the cause.
  ASSERT_EQ(::umount2(root.c_str(), 0), 0);
  m_mounted = false;
  ASSERT_TRUE(mount_tmpfs("size=64k"));
  auto storage = open_posix_storage(root);
  ASSERT_TRUE(storage) << storage.error().message;
  ASSERT_TRUE((*storage)->put("wal/x/old", bytes_of("kept"), PutMode::create_only));
  ASSERT_TRUE(remount_read_only()) << std::strerror(errno);

  auto in_new_dir = (*storage)->put("wal/y/new", bytes_of("x"), PutMode::create_only);
  ASSERT_FALSE(in_new_dir);
  EXPECT_EQ(in_new_dir.error().kind, ErrorKind::io);
  EXPECT_NE(in_new_dir.error().message.find("unable to create directory '" + root + "/wal/y'"), std::string::npos)
      << in_new_dir.error().message;
  EXPECT_NE(in_new_dir.error().message.find("[30] Read-only file system"), std::string::npos)
      << in_new_dir.error().message;

  auto in_old_dir = (*storage)->put("wal/x/new", bytes_of("x"), PutMode::create_only);
  ASSERT_FALSE(in_old_dir);
  EXPECT_NE(in_old_dir.error().message.find("'" + root + "/wal/x/new.tmp."), std::string::npos)
      << in_old_dir.error().message;
  EXPECT_NE(in_old_dir.error().message.find("[30] Read-only file system"), std::string::npos)
      << in_old_dir.error().message;

  auto removed = (*storage)->remove("wal/x/old");
  ASSERT_FALSE(removed);
  EXPECT_NE(removed.error().message.find("[30] Read-only file system"), std::string::npos) << removed.error().message;

  // Reading still works.
  auto old = (*storage)->get("wal/x/old");
  ASSERT_TRUE(old) << old.error().message;
  ASSERT_TRUE(old->has_value());
  EXPECT_EQ(as_text(**old), "kept");
}

TEST_F(StorageFaultTest, NoSpaceLeftOnDevice) {
  if (!mount_tmpfs("size=64k")) GTEST_SKIP() << "needs root and permission to mount a tmpfs";
  const std::string root = m_dir.path();
  auto storage = open_posix_storage(root);
  ASSERT_TRUE(storage) << storage.error().message;

  std::vector<std::byte> big(1u << 20, std::byte{0x5A});
  auto put = (*storage)->put("wal/0000000100000000/000000010000000000000001", big, PutMode::create_only);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().kind, ErrorKind::no_space);
  EXPECT_NE(put.error().message.find("'" + root + "/wal/0000000100000000/000000010000000000000001.tmp."),
            std::string::npos)
      << put.error().message;
  EXPECT_NE(put.error().message.find("[28] No space left on device"), std::string::npos) << put.error().message;

  auto replaced = (*storage)->put("walvault.repo", big, PutMode::replace);
  ASSERT_FALSE(replaced);
  EXPECT_EQ(replaced.error().kind, ErrorKind::no_space);

  // No partial object, no temp file.
  auto keys = (*storage)->list("");
  ASSERT_TRUE(keys) << keys.error().message;
  EXPECT_TRUE(keys->empty()) << keys->front();
  auto space = (*storage)->space();
  ASSERT_TRUE(space) << space.error().message;
  ASSERT_TRUE(space->has_value());
  EXPECT_EQ((*space)->total, 64u * 1024);
  EXPECT_LE((*space)->available, (*space)->total);
  EXPECT_EQ((*storage)->exists("wal/0000000100000000/000000010000000000000001"), false);
  const auto leftovers = test::temp_files_below(root);
  EXPECT_TRUE(leftovers.empty()) << leftovers.front();

  // The space was given back: a small object still fits.
  ASSERT_TRUE((*storage)->put("small", bytes_of("fits"), PutMode::create_only));
  EXPECT_EQ(as_text((*storage)->get("small").value().value()), "fits");
}

}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

// Writes a file straight into the repository directory, as a crashed writer would leave it.
void leave_file(const std::string& path, std::string_view content) {
  ASSERT_TRUE(make_directories(parent_directory(path)));
  ASSERT_TRUE(write_file_durable(path, as_bytes(content), true));
}

TEST_F(PosixStorageTest, ChildrenIncludeDirectoriesHoldingOnlyAbandonedWrites) {
  ASSERT_TRUE(m_storage->put("backup/A/chunk-00001.tar", as_bytes("x"), PutMode::create_only));
  leave_file(m_dir / "backup/B/chunk-00001.tar.tmp.999999.0", "partial");
  auto children = m_storage->list_children("backup");
  ASSERT_TRUE(children) << children.error().message;
  EXPECT_EQ(*children, (std::vector<std::string>{"A", "B"}));
  EXPECT_TRUE(m_storage->list_objects("backup/B").value().empty()) << "temp files are not objects";
  EXPECT_TRUE(m_storage->list_children("nothing-here").value().empty());
}

TEST_F(PosixStorageTest, RemoveAllTakesTempFilesAndTheDirectory) {
  ASSERT_TRUE(m_storage->put("backup/B/chunk-00001.tar", as_bytes("12345"), PutMode::create_only));
  leave_file(m_dir / "backup/B/chunk-00002.tar.tmp.999999.0", "abc");
  ASSERT_TRUE(m_storage->put("backup/C/chunk-00001.tar", as_bytes("keep"), PutMode::create_only));
  auto removed = m_storage->remove_all("backup/B");
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->objects, 2u);
  EXPECT_EQ(removed->bytes, 8u);
  EXPECT_EQ(m_storage->list_children("backup").value(), std::vector<std::string>{"C"});
  EXPECT_TRUE(m_storage->remove_all("backup/missing")) << "removing nothing succeeds";
}

TEST_F(PosixStorageTest, AbandonedWritesOfDeadProcessesGoLiveOnesStay) {
  ASSERT_TRUE(m_storage->put("wal/0000000100000000/000000010000000000000001", as_bytes("seg"), PutMode::create_only));
  // pid 999999 is above pid_max on Linux (at most 4194304 is possible, but the default is far
  // lower); our own pid stands for "this process crashed earlier with the same pid".
  const std::string dead = m_dir / "wal/0000000100000000/000000010000000000000002.tmp.999999.3";
  const std::string ours = m_dir / ("backup/X/chunk-00001.tar.tmp." + std::to_string(::getpid()) + ".1");
  const std::string live = m_dir / "wal/0000000100000000/000000010000000000000003.tmp.1.0";  // init: alive
  leave_file(dead, "a");
  leave_file(ours, "bb");
  leave_file(live, "ccc");
  auto removed = m_storage->remove_abandoned_writes();
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->objects, 2u);
  EXPECT_NE(::access(dead.c_str(), F_OK), 0);
  EXPECT_NE(::access(ours.c_str(), F_OK), 0);
  EXPECT_EQ(::access(live.c_str(), F_OK), 0) << "a live process's write was removed";
  EXPECT_TRUE(m_storage->exists("wal/0000000100000000/000000010000000000000001").value());
}

}  // namespace
}  // namespace walvault
