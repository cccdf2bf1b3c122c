#pragma once
// What look-ahead stored, by name: the identity of the pg_wal file it read (device, inode, size,
// modification and change times, first page) and the SHA-256 its content was stored under.
// PostgreSQL's own archive-push of that name hands over a descriptor of the same file; when
// fstat still says the same file, unchanged since look-ahead read it, the content is the one
// already stored and proven, so the push is answered without reading 16 MiB again.
//
// Why the file's identity is proof of its content: PostgreSQL writes a segment completely,
// fsyncs it and only then creates its .ready file; it does not write to it again until it has
// been archived (recycling renames it first, which changes its change time, and a write changes
// both times). st_ctime cannot be set from user space.
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/base/fd.hpp"

namespace walvault {

// How much of the file's start AheadRecord::first_page_crc covers (PostgreSQL's page size).
inline constexpr std::size_t k_ahead_first_page = 8192;

struct AheadRecord {
  FileIdentity file;
  std::uint32_t first_page_crc = 0;  // CRC-32C of the first min(8 KiB, size) bytes
  std::string sha256;                // hex, as the index holds it
  std::chrono::steady_clock::time_point stored_at{};  // when look-ahead's write was acknowledged
};

// For this long after look-ahead's own write was acknowledged (temp + fsync + rename, or PUT),
// the record is the proof of the stored copy; PostgreSQL's push of it then costs no storage
// request (on S3 a round trip each). Older records are checked against every repository's
// object head first (something may have removed or damaged it since).
inline constexpr std::chrono::minutes k_ahead_trusted_for{10};

class AheadRegistry {
 public:
  // 128 GiB of 16 MiB segments; look-ahead queues no more than this (LookAhead::scan), so the
  // eviction below is only a bound, and it drops the newest names (the oldest are the ones
  // PostgreSQL pushes next).
  static constexpr std::size_t k_capacity = 8192;

  void remember(const std::string& name, AheadRecord record) {
    std::lock_guard lock(m_mutex);
    m_records[name] = std::move(record);
    while (m_records.size() > k_capacity) m_records.erase(std::prev(m_records.end()));
  }

  std::optional<AheadRecord> find(std::string_view name) const {
    std::lock_guard lock(m_mutex);
    auto it = m_records.find(std::string(name));
    if (it == m_records.end()) return std::nullopt;
    return it->second;
  }

  bool contains(std::string_view name) const { return find(name).has_value(); }

  // Marks `name` for the guard's life: Storing (look-ahead stores it now; PostgreSQL's push of
  // the same name waits for it in wait_while_storing instead of reading and proving 16 MiB a
  // second time) or PostgresPush (PostgreSQL's own push is under way; look-ahead leaves the name
  // alone). Each side marks itself first and then looks at the other, so at least one of them
  // sees the other.
  template <void (AheadRegistry::*Begin)(const std::string&), void (AheadRegistry::*End)(const std::string&)>
  class Mark {
   public:
    Mark(AheadRegistry& registry, std::string name) : m_registry(registry), m_name(std::move(name)) { (m_registry.*Begin)(m_name); }
    ~Mark() { (m_registry.*End)(m_name); }
    Mark(const Mark&) = delete;
    Mark& operator=(const Mark&) = delete;

   private:
    AheadRegistry& m_registry;
    std::string m_name;
  };

  void begin_storing(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_storing.insert(name);
  }
  void end_storing(const std::string& name) {
    {
      std::lock_guard lock(m_mutex);
      m_storing.erase(name);
    }
    m_stored.notify_all();
  }
  void begin_postgres_push(const std::string& name) {
    std::lock_guard lock(m_mutex);
    ++m_postgres_pushing[name];
  }
  void end_postgres_push(const std::string& name) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_postgres_pushing.find(name); it != m_postgres_pushing.end() && --it->second == 0) m_postgres_pushing.erase(it);
  }
  bool postgres_pushing(const std::string& name) const {
    std::lock_guard lock(m_mutex);
    return m_postgres_pushing.contains(name);
  }

  // True when look-ahead was storing `name` (and has finished, or `limit` passed).
  bool wait_while_storing(std::string_view name, std::chrono::milliseconds limit) const {
    std::unique_lock lock(m_mutex);
    const std::string key(name);
    if (!m_storing.contains(key)) return false;
    m_stored.wait_for(lock, limit, [&] { return !m_storing.contains(key); });
    return true;
  }

  // Drops every name PostgreSQL no longer lists as .ready (archived: its push came already).
  void keep_only(const std::set<std::string>& names) {
    std::lock_guard lock(m_mutex);
    for (auto it = m_records.begin(); it != m_records.end();) it = names.contains(it->first) ? std::next(it) : m_records.erase(it);
  }

  std::size_t size() const {
    std::lock_guard lock(m_mutex);
    return m_records.size();
  }

 private:
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_stored;

 public:
  using Storing = Mark<&AheadRegistry::begin_storing, &AheadRegistry::end_storing>;
  using PostgresPush = Mark<&AheadRegistry::begin_postgres_push, &AheadRegistry::end_postgres_push>;

 private:
  std::map<std::string, AheadRecord, std::less<>> m_records;
  std::set<std::string> m_storing;
  std::map<std::string, int> m_postgres_pushing;
};

}  // namespace walvault
