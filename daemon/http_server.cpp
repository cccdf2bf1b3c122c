#include "daemon/http_server.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

namespace walvault {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One connection: requests in turn (Prometheus keeps its connection open between scrapes),
// each with a deadline to arrive and to be answered; a bad request gets 400 and the close.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const Routes> routes, std::shared_ptr<unsigned> active)
      : m_stream(std::move(socket)), m_routes(std::move(routes)), m_active(std::move(active)) {
    ++*m_active;
  }
  ~Session() { --*m_active; }

  void read() {
    m_parser.emplace();
    m_parser->header_limit(k_max_request_header);
    m_parser->body_limit(0);  // GET only: a request with a body is refused
    m_stream.expires_after(std::chrono::seconds(k_timeout_seconds));
    http::async_read(m_stream, m_buffer, *m_parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) return close();
    if (ec) {
      HttpReply reply{400, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"};
      return write(std::move(reply), 11, false);
    }
    const auto& request = m_parser->get();
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    if (request.method() != http::verb::get && request.method() != http::verb::head)
      return write(HttpReply{405, "text/plain; charset=utf-8", "only GET is served\n"}, version, false);
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));  // Prometheus adds no query; a probe may
    auto route = m_routes->find(target);
    if (route == m_routes->end()) {
      std::string paths;
      for (const auto& [path, handler] : *m_routes) paths += (paths.empty() ? "" : ", ") + path;
      return write(HttpReply{404, "text/plain; charset=utf-8", "not found; served: " + paths + "\n"}, version, keep_alive);
    }
    HttpReply reply;
    try {
      reply = route->second();
    } catch (const std::exception& e) {
      reply = HttpReply{500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
    }
    if (request.method() == http::verb::head) reply.body.clear();
    write(std::move(reply), version, keep_alive);
  }

  void write(HttpReply reply, unsigned version, bool keep_alive) {
    m_response = {static_cast<http::status>(reply.status), version};
    m_response.set(http::field::server, "walvaultd/" WALVAULT_VERSION);
    m_response.set(http::field::content_type, reply.content_type);
    m_response.set(http::field::cache_control, "no-store");
    m_response.keep_alive(keep_alive);
    m_response.body() = std::move(reply.body);
    m_response.prepare_payload();
    m_stream.expires_after(std::chrono::seconds(k_timeout_seconds));
    http::async_write(m_stream, m_response, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    m_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    m_stream.socket().close(ignored);
  }

  beast::tcp_stream m_stream;
  beast::flat_buffer m_buffer{k_max_request_header};
  std::optional<http::request_parser<http::empty_body>> m_parser;
  http::response<http::string_body> m_response;
  std::shared_ptr<const Routes> m_routes;
  std::shared_ptr<unsigned> m_active;
};

HttpServer::HttpServer(asio::io_context& io, Routes routes)
    : m_io(io), m_routes(std::make_shared<const Routes>(std::move(routes))) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::listen(const std::vector<ListenAddress>& addresses) {
  for (const auto& address : addresses) {
    const std::string where = address.host.find(':') != std::string::npos
                                  ? "[" + address.host + "]:" + std::to_string(address.port)
                                  : address.host + ":" + std::to_string(address.port);
    boost::system::error_code ec;
    const tcp::endpoint endpoint(asio::ip::make_address(address.host, ec), address.port);
    if (ec) return fail(ErrorKind::invalid, "metrics-listen '" + where + "': " + ec.message());
    auto acceptor = std::make_unique<tcp::acceptor>(m_io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && endpoint.protocol() == tcp::v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(ErrorKind::io, "unable to listen on metrics-listen '" + where + "': " + ec.message());
    m_acceptors.push_back(std::move(acceptor));
  }
  return {};
}

void HttpServer::start() {
  for (std::size_t i = 0; i < m_acceptors.size(); ++i) accept(i);
}

void HttpServer::accept(std::size_t listener) {
  m_acceptors[listener]->async_accept([this, listener](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !m_acceptors[listener]->is_open()) return;
    if (!ec) {
      if (*m_active >= k_max_connections) {
        // Bounded: a scrape storm (or a scanner) cannot hold more than a few sockets.
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), m_routes, m_active)->read();
      }
    } else {
      // Out of descriptors, say: wait a moment instead of spinning on the same error.
      spdlog::warn("metrics endpoint: accept failed: {}", ec.message());
      auto pause = std::make_shared<boost::asio::steady_timer>(m_io, std::chrono::milliseconds(200));
      pause->async_wait([this, listener, pause](boost::system::error_code wait_ec) {
        if (!wait_ec && m_acceptors[listener]->is_open()) accept(listener);
      });
      return;
    }
    accept(listener);
  });
}

void HttpServer::stop() {
  for (auto& acceptor : m_acceptors) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
}

std::vector<std::uint16_t> HttpServer::ports() const {
  std::vector<std::uint16_t> out;
  for (const auto& acceptor : m_acceptors) {
    boost::system::error_code ec;
    out.push_back(acceptor->local_endpoint(ec).port());
  }
  return out;
}

}  // namespace walvault
