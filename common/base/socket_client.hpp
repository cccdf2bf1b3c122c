#pragma once
// The one client of the wire protocol: plain POSIX, poll() deadlines, SCM_RIGHTS.
#include <chrono>
#include <initializer_list>
#include <string>

#include "common/base/error.hpp"
#include "common/base/fd.hpp"
#include "common/base/protocol.hpp"

namespace walvault {

struct ClientOptions {
  std::string socket_path;
  std::chrono::milliseconds connect_timeout{1000};  // how long to keep retrying a daemon that is not up
  std::chrono::milliseconds timeout{300000};        // how long to wait for the answer
};

class SocketClient {
 public:
  // Connects and reads the greeting. ENOENT/ECONNREFUSED/EAGAIN are retried until the connect
  // timeout; a failure then is ErrorKind::io naming the socket.
  static Result<SocketClient> connect(const std::string& path, std::chrono::milliseconds connect_timeout,
                                      std::chrono::milliseconds timeout);

  // Sends one frame, passing `fd` (if >= 0) as SCM_RIGHTS with it.
  Result<void> send(const protocol::Message& message, int fd = -1);
  // The same with up to two descriptors (admin verbs: output, then progress).
  Result<void> send_with_fds(const protocol::Message& message, std::initializer_list<int> fds);
  Result<protocol::Message> receive(std::chrono::milliseconds timeout);
  // The descriptor walvaultd passed with an answer (GET's handoff), if any; the first one only.
  UniqueFd take_passed_fd() { return std::move(m_passed_fd); }

 private:

  explicit SocketClient(UniqueFd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}
  UniqueFd m_fd;
  std::string m_path;
  protocol::FrameDecoder m_decoder;
  UniqueFd m_passed_fd;
};

// connect + request + response; a BUSY answer is retried with back-off until options.timeout.
// `passed_fd`, if given, receives the descriptor passed with the answer (none: left invalid).
Result<protocol::Message> exchange(const ClientOptions& options, const protocol::Message& request, int fd = -1,
                                   UniqueFd* passed_fd = nullptr);

}  // namespace walvault
