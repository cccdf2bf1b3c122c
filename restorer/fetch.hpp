#pragma once
// The get path: read the stored object, decode, verify (checksum and page header), then write
// the plain content into the file the client passed. Nothing unverified reaches PostgreSQL.
#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/base/error.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

class Fetch {
 public:
  explicit Fetch(Repository& repository) : m_repository(repository) {}

  // Writes the archived content of `name` into `out_fd` (a regular file, truncated first) and
  // returns its size. A name that is not archived is ErrorKind::not_found.
  Result<std::uint64_t> get(std::string_view name, int out_fd);

  // GET request handler (docs/protocol.md).
  protocol::Message handle(Request& request);

  std::uint64_t served() const { return m_served.load(); }

 private:
  Repository& m_repository;
  std::atomic<std::uint64_t> m_served{0};
};

}  // namespace walvault
