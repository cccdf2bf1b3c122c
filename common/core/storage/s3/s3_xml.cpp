#include "common/core/storage/s3/s3_xml.hpp"

#include <ctime>
#include <utility>

namespace walvault::s3 {

namespace {

std::string xml_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    static constexpr std::pair<std::string_view, char> k_entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool matched = false;
    for (const auto& [entity, c] : k_entities)
      if (text.substr(i, entity.size()) == entity) {
        out += c;
        i += entity.size() - 1;
        matched = true;
        break;
      }
    if (!matched) out += '&';
  }
  return out;
}

bool parse_size(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

}  // namespace

std::vector<std::string_view> xml_all(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  for (std::size_t pos = xml.find(open); pos != std::string_view::npos; pos = xml.find(open, pos)) {
    const std::size_t start = pos + open.size();
    const std::size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

std::string xml_first(std::string_view xml, std::string_view tag) {
  auto all = xml_all(xml, tag);
  return all.empty() ? "" : xml_unescape(all.front());
}

std::int64_t parse_time_us(const std::string& text) {
  std::tm tm{};
  if (::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) || ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return static_cast<std::int64_t>(::timegm(&tm)) * 1000000;
  return 0;
}

Result<ObjectListPage> parse_object_list(std::string_view xml, std::string_view what) {
  // An empty body, a proxy's HTML page or an answer cut short must not read as "no objects".
  if (xml.find("<ListBucketResult") == std::string_view::npos || xml.find("</ListBucketResult>") == std::string_view::npos)
    return fail(ErrorKind::corrupt, std::string(what) + ": the answer is not a whole ListBucketResult (" +
                                        std::to_string(xml.size()) + " bytes)");
  ObjectListPage page;
  for (std::string_view item : xml_all(xml, "Contents")) {
    ListedObject object;
    object.key = xml_first(item, "Key");
    if (object.key.empty()) return fail(ErrorKind::corrupt, std::string(what) + ": the listing has an entry without a key");
    const std::string size = xml_first(item, "Size");
    if (!parse_size(size, object.size))
      return fail(ErrorKind::corrupt, std::string(what) + ": the listing gives '" + object.key + "' the size '" + size +
                                          "', not a whole number of bytes");
    object.modified_us = parse_time_us(xml_first(item, "LastModified"));
    page.objects.push_back(std::move(object));
  }
  // KeyCount (when given) counts the entries of this page: no delimiter, so no CommonPrefixes.
  if (const std::string count = xml_first(xml, "KeyCount"); !count.empty()) {
    std::uint64_t expected = 0;
    if (!parse_size(count, expected) || expected != page.objects.size())
      return fail(ErrorKind::corrupt, std::string(what) + ": the listing says KeyCount " + count + " but holds " +
                                          std::to_string(page.objects.size()) + " entries");
  }
  page.truncated = xml_first(xml, "IsTruncated") == "true";
  page.continuation_token = xml_first(xml, "NextContinuationToken");
  if (page.truncated && page.continuation_token.empty())
    return fail(ErrorKind::corrupt, std::string(what) + ": the listing says more keys follow but gives no continuation token");
  return page;
}

UploadListPage parse_upload_list(std::string_view xml) {
  UploadListPage page;
  for (std::string_view item : xml_all(xml, "Upload")) {
    OpenUpload upload{xml_first(item, "Key"), xml_first(item, "UploadId"), xml_first(item, "Initiated")};
    if (upload.key.empty() || upload.upload_id.empty()) continue;
    page.uploads.push_back(std::move(upload));
  }
  page.truncated = xml_first(xml, "IsTruncated") == "true";
  page.next_key_marker = xml_first(xml, "NextKeyMarker");
  page.next_upload_id_marker = xml_first(xml, "NextUploadIdMarker");
  return page;
}

ErrorBody parse_error_body(std::string_view xml) { return {xml_first(xml, "Code"), xml_first(xml, "Message")}; }

}  // namespace walvault::s3
