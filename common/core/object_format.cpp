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

Result<ObjectStreamWriter> ObjectStreamWriter::begin(Storage& storage, const std::string& key, const CompressSpec& spec,
                                                     PutMode mode) {
  ObjectStreamWriter out;
  auto writer = storage.create(key, mode);
  if (!writer) return std::unexpected(writer.error());
  out.m_writer = std::move(*writer);
  out.m_encoder = make_encoder(spec);
  out.m_sha = std::make_unique<Sha256>();
  out.m_header.codec = spec.codec;
  out.m_key = key;
  // The real header goes over these bytes at commit.
  const std::array<std::byte, k_object_header_size> placeholder{};
  if (auto r = out.m_writer->append(placeholder); !r) return std::unexpected(r.error());
  return out;
}

Result<void> ObjectStreamWriter::flush_encoded() {
  if (m_encoded.empty()) return {};
  if (auto r = m_writer->append(m_encoded); !r) return r;
  m_header.body_size += m_encoded.size();
  m_encoded.clear();
  return {};
}

Result<void> ObjectStreamWriter::append(std::span<const std::byte> plain) {
  if (!m_writer) return fail(ErrorKind::internal, "append to finished object '" + m_key + "'");
  m_sha->update(plain);
  m_header.plain_size += plain.size();
  if (auto r = m_encoder->update(plain, m_encoded); !r) return r;
  // Write out in large pieces: few syscalls, and memory stays at about this bound.
  if (m_encoded.size() >= (1u << 20)) return flush_encoded();
  return {};
}

Result<ObjectHeader> ObjectStreamWriter::finish() {
  if (!m_writer) return fail(ErrorKind::internal, "object '" + m_key + "' finished twice");
  if (auto r = m_encoder->finish(m_encoded); !r) return std::unexpected(r.error());
  if (auto r = flush_encoded(); !r) return std::unexpected(r.error());
  m_header.plain_sha256 = m_sha->finish();
  const auto head = encode_object_header(m_header);
  auto writer = std::move(m_writer);
  if (auto r = writer->commit(head); !r) return std::unexpected(r.error());
  return m_header;
}

Result<ObjectStreamReader> ObjectStreamReader::open(Storage& storage, const std::string& key, std::string expected_sha256) {
  ObjectStreamReader out;
  auto reader = storage.open_read(key);
  if (!reader) return std::unexpected(reader.error());
  // Callers open what a listing or a record (backup.json) named: gone is damage, not absence.
  if (!*reader)
    return fail(ErrorKind::corrupt, "stored object '" + storage.describe() + "/" + key + "' is listed in the repository's records and is gone");
  out.m_reader = std::move(**reader);
  out.m_key = key;
  out.m_expected_sha256 = std::move(expected_sha256);
  std::array<std::byte, k_object_header_size> head{};
  std::size_t got = 0;
  while (got < head.size()) {
    auto n = out.m_reader->read(std::span<std::byte>(head).subspan(got));
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    got += *n;
  }
  auto header = decode_object_header(std::span<const std::byte>(head.data(), got), key);
  if (!header) return std::unexpected(header.error());
  out.m_header = *header;
  if (out.m_reader->size() != k_object_header_size + header->body_size)
    return fail(ErrorKind::corrupt, "stored object '" + key + "' is corrupt: " + std::to_string(out.m_reader->size()) +
                                        " bytes on storage, the header says " +
                                        std::to_string(k_object_header_size + header->body_size));
  auto decoder = make_decoder(header->codec);
  if (!decoder) return std::unexpected(decoder.error());
  out.m_decoder = std::move(*decoder);
  out.m_sha = std::make_unique<Sha256>();
  out.m_input.reserve(1u << 20);
  return out;
}

Result<std::size_t> ObjectStreamReader::fill() {
  m_input.resize(1u << 20);
  auto n = m_reader->read(m_input);
  if (!n) return std::unexpected(n.error());
  m_input.resize(*n);
  m_input_pos = 0;
  if (*n == 0) m_input_done = true;
  return *n;
}

Result<void> ObjectStreamReader::prove() {
  auto corrupt = [&](const std::string& why) {
    return fail(ErrorKind::corrupt, "stored object '" + m_key + "' is corrupt: " + why);
  };
  if (auto r = m_decoder->finish(); !r) return corrupt(r.error().message);
  if (m_plain_read != m_header.plain_size)
    return corrupt("decodes to " + std::to_string(m_plain_read) + " bytes, the header says " + std::to_string(m_header.plain_size));
  const Sha256Digest digest = m_sha->finish();
  if (digest != m_header.plain_sha256) return corrupt("SHA-256 of the content does not match its header");
  if (!m_expected_sha256.empty() && to_hex(digest) != m_expected_sha256)
    return corrupt("SHA-256 of the content does not match the index");
  m_proven = true;
  return {};
}

Result<std::size_t> ObjectStreamReader::read(std::span<std::byte> out) {
  if (out.empty()) return fail(ErrorKind::internal, "read of '" + m_key + "' into an empty buffer");
  if (m_proven) return 0;
  for (;;) {
    // Drain what zstd holds before asking for more input, and prove only once it is empty.
    auto produced = m_decoder->decode_some(m_input, m_input_pos, out);
    if (!produced) return fail(ErrorKind::corrupt, "stored object '" + m_key + "' is corrupt: " + produced.error().message);
    if (*produced > 0) {
      m_plain_read += *produced;
      if (m_plain_read > m_header.plain_size)
        return fail(ErrorKind::corrupt, "stored object '" + m_key + "' is corrupt: decodes to more than the header's " +
                                            std::to_string(m_header.plain_size) + " bytes");
      m_sha->update(out.first(*produced));
      return *produced;
    }
    if (m_input_done) {
      if (auto r = prove(); !r) return std::unexpected(r.error());
      return 0;
    }
    if (auto n = fill(); !n) return std::unexpected(n.error());
  }
}

}  // namespace walvault
