#pragma once
// Base backups taken by walvaultd, one at a time, on a thread of their own: it runs
// pg_basebackup (archiver/pg_basebackup), stores the tar stream as chunk objects of about
// `backup-chunk-size` each (archiver/backup_chunker), reads backup_label
// (common/core/backup_label) and waits for the WAL; the BACKUP verb is archiver/backup_verb.
// The backup is declared complete (backup.json written, index row added) only after pg_basebackup
// succeeded and the WAL from its start to its stop is in the archive; a backup that fails at
// any point leaves no backup.json and its chunks are removed (or swept by prune after a crash).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "archiver/backup_connection.hpp"
#include "common/base/error.hpp"
#include "common/core/base_backup.hpp"
#include "common/core/codec.hpp"
#include "common/core/index.hpp"
#include "common/core/rate_limiter.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"


namespace walvault {

class PgBasebackup;

struct BackupSettings {
  std::string conninfo;  // pg-conninfo; empty: see choose_connection()
  std::string pgdata;    // the served cluster's data directory; empty: not known
  std::string bindir;    // where pg_basebackup is
  std::string checkpoint = "fast";
  std::uint64_t chunk_size = 64ULL << 20;
  CompressSpec compress;
  std::chrono::seconds wal_wait{120};  // after pg_basebackup: how long the WAL may take to arrive
  PgConnection connection;             // resolved by start() for each backup
};

// What a running (or the last) backup is doing; for `walvault status` and the CLI's progress.
struct BackupProgress {
  std::string id;
  std::string label;
  std::string trigger;  // "walvault backup" or "schedule"
  std::string phase;    // starting, streaming, waiting for WAL, complete, failed
  std::uint64_t bytes = 0;            // tar bytes read so far
  std::uint64_t estimated_bytes = 0;  // pg_basebackup's estimate (0 until known)
  std::uint64_t stored_bytes = 0;
  std::uint64_t files = 0;
  std::uint64_t chunks = 0;
  std::int64_t started_at_us = 0;
  std::int64_t finished_at_us = 0;
  std::string error;  // phase "failed": why
  bool finished() const { return phase == "complete" || phase == "failed"; }
};

class BackupTaker {
 public:
  BackupTaker(Repository& repository, Index& index, std::function<BackupSettings()> settings);
  ~BackupTaker();  // cancels a running backup and waits for it
  BackupTaker(const BackupTaker&) = delete;
  BackupTaker& operator=(const BackupTaker&) = delete;

  // Starts a backup on a thread of its own and returns its id; ErrorKind::conflict when one is
  // already running, invalid when no server is known (choose_connection()), refused when
  // pgdata is another cluster than the repository's. `caller`: `walvault backup`'s -d and
  // libpq environment, used only without pg-conninfo.
  Result<std::string> start(std::string label, std::string trigger, const CallerConnection& caller = {});
  // Waits for backup `id` to finish, calling `on_progress` about once a second meanwhile.
  Result<StoredBackup> wait(const std::string& id, const std::function<void(const BackupProgress&)>& on_progress);
  // The running backup, else the last one since start-up.
  std::optional<BackupProgress> progress() const;
  // backup-rate-limit: paces the stream read from pg_basebackup. Set once, before any backup.
  void set_rate_limiter(RateLimiter* limiter) { m_rate_limit = limiter; }
  // Stops a running backup (SIGTERM): it fails and leaves nothing that looks complete.
  void cancel();
  // Called on the backup's thread after each backup finishes, complete or failed (the daemon
  // prunes then: retention waits while a backup is being taken).
  void set_on_finished(std::function<void()> callback) { m_on_finished = std::move(callback); }

 private:
  void run(std::string id, BackupSettings settings);
  Result<StoredBackup> take(const std::string& id, const BackupSettings& settings);
  Result<std::string> unique_id(std::int64_t now_us);
  void update(const std::function<void(BackupProgress&)>& change);

  Repository& m_repository;
  Index& m_index;
  std::function<BackupSettings()> m_settings;
  std::function<void()> m_on_finished;

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::optional<BackupProgress> m_progress;
  std::optional<StoredBackup> m_result;
  struct Outcome {
    std::optional<StoredBackup> result;
    std::string error;
  };
  std::map<std::string, Outcome> m_outcomes;  // the last few finished backups, for late waiters
  std::thread m_thread;
  std::atomic<bool> m_cancel{false};
  RateLimiter* m_rate_limit = nullptr;
  std::mutex m_child_mutex;  // m_child: set, cleared and terminated under it
  PgBasebackup* m_child = nullptr;
};

}  // namespace walvault
