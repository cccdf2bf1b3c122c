#pragma once
// The self-describing repository object: a fixed 72-byte header, then the encoded body.
// Layout (all integers little-endian), documented in docs/repository-format.md:
//   0  8  magic "WVOBJ\r\n\x1a"
//   8  2  format version (1)
//  10  1  codec (0 none, 1 zstd)
//  11  1  cipher (0 none)
//  12  4  key id (0 when cipher is none)
//  16  8  plain size
//  24 32  SHA-256 of the plain content
//  56  8  body size (bytes after the header)
//  64  8  first 8 bytes of SHA-256 over bytes 0..63 (header check)
#include <array>
#include <memory>
#include <string>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/codec.hpp"
#include "common/core/sha256.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

inline constexpr std::size_t k_object_header_size = 72;
inline constexpr std::uint16_t k_object_format_version = 1;

struct ObjectHeader {
  std::uint16_t version = k_object_format_version;
  Codec codec = Codec::none;
  std::uint8_t cipher = 0;
  std::uint32_t key_id = 0;
  std::uint64_t plain_size = 0;
  Sha256Digest plain_sha256{};
  std::uint64_t body_size = 0;
};

std::array<std::byte, k_object_header_size> encode_object_header(const ObjectHeader& header);
// Checks magic, header checksum, version, codec and cipher. `what` names the object in errors.
Result<ObjectHeader> decode_object_header(std::span<const std::byte> bytes, std::string_view what);

// Header + encoded body for `plain`. `digest` is the plain content's SHA-256 when the caller
// already has it.
Result<std::vector<std::byte>> build_object(const CompressSpec& spec, std::span<const std::byte> plain,
                                            const Sha256Digest& digest);

// Rewrites the header of an object from build_object() with the content's digest, for
// callers that compute the digest while the body is being compressed.
Result<void> set_object_digest(std::vector<std::byte>& object, const Sha256Digest& digest);

// Decodes a whole stored object and proves it: body size, decoded size and SHA-256 must match
// the header. Any mismatch is ErrorKind::corrupt naming `what`.
struct OpenedObject {
  ObjectHeader header;
  std::vector<std::byte> plain;
};
Result<OpenedObject> open_object(std::span<const std::byte> stored, std::string_view what);

// Writes one object of any size with bounded memory: a placeholder header, the body encoded
// piece by piece, then the real header once size and digest are known. Nothing is visible
// under the key until finish() returns; dropped unfinished, nothing is left behind.
class ObjectStreamWriter {
 public:
  static Result<ObjectStreamWriter> begin(Storage& storage, const std::string& key, const CompressSpec& spec, PutMode mode);
  Result<void> append(std::span<const std::byte> plain);
  // Durable and visible on success; returns the header written.
  Result<ObjectHeader> finish();
  std::uint64_t plain_size() const { return m_header.plain_size; }
  std::uint64_t stored_size() const { return k_object_header_size + m_header.body_size; }

 private:
  ObjectStreamWriter() = default;
  Result<void> flush_encoded();

  std::unique_ptr<ObjectWriter> m_writer;
  std::unique_ptr<Encoder> m_encoder;
  std::unique_ptr<Sha256> m_sha;
  std::vector<std::byte> m_encoded;
  ObjectHeader m_header;
  std::string m_key;
};

// Reads one object of any size with bounded memory: the header is checked on open, the body
// is decoded piece by piece, and the end of the stream proves size and digest against the
// header (and `expected_sha256` when the index knows it). Anything wrong is ErrorKind::corrupt.
class ObjectStreamReader {
 public:
  static Result<ObjectStreamReader> open(Storage& storage, const std::string& key, std::string expected_sha256 = {});
  const ObjectHeader& header() const { return m_header; }
  // Up to out.size() plain bytes; 0 only after the whole object was read and proven.
  Result<std::size_t> read(std::span<std::byte> out);

 private:
  ObjectStreamReader() = default;
  Result<std::size_t> fill();
  Result<void> prove();

  std::unique_ptr<ObjectReader> m_reader;
  std::unique_ptr<Decoder> m_decoder;
  std::unique_ptr<Sha256> m_sha;
  ObjectHeader m_header;
  std::string m_key;
  std::string m_expected_sha256;
  std::vector<std::byte> m_input;
  std::size_t m_input_pos = 0;
  std::uint64_t m_plain_read = 0;
  bool m_input_done = false;
  bool m_proven = false;
};

}  // namespace walvault
