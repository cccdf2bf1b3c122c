// Encryption at rest (cipher 1, docs/repository-format.md): objects written with a current key
// round-trip at every frame boundary through every way in and out, hold nothing of their
// content in clear, and every tamper (a bit in a frame, a tag, the head, the trailer; a
// truncation; frames swapped; a rename; the wrong key; a key no longer held) fails without
// yielding a byte. Key files: format and permissions.
#include "common/core/object_cipher.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/core/object_store.hpp"
#include "common/core/repository.hpp"
#include "tests/unit/memory_storage.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

constexpr std::size_t F = k_cipher_frame_size;
constexpr std::size_t k_head = k_object_head_v2_size + k_wrapped_key_size;  // 108
constexpr std::size_t k_trailer = k_object_trailer_size + k_object_digest_tag_size;  // 72

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(size);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xFF);
  return out;
}

SecretKey key_of(std::uint8_t fill) {
  std::array<std::uint8_t, SecretKey::k_size> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(fill + i * 7);
  return SecretKey::from_bytes(bytes, "test key " + std::to_string(fill));
}

std::shared_ptr<const Keyring> ring(std::optional<std::uint8_t> current, std::vector<std::uint8_t> old = {}) {
  std::optional<SecretKey> key;
  if (current) key = key_of(*current);
  std::vector<SecretKey> olds;
  for (auto fill : old) olds.push_back(key_of(fill));
  auto made = Keyring::make(std::move(key), std::move(olds));
  EXPECT_TRUE(made) << made.error().message;
  return std::make_shared<const Keyring>(std::move(*made));
}

// The head and trailer checks are plain SHA-256 (they find accidents): anyone can recompute
// them, so these tests do, to show that authentication alone stops a deliberate change.
void recompute_checks(std::vector<std::byte>& bytes) {
  const std::size_t head = static_cast<std::uint8_t>(bytes[10]) | static_cast<std::size_t>(static_cast<std::uint8_t>(bytes[11])) << 8;
  const Sha256Digest head_check = sha256(std::span<const std::byte>(bytes.data(), head - 8));
  std::memcpy(bytes.data() + head - 8, head_check.data(), 8);
  const std::size_t trailer = bytes.size() - k_trailer;
  std::vector<std::byte> input(bytes.data() + head - 8, bytes.data() + head);
  input.insert(input.end(), bytes.begin() + static_cast<std::ptrdiff_t>(trailer), bytes.begin() + static_cast<std::ptrdiff_t>(trailer + 48));
  const Sha256Digest trailer_check = sha256(input);
  std::memcpy(bytes.data() + trailer + 48, trailer_check.data(), 8);
}

bool contains(const std::vector<std::byte>& haystack, std::span<const std::byte> needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

class ObjectCipherTest : public ::testing::Test {
 protected:
  ObjectCipherTest() : m_shared(std::make_shared<test::MemoryStorage::Shared>()) { m_objects = store(ring(1)); }

  std::unique_ptr<ObjectStore> store(std::shared_ptr<const Keyring> keys) {
    auto objects = std::make_unique<ObjectStore>(std::make_unique<test::MemoryStorage>(m_shared));
    if (keys) objects->set_keys(std::move(keys));
    return objects;
  }
  std::vector<std::byte>& raw(const std::string& key) { return m_shared->objects.at(key); }

  static Result<std::vector<std::byte>> stream_all(ObjectStore& objects, const std::string& key, std::size_t piece_size = 7777) {
    auto stream = objects.open_listed(key);
    if (!stream) return std::unexpected(stream.error());
    std::vector<std::byte> out, piece(piece_size);
    for (;;) {
      auto n = stream->read(piece);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return out;
      out.insert(out.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(*n));
    }
  }

  // Every read path refuses the object with `kind`, and none hands out a byte.
  void expect_refused(ObjectStore& objects, const std::string& key, ErrorKind kind, const std::string& says) {
    auto whole = objects.read(key);
    ASSERT_FALSE(whole) << key << ": read gave bytes";
    EXPECT_EQ(whole.error().kind, kind) << whole.error().message;
    EXPECT_NE(whole.error().message.find(says), std::string::npos) << whole.error().message;
    auto streamed = stream_all(objects, key);
    ASSERT_FALSE(streamed) << key << ": stream gave every byte";
    EXPECT_EQ(streamed.error().kind, kind) << streamed.error().message;
  }

  std::shared_ptr<test::MemoryStorage::Shared> m_shared;
  std::unique_ptr<ObjectStore> m_objects;
};

TEST_F(ObjectCipherTest, RoundTripsAtEveryFrameBoundary) {
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 3}}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, F - 1, F, F + 1, 2 * F, 2 * F + 12345}) {
      SCOPED_TRACE(to_string(spec) + " " + std::to_string(size));
      const auto plain = pattern(size, static_cast<std::uint32_t>(size));
      auto header = m_objects->put("wal/a/whole", plain, spec, PutMode::replace);
      ASSERT_TRUE(header) << header.error().message;
      EXPECT_EQ(header->cipher, k_cipher_aes256gcm);
      EXPECT_EQ(header->key_id, key_of(1).id());
      EXPECT_EQ(raw("wal/a/whole").size(), header->stored_size());

      auto put = m_objects->begin_put("backup/b/chunk", spec, PutMode::replace);
      ASSERT_TRUE(put) << put.error().message;
      for (std::size_t pos = 0; pos < plain.size(); pos += 300001)
        ASSERT_TRUE(put->append(std::span<const std::byte>(plain).subspan(pos, std::min<std::size_t>(300001, plain.size() - pos))));
      auto streamed = put->finish();
      ASSERT_TRUE(streamed) << streamed.error().message;
      EXPECT_EQ(raw("backup/b/chunk").size(), put->stored_size());

      if (spec.codec == Codec::none) {
        // Frames of F bytes, each with a 16-byte tag; an exact multiple ends in a full last
        // frame, and an empty body is one empty frame.
        const std::size_t frames = std::max<std::size_t>(1, (size + F - 1) / F);
        EXPECT_EQ(raw("wal/a/whole").size(), k_head + size + 16 * frames + k_trailer);
        EXPECT_EQ(raw("backup/b/chunk").size(), raw("wal/a/whole").size());
      }
      for (const std::string key : {"wal/a/whole", "backup/b/chunk"}) {
        auto read = m_objects->read(key);
        ASSERT_TRUE(read && *read) << key << ": " << (read ? "absent" : read.error().message);
        EXPECT_TRUE((*read)->plain == plain) << key;
        auto back = stream_all(*m_objects, key);
        ASSERT_TRUE(back) << back.error().message;
        EXPECT_TRUE(*back == plain) << key;
        auto head = m_objects->header(key);
        ASSERT_TRUE(head && *head) << key;
        EXPECT_EQ((*head)->plain_size, size);
        EXPECT_EQ((*head)->plain_sha256, sha256(plain));
        // Nothing of the content is in clear: neither a run of it nor its digest.
        if (size >= 64) {
          EXPECT_FALSE(contains(raw(key), std::span<const std::byte>(plain).subspan(size / 2, 32))) << key;
        }
        const Sha256Digest digest = sha256(plain);
        EXPECT_FALSE(contains(raw(key), std::as_bytes(std::span(digest)))) << key;
      }
    }
  }
}

TEST_F(ObjectCipherTest, OneGibibyteStreamsThroughInBoundedPieces) {
  test::TempDir dir("walvault-cipher");
  auto storage = open_posix_storage(dir.path());
  ASSERT_TRUE(storage) << storage.error().message;
  ObjectStore objects(std::move(*storage));
  objects.set_keys(ring(1));
#ifdef __SANITIZE_ADDRESS__
  // The sanitizer pass streams a quarter (the same code, 256 frames) to keep CI's time.
  constexpr std::size_t k_total = std::size_t{1} << 28, k_piece = 4u << 20;
#else
  constexpr std::size_t k_total = std::size_t{1} << 30, k_piece = 4u << 20;
#endif
  std::vector<std::byte> piece = pattern(k_piece, 5);
  Sha256 written;
  auto put = objects.begin_put("backup/big/chunk", CompressSpec{Codec::none, 0}, PutMode::create_only);
  ASSERT_TRUE(put) << put.error().message;
  for (std::size_t done = 0; done < k_total; done += k_piece) {
    std::memcpy(piece.data(), &done, sizeof done);  // every piece differs
    written.update(piece);
    ASSERT_TRUE(put->append(piece));
  }
  auto header = put->finish();
  ASSERT_TRUE(header) << header.error().message;
  const Sha256Digest digest = written.finish();
  EXPECT_EQ(header->plain_sha256, digest);
  EXPECT_EQ(header->body_size, k_total + 16 * (k_total / F));

  auto stream = objects.open_listed("backup/big/chunk");
  ASSERT_TRUE(stream) << stream.error().message;
  Sha256 read;
  std::uint64_t total = 0;
  std::vector<std::byte> out(k_piece + 1);
  for (;;) {
    auto n = stream->read(out);
    ASSERT_TRUE(n) << n.error().message;
    if (*n == 0) break;
    read.update(std::span(out).first(*n));
    total += *n;
  }
  EXPECT_EQ(total, k_total);
  EXPECT_EQ(read.finish(), digest);
}

// A plain repository stays readable after encryption is switched on, and objects written
// encrypted are refused (never misread) by a walvaultd without the key.
TEST_F(ObjectCipherTest, MixedRepositoriesReadBothKinds) {
  auto plain_store = store(nullptr);
  const auto plain = pattern(5000, 3);
  ASSERT_TRUE(plain_store->put("wal/a/plain", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  ASSERT_TRUE(m_objects->put("wal/a/sealed", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  EXPECT_EQ(std::to_integer<int>(raw("wal/a/plain")[13]), 0);
  EXPECT_EQ(std::to_integer<int>(raw("wal/a/sealed")[13]), 1);
  for (const std::string key : {"wal/a/plain", "wal/a/sealed"}) {
    auto read = m_objects->read(key);
    ASSERT_TRUE(read && *read) << key;
    EXPECT_TRUE((*read)->plain == plain);
  }
  auto read = plain_store->read("wal/a/plain");
  ASSERT_TRUE(read && *read);
  expect_refused(*plain_store, "wal/a/sealed", ErrorKind::refused, "key id " + key_id_text(key_of(1).id()));
  auto head = plain_store->header("wal/a/sealed");
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().kind, ErrorKind::refused);
  EXPECT_NE(head.error().message.find("no encryption key is configured"), std::string::npos) << head.error().message;
}

TEST_F(ObjectCipherTest, AFlippedBitAnywhereFailsAuthentication) {
  const auto plain = pattern(2 * F + 5000, 11);  // three frames: F, F, 5000
  ASSERT_TRUE(m_objects->put("wal/a/x", plain, CompressSpec{Codec::none, 0}, PutMode::create_only));
  const std::vector<std::byte> good = raw("wal/a/x");
  ASSERT_EQ(good.size(), k_head + plain.size() + 3 * 16 + k_trailer);
  struct Case {
    std::string name;
    std::size_t offset;
    std::string says;
  };
  const std::size_t body = k_head, frame1 = body + F + 16, frame2 = frame1 + F + 16, trailer = good.size() - k_trailer;
  const std::vector<Case> cases = {
      {"frame 0", body + 17, "frame 0 fails authentication"},
      {"frame 1", frame1 + F - 1, "frame 1 fails authentication"},
      {"frame 2 (last)", frame2 + 4999, "frame 2 (the last) fails authentication"},
      {"tag 0", body + F + 3, "frame 0 fails"},
      {"tag 2", frame2 + 5000 + 15, "frame 2 (the last) fails"},
      {"nonce prefix", 24, "data key fails authentication"},
      {"nonce prefix (unused half)", 37, "data key fails authentication"},
      {"wrap nonce", 40, "data key fails authentication"},
      {"wrapped key", 60, "data key fails authentication"},
      {"wrap tag", 99, "data key fails authentication"},
      {"sealed digest", trailer + 8, "trailer fails authentication"},
      {"plain size", trailer + 1, "trailer fails authentication"},
      {"digest tag", trailer + 60, "trailer fails authentication"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::byte> bad = good;
    bad[c.offset] ^= std::byte{0x04};
    // Even with the plain checks recomputed (what someone changing it on purpose would do).
    recompute_checks(bad);
    m_shared->objects["wal/a/x"] = bad;
    expect_refused(*m_objects, "wal/a/x", ErrorKind::corrupt, c.says);
    // And without: the checks see it first, or authentication does; never bytes.
    bad = good;
    bad[c.offset] ^= std::byte{0x04};
    m_shared->objects["wal/a/x"] = bad;
    auto read = m_objects->read("wal/a/x");
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().kind, ErrorKind::corrupt);
  }
  // A changed key id in the head names a key not held; a changed codec, cipher or frame size
  // fails the wrap or the frames.
  {
    std::vector<std::byte> bad = good;
    bad[16] ^= std::byte{0x01};
    recompute_checks(bad);
    m_shared->objects["wal/a/x"] = bad;
    expect_refused(*m_objects, "wal/a/x", ErrorKind::refused, "which walvaultd does not hold");
  }
  {
    std::vector<std::byte> bad = good;
    bad[12] = std::byte{1};  // codec: zstd (the sealed digest, opened first, binds it too)
    recompute_checks(bad);
    m_shared->objects["wal/a/x"] = bad;
    expect_refused(*m_objects, "wal/a/x", ErrorKind::corrupt, "trailer fails authentication");
  }
  m_shared->objects["wal/a/x"] = good;
  auto read = m_objects->read("wal/a/x");
  ASSERT_TRUE(read && *read);
  EXPECT_TRUE((*read)->plain == plain);
}

TEST_F(ObjectCipherTest, AFailedStreamNeverHandsOutBytesAgain) {
  const auto plain = pattern(2 * F + 5000, 12);
  ASSERT_TRUE(m_objects->put("wal/a/y", plain, CompressSpec{Codec::none, 0}, PutMode::create_only));
  raw("wal/a/y")[k_head + F + 16 + 100] ^= std::byte{0x10};  // inside frame 1
  auto stream = m_objects->open_listed("wal/a/y");
  ASSERT_TRUE(stream) << stream.error().message;
  std::vector<std::byte> piece(F / 2);
  std::size_t good = 0;
  Result<std::size_t> n = 0;
  while ((n = stream->read(piece)) && *n > 0) good += *n;
  ASSERT_FALSE(n) << "the stream read to its end";
  EXPECT_EQ(good, F);  // frame 0 only: frame 1 failed before any of its bytes came out
  const std::string first = n.error().message;
  EXPECT_NE(first.find("frame 1 fails authentication"), std::string::npos) << first;
  // A caller that reads again gets the same failure, never the rest of a failed frame.
  for (int i = 0; i < 3; ++i) {
    auto again = stream->read(piece);
    ASSERT_FALSE(again) << "read " << i << " after the failure gave " << *again << " bytes";
    EXPECT_EQ(again.error().message, first);
  }
}

TEST_F(ObjectCipherTest, TruncatedReorderedOrRenamedObjectsFail) {
  const auto plain = pattern(2 * F + 5000, 12);
  ASSERT_TRUE(m_objects->put("wal/a/x", plain, CompressSpec{Codec::none, 0}, PutMode::create_only));
  const std::vector<std::byte> good = raw("wal/a/x");
  const std::size_t frame = F + 16, trailer = good.size() - k_trailer;
  auto set_body_size = [&](std::vector<std::byte>& bytes, std::uint64_t body_size) {
    std::memcpy(bytes.data() + bytes.size() - k_trailer + 40, &body_size, 8);  // little-endian host
  };
  {
    SCOPED_TRACE("the last frame cut off, sizes made to fit");
    std::vector<std::byte> bad(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(k_head + 2 * frame));
    bad.insert(bad.end(), good.begin() + static_cast<std::ptrdiff_t>(trailer), good.end());
    set_body_size(bad, 2 * frame);
    recompute_checks(bad);
    m_shared->objects["wal/a/x"] = bad;
    // The sizes are sealed with the digest; and frame 1 was not sealed as the last.
    expect_refused(*m_objects, "wal/a/x", ErrorKind::corrupt, "trailer fails authentication");
  }
  {
    SCOPED_TRACE("bytes cut from the end");
    std::vector<std::byte> bad(good.begin(), good.end() - 100);
    m_shared->objects["wal/a/x"] = bad;
    expect_refused(*m_objects, "wal/a/x", ErrorKind::corrupt, "is corrupt");
  }
  {
    SCOPED_TRACE("frames 0 and 1 swapped");
    std::vector<std::byte> bad = good;
    std::swap_ranges(bad.begin() + static_cast<std::ptrdiff_t>(k_head), bad.begin() + static_cast<std::ptrdiff_t>(k_head + frame),
                     bad.begin() + static_cast<std::ptrdiff_t>(k_head + frame));
    m_shared->objects["wal/a/x"] = bad;
    expect_refused(*m_objects, "wal/a/x", ErrorKind::corrupt, "frame 0 fails authentication");
  }
  {
    SCOPED_TRACE("copied onto another name");
    m_shared->objects["wal/a/x"] = good;
    m_shared->objects["wal/a/y"] = good;
    expect_refused(*m_objects, "wal/a/y", ErrorKind::corrupt, "stored under another name");
    auto head = m_objects->header("wal/a/y");
    ASSERT_FALSE(head);
    EXPECT_EQ(head.error().kind, ErrorKind::corrupt);
  }
  auto read = m_objects->read("wal/a/x");
  ASSERT_TRUE(read && *read);
}

TEST_F(ObjectCipherTest, WrongOrRetiredKeysNeverYieldBytes) {
  const auto plain = pattern(70000, 13);
  ASSERT_TRUE(m_objects->put("wal/a/x", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  // Another key only: refused naming the object and the key id it needs.
  auto other = store(ring(2));
  expect_refused(*other, "wal/a/x", ErrorKind::refused, "'wal/a/x' is encrypted with key id " + key_id_text(key_of(1).id()));
  // Rotation: new key current, the first one old: old objects stay readable, new ones use
  // the new key.
  auto rotated = store(ring(2, {1}));
  auto read = rotated->read("wal/a/x");
  ASSERT_TRUE(read && *read) << (read ? "absent" : read.error().message);
  EXPECT_TRUE((*read)->plain == plain);
  auto fresh = rotated->put("wal/a/new", plain, CompressSpec{Codec::zstd, 3}, PutMode::create_only);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->key_id, key_of(2).id());
  // The old key removed: the objects it sealed are refused, the new ones read.
  expect_refused(*other, "wal/a/x", ErrorKind::refused, "key id " + key_id_text(key_of(1).id()));
  auto again = other->read("wal/a/new");
  ASSERT_TRUE(again && *again);
}

// Rotation end to end at the object layer: rekey moves each object's data key to the new key
// without touching its body; afterwards the old key is not needed.
TEST_F(ObjectCipherTest, RekeyRewrapsWithoutRewritingTheBody) {
  const auto big = pattern(F + 777, 21), small = pattern(10, 22);
  ASSERT_TRUE(m_objects->put("wal/a/big", big, CompressSpec{Codec::none, 0}, PutMode::create_only));
  ASSERT_TRUE(m_objects->put("wal/a/small", small, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  ASSERT_TRUE(store(nullptr)->put("wal/a/plain", small, CompressSpec{Codec::zstd, 3}, PutMode::create_only));
  const std::vector<std::byte> before = raw("wal/a/big");

  auto rotated = store(ring(2, {1}));
  auto moved = rotated->rekey("wal/a/big");
  ASSERT_TRUE(moved) << moved.error().message;
  EXPECT_EQ(*moved, ObjectStore::Rekeyed::moved);
  ASSERT_EQ(rotated->rekey("wal/a/small").value_or(ObjectStore::Rekeyed::plain), ObjectStore::Rekeyed::moved);
  EXPECT_EQ(rotated->rekey("wal/a/big").value_or(ObjectStore::Rekeyed::plain), ObjectStore::Rekeyed::current);
  EXPECT_EQ(rotated->rekey("wal/a/plain").value_or(ObjectStore::Rekeyed::current), ObjectStore::Rekeyed::plain);
  const std::vector<std::byte>& after = raw("wal/a/big");
  ASSERT_EQ(after.size(), before.size());
  // The body and the sealed digest with its tag are the same bytes; the head and the trailer
  // check changed.
  EXPECT_TRUE(std::equal(before.begin() + k_head, before.end() - k_trailer + 48, after.begin() + k_head));
  EXPECT_TRUE(std::equal(before.end() - 16, before.end(), after.end() - 16));
  EXPECT_FALSE(std::equal(before.begin(), before.begin() + k_head, after.begin()));

  // The old key gone: everything still reads.
  auto only_new = store(ring(2));
  for (const auto& [key, plain] : {std::pair{"wal/a/big", big}, std::pair{"wal/a/small", small}, std::pair{"wal/a/plain", small}}) {
    auto read = only_new->read(key);
    ASSERT_TRUE(read && *read) << key << ": " << (read ? "absent" : read.error().message);
    EXPECT_TRUE((*read)->plain == plain) << key;
  }
  // Rekey needs a current key, and cannot move what no key held opens.
  auto none = store(ring(std::nullopt, {2}))->rekey("wal/a/big");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::invalid);
  ASSERT_TRUE(m_objects->put("wal/a/third", small, CompressSpec{Codec::zstd, 3}, PutMode::create_only));  // key 1
  auto lost = only_new->rekey("wal/a/third");
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().kind, ErrorKind::refused);
}

TEST(KeyFileTest, FormatsAndPermissions) {
  test::TempDir dir("walvault-keys");
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir / name;
    std::ofstream(path, std::ios::binary) << text;
    ::chmod(path.c_str(), mode);
    return path;
  };
  auto symlink_to = [](const std::string& target, const std::string& link) {
    EXPECT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
    return link;
  };
  const std::string raw32(32, '\x5a');
  const std::string hex = std::string(64, 'a');
  auto raw_key = SecretKey::load_file(write("raw", raw32, 0600));
  ASSERT_TRUE(raw_key) << raw_key.error().message;
  auto hex_key = SecretKey::load_file(write("hex", hex + "\n", 0400));
  ASSERT_TRUE(hex_key) << hex_key.error().message;
  auto hex_bare = SecretKey::load_file(write("hex-bare", std::string(64, 'A'), 0600));
  ASSERT_TRUE(hex_bare) << hex_bare.error().message;
  EXPECT_EQ(hex_key->id(), hex_bare->id());  // the same 32 bytes (0xaa...), however written
  EXPECT_NE(hex_key->id(), raw_key->id());
  EXPECT_EQ(std::memcmp(hex_key->data(), std::string(32, '\xaa').data(), 32), 0);

  // The id is derived from the key, and is not the key.
  std::string input = "walvault key id v1" + raw32;
  const Sha256Digest digest = sha256(std::as_bytes(std::span(input.data(), input.size())));
  std::uint32_t expected = 0;
  for (int i = 0; i < 4; ++i) expected |= static_cast<std::uint32_t>(digest[i]) << (8 * i);
  EXPECT_EQ(raw_key->id(), expected);

  struct Bad {
    std::string file;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {write("group-readable", raw32, 0640), "may be read by group or others (mode 0640)"},
      {write("world-readable", hex, 0604), "may be read by group or others"},
      {write("short-hex", std::string(63, 'a'), 0600), "are not a key"},
      {write("not-hex", std::string(63, 'a') + "g", 0600), "are not a key"},
      {write("31-bytes", std::string(31, 'x'), 0600), "are not a key"},
      {write("empty", "", 0600), "are not a key"},
      {write("half-hex", std::string(32, 'a'), 0600), "holds 32 hex digits: that is half a key"},
      {write("too-long", std::string(64, 'a') + "\n\n\n", 0600), "holds more than 66 bytes"},
      {write("huge", std::string(1 << 20, 'a'), 0600), "holds more than 66 bytes"},
      {dir.path(), "is not a regular file"},
      {symlink_to(dir / "group-readable", dir / "link-to-group-readable"), "may be read by group or others (mode 0640)"},
      {dir / "missing", "missing"},
  };
  for (const auto& b : bad) {
    auto key = SecretKey::load_file(b.file);
    ASSERT_FALSE(key) << b.file;
    EXPECT_EQ(key.error().kind, ErrorKind::invalid) << b.file;
    EXPECT_NE(key.error().message.find(b.says), std::string::npos) << key.error().message;
  }

  // A root-owned key readable through the group (a Kubernetes Secret with fsGroup and
  // defaultMode 0440) is accepted for a non-root walvaultd; group write or other read never is.
  if (::geteuid() == 0) {
    const gid_t group = 4242;
    const uid_t user = 4243;
    const std::string secret = write("k8s-secret", hex, 0440);
    const std::string writable = write("k8s-secret-group-writable", hex, 0460);
    const std::string others = write("k8s-secret-others", hex, 0444);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    for (const auto& path : {secret, writable, others}) ASSERT_EQ(::chown(path.c_str(), 0, group), 0);
    auto load_as_user = [&](const std::string& path) {  // exit 0: loaded; 1: refused with the mode named
      const pid_t pid = ::fork();
      if (pid == 0) {
        if (::setgroups(1, &group) != 0 || ::setgid(user) != 0 || ::setuid(user) != 0) ::_exit(3);
        auto key = SecretKey::load_file(path);
        if (key) ::_exit(key->id() == hex_key->id() ? 0 : 4);
        ::_exit(key.error().message.find("may be read by group or others") != std::string::npos ? 1 : 5);
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
    };
    EXPECT_EQ(load_as_user(secret), 0);
    EXPECT_EQ(load_as_user(writable), 1);
    EXPECT_EQ(load_as_user(others), 1);
    auto as_root = SecretKey::load_file(secret);  // root itself never relies on the group
    ASSERT_FALSE(as_root);
    EXPECT_NE(as_root.error().message.find("may be read by group or others (mode 0440)"), std::string::npos);
  }

  // A symbolic link (a Kubernetes Secret's file is one) is followed; the target's mode counts.
  auto linked = SecretKey::load_file(symlink_to(dir / "hex", dir / "link-to-hex"));
  ASSERT_TRUE(linked) << linked.error().message;
  EXPECT_EQ(linked->id(), hex_key->id());

  auto twice = Keyring::load(dir / "hex", {dir / "hex-bare"});
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("hold the same key"), std::string::npos) << twice.error().message;
  auto ring = Keyring::load(dir / "hex", {dir / "raw"});
  ASSERT_TRUE(ring) << ring.error().message;
  EXPECT_EQ(ring->current()->id(), hex_key->id());
  ASSERT_NE(ring->find(raw_key->id()), nullptr);
  EXPECT_EQ(ring->find(raw_key->id() + 1), nullptr);
  // Logs show ids and files, never key bytes.
  EXPECT_NE(ring->describe().find(key_id_text(hex_key->id())), std::string::npos);
  EXPECT_EQ(ring->describe().find("aaaaaaaa"), std::string::npos) << ring->describe();
}

}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

// The key check (walvault.keycheck): written at first use with a key, proving the keys at every
// start; a wrong key, or no key for an encrypted repository, stops walvaultd before it serves.
class KeyCheckTest : public ::testing::Test {
 protected:
  KeyCheckTest() : m_shared(std::make_shared<test::MemoryStorage::Shared>()) {}
  Result<std::vector<std::string>> start(std::shared_ptr<const Keyring> keys, bool may_write = true) {
    auto repository = Repository::open(std::make_unique<test::MemoryStorage>(m_shared), true);
    EXPECT_TRUE(repository) << repository.error().message;
    m_repository = std::move(*repository);
    return m_repository->use_keys(std::move(keys), may_write);
  }
  std::uint32_t check_key_id() {
    const auto& bytes = m_shared->objects.at(std::string(k_key_check_key));
    std::uint32_t id = 0;
    std::memcpy(&id, bytes.data() + 16, 4);
    return id;
  }
  std::shared_ptr<test::MemoryStorage::Shared> m_shared;
  std::unique_ptr<Repository> m_repository;
};

TEST_F(KeyCheckTest, FirstUseWritesItAndEveryStartProvesIt) {
  // Plain repository, no keys: nothing written, and it stays plain.
  auto plain = start(ring(std::nullopt));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(m_shared->objects.contains(std::string(k_key_check_key)));
  // --check-config with a key writes nothing either.
  auto checked = start(ring(1), /*may_write=*/false);
  ASSERT_TRUE(checked) << checked.error().message;
  EXPECT_FALSE(m_shared->objects.contains(std::string(k_key_check_key)));
  // First start with a key: sealed by it.
  auto first = start(ring(1));
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  EXPECT_NE(first->front().find("encryption on, key id " + key_id_text(key_of(1).id())), std::string::npos) << first->front();
  EXPECT_EQ(check_key_id(), key_of(1).id());
  auto again = start(ring(1));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->front().find("key id " + key_id_text(key_of(1).id()) + " opens it"), std::string::npos) << again->front();

  // A wrong key: refused naming the repository and the key id it needs.
  auto wrong = start(ring(2));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::refused);
  EXPECT_NE(wrong.error().message.find("cannot decrypt repository 'memory:test'"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("key id " + key_id_text(key_of(1).id())), std::string::npos) << wrong.error().message;
  // No key at all, or only old keys: new objects would go unencrypted.
  const std::pair<std::shared_ptr<const Keyring>, std::string> unkeyed[] = {
      {ring(std::nullopt), "(no encryption key is configured)"}, {ring(std::nullopt, {1}), "no encryption-key-file is configured"}};
  for (const auto& [keys, says] : unkeyed) {
    auto none = start(keys);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, ErrorKind::refused);
    EXPECT_NE(none.error().message.find(says), std::string::npos) << none.error().message;
  }
  EXPECT_EQ(check_key_id(), key_of(1).id());

  // Rotation: a new key with the old one kept: the check moves to the new key.
  auto rotated = start(ring(2, {1}));
  ASSERT_TRUE(rotated) << rotated.error().message;
  EXPECT_NE(rotated->front().find("moved from key id " + key_id_text(key_of(1).id())), std::string::npos) << rotated->front();
  EXPECT_EQ(check_key_id(), key_of(2).id());
  auto after = start(ring(2));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_FALSE(start(ring(1)));
}

}  // namespace
}  // namespace walvault
