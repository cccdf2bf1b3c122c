#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include "daemon/server.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/base/path_access.hpp"

namespace walvault {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using Socket = asio::local::stream_protocol::socket;

namespace {

// Runs `work` on the pool and resumes the awaiting coroutine on its own executor with the
// result. Deliberately not a coroutine itself: the work travels as an initiation argument,
// which avoids GCC 12's mishandling of by-value coroutine parameters.
using Work = std::function<protocol::Message()>;
auto offload(asio::thread_pool& pool, Work work) {
  return asio::async_initiate<decltype(use_awaitable), void(protocol::Message)>(
      [&pool](auto handler, Work job) {
        auto home = asio::get_associated_executor(handler);
        asio::post(pool, [job = std::move(job), handler = std::move(handler), home]() mutable {
          protocol::Message result;
          try {
            result = job();
          } catch (const std::exception& e) {
            result = protocol::error({ErrorKind::internal, std::string("internal error: ") + e.what()});
          }
          asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable { handler(std::move(result)); });
        });
      },
      use_awaitable, std::move(work));
}

// A deadline for one connection: when it fires, the socket is cancelled and closed, so any
// pending wait in the session fails instead of hanging.
class Deadline {
 public:
  Deadline(asio::io_context& io, std::shared_ptr<Socket> socket) : m_timer(io), m_socket(std::move(socket)) {}
  void arm(std::chrono::steady_clock::duration timeout) {
    m_timer.expires_after(timeout);
    m_timer.async_wait([socket = m_socket](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed or cancelled
      boost::system::error_code ignored;
      socket->cancel(ignored);
      socket->close(ignored);
    });
  }
  void disarm() { m_timer.cancel(); }
  ~Deadline() { m_timer.cancel(); }

 private:
  asio::steady_timer m_timer;
  std::shared_ptr<Socket> m_socket;
};

// Sends the response; `fd` (if >= 0) goes along as SCM_RIGHTS with its first bytes.
awaitable<void> send_message(Socket& socket, const protocol::Message& message, int fd = -1) {
  auto frame = protocol::encode_frame(message);
  if (!frame) {
    auto fallback = protocol::encode_frame(protocol::error({ErrorKind::internal, "response too large"}));
    frame = std::move(fallback);
  }
  std::size_t sent = 0;
  while (fd >= 0) {
    iovec iov{frame->data(), frame->size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    const ssize_t n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    const int err = errno;
    if (n >= 0) {
      sent = static_cast<std::size_t>(n);
      break;
    }
    if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) throw boost::system::system_error(err, boost::system::system_category());
    co_await socket.async_wait(Socket::wait_write, use_awaitable);
  }
  co_await asio::async_write(socket, asio::buffer(frame->data() + sent, frame->size() - sent), use_awaitable);
}

struct Received {
  std::string payload;
  UniqueFd fd;
  UniqueFd progress_fd;
  std::string problem;  // non-empty: refuse the request with this text
};

// Reads one frame with recvmsg, collecting at most one passed descriptor.
awaitable<Received> receive_request(Socket& socket) {
  Received received;
  protocol::FrameDecoder decoder;
  int fd_count = 0;
  for (;;) {
    co_await socket.async_wait(Socket::wait_read, use_awaitable);
    char data[4096];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      throw boost::system::system_error(errno, boost::system::system_category());
    }
    std::vector<UniqueFd> passed = passed_descriptors(msg);
    for (auto& fd : passed) {
      ++fd_count;
      if (fd_count == 1) received.fd = std::move(fd);
      else if (fd_count == 2) received.progress_fd = std::move(fd);
      // never keep more than two (the rest close with `passed`); the request is refused below
    }
    if (msg.msg_flags & MSG_CTRUNC) received.problem = "too many descriptors passed with the request";
    if (fd_count > 2) received.problem = "more than two descriptors passed with the request";
    if (n == 0) throw boost::system::system_error(asio::error::eof);
    if (auto r = decoder.feed({data, static_cast<std::size_t>(n)}); !r) {
      received.problem = r.error().message;
      co_return received;
    }
    if (auto payload = decoder.next()) {
      received.payload = std::move(*payload);
      co_return received;
    }
  }
}

}  // namespace

Server::Server(asio::io_context& io, const HandlerRegistry& handlers, ServerSettings settings, LiveSetting<ServerPolicy> policy)
    : m_io(io), m_handlers(handlers), m_settings(std::move(settings)), m_policy(std::move(policy)),
      m_pool(std::max(1u, m_settings.workers)), m_long_pool(k_long_lane_threads),
      m_admin_pool(k_admin_lane_threads) {}

Server::~Server() {
  m_pool.join();
  m_long_pool.join();
  m_admin_pool.join();
  if (m_acceptor) ::unlink(m_settings.socket_path.c_str());
}

Result<void> Server::listen() {
  const std::string& path = m_settings.socket_path;
  const std::string dir = parent_directory(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (auto r = make_directories(dir, 0755); !r) return r;
    ::chmod(dir.c_str(), 0755);
  }
  // The lock decides who owns the socket path: only its holder may unlink a stale socket.
  const std::string lock_path = path + ".lock";
  m_lock_fd.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!m_lock_fd) return fail_os("open lock file", lock_path, errno);
  if (::flock(m_lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return fail(ErrorKind::invalid, "another walvaultd is already serving socket '" + path + "' (lock '" + lock_path + "' is held)");
    return fail_os("lock", lock_path, errno);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_os("remove stale socket", path, errno);

  // Create the socket with no access at all, then open it up to exactly the configured mode.
  const mode_t old_umask = ::umask(0777);
  boost::system::error_code ec;
  auto acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(m_io);
  acceptor->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor->bind(asio::local::stream_protocol::endpoint(path), ec);
  ::umask(old_umask);
  if (ec) return fail(ErrorKind::io, "unable to bind socket '" + path + "': " + ec.message());
  if (m_settings.socket_group && ::chown(path.c_str(), static_cast<uid_t>(-1), *m_settings.socket_group) != 0) {
    const int err = errno;
    return fail(ErrorKind::io, os_error_text("give socket", path, err) + " to group '" + group_name(*m_settings.socket_group) +
                                   "' (socket-group): walvaultd must run as root or be a member of that group");
  }
  if (::chmod(path.c_str(), m_settings.socket_mode) != 0) return fail_os("set mode of socket", path, errno);
  acceptor->listen(static_cast<int>(std::min(m_settings.max_connections, 4096u)), ec);
  if (ec) return fail(ErrorKind::io, "unable to listen on socket '" + path + "': " + ec.message());
  m_acceptor = std::move(acceptor);
  return {};
}

class Server::Session {
 public:
  // Validates the received frame; returns the handler to run, or nullptr with `response` set.
  static const RegisteredHandler* route(Server& server, Received received, const ucred& cred, Request& request,
                              protocol::Message& response) {
    if (!received.problem.empty()) {
      response = protocol::error({ErrorKind::invalid, received.problem});
      return nullptr;
    }
    auto message = protocol::parse(received.payload);
    if (!message) {
      response = protocol::error(message.error());
      return nullptr;
    }
    const RegisteredHandler* handler = server.m_handlers.find(message->head());
    if (!handler) {
      response = protocol::error({ErrorKind::invalid, "unknown request '" + std::string(message->head()).substr(0, 32) + "'"});
      return nullptr;
    }
    request.message = std::move(*message);
    request.fd = std::move(received.fd);
    request.progress_fd = std::move(received.progress_fd);
    request.peer_uid = cred.uid;
    request.peer_pid = cred.pid;
    return handler;
  }

  static awaitable<void> run(Server& server, std::shared_ptr<Socket> socket) {
    Deadline deadline(server.m_io, socket);
    try {
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(socket->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        throw boost::system::system_error(errno, boost::system::system_category());
      const ServerPolicy policy = server.m_policy();
      deadline.arm(policy.request_timeout);

      if (std::find(policy.allow_uids.begin(), policy.allow_uids.end(), cred.uid) == policy.allow_uids.end()) {
        spdlog::warn("refused connection from uid {} (pid {}): not in allow-uid", cred.uid, cred.pid);
        const protocol::Message refusal = protocol::error(
            {ErrorKind::forbidden, "uid " + std::to_string(cred.uid) + " is not allowed to use walvaultd (allow-uid)"});
        co_await send_message(*socket, refusal);
        co_return;
      }
      if (server.m_active.load() > server.m_settings.max_connections) {
        spdlog::warn("connection from uid {} (pid {}) answered BUSY: {} connections open (max-connections {}); it retries",
                     cred.uid, cred.pid, server.m_active.load() - 1, server.m_settings.max_connections);
        const protocol::Message busy = protocol::busy(
            "walvaultd is serving " + std::to_string(server.m_settings.max_connections) + " connections (max-connections)");
        co_await send_message(*socket, busy);
        co_return;
      }
      const protocol::Message greeting{std::string(protocol::k_greeting), {}};
      co_await send_message(*socket, greeting);

      // Until its request arrives a connection has nothing in progress: a drain closes it at
      // once instead of waiting out its request-timeout.
      if (server.m_draining) co_return;
      server.m_waiting.insert(socket);
      Received received = co_await receive_request(*socket);
      server.m_waiting.erase(socket);
      deadline.disarm();
      // Decide synchronously; GCC 12 mishandles co_await under if-statements with
      // init-declarations, so the only co_await below is unconditional on its own line.
      protocol::Message response;
      auto request = std::make_shared<Request>();
      const RegisteredHandler* handler = route(server, std::move(received), cred, *request, response);
      if (handler) {
        Work work = [handler, request] { return handler->handler(*request); };
        asio::thread_pool& pool = handler->lane == Lane::long_running ? server.m_long_pool
                                  : handler->lane == Lane::admin      ? server.m_admin_pool
                                                                      : server.m_pool;
        response = co_await offload(pool, std::move(work));
      }
      deadline.arm(std::chrono::seconds(10));
      // A descriptor goes only with a success: with an error it would mean nothing.
      const int reply_fd = response.head() == "OK" ? request->reply_fd.get() : -1;
      co_await send_message(*socket, response, reply_fd);
    } catch (const boost::system::system_error& e) {
      server.m_waiting.erase(socket);
      // Peer went away or the deadline closed the socket; nothing more to tell it.
      spdlog::debug("connection ended early: {}", e.code().message());
    } catch (const std::exception& e) {
      server.m_waiting.erase(socket);
      spdlog::error("connection failed: {}", e.what());
    }
  }
};

void Server::start() {
  asio::co_spawn(
      m_io,
      [this]() -> awaitable<void> {
        while (m_acceptor && m_acceptor->is_open()) {
          boost::system::error_code ec;
          Socket socket = co_await m_acceptor->async_accept(asio::redirect_error(use_awaitable, ec));
          if (ec) {
            if (ec == asio::error::operation_aborted || !m_acceptor->is_open()) break;
            spdlog::warn("accept failed: {}", ec.message());
            asio::steady_timer pause(m_io, std::chrono::milliseconds(100));  // e.g. EMFILE: do not spin
            co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
            continue;
          }
          ++m_active;
          auto shared = std::make_shared<Socket>(std::move(socket));
          asio::co_spawn(m_io, Session::run(*this, shared), [this](std::exception_ptr) { session_finished(); });
        }
      },
      asio::detached);
}

void Server::session_finished() {
  if (--m_active == 0 && m_draining && m_drained) {
    auto done = std::move(m_drained);
    m_drained = nullptr;
    done();
  }
}

void Server::drain(std::function<void()> done) {
  m_draining = true;
  if (m_acceptor) {
    boost::system::error_code ignored;
    m_acceptor->close(ignored);
  }
  for (const auto& socket : m_waiting) {
    boost::system::error_code ignored;
    socket->cancel(ignored);
    socket->close(ignored);
  }
  if (!m_waiting.empty()) spdlog::info("closed {} connection(s) that had not sent a request yet", m_waiting.size());
  m_waiting.clear();
  if (m_active.load() == 0) {
    done();
    return;
  }
  m_drained = std::move(done);
}

}  // namespace walvault
