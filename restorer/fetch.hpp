#pragma once
// The get path: read the stored object, decode, verify (checksum and page header), then write
// the plain content into the file the client passed. Nothing unverified reaches PostgreSQL.
#include <atomic>
#include <functional>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/index.hpp"
#include "common/core/rate_limiter.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

class Fetch {
 public:
  // Storage is asked first for every name; the index is what tells "never archived" (NOTFOUND)
  // from "archived and lost" (corrupt) when storage has nothing: see judge_absent().
  Fetch(Repository& repository, Index& index) : m_repository(repository), m_index(index) {}

  // Writes the archived content of `name` into `out_fd` (a regular file, truncated first) and
  // returns its size. A name proven never archived (or pruned on purpose) is
  // ErrorKind::not_found; one that was archived and is gone is ErrorKind::corrupt. `exact`:
  // pg_rewind's real names; storage is always asked and no gap check applies. `written_crc`,
  // when given, receives the CRC-32C of exactly the bytes written (the prefetch spool keeps it
  // to check the copy when it is served, without reading the file back now).
  // `for_postgres`: out_fd is the file PostgreSQL (or pg_rewind) reads next, so its writeback
  // starts as it is written (EarlyWriteback); not for the prefetch spool's short-lived copies.
  Result<std::uint64_t> get(std::string_view name, int out_fd, bool exact = true, std::uint32_t* written_crc = nullptr,
                            bool for_postgres = false);

  // GET request handler (docs/protocol.md).
  protocol::Message handle(Request& request);

  std::uint64_t served() const { return m_served.load(); }
  // A GET answered from elsewhere (the prefetch spool) with content this Fetch verified.
  void note_served() { ++m_served; }
  // get-rate-limit: paces what is decoded out of the repository (gets and prefetch). Set once,
  // before serving.
  void set_rate_limiter(RateLimiter* limiter) { m_rate_limit = limiter; }

 private:
  // get() from one object store: the repository (a mirror reads the first copy) or one member.
  Result<std::uint64_t> serve(ObjectStore& objects, const WalName& name, std::string_view file_name, int out_fd, bool exact,
                              std::uint32_t* written_crc, bool for_postgres);
  Result<std::uint64_t> stream_segment(ObjectStream& stream, std::string_view file_name, int out_fd, std::uint32_t* written_crc,
                                       bool for_postgres);
  Result<std::uint64_t> copy_small(ObjectStream& stream, const WalName& name, std::string_view file_name, const std::string& what,
                                   int out_fd, std::uint32_t* written_crc);
  static std::string different_content(const std::string& what);
  template <class T>
  Result<T> present_or_judged(const std::string& key, std::string_view file_name, const WalName& name, bool exact,
                              const std::function<Result<std::optional<T>>()>& open);
  Failure judge_absent(std::string_view file_name, const WalName& name, const std::string& key, bool exact);
  std::optional<Failure> hole_around(std::string_view file_name, const WalName& name);

  Repository& m_repository;
  Index& m_index;
  std::atomic<std::uint64_t> m_served{0};
  RateLimiter* m_rate_limit = nullptr;
};

}  // namespace walvault
