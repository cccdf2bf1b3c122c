#pragma once
// The bytes of a repository object, both format versions. Internal to the object layer
// (common/core/object_store.hpp): no other module includes this. docs/repository-format.md.
//
// Version 1 (written by walvault 0.1; read forever): a fixed 72-byte header, then the body.
//   0  8  magic "WVOBJ\r\n\x1a"
//   8  2  format version (1)
//  10  1  codec (0 none, 1 zstd)
//  11  1  cipher (0 none)
//  12  4  key id (0 when cipher is none)
//  16  8  plain size
//  24 32  SHA-256 of the plain content
//  56  8  body size (bytes after the header)
//  64  8  first 8 bytes of SHA-256 over bytes 0..63 (header check)
//
// Version 2: a head written before the body (everything known when a write starts, so an
// object store's streamed upload never rewrites earlier bytes), the body, and a trailer with
// what is known only at the end.
//   head (H bytes, H in the head itself; 48 without a cipher, 108 with cipher 1)
//   0  8  magic
//   8  2  format version (2)
//  10  2  head size H
//  12  1  codec
//  13  1  cipher (0 none, 1 AES-256-GCM frames)
//  14  2  flags (0)
//  16  4  key id
//  20  4  frame size: encoded (compressed) bytes per authenticated frame (0: one unframed body)
//  24 16  nonce prefix (zeros without a cipher)
//  40  .  cipher data (H - 48 bytes: the wrapped data key, 60 bytes with cipher 1)
// H-8  8  head check: first 8 bytes of SHA-256 over bytes 0..H-9
//   body: the encoded content (with a cipher: frames, each followed by its 16-byte tag)
//   trailer (the last 56 bytes)
//   0  8  plain size
//   8 32  SHA-256 of the plain content (with a cipher: sealed by the data key)
//  40  8  body size
//  48  8  trailer check: first 8 bytes of SHA-256 over the head check and trailer bytes 0..47
//  56 16  with a cipher only: the sealed digest's tag (the trailer is then 72 bytes)
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

inline constexpr std::size_t k_object_header_size = 72;  // version 1
inline constexpr std::uint16_t k_object_format_version = 1;
inline constexpr std::uint16_t k_object_format_v2 = 2;
inline constexpr std::size_t k_object_head_v2_size = 48;  // without a cipher
inline constexpr std::size_t k_object_trailer_size = 56;  // without a cipher
inline constexpr std::size_t k_object_digest_tag_size = 16;
// Enough leading bytes to decode the head of any version this walvault reads.
inline constexpr std::size_t k_object_head_max = 4096;

struct ObjectHeader {
  std::uint16_t version = k_object_format_version;
  Codec codec = Codec::none;
  std::uint8_t cipher = 0;
  std::uint32_t key_id = 0;
  std::uint64_t plain_size = 0;
  Sha256Digest plain_sha256{};
  std::uint64_t body_size = 0;
  // Version 2.
  std::uint32_t head_size = k_object_header_size;  // bytes before the body
  std::uint32_t frame_size = 0;
  std::array<std::uint8_t, 16> nonce{};
  std::array<std::uint8_t, 8> head_check{};  // binds the trailer to this head
  // With a cipher (object_cipher.hpp): the wrapped data key (head bytes 40..H-9), and the
  // content digest as the trailer holds it, sealed, with its tag.
  std::vector<std::byte> cipher_data;
  Sha256Digest sealed_digest{};
  std::array<std::byte, 16> digest_tag{};

  // Bytes after the body: 0 for version 1; 16 more with a cipher (the digest's tag).
  std::size_t trailer_size() const {
    return version == k_object_format_v2 ? k_object_trailer_size + (cipher ? k_object_digest_tag_size : 0) : 0;
  }
  std::uint64_t stored_size() const { return head_size + body_size + trailer_size(); }
};

std::array<std::byte, k_object_header_size> encode_object_header(const ObjectHeader& header);
// Decodes the start of an object of either version. Version 1: the whole header. Version 2:
// the head (codec, cipher, key, head size); sizes and digest come from its trailer. Checks
// magic, head checksum, version, codec, cipher. `what` names the object in errors.
Result<ObjectHeader> decode_object_header(std::span<const std::byte> bytes, std::string_view what);

// Version 2: the head for `header` (codec, cipher, key id, nonce), with its check filled in
// (and copied into header.head_check), and the trailer once sizes and digest are known.
std::vector<std::byte> encode_object_head_v2(ObjectHeader& header);
// With a cipher the trailer carries sealed_digest and digest_tag (ObjectCipher::seal_digest).
std::vector<std::byte> encode_object_trailer(const ObjectHeader& header);
// Fills plain size, digest and body size of a version 2 header from its trailer.
Result<void> decode_object_trailer(std::span<const std::byte> trailer, ObjectHeader& header, std::string_view what);

// Version 1 header + encoded body for `plain` (the format read forever; the object layer
// writes version 2). `digest` is the plain content's SHA-256 when the caller has it.
Result<std::vector<std::byte>> build_object(const CompressSpec& spec, std::span<const std::byte> plain,
                                            const Sha256Digest& digest);
// Version 2 head + body + trailer for `plain`.
Result<std::vector<std::byte>> build_object_v2(const CompressSpec& spec, std::span<const std::byte> plain,
                                               const Sha256Digest& digest);

// Decodes a whole stored object of either version and proves it: body size, decoded size and
// SHA-256 must match the header (or trailer). Any mismatch is ErrorKind::corrupt naming `what`.
struct OpenedObject {
  ObjectHeader header;
  std::vector<std::byte> plain;
};
Result<OpenedObject> open_object(std::span<const std::byte> stored, std::string_view what);

}  // namespace walvault
