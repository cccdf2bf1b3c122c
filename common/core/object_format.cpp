#include "common/core/object_format.hpp"

#include "common/base/byte_order.hpp"

#include <cstring>
#include <string>

namespace walvault {

namespace {

constexpr char k_magic[8] = {'W', 'V', 'O', 'B', 'J', '\r', '\n', '\x1a'};

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
  auto corrupt = [&](const std::string& why) {
    return fail(ErrorKind::corrupt, "stored object '" + std::string(what) + "' is corrupt: " + why);
  };
  if (bytes.size() < k_object_header_size) return corrupt("shorter than its header");
  if (std::memcmp(bytes.data(), k_magic, 8) != 0) return corrupt("bad magic (not a walvault object)");
  const Sha256Digest check = sha256(bytes.first(64));
  if (std::memcmp(bytes.data() + 64, check.data(), 8) != 0) return corrupt("header checksum mismatch");
  ObjectHeader header;
  header.version = load_le<std::uint16_t>(bytes, 8);
  if (header.version != k_object_format_version)
    return corrupt("format version " + std::to_string(header.version) + " is not supported by this walvault");
  const auto codec = std::to_integer<std::uint8_t>(bytes[10]);
  if (codec > static_cast<std::uint8_t>(Codec::zstd)) return corrupt("unknown codec " + std::to_string(codec));
  header.codec = static_cast<Codec>(codec);
  header.cipher = std::to_integer<std::uint8_t>(bytes[11]);
  if (header.cipher != 0) return corrupt("cipher " + std::to_string(header.cipher) + " is not supported by this walvault");
  header.key_id = load_le<std::uint32_t>(bytes, 12);
  header.plain_size = load_le<std::uint64_t>(bytes, 16);
  std::memcpy(header.plain_sha256.data(), bytes.data() + 24, 32);
  header.body_size = load_le<std::uint64_t>(bytes, 56);
  return header;
}

Result<std::vector<std::byte>> build_object(const CompressSpec& spec, std::span<const std::byte> plain,
                                            const Sha256Digest& digest) {
  std::vector<std::byte> out(k_object_header_size);
  auto encoder = make_encoder(spec);
  if (auto r = encoder->update(plain, out); !r) return std::unexpected(r.error());
  if (auto r = encoder->finish(out); !r) return std::unexpected(r.error());
  ObjectHeader header;
  header.codec = spec.codec;
  header.plain_size = plain.size();
  header.plain_sha256 = digest;
  header.body_size = out.size() - k_object_header_size;
  const auto encoded = encode_object_header(header);
  std::memcpy(out.data(), encoded.data(), encoded.size());
  return out;
}

Result<void> set_object_digest(std::vector<std::byte>& object, const Sha256Digest& digest) {
  auto header = decode_object_header(object, "new object");
  if (!header) return std::unexpected(header.error());
  header->plain_sha256 = digest;
  const auto encoded = encode_object_header(*header);
  std::memcpy(object.data(), encoded.data(), encoded.size());
  return {};
}

Result<OpenedObject> open_object(std::span<const std::byte> stored, std::string_view what) {
  auto header = decode_object_header(stored, what);
  if (!header) return std::unexpected(header.error());
  auto corrupt = [&](const std::string& why) {
    return fail(ErrorKind::corrupt, "stored object '" + std::string(what) + "' is corrupt: " + why);
  };
  const std::span<const std::byte> body = stored.subspan(k_object_header_size);
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
