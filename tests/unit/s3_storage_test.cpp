// The S3 backend against a real S3-protocol server: moto_server on 127.0.0.1, started by the
// suite with signature checking on (INITIAL_NO_AUTH_ACTION_COUNT: after tests/s3/moto_bootstrap.py
// made an IAM user, its key and the bucket, every request must carry a valid SigV4 signature).
// Listing is tested on a second moto_server without that check: moto 5.2.1 computes the wrong
// signature for a ListObjectsV2 whose prefix holds a '/', and refuses boto3's own request alike
// (walvault's signer matches botocore's on such a request: tests/unit/sigv4_test.cpp).
#include "common/core/storage/s3/s3_storage.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/core/object_store.hpp"
#include "common/core/repository.hpp"
#include "common/core/sha256.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using namespace std::chrono_literals;

std::int64_t now_unix_us_for_test() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool port_answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// One moto_server for the suite, stopped at its end (only the process it started).
class MotoServer {
 public:
  bool start(bool check_signatures) {
    m_port = free_loopback_port();
    m_pid = ::fork();
    if (m_pid == 0) {
      if (check_signatures) ::setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4", 1);
      const std::string port = std::to_string(m_port);
      const std::string log = "/tmp/walvault-moto." + port + ".log";
      std::freopen(log.c_str(), "w", stdout);
      std::freopen(log.c_str(), "a", stderr);
      ::execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_problem = "moto_server exited at once (is it installed? moto 5 with its server extra)";
        m_pid = 0;
        return false;
      }
      if (port_answers(m_port)) break;
      std::this_thread::sleep_for(50ms);
    }
    auto keys = test::run_command("python3 " + std::string(WALVAULT_SOURCE_DIR) + "/tests/s3/moto_bootstrap.py " + endpoint() +
                                  " walvault 2>&1");
    if (!keys) {
      m_problem = "tests/s3/moto_bootstrap.py failed (boto3 missing?)";
      return false;
    }
    std::istringstream lines(*keys);
    std::getline(lines, m_credentials.key_id);
    std::getline(lines, m_credentials.secret);
    return !m_credentials.key_id.empty() && !m_credentials.secret.empty();
  }
  void stop() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    ::waitpid(m_pid, nullptr, 0);
    m_pid = 0;
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_port); }
  std::string log_path() const { return "/tmp/walvault-moto." + std::to_string(m_port) + ".log"; }
  const s3::Credentials& credentials() const { return m_credentials; }
  const std::string& problem() const { return m_problem; }

 private:
  pid_t m_pid = 0;
  int m_port = 0;
  s3::Credentials m_credentials;
  std::string m_problem;
};

MotoServer* g_moto = nullptr;       // checks every signature
MotoServer* g_moto_lists = nullptr;  // does not (listing; see the top)

class S3StorageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_moto = new MotoServer;
    if (!g_moto->start(true)) ADD_FAILURE() << g_moto->problem();
    g_moto_lists = new MotoServer;
    if (!g_moto_lists->start(false)) ADD_FAILURE() << g_moto_lists->problem();
  }
  static void TearDownTestSuite() {
    for (MotoServer** server : {&g_moto, &g_moto_lists}) {
      (*server)->stop();
      delete *server;
      *server = nullptr;
    }
  }

  // A repository below a prefix of its own per test, so tests never see each other's keys.
  S3Settings settings(const MotoServer* server = g_moto) const {
    S3Settings s;
    s.bucket = "walvault";
    s.prefix = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    s.endpoint = server->endpoint();
    s.path_style = true;
    s.credentials = server->credentials();
    s.part_size = 5u << 20;
    return s;
  }
  std::unique_ptr<Storage> open(S3Settings s) {
    auto storage = open_s3_storage(std::move(s));
    EXPECT_TRUE(storage) << storage.error().message;
    return storage ? std::move(*storage) : nullptr;
  }
  std::unique_ptr<Storage> open(const MotoServer* server = g_moto) { return open(settings(server)); }
};

// Multipart uploads still open below `prefix` (ListMultipartUploads, signed as the backend signs).
std::size_t open_uploads(const MotoServer& server, const std::string& prefix) {
  s3::RequestToSign request;
  request.method = "GET";
  request.host = server.endpoint().substr(std::string("http://").size());
  request.path = "/walvault";
  request.query = {{"uploads", ""}, {"prefix", prefix}};
  request.payload_sha256 = to_hex(sha256({}));
  request.amz_date = s3::amz_date(now_unix_us_for_test());
  request.region = "us-east-1";
  const s3::SignedRequest signed_request = s3::sign(request, server.credentials());
  s3::HttpRequest http{"GET", server.endpoint() + "/walvault?" + s3::canonical_query(request.query), signed_request.headers, {}};
  http.headers.emplace_back("Authorization", signed_request.authorization);
  s3::HttpClient client{s3::HttpOptions{}};
  auto response = client.perform(http, "list uploads");
  EXPECT_TRUE(response && response->status == 200);
  if (!response) return 0;
  const std::string body(reinterpret_cast<const char*>(response->body.data()), response->body.size());
  std::size_t count = 0;
  for (std::size_t at = body.find("<Upload>"); at != std::string::npos; at = body.find("<Upload>", at + 1)) ++count;
  return count;
}

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

TEST_F(S3StorageTest, StoresReadsListsAndRemovesObjects) {
  auto storage = open(g_moto_lists);
  ASSERT_TRUE(storage);
  const auto content = test::bytes_of("1\t0/3000158\tno recovery target specified\n");
  ASSERT_TRUE(storage->put("wal/00000002.history", content, PutMode::create_only));
  auto got = storage->get("wal/00000002.history");
  ASSERT_TRUE(got && *got) << (got ? "absent" : got.error().message);
  EXPECT_EQ(**got, content);
  auto head = storage->get("wal/00000002.history", 5);
  ASSERT_TRUE(head && *head);
  EXPECT_EQ((*head)->size(), 5u);
  auto info = storage->info("wal/00000002.history");
  ASSERT_TRUE(info && *info);
  EXPECT_EQ((*info)->size, content.size());
  EXPECT_GT((*info)->modified_us, 0);

  // Absence is a value, never an error.
  auto missing = storage->get("wal/00000003.history");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(*missing);
  auto exists = storage->exists("wal/00000003.history");
  ASSERT_TRUE(exists);
  EXPECT_FALSE(*exists);

  // create_only never overwrites; replace does.
  const auto other = test::bytes_of("2\t0/4000000\tother\n");
  auto again = storage->put("wal/00000002.history", other, PutMode::create_only);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::conflict) << again.error().message;
  EXPECT_EQ(**storage->get("wal/00000002.history"), content);
  ASSERT_TRUE(storage->put("wal/00000002.history", other, PutMode::replace));
  EXPECT_EQ(**storage->get("wal/00000002.history"), other);

  ASSERT_TRUE(storage->put("backup/b1/backup.json", test::bytes_of("{}"), PutMode::create_only));
  auto listed = storage->list("");
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(*listed, (std::vector<std::string>{"backup/b1/backup.json", "wal/00000002.history"})) << "keys relative to the prefix";
  auto wal = storage->list("wal");
  ASSERT_TRUE(wal);
  EXPECT_EQ(*wal, (std::vector<std::string>{"wal/00000002.history"}));

  ASSERT_TRUE(storage->remove("wal/00000002.history"));
  ASSERT_TRUE(storage->remove("wal/00000002.history")) << "removing a missing key succeeds";
  EXPECT_FALSE(*storage->exists("wal/00000002.history"));
}

TEST_F(S3StorageTest, StreamsLargeObjectsAsMultipartUploadsAndReadsThemInRanges) {
  auto storage = open();
  ASSERT_TRUE(storage);
  const auto content = pattern((12u << 20) + 12345, 7);  // three parts of 5 MiB, the last short
  {
    auto writer = storage->create("backup/b1/chunk-00001.tar", PutMode::create_only);
    ASSERT_TRUE(writer);
    for (std::size_t at = 0; at < content.size(); at += 1u << 20) {
      const std::size_t n = std::min<std::size_t>(1u << 20, content.size() - at);
      ASSERT_TRUE((*writer)->append(std::span<const std::byte>(content).subspan(at, n)));
    }
    EXPECT_FALSE(*storage->exists("backup/b1/chunk-00001.tar")) << "nothing is visible before commit";
    ASSERT_TRUE((*writer)->commit());
  }
  auto reader = storage->open_read("backup/b1/chunk-00001.tar");
  ASSERT_TRUE(reader && *reader);
  ObjectReader& r = ***reader;
  ASSERT_EQ(r.size(), content.size());
  std::vector<std::byte> tail(56);
  ASSERT_TRUE(r.read_at(content.size() - tail.size(), tail));
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), content.end() - static_cast<std::ptrdiff_t>(tail.size())));
  std::vector<std::byte> back;
  std::vector<std::byte> piece(3u << 20);
  // Small reads first (as the object layer reads a head), then large ones: the read-ahead
  // buffer must hand out every byte once, in order.
  for (std::size_t want : {std::size_t{12}, std::size_t{36}, std::size_t{1000}, piece.size()}) {
    for (;;) {
      auto n = r.read(std::span<std::byte>(piece).first(want));
      ASSERT_TRUE(n) << n.error().message;
      back.insert(back.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(*n));
      if (*n == 0 || want != piece.size()) break;
    }
  }
  EXPECT_TRUE(back == content);

  // A second create-only upload of the same key is refused at completion.
  auto second = storage->create("backup/b1/chunk-00001.tar", PutMode::create_only);
  ASSERT_TRUE(second);
  ASSERT_TRUE((*second)->append(content));
  auto refused = (*second)->commit();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::conflict) << refused.error().message;
}

// Requests of `method` the server logged for `key` (below this test's prefix).
std::size_t requests_logged(const MotoServer& server, const std::string& method, const std::string& key) {
  std::this_thread::sleep_for(200ms);  // moto writes its log line after answering
  std::ifstream log(server.log_path());
  const std::string wanted = "\"" + method + " /walvault/" +
                             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "/" + key + " ";
  std::size_t count = 0;
  for (std::string line; std::getline(log, line);)
    if (line.find(wanted) != std::string::npos) ++count;
  return count;
}

TEST_F(S3StorageTest, ACreateAfterALookupSkipsTheHeadAndStillNeverOverwrites) {
  auto storage = open();
  ASSERT_TRUE(storage);
  const std::string key = "wal/0000000100000000/000000010000000000000002";
  ASSERT_TRUE(storage->put(key, test::bytes_of("first"), PutMode::create_after_lookup));
  EXPECT_EQ(requests_logged(*g_moto, "HEAD", key), 0u) << "no HEAD before the conditional PUT";
  auto again = storage->put(key, test::bytes_of("second"), PutMode::create_after_lookup);
  ASSERT_FALSE(again) << "If-None-Match: * refused the second PUT";
  EXPECT_EQ(again.error().kind, ErrorKind::conflict) << again.error().message;
  auto read = storage->get(key);
  ASSERT_TRUE(read && *read);
  EXPECT_EQ(**read, test::bytes_of("first"));
  ASSERT_TRUE(storage->put("wal/00000002.history", test::bytes_of("x"), PutMode::create_only));
  EXPECT_EQ(requests_logged(*g_moto, "HEAD", "wal/00000002.history"), 1u) << "create_only still asks first";
}

TEST_F(S3StorageTest, ASegmentSizedObjectIsReadInOneGetAndALargeOneInPieces) {
  auto storage = open();
  ASSERT_TRUE(storage);
  struct Case {
    std::string key;
    std::size_t size;
    std::size_t gets;
  };
  // Up to 24 MiB (a 16 MiB segment even stored uncompressed): one GET serves the trailer read
  // and every read after it. A 40 MiB base-backup chunk: 8 MiB pieces, the trailer on its own.
  for (const Case& c : {Case{"wal/0000000100000000/000000010000000000000001", (3u << 20) + 7, 1},
                        Case{"backup/b1/chunk-00001.tar", 40u << 20, 6}}) {
    const auto content = pattern(c.size, 11);
    ASSERT_TRUE(storage->put(c.key, content, PutMode::create_only));
    auto reader = storage->open_read(c.key);
    ASSERT_TRUE(reader && *reader);
    ObjectReader& r = ***reader;
    std::vector<std::byte> tail(56);
    ASSERT_TRUE(r.read_at(content.size() - tail.size(), tail));  // as the object layer reads a trailer first
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), content.end() - 56));
    std::vector<std::byte> back, piece(64u << 10);
    for (;;) {
      auto n = r.read(piece);
      ASSERT_TRUE(n) << n.error().message;
      if (*n == 0) break;
      back.insert(back.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    EXPECT_TRUE(back == content) << c.key;
    EXPECT_EQ(requests_logged(*g_moto, "GET", c.key), c.gets) << c.key << ": GET requests in " << g_moto->log_path();
  }
}

TEST_F(S3StorageTest, AnAbandonedUploadLeavesNothingVisible) {
  auto storage = open();
  ASSERT_TRUE(storage);
  {
    auto writer = storage->create("backup/b2/chunk-00001.tar", PutMode::create_only);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(pattern(6u << 20, 3)));  // one part uploaded
  }  // destroyed uncommitted: the upload is aborted
  EXPECT_FALSE(*storage->exists("backup/b2/chunk-00001.tar"));
  auto lists = open(g_moto_lists);
  {
    auto writer = lists->create("backup/b2/chunk-00001.tar", PutMode::create_only);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->append(pattern(6u << 20, 3)));
  }
  auto listed = lists->list("backup");
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_TRUE(listed->empty());
  // (ListMultipartUploads with a '/' in its prefix: on the server without the signature check.)
  EXPECT_EQ(open_uploads(*g_moto_lists, "AnAbandonedUploadLeavesNothingVisible/"), 0u)
      << "the upload was aborted, not left to cost storage";
  {
    // Before the abort (or after a kill -9) the upload is open: the check can see one.
    auto writer = lists->create("backup/b3/chunk-00001.tar", PutMode::create_only);
    ASSERT_TRUE((*writer)->append(pattern(6u << 20, 4)));
    EXPECT_EQ(open_uploads(*g_moto_lists, "AnAbandonedUploadLeavesNothingVisible/"), 1u) << "the check sees an open upload";
  }
}

// A kill -9 mid-upload leaves it open; the start-up sweep (remove_abandoned_writes) aborts it.
TEST_F(S3StorageTest, TheStartUpSweepAbortsUploadsACrashLeftOpen) {
  S3Settings sweeping = settings(g_moto_lists);
  sweeping.abandoned_upload_age = std::chrono::seconds(60);  // 6 h by default
  auto storage = open(sweeping);
  ASSERT_TRUE(storage);
  // (moto answers the same Initiated time, in 2010, for every upload: the age rule is tested
  // on its own below, this test sees every upload as old.)
  // Opened as a killed walvaultd would leave them: CreateMultipartUpload and no abort.
  for (const char* key : {"backup/b1/chunk-00001.tar", "backup/b1/chunk-00002.tar"}) {
    s3::RequestToSign request;
    request.method = "POST";
    request.host = g_moto_lists->endpoint().substr(std::string("http://").size());
    request.path = "/walvault/TheStartUpSweepAbortsUploadsACrashLeftOpen/" + std::string(key);
    request.query = {{"uploads", ""}};
    request.payload_sha256 = to_hex(sha256({}));
    request.amz_date = s3::amz_date(now_unix_us_for_test());
    request.region = "us-east-1";
    const s3::SignedRequest signed_request = s3::sign(request, g_moto_lists->credentials());
    s3::HttpRequest http{"POST", g_moto_lists->endpoint() + request.path + "?uploads=", signed_request.headers, {}};
    http.headers.emplace_back("Authorization", signed_request.authorization);
    s3::HttpClient client{s3::HttpOptions{}};
    auto response = client.perform(http, "start an upload");
    ASSERT_TRUE(response && response->status == 200);
  }
  // Another repository's open upload in the same bucket is not ours to abort.
  S3Settings other = settings(g_moto_lists);
  other.prefix = "AnotherRepository";
  auto elsewhere = open(other);
  auto foreign = elsewhere->create("backup/b9/chunk-00001.tar", PutMode::create_only);
  ASSERT_TRUE((*foreign)->append(pattern(6u << 20, 5)));
  ASSERT_EQ(open_uploads(*g_moto_lists, "TheStartUpSweepAbortsUploadsACrashLeftOpen/"), 2u);
  auto swept = storage->remove_abandoned_writes();
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_EQ(swept->objects, 2u);
  EXPECT_EQ(open_uploads(*g_moto_lists, "TheStartUpSweepAbortsUploadsACrashLeftOpen/"), 0u);
  EXPECT_EQ(open_uploads(*g_moto_lists, "AnotherRepository/"), 1u) << "the other repository's upload stays";
}

TEST(S3Sweep, OnlyUploadsOlderThanTheAgeAreAbandoned) {
  const std::int64_t now = 1796315405LL * 1000000;  // 2026-12-03T16:30:05Z
  const auto six_hours = std::chrono::seconds(6 * 3600);
  EXPECT_TRUE(upload_is_abandoned("2026-12-03T10:30:05.000Z", now, six_hours));
  EXPECT_TRUE(upload_is_abandoned("2010-11-10T20:48:33.000Z", now, six_hours));
  EXPECT_FALSE(upload_is_abandoned("2026-12-03T10:30:06.000Z", now, six_hours)) << "another walvaultd's upload in progress";
  EXPECT_FALSE(upload_is_abandoned("2026-12-03T16:30:00.000Z", now, six_hours));
  EXPECT_FALSE(upload_is_abandoned("", now, six_hours)) << "no time: left alone";
  EXPECT_FALSE(upload_is_abandoned("yesterday", now, six_hours));
}

TEST_F(S3StorageTest, ListingPagesPastAThousandKeys) {
  auto storage = open(g_moto_lists);
  ASSERT_TRUE(storage);
  const std::size_t count = 1003;
  for (std::size_t i = 0; i < count; ++i) {
    char key[64];
    std::snprintf(key, sizeof key, "wal/0000000100000000/%024zX", i);
    ASSERT_TRUE(storage->put(key, test::bytes_of("x"), PutMode::replace)) << key;
  }
  ASSERT_TRUE(storage->put("outside", test::bytes_of("y"), PutMode::replace));
  auto listed = storage->list_objects("wal");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), count) << "every key, across pages of 1,000";
  EXPECT_TRUE(std::is_sorted(listed->begin(), listed->end(), [](const auto& a, const auto& b) { return a.key < b.key; }));
  EXPECT_EQ(listed->front().size, 1u);
}

TEST_F(S3StorageTest, TheObjectLayerWorksOverS3) {
  auto storage = open();
  ASSERT_TRUE(storage);
  auto repository = Repository::open(std::move(storage), /*allow_create=*/true);
  ASSERT_TRUE(repository) << repository.error().message;
  ObjectStore& objects = (*repository)->objects();
  const auto plain = pattern(3u << 20, 11);
  auto stored = objects.put("wal/0000000100000000/000000010000000000000001", plain, CompressSpec{}, PutMode::create_only);
  ASSERT_TRUE(stored) << stored.error().message;
  auto read = objects.read("wal/0000000100000000/000000010000000000000001");
  ASSERT_TRUE(read && *read) << (read ? "absent" : read.error().message);
  EXPECT_TRUE((*read)->plain == plain);
  auto header = objects.header("wal/0000000100000000/000000010000000000000001");
  ASSERT_TRUE(header && *header);
  EXPECT_EQ((*header)->plain_sha256, sha256(plain));
}

TEST_F(S3StorageTest, AWrongSecretIsRefusedAndNeverShown) {
  S3Settings s = settings();
  s.credentials.secret = "not-the-secret-" + s.credentials.secret.substr(0, 4);
  auto storage = open(s);
  ASSERT_TRUE(storage);
  auto put = storage->put("wal/00000002.history", test::bytes_of("x"), PutMode::replace);
  ASSERT_FALSE(put);
  EXPECT_FALSE(put.error().transient) << "a refusal is not retried";
  EXPECT_NE(put.error().message.find("HTTP 403"), std::string::npos) << put.error().message;
  EXPECT_NE(put.error().message.find("SignatureDoesNotMatch"), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find(s.credentials.secret), std::string::npos) << "the secret never appears";
  EXPECT_EQ(put.error().message.find(g_moto->credentials().secret), std::string::npos);
}

// moto_iam.py, signed with the suite's key: "new-key USER" prints a key id and a secret.
std::optional<std::string> moto_iam(const MotoServer& server, const std::string& arguments) {
  return test::run_command("AWS_ACCESS_KEY_ID=" + server.credentials().key_id + " AWS_SECRET_ACCESS_KEY=" +
                           server.credentials().secret + " python3 " + std::string(WALVAULT_SOURCE_DIR) + "/tests/s3/moto_iam.py " +
                           server.endpoint() + " " + arguments + " 2>&1");
}

std::pair<std::string, std::string> new_key(const MotoServer& server, const std::string& user) {
  auto output = moto_iam(server, "new-key " + user);
  EXPECT_TRUE(output) << "tests/s3/moto_iam.py new-key failed";
  std::istringstream lines(output.value_or(""));
  std::string id, secret;
  std::getline(lines, id);
  std::getline(lines, secret);
  return {id, secret};
}

TEST_F(S3StorageTest, ACredentialsFileRotatedUnderTheDaemonIsUsedFromTheNextRequest) {
  const auto [first_id, first_secret] = new_key(*g_moto, "rotation");
  const auto [second_id, second_secret] = new_key(*g_moto, "rotation");
  ASSERT_FALSE(first_id.empty());
  ASSERT_FALSE(second_id.empty());
  test::TempDir dir;
  const std::string path = dir / "s3.credentials";
  auto write = [&](const std::string& id, const std::string& secret) {
    test::write_text_file(path + ".new", "[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n");
    ASSERT_EQ(::chmod((path + ".new").c_str(), 0600), 0);
    ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  };
  write(first_id, first_secret);
  S3Settings s = settings();
  s.credentials = {};
  s.credentials_file = path;
  auto storage = open(s);
  ASSERT_TRUE(storage);
  auto first = storage->put("wal/00000002.history", test::bytes_of("signed with the first key"), PutMode::replace);
  ASSERT_TRUE(first) << first.error().message;

  // The rotation: the second key goes in the file, the first is revoked.
  write(second_id, second_secret);
  ASSERT_TRUE(moto_iam(*g_moto, "delete-key rotation " + first_id)) << "tests/s3/moto_iam.py delete-key failed";
  S3Settings stale = settings();
  stale.credentials = {first_id, first_secret, ""};
  auto revoked = open(stale)->put("wal/00000003.history", test::bytes_of("x"), PutMode::replace);
  ASSERT_FALSE(revoked) << "the store refuses the revoked key (so the next put proves the file was re-read)";
  EXPECT_NE(revoked.error().message.find("HTTP 403"), std::string::npos) << revoked.error().message;

  auto second = storage->put("wal/00000003.history", test::bytes_of("signed with the second key"), PutMode::replace);
  ASSERT_TRUE(second) << "the same storage, no restart: " << second.error().message;
  auto read = storage->get("wal/00000003.history");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ(**read, test::bytes_of("signed with the second key"));
}

TEST_F(S3StorageTest, AnEndpointThatIsDownIsATransientError) {
  S3Settings s = settings();
  s.endpoint = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  s.http.connect_timeout = 2000ms;
  auto storage = open(s);
  ASSERT_TRUE(storage);
  auto got = storage->get("wal/00000002.history");
  ASSERT_FALSE(got) << "an unreachable store is never \"not there\"";
  EXPECT_TRUE(got.error().transient);
  EXPECT_NE(got.error().message.find("unable to read 'wal/00000002.history'"), std::string::npos) << got.error().message;
}

TEST_F(S3StorageTest, RefusesSettingsItCannotUse) {
  S3Settings s = settings();
  s.credentials = {};
  auto no_key = open_s3_storage(s);
  ASSERT_FALSE(no_key);
  EXPECT_NE(no_key.error().message.find("no S3 credentials"), std::string::npos);
  s = settings();
  s.endpoint = "ftp://127.0.0.1:1";
  EXPECT_FALSE(open_s3_storage(s));
  s = settings();
  s.bucket.clear();
  EXPECT_FALSE(open_s3_storage(s));
}

}  // namespace
}  // namespace walvault
