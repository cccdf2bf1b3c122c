#include "archiver/pruner.hpp"

#include <map>
#include <set>
#include <vector>

#include "common/base/fd.hpp"

#include <spdlog/spdlog.h>

namespace walvault {

void Pruner::set_policy(const RetentionPolicy& policy) {
  std::lock_guard lock(m_mutex);
  m_policy = policy;
}

RetentionPolicy Pruner::policy() const {
  std::lock_guard lock(m_mutex);
  return m_policy;
}

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
  if (auto r = m_repository.storage().remove(backup_info_key(backup.id)); !r) return r;
  for (const auto& chunk : backup.chunks) {
    if (auto r = m_repository.storage().remove(chunk.key); !r) return r;
    ++report.removed;
    report.bytes_removed += chunk.stored_size;
  }
  spdlog::info("pruned base backup {} ({} chunk(s), {} bytes stored)", backup.id, backup.chunks.size(), backup.stored_bytes);
  return {};
}

// Directories of backups that never finished (no backup.json: pg_basebackup failed, or
// walvaultd was killed mid-backup), except the one running now.
Result<void> Pruner::sweep_unfinished_backups(PruneReport& report) {
  std::optional<std::string> running;
  {
    std::lock_guard lock(m_mutex);
    if (m_running_backup) running = m_running_backup();
  }
  auto objects = m_repository.storage().list_objects(std::string(k_backup_prefix));
  if (!objects) return std::unexpected(objects.error());
  std::map<std::string, std::vector<const ObjectInfo*>> by_id;
  std::set<std::string> finished;
  for (const auto& info : *objects) {
    const std::string id(base_name(parent_directory(info.key)));
    if (!is_valid_backup_id(id) || parent_directory(info.key) != backup_directory_key(id)) continue;
    if (base_name(info.key) == "backup.json") finished.insert(id);
    by_id[id].push_back(&info);
  }
  for (const auto& [id, files] : by_id) {
    if (finished.contains(id) || (running && *running == id)) continue;
    for (const ObjectInfo* info : files) {
      if (auto r = m_repository.storage().remove(info->key); !r) return r;
      ++report.removed;
      report.bytes_removed += info->size;
    }
    spdlog::info("pruned unfinished base backup {} ({} object(s))", id, files.size());
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
  report.decision = plan_prune(policy(), now_us, *objects, *timelines, *backups);
  if (!dry_run && report.decision.allowed) {
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& o : *objects) sizes[o.name] = o.stored_size;
    auto stored = m_index.stored_backups();
    if (!stored) report.failure = stored.error();
    std::map<std::string, const StoredBackup*> stored_by_file;
    if (stored)
      for (const auto& b : *stored) stored_by_file[b.backup_file] = &b;
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
      if (auto r = m_repository.storage().remove(object_key(*name)); !r) {
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
  if (report.failure) result = "stopped after " + std::to_string(report.removed) + " object(s): " + report.failure->message;
  else if (!report.decision.allowed) result = "nothing pruned: " + report.decision.refusal;
  else if (dry_run) result = "dry run: " + std::to_string(report.decision.remove.size()) + " object(s) would go";
  else result = std::to_string(report.removed) + " object(s) pruned, " + std::to_string(report.bytes_removed) + " bytes freed";
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
                  {"bytes_freed", report.dry_run ? d.bytes_freed : report.bytes_removed},
                  {"error", report.failure ? json(report.failure->message) : json(nullptr)}};
  if (!d.allowed) {
    out.text = "nothing pruned: " + d.refusal + "\n";
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
