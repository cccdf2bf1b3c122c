#include "restorer/verbs/verb_support.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "common/core/plan.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

AdminOutput from_model(nlohmann::ordered_json model, TextRenderer render_text, int exit_code, std::string reason) {
  AdminOutput out;
  out.text = render_text(model);
  out.json = std::move(model);
  out.exit_code = exit_code;
  out.reason = std::move(reason);
  return out;
}

}  // namespace walvault

namespace walvault::verbs {

double ratio(std::uint64_t plain, std::uint64_t stored) {
  return stored ? static_cast<double>(plain) / static_cast<double>(stored) : 0.0;
}

std::string fixed(double value, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

json optional_time(const std::optional<std::int64_t>& us) { return us ? json(format_timestamp(*us)) : json(nullptr); }
std::string time_text(const json& model_time) { return model_time.is_string() ? model_time.get<std::string>() : "-"; }

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

std::vector<std::string> required_gaps(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines,
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

Result<json> encryption_json(Repository& repository, Index& index) {
  auto counts = index.count_by_key_id();
  if (!counts) return std::unexpected(counts.error());
  const Keyring* keys = repository.objects().keys();
  json by_key = json::object();
  for (const auto& [id, n] : *counts) by_key[!id ? "unknown" : *id == 0 ? "none" : key_id_text(*id)] = n;
  json old = json::array();
  if (keys)
    for (auto id : keys->old_ids()) old.push_back(key_id_text(id));
  return json{{"key_id", keys && keys->current() ? json(key_id_text(keys->current()->id())) : json(nullptr)},
              {"old_key_ids", std::move(old)},
              {"objects_by_key_id", std::move(by_key)}};
}

}  // namespace walvault::verbs
