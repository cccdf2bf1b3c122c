// CHECK: is the archive healthy enough to bet a recovery on? WAL and backup age, disk usage,
// retention, continuity; one line each, exit 1 when any fails.
#include <charconv>
#include <map>
#include <set>

#include "common/core/base_backup.hpp"
#include "common/core/object_cipher.hpp"
#include "common/core/object_store.hpp"
#include "common/core/plan.hpp"
#include "common/core/repository_sync.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string check_text(const json& m) {
  std::string text;
  for (const auto& c : m["checks"])
    text += std::string(c["ok"].get<bool>() ? "ok    " : "FAILED") + "  " + c["message"].get<std::string>() + "\n";
  return text;
}

// The request's thresholds over the configured ones; a bad value is the request's error.
Result<CheckThresholds> requested_thresholds(const protocol::Message& request, CheckThresholds limits) {
  if (auto v = request.field("max-wal-age")) {
    auto us = parse_duration_us(*v);
    if (!us) return fail(ErrorKind::invalid, "--max-wal-age '" + std::string(*v) + "' is not a duration such as 30m");
    limits.max_wal_age_us = *us;
  }
  if (auto v = request.field("max-backup-age")) {
    auto us = parse_duration_us(*v);
    if (!us) return fail(ErrorKind::invalid, "--max-backup-age '" + std::string(*v) + "' is not a duration such as 48h");
    limits.max_backup_age_us = *us;
  }
  if (auto v = request.field("max-disk-usage")) {
    std::string text(*v);
    if (!text.empty() && text.back() == '%') text.pop_back();
    double percent = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), percent);
    if (ec != std::errc() || p != text.data() + text.size() || percent <= 0 || percent > 100)
      return fail(ErrorKind::invalid, "--max-disk-usage '" + std::string(*v) + "' is not a percentage such as 80%");
    limits.max_disk_usage = percent / 100;
  }
  return limits;
}

// Encryption on: how many indexed objects are still plain (normal while a repository migrates;
// new objects are encrypted), under old keys (rekey moves them), not recorded yet (indexed by an
// earlier walvault; reindex records them), and, failing, under a key walvaultd does not hold:
// those cannot be restored with the keys configured.
template <typename Add>
void add_encryption_check(const Keyring& keys, const std::map<std::optional<std::uint32_t>, std::uint64_t>& counts, Add& add) {
  const std::uint32_t current = keys.current()->id();
  std::uint64_t plain = 0, under_current = 0, under_old = 0, unknown = 0, unheld = 0;
  std::string unheld_ids;
  for (const auto& [id, n] : counts) {
    if (!id) unknown += n;
    else if (*id == 0) plain += n;
    else if (*id == current) under_current += n;
    else if (keys.find(*id)) under_old += n;
    else {
      unheld += n;
      unheld_ids += (unheld_ids.empty() ? "" : ", ") + key_id_text(*id);
    }
  }
  json value{{"key_id", key_id_text(current)}, {"current", under_current}, {"unencrypted", plain}, {"old_keys", under_old},
             {"unknown", unknown}, {"unheld", unheld}};
  std::string text = "encryption: new objects under key id " + key_id_text(current) + "; " + std::to_string(under_current) +
                     " WAL object(s) under it, " + std::to_string(plain) + " still unencrypted";
  if (under_old) text += ", " + std::to_string(under_old) + " under old keys (run 'walvault rekey')";
  if (unknown) text += ", " + std::to_string(unknown) + " not recorded yet (run 'walvault reindex')";
  if (unheld) text += ", " + std::to_string(unheld) + " under key id(s) " + unheld_ids + " that walvaultd does not hold: they cannot be restored";
  add("encryption", unheld == 0, std::move(value), nullptr, std::move(text));
}

}  // namespace

AdminOutput check_verb(const VerbSources& sources, const protocol::Message& request, CheckThresholds configured,
                       const std::optional<RetentionView>& retention) {
  auto requested = requested_thresholds(request, configured);
  if (!requested) return failed_output(requested.error());
  const CheckThresholds limits = *requested;
  auto segments = sources.index.segments();
  auto rows = sources.index.timelines();
  auto backups = sources.index.backups();
  if (!segments || !rows || !backups) return failed_output(!segments ? segments.error() : !rows ? rows.error() : backups.error());
  // One listing (check is an admin verb, not the hot path) catches objects removed behind the
  // daemon's back: they count as missing, not as archived. With several repositories each is
  // listed; one that cannot be has its own failed line below, the others still count.
  std::set<std::string> present;
  std::optional<MemberComparison> members;
  if (sources.repository.objects().member_count() > 1) {
    members = compare_members(sources.repository);
    for (const auto& key : members->present)
      if (key.starts_with("wal/")) present.insert(std::string(base_name(key)));
  } else {
    auto listed = sources.repository.objects().list_keys("wal");
    if (!listed) return failed_output(listed.error());
    for (const auto& key : *listed) present.insert(std::string(base_name(key)));
  }
  std::erase_if(*segments, [&](const IndexedObject& s) { return !present.contains(s.name); });
  const std::int64_t now = now_unix_us();
  json model{{"ok", true}, {"checks", json::array()}};
  std::string reason;
  auto add = [&](std::string name, bool ok, json value, json threshold, std::string text) {
    model["checks"].push_back(json{{"name", name}, {"ok", ok}, {"value", value}, {"threshold", threshold}, {"message", text}});
    if (!ok) {
      model["ok"] = false;
      reason += (reason.empty() ? "" : "; ") + text;
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
  auto stored = sources.index.stored_backups();
  if (!stored) return failed_output(stored.error());
  const auto by_file = stored_by_backup_file(*stored);
  std::optional<std::int64_t> newest_backup;
  std::string newest_backup_id;
  for (const auto& b : *backups) {
    auto it = by_file.find(b.name);
    const bool counts = by_file.empty() || it != by_file.end();
    if (counts && b.stop_us && (!newest_backup || *b.stop_us > *newest_backup)) {
      newest_backup = b.stop_us;
      newest_backup_id = it != by_file.end() ? it->second->id : "";
    }
  }
  if (!newest_backup)
    add("backup_age", false, nullptr, limits.max_backup_age_us / 1000000, "newest base backup: none yet (take one with 'walvault backup', or set backup-schedule)");
  else
    add("backup_age", now - *newest_backup <= limits.max_backup_age_us, (now - *newest_backup) / 1000000,
        limits.max_backup_age_us / 1000000,
        "newest base backup age " + format_duration(now - *newest_backup) +
            (newest_backup_id.empty() ? "" : " (" + newest_backup_id + ", stored by walvault)") + " (threshold " +
            format_duration(limits.max_backup_age_us) + ")");

  if (auto space = sources.repository.objects().space(); space && *space && (*space)->total) {
    const double used = (*space)->used();
    add("disk_usage", used <= limits.max_disk_usage, used, limits.max_disk_usage,
        "repository disk usage " + fixed(used * 100, 1) + "% (threshold " + fixed(limits.max_disk_usage * 100, 0) + "%)");
  }

  if (const Keyring* keys = sources.repository.objects().keys(); keys && keys->current()) {
    auto counts = sources.index.count_by_key_id();
    if (!counts) return failed_output(counts.error());
    add_encryption_check(*keys, *counts, add);
  }

  if (members)
    for (const auto& m : members->members) {
      json value{{"repository", m.repository}, {"objects", m.objects}, {"missing", m.missing.size()}, {"differing", m.differing.size()},
                 {"error", m.error ? json(*m.error) : json(nullptr)}, {"write_block", m.write_block ? json(*m.write_block) : json(nullptr)}};
      const std::string where = "repository '" + m.repository + "'";
      if (m.error)
        add("repository", false, value, nullptr, where + " cannot be listed: " + *m.error);
      else if (!m.missing.empty() || m.write_block)
        add("repository", false, value, nullptr,
            where + " lags: it lacks " + std::to_string(m.missing.size()) + " object(s) the others hold" +
                (m.missing.empty() ? "" : " (first " + m.missing.front() + ")") + (m.write_block ? " and is closed for writes" : "") +
                "; run 'walvault sync'");
      else if (!m.differing.empty())
        add("repository", false, value, nullptr,
            where + " holds " + std::to_string(m.differing.size()) + " object(s) of another size than the first repository's (first " +
                m.differing.front() + "); run 'walvault verify'");
      else
        add("repository", true, value, nullptr, where + " holds all " + std::to_string(m.objects) + " object(s)");
    }

  const RetentionView view = retention.value_or(RetentionView{});
  if (retention)
    add("retention", !view.problem, view.problem ? json(*view.problem) : json(nullptr), nullptr,
        view.problem ? "retention cannot prune: " + *view.problem : "retention can prove what recovery needs");
  if (const std::uint32_t latest = latest_timeline(*segments, *rows)) {
    std::uint64_t from_lsn = 0;
    auto missing = required_gaps(*segments, *rows, *backups, view, from_lsn);
    json list = json::array();
    for (const auto& m : missing) list.push_back(m);
    add("continuity", missing.empty(), list, nullptr,
        missing.empty() ? "WAL continuous on the path to timeline " + std::to_string(latest) + " from " + format_lsn(from_lsn) +
                              ", and every base backup's own WAL is archived"
                        : "WAL gap: " + std::to_string(missing.size()) + " segment(s) recovery needs are missing (path to timeline " +
                              std::to_string(latest) + " from " + format_lsn(from_lsn) + ", or a base backup's own WAL), first " +
                              missing.front());
  }
  const int exit_code = model["ok"].get<bool>() ? 0 : 1;
  return from_model(std::move(model), check_text, exit_code, std::move(reason));
}

}  // namespace walvault
