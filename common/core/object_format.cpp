#include "common/core/object_format.hpp"

#include "common/base/byte_order.hpp"
#include "common/core/object_cipher.hpp"

#include <cstring>
#include <string>

namespace walvault {

namespace {

constexpr char k_magic[8] = {'W', 'V', 'O', 'B', 'J', '\r', '\n', '\x1a'};

Failure corrupt_object(std::string_view what, const std::string& why) {
  return {ErrorKind::corrupt, "stored object '" + std::string(what) + "' is corrupt: " + why};
}

bool check_matches(std::span<const std::byte> covered, std::span<const std::byte> check) {
  const Sha256Digest digest = sha256(covered);
  return std::memcmp(check.data(), digest.data(), 8) == 0;
}

Result<Codec> decode_codec(std::uint8_t value, std::string_view what) {
  if (value > static_cast<std::uint8_t>(Codec::zstd))
    return std::unexpected(corrupt_object(what, "unknown codec " + std::to_string(value)));
  return static_cast<Codec>(value);
}

Result<ObjectHeader> decode_head_v2(std::span<const std::byte> bytes, std::size_t head_size, std::string_view what) {
  ObjectHeader header;
  header.version = k_object_format_v2;
  header.head_size = static_cast<std::uint32_t>(head_size);
  auto codec = decode_codec(std::to_integer<std::uint8_t>(bytes[12]), what);
  if (!codec) return std::unexpected(codec.error());
  header.codec = *codec;
  header.cipher = std::to_integer<std::uint8_t>(bytes[13]);
  if (header.cipher > k_cipher_aes256gcm)
    return std::unexpected(corrupt_object(what, "cipher " + std::to_string(header.cipher) + " is not supported by this walvault"));
  if (const auto flags = load_le<std::uint16_t>(bytes, 14); flags != 0)
    return std::unexpected(corrupt_object(what, "flags " + std::to_string(flags) + " are not supported by this walvault"));
  header.key_id = load_le<std::uint32_t>(bytes, 16);
  header.frame_size = load_le<std::uint32_t>(bytes, 20);
  std::memcpy(header.nonce.data(), bytes.data() + 24, header.nonce.size());
  if (header.cipher == k_cipher_none) {
    if (header.frame_size != 0) return std::unexpected(corrupt_object(what, "a frame size without a cipher"));
    if (head_size != k_object_head_v2_size)
      return std::unexpected(corrupt_object(what, "head of " + std::to_string(head_size) + " bytes without a cipher"));
  } else {
    if (header.frame_size == 0 || header.frame_size > (64u << 20))
      return std::unexpected(corrupt_object(what, "frame size " + std::to_string(header.frame_size) + " is out of bounds"));
    if (head_size != k_object_head_v2_size + k_wrapped_key_size)
      return std::unexpected(corrupt_object(what, "head of " + std::to_string(head_size) + " bytes for cipher 1"));
    header.cipher_data.assign(bytes.begin() + 40, bytes.begin() + static_cast<std::ptrdiff_t>(head_size - 8));
  }
  std::memcpy(header.head_check.data(), bytes.data() + head_size - 8, 8);
  return header;
}

}  // namespace

std::array<std::byte, k_object_header_size> encode_object_header(const ObjectHeader& header) {
  std::array<std::byte, k_object_header_size> out{};
  std::memcpy(out.data(), k_magic, 8);
  store_le<std::uint16_t>(out, 8, header.version);
  out[10] = static_cast<std::byte>(header.codec);
  out[11] = static_cast<std::byte>(header.cipher);
  store_le<std::uint32_t>(out, 12, header.key_id);
  store_le<std::uint64_t>(out, 16, header.plain_size);
  std::memcpy(out.data() + 24, header.plain_sha256.data(), 32);
  store_le<std::uint64_t>(out, 56, header.body_size);
  const Sha256Digest check = sha256(std::span<const std::byte>(out.data(), 64));
  std::memcpy(out.data() + 64, check.data(), 8);
  return out;
}

Result<ObjectHeader> decode_object_header(std::span<const std::byte> bytes, std::string_view what) {
  auto corrupt = [&](const std::string& why) { return std::unexpected(corrupt_object(what, why)); };
  if (bytes.size() < 12) return corrupt("shorter than its header");
  if (std::memcmp(bytes.data(), k_magic, 8) != 0) return corrupt("bad magic (not a walvault object)");
  const auto version = load_le<std::uint16_t>(bytes, 8);
  // Version 2 names its head size; its check sits at the end of the head. A version 1 header
  // has codec and cipher there instead, which never make a valid head size, so the two
  // layouts cannot be mistaken for each other.
  if (version == k_object_format_v2) {
    const std::size_t head_size = load_le<std::uint16_t>(bytes, 10);
    if (head_size >= k_object_head_v2_size && head_size <= k_object_head_max && bytes.size() >= head_size &&
        check_matches(bytes.first(head_size - 8), bytes.subspan(head_size - 8, 8)))
      return decode_head_v2(bytes, head_size, what);
    if (head_size >= k_object_head_v2_size && head_size <= k_object_head_max && bytes.size() < head_size)
      return corrupt("shorter than its header");
  }
  if (bytes.size() < k_object_header_size) return corrupt("shorter than its header");
  if (!check_matches(bytes.first(64), bytes.subspan(64, 8))) {
    if (version > k_object_format_v2)
      return corrupt("format version " + std::to_string(version) + " is not supported by this walvault (or its header is damaged)");
    return corrupt("header checksum mismatch");
  }
  ObjectHeader header;
  header.version = version;
  if (header.version != k_object_format_version)
    return corrupt("format version " + std::to_string(header.version) + " is not supported by this walvault");
  auto codec = decode_codec(std::to_integer<std::uint8_t>(bytes[10]), what);
  if (!codec) return std::unexpected(codec.error());
  header.codec = *codec;
  header.cipher = std::to_integer<std::uint8_t>(bytes[11]);
  if (header.cipher != 0) return corrupt("cipher " + std::to_string(header.cipher) + " is not supported by this walvault");
  header.key_id = load_le<std::uint32_t>(bytes, 12);
  header.plain_size = load_le<std::uint64_t>(bytes, 16);
  std::memcpy(header.plain_sha256.data(), bytes.data() + 24, 32);
  header.body_size = load_le<std::uint64_t>(bytes, 56);
  header.head_size = k_object_header_size;
  return header;
}

std::vector<std::byte> encode_object_head_v2(ObjectHeader& header) {
  header.version = k_object_format_v2;
  header.head_size = static_cast<std::uint32_t>(k_object_head_v2_size + header.cipher_data.size());
  std::vector<std::byte> out(header.head_size);
  std::memcpy(out.data(), k_magic, 8);
  store_le<std::uint16_t>(out, 8, header.version);
  store_le<std::uint16_t>(out, 10, static_cast<std::uint16_t>(header.head_size));
  out[12] = static_cast<std::byte>(header.codec);
  out[13] = static_cast<std::byte>(header.cipher);
  store_le<std::uint16_t>(out, 14, 0);
  store_le<std::uint32_t>(out, 16, header.key_id);
  store_le<std::uint32_t>(out, 20, header.frame_size);
  std::memcpy(out.data() + 24, header.nonce.data(), header.nonce.size());
  if (!header.cipher_data.empty()) std::memcpy(out.data() + 40, header.cipher_data.data(), header.cipher_data.size());
  const Sha256Digest check = sha256(std::span<const std::byte>(out.data(), out.size() - 8));
  std::memcpy(out.data() + out.size() - 8, check.data(), 8);
  std::memcpy(header.head_check.data(), check.data(), 8);
  return out;
}

std::vector<std::byte> encode_object_trailer(const ObjectHeader& header) {
  std::vector<std::byte> out(header.trailer_size());
  store_le<std::uint64_t>(out, 0, header.plain_size);
  std::memcpy(out.data() + 8, header.cipher ? header.sealed_digest.data() : header.plain_sha256.data(), 32);
  store_le<std::uint64_t>(out, 40, header.body_size);
  Sha256 check;
  check.update(std::as_bytes(std::span(header.head_check)));
  check.update(std::span<const std::byte>(out.data(), 48));
  const Sha256Digest digest = check.finish();
  std::memcpy(out.data() + 48, digest.data(), 8);
  if (header.cipher) std::memcpy(out.data() + k_object_trailer_size, header.digest_tag.data(), k_object_digest_tag_size);
  return out;
}

Result<void> decode_object_trailer(std::span<const std::byte> trailer, ObjectHeader& header, std::string_view what) {
  if (trailer.size() != header.trailer_size()) return std::unexpected(corrupt_object(what, "shorter than its head and trailer"));
  Sha256 check;
  check.update(std::as_bytes(std::span(header.head_check)));
  check.update(trailer.first(48));
  const Sha256Digest digest = check.finish();
  if (std::memcmp(trailer.data() + 48, digest.data(), 8) != 0)
    return std::unexpected(corrupt_object(what, "trailer checksum mismatch (truncated, extended, or not this object's trailer)"));
  header.plain_size = load_le<std::uint64_t>(trailer, 0);
  // Sealed with a cipher: the object layer opens it with the data key (plain_sha256 stays unknown until then).
  std::memcpy(header.cipher ? header.sealed_digest.data() : header.plain_sha256.data(), trailer.data() + 8, 32);
  header.body_size = load_le<std::uint64_t>(trailer, 40);
  if (header.cipher) std::memcpy(header.digest_tag.data(), trailer.data() + k_object_trailer_size, k_object_digest_tag_size);
  return {};
}

Result<std::vector<std::byte>> build_object(const CompressSpec& spec, std::span<const std::byte> plain,
                                            const Sha256Digest& digest) {
  std::vector<std::byte> out(k_object_header_size);
  auto encoder = make_encoder(spec);
  if (auto r = encoder->encode_whole(plain, out); !r) return std::unexpected(r.error());
  ObjectHeader header;
  header.codec = spec.codec;
  header.plain_size = plain.size();
  header.plain_sha256 = digest;
  header.body_size = out.size() - k_object_header_size;
  const auto encoded = encode_object_header(header);
  std::memcpy(out.data(), encoded.data(), encoded.size());
  return out;
}

Result<std::vector<std::byte>> build_object_v2(const CompressSpec& spec, std::span<const std::byte> plain,
                                               const Sha256Digest& digest) {
  ObjectHeader header;
  header.codec = spec.codec;
  std::vector<std::byte> out = encode_object_head_v2(header);
  auto encoder = make_encoder(spec);
  if (auto r = encoder->encode_whole(plain, out); !r) return std::unexpected(r.error());
  header.plain_size = plain.size();
  header.plain_sha256 = digest;
  header.body_size = out.size() - header.head_size;
  const auto trailer = encode_object_trailer(header);
  out.insert(out.end(), trailer.begin(), trailer.end());
  return out;
}

Result<OpenedObject> open_object(std::span<const std::byte> stored, std::string_view what) {
  auto header = decode_object_header(stored, what);
  if (!header) return std::unexpected(header.error());
  auto corrupt = [&](const std::string& why) { return std::unexpected(corrupt_object(what, why)); };
  if (header->cipher) return fail(ErrorKind::internal, "stored object '" + std::string(what) + "' is encrypted: only the object layer opens it");
  const std::size_t trailer_size = header->trailer_size();
  if (stored.size() < header->head_size + trailer_size) return corrupt("shorter than its head and trailer");
  if (trailer_size)
    if (auto r = decode_object_trailer(stored.last(trailer_size), *header, what); !r) return std::unexpected(r.error());
  const std::span<const std::byte> body = stored.subspan(header->head_size, stored.size() - header->head_size - trailer_size);
  if (body.size() != header->body_size)
    return corrupt("body is " + std::to_string(body.size()) + " bytes, header says " + std::to_string(header->body_size));
  auto plain = decode_all(header->codec, body, header->plain_size);
  if (!plain) return corrupt(plain.error().message);
  if (plain->size() != header->plain_size)
    return corrupt("decodes to " + std::to_string(plain->size()) + " bytes, header says " + std::to_string(header->plain_size));
  if (sha256(*plain) != header->plain_sha256) return corrupt("SHA-256 of the content does not match the header");
  return OpenedObject{*header, std::move(*plain)};
}

}  // namespace walvault
