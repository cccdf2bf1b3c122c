#pragma once
// Look-ahead push: PostgreSQL's archiver calls archive_command for one segment at a time, so a
// backlog drains at the speed of one compress-and-store per call. With pgdata set, walvaultd
// watches pg_wal/archive_status (inotify, plus a rescan as a fallback), and its own workers push
// every segment marked .ready, oldest first and in parallel, through the same Ingest as
// PostgreSQL's pushes (same checks, same durability, same idempotency). When PostgreSQL then
// calls archive-push for one of them, Ingest answers from the AheadRegistry at about the cost of
// starting the client.
//
// It only reads: pg_wal may be mounted read-only, and PostgreSQL's status files are never
// created, renamed or removed (PostgreSQL renames .ready to .done after its own archive-push
// succeeds, which is what lets it recycle the segment). Nothing is acknowledged to anyone by
// look-ahead; a segment recycled while it is read (its change time moves) is not stored, and a
// record is only kept for a file whose identity held from before the read until after it.
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "archiver/ahead_registry.hpp"
#include "archiver/ingest.hpp"
#include "common/core/index.hpp"

namespace walvault {

struct LookAheadStatus {
  bool enabled = false;
  std::string problem;           // why it cannot work now (pg_wal unreadable, ...); empty: fine
  std::size_t ready = 0;         // segments PostgreSQL lists as .ready
  std::size_t queued = 0;        // of those, waiting for a look-ahead worker or being pushed
  std::size_t stored_ahead = 0;  // of those, stored and recorded: PostgreSQL's push is answered at once
  std::optional<std::int64_t> oldest_ready_us;  // modification time of the oldest .ready file
  std::uint64_t pushed = 0;    // stored by look-ahead since start
  std::uint64_t verified = 0;  // already in the repository (an earlier run, PostgreSQL), proven the same
  std::uint64_t failed = 0;    // look-ahead pushes that failed (PostgreSQL's own push decides)
  std::uint64_t scans = 0;
};

class LookAhead {
 public:
  // Rescans pg_wal/archive_status this often even without an inotify event (a watch that
  // could not be set, an event queue overflow, a volume mounted late).
  static constexpr std::chrono::seconds k_rescan_interval{10};
  // A failed name is tried again after this long (a repository briefly down); refused ones
  // (not this cluster's WAL, different content) only once.
  static constexpr std::chrono::seconds k_retry_after{30};
  // Events closer together than this are one scan.
  static constexpr std::chrono::milliseconds k_min_scan_gap{100};

  LookAhead(Ingest& ingest, Index& index, AheadRegistry& registry, std::string pgdata, unsigned workers);
  ~LookAhead();
  LookAhead(const LookAhead&) = delete;
  LookAhead& operator=(const LookAhead&) = delete;

  void start();
  // Wakes and stops the threads without waiting for them (walvaultd's SIGTERM, on its event
  // loop); stop() also joins them (a push in progress finishes first).
  void request_stop();
  void stop();
  LookAheadStatus status() const;

 private:
  void watch_loop();
  void worker_loop();
  void scan();
  // Pushes one .ready segment and records it; false when it was not recorded.
  bool push_one(const std::string& name);
  void note_problem(std::string problem);

  Ingest& m_ingest;
  Index& m_index;
  AheadRegistry& m_registry;
  const std::string m_pgdata;
  const std::string m_wal_dir;
  const std::string m_status_dir;
  const unsigned m_workers;
  const std::int64_t m_started_us;  // what the index shows stored since then is not looked at again

  mutable std::mutex m_mutex;
  std::condition_variable m_work;
  bool m_stopping = false;
  std::set<std::string> m_ready;                      // last scan's .ready segments
  std::set<std::string> m_pending;                    // to push, oldest first
  std::set<std::string> m_in_flight;
  std::map<std::string, std::int64_t> m_not_before;   // failed: steady-clock us of the next try (INT64_MAX: never)
  std::optional<std::int64_t> m_oldest_ready_us;
  std::string m_problem;
  std::uint64_t m_scans = 0;
  std::atomic<std::uint64_t> m_pushed{0};
  std::atomic<std::uint64_t> m_verified{0};
  std::atomic<std::uint64_t> m_failed{0};
  std::atomic<bool> m_warned_coarse{false};

  int m_wake_fd = -1;  // eventfd: stop() wakes the watcher
  std::thread m_watcher;
  std::vector<std::thread> m_threads;
};

}  // namespace walvault
