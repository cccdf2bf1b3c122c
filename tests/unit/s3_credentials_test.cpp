// s3-credentials-file: the AWS shared-credentials format, refused when others can read it,
// and re-read when it changes (a rotated Kubernetes secret) without losing the last good keys.
#include "common/core/storage/s3/credentials.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>

#include "tests/unit/test_support.hpp"

namespace walvault::s3 {
namespace {

// Replaces `path` the way a secret rotation does: a new file renamed over the old one.
void write_credentials(const std::string& path, const std::string& text, mode_t mode = 0600) {
  const std::string temp = path + ".new";
  test::write_text_file(temp, text);
  ASSERT_EQ(::chmod(temp.c_str(), mode), 0);
  ASSERT_EQ(std::rename(temp.c_str(), path.c_str()), 0);
}

TEST(S3CredentialsFile, ReadsTheDefaultSectionOfTheAwsFormat) {
  auto parsed = parse_credentials_file(
      "# rotated by the operator\n[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = other\n\n"
      "[default]\naws_access_key_id = AKIDDEFAULT\n  aws_secret_access_key=s3cr3t ; trailing comment\naws_session_token = tok\n",
      "/etc/walvault/s3");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->key_id, "AKIDDEFAULT");
  EXPECT_EQ(parsed->secret, "s3cr3t");
  EXPECT_EQ(parsed->session_token, "tok");

  auto only = parse_credentials_file("[walvault]\naws_access_key_id=A\naws_secret_access_key=B\n", "/f");
  ASSERT_TRUE(only) << "the only section is used";
  EXPECT_EQ(only->key_id, "A");
  auto bare = parse_credentials_file("aws_access_key_id=A\naws_secret_access_key=B\n", "/f");
  ASSERT_TRUE(bare) << "keys before any section are used";
  EXPECT_TRUE(bare->session_token.empty());
}

TEST(S3CredentialsFile, RefusesIncompleteOrAmbiguousFilesWithoutShowingTheSecret) {
  auto no_secret = parse_credentials_file("[default]\naws_access_key_id=A\n", "/etc/walvault/s3");
  ASSERT_FALSE(no_secret);
  EXPECT_NE(no_secret.error().message.find("'/etc/walvault/s3' lacks aws_access_key_id or aws_secret_access_key"), std::string::npos);
  auto ambiguous = parse_credentials_file("[a]\naws_access_key_id=A\naws_secret_access_key=hidden1\n[b]\naws_access_key_id=B\n"
                                          "aws_secret_access_key=hidden2\n", "/f");
  ASSERT_FALSE(ambiguous);
  EXPECT_NE(ambiguous.error().message.find("no [default]"), std::string::npos);
  auto garbage = parse_credentials_file("[default]\nthis line has the secret hidden3 but no equals sign\n", "/f");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("line 2: expected name = value"), std::string::npos) << garbage.error().message;
  for (const auto* error : {&ambiguous, &garbage})
    EXPECT_EQ((*error).error().message.find("hidden"), std::string::npos) << "no value is quoted back";
}

TEST(S3CredentialsFile, RefusesAFileOthersCanReadOrThatIsMissing) {
  test::TempDir dir;
  const std::string path = dir / "s3.credentials";
  auto missing = CredentialSource::from_file(path);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find(path), std::string::npos);
  write_credentials(path, "[default]\naws_access_key_id=A\naws_secret_access_key=B\n", 0644);
  auto readable = CredentialSource::from_file(path);
  ASSERT_FALSE(readable);
  EXPECT_NE(readable.error().message.find("readable by others (mode 644)"), std::string::npos) << readable.error().message;
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_TRUE(CredentialSource::from_file(path)) << "group-readable (a Kubernetes fsGroup mount) is allowed";
}

TEST(S3CredentialsFile, ARotatedFileIsReadOnTheNextRequestAndABrokenOneKeepsTheLastGoodKeys) {
  test::TempDir dir;
  const std::string path = dir / "s3.credentials";
  write_credentials(path, "[default]\naws_access_key_id=AKIDONE\naws_secret_access_key=one\n");
  auto source = CredentialSource::from_file(path);
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_EQ(source->current().key_id, "AKIDONE");

  write_credentials(path, "[default]\naws_access_key_id=AKIDTWO\naws_secret_access_key=two\naws_session_token=t2\n");
  const Credentials rotated = source->current();
  EXPECT_EQ(rotated.key_id, "AKIDTWO");
  EXPECT_EQ(rotated.secret, "two");
  EXPECT_EQ(rotated.session_token, "t2");

  write_credentials(path, "[default]\naws_access_key_id=AKIDHALF\n");  // caught half-written
  EXPECT_EQ(source->current().key_id, "AKIDTWO") << "an unusable file keeps the last good credentials";
  ASSERT_EQ(std::remove(path.c_str()), 0);
  EXPECT_EQ(source->current().key_id, "AKIDTWO") << "so does a file removed for a moment";
  write_credentials(path, "[default]\naws_access_key_id=AKIDTHREE\naws_secret_access_key=three\n");
  EXPECT_EQ(source->current().key_id, "AKIDTHREE");
  EXPECT_TRUE(source->current().session_token.empty()) << "a token from an earlier file does not linger";
}

TEST(S3CredentialsFile, FixedCredentialsStayAsGiven) {
  CredentialSource fixed(Credentials{"AKID", "secret", ""});
  EXPECT_EQ(fixed.current().key_id, "AKID");
  EXPECT_TRUE(fixed.path().empty());
}

}  // namespace
}  // namespace walvault::s3
