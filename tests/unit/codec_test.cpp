#include "common/core/codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace walvault {
namespace {

std::vector<std::byte> random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(size);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word = rng();
    for (std::size_t k = 0; k < 8; ++k) out[i + k] = static_cast<std::byte>((word >> (8 * k)) & 0xFF);
  }
  for (; i < size; ++i) out[i] = static_cast<std::byte>(rng() & 0xFF);
  return out;
}

// WAL-like: long zero runs and repeated record-ish text.
std::vector<std::byte> compressible_bytes(std::size_t size) {
  std::vector<std::byte> out(size);
  const std::string pattern = "INSERT INTO accounts VALUES (42, 'walvault', now());";
  for (std::size_t i = 0; i < size; ++i) {
    if ((i / 8192) % 2 == 1) continue;  // every other page stays zero
    out[i] = static_cast<std::byte>(pattern[i % pattern.size()]);
  }
  return out;
}

std::string describe(const CompressSpec& spec, std::size_t size, bool random) {
  return to_string(spec) + ", " + std::to_string(size) + " bytes, " + (random ? "random" : "compressible");
}

TEST(Codec, ParsesCompressSpecs) {
  EXPECT_EQ(parse_compress_spec("none"), (CompressSpec{Codec::none, 0}));
  EXPECT_EQ(parse_compress_spec("zstd"), (CompressSpec{Codec::zstd, 3}));
  for (int level = 1; level <= 19; ++level) {
    auto spec = parse_compress_spec("zstd:" + std::to_string(level));
    ASSERT_TRUE(spec) << level;
    EXPECT_EQ(spec->codec, Codec::zstd);
    EXPECT_EQ(spec->level, level);
    EXPECT_EQ(to_string(*spec), "zstd:" + std::to_string(level));
    EXPECT_EQ(*parse_compress_spec(to_string(*spec)), *spec);
  }
  EXPECT_EQ(to_string(CompressSpec{Codec::none, 0}), "none");
  EXPECT_EQ(codec_name(Codec::none), "none");
  EXPECT_EQ(codec_name(Codec::zstd), "zstd");
}

TEST(Codec, RefusesBadCompressSpecs) {
  for (const char* text : {"zstd:0", "zstd:20", "zstd:-1", "zstd:", "zstd:3x", "zstd:+3", "zstd: 3", "zstd:99999999999",
                           "lz4", "gzip", "ZSTD", "None", "", "zstd3", "none:1"}) {
    auto spec = parse_compress_spec(text);
    ASSERT_FALSE(spec) << "accepted '" << text << "'";
    EXPECT_EQ(spec.error().kind, ErrorKind::invalid);
    EXPECT_EQ(spec.error().message,
              "invalid compression '" + std::string(text) + "' (expected zstd, zstd:1 .. zstd:19, or none)");
  }
}

TEST(Codec, RoundTripsEveryCodecLevelAndSize) {
  const std::vector<CompressSpec> specs = {{Codec::none, 0}, {Codec::zstd, 1}, {Codec::zstd, 3}, {Codec::zstd, 19}};
  const std::vector<std::size_t> sizes = {0, 1, 4096, 16u << 20};
  for (const auto& spec : specs) {
    for (std::size_t size : sizes) {
      for (bool random : {false, true}) {
        // zstd's level 19 needs seconds per 16 MiB of compressible input; 4 MiB proves the same.
        const std::size_t n = size;
        SCOPED_TRACE(describe(spec, n, random));
        const auto plain = random ? random_bytes(n, static_cast<std::uint32_t>(n + 1)) : compressible_bytes(n);
        auto encoded = encode_all(spec, plain);
        ASSERT_TRUE(encoded) << encoded.error().message;
        if (spec.codec == Codec::none) {
          EXPECT_TRUE(*encoded == plain);
        }
        if (spec.codec == Codec::zstd && !random && n >= 4096) {
          EXPECT_LT(encoded->size(), n / 4);
        }
        auto decoded = decode_all(spec.codec, *encoded, n);
        ASSERT_TRUE(decoded) << decoded.error().message;
        EXPECT_TRUE(*decoded == plain);
      }
    }
  }
}

TEST(Codec, DecodeAllRefusesSmallerExpectedSize) {
  const auto plain = compressible_bytes(100000);
  for (Codec codec : {Codec::none, Codec::zstd}) {
    auto encoded = encode_all(CompressSpec{codec, 3}, plain);
    ASSERT_TRUE(encoded);
    for (std::size_t expected : std::initializer_list<std::size_t>{std::size_t{0}, std::size_t{1}, plain.size() - 1}) {
      auto decoded = decode_all(codec, *encoded, expected);
      ASSERT_FALSE(decoded) << codec_name(codec) << " decoded with expected size " << expected;
      EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
      EXPECT_NE(decoded.error().message.find("than its header says"), std::string::npos) << decoded.error().message;
    }
  }
}

// The parameter is the size the caller expects, and open_object is not the only caller: a
// stream that ends short of it must not pass as a complete decode.
TEST(Codec, DecodeAllRefusesLargerExpectedSize) {
  const auto plain = compressible_bytes(100000);
  for (Codec codec : {Codec::none, Codec::zstd}) {
    auto encoded = encode_all(CompressSpec{codec, 3}, plain);
    ASSERT_TRUE(encoded);
    auto decoded = decode_all(codec, *encoded, plain.size() + 1);
    EXPECT_FALSE(decoded) << codec_name(codec) << ": decode_all returned " << (decoded ? decoded->size() : 0)
                          << " bytes although " << plain.size() + 1 << " were expected";
  }
}

TEST(Codec, TruncatedZstdStreamFails) {
  const auto plain = random_bytes(200000, 7);
  auto encoded = encode_all(CompressSpec{Codec::zstd, 3}, plain);
  ASSERT_TRUE(encoded);
  for (std::size_t cut : std::initializer_list<std::size_t>{std::size_t{1}, std::size_t{3}, encoded->size() / 2, encoded->size() - 1}) {
    std::span<const std::byte> truncated(encoded->data(), encoded->size() - cut);
    auto decoded = decode_all(Codec::zstd, truncated, plain.size());
    ASSERT_FALSE(decoded) << "cut " << cut;
    EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
    EXPECT_NE(decoded.error().message.find("truncated"), std::string::npos) << decoded.error().message;
  }
  auto empty = decode_all(Codec::zstd, {}, 0);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("truncated"), std::string::npos) << empty.error().message;
}

TEST(Codec, GarbageZstdStreamFails) {
  const auto garbage = random_bytes(4096, 99);
  auto decoded = decode_all(Codec::zstd, garbage, 1 << 20);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
  EXPECT_NE(decoded.error().message.find("zstd data is corrupt"), std::string::npos) << decoded.error().message;
}

TEST(Codec, UnknownCodecIsRefused) {
  auto decoder = make_decoder(static_cast<Codec>(9));
  ASSERT_FALSE(decoder);
  EXPECT_EQ(decoder.error().kind, ErrorKind::corrupt);
  EXPECT_NE(decoder.error().message.find("unknown codec 9"), std::string::npos);
}

TEST(Codec, StreamingEncoderInSmallPieces) {
  const auto plain = [] {
    auto a = compressible_bytes(48 * 1024);
    auto b = random_bytes(16 * 1024, 3);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }();
  for (const CompressSpec& spec : {CompressSpec{Codec::zstd, 1}, CompressSpec{Codec::zstd, 19}, CompressSpec{Codec::none, 0}}) {
    SCOPED_TRACE(to_string(spec));
    auto encoder = make_encoder(spec);
    std::vector<std::byte> out;
    std::size_t offset = 0, piece = 1;
    while (offset < plain.size()) {
      const std::size_t n = std::min(piece, plain.size() - offset);
      ASSERT_TRUE(encoder->update(std::span<const std::byte>(plain).subspan(offset, n), out));
      offset += n;
      piece = piece % 61 + 1;  // 1, 2, ... 61, 1, 2, ...
    }
    ASSERT_TRUE(encoder->update({}, out));  // an empty piece is harmless
    ASSERT_TRUE(encoder->finish(out));
    auto decoded = decode_all(spec.codec, out, plain.size());
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_TRUE(*decoded == plain);
    // The one-shot result decodes to the same content.
    auto whole = encode_all(spec, plain);
    ASSERT_TRUE(whole);
    EXPECT_TRUE(*decode_all(spec.codec, *whole, plain.size()) == plain);
  }
}

TEST(Codec, StreamingDecoderInSmallPieces) {
  const auto plain = compressible_bytes(300000);
  auto encoded = encode_all(CompressSpec{Codec::zstd, 3}, plain);
  ASSERT_TRUE(encoded);
  auto decoder = make_decoder(Codec::zstd);
  ASSERT_TRUE(decoder);
  std::vector<std::byte> out;
  for (std::size_t offset = 0; offset < encoded->size(); offset += 2) {
    const std::size_t n = std::min<std::size_t>(2, encoded->size() - offset);
    auto r = (*decoder)->update(std::span<const std::byte>(*encoded).subspan(offset, n), out, plain.size());
    ASSERT_TRUE(r) << r.error().message;
  }
  ASSERT_TRUE((*decoder)->finish());
  EXPECT_TRUE(out == plain);
}

TEST(Codec, DecoderStopsAtLimitOnHugeExpansion) {
  // 64 MiB of zeros compress to a few KiB; a limit of 1 MiB must stop the decoder early.
  std::vector<std::byte> zeros(64u << 20);
  auto encoded = encode_all(CompressSpec{Codec::zstd, 1}, zeros);
  ASSERT_TRUE(encoded);
  zeros = {};
  auto decoded = decode_all(Codec::zstd, *encoded, 1u << 20);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt);
  EXPECT_NE(decoded.error().message.find("more bytes than its header says"), std::string::npos);
}

}  // namespace
}  // namespace walvault
