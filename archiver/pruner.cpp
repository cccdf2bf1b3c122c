#include "archiver/pruner.hpp"

#include <map>
#include <set>
#include <vector>

#include "common/base/fd.hpp"

#include <spdlog/spdlog.h>

namespace walvault {

std::string Pruner::last_result() const {
  std::lock_guard lock(m_mutex);
  return m_last_result;
}

void Pruner::set_running_backup_probe(std::function<std::optional<std::string>()> probe) {
  std::lock_guard lock(m_mutex);
  m_running_backup = std::move(probe);
}

// Index row, then backup.json (the commit point: from here on it is no backup), then chunks.
// A crash in between leaves either a listed backup whose removal is retried, or an unfinished
// directory that the sweep removes.
Result<void> Pruner::remove_stored_backup(const StoredBackup& backup, PruneReport& report) {
  if (auto r = m_index.remove_stored_backup(backup.id); !r) return r;
  if (auto r = m_repository.objects().remove(backup_info_key(backup.id)); !r) {
    // Still a backup: it must stay listed (and expire again next time), or its .backup file
    // would go while its data stays forever.
    (void)m_index.put_stored_backup(backup);
    return r;
  }
  // No longer a backup: the chunks and the directory go whole; a failure here leaves an
  // unfinished directory for the sweep.
  auto removed = m_repository.objects().remove_all(backup_directory_key(backup.id));
  if (!removed) return std::unexpected(removed.error());
  report.removed += removed->objects + 1;
  report.bytes_removed += removed->bytes;
  spdlog::info("pruned base backup {} ({} chunk(s), {} bytes stored)", backup.id, backup.chunks.size(), backup.stored_bytes);
  return {};
}

// Directories of backups that never finished (no backup.json: pg_basebackup failed, or
// walvaultd was killed mid-backup), except the one running now.
Result<void> Pruner::sweep_unfinished_backups(PruneReport& report) {
  // list_children sees directories holding only a crashed write's temp file, too.
  auto ids = m_repository.objects().list_children(std::string(k_backup_prefix));
  if (!ids) return std::unexpected(ids.error());
  // Asked after the listing: a backup started before it is still running (skipped) or has
  // finished (backup.json exists, or it failed and its directory is garbage); one started
  // after it has a new id that is not in the listing.
  std::optional<std::string> running;
  {
    std::lock_guard lock(m_mutex);
    if (m_running_backup) running = m_running_backup();
  }
  for (const auto& id : *ids) {
    if (!is_valid_backup_id(id) || (running && *running == id)) continue;
    auto finished = m_repository.objects().exists(backup_info_key(id));
    if (!finished) return std::unexpected(finished.error());
    if (*finished) continue;
    auto removed = m_repository.objects().remove_all(backup_directory_key(id));
    if (!removed) return std::unexpected(removed.error());
    report.removed += removed->objects;
    report.bytes_removed += removed->bytes;
    report.swept_backups.push_back(id);
    spdlog::info("pruned unfinished base backup {} ({} file(s), {} bytes)", id, removed->objects, removed->bytes);
  }
  return {};
}

PruneReport Pruner::run(bool dry_run, std::int64_t now_us) {
  std::lock_guard run_lock(m_run_mutex);
  PruneReport report;
  report.dry_run = dry_run;
  auto objects = m_index.all_objects();
  auto timelines = m_index.timelines();
  auto backups = m_index.backups();
  if (!objects || !timelines || !backups) {
    report.failure = !objects ? objects.error() : !timelines ? timelines.error() : backups.error();
    return report;
  }
  // Once walvault stores backups, only those count: a .backup file whose backup did not finish
  // (or is still being taken) must never expire a backup that restore can use. Without any,
  // every .backup counts (backups taken by hand, as before walvault took them).
  auto stored = m_index.stored_backups();
  if (!stored) {
    report.failure = stored.error();
    return report;
  }
  if (!stored->empty()) {
    const auto counted = stored_by_backup_file(*stored);
    std::erase_if(*backups, [&](const IndexedBackup& b) { return !counted.contains(b.name); });
  }
  report.decision = plan_prune(policy(), now_us, *objects, *timelines, *backups);
  std::optional<std::string> running;
  {
    std::lock_guard lock(m_mutex);
    if (m_running_backup) running = m_running_backup();
  }
  if (running && !dry_run && stored->empty()) {
    // Before the first stored backup, the running one's .backup file counts like any other and
    // could expire the hand-taken backups before it is itself complete: wait for it
    // (walvaultd prunes again when it finishes). Once backups are stored, the running one is
    // not counted until complete, so pruning need not wait.
    report.decision.allowed = false;
    report.decision.refusal = "deferred while backup " + *running + " is being taken";
  }
  if (!dry_run && report.decision.allowed) {
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& o : *objects) sizes[o.name] = o.stored_size;
    const auto stored_by_file = stored_by_backup_file(*stored);
    for (const auto& item : report.decision.remove) {
      if (report.failure) break;
      auto name = parse_wal_name(item.name);
      if (!name) continue;
      // An expired backup's data goes before its .backup file, so the data never outlives
      // what makes it restorable.
      if (auto it = stored_by_file.find(item.name); it != stored_by_file.end()) {
        if (auto r = remove_stored_backup(*it->second, report); !r) {
          report.failure = r.error();
          break;
        }
      }
      if (auto r = m_index.record_pruned(item.name, now_us); !r) {
        report.failure = r.error();
        break;
      }
      if (auto r = m_index.remove_object(item.name); !r) {
        report.failure = r.error();
        break;
      }
      if (auto r = m_repository.objects().remove(object_key(*name)); !r) {
        report.failure = r.error();
        break;
      }
      ++report.removed;
      report.bytes_removed += sizes[item.name];
      spdlog::info("pruned {} ({})", item.name, item.reason);
    }
    m_objects_removed += report.removed;
    m_bytes_freed += report.bytes_removed;
  }
  // Unfinished backups are garbage whatever retention decides (even with no complete backup).
  if (!dry_run && !report.failure) {
    const std::size_t before = report.removed;
    const std::uint64_t bytes_before = report.bytes_removed;
    if (auto r = sweep_unfinished_backups(report); !r) report.failure = r.error();
    m_objects_removed += report.removed - before;
    m_bytes_freed += report.bytes_removed - bytes_before;
  }
  std::string result;
  const std::string swept = report.swept_backups.empty() ? ""
                            : "; " + std::to_string(report.swept_backups.size()) + " unfinished backup(s) removed";
  if (report.failure) result = "stopped after " + std::to_string(report.removed) + " object(s): " + report.failure->message;
  else if (!report.decision.allowed) result = "retention deleted nothing: " + report.decision.refusal + swept;
  else if (dry_run) result = "dry run: " + std::to_string(report.decision.remove.size()) + " object(s) would go";
  else result = std::to_string(report.removed) + " object(s) pruned, " + std::to_string(report.bytes_removed) + " bytes freed" + swept;
  if (!dry_run) {
    m_last_run_us = now_us;
    std::lock_guard lock(m_mutex);
    m_last_result = result;
  }
  if (report.failure) spdlog::error("prune: {}", result);
  else if (!dry_run) spdlog::info("prune: {}", result);
  return report;
}

}  // namespace walvault

namespace walvault {

AdminOutput render_prune(const PruneReport& report) {
  using json = nlohmann::ordered_json;
  AdminOutput out;
  const auto& d = report.decision;
  json removed = json::array(), kept = json::array();
  for (const auto& item : d.remove) removed.push_back(json{{"name", item.name}, {"reason", item.reason}});
  for (const auto& item : d.keep) kept.push_back(json{{"name", item.name}, {"reason", item.reason}});
  out.json = json{{"dry_run", report.dry_run},
                  {"allowed", d.allowed},
                  {"refusal", d.allowed ? json(nullptr) : json(d.refusal)},
                  {"window_start", d.window_start.empty() ? json(nullptr) : json(d.window_start)},
                  {"remove", removed},
                  {"keep", kept},
                  {"removed", report.removed},
                  {"unfinished_backups_removed", report.swept_backups},
                  {"bytes_freed", report.dry_run ? d.bytes_freed : report.bytes_removed},
                  {"error", report.failure ? json(report.failure->message) : json(nullptr)}};
  for (const auto& id : report.swept_backups) out.text += "removed      unfinished base backup " + id + " (no backup.json)\n";
  if (!d.allowed) {
    out.text += "retention deleted nothing: " + d.refusal + "\n";
  } else {
    out.text = report.dry_run ? "dry run: nothing is deleted\n" : "";
    if (!d.window_start.empty()) out.text += "point-in-time window starts at " + d.window_start + "\n";
    for (const auto& item : d.remove) out.text += std::string(report.dry_run ? "would remove " : "removed      ") + item.name + "  (" + item.reason + ")\n";
    for (const auto& item : d.keep) out.text += "keep         " + item.name + "  (" + item.reason + ")\n";
    out.text += report.dry_run ? std::to_string(d.remove.size()) + " object(s), " + std::to_string(d.bytes_freed) + " bytes would be freed\n"
                               : std::to_string(report.removed) + " object(s) removed, " + std::to_string(report.bytes_removed) + " bytes freed\n";
  }
  if (report.failure) {
    out.text += "prune stopped: " + report.failure->message + "\n";
    out.exit_code = 1;
    out.reason = "prune stopped: " + report.failure->message;
  }
  return out;
}

}  // namespace walvault
