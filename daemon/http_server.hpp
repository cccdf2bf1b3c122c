#pragma once
// walvaultd's HTTP endpoint (metrics-listen): GET only, a fixed set of paths, bounded in
// connections, request size and time. Routes run on the io thread and must not block: they
// render what was computed elsewhere (a metrics snapshot), never ask the repository.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/config.hpp"

namespace walvault {

struct HttpReply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Route = std::function<HttpReply()>;
  using Routes = std::map<std::string, Route, std::less<>>;  // by path: "/metrics"
  static constexpr unsigned k_max_connections = 8;
  static constexpr std::size_t k_max_request_header = 8192;
  static constexpr int k_timeout_seconds = 10;  // to send a request, and to take the reply

  HttpServer(boost::asio::io_context& io, Routes routes);
  ~HttpServer();

  // Binds every address (each one's error names it); nothing is served before start().
  Result<void> listen(const std::vector<ListenAddress>& addresses);
  void start();
  // Closes the listeners; open connections end with their current request.
  void stop();
  // The ports bound, in the order given (useful when an address asked for port 0).
  std::vector<std::uint16_t> ports() const;

 private:
  class Session;
  void accept(std::size_t listener);

  boost::asio::io_context& m_io;
  std::shared_ptr<const Routes> m_routes;  // shared with sessions, which may outlive a stop()
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> m_acceptors;
  std::shared_ptr<unsigned> m_active = std::make_shared<unsigned>(0);  // io thread only
};

}  // namespace walvault
