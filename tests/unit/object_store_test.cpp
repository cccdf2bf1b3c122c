// The object layer: version 2 objects (head first, trailer last) round-trip through every
// way in and out; version 1 objects written by earlier walvault (kept as fixtures) stay
// readable; damage anywhere is ErrorKind::corrupt naming the object; absence is a value.
#include "common/core/object_store.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/memory_storage.hpp"

namespace walvault {
namespace {

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>(i % 5 ? rng() & 0xFF : i & 0x0F);
  return out;
}

std::vector<std::byte> fixture(const std::string& name) {
  std::ifstream in(std::string(WALVAULT_SOURCE_DIR) + "/tests/fixtures/objects/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  ObjectStoreTest() : m_shared(std::make_shared<test::MemoryStorage::Shared>()), m_objects(std::make_unique<test::MemoryStorage>(m_shared)) {}

  std::vector<std::byte>& raw(const std::string& key) { return m_shared->objects.at(key); }
  void put_raw(const std::string& key, std::vector<std::byte> bytes) { m_shared->objects[key] = std::move(bytes); }

  // The whole content through the stream, in odd-sized pieces; the failure if any.
  Result<std::vector<std::byte>> stream_all(const std::string& key, ReadChecks checks = {}) {
    auto stream = m_objects.open_listed(key, std::move(checks));
    if (!stream) return std::unexpected(stream.error());
    std::vector<std::byte> out, piece(7777);
    for (;;) {
      auto n = stream->read(piece);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return out;
      out.insert(out.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(*n));
    }
  }

  std::shared_ptr<test::MemoryStorage::Shared> m_shared;
  ObjectStore m_objects;
};

TEST_F(ObjectStoreTest, Version2RoundTripsWholeAndStreamed) {
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 3}}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{3} << 20}) {
      SCOPED_TRACE(to_string(spec) + " " + std::to_string(size));
      const auto plain = pattern(size, static_cast<std::uint32_t>(size));
      auto header = m_objects.put("wal/a/whole", plain, spec, PutMode::replace);
      ASSERT_TRUE(header) << header.error().message;
      EXPECT_EQ(header->version, k_object_format_v2);
      EXPECT_EQ(header->plain_sha256, sha256(plain));
      EXPECT_EQ(raw("wal/a/whole").size(), header->stored_size());

      auto put = m_objects.begin_put("backup/b/chunk", spec, PutMode::replace);
      ASSERT_TRUE(put) << put.error().message;
      for (std::size_t pos = 0; pos < plain.size(); pos += 300001)
        ASSERT_TRUE(put->append(std::span<const std::byte>(plain).subspan(pos, std::min<std::size_t>(300001, plain.size() - pos))));
      auto streamed = put->finish();
      ASSERT_TRUE(streamed) << streamed.error().message;
      EXPECT_EQ(streamed->plain_sha256, sha256(plain));
      EXPECT_EQ(raw("backup/b/chunk").size(), put->stored_size());

      for (const std::string key : {"wal/a/whole", "backup/b/chunk"}) {
        auto read = m_objects.read(key);
        ASSERT_TRUE(read && *read) << key;
        EXPECT_TRUE((*read)->plain == plain) << key;
        auto streamed_back = stream_all(key, ReadChecks::expecting(to_hex(sha256(plain))));
        ASSERT_TRUE(streamed_back) << streamed_back.error().message;
        EXPECT_TRUE(*streamed_back == plain) << key;
        auto head = m_objects.header(key);
        ASSERT_TRUE(head && *head) << key;
        EXPECT_EQ((*head)->plain_size, size);
        EXPECT_EQ((*head)->codec, spec.codec);
        EXPECT_EQ((*head)->plain_sha256, sha256(plain));
      }
    }
  }
}

// The head goes out first and holds nothing known only at the end, so a streamed upload never
// rewrites earlier bytes: size and digest are in the trailer, the last 56 bytes.
TEST_F(ObjectStoreTest, Version2LayoutIsHeadBodyTrailer) {
  const auto plain = pattern(100000, 9);
  ASSERT_TRUE(m_objects.put("wal/a/x", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  const auto& bytes = raw("wal/a/x");
  ASSERT_GT(bytes.size(), k_object_head_v2_size + k_object_trailer_size);
  EXPECT_EQ(std::memcmp(bytes.data(), "WVOBJ\r\n\x1a", 8), 0);
  EXPECT_EQ(std::to_integer<int>(bytes[8]), 2);  // version
  EXPECT_EQ(std::to_integer<int>(bytes[10]), 48);  // head size
  EXPECT_EQ(std::to_integer<int>(bytes[12]), 1);   // zstd
  EXPECT_EQ(std::to_integer<int>(bytes[13]), 0);   // no cipher
  for (std::size_t i = 14; i < 40; ++i) EXPECT_EQ(std::to_integer<int>(bytes[i]), 0) << "offset " << i;  // flags, key, frames, nonce
  const Sha256Digest head_check = sha256(std::span<const std::byte>(bytes.data(), 40));
  EXPECT_EQ(std::memcmp(bytes.data() + 40, head_check.data(), 8), 0);
  // Trailer: plain size, digest, body size.
  const std::byte* trailer = bytes.data() + bytes.size() - k_object_trailer_size;
  std::uint64_t plain_size = 0, body_size = 0;
  std::memcpy(&plain_size, trailer, 8);  // little-endian host
  std::memcpy(&body_size, trailer + 40, 8);
  EXPECT_EQ(plain_size, plain.size());
  EXPECT_EQ(std::memcmp(trailer + 8, sha256(plain).data(), 32), 0);
  EXPECT_EQ(body_size, bytes.size() - k_object_head_v2_size - k_object_trailer_size);
}

TEST_F(ObjectStoreTest, Version1ObjectsFromEarlierWalvaultStayReadable) {
  struct Case {
    const char* file;
    const char* sha256;
    std::uint64_t plain_size;
    Codec codec;
  };
  for (const Case& c : {Case{"v1-history-zstd.obj", "8c31988d7213139b8abecc89825cebdb5b0dd6ea7bd4433af74d5b02a0547cca", 41, Codec::zstd},
                        Case{"v1-none.obj", "8c31988d7213139b8abecc89825cebdb5b0dd6ea7bd4433af74d5b02a0547cca", 41, Codec::none},
                        Case{"v1-300k-zstd.obj", "7377f69ee613bd9eaa9a3d471d21397abf172e44514c14bd27545915d15aa55c", 300000, Codec::zstd}}) {
    SCOPED_TRACE(c.file);
    put_raw("wal/history/x", fixture(c.file));
    auto head = m_objects.header("wal/history/x");
    ASSERT_TRUE(head && *head) << (head ? "absent" : head.error().message);
    EXPECT_EQ((*head)->version, 1);
    EXPECT_EQ((*head)->codec, c.codec);
    EXPECT_EQ((*head)->plain_size, c.plain_size);
    EXPECT_EQ(to_hex((*head)->plain_sha256), c.sha256);
    auto read = m_objects.read("wal/history/x", ReadChecks::expecting(c.sha256));
    ASSERT_TRUE(read && *read) << (read ? "absent" : read.error().message);
    EXPECT_EQ(to_hex(sha256((*read)->plain)), c.sha256);
    auto streamed = stream_all("wal/history/x", ReadChecks::expecting(c.sha256));
    ASSERT_TRUE(streamed) << streamed.error().message;
    EXPECT_EQ(to_hex(sha256(*streamed)), c.sha256);
  }
  const auto text = fixture("v1-history-zstd.plain");
  put_raw("wal/history/x", fixture("v1-history-zstd.obj"));
  EXPECT_TRUE(m_objects.read("wal/history/x").value()->plain == text);
}

TEST_F(ObjectStoreTest, AbsentIsAValueAndListedButGoneIsDamage) {
  EXPECT_EQ(m_objects.read("wal/a/none").value(), std::nullopt);
  EXPECT_FALSE(m_objects.open("wal/a/none").value().has_value());
  EXPECT_EQ(m_objects.header("wal/a/none").value(), std::nullopt);
  auto listed = m_objects.open_listed("wal/a/none");
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().kind, ErrorKind::corrupt);
  EXPECT_NE(listed.error().message.find("'memory:test/wal/a/none' is listed in the repository's records and is gone"), std::string::npos)
      << listed.error().message;
}

TEST_F(ObjectStoreTest, DamageAnywhereInAVersion2ObjectIsCorruptNamingIt) {
  const auto plain = pattern(200000, 4);
  ASSERT_TRUE(m_objects.put("wal/a/good", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  const auto good = raw("wal/a/good");
  auto expect_corrupt = [&](std::vector<std::byte> bytes, const std::string& why, const std::string& where) {
    SCOPED_TRACE(where);
    put_raw("wal/a/bad", std::move(bytes));
    for (int way = 0; way < 2; ++way) {
      Failure failure;
      if (way == 0) {
        auto r = m_objects.read("wal/a/bad", ReadChecks::named("repo/wal/a/bad"));
        ASSERT_FALSE(r) << "read a damaged object";
        failure = r.error();
      } else {
        auto r = stream_all("wal/a/bad", ReadChecks::named("repo/wal/a/bad"));
        ASSERT_FALSE(r) << "streamed a damaged object";
        failure = r.error();
      }
      EXPECT_EQ(failure.kind, ErrorKind::corrupt) << failure.message;
      EXPECT_NE(failure.message.find("stored object 'repo/wal/a/bad' is corrupt: "), std::string::npos) << failure.message;
      if (!why.empty()) {
        EXPECT_NE(failure.message.find(why), std::string::npos) << failure.message;
      }
    }
  };
  for (std::size_t offset : {std::size_t{9}, std::size_t{12}, std::size_t{20}, std::size_t{30}, std::size_t{44}}) {
    auto bytes = good;
    bytes[offset] ^= std::byte{0x01};
    expect_corrupt(bytes, "", "head byte " + std::to_string(offset));
  }
  for (std::size_t back : {std::size_t{1}, std::size_t{10}, std::size_t{30}, std::size_t{50}}) {
    auto bytes = good;
    bytes[bytes.size() - back] ^= std::byte{0x01};
    expect_corrupt(bytes, "trailer checksum mismatch", "trailer byte -" + std::to_string(back));
  }
  auto bytes = good;
  bytes[k_object_head_v2_size + 1000] ^= std::byte{0x40};
  expect_corrupt(bytes, "", "body byte");
  expect_corrupt(std::vector<std::byte>(good.begin(), good.end() - 10), "", "truncated");
  bytes = good;
  bytes.insert(bytes.end() - static_cast<std::ptrdiff_t>(k_object_trailer_size), std::byte{0});
  expect_corrupt(bytes, "", "a byte added to the body");
  expect_corrupt(std::vector<std::byte>(good.begin(), good.begin() + 40), "shorter than its header", "cut inside the head");
  expect_corrupt(std::vector<std::byte>(good.begin(), good.begin() + 60), "", "head without a trailer");
  // Another object's trailer on this body (same head: same codec, no cipher).
  ASSERT_TRUE(m_objects.put("wal/a/other", pattern(5000, 5), CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  const auto other = raw("wal/a/other");
  bytes = good;
  std::copy(other.end() - static_cast<std::ptrdiff_t>(k_object_trailer_size), other.end(), bytes.end() - static_cast<std::ptrdiff_t>(k_object_trailer_size));
  expect_corrupt(bytes, "", "another object's trailer");
}

TEST_F(ObjectStoreTest, TheFirstPieceHookSeesTheStartBeforeAnyByteIsHandedOut) {
  const auto plain = pattern(2 << 20, 6);
  ASSERT_TRUE(m_objects.put("wal/a/x", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  int calls = 0;
  ReadChecks checks;
  checks.first_piece = [&](std::span<const std::byte> piece, const ObjectHeader& header) -> Result<void> {
    ++calls;
    EXPECT_GE(piece.size(), 40u);
    EXPECT_EQ(std::memcmp(piece.data(), plain.data(), piece.size()), 0);
    EXPECT_EQ(header.plain_size, plain.size());
    return {};
  };
  auto ok = stream_all("wal/a/x", checks);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(calls, 1);
  ReadChecks refusing;
  refusing.first_piece = [](std::span<const std::byte>, const ObjectHeader&) -> Result<void> {
    return fail(ErrorKind::corrupt, "not the WAL its name says");
  };
  auto stream = m_objects.open_listed("wal/a/x", refusing);
  ASSERT_TRUE(stream);
  std::vector<std::byte> out(4096);
  auto n = stream->read(out);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().message, "not the WAL its name says");
}

TEST_F(ObjectStoreTest, AnIndexDigestThatDisagreesIsCorrupt) {
  ASSERT_TRUE(m_objects.put("wal/a/x", pattern(1000, 7), CompressSpec{}, PutMode::create_only));
  auto read = m_objects.read("wal/a/x", ReadChecks::expecting(std::string(64, '0')));
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("does not match the index"), std::string::npos) << read.error().message;
  auto streamed = stream_all("wal/a/x", ReadChecks::expecting(std::string(64, '0')));
  ASSERT_FALSE(streamed);
  EXPECT_NE(streamed.error().message.find("does not match the index"), std::string::npos) << streamed.error().message;
}

TEST_F(ObjectStoreTest, CreateOnlyNeverOverwritesAndAnUnfinishedPutLeavesNothing) {
  ASSERT_TRUE(m_objects.put("wal/a/x", pattern(10, 1), CompressSpec{}, PutMode::create_only));
  auto again = m_objects.put("wal/a/x", pattern(10, 2), CompressSpec{}, PutMode::create_only);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::conflict);
  EXPECT_TRUE(m_objects.read("wal/a/x").value()->plain == pattern(10, 1));
  {
    auto put = m_objects.begin_put("backup/b/chunk", CompressSpec{}, PutMode::create_only);
    ASSERT_TRUE(put && put->append(pattern(100000, 3)));
  }
  EXPECT_FALSE(m_objects.exists("backup/b/chunk").value());
}

}  // namespace
}  // namespace walvault
