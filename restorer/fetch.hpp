#pragma once
// The get path: read the stored object, decode, verify (checksum and page header), then write
// the plain content into the file the client passed. Nothing unverified reaches PostgreSQL.
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/index.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

class Fetch {
 public:
  // With an index, a name it does not hold is answered "not there" without asking storage
  // (no LIST, no GET on the hot path) unless the request is exact.
  explicit Fetch(Repository& repository, Index* index = nullptr) : m_repository(repository), m_index(index) {}

  // Writes the archived content of `name` into `out_fd` (a regular file, truncated first) and
  // returns its size. A name that is not archived is ErrorKind::not_found. `exact`: pg_rewind's
  // real names; storage is always asked.
  Result<std::uint64_t> get(std::string_view name, int out_fd, bool exact = true);

  // GET request handler (docs/protocol.md).
  protocol::Message handle(Request& request);

  std::uint64_t served() const { return m_served.load(); }

 private:
  Result<std::uint64_t> stream_segment(std::span<const std::byte> stored, const WalName& name, std::string_view file_name,
                                       const std::string& what, int out_fd);

  Repository& m_repository;
  Index* m_index;
  std::atomic<std::uint64_t> m_served{0};
};

}  // namespace walvault
