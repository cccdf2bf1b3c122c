#include "archiver/pruner.hpp"

#include <map>

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
    for (const auto& item : report.decision.remove) {
      auto name = parse_wal_name(item.name);
      if (!name) continue;
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
