#include "archiver/retention.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common/core/time_format.hpp"
#include "common/core/plan.hpp"

namespace walvault {

namespace {

using Position = std::pair<std::uint32_t, std::uint64_t>;  // (timeline, segno)

std::string days(std::int64_t us) { return format_duration(us); }

// Whether a backup's start..stop lies on `path` (the rule make_plan uses to pick a backup).
bool on_path(const std::vector<PathStep>& path, const IndexedBackup& b) {
  for (std::size_t i = 0; i < path.size(); ++i)
    if (path[i].timeline == b.timeline)
      return b.start_lsn >= path[i].begin_lsn && (i + 1 == path.size() || b.stop_lsn <= path[i + 1].begin_lsn);
  return false;
}

}  // namespace

PruneDecision plan_prune(const RetentionPolicy& policy, std::int64_t now_us, const std::vector<IndexedObject>& objects,
                         const std::vector<IndexedTimeline>& timelines, const std::vector<IndexedBackup>& backups) {
  PruneDecision decision;
  std::uint64_t segment_size = 0;
  std::map<Position, const IndexedObject*> segments;
  std::vector<IndexedObject> segment_rows;
  for (const auto& o : objects) {
    // Neither an unreadable nor a lost object covers its place in WAL.
    if (o.sha256 == k_unreadable_sha256 || o.sha256 == k_missing_sha256) continue;
    if (o.kind == WalFileKind::segment || o.kind == WalFileKind::partial) {
      segment_size = segment_size ? segment_size : o.segment_size;
      segment_rows.push_back(o);
      if (o.kind == WalFileKind::segment) segments[{o.timeline, o.segno}] = &o;
    }
  }
  if (!segment_size) {
    decision.refusal = "no WAL segment is archived: nothing to prune";
    return decision;
  }

  // Complete backups: their WAL from start to stop is archived, along their own timeline path.
  std::vector<const IndexedBackup*> complete;
  for (const auto& b : backups) {
    auto path = timeline_path(b.timeline, timelines);
    if (!path) continue;
    bool whole = true;
    for (std::uint64_t segno = b.start_lsn / segment_size; segno <= b.stop_lsn / segment_size && whole; ++segno)
      whole = segments.contains({timeline_for_segment(*path, segno, segment_size), segno});
    if (whole) complete.push_back(&b);
  }
  if (complete.empty()) {
    decision.refusal = "no complete base backup is known (one whose WAL from start to stop is archived): "
                       "the index cannot prove what recovery needs, so nothing is pruned";
    return decision;
  }
  const std::uint32_t latest = latest_timeline(segment_rows, timelines);
  auto present_path = timeline_path(latest, timelines);
  if (!present_path) {
    decision.refusal = present_path.error().message + ": nothing is pruned";
    return decision;
  }
  // Newest first, those a restore of the present timeline can use before the others: stop
  // LSNs of different branches do not say which backup is newer.
  std::sort(complete.begin(), complete.end(), [&](auto* a, auto* b) {
    const bool a_on = on_path(*present_path, *a), b_on = on_path(*present_path, *b);
    return a_on != b_on ? a_on : a->stop_lsn > b->stop_lsn;
  });
  if (!on_path(*present_path, *complete.front())) {
    decision.refusal = "no complete base backup lies on the path to the newest timeline " + std::to_string(latest) +
                       ": nothing is pruned";
    return decision;
  }

  // Backups to keep: within the count or the days; the newest always.
  std::vector<const IndexedBackup*> kept;
  std::map<std::string, std::string> keep_reason;  // object name -> why
  for (std::size_t i = 0; i < complete.size(); ++i) {
    const IndexedBackup* b = complete[i];
    const bool by_count = i < std::max(1u, policy.keep_backups);
    const bool by_age = b->stop_us && now_us - *b->stop_us <= policy.backup_days_us;
    if (!by_count && !by_age) continue;
    kept.push_back(b);
    keep_reason[b->name] = by_count ? "backup: among the newest " + std::to_string(std::max(1u, policy.keep_backups))
                                    : "backup: younger than " + days(policy.backup_days_us);
  }

  // The PITR window starts at the newest complete backup that is at least wal_days old, so
  // every moment of the window can be reached from a backup that finished before it; that
  // backup is kept too, whatever the backup rules say. When no backup is that old, the window
  // starts at the oldest complete backup. Only backups on the present timeline's path count.
  const IndexedBackup* anchor = complete.front();
  for (const IndexedBackup* b : complete) {
    if (!on_path(*present_path, *b)) break;
    anchor = b;  // the oldest on the path, unless one is old enough
    if (b->stop_us && now_us - *b->stop_us >= policy.wal_days_us) break;
  }
  if (std::find(kept.begin(), kept.end(), anchor) == kept.end()) {
    kept.push_back(anchor);
    keep_reason[anchor->name] = "backup: starts the point-in-time window (" + days(policy.wal_days_us) + ")";
  }
  const std::uint64_t window_segno = anchor->start_lsn / segment_size;
  decision.window_start_lsn = anchor->start_lsn;
  decision.window_start = format_wal_name(segment_from_number(
      timeline_for_segment(*present_path, window_segno, segment_size), window_segno, segment_size));

  // Segments each kept backup needs to reach consistency.
  std::map<std::string, std::string> needed_by_backup;
  for (const IndexedBackup* b : kept) {
    auto path = timeline_path(b->timeline, timelines);
    if (!path) continue;
    for (std::uint64_t segno = b->start_lsn / segment_size; segno <= b->stop_lsn / segment_size; ++segno)
      needed_by_backup.emplace(format_wal_name(segment_from_number(timeline_for_segment(*path, segno, segment_size), segno, segment_size)),
                               "needed by backup " + b->name + " (start to stop)");
  }

  struct Candidate {
    std::uint64_t order;
    const IndexedObject* object;
    std::string reason;
  };
  std::vector<Candidate> removals;
  std::set<std::string> kept_backup_names;
  for (const IndexedBackup* b : kept) kept_backup_names.insert(b->name);

  for (const auto& o : objects) {
    std::string keep;
    std::string why_not;
    if (o.sha256 == k_unreadable_sha256) {
      keep = "unreadable object: left for 'walvault verify' and the operator";
    } else if (o.kind == WalFileKind::history) {
      keep = "timeline history: always kept";
    } else if (o.kind == WalFileKind::backup) {
      auto it = keep_reason.find(o.name);
      if (it != keep_reason.end()) keep = it->second;
      else {
        const IndexedBackup* row = nullptr;
        for (const auto& b : backups)
          if (b.name == o.name) row = &b;
        const bool is_complete = row && std::find(complete.begin(), complete.end(), row) != complete.end();
        std::uint64_t position = row ? row->start_lsn / segment_size : 0;
        if (!row)
          if (auto parsed = parse_wal_name(o.name)) position = segment_number(*parsed, segment_size);
        if (row && !is_complete && position >= window_segno)
          keep = "backup not complete yet (its WAL is not all archived), inside the window";
        else if (!row && position >= window_segno)
          // Not a counted backup (its data is not stored, or not yet: being taken now).
          keep = "backup file of a backup that does not count (its data is not stored), inside the window";
        else
          why_not = is_complete ? "backup beyond the count and older than " + days(policy.backup_days_us) : "incomplete backup before the window";
      }
    } else {  // segment or .partial
      const bool on_present_path = timeline_for_segment(*present_path, o.segno, segment_size) == o.timeline;
      if (auto it = needed_by_backup.find(o.name); it != needed_by_backup.end()) keep = it->second;
      else if (o.segno >= window_segno)
        keep = on_present_path ? "PITR window (from " + decision.window_start + ")"
                               : "abandoned timeline " + std::to_string(o.timeline) + ", inside the window";
      else
        why_not = on_present_path ? "before the PITR window (starts at " + decision.window_start + ")"
                                  : "abandoned timeline " + std::to_string(o.timeline) + ", before the window";
    }
    if (!keep.empty()) {
      decision.keep.push_back({o.name, keep});
    } else {
      // Oldest position first, so an interrupted prune leaves the archive's tail whole.
      std::uint64_t order = o.segno;
      if (o.kind == WalFileKind::backup)  // indexed without a position: take it from the name
        if (auto parsed = parse_wal_name(o.name)) order = segment_number(*parsed, segment_size);
      removals.push_back({order, &o, why_not});
    }
  }
  // At one position an expired backup's .backup file goes before its first segment: a crash
  // in between must not leave a backup advertised whose own WAL is already gone.
  std::stable_sort(removals.begin(), removals.end(), [](const Candidate& a, const Candidate& b) {
    if (a.order != b.order) return a.order < b.order;
    const bool a_backup = a.object->kind == WalFileKind::backup, b_backup = b.object->kind == WalFileKind::backup;
    if (a_backup != b_backup) return a_backup;
    return a.object->name < b.object->name;
  });
  for (const auto& r : removals) {
    decision.remove.push_back({r.object->name, r.reason});
    decision.bytes_freed += r.object->stored_size;
  }
  decision.allowed = true;
  return decision;
}

}  // namespace walvault
