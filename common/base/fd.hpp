#pragma once
// File-descriptor ownership and the few POSIX file helpers every part of walvault needs.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

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

// Reads exactly `size` bytes at `offset` (retrying short reads and EINTR). Fewer bytes
// available is reported as an io failure naming `what`.
Result<void> pread_exact(int fd, std::span<std::byte> out, off_t offset, std::string_view what);
// Writes all bytes (retrying short writes and EINTR).
Result<void> write_all(int fd, std::span<const std::byte> data, std::string_view what);
Result<void> pwrite_all(int fd, std::span<const std::byte> data, off_t offset, std::string_view what);

// Reads a whole regular file by path.
Result<std::vector<std::byte>> read_file(const std::string& path);

// fsync of a directory, so that a rename or link inside it survives a crash.
Result<void> fsync_directory(const std::string& dir);

// mkdir -p with fsync of every parent whose entries changed.
Result<void> make_directories(const std::string& dir, unsigned mode = 0750);

// The durable-write sequence: temp name in the same directory, write, fsync, then either
// rename over `path` (replace = true) or link to `path`, failing with conflict when it exists
// (replace = false); finally fsync the directory. The temp file is removed on every failure.
Result<void> write_file_durable(const std::string& path, std::span<const std::byte> data,
                                bool replace, unsigned mode = 0640);

std::string parent_directory(std::string_view path);
std::string_view base_name(std::string_view path);

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}
inline std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace walvault
