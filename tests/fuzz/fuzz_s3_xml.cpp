// Fuzz target: the S3 answers walvault parses (object listings, open upload listings, error
// bodies, times). Input: any bytes an S3-compatible server, a proxy or a broken link hands back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/core/storage/s3/s3_xml.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  if (auto page = walvault::s3::parse_object_list(xml, "fuzz listing")) {
    if (page->truncated && page->continuation_token.empty()) std::abort();  // would end a listing early
    for (const auto& object : page->objects)
      if (object.key.empty()) std::abort();
  }
  const auto uploads = walvault::s3::parse_upload_list(xml);
  for (const auto& upload : uploads.uploads)
    if (upload.key.empty() || upload.upload_id.empty()) std::abort();
  (void)walvault::s3::parse_error_body(xml);
  (void)walvault::s3::parse_time_us(std::string(xml.substr(0, 64)));
  return 0;
}
