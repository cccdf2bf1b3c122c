#pragma once
// The daemon's side of `walvault restore`: BACKUP-READ streams one chunk of a stored base
// backup, decoded and proven (size and SHA-256 against backup.json), into the pipe the CLI
// passed; the CLI extracts it as it arrives. The answer comes only after the last byte was
// proven, so the CLI treats a chunk as good only on OK.
#include <atomic>
#include <cstdint>

#include "common/core/index.hpp"
#include "common/core/rate_limiter.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

class BackupReads {
 public:
  BackupReads(Repository& repository, Index& index) : m_repository(repository), m_index(index) {}
  void register_handlers(HandlerRegistry& registry);
  protocol::Message read_chunk(Request& request);
  std::uint64_t chunks_served() const { return m_served.load(); }
  // get-rate-limit: walvault restore's chunk streams count against the same limit as gets.
  void set_rate_limiter(RateLimiter* limiter) { m_rate_limit = limiter; }

 private:
  Repository& m_repository;
  Index& m_index;
  std::atomic<std::uint64_t> m_served{0};
  RateLimiter* m_rate_limit = nullptr;
};

}  // namespace walvault
