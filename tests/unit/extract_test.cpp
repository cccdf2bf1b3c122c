#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "restorer/extract.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using test::TempDir;
using test::walk_tree;

// One entry of a tar stream built in memory with libarchive's pax-restricted writer, the
// writer the backup server re-packs pg_basebackup's output with.
struct TarEntry {
  std::string path;
  unsigned type = AE_IFREG;
  unsigned perm = 0600;
  std::string data;
  std::string symlink;
  std::string hardlink;
};

TarEntry dir_entry(std::string path, unsigned perm = 0700) {
  return {std::move(path), AE_IFDIR, perm, {}, {}, {}};
}
TarEntry file_entry(std::string path, std::string data, unsigned perm = 0600) {
  return {std::move(path), AE_IFREG, perm, std::move(data), {}, {}};
}
TarEntry symlink_entry(std::string path, std::string target) {
  return {std::move(path), AE_IFLNK, 0777, {}, std::move(target), {}};
}
TarEntry hardlink_entry(std::string path, std::string target) {
  return {std::move(path), AE_IFREG, 0600, {}, {}, std::move(target)};
}

constexpr std::int64_t k_mtime = 1700000000;  // 2023-11-14, any fixed past time

la_ssize_t append_to_string(struct archive*, void* client, const void* buffer, std::size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// The tar stream; without `end_marker` it stops right after the last entry, which a cut
// connection can produce and libarchive's reader by itself accepts as a complete archive.
std::string make_tar(const std::vector<TarEntry>& entries, bool end_marker = true) {
  std::string out;
  struct archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  archive_write_set_bytes_in_last_block(writer, 1);  // no padding after the marker
  if (archive_write_open(writer, &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK)
    throw std::runtime_error(archive_error_string(writer));
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, e.perm);
    archive_entry_set_mtime(entry, k_mtime, 0);
    archive_entry_set_uid(entry, 26);
    archive_entry_set_gid(entry, 26);
    if (!e.symlink.empty()) archive_entry_set_symlink(entry, e.symlink.c_str());
    if (!e.hardlink.empty()) archive_entry_set_hardlink(entry, e.hardlink.c_str());
    if (e.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(1, 3));
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    if (archive_write_header(writer, entry) != ARCHIVE_OK)
      throw std::runtime_error(std::string("tar header for ") + e.path + ": " + archive_error_string(writer));
    if (!e.data.empty() && archive_write_data(writer, e.data.data(), e.data.size()) < 0)
      throw std::runtime_error(archive_error_string(writer));
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
  if (!end_marker) out.resize(out.size() - 1024);  // the two zero blocks
  return out;
}

// Writes `data` into a pipe from a thread, as the restore client's network reader does, and
// records whether every byte went in (a reader that stops early makes the writer see EPIPE).
class PipeFeed {
 public:
  explicit PipeFeed(std::string data) : m_data(std::move(data)) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    m_read_fd = fds[0];
    const int write_fd = fds[1];
    m_thread = std::thread([this, write_fd] {
      // SIGPIPE is sent to the writing thread; blocked here, it becomes a plain EPIPE.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      std::size_t done = 0;
      while (done < m_data.size()) {
        const ssize_t n = ::write(write_fd, m_data.data() + done, m_data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          m_write_errno = errno;
          break;
        }
        done += static_cast<std::size_t>(n);
      }
      m_written = done;
      ::close(write_fd);
    });
  }
  ~PipeFeed() { finish(); }
  PipeFeed(const PipeFeed&) = delete;
  PipeFeed& operator=(const PipeFeed&) = delete;

  int fd() const { return m_read_fd; }
  // Closes the read end and waits for the writer; afterwards written()/write_errno() are final.
  void finish() {
    if (m_read_fd >= 0) ::close(m_read_fd);
    m_read_fd = -1;
    if (m_thread.joinable()) m_thread.join();
  }
  std::size_t written() const { return m_written; }
  std::size_t size() const { return m_data.size(); }
  int write_errno() const { return m_write_errno; }

 private:
  std::string m_data;
  int m_read_fd = -1;
  std::thread m_thread;
  std::size_t m_written = 0;
  int m_write_errno = 0;
};

Result<ExtractStats> extract_string(const std::string& tar, ExtractOptions options) {
  PipeFeed feed(tar);
  auto result = extract_tar(feed.fd(), options);
  feed.finish();
  return result;
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("lstat " + path + ": " + std::strerror(errno));
  return st;
}

std::string read_text(const std::string& path) {
  const auto bytes = test::read_bytes_file(path);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string read_link(const std::string& path) {
  std::vector<char> buffer(4096);
  const ssize_t n = ::readlink(path.c_str(), buffer.data(), buffer.size());
  if (n < 0) throw std::runtime_error("readlink " + path);
  return {buffer.data(), static_cast<std::size_t>(n)};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

mode_t current_umask() {
  const mode_t mask = ::umask(022);
  ::umask(mask);
  return mask;
}

// A parent temp directory holding the data directory "root" and an empty "outside" that a
// refused entry aims at; everything the test leaves behind can be scanned from the parent.
class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(root().c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(outside().c_str(), 0700), 0);
  }

  std::string root() const { return m_parent / "root"; }
  std::string outside() const { return m_parent / "outside"; }
  std::string in_root(std::string_view rel) const { return root() + "/" + std::string(rel); }

  ExtractOptions options(std::string what = "backup 20261124T093001Z chunk 3") const {
    ExtractOptions o;
    o.root = root();
    o.what = std::move(what);
    return o;
  }

  // Every path in the parent that is not the root, below the root, or the empty "outside".
  std::vector<std::string> strays() const {
    std::vector<std::string> out;
    for (const auto& path : walk_tree(m_parent.path()))
      if (path != "root" && path.rfind("root/", 0) != 0 && path != "outside") out.push_back(path);
    return out;
  }

  TempDir m_parent{"walvault-extract"};
};

// ---- the lexical check ----

TEST(ExtractEntryCheck, AcceptsPlainRelativePaths) {
  for (std::string_view path : {"a", "base/1/1259", "./global/pg_control", "a//b/", "pg_wal/", "a/./b"})
    EXPECT_EQ(unsafe_entry_reason(path, std::nullopt), std::nullopt) << path;
}

TEST(ExtractEntryCheck, RefusesPathsThatLeaveOrAreNotRelative) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"", "path is empty"},
      {"/etc/x", "path is absolute"},
      {"//etc/x", "path is absolute"},
      {"../x", "path leaves the data directory"},
      {"./../x", "path leaves the data directory"},
      {"a/../../x", "path leaves the data directory"},
      {"a/..", "'..'"},
      {"a/../b", "'..'"},
      {".", "data directory itself"},
      {"./", "data directory itself"},
  };
  for (const auto& [path, why] : cases) {
    auto reason = unsafe_entry_reason(path, std::nullopt);
    ASSERT_TRUE(reason) << "'" << path << "' was accepted";
    EXPECT_NE(reason->find(why), std::string::npos) << path << ": " << *reason;
  }
}

TEST(ExtractEntryCheck, AcceptsSymlinksThatStayInside) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"a", "b"},       {"a/b", "../c"}, {"a/b/c", "../../d"}, {"a/b", ".."}, {"inside_link", "sub"},
      {"a/b", "./c/d"}, {"a", "."},
  };
  for (const auto& [path, target] : cases)
    EXPECT_EQ(unsafe_entry_reason(path, target), std::nullopt) << path << " -> " << target;
}

TEST(ExtractEntryCheck, RefusesSymlinksThatLeaveOrCannotBeChecked) {
  const std::vector<std::tuple<std::string_view, std::string_view, std::string_view>> cases = {
      {"pg_tblspc/16384", "/srv/ts", "link target '/srv/ts' is absolute"},
      {"a", "../../x", "link target '../../x' leaves the data directory"},
      {"a", "..", "leaves the data directory"},
      {"a/b", "../../x", "leaves the data directory"},
      {"a", "", "link target is empty"},
      // "x" may itself be a symlink elsewhere, so "x/.." is not known lexically.
      {"l", "d/x/..", "cannot be checked lexically"},
      {"a/b", "c/../../..", "cannot be checked lexically"},
      // The link's own path is checked first.
      {"../l", "x", "path leaves the data directory"},
  };
  for (const auto& [path, target, why] : cases) {
    auto reason = unsafe_entry_reason(path, target);
    ASSERT_TRUE(reason) << path << " -> " << target << " was accepted";
    EXPECT_NE(reason->find(why), std::string::npos) << path << " -> " << target << ": " << *reason;
  }
}

// ---- extraction ----

TEST_F(ExtractTest, NormalTreeWithModesContentLinksAndProgress) {
  std::string large(5 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>((i * 7919) >> 5);
  const std::vector<TarEntry> entries = {
      file_entry("PG_VERSION", "15\n"),
      dir_entry("base"),
      dir_entry("base/1"),
      file_entry("base/1/1259", std::string(8192, 'r')),
      file_entry("base/1/empty", ""),
      dir_entry("global", 0750),
      file_entry("global/pg_control", "control", 0640),
      file_entry("pg_wal_dir_missing/nested/file", "parents made by libarchive"),
      dir_entry("sub"),
      file_entry("sub/target", "through the link"),
      symlink_entry("inside_link", "sub"),
      symlink_entry("sub/up", "../PG_VERSION"),
      hardlink_entry("base/1/hard", "base/1/1259"),
      file_entry("large", large),
  };
  std::vector<std::uint64_t> calls;
  auto o = options();
  o.progress = [&](std::uint64_t bytes) { calls.push_back(bytes); };
  auto stats = extract_string(make_tar(entries), o);
  ASSERT_TRUE(stats) << stats.error().message;

  const std::uint64_t content = 3 + 8192 + 7 + 26 + 16 + large.size();
  EXPECT_EQ(stats->entries, entries.size());
  EXPECT_EQ(stats->files, 7u);
  EXPECT_EQ(stats->bytes, content);
  std::uint64_t sum = 0;
  for (auto c : calls) sum += c;
  EXPECT_EQ(sum, content);
  EXPECT_GE(calls.size(), 2u) << "one call near 4 MiB and one at the end";
  for (std::size_t i = 0; i + 1 < calls.size(); ++i) EXPECT_GE(calls[i], 4u << 20) << "call " << i;

  EXPECT_EQ(read_text(in_root("PG_VERSION")), "15\n");
  EXPECT_EQ(read_text(in_root("base/1/1259")), std::string(8192, 'r'));
  EXPECT_EQ(read_text(in_root("base/1/empty")), "");
  EXPECT_EQ(read_text(in_root("global/pg_control")), "control");
  EXPECT_EQ(read_text(in_root("pg_wal_dir_missing/nested/file")), "parents made by libarchive");
  EXPECT_EQ(read_text(in_root("large")), large);

  EXPECT_EQ(lstat_of(in_root("base")).st_mode & 07777, 0700u);
  EXPECT_EQ(lstat_of(in_root("base/1")).st_mode & 07777, 0700u);
  EXPECT_EQ(lstat_of(in_root("global")).st_mode & 07777, 0750u);
  EXPECT_EQ(lstat_of(in_root("PG_VERSION")).st_mode & 07777, 0600u);
  EXPECT_EQ(lstat_of(in_root("base/1/empty")).st_mode & 07777, 0600u);
  EXPECT_EQ(lstat_of(in_root("global/pg_control")).st_mode & 07777, 0640u);
  EXPECT_TRUE(S_ISDIR(lstat_of(in_root("pg_wal_dir_missing/nested")).st_mode));

  // Times are kept, directories' included (set when the writer closes).
  EXPECT_EQ(lstat_of(in_root("PG_VERSION")).st_mtime, k_mtime);
  EXPECT_EQ(lstat_of(in_root("base/1")).st_mtime, k_mtime);
  EXPECT_EQ(lstat_of(in_root("inside_link")).st_mtime, k_mtime);

  ASSERT_TRUE(S_ISLNK(lstat_of(in_root("inside_link")).st_mode));
  EXPECT_EQ(read_link(in_root("inside_link")), "sub");
  EXPECT_EQ(read_text(in_root("inside_link/target")), "through the link");
  EXPECT_EQ(read_link(in_root("sub/up")), "../PG_VERSION");
  EXPECT_EQ(lstat_of(in_root("base/1/hard")).st_ino, lstat_of(in_root("base/1/1259")).st_ino);

  // The data directory keeps its own mode; nothing lands beside it.
  EXPECT_EQ(lstat_of(root()).st_mode & 07777, 0700u);
  EXPECT_EQ(strays(), std::vector<std::string>{});
}

TEST_F(ExtractTest, DotSlashEntriesAndDuplicateSlashesAreNormalised) {
  const std::vector<TarEntry> entries = {dir_entry("./", 0755), dir_entry("./a//b/", 0700),
                                         file_entry(".//a/b//c", "c")};
  auto stats = extract_string(make_tar(entries), options());
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(read_text(in_root("a/b/c")), "c");
  // "./" would only restate the root's mode; the root belongs to whoever created it.
  EXPECT_EQ(lstat_of(root()).st_mode & 07777, 0700u);
}

TEST_F(ExtractTest, WorksWithoutProgressOrWhatAndThroughASymlinkedParent) {
  // A symlink above the data directory is legitimate (/var/lib/pgsql -> /srv/pgsql).
  const std::string alias = m_parent / "alias";
  ASSERT_EQ(::symlink(root().c_str(), alias.c_str()), 0);
  ExtractOptions o;
  o.root = alias;
  auto stats = extract_string(make_tar({dir_entry("d"), file_entry("d/f", "x")}), o);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(read_text(in_root("d/f")), "x");
}

struct Refusal {
  std::string name;
  std::vector<TarEntry> entries;  // "@OUT@" in paths and targets is replaced by the outside dir
  std::string entry;              // the entry the message must name ("@OUT@" replaced too)
  std::string why;
};

class ExtractRefusal : public ExtractTest, public ::testing::WithParamInterface<Refusal> {};

std::string with_outside(std::string text, const std::string& outside) {
  for (std::size_t at = text.find("@OUT@"); at != std::string::npos; at = text.find("@OUT@"))
    text.replace(at, 5, outside);
  return text;
}

TEST_P(ExtractRefusal, NamesTheEntryAndWritesNothingOutside) {
  const auto& c = GetParam();
  std::vector<TarEntry> entries = c.entries;
  for (auto& e : entries) {
    e.path = with_outside(e.path, outside());
    e.symlink = with_outside(e.symlink, outside());
    e.hardlink = with_outside(e.hardlink, outside());
  }
  // A harmless entry first, so the refusal happens mid-stream, and a victim file for links.
  entries.insert(entries.begin(), file_entry("x", "victim"));
  entries.insert(entries.begin(), file_entry("PG_VERSION", "15\n"));
  entries.push_back(file_entry("after", "never written"));

  auto result = extract_string(make_tar(entries), options());
  ASSERT_FALSE(result) << c.name << " was extracted";
  EXPECT_EQ(result.error().kind, ErrorKind::refused) << result.error().message;
  const std::string& message = result.error().message;
  EXPECT_EQ(message.rfind("backup 20261124T093001Z chunk 3: refusing unsafe entry '", 0), 0u) << message;
  EXPECT_NE(message.find("'" + with_outside(c.entry, outside()) + "'"), std::string::npos) << message;
  EXPECT_NE(message.find(c.why), std::string::npos) << message;

  EXPECT_EQ(strays(), std::vector<std::string>{}) << message;
  EXPECT_EQ(walk_tree(outside()), std::vector<std::string>{});
  EXPECT_FALSE(exists(in_root("after"))) << "extraction stops at the refused entry";
  EXPECT_EQ(read_text(in_root("PG_VERSION")), "15\n") << "entries before it are extracted";
}

INSTANTIATE_TEST_SUITE_P(
    ExtractUnsafe, ExtractRefusal,
    ::testing::Values(
        Refusal{"DotDot", {file_entry("../x", "escaped")}, "../x", "path leaves the data directory"},
        Refusal{"DeepDotDot", {file_entry("a/../../x", "escaped")}, "a/../../x", "path leaves the data directory"},
        Refusal{
            "DotSlashDotDot", {file_entry("./../outside/x", "escaped")}, "./../outside/x", "leaves the data directory"},
        Refusal{"Absolute", {file_entry("@OUT@/abs_x", "escaped")}, "@OUT@/abs_x", "path is absolute"},
        Refusal{"SymlinkAbsolute", {symlink_entry("pg_tblspc/16384", "@OUT@")}, "pg_tblspc/16384", "is absolute"},
        Refusal{"SymlinkEscapes", {symlink_entry("a", "../outside")}, "a", "link target '../outside' leaves"},
        Refusal{
            "SymlinkEscapesDeep", {dir_entry("d"), symlink_entry("d/l", "../../outside")}, "d/l", "leaves the data"},
        Refusal{"SymlinkChain",
                {dir_entry("d"), symlink_entry("d/x", ".."), symlink_entry("l", "d/x/../outside")},
                "l",
                "lexically"},
        Refusal{"Fifo", {TarEntry{"fifo", AE_IFIFO, 0600, {}, {}, {}}}, "fifo", "fifo entries are not allowed"},
        Refusal{"CharDevice", {TarEntry{"null", AE_IFCHR, 0666, {}, {}, {}}}, "null", "character device"},
        Refusal{"HardlinkEscapes", {hardlink_entry("h", "../outside/x")}, "h", "hard link target '../outside/x'"},
        Refusal{"HardlinkAbsolute", {hardlink_entry("h", "@OUT@/x")}, "h", "hard link target"},
        // Inside root, but a later entry writing through it: libarchive's SECURE_SYMLINKS
        // refuses it ("Cannot extract through symlink"), reported as refused too.
        Refusal{"ThroughInsideSymlink",
                {dir_entry("sub"), symlink_entry("inside_link", "sub"), file_entry("inside_link/f", "through")},
                "inside_link/f",
                "Cannot extract through symlink"},
        Refusal{"HardlinkThroughInsideSymlink",
                {dir_entry("sub"), file_entry("sub/g", "g"), symlink_entry("inside_link", "sub"),
                 hardlink_entry("h", "inside_link/g")},
                "h",
                "Cannot extract through symlink"},
        // "a/l" -> "../PG_VERSION" stays inside; a second name "h" for it at the top would not.
        Refusal{"HardlinkToInTreeSymlink",
                {dir_entry("a"), symlink_entry("a/l", "../PG_VERSION"), hardlink_entry("h", "a/l")},
                "h",
                "hard link target 'a/l' is a symlink"},
        Refusal{"HardlinkToADirectory", {dir_entry("d"), hardlink_entry("h", "d")}, "h", "hard link target 'd' is not a regular file"},
        Refusal{"HardlinkBeforeItsTarget", {hardlink_entry("h", "later"), file_entry("later", "x")}, "h",
                "hard link target 'later' was not extracted before it"}),
    [](const ::testing::TestParamInfo<Refusal>& param_info) { return param_info.param.name; });

TEST_F(ExtractTest, ThroughInsideSymlinkWritesNothingInItsTarget) {
  auto result = extract_string(
      make_tar({dir_entry("sub"), symlink_entry("inside_link", "sub"), file_entry("inside_link/f", "through")}),
      options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::refused);
  EXPECT_FALSE(exists(in_root("sub/f")));
}

TEST_F(ExtractTest, AnEntryReplacesASymlinkAtItsPathInsteadOfFollowingIt) {
  // SECURE_SYMLINKS removes a symlink in the last position and creates the entry in its place.
  auto stats = extract_string(make_tar({dir_entry("sub"), file_entry("sub/target", "original"),
                                        symlink_entry("link", "sub/target"), file_entry("link", "replaced")}),
                              options());
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_TRUE(S_ISREG(lstat_of(in_root("link")).st_mode));
  EXPECT_EQ(read_text(in_root("link")), "replaced");
  EXPECT_EQ(read_text(in_root("sub/target")), "original");
}

TEST_F(ExtractTest, TruncatedInsideAnEntryIsCorrupt) {
  const std::string tar = make_tar({file_entry("a", "aaaa"), file_entry("big", std::string(100000, 'b'))});
  auto result = extract_string(tar.substr(0, 512 * 3 + 512 + 4096), options());  // into big's data
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::corrupt) << result.error().message;
  EXPECT_EQ(result.error().message.rfind("backup 20261124T093001Z chunk 3: ", 0), 0u) << result.error().message;
}

TEST_F(ExtractTest, TruncatedInsideAHeaderIsCorrupt) {
  const std::string tar = make_tar({file_entry("a", "aaaa"), file_entry("b", "bbbb")});
  auto result = extract_string(tar.substr(0, 1024 + 200), options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::corrupt) << result.error().message;
}

TEST_F(ExtractTest, StreamCutAtAnEntryBoundaryIsCorrupt) {
  // libarchive alone would call this a complete archive of one file.
  auto result = extract_string(make_tar({file_entry("a", "aaaa"), file_entry("b", "bbbb")}, false), options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::corrupt) << result.error().message;
  EXPECT_NE(result.error().message.find("backup 20261124T093001Z chunk 3"), std::string::npos);
  EXPECT_NE(result.error().message.find("end-of-archive marker"), std::string::npos) << result.error().message;
}

TEST_F(ExtractTest, EmptyOrGarbageStreamIsCorrupt) {
  for (const std::string& data : {std::string(), std::string(4096, 'z')}) {
    auto result = extract_string(data, options());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().kind, ErrorKind::corrupt) << result.error().message;
  }
}

TEST_F(ExtractTest, EmptyArchiveWithMarkerIsFine) {
  auto stats = extract_string(make_tar({}), options());
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->entries, 0u);
}

TEST_F(ExtractTest, ReadsThePaddingAfterTheMarkerSoTheSenderSeesNoEpipe) {
  // More padding than libarchive's 256 KiB read-ahead, as a sender blocking its output might add.
  PipeFeed feed(make_tar({file_entry("a", "aaaa")}) + std::string(1u << 20, '\0'));
  auto stats = extract_tar(feed.fd(), options());
  ASSERT_TRUE(stats) << stats.error().message;
  feed.finish();
  EXPECT_EQ(feed.write_errno(), 0) << std::strerror(feed.write_errno());
  EXPECT_EQ(feed.written(), feed.size());
}

TEST_F(ExtractTest, MissingRootFails) {
  ExtractOptions o = options();
  o.root = m_parent / "no-such-dir";
  auto result = extract_string(make_tar({file_entry("a", "a")}), o);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("no-such-dir"), std::string::npos) << result.error().message;
  EXPECT_FALSE(exists(m_parent / "no-such-dir"));
}

TEST_F(ExtractTest, OwnerSetToTheCurrentIdsWorks) {
  ExtractOptions o = options();
  o.owner_uid = ::geteuid();
  o.owner_gid = ::getegid();
  auto stats = extract_string(make_tar({dir_entry("d"), file_entry("d/f", "x"), symlink_entry("l", "d/f")}), o);
  ASSERT_TRUE(stats) << stats.error().message;
  for (const char* rel : {"d", "d/f", "l"}) {
    const auto st = lstat_of(in_root(rel));
    EXPECT_EQ(st.st_uid, ::geteuid()) << rel;
    EXPECT_EQ(st.st_gid, ::getegid()) << rel;
  }
}

TEST_F(ExtractTest, OwnerSetToAnotherUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  ExtractOptions o = options();
  o.owner_uid = 65534;
  o.owner_gid = 65534;
  auto stats = extract_string(
      make_tar({dir_entry("d"), file_entry("d/f", "x"), symlink_entry("l", "d/f"), hardlink_entry("h", "d/f")}), o);
  ASSERT_TRUE(stats) << stats.error().message;
  for (const char* rel : {"d", "d/f", "l", "h"}) {
    const auto st = lstat_of(in_root(rel));
    EXPECT_EQ(st.st_uid, 65534u) << rel;
    EXPECT_EQ(st.st_gid, 65534u) << rel;
  }
  EXPECT_EQ(lstat_of(in_root("d")).st_mode & 07777, 0700u);
  EXPECT_EQ(lstat_of(in_root("d/f")).st_mode & 07777, 0600u);
}

TEST_F(ExtractTest, DiskFullIsNoSpaceNamingTheFile) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  if (::mount("tmpfs", root().c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  auto result = extract_string(
      make_tar({file_entry("small", "s"), file_entry("base/1/big", std::string(1u << 20, 'b'))}), options());
  ASSERT_EQ(::umount2(root().c_str(), MNT_DETACH), 0) << std::strerror(errno);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::no_space) << result.error().message;
  EXPECT_NE(result.error().message.find(root() + "/base/1/big"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("[28] No space left on device"), std::string::npos) << result.error().message;
}

TEST_F(ExtractTest, SparseEntryKeepsItsHoles) {
  // 2 MiB with 4 KiB of data at 0 and at 1 MiB, as a pax sparse entry.
  constexpr la_int64_t k_size = 2 << 20;
  constexpr la_int64_t k_second = 1 << 20;
  std::string tar;
  {
    struct archive* writer = archive_write_new();
    archive_write_set_format_pax_restricted(writer);
    ASSERT_EQ(archive_write_open(writer, &tar, nullptr, append_to_string, nullptr), ARCHIVE_OK);
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, "sparse");
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0600);
    archive_entry_set_size(entry, k_size);
    archive_entry_sparse_add_entry(entry, 0, 4096);
    archive_entry_sparse_add_entry(entry, k_second, 4096);
    ASSERT_EQ(archive_write_header(writer, entry), ARCHIVE_OK) << archive_error_string(writer);
    // The writer takes the whole logical content and drops what falls in the holes.
    std::string data(static_cast<std::size_t>(k_size), '\0');
    data.replace(0, 4096, std::string(4096, 'a'));
    data.replace(static_cast<std::size_t>(k_second), 4096, std::string(4096, 'b'));
    ASSERT_EQ(archive_write_data(writer, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
    archive_entry_free(entry);
    archive_write_close(writer);
    archive_write_free(writer);
  }
  auto stats = extract_string(tar, options());
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->bytes, 8192u) << "content bytes are the data, not the holes";
  const std::string content = read_text(in_root("sparse"));
  ASSERT_EQ(content.size(), static_cast<std::size_t>(k_size));
  EXPECT_EQ(content.substr(0, 4096), std::string(4096, 'a'));
  EXPECT_EQ(content.substr(4096, static_cast<std::size_t>(k_second) - 4096),
            std::string(static_cast<std::size_t>(k_second) - 4096, '\0'));
  EXPECT_EQ(content.substr(static_cast<std::size_t>(k_second), 4096), std::string(4096, 'b'));
  EXPECT_LT(lstat_of(in_root("sparse")).st_blocks * 512, k_second) << "the holes were written as zeros";
}

// Two chunks of one backup extracted into one root at once. Both name the same directories
// (explicitly and as implicit parents), so mkdir races on every level; libarchive's umask
// probing must not leave the process umask changed.
TEST_F(ExtractTest, TwoStreamsIntoOneRootConcurrently) {
  const mode_t umask_before = current_umask();
  std::vector<std::vector<TarEntry>> chunks(2);
  for (int chunk = 0; chunk < 2; ++chunk) {
    auto& entries = chunks[static_cast<std::size_t>(chunk)];
    // Chunk 0 carries the directory entries first; chunk 1 only implies them, except a few
    // that both carry, as split tar streams can.
    if (chunk == 0) entries.push_back(dir_entry("base"));
    for (int db = 0; db < 4; ++db) {
      const std::string dbdir = "base/" + std::to_string(16384 + db);
      if (chunk == 0 || db % 2 == 0) entries.push_back(dir_entry(dbdir));
      for (int f = 0; f < 150; ++f) {
        const std::string name = dbdir + "/" + std::to_string(f * 2 + chunk);
        entries.push_back(file_entry(name, name + std::string(static_cast<std::size_t>(f) * 37, 'x')));
      }
      entries.push_back(file_entry("deep/" + std::to_string(db) + "/a/b/c/chunk" + std::to_string(chunk), "d"));
    }
  }
  std::vector<Result<ExtractStats>> results(2, fail(ErrorKind::internal, "not run"));
  {
    PipeFeed feed0(make_tar(chunks[0]));
    PipeFeed feed1(make_tar(chunks[1]));
    std::thread t0([&] { results[0] = extract_tar(feed0.fd(), options("chunk 0")); });
    std::thread t1([&] { results[1] = extract_tar(feed1.fd(), options("chunk 1")); });
    t0.join();
    t1.join();
  }
  for (int chunk = 0; chunk < 2; ++chunk) {
    const auto& r = results[static_cast<std::size_t>(chunk)];
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->entries, chunks[static_cast<std::size_t>(chunk)].size());
  }
  for (int db = 0; db < 4; ++db) {
    const std::string dbdir = "base/" + std::to_string(16384 + db);
    EXPECT_EQ(lstat_of(in_root(dbdir)).st_mode & 07777, 0700u) << dbdir;
    for (int f = 0; f < 300; ++f) {
      const std::string name = dbdir + "/" + std::to_string(f);
      ASSERT_EQ(read_text(in_root(name)), name + std::string(static_cast<std::size_t>(f / 2) * 37, 'x'));
    }
    for (int chunk = 0; chunk < 2; ++chunk)
      EXPECT_TRUE(exists(in_root("deep/" + std::to_string(db) + "/a/b/c/chunk" + std::to_string(chunk))));
  }
  EXPECT_EQ(strays(), std::vector<std::string>{});
  EXPECT_EQ(current_umask(), umask_before);
}

}  // namespace
}  // namespace walvault
