#include "common/core/repository.hpp"

#include <algorithm>
#include <charconv>

#include "common/base/fd.hpp"

namespace walvault {

std::string object_key(const WalName& name) {
  const std::string file = format_wal_name(name);
  if (name.kind == WalFileKind::history) return "wal/history/" + file;
  return "wal/" + file.substr(0, 16) + "/" + file;
}

Result<std::unique_ptr<Repository>> Repository::open(std::string_view location, bool allow_create, const StorageOptions& options) {
  return open(std::vector<std::string>{std::string(location)}, allow_create, options);
}

Result<std::unique_ptr<Repository>> Repository::open(const std::vector<std::string>& locations, bool allow_create,
                                                     const StorageOptions& options) {
  std::vector<std::unique_ptr<Storage>> storages;
  for (const auto& location : locations) {
    auto storage = open_storage(location, options);
    if (!storage) return std::unexpected(storage.error());
    storages.push_back(std::move(*storage));
  }
  return open(std::move(storages), allow_create, RetryPolicy{});
}

Result<std::unique_ptr<Repository>> Repository::open(std::unique_ptr<Storage> storage, bool allow_create, RetryPolicy retry) {
  std::vector<std::unique_ptr<Storage>> storages;
  storages.push_back(std::move(storage));
  return open(std::move(storages), allow_create, std::move(retry));
}

Result<std::unique_ptr<Repository>> Repository::open(std::vector<std::unique_ptr<Storage>> storages, bool allow_create,
                                                     RetryPolicy retry) {
  if (storages.empty()) return fail(ErrorKind::invalid, "no repository given (option 'repo')");
  std::unique_ptr<Repository> repo(new Repository(std::move(storages), std::move(retry)));
  if (auto r = repo->load_identity(allow_create); !r) return std::unexpected(r.error());
  return repo;
}

Result<std::vector<std::string>> Repository::use_keys(std::shared_ptr<const Keyring> keys, bool may_write) {
  static constexpr std::string_view k_check_text = "walvault key check v1\n";
  const std::string key(k_key_check_key);
  const SecretKey* current = keys->current();
  m_objects.set_keys(keys);
  std::vector<std::string> said;
  for (std::size_t i = 0; i < m_objects.member_count(); ++i) {
    ObjectStore& member = m_objects.member(i);
    const std::string where = member.describe();
    auto check = member.read(key, ReadChecks::named(where + "/" + key));
    if (!check) {
      if (check.error().kind == ErrorKind::refused)
        return fail(ErrorKind::refused, "cannot decrypt repository '" + where + "': " + check.error().message);
      return std::unexpected(check.error());
    }
    const bool writable = may_write && !(m_objects.mirror() && m_objects.mirror()->write_block(i));
    if (*check && as_text((*check)->plain) != k_check_text)
      return fail(ErrorKind::corrupt, "repository '" + where + "': its key check object '" + key + "' holds something else");
    const bool sealed = *check && (*check)->header.cipher != k_cipher_none;
    if (sealed && !current)
      return fail(ErrorKind::refused, "repository '" + where + "' is encrypted (its " + key + " is sealed by key id " +
                                          key_id_text((*check)->header.key_id) +
                                          ") but no encryption-key-file is configured, so new objects would be written "
                                          "unencrypted: configure the key (or a new key, with that one in encryption-old-key-files)");
    if (!current) continue;  // a plain repository stays plain
    if (sealed && (*check)->header.key_id == current->id()) {
      said.push_back("repository '" + where + "': encrypted, key id " + key_id_text(current->id()) + " opens it");
      continue;
    }
    if (!writable) {
      said.push_back("repository '" + where + "': its key check will be sealed by key id " + key_id_text(current->id()) +
                     " when walvaultd starts");
      continue;
    }
    // First use with a key, or a rotation (the check opened with an old key): seal it anew.
    auto put = member.put(key, as_bytes(k_check_text), CompressSpec{Codec::none, 0}, *check ? PutMode::replace : PutMode::create_only);
    if (!put) return std::unexpected(put.error());
    said.push_back("repository '" + where + "': " +
                   (sealed ? "key check moved from key id " + key_id_text((*check)->header.key_id) + " to "
                           : std::string(*check ? "encryption switched on, key id " : "encryption on, key id ")) +
                   key_id_text(current->id()) + (sealed ? " (rotation: run `walvault rekey` to move the other objects)" : ""));
  }
  return said;
}

Result<void> Repository::load_identity(bool allow_create) {
  const std::string key(k_identity_key);
  const std::size_t count = m_objects.member_count();
  // Each repository's own identity file (a mirror's read would answer with the first found).
  std::vector<std::optional<std::string>> identities;
  for (std::size_t i = 0; i < count; ++i) {
    auto data = m_objects.member(i).backend().get(key);
    if (!data) return std::unexpected(data.error());
    identities.push_back(*data ? std::optional<std::string>(std::string(as_text(**data))) : std::nullopt);
  }
  const auto present = std::find_if(identities.begin(), identities.end(), [](const auto& id) { return id.has_value(); });
  if (present == identities.end()) {
    if (!allow_create)
      return fail(ErrorKind::not_found, "repository '" + describe() + "' has no " + key + " (identity)");
    const std::string fresh = "format=" + std::to_string(k_repository_format) + "\n";
    auto created = m_objects.backend().put(key, as_bytes(fresh), PutMode::create_only);
    if (!created && created.error().kind != ErrorKind::conflict) return created;
    auto data = m_objects.backend().get(key);
    if (!data) return std::unexpected(data.error());
    if (!*data) return fail(ErrorKind::io, "repository '" + describe() + "': " + key + " vanished right after it was created");
    return parse_identity(as_text(**data), describe());
  }
  // The repositories must hold the same cluster: parse each, the first with a system
  // identifier leading.
  std::optional<std::uint64_t> first_id, first_size;
  std::string first_where, reference = **present;
  for (std::size_t i = 0; i < count; ++i) {
    if (!identities[i]) continue;
    const std::string where = m_objects.member(i).describe();
    m_system_identifier.reset();
    m_segment_size.reset();
    if (auto r = parse_identity(*identities[i], where); !r) return r;
    if (m_segment_size && first_size && *m_segment_size != *first_size)
      return fail(ErrorKind::invalid, "repositories of one walvaultd hold WAL of different segment sizes (" + where + ": " +
                                          std::to_string(*m_segment_size) + " bytes)");
    if (m_segment_size) first_size = m_segment_size;
    if (!m_system_identifier) continue;
    if (first_id && *first_id != *m_system_identifier)
      return fail(ErrorKind::invalid, "repositories '" + first_where + "' and '" + where + "' hold different clusters (system identifier " +
                                          std::to_string(*first_id) + " vs " + std::to_string(*m_system_identifier) +
                                          "): give walvaultd repositories of one cluster only");
    if (!first_id) {
      first_id = m_system_identifier;
      first_where = where;
      reference = *identities[i];
    }
  }
  m_system_identifier.reset();
  m_segment_size.reset();
  m_pg_version.reset();
  if (auto r = parse_identity(reference, first_where.empty() ? describe() : first_where); !r) return r;
  for (std::size_t i = 0; i < count; ++i) {
    if (identities[i]) {
      // The first push writes the cluster into every identity; one it did not reach (that
      // push failed there) is completed now, or it would never be written again.
      if (first_id && *identities[i] != reference && identities[i]->find("system-identifier=") == std::string::npos)
        if (auto r = m_objects.member(i).backend().put(key, as_bytes(reference), PutMode::replace); !r) return r;
      continue;
    }
    const std::string where = m_objects.member(i).describe();
    if (allow_create && !first_id) {
      // Nothing archived yet anywhere (no repository names a cluster): a repository added now
      // simply starts with the others. Once one names a cluster, only sync may fill another.
      auto created = m_objects.member(i).backend().put(key, as_bytes(reference), PutMode::create_only);
      if (!created && created.error().kind != ErrorKind::conflict) return created;
      continue;
    }
    m_objects.mirror()->set_write_block(
        i, "repository '" + where + "' has no " + key + " (identity) while '" + m_objects.member(present - identities.begin()).describe() +
               "' has one: it is new, was emptied, or its filesystem is not mounted; writes stop until 'walvault sync' has "
               "copied the other repositories into it");
  }
  return {};
}

Result<void> Repository::parse_identity(std::string_view text, const std::string& where) {
  bool format_seen = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key_part = line.substr(0, eq), value = line.substr(eq + 1);
    if (key_part == "format") {
      if (value != std::to_string(k_repository_format))
        return fail(ErrorKind::invalid, "repository '" + where + "' has format " + std::string(value) +
                                            ", this walvault reads format " + std::to_string(k_repository_format));
      format_seen = true;
    } else if (key_part == "system-identifier") {
      std::uint64_t id = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (ec != std::errc() || p != value.data() + value.size())
        return fail(ErrorKind::corrupt, "repository identity '" + where + "/walvault.repo' has a bad system-identifier");
      m_system_identifier = id;
    } else if (key_part == "segment-size") {
      std::uint64_t size = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), size);
      if (ec != std::errc() || p != value.data() + value.size() || size == 0)
        return fail(ErrorKind::corrupt, "repository identity '" + where + "/walvault.repo' has a bad segment-size");
      m_segment_size = size;
    } else if (key_part == "pg-version") {
      int version = 0;
      if (std::from_chars(value.data(), value.data() + value.size(), version).ec == std::errc()) m_pg_version = version;
    }
  }
  if (!format_seen)
    return fail(ErrorKind::corrupt, "repository identity '" + where + "/walvault.repo' names no format");
  return {};
}

Result<std::optional<std::string>> Repository::read_identity() {
  auto data = m_objects.backend().get(std::string(k_identity_key));
  if (!data) return std::unexpected(data.error());
  if (!*data) return std::optional<std::string>();
  return std::optional<std::string>(std::string(as_text(**data)));
}

std::optional<int> Repository::pg_version() const {
  std::lock_guard lock(m_mutex);
  return m_pg_version;
}

std::optional<std::uint64_t> Repository::system_identifier() const {
  std::lock_guard lock(m_mutex);
  return m_system_identifier;
}

std::optional<std::uint64_t> Repository::segment_size() const {
  std::lock_guard lock(m_mutex);
  return m_segment_size;
}

Result<void> Repository::check_segment_size(std::uint64_t segment_size, std::string_view file_name) const {
  std::lock_guard lock(m_mutex);
  if (!m_segment_size || *m_segment_size == segment_size) return {};
  return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: its segment size is " +
                                      std::to_string(segment_size) + " bytes, the repository's is " +
                                      std::to_string(*m_segment_size) + " (WAL of another cluster, or a crafted file)");
}

Result<void> Repository::adopt_system_identifier(std::uint64_t system_identifier, int pg_version, std::string_view file_name,
                                                 std::uint64_t segment_size) {
  std::lock_guard lock(m_mutex);
  if (m_system_identifier && *m_system_identifier != system_identifier)
    return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: system identifier " +
                                        std::to_string(system_identifier) + " is not the repository's " +
                                        std::to_string(*m_system_identifier) + " (WAL of another cluster)");
  // Written on first use, and once more for a repository from before segment sizes were kept.
  if (m_system_identifier && (m_segment_size || segment_size == 0)) return {};
  const int version = m_pg_version.value_or(pg_version);
  const std::uint64_t size = m_segment_size.value_or(segment_size);
  std::string identity = "format=" + std::to_string(k_repository_format) + "\nsystem-identifier=" +
                         std::to_string(system_identifier) + "\npg-version=" + std::to_string(version) + "\n";
  if (size) identity += "segment-size=" + std::to_string(size) + "\n";
  if (auto r = m_objects.backend().put(std::string(k_identity_key), as_bytes(identity), PutMode::replace); !r) return r;
  m_system_identifier = system_identifier;
  if (version) m_pg_version = version;
  if (size) m_segment_size = size;
  return {};
}

}  // namespace walvault
