#pragma once
// AWS Signature Version 4 for S3 requests, on OpenSSL's HMAC and SHA-256: our own small
// signer, because libcurl 7.88's mis-sorts some headers and mis-signs valueless query
// parameters (?uploads). Checked against vectors botocore made (tests/fixtures/sigv4).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace walvault::s3 {

struct Credentials {
  std::string key_id;
  std::string secret;         // never logged, never in an error text
  std::string session_token;  // empty: none
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct RequestToSign {
  std::string method;             // GET, PUT, ...
  std::string host;               // the Host header: host[:port]
  std::string path;               // URI-encoded as sent (uri_encode_path), starting with '/'
  Pairs query;                    // decoded names and values; a valueless one has ""
  Pairs headers;                  // the other headers to sign, any case (Range, If-None-Match, ...)
  std::string payload_sha256;     // hex, or UNSIGNED-PAYLOAD
  std::string amz_date;           // 20261203T163005Z (UTC)
  std::string region;
  std::string service = "s3";
};

struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;  // the Authorization header's value
  Pairs headers;              // to send as well: x-amz-date, x-amz-content-sha256, x-amz-security-token
};

SignedRequest sign(const RequestToSign& request, const Credentials& credentials);

// RFC 3986 encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~) stay,
// everything else becomes %XX (upper case); '/' stays only in uri_encode_path.
std::string uri_encode(std::string_view text);
std::string uri_encode_path(std::string_view path);
// The query string as sent: the same encoding and order as the canonical one.
std::string canonical_query(const Pairs& query);
// 20261203T163005Z for a time in microseconds since the Unix epoch.
std::string amz_date(std::int64_t unix_us);

}  // namespace walvault::s3
