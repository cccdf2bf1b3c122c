// TIMELINES: every timeline known, its parent and switch point, and the window of commits
// recoverable along its path.
#include <map>
#include <set>

#include "common/core/plan.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string timelines_text(const json& m) {
  std::string text;
  for (const auto& t : m["timelines"]) {
    text += "timeline " + t["timeline"].dump();
    if (!t["parent"].is_null())
      text += " (from timeline " + t["parent"].dump() + " at " + t["switch_lsn"].get<std::string>() + ")";
    text += ": " + t["segments"].dump() + " segments, recoverable " + time_text(t["recoverable_from"]) + " .. " +
            time_text(t["recoverable_to"]);
    if (!t["first_gap"].is_null()) text += ", GAP at " + t["first_gap"].get<std::string>();
    text += "\n";
  }
  return text;
}

}  // namespace

AdminOutput timelines_verb(const VerbSources& sources) {
  auto segments = sources.index.segments();
  auto rows = sources.index.timelines();
  auto backups = sources.index.backups();
  if (!segments || !rows || !backups) return failed_output(!segments ? segments.error() : !rows ? rows.error() : backups.error());
  std::set<std::uint32_t> ids;
  std::map<std::uint32_t, std::uint64_t> segment_counts;
  std::map<std::string, const IndexedObject*> by_name;
  for (const auto& s : *segments) {
    ids.insert(s.timeline);
    segment_counts[s.timeline] += s.kind == WalFileKind::segment;
    by_name[s.name] = &s;
  }
  std::map<std::uint32_t, const IndexedTimeline*> by_id;
  for (const auto& t : *rows) {
    ids.insert(t.timeline);
    by_id[t.timeline] = &t;
  }
  std::optional<std::uint64_t> oldest_backup_start;
  for (const auto& b : *backups)
    if (!oldest_backup_start || b.start_lsn < *oldest_backup_start) oldest_backup_start = b.start_lsn;

  json model{{"timelines", json::array()}};
  for (std::uint32_t id : ids) {
    // The recoverable window: commits reachable along this timeline's path without a gap,
    // starting at the oldest backup on the path (or the oldest segment when none is known).
    PlanRequest request;
    request.timeline = id;
    Plan plan = make_plan(request, *segments, *rows, {});
    std::optional<std::int64_t> earliest, latest;
    if (timeline_path(id, *rows)) {
      for (const auto& name : plan.segments) {
        const IndexedObject* s = by_name[name];
        if (!s) continue;
        if (oldest_backup_start && plan.segment_size && s->segno < *oldest_backup_start / plan.segment_size) continue;
        if (s->first_xact_us && !earliest) earliest = s->first_xact_us;
        if (s->last_xact_us) latest = s->last_xact_us;
      }
    }
    auto row = by_id.find(id);
    const bool known = row != by_id.end();
    model["timelines"].push_back(json{{"timeline", id},
                                      {"parent", known ? json(row->second->parent) : json(nullptr)},
                                      {"switch_lsn", known ? json(format_lsn(row->second->switch_lsn)) : json(nullptr)},
                                      {"reason", known ? json(row->second->reason) : json(nullptr)},
                                      {"segments", segment_counts[id]},
                                      {"recoverable_from", optional_time(earliest)},
                                      {"recoverable_to", optional_time(latest)},
                                      {"continuous", plan.missing.empty()},
                                      {"first_gap", plan.missing.empty() ? json(nullptr) : json(plan.missing.front())}});
  }
  return from_model(std::move(model), timelines_text);
}

}  // namespace walvault
