// S3's XML answers: what a listing page, an upload listing and an error body yield, and the
// pages that must not pass for complete ones.
#include "common/core/storage/s3/s3_xml.hpp"

#include <gtest/gtest.h>

namespace walvault::s3 {
namespace {

TEST(S3Xml, ReadsAListingPageWithEntitiesAndTimes) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>"
      "<Contents><Key>wal/a&amp;b</Key><LastModified>2026-12-03T16:30:05.000Z</LastModified><Size>1234</Size></Contents>"
      "<Contents><Key>wal/c</Key><Size>0</Size></Contents>"
      "<NextContinuationToken>tok&lt;1&gt;</NextContinuationToken></ListBucketResult>";
  auto page = parse_object_list(xml, "list");
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "wal/a&b");
  EXPECT_EQ(page->objects[0].size, 1234u);
  EXPECT_EQ(page->objects[0].modified_us, 1796315405LL * 1000000);
  EXPECT_EQ(page->objects[1].key, "wal/c");
  EXPECT_EQ(page->objects[1].modified_us, 0);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->continuation_token, "tok<1>");
}

TEST(S3Xml, RefusesAListingItCannotReadWhole) {
  auto no_token = parse_object_list(
      "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>", "list 'wal/'");
  ASSERT_FALSE(no_token);
  EXPECT_EQ(no_token.error().kind, ErrorKind::corrupt);
  EXPECT_NE(no_token.error().message.find("no continuation token"), std::string::npos) << no_token.error().message;
  EXPECT_NE(no_token.error().message.find("list 'wal/'"), std::string::npos);

  for (const char* size : {"", "-1", "12x", "1e3", "99999999999999999999", "184467440737095516160"}) {
    auto bad = parse_object_list(std::string("<ListBucketResult><Contents><Key>k</Key><Size>") + size + "</Size></Contents></ListBucketResult>",
                                 "list");
    ASSERT_FALSE(bad) << "size '" << size << "'";
    EXPECT_NE(bad.error().message.find("'k'"), std::string::npos) << bad.error().message;
  }
  EXPECT_FALSE(parse_object_list("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", "list"))
      << "an entry without a key";
  auto biggest =
      parse_object_list("<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551615</Size></Contents></ListBucketResult>", "list");
  ASSERT_TRUE(biggest);
  EXPECT_EQ(biggest->objects[0].size, UINT64_MAX);
}

TEST(S3Xml, AnswerThatIsNotAWholeListingIsNoEmptyListing) {
  for (const char* body : {"", "<html><body>502 Bad Gateway</body></html>", "<ListBucketResult><Contents><Key>k</Key><Size>12",
                           "<Error><Code>InternalError</Code></Error>"}) {
    auto page = parse_object_list(body, "list 'wal/'");
    ASSERT_FALSE(page) << "'" << body << "' must not read as a complete listing";
    EXPECT_EQ(page.error().kind, ErrorKind::corrupt);
    EXPECT_NE(page.error().message.find("not a whole ListBucketResult"), std::string::npos) << page.error().message;
  }
  auto miscounted = parse_object_list("<ListBucketResult><KeyCount>2</KeyCount><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>",
                                      "list");
  ASSERT_FALSE(miscounted) << "KeyCount 2 with one entry: a page cut inside";
  EXPECT_NE(miscounted.error().message.find("KeyCount 2"), std::string::npos) << miscounted.error().message;
  auto empty = parse_object_list("<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>", "list");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->objects.empty());
}

TEST(S3Xml, TakesAnythingThatIsNotXmlWithoutHarm) {
  EXPECT_EQ(xml_first("<Code>a &amp bad &unknown; entity</Code>", "Code"), "a &amp bad &unknown; entity");
  EXPECT_EQ(xml_first("<Code></Code>", "Code"), "");
}

TEST(S3Xml, ReadsUploadListsAndErrorBodies) {
  const std::string xml =
      "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k2</NextKeyMarker>"
      "<NextUploadIdMarker>u2</NextUploadIdMarker>"
      "<Upload><Key>wal/k1</Key><UploadId>u1</UploadId><Initiated>2026-12-03T10:30:05.000Z</Initiated></Upload>"
      "<Upload><Key>wal/k2</Key><Initiated>2026-12-03T10:30:05.000Z</Initiated></Upload>"
      "</ListMultipartUploadsResult>";
  const UploadListPage page = parse_upload_list(xml);
  ASSERT_EQ(page.uploads.size(), 1u) << "an upload without an id cannot be aborted: left out";
  EXPECT_EQ(page.uploads[0].key, "wal/k1");
  EXPECT_EQ(page.uploads[0].upload_id, "u1");
  EXPECT_EQ(page.uploads[0].initiated, "2026-12-03T10:30:05.000Z");
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.next_key_marker, "k2");
  EXPECT_EQ(page.next_upload_id_marker, "u2");

  const ErrorBody error = parse_error_body("<Error><Code>SlowDown</Code><Message>Reduce your rate &amp; retry</Message></Error>");
  EXPECT_EQ(error.code, "SlowDown");
  EXPECT_EQ(error.message, "Reduce your rate & retry");
  EXPECT_EQ(parse_time_us("Thu, 03 Dec 2026 16:30:05 GMT"), 1796315405LL * 1000000);
  EXPECT_EQ(parse_time_us("yesterday"), 0);
}

}  // namespace
}  // namespace walvault::s3
