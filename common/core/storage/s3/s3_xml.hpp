#pragma once
// The parts of S3's XML answers walvault reads: object listings (ListObjectsV2), open multipart
// uploads (ListMultipartUploads) and error bodies. The answers are flat (one level of nesting
// below the root), so a tag scanner suffices; it never allocates more than the answer's size
// and takes any bytes (a proxy's HTML error page, a truncated body) without harm.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault::s3 {

// The text of every <tag>...</tag> in `xml`, raw (entities not decoded).
std::vector<std::string_view> xml_all(std::string_view xml, std::string_view tag);
// The first <tag>'s text with the five predefined entities decoded; "" when absent.
std::string xml_first(std::string_view xml, std::string_view tag);

// "Wed, 03 Dec 2026 16:30:05 GMT" (HTTP) or "2026-12-03T16:30:05.000Z" (ListObjectsV2), in
// microseconds since the epoch; 0 when neither.
std::int64_t parse_time_us(const std::string& text);

struct ListedObject {
  std::string key;  // the full key, prefix included
  std::uint64_t size = 0;
  std::int64_t modified_us = 0;
};
struct ObjectListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;           // more pages follow
  std::string continuation_token;   // for the next page; never empty when truncated
};
// One ListObjectsV2 page. An answer that is not a whole ListBucketResult (empty, HTML, cut
// short), an entry without a key or with a size that is not a whole number, a KeyCount that
// differs from the entries, or a truncated page without a continuation token is
// ErrorKind::corrupt naming `what`: a listing walvault cannot read whole must never pass for a
// complete one (a reindex would take every object for lost).
Result<ObjectListPage> parse_object_list(std::string_view xml, std::string_view what);

struct OpenUpload {
  std::string key;
  std::string upload_id;
  std::string initiated;  // as S3 wrote it
};
struct UploadListPage {
  std::vector<OpenUpload> uploads;  // entries without key or upload id are left out
  bool truncated = false;
  std::string next_key_marker, next_upload_id_marker;
};
UploadListPage parse_upload_list(std::string_view xml);

// <Error><Code>..</Code><Message>..</Message></Error>; empty fields when absent.
struct ErrorBody {
  std::string code, message;
};
ErrorBody parse_error_body(std::string_view xml);

}  // namespace walvault::s3
