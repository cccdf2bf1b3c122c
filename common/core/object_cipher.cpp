#include "common/core/object_cipher.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <array>
#include <cstring>
#include <utility>

#include "common/base/byte_order.hpp"
#include "common/core/object_format.hpp"
#include "common/core/sha256.hpp"

namespace walvault {

namespace {

constexpr std::size_t k_nonce_size = 12;
constexpr std::uint32_t k_digest_index = 0xFFFFFFFFu;  // never a frame's index

Failure corrupt_object(std::string_view what, const std::string& why) {
  return {ErrorKind::corrupt, "stored object '" + std::string(what) + "' is corrupt: " + why};
}

void append_le32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void append_le64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void append_text(std::vector<std::uint8_t>& out, std::string_view text) {
  append_le32(out, static_cast<std::uint32_t>(text.size()));
  out.insert(out.end(), text.begin(), text.end());
}

struct CipherContext {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
};

// One AES-256-GCM operation in place. Encrypting writes `tag`; decrypting checks it and
// returns false on any mismatch (nothing decrypted may then be used).
bool gcm(EVP_CIPHER_CTX* ctx, bool encrypt, const std::uint8_t* key, const std::uint8_t* nonce,
         std::span<const std::uint8_t> aad, std::span<std::byte> inout, std::uint8_t* tag) {
  auto* data = reinterpret_cast<unsigned char*>(inout.data());
  int len = 0;
  const int enc = encrypt ? 1 : 0;
  if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, enc) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(k_nonce_size), nullptr) != 1) return false;
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nonce, enc) != 1) return false;
  if (!aad.empty() && EVP_CipherUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) return false;
  // Frames are at most a few MiB: well inside int.
  if (!inout.empty() && EVP_CipherUpdate(ctx, data, &len, data, static_cast<int>(inout.size())) != 1) return false;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(k_cipher_tag_size), tag) != 1) return false;
  unsigned char end[16];
  if (EVP_CipherFinal_ex(ctx, end, &len) != 1) return false;
  if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(k_cipher_tag_size), tag) != 1) return false;
  return true;
}

std::uint32_t derive_key_id(const std::uint8_t* key) {
  static constexpr std::string_view k_label = "walvault key id v1";
  std::vector<std::byte> input(k_label.size() + SecretKey::k_size);
  std::memcpy(input.data(), k_label.data(), k_label.size());
  std::memcpy(input.data() + k_label.size(), key, SecretKey::k_size);
  const Sha256Digest digest = sha256(input);
  OPENSSL_cleanse(input.data(), input.size());
  std::uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id |= static_cast<std::uint32_t>(digest[i]) << (8 * i);
  return id == 0 ? 1 : id;  // 0 means "no cipher"
}

// Binds the data key to the KEK's id, the object's nonce prefix and its name.
std::vector<std::uint8_t> wrap_aad(std::uint32_t key_id, const ObjectHeader& header, std::string_view name) {
  const std::string_view label = "walvault data key v1";
  std::vector<std::uint8_t> aad(label.begin(), label.end());
  append_le32(aad, key_id);
  aad.insert(aad.end(), header.nonce.begin(), header.nonce.end());
  append_text(aad, name);
  return aad;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---------------------------------------------------------------- SecretKey

SecretKey SecretKey::from_bytes(std::span<const std::uint8_t, k_size> bytes, std::string origin) {
  SecretKey key;
  key.m_bytes = new std::uint8_t[k_size];
  // Best effort: without the privilege or the limit, the key still works, only swappable.
  ::mlock(key.m_bytes, k_size);
  std::memcpy(key.m_bytes, bytes.data(), k_size);
  key.m_id = derive_key_id(key.m_bytes);
  key.m_origin = std::move(origin);
  return key;
}

void SecretKey::release() {
  if (!m_bytes) return;
  OPENSSL_cleanse(m_bytes, k_size);
  ::munlock(m_bytes, k_size);
  delete[] m_bytes;
  m_bytes = nullptr;
}

SecretKey::SecretKey(SecretKey&& other) noexcept
    : m_bytes(std::exchange(other.m_bytes, nullptr)), m_id(other.m_id), m_origin(std::move(other.m_origin)) {}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    release();
    m_bytes = std::exchange(other.m_bytes, nullptr);
    m_id = other.m_id;
    m_origin = std::move(other.m_origin);
  }
  return *this;
}

SecretKey::~SecretKey() { release(); }

Result<SecretKey> SecretKey::load_file(const std::string& path) {
  auto bad = [&](const std::string& why) { return fail(ErrorKind::invalid, "encryption key file '" + path + "' " + why); };
  auto os_failed = [&](const char* what) { return std::unexpected(Failure{ErrorKind::invalid, os_error_text(what, path, errno)}); };
  // Checked and read through one descriptor (the file checked is the file read, also through a
  // symbolic link such as a Kubernetes Secret's), into a fixed buffer that is wiped: no stream
  // or vector leaves a copy of the key on the heap. O_NONBLOCK: a FIFO must not hang the start.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return os_failed("read encryption key file");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_failed("read encryption key file");
  if (!S_ISREG(st.st_mode)) return bad("is not a regular file");
  // Group read is accepted only for a file root owns that a non-root walvaultd reads through its
  // group: a Kubernetes Secret (mounted root-owned with the pod's fsGroup, defaultMode 0440) or
  // a host's root:walvault 0440. A user's own key made group-readable by accident is refused.
  const bool root_owned_group_read = st.st_uid == 0 && ::geteuid() != 0 && (st.st_mode & 077) == 040;
  if ((st.st_mode & 077) != 0 && !root_owned_group_read) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return bad("may be read by group or others (mode " + std::string(mode) +
               "): make it 0600 (or 0400), owned by the user walvaultd runs as (or root-owned 0440, read through "
               "walvaultd's group, as a Kubernetes Secret is)");
  }
  // 64 hex digits and a line end is the longest valid content; one byte more proves "too long".
  std::array<char, 2 * k_size + 3> text{};
  std::size_t n = 0;
  while (n < text.size()) {
    const ssize_t got = ::read(fd, text.data() + n, text.size() - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      OPENSSL_cleanse(text.data(), text.size());
      return os_failed("read encryption key file");
    }
    if (got == 0) break;
    n += static_cast<std::size_t>(got);
  }
  std::array<std::uint8_t, k_size> raw{};
  auto all_hex = [&](std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      if (hex_value(text[i]) < 0) return false;
    return true;
  };
  std::string why;
  if (n == k_size && all_hex(n)) {
    // 32 hex digits are 16 bytes of randomness, not 32: a truncated 'openssl rand -hex 32'.
    why = "holds 32 hex digits: that is half a key (128 bits); it must hold 32 random bytes, or 64 hex digits "
          "(e.g. 'openssl rand -hex 32')";
  } else if (n == k_size) {
    std::memcpy(raw.data(), text.data(), k_size);
  } else {
    std::size_t len = n;
    if (len > 0 && text[len - 1] == '\n') --len;
    if (len > 0 && text[len - 1] == '\r') --len;
    if (len == 2 * k_size && all_hex(len)) {
      for (std::size_t i = 0; i < k_size; ++i)
        raw[i] = static_cast<std::uint8_t>(hex_value(text[2 * i]) << 4 | hex_value(text[2 * i + 1]));
    } else {
      why = "holds " + (n == text.size() ? "more than " + std::to_string(2 * k_size + 2) : std::to_string(n)) +
            " bytes that are not a key: it must hold 32 random bytes, or 64 hex digits (e.g. 'openssl rand -hex 32')";
    }
  }
  OPENSSL_cleanse(text.data(), text.size());
  if (!why.empty()) {
    OPENSSL_cleanse(raw.data(), raw.size());
    return bad(why);
  }
  SecretKey key = from_bytes(raw, path);
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

std::string key_id_text(std::uint32_t id) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", id);
  return text;
}

// ---------------------------------------------------------------- Keyring

Result<Keyring> Keyring::make(std::optional<SecretKey> current, std::vector<SecretKey> old) {
  Keyring ring;
  std::vector<const SecretKey*> all;
  if (current) all.push_back(&*current);
  for (const auto& key : old) all.push_back(&key);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (all[i]->id() == all[j]->id())
        return fail(ErrorKind::invalid, "encryption key files '" + all[j]->origin() + "' and '" + all[i]->origin() +
                                            "' hold the same key (id " + key_id_text(all[i]->id()) + ")");
  ring.m_current = std::move(current);
  ring.m_old = std::move(old);
  return ring;
}

Result<Keyring> Keyring::load(const std::string& current_file, const std::vector<std::string>& old_files) {
  std::optional<SecretKey> current;
  if (!current_file.empty()) {
    auto key = SecretKey::load_file(current_file);
    if (!key) return std::unexpected(key.error());
    current = std::move(*key);
  }
  std::vector<SecretKey> old;
  for (const auto& file : old_files) {
    auto key = SecretKey::load_file(file);
    if (!key) return std::unexpected(key.error());
    old.push_back(std::move(*key));
  }
  return make(std::move(current), std::move(old));
}

const SecretKey* Keyring::find(std::uint32_t id) const {
  if (m_current && m_current->id() == id) return &*m_current;
  for (const auto& key : m_old)
    if (key.id() == id) return &key;
  return nullptr;
}

std::string Keyring::describe() const {
  std::string out = m_current ? "key id " + key_id_text(m_current->id()) + " (" + m_current->origin() + ")" : "no current key (objects are written unencrypted)";
  for (const auto& key : m_old) out += ", old key id " + key_id_text(key.id()) + " (" + key.origin() + ")";
  return out;
}

// ---------------------------------------------------------------- ObjectCipher

struct ObjectCipher::State {
  std::array<std::uint8_t, SecretKey::k_size> data_key{};
  std::vector<std::uint8_t> aad;  // the frame AAD's fixed part
  std::size_t aad_fixed = 0;
  std::array<std::uint8_t, k_nonce_size> nonce{};
  CipherContext context;
  ~State() { OPENSSL_cleanse(data_key.data(), data_key.size()); }

  // What every frame and the sealed digest share: the head's fields that a rekey keeps
  // (version, head size, codec, cipher, frame size, nonce prefix) and the object's name. The
  // key id and the wrapped key are bound through the wrap instead, so a rekey need not touch
  // the body.
  void bind(const ObjectHeader& header, std::string_view name) {
    const std::string_view label = "walvault frame v1";
    aad.assign(label.begin(), label.end());
    append_le32(aad, header.version);
    append_le32(aad, header.head_size);
    aad.push_back(static_cast<std::uint8_t>(header.codec));
    aad.push_back(header.cipher);
    append_le32(aad, header.frame_size);
    aad.insert(aad.end(), header.nonce.begin(), header.nonce.end());
    append_text(aad, name);
    aad_fixed = aad.size();
    std::memcpy(nonce.data(), header.nonce.data(), 8);
  }
  void set_index(std::uint32_t index) {
    for (int i = 0; i < 4; ++i) nonce[8 + i] = static_cast<std::uint8_t>(index >> (8 * (3 - i)));
    aad.resize(aad_fixed);
    append_le32(aad, index);
  }
};

ObjectCipher::ObjectCipher(ObjectCipher&&) noexcept = default;
ObjectCipher& ObjectCipher::operator=(ObjectCipher&&) noexcept = default;
ObjectCipher::~ObjectCipher() = default;

Result<ObjectCipher> ObjectCipher::create(const SecretKey& kek, std::string_view name, ObjectHeader& header) {
  ObjectCipher cipher;
  cipher.m_state = std::make_unique<State>();
  if (RAND_bytes(cipher.m_state->data_key.data(), static_cast<int>(SecretKey::k_size)) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(header.nonce.data()), static_cast<int>(header.nonce.size())) != 1)
    return fail(ErrorKind::internal, "no random bytes from OpenSSL for a data key");
  header.version = k_object_format_v2;  // only version 2 carries a cipher
  header.cipher = k_cipher_aes256gcm;
  header.frame_size = k_cipher_frame_size;
  header.head_size = static_cast<std::uint32_t>(k_object_head_v2_size + k_wrapped_key_size);
  if (auto r = cipher.rewrap(kek, name, header); !r) return std::unexpected(r.error());
  cipher.m_state->bind(header, name);
  return cipher;
}

Result<void> ObjectCipher::rewrap(const SecretKey& kek, std::string_view name, ObjectHeader& header) const {
  std::vector<std::byte> data(k_wrapped_key_size);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(data.data()), static_cast<int>(k_nonce_size)) != 1)
    return fail(ErrorKind::internal, "no random bytes from OpenSSL for a key wrap");
  std::memcpy(data.data() + k_nonce_size, m_state->data_key.data(), SecretKey::k_size);
  const auto aad = wrap_aad(kek.id(), header, name);
  const bool ok = gcm(m_state->context.ctx, true, kek.data(), reinterpret_cast<const std::uint8_t*>(data.data()), aad,
                      std::span(data).subspan(k_nonce_size, SecretKey::k_size),
                      reinterpret_cast<std::uint8_t*>(data.data() + k_nonce_size + SecretKey::k_size));
  if (!ok) {
    OPENSSL_cleanse(data.data(), data.size());  // it may still hold the data key in clear
    return fail(ErrorKind::internal, "AES-256-GCM failed wrapping a data key");
  }
  header.key_id = kek.id();
  header.cipher_data = std::move(data);
  return {};
}

Result<ObjectCipher> ObjectCipher::open(const Keyring& keys, std::string_view name, const ObjectHeader& header, std::string_view what) {
  if (header.cipher != k_cipher_aes256gcm || header.cipher_data.size() != k_wrapped_key_size)
    return std::unexpected(corrupt_object(what, "cipher data of " + std::to_string(header.cipher_data.size()) + " bytes"));
  const SecretKey* kek = keys.find(header.key_id);
  if (!kek)
    return fail(ErrorKind::refused, "stored object '" + std::string(what) + "' is encrypted with key id " + key_id_text(header.key_id) +
                                        ", which walvaultd does not hold (" + (keys.empty() ? std::string("no encryption key is configured") : keys.describe()) +
                                        "): give that key as encryption-key-file or in encryption-old-key-files; nothing was read");
  ObjectCipher cipher;
  cipher.m_state = std::make_unique<State>();
  std::vector<std::byte> data = header.cipher_data;
  const auto aad = wrap_aad(header.key_id, header, name);
  const bool ok = gcm(cipher.m_state->context.ctx, false, kek->data(), reinterpret_cast<const std::uint8_t*>(data.data()), aad,
                      std::span(data).subspan(k_nonce_size, SecretKey::k_size),
                      reinterpret_cast<std::uint8_t*>(data.data() + k_nonce_size + SecretKey::k_size));
  if (!ok) {
    OPENSSL_cleanse(data.data(), data.size());
    return std::unexpected(corrupt_object(what, "its data key fails authentication under key id " + key_id_text(header.key_id) +
                                                    " (a damaged head, or an object stored under another name)"));
  }
  std::memcpy(cipher.m_state->data_key.data(), data.data() + k_nonce_size, SecretKey::k_size);
  OPENSSL_cleanse(data.data(), data.size());
  cipher.m_state->bind(header, name);
  return cipher;
}

Result<void> ObjectCipher::seal_frame(std::uint32_t index, bool last, std::span<std::byte> frame, std::span<std::byte> tag) {
  if (index == k_digest_index) return fail(ErrorKind::invalid, "object too large for its frame counter");
  m_state->set_index(index);
  m_state->aad.push_back(last ? 1 : 0);
  if (!gcm(m_state->context.ctx, true, m_state->data_key.data(), m_state->nonce.data(), m_state->aad, frame,
           reinterpret_cast<std::uint8_t*>(tag.data())))
    return fail(ErrorKind::internal, "AES-256-GCM failed sealing a frame");
  return {};
}

Result<void> ObjectCipher::open_frame(std::uint32_t index, bool last, std::span<std::byte> frame, std::span<const std::byte> tag,
                                      std::string_view what) {
  if (index == k_digest_index) return std::unexpected(corrupt_object(what, "more frames than a frame counter holds"));
  m_state->set_index(index);
  m_state->aad.push_back(last ? 1 : 0);
  std::array<std::uint8_t, k_cipher_tag_size> expected{};
  std::memcpy(expected.data(), tag.data(), expected.size());
  if (!gcm(m_state->context.ctx, false, m_state->data_key.data(), m_state->nonce.data(), m_state->aad, frame, expected.data())) {
    OPENSSL_cleanse(frame.data(), frame.size());
    return std::unexpected(corrupt_object(what, "frame " + std::to_string(index) + (last ? " (the last)" : "") +
                                                    " fails authentication (damaged, truncated, reordered, or not this object's)"));
  }
  return {};
}

Result<void> ObjectCipher::seal_digest(ObjectHeader& header) {
  m_state->set_index(k_digest_index);
  append_le64(m_state->aad, header.plain_size);
  append_le64(m_state->aad, header.body_size);
  std::memcpy(header.sealed_digest.data(), header.plain_sha256.data(), header.sealed_digest.size());
  if (!gcm(m_state->context.ctx, true, m_state->data_key.data(), m_state->nonce.data(), m_state->aad,
           std::as_writable_bytes(std::span(header.sealed_digest)), reinterpret_cast<std::uint8_t*>(header.digest_tag.data())))
    return fail(ErrorKind::internal, "AES-256-GCM failed sealing a digest");
  return {};
}

Result<void> ObjectCipher::open_digest(ObjectHeader& header, std::string_view what) {
  m_state->set_index(k_digest_index);
  append_le64(m_state->aad, header.plain_size);
  append_le64(m_state->aad, header.body_size);
  Sha256Digest digest = header.sealed_digest;
  std::array<std::uint8_t, k_cipher_tag_size> tag{};
  std::memcpy(tag.data(), header.digest_tag.data(), tag.size());
  if (!gcm(m_state->context.ctx, false, m_state->data_key.data(), m_state->nonce.data(), m_state->aad,
           std::as_writable_bytes(std::span(digest)), tag.data()))
    return std::unexpected(corrupt_object(what, "its trailer fails authentication (sizes or digest changed, or not this object's trailer)"));
  header.plain_sha256 = digest;
  return {};
}

std::optional<std::uint64_t> ObjectCipher::frame_count(std::uint64_t body_size, std::uint32_t frame_size) {
  if (frame_size == 0) return std::nullopt;
  const std::uint64_t stored = std::uint64_t{frame_size} + k_cipher_tag_size;
  const std::uint64_t full = body_size / stored, rest = body_size % stored;
  if (rest == 0) return full == 0 ? std::nullopt : std::optional<std::uint64_t>(full);
  if (rest < k_cipher_tag_size) return std::nullopt;
  return full + 1;
}

}  // namespace walvault
