#pragma once
// Turns repository objects into index rows: segments (with the commit-time range found by
// walking their records), timelines from .history files, backups from .backup files.
#include <cstdint>
#include <span>

#include "common/base/error.hpp"
#include "common/core/index.hpp"
#include "common/core/repository.hpp"
#include "common/core/sha256.hpp"

namespace walvault {

struct RepairReport {
  std::size_t added = 0;
  std::size_t removed = 0;
  std::size_t unreadable = 0;  // objects that could not be decoded (left for `verify` to report)
};

class Indexer {
 public:
  Indexer(Repository& repository, Index& index) : m_repository(repository), m_index(index) {}

  Index& index() { return m_index; }

  // After a push made `name` durable: index it from its plain content.
  Result<void> index_pushed(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest);

  // Brings the index up to the repository: indexes objects it lacks, drops rows whose object
  // is gone. Used at start-up (a crash between store and index leaves the index behind).
  Result<RepairReport> repair();
  // Clears the index and builds it again from the repository alone.
  Result<RepairReport> rebuild();

 private:
  Result<void> repair_stored_backups(RepairReport& report);
  Result<std::optional<Index::Carry>> carry_before(std::uint32_t timeline, std::uint64_t segno);
  Result<void> index_plain(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest,
                           std::uint64_t stored_size, std::int64_t stored_at_us);

  Repository& m_repository;
  Index& m_index;
};

}  // namespace walvault
