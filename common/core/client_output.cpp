#include "common/core/client_output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <spdlog/spdlog.h>

namespace walvault {

namespace {

// Restores a descriptor's status flags when the write is over.
class NonBlockingScope {
 public:
  explicit NonBlockingScope(int fd) : m_fd(fd), m_flags(::fcntl(fd, F_GETFL)) {
    if (m_flags >= 0 && !(m_flags & O_NONBLOCK)) m_changed = ::fcntl(fd, F_SETFL, m_flags | O_NONBLOCK) == 0;
  }
  ~NonBlockingScope() {
    if (m_changed) ::fcntl(m_fd, F_SETFL, m_flags);
  }
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  int m_fd;
  int m_flags;
  bool m_changed = false;
};

}  // namespace

Result<void> write_client_output(int fd, std::span<const std::byte> data, std::chrono::milliseconds idle_limit,
                                 std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_os("inspect", what, errno);
  // A regular file never waits for a reader; everything else (pipe, socket, terminal) may.
  if (S_ISREG(st.st_mode)) return write_all(fd, data, what);
  NonBlockingScope non_blocking(fd);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail_os("write", what, errno);
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(idle_limit.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return fail_os("wait to write", what, errno);
    if (ready == 0)
      return fail(ErrorKind::timeout, std::string(what) + " took nothing for " + std::to_string(idle_limit.count() / 1000) +
                                          " s (" + std::to_string(done) + " of " + std::to_string(data.size()) +
                                          " bytes written): the client stopped reading, so walvaultd gave up on it");
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
      return fail(ErrorKind::io, std::string(what) + " was closed by the client before the whole document was written");
  }
  return {};
}

void write_progress(int fd, std::string_view line) {
  if (fd < 0 || line.empty()) return;
  // Lines are short (below PIPE_BUF), so a descriptor that polls writable takes one whole.
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) return;
  (void)!::write(fd, line.data(), line.size());
}

protocol::Message respond_with_document(Request& request, std::string_view document, protocol::Message response,
                                        std::chrono::milliseconds idle_limit) {
  if (!request.fd) return protocol::error({ErrorKind::invalid, "no output descriptor was passed with the request"});
  auto written = write_client_output(request.fd.get(), as_bytes(document), idle_limit, "the walvault client's output");
  request.fd.reset();
  request.progress_fd.reset();
  if (!written) {
    spdlog::warn("request {} from uid {} (pid {}): {}", request.message.head(), request.peer_uid, request.peer_pid,
                 written.error().message);
    return protocol::error(written.error());
  }
  return response;
}

}  // namespace walvault
