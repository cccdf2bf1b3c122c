#pragma once
// File-descriptor ownership and the few POSIX file helpers every part of walvault needs.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.hpp"

struct msghdr;

namespace walvault {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  explicit operator bool() const { return valid(); }
  int release() {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int m_fd = -1;
};

// Which file, in which state: device, inode, size, modification and change times. Equal
// identities of a regular file taken at two moments prove it was not written, truncated,
// renamed or replaced in between: a write changes both times, and st_ctime cannot be set from
// user space. Only with sub-second times (proving()); and before Linux 6.13 (multigrain
// timestamps) a write within the same clock tick as the first fstat could keep the times.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t modified_ns = 0;
  std::int64_t changed_ns = 0;

  static FileIdentity of(const struct stat& st) {
    return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                        static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
  }
  // The identity, when it can prove anything: not on a filesystem that keeps whole seconds
  // only (an old or network one), where a write in the same second leaves the times as they were.
  static std::optional<FileIdentity> proving(const struct stat& st) {
    if (st.st_mtim.tv_nsec == 0 && st.st_ctim.tv_nsec == 0) return std::nullopt;
    return of(st);
  }
  bool operator==(const FileIdentity&) const = default;
};

// Reads exactly `size` bytes at `offset` (retrying short reads and EINTR). Fewer bytes
// available is reported as an io failure naming `what`.
Result<void> pread_exact(int fd, std::span<std::byte> out, off_t offset, std::string_view what);
// Writes all bytes (retrying short writes and EINTR).
Result<void> write_all(int fd, std::span<const std::byte> data, std::string_view what);
Result<void> pwrite_all(int fd, std::span<const std::byte> data, off_t offset, std::string_view what);
// Makes the file behind `fd` empty, without a truncate when it already is: ext4 marks a file
// truncated to 0 bytes as "replaced" (auto_da_alloc) and starts writing its data out when it is
// closed. For archive-get's fresh temporary file that cost 5-15 ms per segment, in the close
// that recovery waits for.
Result<void> make_empty(int fd, std::string_view what);
// Copies the whole file behind `in` to the same offsets of `out` (copy_file_range, else pread
// and pwrite), leaving both descriptors' file offsets alone: a passed descriptor shares its
// offset with the sender's. The bytes copied; errors name `what`, the output.
Result<std::uint64_t> copy_whole_file(int in, int out, std::string_view what);
// Writes into a file PostgreSQL is about to fsync: every MiB written is handed to the disk at
// once (sync_file_range, a hint: its errors are left to that fsync). PostgreSQL 15 fsyncs each
// segment restore_command restored before it replays it (KeepFileRestoredFromArchive), so the
// disk then writes while the rest is still being copied, and that fsync waits for the last MiB
// instead of all 16. About 10 % off a recovery on this project's machine.
class EarlyWriteback {
 public:
  explicit EarlyWriteback(int fd) : m_fd(fd) {}
  // `end`: the offset up to which the file has been written.
  void written_up_to(std::uint64_t end);

 private:
  static constexpr std::uint64_t k_step = 1 << 20;
  int m_fd;
  std::uint64_t m_started = 0;  // written back from here on is not yet requested
};

// The descriptors passed with a message recvmsg() just received (SCM_RIGHTS), now owned.
std::vector<UniqueFd> passed_descriptors(msghdr& msg);

// Reads a whole regular file by path.
Result<std::vector<std::byte>> read_file(const std::string& path);

// fsync of a directory, so that a rename or link inside it survives a crash.
Result<void> fsync_directory(const std::string& dir);

// mkdir -p with fsync of every parent whose entries changed.
Result<void> make_directories(const std::string& dir, unsigned mode = 0750);
// After removing `dir` (and everything below it): make_directories() must create it again.
void forget_directory(const std::string& dir);

// The durable-write sequence: temp name in the same directory, write, fsync, then either
// rename over `path` (replace = true) or link to `path`, failing with conflict when it exists
// (replace = false); finally fsync the directory. The temp file is removed on every failure.
Result<void> write_file_durable(const std::string& path, std::span<const std::byte> data,
                                bool replace, unsigned mode = 0640);

// The same sequence for content that arrives in pieces (a base backup chunk): bytes go to a
// temp file beside `path`; commit() optionally overwrites the first bytes (a header known only
// at the end), fsyncs, publishes under `path` as write_file_durable does and fsyncs the
// directory. Destroyed uncommitted, the temp file is removed: nothing partial is ever visible.
class DurableFileWriter {
 public:
  static Result<DurableFileWriter> create(const std::string& path, unsigned mode = 0640);
  DurableFileWriter(DurableFileWriter&& other) noexcept
      : m_path(std::move(other.m_path)), m_temp(std::exchange(other.m_temp, {})), m_fd(std::move(other.m_fd)), m_size(other.m_size) {}
  DurableFileWriter& operator=(DurableFileWriter&&) = delete;
  ~DurableFileWriter();

  Result<void> append(std::span<const std::byte> data);
  Result<void> commit(bool replace);
  std::uint64_t size() const { return m_size; }

 private:
  DurableFileWriter(std::string path, std::string temp, UniqueFd fd)
      : m_path(std::move(path)), m_temp(std::move(temp)), m_fd(std::move(fd)) {}
  void discard();

  std::string m_path;
  std::string m_temp;  // empty once committed or discarded
  UniqueFd m_fd;
  std::uint64_t m_size = 0;
};

std::string parent_directory(std::string_view path);
std::string_view base_name(std::string_view path);

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}
inline std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace walvault
