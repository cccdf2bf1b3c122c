#pragma once
// HTTP for the S3 backend, through libcurl: one easy handle per client, reused so connections
// (and TLS sessions) are kept; bounded connect time and a low-speed limit, so an endpoint that
// accepts and never answers fails in bounded time instead of hanging a push.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/storage/s3/sigv4.hpp"

namespace walvault::s3 {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer slower than low_speed_bytes per second for low_speed_time fails (a stalled
  // endpoint); request_timeout bounds a whole request.
  std::chrono::seconds low_speed_time{30};
  long low_speed_bytes = 1024;
  std::chrono::seconds request_timeout{300};
  std::string ca_file;  // empty: the system's CAs
  bool verify_tls = true;
};

struct HttpRequest {
  std::string method;
  std::string url;
  Pairs headers;
  std::span<const std::byte> body;
};

struct HttpResponse {
  long status = 0;
  Pairs headers;  // names in lower case
  std::vector<std::byte> body;
  std::string header(std::string_view name) const;  // "" when absent
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request. A failure here is the transport's (no connection, reset, timeout, TLS):
  // ErrorKind::io, transient unless it cannot pass by itself (TLS verification, a bad URL).
  // `what` names the operation and object for the message; never a secret.
  Result<HttpResponse> perform(const HttpRequest& request, const std::string& what);

 private:
  HttpOptions m_options;
  void* m_curl;  // CURL*, kept out of the header
};

// A few clients for the storage's threads: acquire() hands one out (a new one when all are
// busy), and it returns to the pool when the lease ends.
class HttpPool {
 public:
  explicit HttpPool(HttpOptions options) : m_options(std::move(options)) {}
  class Lease {
   public:
    Lease(HttpPool& pool, std::unique_ptr<HttpClient> client) : m_pool(pool), m_client(std::move(client)) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    HttpClient& operator*() { return *m_client; }
    HttpClient* operator->() { return m_client.get(); }

   private:
    HttpPool& m_pool;
    std::unique_ptr<HttpClient> m_client;
  };
  Lease acquire();

 private:
  HttpOptions m_options;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<HttpClient>> m_idle;
};

}  // namespace walvault::s3
