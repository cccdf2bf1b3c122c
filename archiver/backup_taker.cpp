#include "archiver/backup_taker.hpp"

#include "common/base/text.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "archiver/backup_chunker.hpp"
#include "archiver/pg_basebackup.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/backup_label.hpp"
#include "common/core/object_store.hpp"
#include "common/core/pgdata.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

BackupTaker::BackupTaker(Repository& repository, Index& index, std::function<BackupSettings()> settings)
    : m_repository(repository), m_index(index), m_settings(std::move(settings)) {}

BackupTaker::~BackupTaker() {
  cancel();
  if (m_thread.joinable()) m_thread.join();
}

void BackupTaker::cancel() {
  m_cancel = true;
  std::lock_guard lock(m_child_mutex);
  if (m_child) m_child->terminate();
}

std::optional<BackupProgress> BackupTaker::progress() const {
  std::lock_guard lock(m_mutex);
  return m_progress;
}

void BackupTaker::update(const std::function<void(BackupProgress&)>& change) {
  {
    std::lock_guard lock(m_mutex);
    if (m_progress) change(*m_progress);
  }
  m_changed.notify_all();
}

Result<std::string> BackupTaker::unique_id(std::int64_t now_us) {
  const std::string base = backup_id_for(now_us);
  // Any directory counts as taken, even one holding only a crashed write's temp file.
  auto taken = m_repository.objects().list_children(std::string(k_backup_prefix));
  if (!taken) return std::unexpected(taken.error());
  for (int n = 1; n < 100; ++n) {
    const std::string id = n == 1 ? base : base + "-" + std::to_string(n);
    if (std::find(taken->begin(), taken->end(), id) == taken->end()) return id;
  }
  return fail(ErrorKind::conflict, "unable to find a free backup id for " + base);
}

Result<std::string> BackupTaker::start(std::string label, std::string trigger, const CallerConnection& caller) {
  BackupSettings settings = m_settings();
  auto connection = choose_connection(settings.conninfo, settings.pgdata, caller, ::geteuid());
  if (!connection) return std::unexpected(connection.error());
  settings.connection = std::move(*connection);
  if (!settings.pgdata.empty()) {
    // Another cluster's pgdata is refused; one walvaultd cannot read is only a warning (the
    // connection may come from -d or pg-conninfo, and pg_basebackup says what it reaches).
    if (auto r = check_pgdata_cluster(settings.pgdata, m_repository); !r) {
      if (r.error().kind == ErrorKind::refused) return std::unexpected(r.error());
      spdlog::warn("backup: unable to check pgdata's system identifier: {}", r.error().message);
    }
  }
  if (label.size() > 1000 || label.find_first_of("\r\n") != std::string::npos)
    return fail(ErrorKind::invalid, "--label must be one line of at most 1000 bytes (PostgreSQL keeps it in backup_label)");
  // backup.json, status and the notifications are JSON: a label that is not UTF-8 cannot be kept.
  if (!valid_utf8(label)) return fail(ErrorKind::invalid, "--label must be UTF-8 text (it is kept in backup.json)");
  std::lock_guard lock(m_mutex);
  if (m_progress && !m_progress->finished())
    return fail(ErrorKind::conflict, "backup " + m_progress->id + " is already running (" + m_progress->phase + ")");
  if (m_thread.joinable()) m_thread.join();  // the previous one has finished
  const std::int64_t now = now_unix_us();
  auto id = unique_id(now);
  if (!id) return std::unexpected(id.error());
  if (label.empty()) label = "walvault " + *id;
  m_cancel = false;
  m_result.reset();
  m_progress = BackupProgress{};
  m_progress->id = *id;
  m_progress->label = label;
  m_progress->trigger = std::move(trigger);
  m_progress->phase = "starting";
  m_progress->started_at_us = now;
  m_thread = std::thread([this, id = *id, settings = std::move(settings)] { run(id, settings); });
  return *id;
}

Result<StoredBackup> BackupTaker::wait(const std::string& id, const std::function<void(const BackupProgress&)>& on_progress) {
  std::unique_lock lock(m_mutex);
  for (;;) {
    if (!m_progress || m_progress->id != id) {
      // Finished, and another backup (the schedule) started before this waiter woke up.
      auto done = m_outcomes.find(id);
      if (done == m_outcomes.end()) return fail(ErrorKind::not_found, "backup " + id + " is not running");
      if (!done->second.result) return fail(ErrorKind::io, "backup " + id + " failed: " + done->second.error);
      return *done->second.result;
    }
    if (m_progress->finished()) break;
    const BackupProgress snapshot = *m_progress;
    lock.unlock();
    if (on_progress) on_progress(snapshot);
    lock.lock();
    m_changed.wait_for(lock, std::chrono::seconds(1), [&] { return !m_progress || m_progress->finished(); });
  }
  if (m_progress->phase == "failed") return fail(ErrorKind::io, "backup " + id + " failed: " + m_progress->error);
  if (!m_result) return fail(ErrorKind::internal, "backup " + id + " finished without a result");
  return *m_result;
}

void BackupTaker::run(std::string id, BackupSettings settings) {
  spdlog::info("backup {}: starting pg_basebackup ({}/pg_basebackup, checkpoint {})", id, settings.bindir, settings.checkpoint);
  Result<StoredBackup> result = take(id, settings);
  if (!result) {
    // Nothing of a failed backup may look like a backup: remove its chunks now (prune sweeps
    // whatever a crash leaves behind).
    // backup.json first (it may exist if its directory sync failed): a crash during this
    // cleanup must never leave a description whose chunks are gone.
    (void)m_repository.objects().remove(backup_info_key(id));
    if (auto removed = m_repository.objects().remove_all(backup_directory_key(id)); !removed)
      spdlog::warn("backup {}: unable to remove its chunks now ({}); prune will", id, removed.error().message);
    spdlog::error("backup {} failed: {}", id, result.error().message);
  } else {
    spdlog::info("backup {} complete: {} files, {} bytes ({} stored) in {} chunk(s), WAL {} .. {} on timeline {}", id, result->files,
                 result->plain_bytes, result->stored_bytes, result->chunks.size(), format_lsn(result->start_lsn),
                 format_lsn(result->stop_lsn), result->timeline);
  }
  {
    std::lock_guard lock(m_mutex);
    if (result) m_result = *result;
    m_progress->phase = result ? "complete" : "failed";
    if (!result) m_progress->error = result.error().message;
    m_progress->finished_at_us = now_unix_us();
    if (m_outcomes.size() >= 16) m_outcomes.erase(m_outcomes.begin());  // ids sort by time
    m_outcomes[id] = Outcome{result ? std::optional<StoredBackup>(*result) : std::nullopt, m_progress->error};
  }
  m_changed.notify_all();
  if (m_on_finished) m_on_finished();
}

Result<StoredBackup> BackupTaker::take(const std::string& id, const BackupSettings& settings) {
  StoredBackup backup;
  backup.id = id;
  backup.label = progress()->label;
  backup.started_at_us = progress()->started_at_us;

  auto started = PgBasebackup::start(PgBasebackupOptions{settings.bindir, settings.checkpoint, backup.label, settings.connection},
                                     [this](std::uint64_t estimate) { update([&](BackupProgress& p) { p.estimated_bytes = estimate; }); });
  if (!started) return std::unexpected(started.error());
  PgBasebackup& child = **started;
  {
    std::lock_guard lock(m_child_mutex);
    m_child = &child;
  }
  // Forgotten before it is destroyed (which reaps it), so cancel() never reaches a gone child.
  struct Forget {
    BackupTaker& taker;
    ~Forget() {
      std::lock_guard lock(taker.m_child_mutex);
      taker.m_child = nullptr;
    }
  } forget{*this};
  if (m_cancel) child.terminate();
  update([](BackupProgress& p) { p.phase = "streaming"; });

  ChunkerHooks hooks;
  hooks.on_progress = [this](const ChunkedTar& tar) {
    update([&](BackupProgress& p) {
      p.bytes = tar.plain_bytes;
      p.chunks = tar.chunks.size();
      p.stored_bytes = tar.stored_bytes;
      p.files = tar.files;
    });
  };
  hooks.cancelled = [this] { return m_cancel.load(); };
  if (m_rate_limit)
    hooks.throttle = [this](std::uint64_t bytes) { return m_rate_limit->acquire(bytes, [this] { return m_cancel.load(); }); };
  auto tar = store_tar_as_chunks(child.tar_fd(), m_repository.objects(), id, settings.chunk_size, settings.compress, hooks);
  if (!tar) return std::unexpected(child.explain(tar.error()));
  if (auto exited = child.finish(); !exited) return std::unexpected(exited.error());
  backup.chunks = std::move(tar->chunks);
  backup.files = tar->files;
  backup.plain_bytes = tar->plain_bytes;
  backup.stored_bytes = tar->stored_bytes;
  backup.has_manifest = tar->has_manifest;
  if (backup.chunks.empty()) return fail(ErrorKind::io, "pg_basebackup produced no data");
  auto label = parse_backup_label(tar->backup_label);
  if (!label) return std::unexpected(label.error());
  backup.start_lsn = label->start_lsn;
  backup.checkpoint_lsn = label->checkpoint_lsn;
  backup.timeline = label->timeline;
  backup.pg_version = std::atoi(tar->pg_version.c_str());
  // PostgreSQL writes no .backup file for a backup taken during recovery, so walvault could
  // never prove it complete: say so now instead of after the WAL wait.
  if (label->from_standby)
    return fail(ErrorKind::refused, "the server (from " + settings.connection.source + ") is a standby: walvault takes base "
                                    "backups from the primary only (a standby archives no .backup file to prove a backup complete)");
  update([&](BackupProgress& p) {
    p.phase = "waiting for WAL";
    p.chunks = backup.chunks.size();
    p.stored_bytes = backup.stored_bytes;
    p.files = backup.files;
  });

  // Complete only once the .backup file and every segment from start to stop are archived.
  // With -X none pg_basebackup has already waited for PostgreSQL to archive them, so this
  // normally passes at once; it fails when archive_command does not point at walvault.
  const auto deadline = std::chrono::steady_clock::now() + settings.wal_wait;
  std::string missing;
  std::uint64_t segment_size = 0;
  for (;;) {
    missing.clear();
    auto rows = m_index.backups();
    if (!rows) return std::unexpected(rows.error());
    const IndexedBackup* found = nullptr;
    for (const auto& row : *rows)
      if (row.start_lsn == backup.start_lsn && row.timeline == backup.timeline && row.label == backup.label) found = &row;
    if (!found) {
      missing = "the .backup file for WAL location " + format_lsn(backup.start_lsn);
    } else {
      backup.backup_file = found->name;
      backup.stop_lsn = found->stop_lsn;
      backup.start_us = found->start_us;
      backup.stop_us = found->stop_us;
      if (segment_size == 0) {
        // Learnt once (the index knows it from any archived segment), not on every poll.
        auto segments = m_index.segments(SegmentFilter{backup.timeline, std::nullopt, std::nullopt});
        if (!segments) return std::unexpected(segments.error());
        if (!segments->empty()) segment_size = segments->front().segment_size;
      }
      if (segment_size == 0) {
        missing = "any segment of timeline " + std::to_string(backup.timeline);
      } else {
        const std::uint64_t first = backup.start_lsn / segment_size;
        const std::uint64_t last = (backup.stop_lsn > 0 ? backup.stop_lsn - 1 : 0) / segment_size;
        for (std::uint64_t segno = first; segno <= std::max(first, last) && missing.empty(); ++segno) {
          const std::string name = format_wal_name(segment_from_number(backup.timeline, segno, segment_size));
          auto there = m_index.contains(name);
          if (!there) return std::unexpected(there.error());
          if (!*there) missing = "segment " + name;
        }
      }
    }
    if (missing.empty()) break;
    if (m_cancel) return fail(ErrorKind::io, "cancelled (walvaultd is stopping)");
    if (std::chrono::steady_clock::now() > deadline)
      return fail(ErrorKind::not_found, "pg_basebackup finished, but " + missing +
                                            " has not been archived: is archive_mode on and archive_command 'archive-push %p'?");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  backup.system_identifier = m_repository.system_identifier().value_or(0);
  backup.finished_at_us = now_unix_us();
  const std::string info = render_backup_info(backup);
  if (auto r = m_repository.objects().put(backup_info_key(id), as_bytes(info), settings.compress, PutMode::create_only); !r)
    return std::unexpected(r.error());
  if (auto r = m_index.put_stored_backup(backup); !r) {
    // backup.json is durable, so the backup exists; the index catches up at the next repair.
    m_index.record_failure();
    spdlog::error("backup {}: stored, but the index could not record it: {}", id, r.error().message);
  }
  return backup;
}

}  // namespace walvault
