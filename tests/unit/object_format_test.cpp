#include "common/core/object_format.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace walvault {
namespace {

std::vector<std::byte> sample_content(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(size);
  // Half random, half a repeated pattern: compressible but not trivially.
  for (std::size_t i = 0; i < size; ++i)
    out[i] = static_cast<std::byte>(i < size / 2 ? rng() & 0xFF : (i * 7) & 0x3F);
  return out;
}

std::vector<std::byte> build(const CompressSpec& spec, const std::vector<std::byte>& plain) {
  auto object = build_object(spec, plain, sha256(plain));
  EXPECT_TRUE(object) << (object ? "" : object.error().message);
  return object ? *object : std::vector<std::byte>{};
}

std::string corrupt_message(std::span<const std::byte> stored, std::string_view what = "wal/x/obj") {
  auto opened = open_object(stored, what);
  EXPECT_FALSE(opened) << "a damaged object opened";
  if (opened) return "<opened>";
  EXPECT_EQ(opened.error().kind, ErrorKind::corrupt);
  EXPECT_NE(opened.error().message.find("stored object '" + std::string(what) + "' is corrupt: "), std::string::npos)
      << opened.error().message;
  return opened.error().message;
}

// Rewrites the header check (bytes 64..71) after a deliberate change to bytes 0..63, so the
// later checks are reached.
void reseal(std::vector<std::byte>& object) {
  const Sha256Digest check = sha256(std::span<const std::byte>(object.data(), 64));
  std::memcpy(object.data() + 64, check.data(), 8);
}

TEST(ObjectFormat, HeaderLayoutIsStable) {
  ObjectHeader header;
  header.codec = Codec::zstd;
  header.key_id = 0x01020304;
  header.plain_size = 16u << 20;
  for (std::size_t i = 0; i < header.plain_sha256.size(); ++i) header.plain_sha256[i] = static_cast<std::uint8_t>(i);
  header.body_size = 0x0A0B0C0D;
  const auto bytes = encode_object_header(header);
  EXPECT_EQ(std::memcmp(bytes.data(), "WVOBJ\r\n\x1a", 8), 0);
  EXPECT_EQ(std::to_integer<int>(bytes[8]), 1);  // version, little-endian
  EXPECT_EQ(std::to_integer<int>(bytes[9]), 0);
  EXPECT_EQ(std::to_integer<int>(bytes[10]), 1);  // zstd
  EXPECT_EQ(std::to_integer<int>(bytes[11]), 0);  // no cipher
  EXPECT_EQ(std::to_integer<int>(bytes[12]), 0x04);
  EXPECT_EQ(std::to_integer<int>(bytes[15]), 0x01);
  EXPECT_EQ(std::to_integer<int>(bytes[16 + 3]), 0x01);  // 16 MiB = 0x01000000
  EXPECT_EQ(std::to_integer<int>(bytes[24]), 0);
  EXPECT_EQ(std::to_integer<int>(bytes[24 + 31]), 31);
  EXPECT_EQ(std::to_integer<int>(bytes[56]), 0x0D);
  EXPECT_EQ(std::to_integer<int>(bytes[59]), 0x0A);
  const Sha256Digest check = sha256(std::span<const std::byte>(bytes.data(), 64));
  EXPECT_EQ(std::memcmp(bytes.data() + 64, check.data(), 8), 0);

  auto decoded = decode_object_header(bytes, "x");
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->version, k_object_format_version);
  EXPECT_EQ(decoded->codec, Codec::zstd);
  EXPECT_EQ(decoded->key_id, 0x01020304u);
  EXPECT_EQ(decoded->plain_size, 16u << 20);
  EXPECT_EQ(decoded->plain_sha256, header.plain_sha256);
  EXPECT_EQ(decoded->body_size, 0x0A0B0C0Du);
}

TEST(ObjectFormat, RoundTripsEveryCodec) {
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 1}, CompressSpec{Codec::zstd, 3}}) {
    for (std::size_t size : std::initializer_list<std::size_t>{std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20}) {
      SCOPED_TRACE(to_string(spec) + " " + std::to_string(size));
      const auto plain = sample_content(size, static_cast<std::uint32_t>(size));
      const auto object = build(spec, plain);
      ASSERT_GE(object.size(), k_object_header_size);
      auto opened = open_object(object, "wal/x/obj");
      ASSERT_TRUE(opened) << opened.error().message;
      EXPECT_TRUE(opened->plain == plain);
      EXPECT_EQ(opened->header.codec, spec.codec);
      EXPECT_EQ(opened->header.plain_size, size);
      EXPECT_EQ(opened->header.plain_sha256, sha256(plain));
      EXPECT_EQ(opened->header.body_size, object.size() - k_object_header_size);
      EXPECT_EQ(opened->header.cipher, 0);
    }
  }
}

TEST(ObjectFormat, FlippedHeaderByteFailsHeaderChecksum) {
  const auto plain = sample_content(50000, 1);
  const auto object = build(CompressSpec{Codec::zstd, 3}, plain);
  for (std::size_t offset : std::initializer_list<std::size_t>{8, 10, 16, 24, 40, 56, 63, 64, 71}) {
    auto damaged = object;
    damaged[offset] ^= std::byte{0x01};
    const std::string message = corrupt_message(damaged);
    EXPECT_NE(message.find("header checksum mismatch"), std::string::npos) << "offset " << offset << ": " << message;
  }
}

TEST(ObjectFormat, FlippedBodyByteIsCorrupt) {
  const auto plain = sample_content(50000, 2);
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 3}}) {
    const auto object = build(spec, plain);
    for (std::size_t offset : std::initializer_list<std::size_t>{k_object_header_size, k_object_header_size + 100, object.size() / 2, object.size() - 1}) {
      auto damaged = object;
      damaged[offset] ^= std::byte{0x20};
      const std::string message = corrupt_message(damaged);
      // A damaged zstd body fails to decode or decodes to other content; either way, corrupt.
      if (spec.codec == Codec::none) {
        EXPECT_NE(message.find("SHA-256 of the content does not match the header"), std::string::npos) << message;
      }
    }
  }
}

TEST(ObjectFormat, TruncatedOrExtendedBodyIsCorrupt) {
  const auto plain = sample_content(50000, 3);
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 3}}) {
    const auto object = build(spec, plain);
    const std::size_t body = object.size() - k_object_header_size;
    auto truncated = std::span<const std::byte>(object).first(object.size() - 10);
    std::string message = corrupt_message(truncated);
    EXPECT_NE(message.find("body is " + std::to_string(body - 10) + " bytes, header says " + std::to_string(body)),
              std::string::npos)
        << message;

    message = corrupt_message(std::span<const std::byte>(object).first(k_object_header_size));
    EXPECT_NE(message.find("body is 0 bytes"), std::string::npos) << message;

    auto extended = object;
    extended.push_back(std::byte{0});
    message = corrupt_message(extended);
    EXPECT_NE(message.find("header says " + std::to_string(body)), std::string::npos) << message;

    message = corrupt_message(std::span<const std::byte>(object).first(k_object_header_size - 1));
    EXPECT_NE(message.find("shorter than its header"), std::string::npos) << message;
  }
  EXPECT_NE(corrupt_message({}).find("shorter than its header"), std::string::npos);
}

TEST(ObjectFormat, WrongMagicIsRefused) {
  const auto object = build(CompressSpec{Codec::zstd, 3}, sample_content(1000, 4));
  auto damaged = object;
  damaged[0] = std::byte{'X'};
  reseal(damaged);  // even with a matching header check
  std::string message = corrupt_message(damaged);
  EXPECT_NE(message.find("bad magic (not a walvault object)"), std::string::npos) << message;

  // A plain WAL file stored by some other tool.
  std::vector<std::byte> foreign(16384, std::byte{0});
  foreign[0] = std::byte{0x10};
  foreign[1] = std::byte{0xD1};
  message = corrupt_message(foreign);
  EXPECT_NE(message.find("bad magic"), std::string::npos) << message;
}

TEST(ObjectFormat, UnsupportedVersionCodecAndCipherAreRefused) {
  const auto object = build(CompressSpec{Codec::zstd, 3}, sample_content(1000, 5));
  auto damaged = object;
  damaged[8] = std::byte{2};
  reseal(damaged);
  EXPECT_NE(corrupt_message(damaged).find("format version 2 is not supported"), std::string::npos);

  damaged = object;
  damaged[10] = std::byte{7};
  reseal(damaged);
  EXPECT_NE(corrupt_message(damaged).find("unknown codec 7"), std::string::npos);

  damaged = object;
  damaged[11] = std::byte{1};
  reseal(damaged);
  EXPECT_NE(corrupt_message(damaged).find("cipher 1 is not supported"), std::string::npos);
}

TEST(ObjectFormat, HeaderThatLiesAboutTheContentIsCaught) {
  const auto plain = sample_content(20000, 6);
  for (const CompressSpec& spec : {CompressSpec{Codec::none, 0}, CompressSpec{Codec::zstd, 3}}) {
    SCOPED_TRACE(to_string(spec));
    const auto object = build(spec, plain);
    auto header = *decode_object_header(object, "x");

    // Wrong digest, consistent header check.
    auto lying = object;
    header.plain_sha256[0] ^= 1;
    auto encoded = encode_object_header(header);
    std::memcpy(lying.data(), encoded.data(), encoded.size());
    EXPECT_NE(corrupt_message(lying).find("SHA-256 of the content does not match"), std::string::npos);
    header.plain_sha256[0] ^= 1;

    // Plain size larger than the content.
    header.plain_size = plain.size() + 1;
    encoded = encode_object_header(header);
    std::memcpy(lying.data(), encoded.data(), encoded.size());
    const std::string short_message = corrupt_message(lying);
    EXPECT_NE(short_message.find("decodes to " + std::to_string(plain.size()) + " bytes"), std::string::npos)
        << short_message;
    EXPECT_NE(short_message.find(std::to_string(plain.size() + 1)), std::string::npos) << short_message;

    // Plain size smaller than the content.
    header.plain_size = plain.size() - 1;
    encoded = encode_object_header(header);
    std::memcpy(lying.data(), encoded.data(), encoded.size());
    EXPECT_NE(corrupt_message(lying).find("than its header says"), std::string::npos);
    header.plain_size = plain.size();

    // Codec swapped to none on a zstd body (or the reverse).
    header.codec = spec.codec == Codec::none ? Codec::zstd : Codec::none;
    encoded = encode_object_header(header);
    std::memcpy(lying.data(), encoded.data(), encoded.size());
    corrupt_message(lying);
  }
}

TEST(ObjectFormat, ErrorsNameTheObject) {
  auto message = corrupt_message({}, "/repo/wal/0000000100000000/000000010000000000000001");
  EXPECT_NE(message.find("'/repo/wal/0000000100000000/000000010000000000000001'"), std::string::npos);
}

}  // namespace
}  // namespace walvault
