#pragma once
// A walvault repository: storage plus its layout and identity.
//   walvault.repo                      identity: format version, system identifier (first push)
//   walvault.keycheck                  with encryption: a small object sealed by the current key
//   wal/history/TTTTTTTT.history       timeline history files
//   wal/<TTTTTTTTXXXXXXXX>/<name>      segments, .partial and .backup files
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/object_store.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

inline constexpr std::string_view k_identity_key = "walvault.repo";
inline constexpr int k_repository_format = 1;
inline constexpr std::string_view k_key_check_key = "walvault.keycheck";

std::string object_key(const WalName& name);

class Repository {
 public:
  // Opens the storage at `location`, creating the identity object on first use (only when
  // `allow_create`) and refusing a repository of an unknown format. Without `allow_create` a
  // missing identity is ErrorKind::not_found.
  static Result<std::unique_ptr<Repository>> open(std::string_view location, bool allow_create = true,
                                                 const StorageOptions& options = {});
  // The same on storage the caller built (another backend, or a test's fake).
  // `retry`: how the object layer retries transient storage failures (tests shorten it).
  static Result<std::unique_ptr<Repository>> open(std::unique_ptr<Storage> storage, bool allow_create = true, RetryPolicy retry = {});
  // Several repositories kept as one (`repo` given more than once; see MirrorStorage). They
  // must agree on the cluster. One without an identity while another has one (new, deleted,
  // or not mounted) is closed for writes until `walvault sync` has filled it, unless
  // `allow_create` and no repository names a cluster yet (nothing was archived): then it is
  // simply given the identity.
  static Result<std::unique_ptr<Repository>> open(const std::vector<std::string>& locations, bool allow_create,
                                                 const StorageOptions& options);
  static Result<std::unique_ptr<Repository>> open(std::vector<std::unique_ptr<Storage>> storages, bool allow_create,
                                                 RetryPolicy retry);

  // Every object goes through the object layer; nothing else sees the backend.
  ObjectStore& objects() { return m_objects; }
  std::string describe() const { return m_objects.describe(); }
  // Encryption at rest: gives the object layer `keys` and proves them on each repository's key
  // check object (a small object sealed by the current key at first use). Refused
  // (ErrorKind::refused, naming the repository and the key id) when no key held opens it, and
  // when the repository is encrypted but no current key is configured (new objects would
  // go unencrypted). A check sealed by an old key is sealed again by the current one (a
  // rotation); one missing is written. `may_write` false (--check-config): only checks.
  // Returns one line per repository for the log.
  Result<std::vector<std::string>> use_keys(std::shared_ptr<const Keyring> keys, bool may_write);

  // The identity file as it is on storage now (nullopt: gone), to prove the repository is
  // still the one opened.
  Result<std::optional<std::string>> read_identity();

  // The system identifier fixed by the first pushed segment, if any.
  std::optional<std::uint64_t> system_identifier() const;
  std::optional<int> pg_version() const;
  // The WAL segment size fixed by the first pushed segment (recorded since walvault 0.1.1).
  std::optional<std::uint64_t> segment_size() const;
  // Fixes the identifier (and the segment size, when given) on first use, durably; afterwards
  // only checks them. A different identifier is ErrorKind::refused; a segment size is checked
  // by check_segment_size().
  Result<void> adopt_system_identifier(std::uint64_t system_identifier, int pg_version, std::string_view file_name,
                                       std::uint64_t segment_size = 0);
  // ErrorKind::refused when the repository holds WAL of another segment size.
  Result<void> check_segment_size(std::uint64_t segment_size, std::string_view file_name) const;

 private:
  friend struct RepositoryTestPeer;  // unit tests craft damage below the object layer
  Repository(std::vector<std::unique_ptr<Storage>> storages, RetryPolicy retry) : m_objects(std::move(storages), std::move(retry)) {}
  Result<void> load_identity(bool allow_create);
  Result<void> parse_identity(std::string_view text, const std::string& where);

  ObjectStore m_objects;
  mutable std::mutex m_mutex;
  std::optional<std::uint64_t> m_system_identifier;
  std::optional<int> m_pg_version;
  std::optional<std::uint64_t> m_segment_size;
};

}  // namespace walvault
