#pragma once
// The push path: validate -> checksum -> compress -> durable store -> acknowledge.
#include <atomic>
#include <functional>
#include <cstdint>
#include <string_view>

#include "archiver/ahead_registry.hpp"
#include "archiver/name_locks.hpp"
#include "common/base/error.hpp"
#include "common/core/codec.hpp"
#include "common/core/indexer.hpp"
#include "common/core/live_setting.hpp"
#include "common/core/rate_limiter.hpp"
#include "common/core/sha256.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

// ahead: look-ahead stored this very file already (see AheadRegistry), proven without reading it.
enum class PushOutcome { stored, duplicate, ahead };

struct IngestCounters {
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> conflicts{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> ahead{0};  // answered from look-ahead's record
  // Pushes of a name look-ahead recorded whose descriptor was not that file (a copy, a changed
  // file, or another view of it: PostgreSQL's container sees other device/inode numbers).
  std::atomic<std::uint64_t> ahead_misses{0};
};

class Ingest {
 public:
  // `compress` is read for every push; `indexer` (optional) records every object once it is
  // durable.
  Ingest(Repository& repository, LiveSetting<CompressSpec> compress, Indexer* indexer = nullptr);

  // Archives the file open at `fd` under `name`. Never overwrites a stored object: the same
  // content again is PushOutcome::duplicate; different content is ErrorKind::conflict.
  // `unchanged_since_read` (look-ahead's): asked once the content is read, before anything is
  // stored; an error stops the push (the file changed while it was read: not that content).
  Result<PushOutcome> push(std::string_view name, int fd, const std::function<Result<void>()>& unchanged_since_read = nullptr);

  // PUSH request handler (docs/protocol.md).
  protocol::Message handle(Request& request);

  const IngestCounters& counters() const { return m_counters; }

  // Look-ahead's records: a push of a file look-ahead stored is answered from them. Set once,
  // before serving, and only when look-ahead runs (without it a push never looks at them).
  void set_ahead_registry(AheadRegistry* registry) { m_ahead = registry; }
  // push-rate-limit: paces the reads of every push's file. Set once, before serving.
  void set_rate_limiter(RateLimiter* limiter) { m_rate_limit = limiter; }

 private:
  Result<void> validate(const WalName& name, std::string_view file_name, std::span<const std::byte> content);
  // The whole file into `content`, in 1 MiB pieces paced by push-rate-limit when it is set.
  Result<void> read_content(int fd, std::span<std::byte> content, std::string_view file_name);

  // `key_id`: the key the stored copy is encrypted with (0: plain), for status's counts.
  void record(const WalName& name, std::span<const std::byte> content, const Sha256Digest& digest, bool already_indexed_ok,
              std::optional<std::uint32_t> key_id);

  std::string recorded_sha256(std::string_view file_name);

  // True when the file open at `fd` is the one look-ahead stored under `file_name`, unchanged,
  // and every repository still holds that content under the name (by its object's head).
  bool stored_ahead(std::string_view file_name, int fd, const struct stat& st);

  Repository& m_repository;
  Indexer* m_indexer;
  AheadRegistry* m_ahead = nullptr;
  RateLimiter* m_rate_limit = nullptr;
  std::atomic<bool> m_warned_ahead_miss{false};
  LiveSetting<CompressSpec> m_compress;
  NameLocks m_locks;
  IngestCounters m_counters;
};

}  // namespace walvault
