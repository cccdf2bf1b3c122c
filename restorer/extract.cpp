#include "restorer/extract.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace walvault {

namespace {

constexpr std::size_t k_read_block = 256 * 1024;
constexpr std::uint64_t k_progress_step = 4ULL << 20;

// libarchive 3.6 reads the umask by setting it to 0 and straight back, in
// archive_write_disk_new() and again in every archive_write_header(). Two threads interleaving
// that pair can leave the process umask at 0 for good (A: umask(0) -> 022, B: umask(0) -> 0,
// A: umask(022), B: umask(0)), so every extractor takes this lock around those calls. File
// data is written outside it, so the streams still extract in parallel. The same lock covers
// archive_read_new(), whose lazily initialised static vtable is a benign but real data race.
std::mutex g_libarchive_mutex;

// The components of a path with empty ones and "." dropped; ".." is kept for the caller.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (!part.empty() && part != ".") parts.push_back(part);
    start = end + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string_view>& parts) {
  std::string out;
  for (auto part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

// The entry path as a plain relative path ("./a//b/" -> "a/b"; "" is the root itself), or why
// it is unsafe. Any ".." is refused, not only one that climbs out: none is needed in a backup,
// and libarchive's own NODOTDOT check would refuse it later anyway.
std::expected<std::string, std::string> normalise_entry_path(std::string_view path) {
  if (path.empty()) return std::unexpected<std::string>("path is empty");
  if (path.front() == '/') return std::unexpected<std::string>("path is absolute");
  const auto parts = split_path(path);
  std::size_t depth = 0;
  bool dot_dot = false;
  for (auto part : parts) {
    if (part != "..") {
      ++depth;
      continue;
    }
    dot_dot = true;
    if (depth == 0) return std::unexpected<std::string>("path leaves the data directory");
    --depth;
  }
  if (dot_dot) return std::unexpected<std::string>("path has a '..' component");
  return join_path(parts);
}

// Why the symlink at `normalised_path` (already checked) pointing to `target` is unsafe, if it
// is. The target is resolved lexically from the link's directory. A ".." is accepted only
// before the first name: those climb through the link's own parents, which are real
// directories (SECURE_SYMLINKS refuses to create anything below a symlink), so the lexical
// answer is the real one. A ".." after a name ("x/..") would climb out of whatever `x` points
// to, which a lexical check cannot know, so it is refused.
std::optional<std::string> link_target_reason(std::string_view normalised_path, std::string_view target) {
  const std::string quoted = "link target '" + std::string(target) + "'";
  if (target.empty()) return "link target is empty";
  if (target.front() == '/') return quoted + " is absolute";
  auto resolved = split_path(normalised_path);
  if (!resolved.empty()) resolved.pop_back();  // the link's directory
  bool seen_name = false;
  for (auto part : split_path(target)) {
    if (part != "..") {
      seen_name = true;
      resolved.push_back(part);
      continue;
    }
    if (seen_name) return quoted + " has a '..' after a name, which cannot be checked lexically";
    if (resolved.empty()) return quoted + " leaves the data directory";
    resolved.pop_back();
  }
  return std::nullopt;
}

std::string_view type_name(unsigned type) {
  switch (type) {
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "fifo";
    case AE_IFSOCK: return "socket";
    case AE_IFLNK: return "symlink";
    default: return "unknown";
  }
}

// libarchive reports its own complaints with 0, -1 (ARCHIVE_ERRNO_MISC), EILSEQ (its
// ARCHIVE_ERRNO_FILE_FORMAT on Linux) or EINVAL (ARCHIVE_ERRNO_PROGRAMMER); those macros live in a
// private header, hence the literal values. Anything else came from a system call.
bool is_os_errno(int err) {
  return err > 0 && err != EILSEQ && err != EINVAL;
}

std::string archive_message(archive* a) {
  const char* text = archive_error_string(a);
  return text && *text ? text : "unknown libarchive error";
}

struct ReaderDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
// archive_write_free() closes first, and closing applies the deferred directory modes and
// times, so this runs on every path out, failures included.
struct WriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReaderPtr = std::unique_ptr<archive, ReaderDeleter>;
using WriterPtr = std::unique_ptr<archive, WriterDeleter>;

class Extractor {
 public:
  Extractor(int fd, const ExtractOptions& options)
      : m_fd(fd), m_options(options), m_what(options.what.empty() ? "tar stream" : options.what) {}

  Result<ExtractStats> run();

 private:
  Result<void> open();
  // One entry: checks, rewrites its paths below the root, writes header and data.
  Result<void> extract_entry(archive_entry* entry);
  // Reads the entry's data to its end, writing it to disk unless `disk_path` is null (skipped
  // entries are read too, so the end-of-archive check in run() compares stream positions
  // taken at entry boundaries).
  Result<void> read_data(const std::string& shown, const std::string* disk_path);
  Result<void> drain();

  std::unexpected<Failure> refuse(std::string_view entry, std::string_view reason) const {
    return fail(ErrorKind::refused,
                m_what + ": refusing unsafe entry '" + std::string(entry) + "': " + std::string(reason));
  }
  std::unexpected<Failure> read_failure(std::string_view context) const;
  // A failure of the disk writer; `from_header` marks archive_write_header(), where libarchive
  // refuses entries by its own rules (through a symlink, ...) without an errno.
  std::unexpected<Failure> write_failure(std::string_view shown, std::string_view disk_path, bool from_header) const;

  void report_progress(bool final) {
    if (!m_options.progress || m_pending_progress == 0) return;
    if (!final && m_pending_progress < k_progress_step) return;
    m_options.progress(m_pending_progress);
    m_pending_progress = 0;
  }

  int m_fd;
  const ExtractOptions& m_options;
  std::string m_what;
  std::string m_root;  // realpath of options.root, without a trailing slash ("" for "/")
  ReaderPtr m_reader;
  WriterPtr m_writer;
  ExtractStats m_stats;
  std::uint64_t m_pending_progress = 0;
};

Result<void> Extractor::open() {
  if (m_options.root.empty()) return fail(ErrorKind::invalid, m_what + ": no data directory to extract into");
  // The real path, because SECURE_SYMLINKS checks every component of the absolute path we hand
  // it and would refuse a legitimate symlink above the data directory (/var/lib/pgsql -> /srv).
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(m_options.root.c_str(), nullptr), &std::free);
  if (!resolved) {
    auto failure = fail_os("resolve data directory", m_options.root, errno);
    failure.error().message = m_what + ": " + failure.error().message;
    return failure;
  }
  struct stat st {};
  if (::stat(resolved.get(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(ErrorKind::invalid, m_what + ": data directory '" + m_options.root + "' is not a directory");
  m_root = resolved.get();
  if (m_root == "/") m_root.clear();

  // Without ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS: libarchive applies it to the path it is
  // given, and ours are absolute on purpose (no chdir with four streams in one process). The
  // entry's own path is refused when absolute by our check before it is rewritten.
  int flags =
      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;
  if (m_options.owner_uid) flags |= ARCHIVE_EXTRACT_OWNER;
  {
    std::lock_guard lock(g_libarchive_mutex);
    m_reader.reset(archive_read_new());
    m_writer.reset(archive_write_disk_new());
  }
  if (!m_reader || !m_writer) return fail(ErrorKind::internal, m_what + ": unable to allocate libarchive objects");
  archive_read_support_format_tar(m_reader.get());  // ustar, pax and gnu
  if (archive_write_disk_set_options(m_writer.get(), flags) != ARCHIVE_OK)
    return fail(ErrorKind::internal, m_what + ": " + archive_message(m_writer.get()));
  if (archive_read_open_fd(m_reader.get(), m_fd, k_read_block) != ARCHIVE_OK) return read_failure("open");
  return {};
}

std::unexpected<Failure> Extractor::read_failure(std::string_view context) const {
  archive* reader = m_reader.get();
  const int err = archive_errno(reader);
  const std::string where = " (" + std::string(context) + ", after " + std::to_string(m_stats.entries) + " entries)";
  if (is_os_errno(err))
    return fail(ErrorKind::io, m_what + ": unable to read the tar stream: [" + std::to_string(err) + "] " +
                                   std::strerror(err) + where);
  return fail(ErrorKind::corrupt, m_what + ": corrupt tar stream: " + archive_message(reader) + where);
}

std::unexpected<Failure> Extractor::write_failure(std::string_view shown, std::string_view disk_path,
                                                  bool from_header) const {
  archive* writer = m_writer.get();
  const int err = archive_errno(writer);
  const std::string detail = archive_message(writer);
  if (from_header && !is_os_errno(err)) return refuse(shown, "libarchive: " + detail);
  if (!is_os_errno(err))
    return fail(ErrorKind::io, m_what + ": unable to extract '" + std::string(disk_path) + "': " + detail);
  const ErrorKind kind = (err == ENOSPC || err == EDQUOT) ? ErrorKind::no_space : ErrorKind::io;
  return fail(kind, m_what + ": " + os_error_text("extract", disk_path, err) + " (" + detail + ")");
}

Result<void> Extractor::extract_entry(archive_entry* entry) {
  const char* raw_path = archive_entry_pathname(entry);
  const std::string shown = raw_path ? raw_path : "";
  const char* hardlink_target = archive_entry_hardlink(entry);
  const char* symlink_target = archive_entry_symlink(entry);
  const auto type = static_cast<unsigned>(archive_entry_filetype(entry));

  // libarchive decides by the link names before the type (a hard link wins, then a symlink),
  // so the checks follow the same order.
  if (!hardlink_target && !symlink_target && type != AE_IFREG && type != AE_IFDIR) {
    if (type == AE_IFLNK) return refuse(shown, "link target is empty");
    return refuse(shown, std::string(type_name(type)) + " entries are not allowed");
  }
  auto relative = normalise_entry_path(shown);
  if (!relative) return refuse(shown, relative.error());
  if (relative->empty()) {
    // "./" only restates the root's mode and times, which belong to whoever made the root;
    // as anything else it would replace the root itself.
    if (!hardlink_target && !symlink_target && type == AE_IFDIR) return read_data(shown, nullptr);
    return refuse(shown, "path names the data directory itself");
  }
  if (symlink_target)
    if (auto reason = link_target_reason(*relative, symlink_target)) return refuse(shown, *reason);

  const std::string disk_path = m_root + "/" + *relative;
  // libarchive chdir()s through paths of PATH_MAX or more (process-wide, fatal with several
  // streams at once); no data directory has them, so refuse instead.
  if (disk_path.size() >= PATH_MAX) return refuse(shown, "path is too long");
  archive_entry_set_pathname(entry, disk_path.c_str());
  if (hardlink_target) {
    auto target = normalise_entry_path(hardlink_target);
    if (!target) return refuse(shown, "hard link target '" + std::string(hardlink_target) + "': " + target.error());
    if (target->empty()) return refuse(shown, "hard link target names the data directory itself");
    const std::string disk_target = m_root + "/" + *target;
    if (disk_target.size() >= PATH_MAX) return refuse(shown, "hard link target is too long");
    // Only to a regular file extracted earlier. A second name for an in-tree symlink would move
    // it to another directory, where its lexically checked relative target may leave the
    // data directory ("a/l" -> "../x" is inside, a link "h" to it points outside).
    // pg_basebackup writes no hard links at all; this keeps the harmless kind working.
    struct stat st {};
    const std::string quoted = "hard link target '" + std::string(hardlink_target) + "'";
    if (::lstat(disk_target.c_str(), &st) != 0) return refuse(shown, quoted + " was not extracted before it");
    if (S_ISLNK(st.st_mode)) return refuse(shown, quoted + " is a symlink (pg_basebackup never writes such a link)");
    if (!S_ISREG(st.st_mode)) return refuse(shown, quoted + " is not a regular file");
    archive_entry_set_hardlink(entry, disk_target.c_str());
  }
  if (m_options.owner_uid) {
    archive_entry_set_uid(entry, *m_options.owner_uid);
    // Without owner_gid, our own group rather than whatever the source host's id means here.
    archive_entry_set_gid(entry, m_options.owner_gid.value_or(::getegid()));
    // No names: the ids above are the whole answer, whatever the source host called them.
    archive_entry_set_uname(entry, nullptr);
    archive_entry_set_gname(entry, nullptr);
  }

  int status = ARCHIVE_OK;
  {
    std::lock_guard lock(g_libarchive_mutex);
    status = archive_write_header(m_writer.get(), entry);
  }
  // ARCHIVE_WARN too: it means a mode, owner or time could not be set, and PostgreSQL cares
  // about modes and owners of its data directory.
  if (status != ARCHIVE_OK) return write_failure(shown, disk_path, true);
  if (type == AE_IFREG && !hardlink_target && !symlink_target) ++m_stats.files;
  if (auto r = read_data(shown, &disk_path); !r) return r;
  // Finished here rather than implicitly by the next header, so that closing the file and
  // setting its times happen outside the lock.
  if (archive_write_finish_entry(m_writer.get()) != ARCHIVE_OK) return write_failure(shown, disk_path, false);
  return {};
}

Result<void> Extractor::read_data(const std::string& shown, const std::string* disk_path) {
  for (;;) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    const int status = archive_read_data_block(m_reader.get(), &block, &size, &offset);
    if (status == ARCHIVE_EOF) return {};
    if (status != ARCHIVE_OK) return read_failure("data of '" + shown + "'");
    if (size == 0 || !disk_path) continue;
    // Block by block with offsets, so holes of sparse entries stay holes.
    if (archive_write_data_block(m_writer.get(), block, size, offset) != ARCHIVE_OK)
      return write_failure(shown, *disk_path, false);
    m_stats.bytes += size;
    m_pending_progress += size;
    report_progress(false);
  }
}

Result<void> Extractor::drain() {
  // The sender may pad after the end-of-archive marker (tar blocking); reading it to EOF keeps
  // the sender from failing with EPIPE on a stream that was extracted completely.
  std::vector<char> sink(64 * 1024);
  for (;;) {
    const ssize_t n = ::read(m_fd, sink.data(), sink.size());
    if (n > 0) continue;
    if (n == 0) return {};
    if (errno == EINTR) continue;
    const int err = errno;
    return fail(ErrorKind::io, m_what + ": unable to read the tar stream after its end: [" + std::to_string(err) +
                                   "] " + std::strerror(err));
  }
}

Result<ExtractStats> Extractor::run() {
  if (auto r = open(); !r) return std::unexpected(r.error());
  for (;;) {
    const la_int64_t before = archive_filter_bytes(m_reader.get(), 0);
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(m_reader.get(), &entry);
    if (status == ARCHIVE_EOF) {
      // libarchive also reports EOF when the stream simply stops at an entry boundary ("some
      // writers omit the end marker"), which for us is a cut stream that would restore only
      // part of the backup. With the marker, EOF has consumed its zero block.
      if (archive_filter_bytes(m_reader.get(), 0) == before)
        return fail(ErrorKind::corrupt, m_what + ": tar stream ended before its end-of-archive marker (after " +
                                            std::to_string(m_stats.entries) + " entries)");
      break;
    }
    // ARCHIVE_WARN too: the header was only partly understood (an ignored pax attribute may
    // mean the path we see is not the one that was meant).
    if (status != ARCHIVE_OK) return read_failure("header");
    ++m_stats.entries;
    if (auto r = extract_entry(entry); !r) return std::unexpected(r.error());
  }
  if (auto r = drain(); !r) return std::unexpected(r.error());
  if (archive_write_close(m_writer.get()) != ARCHIVE_OK)
    return fail(ErrorKind::io, m_what + ": unable to finish extraction into '" + m_options.root +
                                   "': " + archive_message(m_writer.get()));
  report_progress(true);
  return m_stats;
}

}  // namespace

std::optional<std::string> unsafe_entry_reason(std::string_view path, std::optional<std::string_view> link_target) {
  auto relative = normalise_entry_path(path);
  if (!relative) return relative.error();
  if (relative->empty()) return "path names the data directory itself";
  if (link_target) return link_target_reason(*relative, *link_target);
  return std::nullopt;
}

Result<ExtractStats> extract_tar(int fd, const ExtractOptions& options) {
  Extractor extractor(fd, options);
  return extractor.run();
}

}  // namespace walvault
