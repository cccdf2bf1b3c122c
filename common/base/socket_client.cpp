#include "common/base/socket_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/base/path_access.hpp"

namespace walvault {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Why this process may not connect, and what to change: "Permission denied" alone sends
// operators hunting through directories.
std::string permission_hint(const std::string& path) {
  const UserIdentity self = identity_of_process();
  std::string hint = "this process runs as " + describe_user(self);
  if (auto problem = socket_access_problem(self, path)) hint += " and has " + *problem;
  return hint + "; give the socket to a group of this user with walvaultd's socket-group (or widen socket-mode), "
                "or open the directory to it (see docs/configuration.md)";
}

Result<UniqueFd> connect_once(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return fail(ErrorKind::invalid, "socket path '" + path + "' is longer than " +
                                        std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_os("create socket for", path, errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    Failure failure{ErrorKind::io, os_error_text("connect to walvaultd at", path, err)};
    if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN) failure.kind = ErrorKind::busy;  // retryable
    if (err == EACCES) failure.message += "; " + permission_hint(path);
    return std::unexpected(failure);
  }
  return fd;
}

}  // namespace

Result<SocketClient> SocketClient::connect(const std::string& path, std::chrono::milliseconds connect_timeout,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + connect_timeout;
  auto delay = std::chrono::milliseconds(20);
  for (;;) {
    auto fd = connect_once(path);
    if (fd) {
      SocketClient client(std::move(*fd), path);
      auto greeting = client.receive(timeout);
      if (!greeting) return std::unexpected(greeting.error());
      if (greeting->head() == "BUSY") {  // max-connections reached: retryable, see exchange()
        auto text = greeting->field("message");
        return fail(ErrorKind::busy, "walvaultd at '" + path + "' is busy: " + std::string(text ? *text : "too many connections"));
      }
      if (greeting->head() == "ERR") {
        auto text = greeting->field("message");
        return fail(error_kind_from_string(greeting->argument()),
                    text ? std::string(*text) : "walvaultd refused the connection");
      }
      if (greeting->line != protocol::k_greeting)
        return fail(ErrorKind::invalid, "walvaultd at '" + path + "' speaks '" + greeting->line + "', this client speaks '" +
                                            std::string(protocol::k_greeting) + "'");
      return client;
    }
    if (fd.error().kind != ErrorKind::busy || Clock::now() + delay > deadline) {
      Failure failure = fd.error();
      if (failure.kind == ErrorKind::busy) failure.kind = ErrorKind::io;
      return std::unexpected(failure);
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

Result<void> SocketClient::send(const protocol::Message& message, int fd) {
  if (fd < 0) return send_with_fds(message, {});
  return send_with_fds(message, {fd});
}

Result<void> SocketClient::send_with_fds(const protocol::Message& message, std::initializer_list<int> fds) {
  if (fds.size() > 2) return fail(ErrorKind::invalid, "at most two descriptors per request");
  auto frame = protocol::encode_frame(message);
  if (!frame) return std::unexpected(frame.error());
  std::size_t done = 0;
  while (done < frame->size()) {
    iovec iov{frame->data() + done, frame->size() - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)];
    if (fds.size() > 0 && done == 0) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cmsg), std::data(fds), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(m_fd.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_os("send request to walvaultd at", m_path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<protocol::Message> SocketClient::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto payload = m_decoder.next()) return protocol::parse(*payload);
    pollfd pfd{m_fd.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return fail_os("wait for walvaultd at", m_path, errno);
    }
    if (ready == 0)
      return fail(ErrorKind::timeout, "no answer from walvaultd at '" + m_path + "' within " +
                                          (timeout.count() < 1000 ? std::to_string(timeout.count()) + " ms"
                                                                  : std::to_string(timeout.count() / 1000) + " s"));
    char buf[4096];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(m_fd.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_os("read from walvaultd at", m_path, errno);
    }
    for (auto& passed : passed_descriptors(msg))
      if (!m_passed_fd) m_passed_fd = std::move(passed);  // one per answer; a second closes unused
    if (n == 0) return fail(ErrorKind::io, "walvaultd at '" + m_path + "' closed the connection before answering");
    if (auto r = m_decoder.feed({buf, static_cast<std::size_t>(n)}); !r) return std::unexpected(r.error());
  }
}

Result<protocol::Message> exchange(const ClientOptions& options, const protocol::Message& request, int fd,
                                   UniqueFd* passed_fd) {
  const auto deadline = Clock::now() + options.timeout;
  auto delay = std::chrono::milliseconds(50);
  for (;;) {
    auto left = std::chrono::milliseconds(remaining_ms(deadline));
    auto client = SocketClient::connect(options.socket_path, options.connect_timeout, left);
    // BUSY comes before the greeting (max-connections) or as the answer (queue full): either
    // way the daemon is there and will have room; retry until the timeout.
    std::string busy;
    if (!client) {
      if (client.error().kind != ErrorKind::busy) return std::unexpected(client.error());
      busy = client.error().message;
    } else {
      if (auto sent = client->send(request, fd); !sent) return std::unexpected(sent.error());
      auto response = client->receive(std::chrono::milliseconds(remaining_ms(deadline)));
      if (!response) return response;
      if (response->head() != "BUSY") {
        if (passed_fd) *passed_fd = client->take_passed_fd();
        return response;
      }
      auto text = response->field("message");
      busy = "walvaultd at '" + options.socket_path + "' is busy: " + std::string(text ? *text : "queue full");
    }
    if (Clock::now() + delay >= deadline)
      return fail(ErrorKind::busy, busy + " (still busy after " + std::to_string(options.timeout.count() / 1000) + " s, --timeout)");
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace walvault
