#pragma once
// The object layer: the only code that knows how a repository object is laid out, compressed
// and proven (and, with the encryption issue, enciphered), and the only door to the storage
// backend. Every module that stores or reads objects goes through an ObjectStore; none sees
// raw bytes of an object or the backend itself. Formats: common/core/object_format.hpp.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/codec.hpp"
#include "common/core/object_cipher.hpp"
#include "common/core/object_format.hpp"
#include "common/core/sha256.hpp"
#include "common/core/storage/mirror_storage.hpp"
#include "common/core/storage/retrying_storage.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

class Repository;

// What a reader wants proven beyond the object's own head, sizes and digest.
struct ReadChecks {
  std::string what;             // names the object in errors; default: its key
  std::string expected_sha256;  // hex, the index's record of the content; empty: not known
  // Called once with the first decoded piece, before any of it is handed out (the WAL page
  // header check of archive-get); a failure ends the read with it.
  std::function<Result<void>(std::span<const std::byte> first_piece, const ObjectHeader& header)> first_piece;

  static ReadChecks named(std::string what) {
    ReadChecks checks;
    checks.what = std::move(what);
    return checks;
  }
  static ReadChecks expecting(std::string sha256_hex) {
    ReadChecks checks;
    checks.expected_sha256 = std::move(sha256_hex);
    return checks;
  }
};

// One object read with bounded memory: the head (and trailer) are checked on open, the body
// is decoded piece by piece, and the end proves size and digest (and ReadChecks). Anything
// wrong is ErrorKind::corrupt naming the object.
class ObjectStream {
 public:
  // Sizes and digest as the object declares them; the content is proven against them when
  // read() reaches the end.
  const ObjectHeader& header() const { return m_header; }
  // Up to out.size() plain bytes; 0 only after the whole object was read and proven.
  Result<std::size_t> read(std::span<std::byte> out);

 private:
  friend class ObjectStore;
  ObjectStream() = default;
  Result<std::size_t> read_step(std::span<std::byte> out);
  Result<std::size_t> fill();
  Result<void> prove();
  std::unexpected<Failure> corrupt(const std::string& why) const;

  std::unique_ptr<ObjectReader> m_reader;
  std::optional<ObjectCipher> m_cipher;  // cipher 1: each fill() reads and opens one frame
  std::uint32_t m_frame = 0;
  std::unique_ptr<Decoder> m_decoder;
  std::unique_ptr<Sha256> m_sha;
  ObjectHeader m_header;
  ReadChecks m_checks;
  std::vector<std::byte> m_input;
  std::size_t m_input_pos = 0;
  std::uint64_t m_body_left = 0;
  std::uint64_t m_plain_read = 0;
  bool m_input_done = false;
  bool m_proven = false;
  std::optional<Failure> m_failed;  // once read() failed, every later read() says the same
};

// One object written with bounded memory, in order: head, body piece by piece, trailer.
// Nothing is visible under the key until finish() returns; dropped unfinished, nothing is left.
class ObjectPut {
 public:
  Result<void> append(std::span<const std::byte> plain);
  // Durable and visible on success; returns the header written.
  Result<ObjectHeader> finish();
  std::uint64_t plain_size() const { return m_header.plain_size; }
  std::uint64_t stored_size() const { return m_header.stored_size(); }

 private:
  friend class ObjectStore;
  ObjectPut() = default;
  // Writes the encoded bytes (with a cipher: every whole frame, and at `finish` the rest as
  // the last frame).
  Result<void> flush_encoded(bool finish);

  std::unique_ptr<ObjectWriter> m_writer;
  std::optional<ObjectCipher> m_cipher;
  std::uint32_t m_frame = 0;
  std::vector<std::byte> m_sealed;
  std::unique_ptr<Encoder> m_encoder;
  std::unique_ptr<Sha256> m_sha;
  std::vector<std::byte> m_encoded;
  ObjectHeader m_header;
  std::string m_key;
};

class ObjectStore {
 public:
  // Every backend call goes through one retry wrapper (RetryingStorage) built here.
  explicit ObjectStore(std::unique_ptr<Storage> storage, RetryPolicy retry = {})
      : ObjectStore(one(std::move(storage)), std::move(retry)) {}
  // Several repositories (`repo` given more than once) as one: writes go to every member,
  // reads ask them in order (MirrorStorage). Each member has its own retry wrapper.
  ObjectStore(std::vector<std::unique_ptr<Storage>> storages, RetryPolicy retry);
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // One object store per repository, in configuration order, for what is reported or proven
  // repository by repository (status, check, verify, sync). With one repository: itself.
  std::size_t member_count() const { return m_members.empty() ? 1 : m_members.size(); }
  ObjectStore& member(std::size_t i) { return m_members.empty() ? *this : *m_members.at(i); }
  // The mirror of several repositories; nullptr with one.
  MirrorStorage* mirror() { return m_mirror; }
  // ErrorKind::refused naming the repository closed for writes, if one is (MirrorStorage).
  Result<void> writable() const { return m_mirror ? m_mirror->writable() : Result<void>(); }

  // Encryption at rest (docs/repository-format.md, cipher 1): with a current key every new
  // object is written encrypted under it; any key held decrypts. Without keys objects are
  // written plain, and an encrypted object is refused naming the key id it needs. A mirror's
  // members share the keys.
  void set_keys(std::shared_ptr<const Keyring> keys);
  const Keyring* keys() const { return m_keys.get(); }

  // Where the objects live, safe to log.
  std::string describe() const { return m_storage->describe(); }

  // --- content
  // A whole object from `plain`, durable on return. `digest`, when given, yields the content's
  // SHA-256 and is called after compression (a caller hashing on another thread overlaps the
  // two); otherwise it is computed here.
  Result<ObjectHeader> put(const std::string& key, std::span<const std::byte> plain, const CompressSpec& spec, PutMode mode,
                           const std::function<Sha256Digest()>& digest = {});
  Result<ObjectPut> begin_put(const std::string& key, const CompressSpec& spec, PutMode mode);
  // nullopt: no object under the key (absence is a value; only the caller knows what it means).
  Result<std::optional<OpenedObject>> read(const std::string& key, const ReadChecks& checks = {});
  Result<std::optional<ObjectStream>> open(const std::string& key, ReadChecks checks = {});
  // The same for an object a record names (an index row, backup.json): gone is damage
  // (ErrorKind::corrupt), not absence.
  Result<ObjectStream> open_listed(const std::string& key, ReadChecks checks = {});
  // Head and sizes only (a trailer read, never the body).
  Result<std::optional<ObjectHeader>> header(const std::string& key, std::string_view what = {});

  // `walvault rekey`: an encrypted object whose data key is wrapped by another key than the
  // current one gets it wrapped by the current key. Head and trailer are written anew and the
  // body is copied as it is (never decrypted, never re-encrypted), the whole replacing the old
  // atomically; the result is read back (head, wrap, sealed digest) before it counts.
  enum class Rekeyed { moved, current, plain };
  Result<Rekeyed> rekey(const std::string& key);

  // --- objects as wholes
  Result<bool> exists(const std::string& key) { return m_storage->exists(key); }
  Result<std::optional<ObjectInfo>> info(const std::string& key) { return m_storage->info(key); }
  Result<void> remove(const std::string& key) { return m_storage->remove(key); }
  Result<std::vector<ObjectInfo>> list(const std::string& prefix) { return m_storage->list_objects(prefix); }
  Result<std::vector<std::string>> list_keys(const std::string& prefix) { return m_storage->list(prefix); }
  Result<std::optional<Storage::Space>> space() { return m_storage->space(); }
  // An existing object made durable (again), before a duplicate is acknowledged.
  Result<void> make_durable(const std::string& key) { return m_storage->sync(key); }
  Result<std::vector<std::string>> list_children(const std::string& prefix) { return m_storage->list_children(prefix); }
  Result<Storage::Removed> remove_all(const std::string& prefix) { return m_storage->remove_all(prefix); }
  Result<Storage::Removed> remove_abandoned_writes() { return m_storage->remove_abandoned_writes(); }
  // The health probe: reads the plain file `read_key` back whole (false: it is missing) and,
  // when `write_key` is given, writes that plain file the way an object is written (temp,
  // fsync, rename, fsync of its directory) and removes it again.
  Result<bool> probe(const std::string& read_key, const std::string& write_key = {}) {
    auto read = m_storage->get(read_key);
    if (!read) return std::unexpected(read.error());
    if (!*read) return false;
    if (write_key.empty()) return true;
    static constexpr std::string_view k_text = "written by walvaultd to prove the repository takes writes; removed at once\n";
    if (auto r = m_storage->put(write_key, std::as_bytes(std::span(k_text)), PutMode::replace); !r) return std::unexpected(r.error());
    if (auto r = m_storage->remove(write_key); !r) return std::unexpected(r.error());
    return true;
  }

 private:
  // Plain bytes that are not objects (the repository's identity file) are the Repository's own.
  friend class Repository;
  friend struct RepositoryTestPeer;
  Storage& backend() { return *m_storage; }
  // A view of one member of a mirror (not owning, no second retry wrapper).
  explicit ObjectStore(Storage& member) : m_storage(&member) {}
  static std::vector<std::unique_ptr<Storage>> one(std::unique_ptr<Storage> storage) {
    std::vector<std::unique_ptr<Storage>> storages;
    storages.push_back(std::move(storage));
    return storages;
  }

  Result<std::optional<std::unique_ptr<ObjectReader>>> open_reader(const std::string& key, ObjectHeader& header,
                                                                   const std::string& what, std::optional<ObjectCipher>& cipher);
  // The head and trailer checks of open_reader on a reader already open; leaves it at the body.
  Result<void> prepare_reader(ObjectReader& reader, const std::string& key, ObjectHeader& header, const std::string& what,
                              std::optional<ObjectCipher>& cipher);
  Result<ObjectStream> stream_of(std::unique_ptr<ObjectReader> reader, ObjectHeader header, std::optional<ObjectCipher> cipher,
                         ReadChecks checks);

  std::unique_ptr<Storage> m_owned;
  Storage* m_storage = nullptr;
  MirrorStorage* m_mirror = nullptr;
  std::vector<std::unique_ptr<ObjectStore>> m_members;
  std::shared_ptr<const Keyring> m_keys;
};

}  // namespace walvault
