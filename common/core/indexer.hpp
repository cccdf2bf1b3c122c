#pragma once
// Turns repository objects into index rows: segments (with the commit-time range found by
// walking their records), timelines from .history files, backups from .backup files.
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/index.hpp"
#include "common/core/repository.hpp"
#include "common/core/sha256.hpp"

namespace walvault {

// How many names of lost objects a report carries (the count is always whole).
inline constexpr std::size_t k_lost_names_reported = 20;

struct RepairReport {
  std::size_t added = 0;
  std::size_t removed = 0;     // rows of objects retention removed (an interrupted prune)
  std::size_t unreadable = 0;  // objects that could not be decoded (left for `verify` to report)
  // Objects the index listed as archived that the repository no longer has (kept as
  // k_missing_sha256 rows, so they are answered as lost): damage, reported loudly.
  std::size_t lost_count = 0;
  std::vector<std::string> lost_names;  // the first k_lost_names_reported of them
};

class Indexer {
 public:
  Indexer(Repository& repository, Index& index) : m_repository(repository), m_index(index) {}

  Index& index() { return m_index; }

  // After a push made `name` durable: index it from its plain content.
  // `key_id`: what the stored copy is encrypted with (0: plain; nullopt: not known).
  Result<void> index_pushed(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest,
                            std::optional<std::uint32_t> key_id = std::nullopt);

  // Brings the index up to the repository: indexes objects it lacks, marks rows whose object
  // is gone as missing (lost). Used at start-up (a crash between store and index leaves the
  // index behind).
  Result<RepairReport> repair();
  // Clears the index and builds it again from the repository; objects the old index listed
  // that the repository lacks are reported and recorded as lost, as in repair().
  Result<RepairReport> rebuild();

 private:
  Result<RepairReport> repair_from(const std::vector<std::string>& known, std::vector<ObjectInfo> objects,
                                   std::map<std::string, IndexedObject>* cleared);
  Result<void> record_lost(const std::vector<std::string>& known, const std::set<std::string>& present,
                           const std::map<std::string, IndexedObject>* cleared, RepairReport& report);
  Result<void> repair_stored_backups(RepairReport& report);
  Result<std::optional<Index::Carry>> carry_before(std::uint32_t timeline, std::uint64_t segno);
  Result<void> index_plain(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest,
                           std::uint64_t stored_size, std::int64_t stored_at_us, std::optional<std::uint32_t> key_id);

  Repository& m_repository;
  Index& m_index;
};

}  // namespace walvault
