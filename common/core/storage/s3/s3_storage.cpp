#include "common/core/storage/s3/s3_storage.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>

#include "common/core/sha256.hpp"
#include "common/core/storage/s3/s3_xml.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

namespace {

using s3::HttpResponse;
using s3::parse_time_us;
using s3::xml_first;
using s3::Pairs;

std::string sha256_hex(std::span<const std::byte> data) { return to_hex(sha256(data)); }

std::array<unsigned char, 16> md5_of(std::span<const std::byte> data) {
  std::array<unsigned char, 16> out{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_md5(), nullptr);
  return out;
}

std::string base64(std::span<const unsigned char> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string_view text_of(const std::vector<std::byte>& body) { return {reinterpret_cast<const char*>(body.data()), body.size()}; }

std::string join_key(const std::string& prefix, const std::string& key) {
  if (prefix.empty()) return key;
  return key.empty() ? prefix : prefix + "/" + key;
}

class S3Storage;

class S3Writer final : public ObjectWriter {
 public:
  S3Writer(S3Storage& storage, std::string key, PutMode mode) : m_storage(storage), m_key(std::move(key)), m_mode(mode) {}
  ~S3Writer() override;
  Result<void> append(std::span<const std::byte> data) override;
  Result<void> commit() override;

 private:
  Result<void> upload_part(std::span<const std::byte> part);

  S3Storage& m_storage;
  std::string m_key;
  PutMode m_mode;
  std::vector<std::byte> m_buffer;
  std::string m_upload_id;
  std::vector<std::string> m_etags;  // part N at N-1
  bool m_committed = false;
};

class S3Reader final : public ObjectReader {
 public:
  S3Reader(S3Storage& storage, std::string key, std::uint64_t size, std::string etag)
      : m_storage(storage), m_key(std::move(key)), m_size(size), m_etag(std::move(etag)) {}
  Result<std::size_t> read(std::span<std::byte> out) override;
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override;
  std::uint64_t size() const override { return m_size; }

 private:
  // Reads come in small pieces (an object's head is read in two, then its body in 1 MiB
  // pieces). An object up to k_whole_object (any WAL segment, even stored uncompressed) is
  // fetched by its first read in one GET: against a distant store each round trip costs more
  // than the bytes. Larger ones (base-backup chunks) come k_read_ahead at a time.
  static constexpr std::size_t k_whole_object = 24u << 20;
  static constexpr std::size_t k_read_ahead = 8u << 20;

  S3Storage& m_storage;
  std::string m_key;
  std::uint64_t m_size;
  std::string m_etag;
  // Fetches [offset, offset + n) into the window, at least `ahead` bytes of it.
  Result<void> fill_window(std::uint64_t offset, std::size_t n);
  bool in_window(std::uint64_t offset, std::size_t n) const {
    return offset >= m_window_start && offset - m_window_start + n <= m_window.size();
  }

  std::uint64_t m_position = 0;         // of the next byte read() returns
  std::uint64_t m_window_start = 0;     // the object's bytes fetched last: both read() and
  std::vector<std::byte> m_window;      // read_at() (the trailer) are served from them
};

class S3Storage final : public Storage {
 public:
  S3Storage(S3Settings settings, s3::CredentialSource credentials)
      : m_settings(std::move(settings)), m_credentials(std::move(credentials)), m_pool(m_settings.http) {
    const std::size_t scheme_end = m_settings.endpoint.find("://");
    m_scheme = m_settings.endpoint.substr(0, scheme_end);
    m_host = m_settings.endpoint.substr(scheme_end + 3);
    while (!m_host.empty() && m_host.back() == '/') m_host.pop_back();
  }

  const S3Settings& settings() const { return m_settings; }

  std::string describe() const override {
    return "s3://" + m_settings.bucket + (m_settings.prefix.empty() ? "" : "/" + m_settings.prefix) + " (" + m_settings.endpoint + ")";
  }

  struct Call {
    std::string method;
    std::string key;  // relative to the repository; "" with bucket_level
    bool bucket_level = false;
    Pairs query;
    Pairs headers;
    std::span<const std::byte> body;
  };

  // Signs and sends one request; a transport failure is an error, any HTTP status an answer.
  Result<HttpResponse> send(const Call& call, const std::string& what) {
    const std::string object = call.bucket_level ? "" : join_key(m_settings.prefix, call.key);
    const std::string path = m_settings.path_style ? "/" + m_settings.bucket + (object.empty() ? "" : "/" + object) : "/" + object;
    const std::string host = m_settings.path_style ? m_host : m_settings.bucket + "." + m_host;
    s3::RequestToSign request;
    request.method = call.method;
    request.host = host;
    request.path = s3::uri_encode_path(path);
    request.query = call.query;
    request.headers = call.headers;
    request.payload_sha256 = sha256_hex(call.body);
    request.amz_date = s3::amz_date(now_unix_us());
    request.region = m_settings.region;
    const s3::SignedRequest signed_request = s3::sign(request, m_credentials.current());
    s3::HttpRequest http;
    http.method = call.method;
    http.url = m_scheme + "://" + host + request.path + (call.query.empty() ? "" : "?" + s3::canonical_query(call.query));
    http.headers = call.headers;
    for (const auto& header : signed_request.headers) http.headers.push_back(header);
    http.headers.emplace_back("Authorization", signed_request.authorization);
    http.body = call.body;
    auto lease = m_pool.acquire();
    return lease->perform(http, what);
  }

  // The failure an unexpected status means, with S3's own code and message when it gave one.
  Failure status_failure(const HttpResponse& response, const std::string& what) const {
    const auto [code, message] = s3::parse_error_body(text_of(response.body));
    Failure failure{ErrorKind::io, "unable to " + what + ": " + describe() + " answered HTTP " + std::to_string(response.status) +
                                       (code.empty() ? "" : " " + code) + (message.empty() ? "" : " (" + message + ")")};
    const long s = response.status;
    failure.transient = s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || code == "RequestTimeout" || code == "SlowDown";
    if (s == 403) failure.message += "; check the credentials and the bucket policy";
    if (s == 412) failure.kind = ErrorKind::conflict;
    return failure;
  }

  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override {
    const std::string what = "store '" + key + "'";
    if (mode == PutMode::create_only) {
      // Servers that ignore If-None-Match would overwrite: ask first, and let the condition
      // close the window where the server honours it.
      auto there = info(key);
      if (!there) return std::unexpected(there.error());
      if (*there) return fail(ErrorKind::conflict, "unable to " + what + ": it already exists in " + describe());
    }
    const auto md5 = md5_of(data);
    Call call{"PUT", key, false, {}, {{"Content-MD5", base64(md5)}}, data};
    if (creates_only(mode)) call.headers.emplace_back("If-None-Match", "*");
    if (!m_settings.storage_class.empty()) call.headers.emplace_back("x-amz-storage-class", m_settings.storage_class);
    auto response = send(call, what);
    if (!response) return std::unexpected(response.error());
    if (creates_only(mode) && (response->status == 412 || response->status == 403)) {
      // The condition failed (some servers answer 403 to it): someone stored it meanwhile.
      auto there = info(key);
      if (there && *there) return fail(ErrorKind::conflict, "unable to " + what + ": it already exists in " + describe());
    }
    // 200 means the server checked Content-MD5 against what it received (a mismatch is 400
    // BadDigest). The ETag is not compared: with SSE-KMS or SSE-C it is not the MD5.
    if (response->status != 200) return std::unexpected(status_failure(*response, what));
    return {};
  }

  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override {
    const std::string what = "read '" + key + "'";
    if (max_bytes && *max_bytes == 0) {
      auto there = info(key);
      if (!there) return std::unexpected(there.error());
      if (!*there) return std::optional<std::vector<std::byte>>();
      return std::optional<std::vector<std::byte>>(std::vector<std::byte>());
    }
    Call call{"GET", key, false, {}, {}, {}};
    if (max_bytes) call.headers.emplace_back("Range", "bytes=0-" + std::to_string(*max_bytes - 1));
    auto response = send(call, what);
    if (!response) return std::unexpected(response.error());
    if (response->status == 404 && xml_first(text_of(response->body), "Code") != "NoSuchBucket")
      return std::optional<std::vector<std::byte>>();
    if (response->status == 416) return std::optional<std::vector<std::byte>>(std::vector<std::byte>());  // an empty object
    if (response->status != 200 && response->status != 206) return std::unexpected(status_failure(*response, what));
    return std::optional<std::vector<std::byte>>(std::move(response->body));
  }

  Result<bool> exists(const std::string& key) override {
    auto there = info(key);
    if (!there) return std::unexpected(there.error());
    return there->has_value();
  }

  Result<std::optional<ObjectInfo>> info(const std::string& key) override {
    auto head = head_object(key);
    if (!head) return std::unexpected(head.error());
    if (!*head) return std::optional<ObjectInfo>();
    return std::optional<ObjectInfo>(ObjectInfo{key, (*head)->size, (*head)->modified_us});
  }

  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override {
    return std::unique_ptr<ObjectWriter>(std::make_unique<S3Writer>(*this, key, mode));
  }

  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override {
    auto head = head_object(key);
    if (!head) return std::unexpected(head.error());
    if (!*head) return std::optional<std::unique_ptr<ObjectReader>>();
    return std::optional<std::unique_ptr<ObjectReader>>(std::make_unique<S3Reader>(*this, key, (*head)->size, (*head)->etag));
  }

  Result<void> remove(const std::string& key) override { return remove_or_abort(key, "", "remove '" + key + "'"); }

  // DELETE of an object, or with `upload_id` an AbortMultipartUpload; already gone is done.
  Result<void> remove_or_abort(const std::string& key, const std::string& upload_id, const std::string& what) {
    Call call{"DELETE", key, false, {}, {}, {}};
    if (!upload_id.empty()) call.query.emplace_back("uploadId", upload_id);
    auto response = send(call, what);
    if (!response) return std::unexpected(response.error());
    if (response->status != 204 && response->status != 200 && response->status != 404)
      return std::unexpected(status_failure(*response, what));
    return {};
  }

  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override {
    if (!prefix.empty() && !is_valid_storage_key(prefix)) return fail(ErrorKind::invalid, "invalid storage prefix '" + prefix + "'");
    const std::string base = m_settings.prefix.empty() ? "" : m_settings.prefix + "/";
    const std::string wanted = base + (prefix.empty() ? "" : prefix + "/");
    std::vector<ObjectInfo> objects;
    std::string token;
    std::set<std::string> tokens_seen;  // a server that hands a token back twice would loop forever
    for (;;) {
      Call call{"GET", "", true, {{"list-type", "2"}, {"prefix", wanted}, {"max-keys", "1000"}}, {}, {}};
      if (!token.empty()) call.query.emplace_back("continuation-token", token);
      const std::string what = "list '" + wanted + "'";
      auto response = send(call, what);
      if (!response) return std::unexpected(response.error());
      if (response->status != 200) return std::unexpected(status_failure(*response, what));
      auto page = s3::parse_object_list(text_of(response->body), "unable to " + what + " on " + describe());
      if (!page) return std::unexpected(page.error());
      for (auto& listed : page->objects) {
        if (!listed.key.starts_with(base)) continue;
        objects.push_back(ObjectInfo{listed.key.substr(base.size()), listed.size, listed.modified_us});
      }
      if (!page->truncated) break;
      token = std::move(page->continuation_token);
      if (!tokens_seen.insert(token).second)
        return fail(ErrorKind::io, "unable to " + what + ": " + describe() + " returned the same continuation token twice");
    }
    std::sort(objects.begin(), objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return objects;
  }

  // A range of a stored object; `etag` pins it to the version that was opened.
  Result<std::vector<std::byte>> read_range(const std::string& key, std::uint64_t offset, std::size_t length,
                                            const std::string& etag) {
    const std::string what = "read '" + key + "' at " + std::to_string(offset);
    Call call{"GET", key, false, {}, {{"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)}}, {}};
    if (!etag.empty()) call.headers.emplace_back("If-Match", etag);
    auto response = send(call, what);
    if (!response) return std::unexpected(response.error());
    if (response->status == 412 || response->status == 404)
      return fail(ErrorKind::io, "unable to " + what + ": it was replaced or removed while it was read");
    if (response->status != 206 && response->status != 200) return std::unexpected(status_failure(*response, what));
    if (response->body.size() != length)
      return fail(ErrorKind::io, "unable to " + what + ": " + std::to_string(response->body.size()) + " bytes came, not " +
                                     std::to_string(length));
    return std::move(response->body);
  }

  std::size_t part_size() const { return std::max<std::size_t>(m_settings.part_size, 5u << 20); }

  // Multipart uploads a killed walvaultd left open below the prefix: never visible as objects,
  // but they cost storage until aborted. Called at start-up, when no upload of this daemon is
  // in progress; another walvaultd on the same prefix (a standby's sidecar) may have one, so
  // only uploads older than abandoned_upload_age are taken as abandoned.
  Result<Removed> remove_abandoned_writes() override {
    const std::string wanted = m_settings.prefix.empty() ? "" : m_settings.prefix + "/";
    Removed removed;
    std::string key_marker, upload_marker;
    std::set<std::pair<std::string, std::string>> markers_seen;  // a server that cycles would loop forever
    for (;;) {
      Call call{"GET", "", true, {{"uploads", ""}, {"prefix", wanted}}, {}, {}};
      if (!key_marker.empty()) call.query.emplace_back("key-marker", key_marker);
      if (!upload_marker.empty()) call.query.emplace_back("upload-id-marker", upload_marker);
      const std::string what = "list the open uploads below '" + wanted + "'";
      auto response = send(call, what);
      if (!response) return std::unexpected(response.error());
      if (response->status != 200) return std::unexpected(status_failure(*response, what));
      const s3::UploadListPage page = s3::parse_upload_list(text_of(response->body));
      for (const auto& upload : page.uploads) {
        if (!upload.key.starts_with(wanted)) continue;
        if (!upload_is_abandoned(upload.initiated, now_unix_us(), m_settings.abandoned_upload_age)) continue;
        const std::string relative = upload.key.substr(wanted.size());
        if (auto r = remove_or_abort(relative, upload.upload_id, "abort the abandoned upload of '" + relative + "'"); !r)
          return std::unexpected(r.error());
        ++removed.objects;
      }
      if (!page.truncated) break;
      if (!markers_seen.emplace(page.next_key_marker, page.next_upload_id_marker).second) break;  // no progress
      key_marker = page.next_key_marker;
      upload_marker = page.next_upload_id_marker;
      if (key_marker.empty() && upload_marker.empty()) break;
    }
    return removed;
  }

 private:
  struct Head {
    std::uint64_t size = 0;
    std::int64_t modified_us = 0;
    std::string etag;
  };
  Result<std::optional<Head>> head_object(const std::string& key) {
    const std::string what = "look up '" + key + "'";
    auto response = send(Call{"HEAD", key, false, {}, {}, {}}, what);
    if (!response) return std::unexpected(response.error());
    if (response->status == 404) return std::optional<Head>();
    if (response->status != 200) return std::unexpected(status_failure(*response, what));
    Head head;
    head.size = std::strtoull(response->header("content-length").c_str(), nullptr, 10);
    head.modified_us = parse_time_us(response->header("last-modified"));
    head.etag = response->header("etag");
    return std::optional<Head>(head);
  }

  S3Settings m_settings;
  s3::CredentialSource m_credentials;
  s3::HttpPool m_pool;
  std::string m_scheme;
  std::string m_host;
};

S3Writer::~S3Writer() {
  if (m_upload_id.empty() || m_committed) return;
  // Abandoned: nothing becomes visible, and the parts stop costing storage.
  (void)m_storage.remove_or_abort(m_key, m_upload_id, "abort the upload of '" + m_key + "'");
}

Result<void> S3Writer::append(std::span<const std::byte> data) {
  if (m_committed) return fail(ErrorKind::internal, "append to committed object '" + m_key + "'");
  m_buffer.insert(m_buffer.end(), data.begin(), data.end());
  const std::size_t part = m_storage.part_size();
  while (m_buffer.size() >= part) {
    if (auto r = upload_part(std::span<const std::byte>(m_buffer).first(part)); !r) return r;
    m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(part));
  }
  return {};
}

Result<void> S3Writer::upload_part(std::span<const std::byte> part) {
  if (m_upload_id.empty()) {
    const std::string what = "start the upload of '" + m_key + "'";
    S3Storage::Call call{"POST", m_key, false, {{"uploads", ""}}, {}, {}};
    if (!m_storage.settings().storage_class.empty()) call.headers.emplace_back("x-amz-storage-class", m_storage.settings().storage_class);
    auto response = m_storage.send(call, what);
    if (!response) return std::unexpected(response.error());
    if (response->status != 200) return std::unexpected(m_storage.status_failure(*response, what));
    m_upload_id = xml_first(text_of(response->body), "UploadId");
    if (m_upload_id.empty()) return fail(ErrorKind::io, "unable to " + what + ": no UploadId in the answer");
  }
  const std::string number = std::to_string(m_etags.size() + 1);
  const std::string what = "upload part " + number + " of '" + m_key + "'";
  const auto md5 = md5_of(part);
  auto response = m_storage.send(
      S3Storage::Call{"PUT", m_key, false, {{"partNumber", number}, {"uploadId", m_upload_id}}, {{"Content-MD5", base64(md5)}}, part},
      what);
  if (!response) return std::unexpected(response.error());
  if (response->status != 200) return std::unexpected(m_storage.status_failure(*response, what));
  // As for a whole PUT, Content-MD5 was checked by the server; the ETag only names the part
  // for CompleteMultipartUpload.
  const std::string etag = response->header("etag");
  if (etag.empty()) return fail(ErrorKind::io, "unable to " + what + ": the server answered no ETag for the part");
  m_etags.push_back(etag);
  return {};
}

Result<void> S3Writer::commit() {
  if (m_committed) return fail(ErrorKind::internal, "object '" + m_key + "' committed twice");
  if (m_upload_id.empty()) {
    // Smaller than one part: a single PUT.
    if (auto r = m_storage.put(m_key, m_buffer, m_mode); !r) return r;
    m_committed = true;
    return {};
  }
  if (!m_buffer.empty())
    if (auto r = upload_part(m_buffer); !r) return r;
  const std::string what = "complete the upload of '" + m_key + "'";
  if (creates_only(m_mode)) {  // CompleteMultipartUpload takes no condition everywhere
    auto there = m_storage.exists(m_key);
    if (!there) return std::unexpected(there.error());
    if (*there) return fail(ErrorKind::conflict, "unable to " + what + ": it already exists in " + m_storage.describe());
  }
  std::string xml = "<CompleteMultipartUpload>";
  for (std::size_t i = 0; i < m_etags.size(); ++i)
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + m_etags[i] + "</ETag></Part>";
  xml += "</CompleteMultipartUpload>";
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(xml.data()), xml.size());
  auto response = m_storage.send(S3Storage::Call{"POST", m_key, false, {{"uploadId", m_upload_id}}, {}, body}, what);
  if (!response) return std::unexpected(response.error());
  // S3 may answer 200 and report the failure in the body.
  if (response->status != 200 || text_of(response->body).find("<Error>") != std::string_view::npos)
    return std::unexpected(m_storage.status_failure(*response, what));
  m_committed = true;
  return {};
}

Result<void> S3Reader::fill_window(std::uint64_t offset, std::size_t n) {
  const std::size_t ahead = m_size <= k_whole_object ? k_whole_object : k_read_ahead;
  if (m_size <= k_whole_object) offset = 0;  // all of it, whatever part is asked first
  const std::size_t length = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, ahead), m_size - offset));
  auto piece = m_storage.read_range(m_key, offset, length, m_etag);
  if (!piece) return std::unexpected(piece.error());
  m_window = std::move(*piece);
  m_window_start = offset;
  return {};
}

Result<std::size_t> S3Reader::read(std::span<std::byte> out) {
  if (m_position >= m_size || out.empty()) return 0;
  if (!in_window(m_position, 1))
    if (auto r = fill_window(m_position, out.size()); !r) return std::unexpected(r.error());
  const std::size_t from = static_cast<std::size_t>(m_position - m_window_start);
  const std::size_t n = std::min(out.size(), m_window.size() - from);
  std::memcpy(out.data(), m_window.data() + from, n);
  m_position += n;
  return n;
}

Result<void> S3Reader::read_at(std::uint64_t offset, std::span<std::byte> out) {
  if (out.empty()) return {};
  if (offset > m_size || out.size() > m_size - offset)
    return fail(ErrorKind::corrupt, "stored object '" + m_key + "' is shorter than " + std::to_string(offset + out.size()) + " bytes");
  if (!in_window(offset, out.size())) {
    if (m_size > k_whole_object) {  // a piece of a large object: fetch just that
      auto piece = m_storage.read_range(m_key, offset, out.size(), m_etag);
      if (!piece) return std::unexpected(piece.error());
      std::memcpy(out.data(), piece->data(), out.size());
      return {};
    }
    if (auto r = fill_window(offset, out.size()); !r) return r;
  }
  std::memcpy(out.data(), m_window.data() + (offset - m_window_start), out.size());
  return {};
}

}  // namespace

bool upload_is_abandoned(const std::string& initiated, std::int64_t now_us, std::chrono::seconds age) {
  const std::int64_t started = parse_time_us(initiated);
  return started != 0 && std::chrono::microseconds(now_us - started) >= age;
}

Result<std::unique_ptr<Storage>> open_s3_storage(S3Settings settings) {
  if (settings.bucket.empty()) return fail(ErrorKind::invalid, "an S3 repository needs a bucket (s3://bucket/prefix)");
  if (settings.endpoint.find("://") == std::string::npos) settings.endpoint = "https://" + settings.endpoint;
  if (!settings.endpoint.starts_with("https://") && !settings.endpoint.starts_with("http://"))
    return fail(ErrorKind::invalid, "s3-endpoint '" + settings.endpoint + "' is neither https:// nor http://");
  while (!settings.prefix.empty() && settings.prefix.back() == '/') settings.prefix.pop_back();
  if (!settings.prefix.empty() && !is_valid_storage_key(settings.prefix))
    return fail(ErrorKind::invalid, "invalid S3 prefix '" + settings.prefix + "'");
  if (!settings.credentials_file.empty()) {
    auto source = s3::CredentialSource::from_file(settings.credentials_file);
    if (!source) return std::unexpected(source.error());
    return std::unique_ptr<Storage>(std::make_unique<S3Storage>(std::move(settings), std::move(*source)));
  }
  if (settings.credentials.key_id.empty() || settings.credentials.secret.empty())
    return fail(ErrorKind::invalid, "no S3 credentials: set s3-key and s3-key-secret, s3-credentials-file, or AWS_ACCESS_KEY_ID and "
                                    "AWS_SECRET_ACCESS_KEY");
  s3::CredentialSource fixed(settings.credentials);
  return std::unique_ptr<Storage>(std::make_unique<S3Storage>(std::move(settings), std::move(fixed)));
}

}  // namespace walvault
