#pragma once
// walvaultd's socket server: one coroutine per connection, a deadline on every wait, the
// blocking work (read, check, compress, fsync) on a fixed worker pool.
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/fd.hpp"
#include "common/base/protocol.hpp"
#include "common/core/live_setting.hpp"
#include "common/core/request.hpp"

namespace walvault {

// Settings a SIGHUP may change while connections are open.
struct ServerPolicy {
  std::vector<uid_t> allow_uids;
  std::chrono::seconds request_timeout{10};
};

struct ServerSettings {
  std::string socket_path;
  unsigned socket_mode = 0660;
  std::optional<gid_t> socket_group;  // chown'd to it after bind; nullopt: as created
  unsigned workers = 1;
  unsigned max_connections = 64;
};

class Server {
 public:
  // `policy` is read for every connection, so a reload applies to the next one.
  Server(boost::asio::io_context& io, const HandlerRegistry& handlers, ServerSettings settings,
         LiveSetting<ServerPolicy> policy);
  ~Server();

  // Takes the lock file (<socket>.lock), removes a stale socket, binds with the configured mode.
  Result<void> listen();
  void start();
  // Stops accepting and closes connections that have not sent a request; `done` runs on the
  // io thread once no connection is left. Call on the io thread.
  void drain(std::function<void()> done);

  unsigned active_connections() const { return m_active.load(); }

 private:
  class Session;
  void session_finished();

  boost::asio::io_context& m_io;
  const HandlerRegistry& m_handlers;
  ServerSettings m_settings;
  LiveSetting<ServerPolicy> m_policy;
  boost::asio::thread_pool m_pool;
  // Backups and restore streams (Lane::long_running): one backup plus parallel chunk reads.
  static constexpr std::size_t k_long_lane_threads = 8;
  boost::asio::thread_pool m_long_pool;
  static constexpr std::size_t k_admin_lane_threads = 2;
  boost::asio::thread_pool m_admin_pool;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> m_acceptor;
  UniqueFd m_lock_fd;
  std::atomic<unsigned> m_active{0};
  bool m_draining = false;                        // io thread only, like the two below
  std::set<std::shared_ptr<boost::asio::local::stream_protocol::socket>> m_waiting;  // greeted, no request yet
  std::function<void()> m_drained;
};

}  // namespace walvault
