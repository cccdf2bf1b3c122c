#include "common/core/storage/s3/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace walvault::s3 {

namespace {

// libcurl's global state, once per process, before any handle.
void init_curl_once() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

struct Transfer {
  std::span<const std::byte> body;
  std::size_t sent = 0;
  HttpResponse* response = nullptr;
};

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  transfer->response->body.insert(transfer->response->body.end(), bytes, bytes + size * count);
  return size * count;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t n = std::min(size * count, transfer->body.size() - transfer->sent);
  std::memcpy(buffer, transfer->body.data() + transfer->sent, n);
  transfer->sent += n;
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  const std::size_t colon = line.find(':');
  if (line.starts_with("HTTP/")) {
    transfer->response->headers.clear();  // a 100 Continue or a redirect came first
  } else if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    transfer->response->headers.emplace_back(std::move(name), std::string(value));
  }
  return size * count;
}

// Transport failures that may pass by themselves: retried by RetryingStorage.
bool transient_curl_error(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return "";
}

HttpClient::HttpClient(HttpOptions options) : m_options(std::move(options)) {
  init_curl_once();
  m_curl = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (m_curl) curl_easy_cleanup(static_cast<CURL*>(m_curl));
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request, const std::string& what) {
  CURL* curl = static_cast<CURL*>(m_curl);
  if (!curl) return fail(ErrorKind::internal, "unable to " + what + ": libcurl did not start");
  curl_easy_reset(curl);  // keeps the connection cache, forgets the last request's options
  HttpResponse response;
  Transfer transfer{request.body, 0, &response};
  char error_text[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_options.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(m_options.low_speed_time.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, m_options.low_speed_bytes);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(m_options.request_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, m_options.verify_tls ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, m_options.verify_tls ? 2L : 0L);
  if (!m_options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, m_options.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);

  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  if (request.method == "PUT" || request.method == "POST") headers = curl_slist_append(headers, "Transfer-Encoding:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    Failure failure{ErrorKind::io, "unable to " + what + ": " + (error_text[0] ? std::string(error_text) : curl_easy_strerror(code))};
    if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
      failure.message += " (the endpoint's certificate is not trusted: set s3-ca-file to the CA that signed it)";
    failure.transient = transient_curl_error(code);
    if (code == CURLE_OPERATION_TIMEDOUT) failure.kind = ErrorKind::timeout;
    return std::unexpected(failure);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

HttpPool::Lease::~Lease() {
  std::lock_guard lock(m_pool.m_mutex);
  m_pool.m_idle.push_back(std::move(m_client));
}

HttpPool::Lease HttpPool::acquire() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      auto client = std::move(m_idle.back());
      m_idle.pop_back();
      return Lease(*this, std::move(client));
    }
  }
  return Lease(*this, std::make_unique<HttpClient>(m_options));
}

}  // namespace walvault::s3
