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
#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace walvault {

struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t modified_ns = 0;
  std::int64_t changed_ns = 0;

  static FileIdentity of(const struct stat& st) {
    return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                        static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
  }
  bool operator==(const FileIdentity&) const = default;
};

// How much of the file's start AheadRecord::first_page_crc covers (PostgreSQL's page size).
inline constexpr std::size_t k_ahead_first_page = 8192;

struct AheadRecord {
  FileIdentity file;
  std::uint32_t first_page_crc = 0;  // CRC-32C of the first min(8 KiB, size) bytes
  std::string sha256;                // hex, as the index holds it
};

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
  std::map<std::string, AheadRecord, std::less<>> m_records;
};

}  // namespace walvault
