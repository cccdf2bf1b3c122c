#pragma once
// A walvault repository: storage plus its layout and identity.
//   walvault.repo                      identity: format version, system identifier (first push)
//   wal/history/TTTTTTTT.history       timeline history files
//   wal/<TTTTTTTTXXXXXXXX>/<name>      segments, .partial and .backup files
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

inline constexpr std::string_view k_identity_key = "walvault.repo";
inline constexpr int k_repository_format = 1;

std::string object_key(const WalName& name);

class Repository {
 public:
  // Opens the storage at `location`, creating the identity object on first use (only when
  // `allow_create`) and refusing a repository of an unknown format. Without `allow_create` a
  // missing identity is ErrorKind::not_found.
  static Result<std::unique_ptr<Repository>> open(std::string_view location, bool allow_create = true);
  // The same on storage the caller built (another backend, or a test's fake).
  static Result<std::unique_ptr<Repository>> open(std::unique_ptr<Storage> storage, bool allow_create = true);

  Storage& storage() { return *m_storage; }
  std::string describe() const { return m_storage->describe(); }

  // The system identifier fixed by the first pushed segment, if any.
  std::optional<std::uint64_t> system_identifier() const;
  std::optional<int> pg_version() const;
  // Fixes the identifier on first use (durably); afterwards only checks it. A different
  // identifier is ErrorKind::refused.
  Result<void> adopt_system_identifier(std::uint64_t system_identifier, int pg_version, std::string_view file_name);

 private:
  explicit Repository(std::unique_ptr<Storage> storage) : m_storage(std::move(storage)) {}
  Result<void> load_identity(bool allow_create);

  std::unique_ptr<Storage> m_storage;
  mutable std::mutex m_mutex;
  std::optional<std::uint64_t> m_system_identifier;
  std::optional<int> m_pg_version;
};

}  // namespace walvault
