#include "common/core/plan.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common/core/time_format.hpp"

namespace walvault {

namespace {

using SegmentMap = std::map<std::pair<std::uint32_t, std::uint64_t>, const IndexedObject*>;

SegmentMap map_segments(const std::vector<IndexedObject>& segments) {
  SegmentMap map;
  for (const auto& s : segments)
    if (s.kind == WalFileKind::segment) map[{s.timeline, s.segno}] = &s;
  return map;
}

std::uint64_t segment_size_of(const std::vector<IndexedObject>& segments) {
  for (const auto& s : segments)
    if (s.segment_size) return s.segment_size;
  return 0;
}

// The last segment number that exists on the path (newest archived position).
std::optional<std::uint64_t> newest_segno_on_path(const std::vector<PathStep>& path, const std::vector<IndexedObject>& segments,
                                                  std::uint64_t segment_size) {
  std::optional<std::uint64_t> newest;
  for (const auto& s : segments) {
    if (s.kind != WalFileKind::segment) continue;
    if (timeline_for_segment(path, s.segno, segment_size) != s.timeline) continue;
    if (!newest || s.segno > *newest) newest = s.segno;
  }
  return newest;
}

std::string segment_name(std::uint32_t timeline, std::uint64_t segno, std::uint64_t segment_size) {
  return format_wal_name(segment_from_number(timeline, segno, segment_size));
}

bool on_path(const std::vector<PathStep>& path, std::uint32_t timeline, std::uint64_t start_lsn, std::uint64_t stop_lsn) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i].timeline != timeline) continue;
    const std::uint64_t end = i + 1 < path.size() ? path[i + 1].begin_lsn : UINT64_MAX;
    return start_lsn >= path[i].begin_lsn && stop_lsn <= end;
  }
  return false;
}

}  // namespace

std::uint32_t timeline_for_segment(const std::vector<PathStep>& path, std::uint64_t segno, std::uint64_t segment_size) {
  std::uint32_t result = path.front().timeline;
  for (const auto& step : path)
    if (step.begin_lsn / segment_size <= segno) result = step.timeline;
  return result;
}

std::uint32_t latest_timeline(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines) {
  std::uint32_t latest = 0;
  for (const auto& s : segments) latest = std::max(latest, s.timeline);
  for (const auto& t : timelines) latest = std::max(latest, t.timeline);
  return latest;
}

Result<std::vector<PathStep>> timeline_path(std::uint32_t timeline, const std::vector<IndexedTimeline>& timelines) {
  std::map<std::uint32_t, const IndexedTimeline*> by_id;
  for (const auto& t : timelines) by_id[t.timeline] = &t;
  std::vector<PathStep> path;
  std::uint32_t current = timeline;
  std::set<std::uint32_t> seen;
  for (;;) {
    if (!seen.insert(current).second) return fail(ErrorKind::corrupt, "timeline history loops at timeline " + std::to_string(current));
    auto it = by_id.find(current);
    if (it == by_id.end()) {
      // No history: the root as far as this repository knows (timeline 1, or the timeline the
      // cluster was on when archiving to this repository began).
      path.push_back({current, 0});
      break;
    }
    path.push_back({current, it->second->switch_lsn});
    current = it->second->parent;
  }
  std::reverse(path.begin(), path.end());
  return path;
}

std::vector<std::string> find_gaps(std::uint32_t timeline, std::uint64_t from_lsn, const std::vector<IndexedObject>& segments,
                                   const std::vector<IndexedTimeline>& timelines) {
  std::vector<std::string> missing;
  const std::uint64_t segment_size = segment_size_of(segments);
  if (!segment_size) return missing;
  auto path = timeline_path(timeline, timelines);
  if (!path) return {path.error().message};
  auto newest = newest_segno_on_path(*path, segments, segment_size);
  if (!newest) return missing;
  const SegmentMap map = map_segments(segments);
  for (std::uint64_t segno = from_lsn / segment_size; segno <= *newest; ++segno) {
    const std::uint32_t tli = timeline_for_segment(*path, segno, segment_size);
    if (!map.contains({tli, segno})) missing.push_back(segment_name(tli, segno, segment_size));
  }
  return missing;
}

Plan make_plan(const PlanRequest& request, const std::vector<IndexedObject>& segments,
               const std::vector<IndexedTimeline>& timelines, const std::vector<IndexedBackup>& backups) {
  Plan plan;
  plan.segment_size = segment_size_of(segments);
  if (!plan.segment_size) {
    plan.reason = "no WAL segment is archived";
    return plan;
  }
  plan.timeline = request.timeline ? *request.timeline : latest_timeline(segments, timelines);
  auto path = timeline_path(plan.timeline, timelines);
  if (!path) {
    plan.reason = path.error().message;
    return plan;
  }
  const SegmentMap map = map_segments(segments);
  const auto newest = newest_segno_on_path(*path, segments, plan.segment_size);
  if (!newest) {
    plan.reason = "no archived segment lies on the path to timeline " + std::to_string(plan.timeline);
    return plan;
  }
  const PlanTarget& target = request.target;

  // The base backup: the newest one on the path that finished before the target.
  std::vector<const IndexedBackup*> usable;
  for (const auto& b : backups) {
    if (!on_path(*path, b.timeline, b.start_lsn, b.stop_lsn)) continue;
    // PostgreSQL writes STOP TIME in whole seconds: the backup may have ended up to a second
    // later than it says, so within that second it is not certainly usable.
    if (target.kind == PlanTarget::Kind::time && (!b.stop_us || *b.stop_us + 1000000 > target.time_us)) continue;
    if (target.kind == PlanTarget::Kind::lsn && b.stop_lsn > target.lsn) continue;
    usable.push_back(&b);
  }
  std::sort(usable.begin(), usable.end(), [](auto* a, auto* b) { return a->stop_lsn < b->stop_lsn; });
  std::uint64_t start_segno;
  if (!usable.empty()) {
    plan.backup = *usable.back();
    start_segno = plan.backup->start_lsn / plan.segment_size;
  } else if (!backups.empty()) {
    bool any_on_path = false;
    for (const auto& b : backups) any_on_path = any_on_path || on_path(*path, b.timeline, b.start_lsn, b.stop_lsn);
    plan.reason = any_on_path ? "the target is before the oldest usable base backup on the path to timeline " +
                                    std::to_string(plan.timeline)
                              : "no base backup lies on the path to timeline " + std::to_string(plan.timeline);
    return plan;
  } else {
    // No backup known: plan the WAL from the oldest archived segment on the path.
    start_segno = *newest;
    for (const auto& s : segments)
      if (s.kind == WalFileKind::segment && timeline_for_segment(*path, s.segno, plan.segment_size) == s.timeline)
        start_segno = std::min(start_segno, s.segno);
    plan.reason = "no base backup is known to the index; WAL from the oldest archived segment";
  }

  // The last segment replay needs.
  std::uint64_t end_segno = *newest;
  switch (target.kind) {
    case PlanTarget::Kind::time: {
      std::optional<std::uint64_t> found;
      std::optional<std::int64_t> newest_commit;
      for (std::uint64_t segno = start_segno; segno <= *newest; ++segno) {
        auto it = map.find({timeline_for_segment(*path, segno, plan.segment_size), segno});
        if (it == map.end() || !it->second->last_xact_us) continue;
        newest_commit = it->second->last_xact_us;
        if (*it->second->last_xact_us > target.time_us) {
          found = segno;
          break;
        }
      }
      if (!found) {
        plan.reason = "the target time " + format_timestamp(target.time_us) + " is after the newest archived commit" +
                      (newest_commit ? " (" + format_timestamp(*newest_commit) + ")" : "");
        return plan;
      }
      end_segno = *found;
      break;
    }
    case PlanTarget::Kind::lsn:
      end_segno = target.lsn / plan.segment_size;
      if (end_segno > *newest) {
        plan.reason = "the target LSN " + format_lsn(target.lsn) + " is after the newest archived WAL";
        return plan;
      }
      if (plan.backup && target.lsn < plan.backup->stop_lsn) {
        plan.reason = "the target LSN is before the backup's consistency point " + format_lsn(plan.backup->stop_lsn);
        return plan;
      }
      break;
    case PlanTarget::Kind::immediate:
      if (!plan.backup) {
        plan.reason = "--target-immediate needs a base backup and none is known";
        return plan;
      }
      end_segno = plan.backup->stop_lsn / plan.segment_size;
      break;
    case PlanTarget::Kind::xid:
    case PlanTarget::Kind::name:
      plan.reason = std::string("the index does not record transaction ids or restore point names: the plan covers all "
                                "archived WAL on the path, and recovery stops where it finds the ") +
                    (target.kind == PlanTarget::Kind::xid ? "transaction" : "restore point");
      break;
    case PlanTarget::Kind::end_of_wal: break;
  }

  for (std::size_t i = 0; i < path->size(); ++i) {
    const PathStep& step = (*path)[i];
    TimelineSpan span{step.timeline, std::max(start_segno, step.begin_lsn / plan.segment_size), end_segno};
    if (i + 1 < path->size()) {
      const std::uint64_t child_begin = (*path)[i + 1].begin_lsn / plan.segment_size;
      span.last_segno = std::min(end_segno, child_begin == 0 ? 0 : child_begin - 1);
      if (child_begin == 0) span.first_segno = 1, span.last_segno = 0;
    }
    if (span.first_segno > span.last_segno) continue;
    plan.spans.push_back(span);
    for (std::uint64_t segno = span.first_segno; segno <= span.last_segno; ++segno) {
      const std::string name = segment_name(step.timeline, segno, plan.segment_size);
      auto it = map.find({step.timeline, segno});
      if (it == map.end()) {
        plan.missing.push_back(name);
      } else {
        plan.segments.push_back(name);
        plan.bytes += it->second->stored_size;
      }
    }
  }
  if (!plan.missing.empty()) {
    plan.reason = "gap in the archive: " + std::to_string(plan.missing.size()) + " segment(s) missing, first " + plan.missing.front();
    return plan;
  }
  plan.reachable = true;
  return plan;
}

}  // namespace walvault
