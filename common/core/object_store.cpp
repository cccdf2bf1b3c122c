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

// A whole stored object already in memory, read like one on storage (the cipher path of read()).
class MemoryReader final : public ObjectReader {
 public:
  explicit MemoryReader(std::vector<std::byte> bytes) : m_bytes(std::move(bytes)) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    const std::size_t n = std::min(out.size(), m_bytes.size() - m_pos);
    // memcpy's pointers must not be null even for 0 bytes, and an empty vector's data() may be.
    if (n > 0) std::memcpy(out.data(), m_bytes.data() + m_pos, n);
    m_pos += n;
    return n;
  }
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset > m_bytes.size() || out.size() > m_bytes.size() - offset)
      return fail(ErrorKind::internal, "ranged read past the end of an object in memory");
    if (!out.empty()) std::memcpy(out.data(), m_bytes.data() + offset, out.size());
    return {};
  }
  std::uint64_t size() const override { return m_bytes.size(); }

 private:
  std::vector<std::byte> m_bytes;
  std::size_t m_pos = 0;
};

// Seals `encoded` into `out` as frames of `frame_size` bytes, each followed by its tag. A frame
// is sealed only when more bytes follow it, so the last frame (marked as such) is known when
// `finish`; what is not sealed yet stays at the front of `encoded`.
Result<void> seal_frames(ObjectCipher& cipher, std::uint32_t& index, std::uint32_t frame_size, std::vector<std::byte>& encoded,
                         bool finish, std::vector<std::byte>& out) {
  std::size_t pos = 0;
  auto seal = [&](std::size_t size, bool last) -> Result<void> {
    const std::size_t at = out.size();
    out.resize(at + size + k_cipher_tag_size);
    if (size > 0) std::memcpy(out.data() + at, encoded.data() + pos, size);  // encoded may be empty (a 0-byte object)
    const std::span<std::byte> frame(out.data() + at, size);
    const std::span<std::byte> tag(out.data() + at + size, k_cipher_tag_size);
    pos += size;
    return cipher.seal_frame(index++, last, frame, tag);
  };
  while (encoded.size() - pos > frame_size)
    if (auto r = seal(frame_size, false); !r) return r;
  if (finish)
    if (auto r = seal(encoded.size() - pos, true); !r) return r;
  encoded.erase(encoded.begin(), encoded.begin() + static_cast<std::ptrdiff_t>(pos));
  return {};
}

}  // namespace

void ObjectStore::set_keys(std::shared_ptr<const Keyring> keys) {
  for (auto& member : m_members) member->set_keys(keys);
  m_keys = std::move(keys);
}

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
  std::optional<ObjectCipher> cipher;
  if (const SecretKey* kek = m_keys ? m_keys->current() : nullptr) {
    auto created = ObjectCipher::create(*kek, key, header);
    if (!created) return std::unexpected(created.error());
    cipher = std::move(*created);
  }
  std::vector<std::byte> object = encode_object_head_v2(header);
  std::vector<std::byte> encoded;
  auto encoder = make_encoder(spec);
  std::vector<std::byte>& body = cipher ? encoded : object;
  if (auto r = encoder->encode_whole(plain, body); !r) return std::unexpected(r.error());
  if (cipher) {
    std::uint32_t index = 0;
    if (auto r = seal_frames(*cipher, index, header.frame_size, encoded, true, object); !r) return std::unexpected(r.error());
  }
  header.plain_size = plain.size();
  header.plain_sha256 = digest ? digest() : sha256(plain);
  header.body_size = object.size() - header.head_size;
  if (cipher)
    if (auto r = cipher->seal_digest(header); !r) return std::unexpected(r.error());
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
  if (const SecretKey* kek = m_keys ? m_keys->current() : nullptr) {
    auto created = ObjectCipher::create(*kek, key, out.m_header);
    if (!created) return std::unexpected(created.error());
    out.m_cipher = std::move(*created);
  }
  const std::vector<std::byte> head = encode_object_head_v2(out.m_header);
  if (auto r = out.m_writer->append(head); !r) return std::unexpected(r.error());
  return out;
}

Result<void> ObjectPut::flush_encoded(bool finish) {
  std::vector<std::byte>* out = &m_encoded;
  if (m_cipher) {
    m_sealed.clear();
    if (auto r = seal_frames(*m_cipher, m_frame, m_header.frame_size, m_encoded, finish, m_sealed); !r) return r;
    out = &m_sealed;
  }
  if (out->empty()) return {};
  if (auto r = m_writer->append(*out); !r) return r;
  m_header.body_size += out->size();
  out->clear();
  return {};
}

Result<void> ObjectPut::append(std::span<const std::byte> plain) {
  if (!m_writer) return fail(ErrorKind::internal, "append to finished object '" + m_key + "'");
  m_sha->update(plain);
  m_header.plain_size += plain.size();
  if (auto r = m_encoder->update(plain, m_encoded); !r) return r;
  // Write out in large pieces: few syscalls (or upload parts), and memory stays near this bound.
  // (With a cipher, whole frames: the frame size is the same 1 MiB.)
  if (m_encoded.size() > k_io_piece) return flush_encoded(false);
  return {};
}

Result<ObjectHeader> ObjectPut::finish() {
  if (!m_writer) return fail(ErrorKind::internal, "object '" + m_key + "' finished twice");
  if (auto r = m_encoder->finish(m_encoded); !r) return std::unexpected(r.error());
  if (auto r = flush_encoded(true); !r) return std::unexpected(r.error());
  m_header.plain_sha256 = m_sha->finish();
  if (m_cipher)
    if (auto r = m_cipher->seal_digest(m_header); !r) return std::unexpected(r.error());
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
  auto head = decode_object_header(**stored, what);
  if (!head) return std::unexpected(head.error());
  if (head->cipher != k_cipher_none) {
    // Frames are opened one by one, as a stream does: the same code proves both paths.
    auto reader = std::make_unique<MemoryReader>(std::move(**stored));
    ObjectHeader header;
    std::optional<ObjectCipher> cipher;
    if (auto r = prepare_reader(*reader, key, header, what, cipher); !r) return std::unexpected(r.error());
    ReadChecks named = checks;
    named.what = what;
    auto streamed = stream_of(std::move(reader), header, std::move(cipher), std::move(named));
    if (!streamed) return std::unexpected(streamed.error());
    ObjectStream& stream = *streamed;
    OpenedObject opened;
    opened.header = stream.header();
    opened.plain.resize(static_cast<std::size_t>(opened.header.plain_size));
    std::size_t got = 0;
    for (;;) {
      std::array<std::byte, 1> spare{};
      const std::span<std::byte> into = got < opened.plain.size() ? std::span(opened.plain).subspan(got) : std::span<std::byte>(spare);
      auto n = stream.read(into);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) break;
      got += *n;  // read() refuses more than the header's size, so `spare` is never filled
    }
    return std::optional<OpenedObject>(std::move(opened));
  }
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
                                                                              const std::string& what,
                                                                              std::optional<ObjectCipher>& cipher) {
  auto opened = m_storage->open_read(key);
  if (!opened || !*opened) return opened;
  if (auto r = prepare_reader(***opened, key, header, what, cipher); !r) return std::unexpected(r.error());
  return opened;
}

Result<void> ObjectStore::prepare_reader(ObjectReader& reader, const std::string& key, ObjectHeader& header,
                                         const std::string& what, std::optional<ObjectCipher>& cipher) {
  // Large enough for every head this walvault writes (72 bytes for version 1, 108 with cipher 1).
  std::array<std::byte, 128> head{};
  // Twelve bytes tell the version and head size.
  auto got = read_full(reader, std::span<std::byte>(head).first(12));
  if (!got) return std::unexpected(got.error());
  std::size_t have = *got;
  std::size_t wanted = k_object_header_size;
  if (have == 12 && std::memcmp(head.data() + 8, "\x02\x00", 2) == 0) {
    const std::size_t head_size = static_cast<std::uint8_t>(head[10]) | static_cast<std::size_t>(static_cast<std::uint8_t>(head[11])) << 8;
    if (head_size >= k_object_head_v2_size && head_size <= head.size()) wanted = head_size;
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
    std::vector<std::byte> trailer(trailer_size);
    if (auto r = reader.read_at(reader.size() - trailer_size, trailer); !r) return std::unexpected(r.error());
    if (auto r = decode_object_trailer(trailer, header, what); !r) return std::unexpected(r.error());
  }
  if (reader.size() != header.stored_size())
    return std::unexpected(corrupt_object(what, std::to_string(reader.size()) + " bytes on storage, the header says " +
                                                    std::to_string(header.stored_size())));
  if (header.cipher != k_cipher_none) {
    if (!ObjectCipher::frame_count(header.body_size, header.frame_size))
      return std::unexpected(corrupt_object(what, "a body of " + std::to_string(header.body_size) + " bytes is not whole frames of " +
                                                      std::to_string(header.frame_size) + " bytes"));
    static const Keyring k_no_keys;
    auto opened = ObjectCipher::open(m_keys ? *m_keys : k_no_keys, key, header, what);
    if (!opened) return std::unexpected(opened.error());
    if (auto r = opened->open_digest(header, what); !r) return std::unexpected(r.error());
    cipher = std::move(*opened);
  }
  return {};
}

Result<ObjectStore::Rekeyed> ObjectStore::rekey(const std::string& key) {
  const SecretKey* current = m_keys ? m_keys->current() : nullptr;
  if (!current) return fail(ErrorKind::invalid, "rekey needs encryption-key-file: the key objects are moved to");
  ObjectHeader header;
  std::optional<ObjectCipher> cipher;
  auto reader = open_reader(key, header, key, cipher);
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return fail(ErrorKind::not_found, "stored object '" + key + "' is gone");
  if (!cipher) return Rekeyed::plain;
  if (header.key_id == current->id()) return Rekeyed::current;
  const std::uint32_t old_id = header.key_id;
  if (auto r = cipher->rewrap(*current, key, header); !r) return std::unexpected(r.error());
  const std::vector<std::byte> head = encode_object_head_v2(header);
  // The sealed digest does not depend on the key id (docs/repository-format.md): only the
  // trailer check, which binds the new head, changes.
  const std::vector<std::byte> trailer = encode_object_trailer(header);
  auto writer = m_storage->create(key, PutMode::replace);
  if (!writer) return std::unexpected(writer.error());
  if (auto r = (*writer)->append(head); !r) return std::unexpected(r.error());
  std::vector<std::byte> piece(k_io_piece);
  for (std::uint64_t left = header.body_size; left > 0;) {
    const std::span<std::byte> into = std::span(piece).first(static_cast<std::size_t>(std::min<std::uint64_t>(left, piece.size())));
    auto n = read_full(***reader, into);
    if (!n) return std::unexpected(n.error());
    if (*n != into.size()) return std::unexpected(corrupt_object(key, "the body ended early"));
    if (auto r = (*writer)->append(into); !r) return std::unexpected(r.error());
    left -= *n;
  }
  if (auto r = (*writer)->append(trailer); !r) return std::unexpected(r.error());
  if (auto r = (*writer)->commit(); !r) return std::unexpected(r.error());
  auto proven = this->header(key);
  if (!proven) return std::unexpected(proven.error());
  if (!*proven || (*proven)->key_id != current->id())
    return fail(ErrorKind::internal, "stored object '" + key + "' was rekeyed from key id " + key_id_text(old_id) +
                                         " but does not read back under key id " + key_id_text(current->id()));
  return Rekeyed::moved;
}

Result<std::optional<ObjectHeader>> ObjectStore::header(const std::string& key, std::string_view what) {
  ObjectHeader header;
  std::optional<ObjectCipher> cipher;
  auto reader = open_reader(key, header, what.empty() ? key : std::string(what), cipher);
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return std::optional<ObjectHeader>();
  return std::optional<ObjectHeader>(header);
}

Result<ObjectStream> ObjectStore::stream_of(std::unique_ptr<ObjectReader> reader, ObjectHeader header,
                                            std::optional<ObjectCipher> cipher, ReadChecks checks) {
  auto decoder = make_decoder(header.codec);
  if (!decoder) return std::unexpected(decoder.error());
  ObjectStream out;
  out.m_decoder = std::move(*decoder);
  out.m_reader = std::move(reader);
  out.m_header = std::move(header);
  out.m_cipher = std::move(cipher);
  out.m_checks = std::move(checks);
  out.m_body_left = out.m_header.body_size;
  out.m_sha = std::make_unique<Sha256>();
  out.m_input.reserve(k_io_piece + k_cipher_tag_size);
  return out;
}

Result<std::optional<ObjectStream>> ObjectStore::open(const std::string& key, ReadChecks checks) {
  if (checks.what.empty()) checks.what = key;
  ObjectHeader header;
  std::optional<ObjectCipher> cipher;
  auto reader = open_reader(key, header, checks.what, cipher);
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return std::optional<ObjectStream>();
  auto stream = stream_of(std::move(**reader), std::move(header), std::move(cipher), std::move(checks));
  if (!stream) return std::unexpected(stream.error());
  return std::optional<ObjectStream>(std::move(*stream));
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
  if (m_cipher && m_body_left > 0) {
    // One frame and its tag; the layout was checked on open, so the last read holds a tag.
    const std::uint64_t stored = std::uint64_t{m_header.frame_size} + k_cipher_tag_size;
    m_input.resize(static_cast<std::size_t>(std::min(stored, m_body_left)));
    auto n = read_full(*m_reader, m_input);
    if (!n) return std::unexpected(n.error());
    if (*n < m_input.size() || *n < k_cipher_tag_size) return corrupt("the body ended " + std::to_string(m_body_left - *n) + " bytes early");
    m_body_left -= *n;
    const std::size_t frame = *n - k_cipher_tag_size;
    if (auto r = m_cipher->open_frame(m_frame++, m_body_left == 0, std::span(m_input).first(frame),
                                      std::span<const std::byte>(m_input).subspan(frame), m_checks.what);
        !r)
      return std::unexpected(r.error());
    m_input.resize(frame);
    m_input_pos = 0;
    return *n;
  }
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
  // A failure is final: the buffers may hold a frame that failed authentication (wiped) or a
  // short read, and nothing after it may reach a caller that reads again.
  if (m_failed) return std::unexpected(*m_failed);
  auto n = read_step(out);
  if (!n) {
    m_failed = n.error();
    m_input.clear();
    m_input_pos = 0;
  }
  return n;
}

Result<std::size_t> ObjectStream::read_step(std::span<std::byte> out) {
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
