#pragma once
// Encryption at rest (cipher 1: AES-256-GCM in authenticated frames, envelope keys). Internal
// to the object layer, like object_format.hpp; the layout is in docs/repository-format.md.
//
// Keys: a key-encryption key (KEK) is 32 random bytes from `encryption-key-file`; its id (in
// every encrypted object's head) is derived from it, never the key itself. Each object gets a
// random 32-byte data key, stored wrapped (AES-256-GCM) by the KEK in the object's head, so a
// rotation rewraps heads and never rewrites bodies.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

struct ObjectHeader;

inline constexpr std::uint8_t k_cipher_none = 0;
inline constexpr std::uint8_t k_cipher_aes256gcm = 1;
inline constexpr std::size_t k_cipher_tag_size = 16;
// Encoded (compressed) bytes per frame: one frame per storage read of the object layer.
inline constexpr std::uint32_t k_cipher_frame_size = 1u << 20;
// The head's cipher data: wrap nonce (12), wrapped data key (32), tag (16).
inline constexpr std::size_t k_wrapped_key_size = 60;

// 32 bytes of key material in memory locked against swap where the platform allows (mlock),
// wiped (OPENSSL_cleanse) when destroyed. Never printed: only its id is.
class SecretKey {
 public:
  static constexpr std::size_t k_size = 32;
  // `encryption-key-file`: 32 raw bytes, or 64 hex digits (one trailing newline allowed); a
  // file that group or others may read is refused.
  static Result<SecretKey> load_file(const std::string& path);
  static SecretKey from_bytes(std::span<const std::uint8_t, k_size> bytes, std::string origin);
  SecretKey(SecretKey&&) noexcept;
  SecretKey& operator=(SecretKey&&) noexcept;
  ~SecretKey();

  std::uint32_t id() const { return m_id; }
  const std::string& origin() const { return m_origin; }  // the file it came from, for messages
  const std::uint8_t* data() const { return m_bytes; }

 private:
  SecretKey() = default;
  void release();
  std::uint8_t* m_bytes = nullptr;  // k_size bytes, page-locked when possible
  std::uint32_t m_id = 0;
  std::string m_origin;
};

// "1a2b3c4d": how key ids are shown everywhere.
std::string key_id_text(std::uint32_t id);

// The keys one walvaultd holds: the current key (new objects; optional: without it objects
// are written unencrypted) and old keys that only decrypt.
class Keyring {
 public:
  Keyring() = default;
  // Refuses the same key given twice (by id).
  static Result<Keyring> make(std::optional<SecretKey> current, std::vector<SecretKey> old);
  static Result<Keyring> load(const std::string& current_file, const std::vector<std::string>& old_files);
  const SecretKey* current() const { return m_current ? &*m_current : nullptr; }
  const SecretKey* find(std::uint32_t id) const;
  bool empty() const { return !m_current && m_old.empty(); }
  std::vector<std::uint32_t> old_ids() const {
    std::vector<std::uint32_t> ids;
    for (const auto& key : m_old) ids.push_back(key.id());
    return ids;
  }
  // "key id 1a2b3c4d (from /etc/walvault/key), old keys 5e6f..." for logs.
  std::string describe() const;

 private:
  std::optional<SecretKey> m_current;
  std::vector<SecretKey> m_old;
};

// One object's cipher state: its data key and the authenticated data that ties every frame to
// the object's head fields and name. Frames are sealed and opened in place.
class ObjectCipher {
 public:
  // A new object: random data key and nonce prefix, wrapped by `kek`; fills the header's
  // cipher, key id, frame size, nonce prefix and cipher data (call before encoding the head).
  static Result<ObjectCipher> create(const SecretKey& kek, std::string_view name, ObjectHeader& header);
  // A stored object: unwraps its data key with the key its head names. A key walvaultd does
  // not hold is ErrorKind::refused (never read, never judged damage); a wrap that fails
  // authentication is ErrorKind::corrupt. `what` names the object in errors.
  static Result<ObjectCipher> open(const Keyring& keys, std::string_view name, const ObjectHeader& header, std::string_view what);
  // The head's cipher data for the same data key wrapped by `kek` (rekey), setting key id.
  Result<void> rewrap(const SecretKey& kek, std::string_view name, ObjectHeader& header) const;

  ObjectCipher(ObjectCipher&&) noexcept;
  ObjectCipher& operator=(ObjectCipher&&) noexcept;
  ~ObjectCipher();

  Result<void> seal_frame(std::uint32_t index, bool last, std::span<std::byte> frame, std::span<std::byte> tag);
  Result<void> open_frame(std::uint32_t index, bool last, std::span<std::byte> frame, std::span<const std::byte> tag,
                          std::string_view what);
  // The content digest travels sealed in the trailer, authenticated with the sizes.
  Result<void> seal_digest(ObjectHeader& header);
  Result<void> open_digest(ObjectHeader& header, std::string_view what);

  // Frames a body of `body_size` stored bytes holds, and whether the layout is possible.
  static std::optional<std::uint64_t> frame_count(std::uint64_t body_size, std::uint32_t frame_size);

 private:
  ObjectCipher() = default;
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace walvault
