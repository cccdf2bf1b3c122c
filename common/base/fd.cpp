#include "common/base/fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <cerrno>
#include <cstring>

namespace walvault {

void UniqueFd::reset(int fd) {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = fd;
}

Result<void> pread_exact(int fd, std::span<std::byte> out, off_t offset, std::string_view what) {
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_os("read file", what, errno);
    }
    if (n == 0) {
      const auto from = static_cast<std::uint64_t>(offset);
      if (from == 0)
        return fail(ErrorKind::io, "unable to read file '" + std::string(what) + "': expected " + std::to_string(out.size()) +
                                       " bytes, file ended after " + std::to_string(done));
      // A piece of a larger read: the position where it ended counts from the file's start.
      return fail(ErrorKind::io, "unable to read file '" + std::string(what) + "': file ended after " + std::to_string(from + done) +
                                     " bytes, while bytes " + std::to_string(from) + " to " + std::to_string(from + out.size()) +
                                     " were read (it shrank while it was read?)");
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> write_all(int fd, std::span<const std::byte> data, std::string_view what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_os("write file", what, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> make_empty(int fd, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_os("stat", what, errno);
  if (st.st_size == 0) return {};
  if (::ftruncate(fd, 0) != 0) return fail_os("truncate", what, errno);
  return {};
}

Result<std::uint64_t> copy_whole_file(int in, int out, std::string_view what) {
  loff_t done = 0;
  bool in_kernel = true;
  std::vector<std::byte> buffer;
  for (;;) {
    ssize_t n = -1;
    if (in_kernel) {
      loff_t in_offset = done, out_offset = done;
      n = ::copy_file_range(in, &in_offset, out, &out_offset, 1 << 30, 0);
      // Not between these two files (another filesystem on an old kernel, no support): by hand.
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) && done == 0) {
        in_kernel = false;
        buffer.resize(1 << 20);
        continue;
      }
    } else {
      n = ::pread(in, buffer.data(), buffer.size(), done);
      if (n > 0) {
        if (auto r = pwrite_all(out, std::span(buffer.data(), static_cast<std::size_t>(n)), done, what); !r)
          return std::unexpected(r.error());
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_os("copy into", what, errno);
    if (n == 0) return static_cast<std::uint64_t>(done);
    done += n;
  }
}

std::vector<UniqueFd> passed_descriptors(msghdr& msg) {
  std::vector<UniqueFd> passed;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      passed.emplace_back(fd);
    }
  }
  return passed;
}

void EarlyWriteback::written_up_to(std::uint64_t end) {
  if (end < m_started + k_step) return;
  const std::uint64_t until = end - end % k_step;
  (void)::sync_file_range(m_fd, static_cast<off_t>(m_started), static_cast<off_t>(until - m_started), SYNC_FILE_RANGE_WRITE);
  m_started = until;
}

Result<void> pwrite_all(int fd, std::span<const std::byte> data, off_t offset, std::string_view what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_os("write file", what, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::vector<std::byte>> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_os("open file", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_os("stat file", path, errno);
  if (!S_ISREG(st.st_mode)) return fail(ErrorKind::invalid, "unable to read '" + path + "': not a regular file");
  std::vector<std::byte> data(static_cast<std::size_t>(st.st_size));
  if (auto r = pread_exact(fd.get(), data, 0, path); !r) return std::unexpected(r.error());
  return data;
}

Result<void> fsync_directory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_os("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return fail_os("sync directory", dir, errno);
  return {};
}

std::string parent_directory(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

namespace {
// Directories whose entry this process has made durable. An existing directory is not
// proof: a crash between another mkdir and its parent's fsync (ours or a previous run's)
// leaves one that can still vanish, so each is synced once per process before use.
std::mutex synced_mutex;
std::set<std::string> synced;
}  // namespace

void forget_directory(const std::string& dir) {
  std::lock_guard lock(synced_mutex);
  for (auto it = synced.lower_bound(dir); it != synced.end() && it->starts_with(dir);) {
    if (it->size() == dir.size() || (*it)[dir.size()] == '/') it = synced.erase(it);
    else ++it;
  }
}

Result<void> make_directories(const std::string& dir, unsigned mode) {
  {
    std::lock_guard lock(synced_mutex);
    if (synced.contains(dir)) return {};
  }
  struct stat st {};
  const bool exists = ::stat(dir.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode))
    return fail(ErrorKind::io, "unable to create directory '" + dir + "': a file of that name exists");
  std::string parent = parent_directory(dir);
  if (parent != dir && parent != "." && parent != "/")
    if (auto r = make_directories(parent, mode); !r) return r;
  if (!exists && ::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return fail_os("create directory", dir, errno);
  // The entry lives in the parent: make it durable before anything is stored below it.
  if (auto r = fsync_directory(parent); !r) return r;
  std::lock_guard lock(synced_mutex);
  synced.insert(dir);
  return {};
}

Result<DurableFileWriter> DurableFileWriter::create(const std::string& path, unsigned mode) {
  static std::atomic<unsigned> counter{0};
  std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return fail_os("create file", temp, errno);
  return DurableFileWriter(path, std::move(temp), std::move(fd));
}

DurableFileWriter::~DurableFileWriter() { discard(); }

void DurableFileWriter::discard() {
  if (m_temp.empty()) return;
  m_fd.reset();
  ::unlink(m_temp.c_str());
  m_temp.clear();
}

Result<void> DurableFileWriter::append(std::span<const std::byte> data) {
  if (m_temp.empty()) return fail(ErrorKind::internal, "write to '" + m_path + "' after commit");
  if (auto r = write_all(m_fd.get(), data, m_temp); !r) {
    discard();
    return r;
  }
  m_size += data.size();
  return {};
}

Result<void> DurableFileWriter::commit(bool replace) {
  if (m_temp.empty()) return fail(ErrorKind::internal, "commit of '" + m_path + "' twice");
  auto failed = [&](std::unexpected<Failure> failure) {
    discard();
    return failure;
  };
  if (::fsync(m_fd.get()) != 0) return failed(fail_os("sync file", m_temp, errno));
  if (::close(m_fd.release()) != 0) return failed(fail_os("close file", m_temp, errno));

  if (replace) {
    if (::rename(m_temp.c_str(), m_path.c_str()) != 0) return failed(fail_os("rename file", m_temp, errno));
  } else {
    // link() refuses an existing target atomically, so a concurrent writer can never be
    // overwritten; rename() would silently replace it.
    if (::link(m_temp.c_str(), m_path.c_str()) != 0) {
      const int err = errno;
      discard();
      if (err == EEXIST) return fail(ErrorKind::conflict, "unable to create file '" + m_path + "': it already exists");
      return fail_os("link file", m_path, err);
    }
    ::unlink(m_temp.c_str());
  }
  m_temp.clear();
  return fsync_directory(parent_directory(m_path));
}

Result<void> write_file_durable(const std::string& path, std::span<const std::byte> data,
                                bool replace, unsigned mode) {
  auto writer = DurableFileWriter::create(path, mode);
  if (!writer) return std::unexpected(writer.error());
  if (auto r = writer->append(data); !r) return r;
  return writer->commit(replace);
}

}  // namespace walvault
