#pragma once
// Compression codecs. Streaming interface so large inputs (base backups, later) keep memory
// bounded; WAL segments go through the same code in one or a few pieces.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

enum class Codec : std::uint8_t { none = 0, zstd = 1 };

struct CompressSpec {
  Codec codec = Codec::zstd;
  int level = 3;
  // zstd worker threads for one large stream (a base backup); 0 compresses on the caller's thread.
  int threads = 0;
  bool operator==(const CompressSpec&) const = default;
};

// "zstd", "zstd:N" (N from 1 to 19), or "none".
Result<CompressSpec> parse_compress_spec(std::string_view text);
std::string to_string(const CompressSpec& spec);
std::string_view codec_name(Codec codec);

class Encoder {
 public:
  virtual ~Encoder() = default;
  // Appends compressed output for `input` to `out`.
  virtual Result<void> update(std::span<const std::byte> input, std::vector<std::byte>& out) = 0;
  virtual Result<void> finish(std::vector<std::byte>& out) = 0;
  // update(input) then finish(), for an input held whole in memory: an encoder may then work
  // on it in place instead of copying it into a window of its own.
  virtual Result<void> encode_whole(std::span<const std::byte> input, std::vector<std::byte>& out) {
    if (auto r = update(input, out); !r) return r;
    return finish(out);
  }
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Appends plain output to `out`; fails (corrupt) once the output would pass `limit` bytes,
  // so a damaged or hostile object cannot exhaust memory.
  virtual Result<void> update(std::span<const std::byte> input, std::vector<std::byte>& out, std::size_t limit) = 0;
  // Pull form: decodes from input[consumed..] into `out`, advancing `consumed`, until `out` is
  // full or the input is used up; returns the bytes produced. Lets a caller work through a
  // large object in cache-sized pieces.
  virtual Result<std::size_t> decode_some(std::span<const std::byte> input, std::size_t& consumed, std::span<std::byte> out) = 0;
  // Fails (corrupt) when the stream ended early.
  virtual Result<void> finish() = 0;
};

std::unique_ptr<Encoder> make_encoder(const CompressSpec& spec);
Result<std::unique_ptr<Decoder>> make_decoder(Codec codec);

// One-shot helpers over the streaming classes.
Result<std::vector<std::byte>> encode_all(const CompressSpec& spec, std::span<const std::byte> plain);
Result<std::vector<std::byte>> decode_all(Codec codec, std::span<const std::byte> encoded, std::size_t expected_size);

}  // namespace walvault
