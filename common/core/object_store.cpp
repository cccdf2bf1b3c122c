#include "common/core/object_store.hpp"

#include <array>
#include <cstring>

namespace walvault {

namespace {

constexpr std::size_t k_io_piece = 1u << 20;

Failure corrupt_object(std::string_view what, const std::string& why) {
  return {ErrorKind::corrupt, "stored object '" + std::string(what) + "' is corrupt: " + why};
}

// Sequential reads until `out` is full; fewer bytes only at the end of the object.
Result<std::size_t> read_full(ObjectReader& reader, std::span<std::byte> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto n = reader.read(out.subspan(got));
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    got += *n;
  }
  return got;
}

}  // namespace

ObjectStore::ObjectStore(std::vector<std::unique_ptr<Storage>> storages, RetryPolicy retry) {
  for (auto& storage : storages) storage = make_retrying_storage(std::move(storage), retry);
  if (storages.size() == 1) {
    m_owned = std::move(storages.front());
    m_storage = m_owned.get();
    return;
  }
  auto mirror = std::make_unique<MirrorStorage>(std::move(storages));
  m_mirror = mirror.get();
  m_storage = mirror.get();
  m_owned = std::move(mirror);
  for (std::size_t i = 0; i < m_mirror->member_count(); ++i)
    m_members.push_back(std::unique_ptr<ObjectStore>(new ObjectStore(m_mirror->member(i))));
}

Result<ObjectHeader> ObjectStore::put(const std::string& key, std::span<const std::byte> plain, const CompressSpec& spec,
                                      PutMode mode, const std::function<Sha256Digest()>& digest) {
  ObjectHeader header;
  header.codec = spec.codec;
  std::vector<std::byte> object = encode_object_head_v2(header);
  auto encoder = make_encoder(spec);
  if (auto r = encoder->update(plain, object); !r) return std::unexpected(r.error());
  if (auto r = encoder->finish(object); !r) return std::unexpected(r.error());
  header.plain_size = plain.size();
  header.plain_sha256 = digest ? digest() : sha256(plain);
  header.body_size = object.size() - header.head_size;
  const auto trailer = encode_object_trailer(header);
  object.insert(object.end(), trailer.begin(), trailer.end());
  if (auto r = m_storage->put(key, object, mode); !r) return std::unexpected(r.error());
  return header;
}

Result<ObjectPut> ObjectStore::begin_put(const std::string& key, const CompressSpec& spec, PutMode mode) {
  ObjectPut out;
  auto writer = m_storage->create(key, mode);
  if (!writer) return std::unexpected(writer.error());
  out.m_writer = std::move(*writer);
  out.m_encoder = make_encoder(spec);
  out.m_sha = std::make_unique<Sha256>();
  out.m_header.codec = spec.codec;
  out.m_key = key;
  const std::vector<std::byte> head = encode_object_head_v2(out.m_header);
  if (auto r = out.m_writer->append(head); !r) return std::unexpected(r.error());
  return out;
}

Result<void> ObjectPut::flush_encoded() {
  if (m_encoded.empty()) return {};
  if (auto r = m_writer->append(m_encoded); !r) return r;
  m_header.body_size += m_encoded.size();
  m_encoded.clear();
  return {};
}

Result<void> ObjectPut::append(std::span<const std::byte> plain) {
  if (!m_writer) return fail(ErrorKind::internal, "append to finished object '" + m_key + "'");
  m_sha->update(plain);
  m_header.plain_size += plain.size();
  if (auto r = m_encoder->update(plain, m_encoded); !r) return r;
  // Write out in large pieces: few syscalls (or upload parts), and memory stays near this bound.
  if (m_encoded.size() >= k_io_piece) return flush_encoded();
  return {};
}

Result<ObjectHeader> ObjectPut::finish() {
  if (!m_writer) return fail(ErrorKind::internal, "object '" + m_key + "' finished twice");
  if (auto r = m_encoder->finish(m_encoded); !r) return std::unexpected(r.error());
  if (auto r = flush_encoded(); !r) return std::unexpected(r.error());
  m_header.plain_sha256 = m_sha->finish();
  const auto trailer = encode_object_trailer(m_header);
  auto writer = std::move(m_writer);
  if (auto r = writer->append(trailer); !r) return std::unexpected(r.error());
  if (auto r = writer->commit(); !r) return std::unexpected(r.error());
  return m_header;
}

Result<std::optional<OpenedObject>> ObjectStore::read(const std::string& key, const ReadChecks& checks) {
  auto stored = m_storage->get(key);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return std::optional<OpenedObject>();
  const std::string& what = checks.what.empty() ? key : checks.what;
  auto opened = open_object(**stored, what);
  if (!opened) return std::unexpected(opened.error());
  if (checks.first_piece)
    if (auto r = checks.first_piece(opened->plain, opened->header); !r) return std::unexpected(r.error());
  if (!checks.expected_sha256.empty() && to_hex(opened->header.plain_sha256) != checks.expected_sha256)
    return std::unexpected(corrupt_object(what, "SHA-256 of the content does not match the index"));
  return std::optional<OpenedObject>(std::move(*opened));
}

// Opens the object and decodes its head, and for version 2 its trailer (a ranged read of the
// same object), so sizes and digest are known before the body is read. The reader is left at
// the first body byte.
Result<std::optional<std::unique_ptr<ObjectReader>>> ObjectStore::open_reader(const std::string& key, ObjectHeader& header,
                                                                              const std::string& what) {
  auto opened = m_storage->open_read(key);
  if (!opened || !*opened) return opened;
  ObjectReader& reader = ***opened;
  std::array<std::byte, k_object_header_size> head{};
  // Twelve bytes tell the version and head size; a version 1 header is 72 bytes.
  auto got = read_full(reader, std::span<std::byte>(head).first(12));
  if (!got) return std::unexpected(got.error());
  std::size_t have = *got;
  std::size_t wanted = k_object_header_size;
  if (have == 12 && std::memcmp(head.data() + 8, "\x02\x00", 2) == 0) {
    const std::size_t head_size = static_cast<std::uint8_t>(head[10]) | static_cast<std::size_t>(static_cast<std::uint8_t>(head[11])) << 8;
    if (head_size >= k_object_head_v2_size && head_size <= k_object_header_size) wanted = head_size;
  }
  if (have == 12) {
    auto more = read_full(reader, std::span<std::byte>(head).subspan(12, wanted - 12));
    if (!more) return std::unexpected(more.error());
    have += *more;
  }
  auto decoded = decode_object_header(std::span<const std::byte>(head.data(), have), what);
  if (!decoded) return std::unexpected(decoded.error());
  header = *decoded;
  if (header.head_size != have)
    return std::unexpected(corrupt_object(what, "head of " + std::to_string(header.head_size) + " bytes is not supported"));
  if (const std::size_t trailer_size = header.trailer_size()) {
    if (reader.size() < header.head_size + trailer_size)
      return std::unexpected(corrupt_object(what, "shorter than its head and trailer"));
    std::array<std::byte, k_object_trailer_size> trailer{};
    if (auto r = reader.read_at(reader.size() - trailer_size, trailer); !r) return std::unexpected(r.error());
    if (auto r = decode_object_trailer(trailer, header, what); !r) return std::unexpected(r.error());
  }
  if (reader.size() != header.stored_size())
    return std::unexpected(corrupt_object(what, std::to_string(reader.size()) + " bytes on storage, the header says " +
                                                    std::to_string(header.stored_size())));
  return opened;
}

Result<std::optional<ObjectHeader>> ObjectStore::header(const std::string& key, std::string_view what) {
  ObjectHeader header;
  auto reader = open_reader(key, header, what.empty() ? key : std::string(what));
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return std::optional<ObjectHeader>();
  return std::optional<ObjectHeader>(header);
}

Result<std::optional<ObjectStream>> ObjectStore::open(const std::string& key, ReadChecks checks) {
  ObjectStream out;
  if (checks.what.empty()) checks.what = key;
  auto reader = open_reader(key, out.m_header, checks.what);
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return std::optional<ObjectStream>();
  out.m_reader = std::move(**reader);
  out.m_checks = std::move(checks);
  out.m_body_left = out.m_header.body_size;
  auto decoder = make_decoder(out.m_header.codec);
  if (!decoder) return std::unexpected(decoder.error());
  out.m_decoder = std::move(*decoder);
  out.m_sha = std::make_unique<Sha256>();
  out.m_input.reserve(k_io_piece);
  return std::optional<ObjectStream>(std::move(out));
}

Result<ObjectStream> ObjectStore::open_listed(const std::string& key, ReadChecks checks) {
  auto stream = open(key, std::move(checks));
  if (!stream) return std::unexpected(stream.error());
  if (!*stream)
    return fail(ErrorKind::corrupt, "stored object '" + describe() + "/" + key + "' is listed in the repository's records and is gone");
  return std::move(**stream);
}

std::unexpected<Failure> ObjectStream::corrupt(const std::string& why) const {
  return std::unexpected(corrupt_object(m_checks.what, why));
}

Result<std::size_t> ObjectStream::fill() {
  m_input.resize(static_cast<std::size_t>(std::min<std::uint64_t>(k_io_piece, m_body_left)));
  auto n = read_full(*m_reader, m_input);
  if (!n) return std::unexpected(n.error());
  if (*n < m_input.size()) return corrupt("the body ended " + std::to_string(m_body_left - *n) + " bytes early");
  m_body_left -= *n;
  m_input_pos = 0;
  if (*n == 0) m_input_done = true;
  return *n;
}

Result<void> ObjectStream::prove() {
  if (auto r = m_decoder->finish(); !r) return corrupt(r.error().message);
  if (m_plain_read != m_header.plain_size)
    return corrupt("decodes to " + std::to_string(m_plain_read) + " bytes, the header says " + std::to_string(m_header.plain_size));
  const Sha256Digest digest = m_sha->finish();
  if (digest != m_header.plain_sha256) return corrupt("SHA-256 of the content does not match its header");
  if (!m_checks.expected_sha256.empty() && to_hex(digest) != m_checks.expected_sha256)
    return corrupt("SHA-256 of the content does not match the index");
  m_proven = true;
  return {};
}

Result<std::size_t> ObjectStream::read(std::span<std::byte> out) {
  if (out.empty()) return fail(ErrorKind::internal, "read of '" + m_checks.what + "' into an empty buffer");
  if (m_proven) return 0;
  for (;;) {
    // Drain what the decoder holds before asking for more input, and prove only once it is empty.
    auto produced = m_decoder->decode_some(m_input, m_input_pos, out);
    if (!produced) return corrupt(produced.error().message);
    if (*produced > 0) {
      const std::span<const std::byte> piece = out.first(*produced);
      if (m_plain_read + *produced > m_header.plain_size)
        return corrupt("decodes to more than the header's " + std::to_string(m_header.plain_size) + " bytes");
      if (m_plain_read == 0 && m_checks.first_piece)
        if (auto r = m_checks.first_piece(piece, m_header); !r) return std::unexpected(r.error());
      m_plain_read += *produced;
      m_sha->update(piece);
      return *produced;
    }
    if (m_input_done) {
      if (m_input_pos != m_input.size()) return corrupt("trailing bytes after the compressed data");
      if (auto r = prove(); !r) return std::unexpected(r.error());
      return 0;
    }
    if (auto n = fill(); !n) return std::unexpected(n.error());
  }
}

}  // namespace walvault
