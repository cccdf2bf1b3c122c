#include "restorer/admin.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/client_output.hpp"
#include "common/core/object_store.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_checks.hpp"
#include "common/core/plan.hpp"

namespace walvault {

namespace {

using json = nlohmann::ordered_json;

double ratio(std::uint64_t plain, std::uint64_t stored) {
  return stored ? static_cast<double>(plain) / static_cast<double>(stored) : 0.0;
}

std::string fixed(double value, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

json optional_time(const std::optional<std::int64_t>& us) { return us ? json(format_timestamp(*us)) : json(nullptr); }
std::string optional_time_text(const std::optional<std::int64_t>& us) { return us ? format_timestamp(*us) : "-"; }

json backup_json(const IndexedBackup& b) {
  return json{{"name", b.name},           {"label", b.label},
              {"timeline", b.timeline},   {"start_lsn", format_lsn(b.start_lsn)},
              {"stop_lsn", format_lsn(b.stop_lsn)}, {"start_time", optional_time(b.start_us)},
              {"stop_time", optional_time(b.stop_us)}};
}

json stored_backup_json(const StoredBackup& s, bool with_chunks) {
  json out{{"id", s.id},
           {"plain_bytes", s.plain_bytes},
           {"stored_bytes", s.stored_bytes},
           {"files", s.files},
           {"chunk_count", s.chunks.size()},
           {"has_manifest", s.has_manifest},
           {"pg_version", s.pg_version},
           {"started_at", format_timestamp(s.started_at_us)},
           {"finished_at", format_timestamp(s.finished_at_us)}};
  if (with_chunks) {
    out["chunks"] = json::array();
    for (const auto& c : s.chunks)
      out["chunks"].push_back(json{{"key", c.key}, {"plain_size", c.plain_size}, {"stored_size", c.stored_size}, {"sha256", c.sha256}});
  }
  return out;
}

std::optional<std::uint32_t> field_u32(const protocol::Message& m, std::string_view key) {
  auto value = m.field(key);
  if (!value) return std::nullopt;
  std::uint32_t out = 0;
  if (std::from_chars(value->data(), value->data() + value->size(), out).ec != std::errc()) return std::nullopt;
  return out;
}

std::uint64_t segno_of(const std::string& name, std::uint64_t segment_size) {
  auto parsed = parse_wal_name(name);
  return parsed && segment_size ? segment_number(*parsed, segment_size) : 0;
}

}  // namespace

Admin::Admin(Repository& repository, Index& index, Indexer& indexer, std::function<json()> daemon_state,
             LiveSetting<CheckThresholds> thresholds)
    : m_repository(repository), m_index(index), m_indexer(indexer), m_daemon_state(std::move(daemon_state)),
      m_thresholds(std::move(thresholds)) {}

void Admin::register_handlers(HandlerRegistry& registry) {
  // Admin documents go to a client that may read slowly or not at all: their own lane, so
  // they can never hold up PUSH and GET (and the write gives up after an idle limit).
  registry.register_handler("STATUS", [this](Request& r) { return serve(r, [&] { return status(); }); }, Lane::admin);
  registry.register_handler("LIST", [this](Request& r) { return serve(r, [&] { return list(r.message); }); }, Lane::admin);
  registry.register_handler("TIMELINES", [this](Request& r) { return serve(r, [&] { return timelines(); }); }, Lane::admin);
  registry.register_handler("CHECK", [this](Request& r) { return serve(r, [&] { return check(r.message); }); }, Lane::admin);
  // VERIFY and REINDEX read the whole repository: never on the push workers.
  registry.register_handler("VERIFY", [this](Request& r) { return serve(r, [&] { return verify(r.progress_fd.get()); }); },
                            Lane::long_running);
  registry.register_handler("PLAN", [this](Request& r) { return serve(r, [&] { return plan(r.message); }); }, Lane::admin);
  registry.register_handler("REINDEX", [this](Request& r) { return serve(r, [&] { return reindex(); }); }, Lane::long_running);
}

void Admin::set_retention_probe(std::function<RetentionView()> probe) {
  std::lock_guard lock(m_mutex);
  m_retention_probe = std::move(probe);
}

Admin::RetentionView Admin::retention_view() {
  std::function<RetentionView()> probe;
  {
    std::lock_guard lock(m_mutex);
    probe = m_retention_probe;
  }
  return probe ? probe() : RetentionView{};
}

std::vector<std::string> Admin::required_gaps(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines,
                                              const std::vector<IndexedBackup>& backups, const RetentionView& view,
                                              std::uint64_t& from_lsn) {
  std::vector<std::string> missing;
  std::uint64_t segment_size = 0;
  std::set<std::pair<std::uint32_t, std::uint64_t>> present;
  std::optional<std::uint64_t> oldest_segment_lsn, oldest_backup_lsn;
  for (const auto& s : segments) {
    if (s.kind != WalFileKind::segment) continue;
    segment_size = segment_size ? segment_size : s.segment_size;
    present.insert({s.timeline, s.segno});
    if (!oldest_segment_lsn || s.segno * s.segment_size < *oldest_segment_lsn) oldest_segment_lsn = s.segno * s.segment_size;
  }
  for (const auto& b : backups)
    if (!oldest_backup_lsn || b.start_lsn < *oldest_backup_lsn) oldest_backup_lsn = b.start_lsn;
  from_lsn = view.window_start_lsn ? *view.window_start_lsn : oldest_backup_lsn ? *oldest_backup_lsn : oldest_segment_lsn.value_or(0);
  const std::uint32_t latest = latest_timeline(segments, timelines);
  if (!segment_size || !latest) return missing;
  missing = find_gaps(latest, from_lsn, segments, timelines);
  // Each backup's own WAL, up to the newest archived position (a backup still running is not
  // complete yet, so its stop may lie beyond it).
  std::uint64_t newest = 0;
  for (const auto& p : present) newest = std::max(newest, p.second);
  std::set<std::string> seen(missing.begin(), missing.end());
  for (const auto& b : backups) {
    auto path = timeline_path(b.timeline, timelines);
    if (!path || b.stop_lsn / segment_size > newest) continue;
    for (std::uint64_t segno = b.start_lsn / segment_size; segno <= b.stop_lsn / segment_size; ++segno) {
      const std::uint32_t tli = timeline_for_segment(*path, segno, segment_size);
      if (present.contains({tli, segno})) continue;
      std::string name = format_wal_name(segment_from_number(tli, segno, segment_size));
      if (seen.insert(name).second) missing.push_back(name);
    }
  }
  return missing;
}

protocol::Message Admin::serve(Request& request, const std::function<AdminOutput()>& verb) { return serve_document(request, verb); }

AdminOutput Admin::status() {
  AdminOutput out;
  auto totals = m_index.totals();
  auto newest_row = m_index.newest_segment();
  if (!totals || !newest_row) return failed_output(!totals ? totals.error() : newest_row.error());
  const IndexedObject* newest = *newest_row ? &**newest_row : nullptr;
  const std::int64_t now = now_unix_us();
  const auto sysid = m_repository.system_identifier();

  json daemon = m_daemon_state ? m_daemon_state() : json::object();
  out.json = json{{"version", WALVAULT_VERSION},
                  {"repository", m_repository.describe()},
                  {"system_identifier", sysid ? json(std::to_string(*sysid)) : json(nullptr)},
                  {"pg_version", m_repository.pg_version() ? json(*m_repository.pg_version()) : json(nullptr)},
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
  if (auto space = m_repository.objects().space(); space && *space && (*space)->total) {
    const double used = 1.0 - static_cast<double>((*space)->available) / static_cast<double>((*space)->total);
    out.json["disk_usage"] = used;
    out.json["disk_usage_threshold"] = m_thresholds().max_disk_usage;
  }
  for (auto& [key, value] : daemon.items()) out.json[key] = value;

  std::string text;
  text += "walvault " + std::string(WALVAULT_VERSION);
  if (daemon.contains("uptime_seconds")) text += ", up " + format_duration(daemon["uptime_seconds"].get<std::int64_t>() * 1000000);
  text += "\nrepository:        " + m_repository.describe() + "\n";
  text += "system identifier: " + (sysid ? std::to_string(*sysid) : std::string("(none yet)"));
  if (auto v = m_repository.pg_version()) text += " (PostgreSQL " + std::to_string(*v) + ")";
  text += "\nnewest segment:    " +
          (newest ? newest->name + ", stored " + format_timestamp(newest->stored_at_us) + " (" +
                        format_duration(now - newest->stored_at_us) + " ago)"
                  : std::string("(none)")) +
          "\n";
  text += "archived:          " + std::to_string(totals->segments) + " segments, " + std::to_string(totals->partials) +
          " partial, " + std::to_string(totals->histories) + " history, " + std::to_string(totals->backups) + " backup files\n";
  text += "size:              " + human_bytes(totals->plain_bytes) + " of WAL stored in " + human_bytes(totals->stored_bytes) +
          " (ratio " + fixed(ratio(totals->plain_bytes, totals->stored_bytes)) + ")\n";
  if (out.json.contains("disk_usage"))
    text += "disk usage:        " + fixed(out.json["disk_usage"].get<double>() * 100, 1) + "% (threshold " +
            fixed(m_thresholds().max_disk_usage * 100, 0) + "%)\n";
  if (daemon.contains("retention")) {
    const auto& r = daemon["retention"];
    text += "retention:         " + r["objects_pruned"].dump() + " object(s) pruned since start, " +
            human_bytes(r["bytes_freed"].get<std::uint64_t>()) + " freed; last: " + r["last_result"].get<std::string>() + "\n";
  }
  if (daemon.contains("backup")) {
    const auto& b = daemon["backup"];
    if (b.is_null()) {
      text += "base backup:       none since start";
    } else {
      text += "base backup:       " + b["id"].get<std::string>() + " " + b["phase"].get<std::string>() + " (" +
              b["trigger"].get<std::string>() + "), " + human_bytes(b["bytes"].get<std::uint64_t>()) + " read";
      if (!b["error"].is_null()) text += ": " + b["error"].get<std::string>();
    }
    if (daemon.contains("backup_schedule") && !daemon["backup_schedule"].is_null())
      text += "; schedule '" + daemon["backup_schedule"].get<std::string>() + "' (UTC)";
    text += "\n";
  }
  if (daemon.contains("connections_in_flight"))
    text += "in flight:         " + daemon["connections_in_flight"].dump() + " connection(s)\n";
  if (daemon.contains("since_start")) {
    text += "since start:      ";
    for (auto& [key, value] : daemon["since_start"].items()) text += " " + key + " " + value.dump();
    text += "\n";
  }
  out.text = text;
  return out;
}

AdminOutput Admin::list(const protocol::Message& request) {
  SegmentFilter filter;
  filter.timeline = field_u32(request, "timeline");
  if (auto text = request.field("timeline"); text && (!filter.timeline || *filter.timeline == 0))
    return failed_output({ErrorKind::invalid, "--timeline '" + std::string(*text) + "' is not a timeline number"});
  auto known_size = m_index.segment_size();
  if (!known_size) return failed_output(known_size.error());
  const std::uint64_t segment_size = *known_size;
  for (auto [key, slot] : {std::pair{"from", &filter.from_segno}, std::pair{"to", &filter.to_segno}}) {
    auto value = request.field(key);
    if (!value) continue;
    auto parsed = parse_wal_name(*value);
    if (!parsed || parsed->kind != WalFileKind::segment)
      return failed_output({ErrorKind::invalid, "--" + std::string(key) + " '" + std::string(*value) + "' is not a segment name"});
    *slot = segno_of(std::string(*value), segment_size);
  }
  const bool backups_only = request.field("backups").has_value();
  AdminOutput out;
  if (backups_only) {
    auto backups = m_index.backups();
    auto stored = m_index.stored_backups();
    if (!backups || !stored) return failed_output(!backups ? backups.error() : stored.error());
    const auto by_file = stored_by_backup_file(*stored);
    out.json = json{{"backups", json::array()}};
    char line[320];
    std::snprintf(line, sizeof line, "%-18s %-40s %4s %14s %14s %-21s %10s %s\n", "stored as", "backup file", "tli", "start lsn",
                  "stop lsn", "stop", "size", "label");
    out.text = line;
    for (const auto& b : *backups) {
      auto it = by_file.find(b.name);
      const StoredBackup* s = it == by_file.end() ? nullptr : it->second;
      json row = backup_json(b);
      row["stored"] = s ? stored_backup_json(*s, false) : json(nullptr);
      out.json["backups"].push_back(row);
      std::snprintf(line, sizeof line, "%-18s %-40s %4u %14s %14s %-21s %10s %s\n", s ? s->id.c_str() : "-", b.name.c_str(),
                    b.timeline, format_lsn(b.start_lsn).c_str(), format_lsn(b.stop_lsn).c_str(),
                    optional_time_text(b.stop_us).c_str(), s ? human_bytes(s->plain_bytes).c_str() : "-", b.label.c_str());
      out.text += line;
    }
    out.text += std::to_string(backups->size()) + " backup(s), " + std::to_string(by_file.size()) +
                " stored by walvault (restorable with walvault restore)\n";
    return out;
  }
  auto segments = m_index.segments(filter);
  if (!segments) return failed_output(segments.error());
  out.json = json{{"segments", json::array()}};
  char line[320];
  std::snprintf(line, sizeof line, "%-32s %4s %10s %10s %6s  %-27s %-27s\n", "name", "tli", "size", "stored", "ratio",
                "first commit", "last commit");
  out.text = line;
  for (const auto& s : *segments) {
    out.json["segments"].push_back(json{{"name", s.name},
                                        {"kind", to_string(s.kind)},
                                        {"timeline", s.timeline},
                                        {"segment_number", s.segno},
                                        {"size", s.plain_size},
                                        {"stored_size", s.stored_size},
                                        {"ratio", ratio(s.plain_size, s.stored_size)},
                                        {"sha256", s.sha256},
                                        {"stored_at", format_timestamp(s.stored_at_us)},
                                        {"first_commit_time", optional_time(s.first_xact_us)},
                                        {"last_commit_time", optional_time(s.last_xact_us)},
                                        {"commit_records", s.xact_count}});
    std::snprintf(line, sizeof line, "%-32s %4u %10s %10s %6s  %-27s %-27s\n", s.name.c_str(), s.timeline,
                  human_bytes(s.plain_size).c_str(), human_bytes(s.stored_size).c_str(),
                  fixed(ratio(s.plain_size, s.stored_size), 1).c_str(), optional_time_text(s.first_xact_us).c_str(),
                  optional_time_text(s.last_xact_us).c_str());
    out.text += line;
  }
  out.text += std::to_string(segments->size()) + " file(s)\n";
  return out;
}

AdminOutput Admin::timelines() {
  auto segments = m_index.segments();
  auto rows = m_index.timelines();
  auto backups = m_index.backups();
  if (!segments || !rows || !backups) return failed_output(!segments ? segments.error() : !rows ? rows.error() : backups.error());
  std::set<std::uint32_t> ids;
  for (const auto& s : *segments) ids.insert(s.timeline);
  for (const auto& t : *rows) ids.insert(t.timeline);
  std::map<std::uint32_t, const IndexedTimeline*> by_id;
  for (const auto& t : *rows) by_id[t.timeline] = &t;

  AdminOutput out;
  out.json = json{{"timelines", json::array()}};
  for (std::uint32_t id : ids) {
    // The recoverable window: commits reachable along this timeline's path without a gap,
    // starting at the oldest backup on the path (or the oldest segment when none is known).
    PlanRequest request;
    request.timeline = id;
    Plan plan = make_plan(request, *segments, *rows, {});
    std::optional<std::int64_t> earliest, latest;
    if (auto path = timeline_path(id, *rows)) {
      std::map<std::string, const IndexedObject*> by_name;
      for (const auto& s : *segments) by_name[s.name] = &s;
      std::optional<std::uint64_t> oldest_backup_start;
      for (const auto& b : *backups)
        if (!oldest_backup_start || b.start_lsn < *oldest_backup_start) oldest_backup_start = b.start_lsn;
      for (const auto& name : plan.segments) {
        const IndexedObject* s = by_name[name];
        if (!s) continue;
        if (oldest_backup_start && plan.segment_size && s->segno < *oldest_backup_start / plan.segment_size) continue;
        if (s->first_xact_us && !earliest) earliest = s->first_xact_us;
        if (s->last_xact_us) latest = s->last_xact_us;
      }
    }
    json entry{{"timeline", id}};
    auto row = by_id.find(id);
    entry["parent"] = row != by_id.end() ? json(row->second->parent) : json(nullptr);
    entry["switch_lsn"] = row != by_id.end() ? json(format_lsn(row->second->switch_lsn)) : json(nullptr);
    entry["reason"] = row != by_id.end() ? json(row->second->reason) : json(nullptr);
    std::uint64_t count = 0;
    for (const auto& s : *segments) count += s.timeline == id && s.kind == WalFileKind::segment;
    entry["segments"] = count;
    entry["recoverable_from"] = optional_time(earliest);
    entry["recoverable_to"] = optional_time(latest);
    entry["continuous"] = plan.missing.empty();
    out.json["timelines"].push_back(entry);

    out.text += "timeline " + std::to_string(id);
    if (row != by_id.end())
      out.text += " (from timeline " + std::to_string(row->second->parent) + " at " + format_lsn(row->second->switch_lsn) + ")";
    out.text += ": " + std::to_string(count) + " segments, recoverable " + optional_time_text(earliest) + " .. " +
                optional_time_text(latest);
    if (!plan.missing.empty()) out.text += ", GAP at " + plan.missing.front();
    out.text += "\n";
  }
  return out;
}

AdminOutput Admin::check(const protocol::Message& request) {
  CheckThresholds limits = m_thresholds();
  if (auto v = request.field("max-wal-age")) {
    auto us = parse_duration_us(*v);
    if (!us) return failed_output({ErrorKind::invalid, "--max-wal-age '" + std::string(*v) + "' is not a duration such as 30m"});
    limits.max_wal_age_us = *us;
  }
  if (auto v = request.field("max-backup-age")) {
    auto us = parse_duration_us(*v);
    if (!us) return failed_output({ErrorKind::invalid, "--max-backup-age '" + std::string(*v) + "' is not a duration such as 48h"});
    limits.max_backup_age_us = *us;
  }
  if (auto v = request.field("max-disk-usage")) {
    std::string text(*v);
    if (!text.empty() && text.back() == '%') text.pop_back();
    double percent = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), percent);
    if (ec != std::errc() || p != text.data() + text.size() || percent <= 0 || percent > 100)
      return failed_output({ErrorKind::invalid, "--max-disk-usage '" + std::string(*v) + "' is not a percentage such as 80%"});
    limits.max_disk_usage = percent / 100;
  }
  auto segments = m_index.segments();
  auto rows = m_index.timelines();
  auto backups = m_index.backups();
  if (!segments || !rows || !backups) return failed_output(!segments ? segments.error() : !rows ? rows.error() : backups.error());
  // One listing (check is an admin verb, not the hot path) catches objects removed behind the
  // daemon's back: they count as missing, not as archived.
  auto listed = m_repository.objects().list_keys("wal");
  if (!listed) return failed_output(listed.error());
  std::set<std::string> present;
  for (const auto& key : *listed) present.insert(std::string(base_name(key)));
  std::erase_if(*segments, [&](const IndexedObject& s) { return !present.contains(s.name); });
  const std::int64_t now = now_unix_us();
  AdminOutput out;
  out.json = json{{"ok", true}, {"checks", json::array()}};
  auto add = [&](std::string name, bool ok, json value, json threshold, std::string text) {
    out.json["checks"].push_back(json{{"name", name}, {"ok", ok}, {"value", value}, {"threshold", threshold}, {"message", text}});
    out.text += std::string(ok ? "ok    " : "FAILED") + "  " + text + "\n";
    if (!ok) {
      out.json["ok"] = false;
      out.exit_code = 1;
      out.reason += (out.reason.empty() ? "" : "; ") + text;
    }
  };

  std::optional<std::int64_t> newest_wal;
  for (const auto& s : *segments)
    if (s.kind == WalFileKind::segment && (!newest_wal || s.stored_at_us > *newest_wal)) newest_wal = s.stored_at_us;
  if (!newest_wal)
    add("wal_age", false, nullptr, limits.max_wal_age_us / 1000000, "newest WAL: none archived yet (set PostgreSQL's archive_command to archive-push; see docs/operator-guide.md)");
  else
    add("wal_age", now - *newest_wal <= limits.max_wal_age_us, (now - *newest_wal) / 1000000, limits.max_wal_age_us / 1000000,
        "newest WAL age " + format_duration(now - *newest_wal) + " (threshold " + format_duration(limits.max_wal_age_us) + ")");

  // Once walvault stores backups, the age that matters is the newest one restore can use (the
  // rule retention follows too); before that, any .backup file counts.
  auto stored = m_index.stored_backups();
  if (!stored) return failed_output(stored.error());
  const auto by_file = stored_by_backup_file(*stored);
  std::optional<std::int64_t> newest_backup;
  std::string newest_backup_id;
  std::optional<std::uint64_t> oldest_backup_start;
  for (const auto& b : *backups) {
    auto it = by_file.find(b.name);
    const bool counts = by_file.empty() || it != by_file.end();
    if (counts && b.stop_us && (!newest_backup || *b.stop_us > *newest_backup)) {
      newest_backup = b.stop_us;
      newest_backup_id = it != by_file.end() ? it->second->id : "";
    }
    if (!oldest_backup_start || b.start_lsn < *oldest_backup_start) oldest_backup_start = b.start_lsn;
  }
  if (!newest_backup)
    add("backup_age", false, nullptr, limits.max_backup_age_us / 1000000, "newest base backup: none yet (take one with 'walvault backup', or set backup-schedule)");
  else
    add("backup_age", now - *newest_backup <= limits.max_backup_age_us, (now - *newest_backup) / 1000000,
        limits.max_backup_age_us / 1000000,
        "newest base backup age " + format_duration(now - *newest_backup) +
            (newest_backup_id.empty() ? "" : " (" + newest_backup_id + ", stored by walvault)") + " (threshold " +
            format_duration(limits.max_backup_age_us) + ")");

  if (auto space = m_repository.objects().space(); space && *space && (*space)->total) {
    const double used = 1.0 - static_cast<double>((*space)->available) / static_cast<double>((*space)->total);
    add("disk_usage", used <= limits.max_disk_usage, used, limits.max_disk_usage,
        "repository disk usage " + fixed(used * 100, 1) + "% (threshold " + fixed(limits.max_disk_usage * 100, 0) + "%)");
  }

  const RetentionView view = retention_view();
  {
    std::lock_guard lock(m_mutex);
    if (m_retention_probe)
      add("retention", !view.problem, view.problem ? json(*view.problem) : json(nullptr), nullptr,
          view.problem ? "retention cannot prune: " + *view.problem : "retention can prove what recovery needs");
  }
  if (latest_timeline(*segments, *rows)) {
    std::uint64_t from_lsn = 0;
    auto missing = required_gaps(*segments, *rows, *backups, view, from_lsn);
    json list = json::array();
    for (const auto& m : missing) list.push_back(m);
    const std::uint32_t latest = latest_timeline(*segments, *rows);
    add("continuity", missing.empty(), list, nullptr,
        missing.empty() ? "WAL continuous on the path to timeline " + std::to_string(latest) + " from " + format_lsn(from_lsn) +
                              ", and every base backup's own WAL is archived"
                        : "WAL gap: " + std::to_string(missing.size()) + " segment(s) recovery needs are missing (path to timeline " +
                              std::to_string(latest) + " from " + format_lsn(from_lsn) + ", or a base backup's own WAL), first " +
                              missing.front());
  }
  return out;
}

AdminOutput Admin::verify(int progress_fd) {
  auto objects = m_repository.objects().list("wal");
  if (!objects) return failed_output(objects.error());
  AdminOutput out;
  out.json = json{{"ok", true}, {"objects", 0}, {"problems", json::array()}};
  auto problem = [&](const std::string& object, const std::string& text) {
    out.json["problems"].push_back(json{{"object", object}, {"problem", text}});
    out.text += "FAILED  " + object + ": " + text + "\n";
    out.json["ok"] = false;
    out.exit_code = 1;
  };
  std::set<std::string> seen;
  std::size_t done = 0;
  for (const auto& info : *objects) {
    ++done;
    if (progress_fd >= 0 && (done % 16 == 0 || done == objects->size())) {
      const std::string line = "\rverified " + std::to_string(done) + "/" + std::to_string(objects->size()) + " objects";
      write_progress(progress_fd, line);
    }
    const std::string file_name(base_name(info.key));
    auto name = parse_wal_name(file_name);
    if (!name || object_key(*name) != info.key) continue;
    seen.insert(file_name);
    auto read = m_repository.objects().read(info.key);
    if (!read || !*read) {
      problem(info.key, read ? "listed, then gone before it could be read" : read.error().message);
      continue;
    }
    const OpenedObject* opened = &**read;
    if (auto r = check_wal_content(m_repository, opened->plain, *name, file_name); !r) {
      problem(info.key, r.error().message);
      continue;
    }
    auto row = m_index.find(file_name);
    if (!row) {
      problem(info.key, row.error().message);
    } else if (!*row) {
      problem(info.key, "not in the index (run 'walvault reindex')");
    } else if ((*row)->sha256 != to_hex(opened->header.plain_sha256) || (*row)->plain_size != opened->plain.size()) {
      problem(info.key, "content differs from what the index recorded when it was archived");
    }
  }
  write_progress(progress_fd, "\n");
  out.json["objects"] = seen.size();
  if (auto names = m_index.names()) {
    for (const auto& n : *names)
      if (!seen.contains(n)) problem(n, "in the index but missing from the repository");
  }
  // Stored base backups: every chunk decoded and proven against backup.json, streamed (a
  // chunk can be larger than memory should hold).
  std::size_t chunks_verified = 0;
  if (auto stored = m_index.stored_backups(); !stored) {
    problem("backup", stored.error().message);
  } else {
    std::vector<std::byte> buffer(1 << 20);
    for (const auto& backup : *stored) {
      for (const auto& chunk : backup.chunks) {
        if (progress_fd >= 0) {
          const std::string line = "\rverifying backup " + backup.id + " " + std::string(base_name(chunk.key)) + "      ";
          write_progress(progress_fd, line);
        }
        auto reader = m_repository.objects().open_listed(chunk.key, ReadChecks::expecting(chunk.sha256));
        Result<std::size_t> n = reader ? Result<std::size_t>(1) : Result<std::size_t>(std::unexpected(reader.error()));
        std::uint64_t bytes = 0;
        while (n && *n > 0) {
          n = reader->read(buffer);
          if (n) bytes += *n;
        }
        if (!n) problem(chunk.key, n.error().message);
        else if (bytes != chunk.plain_size) problem(chunk.key, "decodes to a size other than backup.json records");
        else ++chunks_verified;
      }
    }
  }
  out.json["backup_chunks"] = chunks_verified;
  auto segments = m_index.segments();
  auto rows = m_index.timelines();
  if (segments && rows) {
    // Gaps where recovery needs WAL (older WAL is pruned on purpose by retention).
    std::uint64_t from_lsn = 0;
    auto backups = m_index.backups();
    const RetentionView view = retention_view();
    if (backups)
      for (const auto& name : required_gaps(*segments, *rows, *backups, view, from_lsn))
        problem(name, "gap: segment missing where recovery needs it (from " + format_lsn(from_lsn) +
                          " on the path to the newest timeline, or inside a base backup's own WAL)");
  }
  out.text += std::to_string(seen.size()) + " object(s) and " + std::to_string(chunks_verified) + " base backup chunk(s) verified, " +
              std::to_string(out.json["problems"].size()) + " problem(s)\n";
  if (out.exit_code) out.reason = std::to_string(out.json["problems"].size()) + " problem(s) found by verify";
  return out;
}

AdminOutput Admin::plan(const protocol::Message& request) {
  PlanRequest plan_request;
  PlanTarget& target = plan_request.target;
  if (auto v = request.field("target-time")) {
    auto us = parse_timestamp(*v);
    if (!us)
      return failed_output({ErrorKind::invalid, "--target-time '" + std::string(*v) +
                                                    "' is not a timestamp (RFC 3339 or 'YYYY-MM-DD HH:MM:SS[+TZ]')"});
    target.kind = PlanTarget::Kind::time;
    target.time_us = *us;
  } else if (auto lsn_text = request.field("target-lsn")) {
    auto lsn = parse_lsn(*lsn_text);
    if (!lsn) return failed_output({ErrorKind::invalid, "--target-lsn '" + std::string(*lsn_text) + "' is not an LSN such as 0/3000028"});
    target.kind = PlanTarget::Kind::lsn;
    target.lsn = *lsn;
  } else if (auto xid = request.field("target-xid")) {
    target.kind = PlanTarget::Kind::xid;
    target.text = std::string(*xid);
  } else if (auto point = request.field("target-name")) {
    target.kind = PlanTarget::Kind::name;
    target.text = std::string(*point);
  } else if (request.field("target-immediate")) {
    target.kind = PlanTarget::Kind::immediate;
  }
  if (auto tl = request.field("target-timeline"); tl && *tl != "latest") {
    auto id = field_u32(request, "target-timeline");
    if (!id || *id == 0) return failed_output({ErrorKind::invalid, "--target-timeline '" + std::string(*tl) + "' is not 'latest' or a number"});
    plan_request.timeline = id;
  }
  auto segments = m_index.segments();
  auto rows = m_index.timelines();
  auto backups = m_index.backups();
  auto stored = m_index.stored_backups();
  if (!segments || !rows || !backups || !stored)
    return failed_output(!segments ? segments.error() : !rows ? rows.error() : !backups ? backups.error() : stored.error());
  // `walvault restore` (restore=1) and --backup can only use backups whose data walvault stores.
  const auto by_file = stored_by_backup_file(*stored);
  const std::string wanted(request.field("backup").value_or("latest"));
  const bool stored_only = request.field("restore").has_value() || wanted != "latest";
  if (wanted != "latest") {
    bool known = false;
    for (const auto& s : *stored) known = known || s.id == wanted;
    if (!known)
      return failed_output({ErrorKind::not_found, "no stored backup '" + wanted + "' (see walvault list --backups)"});
  }
  std::vector<IndexedBackup> candidates;
  for (const auto& b : *backups) {
    auto it = by_file.find(b.name);
    if (stored_only && (it == by_file.end() || (wanted != "latest" && it->second->id != wanted))) continue;
    candidates.push_back(b);
  }
  Plan plan = make_plan(plan_request, *segments, *rows, candidates);
  if (stored_only && candidates.empty()) {
    plan.reachable = false;
    plan.reason = wanted != "latest" ? "backup " + wanted + " is not complete (its .backup file is not in the index)"
                                     : "no base backup stored by walvault yet (take one with walvault backup)";
  }
  const StoredBackup* chosen = nullptr;
  if (plan.backup)
    if (auto it = by_file.find(plan.backup->name); it != by_file.end()) chosen = it->second;

  AdminOutput out;
  out.exit_code = plan.reachable ? 0 : 1;
  if (!plan.reachable) out.reason = "target not reachable: " + plan.reason;
  json spans = json::array();
  for (const auto& span : plan.spans)
    spans.push_back(json{{"timeline", span.timeline},
                         {"first_segment", format_wal_name(segment_from_number(span.timeline, span.first_segno, plan.segment_size))},
                         {"last_segment", format_wal_name(segment_from_number(span.timeline, span.last_segno, plan.segment_size))},
                         {"segments", span.last_segno - span.first_segno + 1}});
  out.json = json{{"reachable", plan.reachable},
                  {"reason", plan.reason.empty() ? json(nullptr) : json(plan.reason)},
                  {"timeline", plan.timeline},
                  {"backup", plan.backup ? backup_json(*plan.backup) : json(nullptr)},
                  {"stored_backup", chosen ? stored_backup_json(*chosen, true) : json(nullptr)},
                  // The instant planned for, in UTC with its zone: what restore writes as
                  // recovery_target_time, so PostgreSQL's own timezone cannot shift it.
                  {"target_time", target.kind == PlanTarget::Kind::time ? json(format_timestamp(target.time_us)) : json(nullptr)},
                  {"timelines", spans},
                  {"first_segment", plan.segments.empty() ? json(nullptr) : json(plan.segments.front())},
                  {"last_segment", plan.segments.empty() ? json(nullptr) : json(plan.segments.back())},
                  {"segment_count", plan.segments.size()},
                  {"bytes", plan.bytes},
                  {"missing", plan.missing}};
  out.text = plan.reachable ? "reachable: yes\n" : "reachable: NO - " + plan.reason + "\n";
  if (plan.reachable && !plan.reason.empty()) out.text += "note: " + plan.reason + "\n";
  out.text += "target timeline: " + std::to_string(plan.timeline) + "\n";
  if (plan.backup)
    out.text += "base backup: " + plan.backup->name + " (label '" + plan.backup->label + "', start " + format_lsn(plan.backup->start_lsn) +
                ", consistent at " + format_lsn(plan.backup->stop_lsn) + ", finished " + optional_time_text(plan.backup->stop_us) + ")\n";
  if (plan.backup)
    out.text += chosen ? "stored by walvault as " + chosen->id + ": " + std::to_string(chosen->files) + " files, " +
                             human_bytes(chosen->plain_bytes) + " (" + human_bytes(chosen->stored_bytes) + " stored, " +
                             std::to_string(chosen->chunks.size()) + " chunks)\n"
                       : "its data is not stored by walvault (taken outside it): restore it by hand\n";
  for (const auto& span : spans)
    out.text += "  timeline " + span["timeline"].dump() + ": " + span["first_segment"].get<std::string>() + " .. " +
                span["last_segment"].get<std::string>() + " (" + span["segments"].dump() + " segments)\n";
  out.text += "to fetch: " + std::to_string(plan.segments.size()) + " segments, " + human_bytes(plan.bytes) + " stored\n";
  return out;
}

AdminOutput Admin::reindex() {
  auto report = m_indexer.rebuild();
  if (!report) return failed_output(report.error());
  AdminOutput out;
  out.exit_code = report->unreadable || report->lost_count ? 1 : 0;
  out.json = json{{"indexed", report->added},
                  {"unreadable", report->unreadable},
                  {"lost", report->lost_count},
                  {"lost_names", report->lost_names}};
  out.text = "reindexed " + std::to_string(report->added) + " object(s) from the repository";
  if (report->unreadable) out.text += "; " + std::to_string(report->unreadable) + " unreadable (see walvaultd's log, run 'walvault verify')";
  out.text += "\n";
  if (report->lost_count) {
    // Loud on purpose: the archive shrank behind walvault's back.
    out.text += "LOST: " + std::to_string(report->lost_count) +
                " object(s) the index listed as archived are gone from the repository; they stay recorded as lost "
                "(archive-get fails on them instead of answering 'not there'):\n";
    for (const auto& name : report->lost_names) out.text += "  " + name + "\n";
    if (report->lost_count > report->lost_names.size())
      out.text += "  ... and " + std::to_string(report->lost_count - report->lost_names.size()) + " more (see walvaultd's log)\n";
    out.text += "restore them from a copy if you have one, and take a new base backup ('walvault backup')\n";
  }
  return out;
}

}  // namespace walvault
