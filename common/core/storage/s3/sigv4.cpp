#include "common/core/storage/s3/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <ctime>

#include "common/core/sha256.hpp"

namespace walvault::s3 {

namespace {

using Mac = std::array<unsigned char, 32>;

Mac hmac(std::string_view key, std::string_view data) {
  Mac out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out.data(), &length);
  return out;
}

std::string_view as_view(const Mac& mac) { return {reinterpret_cast<const char*>(mac.data()), mac.size()}; }

std::string sha256_hex(std::string_view text) {
  return to_hex(sha256(std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size())));
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Trimmed, with each run of spaces inside collapsed to one (SigV4's canonical header value).
std::string canonical_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool unreserved(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'; }

std::string encode(std::string_view text, bool keep_slash) {
  static constexpr char k_digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_digits[c >> 4];
      out += k_digits[c & 0xF];
    }
  }
  return out;
}

}  // namespace

std::string uri_encode(std::string_view text) { return encode(text, false); }
std::string uri_encode_path(std::string_view path) { return encode(path, true); }

std::string canonical_query(const Pairs& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(uri_encode(name), uri_encode(value));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) out += (out.empty() ? "" : "&") + name + "=" + value;
  return out;
}

std::string amz_date(std::int64_t unix_us) {
  const std::time_t seconds = static_cast<std::time_t>(unix_us / 1000000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &utc);
  return buf;
}

SignedRequest sign(const RequestToSign& request, const Credentials& credentials) {
  SignedRequest out;
  out.headers.emplace_back("x-amz-date", request.amz_date);
  out.headers.emplace_back("x-amz-content-sha256", request.payload_sha256);
  if (!credentials.session_token.empty()) out.headers.emplace_back("x-amz-security-token", credentials.session_token);

  // Canonical headers: lower-case names, sorted; values of a repeated name joined by commas.
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("host", request.host);
  for (const auto& [name, value] : request.headers) headers.emplace_back(lower(name), canonical_value(value));
  for (const auto& [name, value] : out.headers) headers.emplace_back(name, canonical_value(value));
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, signed_headers;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.back() = ',';
      canonical_headers += headers[i].second + "\n";
      continue;
    }
    canonical_headers += headers[i].first + ":" + headers[i].second + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + headers[i].first;
  }

  out.canonical_request = request.method + "\n" + request.path + "\n" + canonical_query(request.query) + "\n" +
                          canonical_headers + "\n" + signed_headers + "\n" + request.payload_sha256;
  const std::string day = request.amz_date.substr(0, 8);
  const std::string scope = day + "/" + request.region + "/" + request.service + "/aws4_request";
  out.string_to_sign = "AWS4-HMAC-SHA256\n" + request.amz_date + "\n" + scope + "\n" + sha256_hex(out.canonical_request);

  const Mac date_key = hmac("AWS4" + credentials.secret, day);
  const Mac region_key = hmac(as_view(date_key), request.region);
  const Mac service_key = hmac(as_view(region_key), request.service);
  const Mac signing_key = hmac(as_view(service_key), "aws4_request");
  const std::string signature = to_hex(hmac(as_view(signing_key), out.string_to_sign));
  out.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.key_id + "/" + scope + ", SignedHeaders=" + signed_headers +
                      ", Signature=" + signature;
  return out;
}

}  // namespace walvault::s3
