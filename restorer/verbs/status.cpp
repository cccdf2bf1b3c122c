// STATUS: what the repository holds and what the daemon is doing.
#include "common/core/object_store.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string status_text(const json& m) {
  std::string text = "walvault " + m["version"].get<std::string>();
  if (m.contains("uptime_seconds")) text += ", up " + format_duration(m["uptime_seconds"].get<std::int64_t>() * 1000000);
  if (m["repositories"].size() > 1) {
    text += "\nrepositories:";
    for (const auto& r : m["repositories"]) {
      text += "\n  " + r["location"].get<std::string>() + ": " + (r["writable"].get<bool>() ? "writable" : "CLOSED for writes");
      if (r.contains("disk_usage")) text += ", disk usage " + fixed(r["disk_usage"].get<double>() * 100, 1) + "%";
      if (!r["write_block"].is_null()) text += "\n    " + r["write_block"].get<std::string>();
    }
    text += "\n";
  } else {
    text += "\nrepository:        " + m["repository"].get<std::string>() + "\n";
  }
  text += "system identifier: " + (m["system_identifier"].is_string() ? m["system_identifier"].get<std::string>() : "(none yet)");
  if (!m["pg_version"].is_null()) text += " (PostgreSQL " + m["pg_version"].dump() + ")";
  text += "\nnewest segment:    " +
          (m["newest_segment"].is_string()
               ? m["newest_segment"].get<std::string>() + ", stored " + m["newest_segment_stored_at"].get<std::string>() + " (" +
                     format_duration(m["newest_segment_age_seconds"].get<std::int64_t>() * 1000000) + " ago)"
               : std::string("(none)")) +
          "\n";
  text += "archived:          " + m["segments"].dump() + " segments, " + m["partial_files"].dump() + " partial, " +
          m["history_files"].dump() + " history, " + m["backup_files"].dump() + " backup files\n";
  text += "size:              " + human_bytes(m["plain_bytes"].get<std::uint64_t>()) + " of WAL stored in " +
          human_bytes(m["stored_bytes"].get<std::uint64_t>()) + " (ratio " + fixed(m["compression_ratio"].get<double>()) + ")\n";
  {
    const auto& e = m["encryption"];
    text += "encryption:        " + (e["key_id"].is_null() ? std::string("off (new objects are written unencrypted)")
                                                           : "key id " + e["key_id"].get<std::string>());
    for (const auto& old : e["old_key_ids"]) text += ", old key id " + old.get<std::string>();
    if (!e["objects_by_key_id"].empty()) {
      text += "; WAL objects:";
      for (const auto& [id, n] : e["objects_by_key_id"].items())
        text += " " + n.dump() + (id == "none" ? " unencrypted" : id == "unknown" ? " not recorded" : " under " + id) + ",";
      text.pop_back();
    }
    text += "\n";
  }
  if (m.contains("disk_usage"))
    text += "disk usage:        " + fixed(m["disk_usage"].get<double>() * 100, 1) + "% (threshold " +
            fixed(m["disk_usage_threshold"].get<double>() * 100, 0) + "%)\n";
  if (m.contains("retention")) {
    const auto& r = m["retention"];
    text += "retention:         " + r["objects_pruned"].dump() + " object(s) pruned since start, " +
            human_bytes(r["bytes_freed"].get<std::uint64_t>()) + " freed; last: " + r["last_result"].get<std::string>() + "\n";
  }
  if (m.contains("backup")) {
    const auto& b = m["backup"];
    if (b.is_null()) {
      text += "base backup:       none since start";
    } else {
      text += "base backup:       " + b["id"].get<std::string>() + " " + b["phase"].get<std::string>() + " (" +
              b["trigger"].get<std::string>() + "), " + human_bytes(b["bytes"].get<std::uint64_t>()) + " read";
      if (!b["error"].is_null()) text += ": " + b["error"].get<std::string>();
    }
    if (m.contains("backup_schedule") && !m["backup_schedule"].is_null())
      text += "; schedule '" + m["backup_schedule"].get<std::string>() + "' (UTC)";
    text += "\n";
  }
  if (m.contains("look_ahead")) {
    const auto& a = m["look_ahead"];
    if (!a["enabled"].get<bool>()) {
      text += "look-ahead:        off (" + a["reason"].get<std::string>() + ")\n";
    } else {
      text += "look-ahead:        " + a["ready"].dump() + " segment(s) .ready, " + a["stored_ahead"].dump() + " stored ahead, " +
              a["queued"].dump() + " queued";
      if (!a["oldest_ready_age_seconds"].is_null())
        text += "; oldest .ready " + format_duration(a["oldest_ready_age_seconds"].get<std::int64_t>() * 1000000) + " old";
      text += "; since start " + a["pushed"].dump() + " pushed ahead, " + a["failed"].dump() + " failed\n";
      if (!a["problem"].is_null()) text += "    " + a["problem"].get<std::string>() + "\n";
    }
  }
  if (m.contains("prefetch")) {
    const auto& p = m["prefetch"];
    if (!p["enabled"].get<bool>()) {
      text += "prefetch:          off\n";
    } else {
      text += "prefetch:          up to " + human_bytes(p["budget_bytes"].get<std::uint64_t>()) + "; " + p["hits"].dump() + " hit(s) (" + std::to_string(p.value("handed_over", std::uint64_t{0})) + " handed over), " +
              p["misses"].dump() + " miss(es), " + human_bytes(p["spool_bytes"].get<std::uint64_t>()) + " in the spool (" +
              p["spool_files"].dump() + " segment(s))\n";
    }
  }
  if (m.contains("rate_limits")) {
    // "rate limits:       push 100 MiB/s (waited 3s), get none, backup none"
    std::string line;
    for (const char* kind : {"push", "get", "backup"}) {
      const auto& l = m["rate_limits"][kind];
      const auto rate = l["bytes_per_second"].get<std::uint64_t>();
      line += std::string(line.empty() ? "" : ", ") + kind + " " + (rate == 0 ? std::string("none") : human_bytes(rate) + "/s");
      if (const double waited = l["waited_seconds"].get<double>(); waited >= 1)
        line += " (waited " + format_duration(static_cast<std::int64_t>(waited * 1e6)) + ")";
    }
    text += "rate limits:       " + line + "\n";
  }
  if (m.contains("connections_in_flight")) text += "in flight:         " + m["connections_in_flight"].dump() + " connection(s)\n";
  if (m.contains("since_start")) {
    text += "since start:      ";
    for (auto& [key, value] : m["since_start"].items()) text += " " + key + " " + value.dump();
    text += "\n";
  }
  return text;
}

}  // namespace

AdminOutput status_verb(const VerbSources& sources, const CheckThresholds& thresholds, json daemon_state) {
  auto totals = sources.index.totals();
  auto newest_row = sources.index.newest_segment();
  if (!totals || !newest_row) return failed_output(!totals ? totals.error() : newest_row.error());
  const IndexedObject* newest = *newest_row ? &**newest_row : nullptr;
  const std::int64_t now = now_unix_us();
  const Repository& repository = sources.repository;
  const auto sysid = repository.system_identifier();

  json model{{"version", WALVAULT_VERSION},
             {"repository", repository.describe()},
             {"system_identifier", sysid ? json(std::to_string(*sysid)) : json(nullptr)},
             {"pg_version", repository.pg_version() ? json(*repository.pg_version()) : json(nullptr)},
             {"newest_segment", newest ? json(newest->name) : json(nullptr)},
             {"newest_segment_stored_at", newest ? json(format_timestamp(newest->stored_at_us)) : json(nullptr)},
             {"newest_segment_age_seconds", newest ? json((now - newest->stored_at_us) / 1000000) : json(nullptr)},
             {"segments", totals->segments},
             {"partial_files", totals->partials},
             {"history_files", totals->histories},
             {"backup_files", totals->backups},
             {"plain_bytes", totals->plain_bytes},
             {"stored_bytes", totals->stored_bytes},
             {"compression_ratio", ratio(totals->plain_bytes, totals->stored_bytes)}};
  if (auto space = sources.repository.objects().space(); space && *space && (*space)->total) {
    model["disk_usage"] = (*space)->used();
    model["disk_usage_threshold"] = thresholds.max_disk_usage;
  }
  // Each repository's own state (no listing: status is cheap; check compares contents).
  ObjectStore& objects = sources.repository.objects();
  json repositories = json::array();
  for (std::size_t i = 0; i < objects.member_count(); ++i) {
    const auto block = objects.mirror() ? objects.mirror()->write_block(i) : std::nullopt;
    json entry{{"location", objects.member(i).describe()}, {"writable", !block}, {"write_block", block ? json(*block) : json(nullptr)}};
    if (auto space = objects.member(i).space(); space && *space && (*space)->total)
      entry["disk_usage"] = (*space)->used();
    repositories.push_back(std::move(entry));
  }
  model["repositories"] = std::move(repositories);
  auto encryption = encryption_json(sources.repository, sources.index);
  if (!encryption) return failed_output(encryption.error());
  model["encryption"] = std::move(*encryption);
  for (auto& [key, value] : daemon_state.items()) model[key] = value;
  return from_model(std::move(model), status_text);
}

}  // namespace walvault
