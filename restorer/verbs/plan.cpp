// PLAN: what a recovery to a target needs (base backup, timelines, segments, bytes), and
// whether the archive can deliver it; `walvault restore` follows it.
#include "common/core/base_backup.hpp"
#include "common/core/plan.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string plan_text(const json& m) {
  const bool reachable = m["reachable"].get<bool>();
  const std::string reason = m["reason"].is_string() ? m["reason"].get<std::string>() : "";
  std::string text = reachable ? "reachable: yes\n" : "reachable: NO - " + reason + "\n";
  if (reachable && !reason.empty()) text += "note: " + reason + "\n";
  text += "target timeline: " + m["timeline"].dump() + "\n";
  if (const json& b = m["backup"]; !b.is_null()) {
    text += "base backup: " + b["name"].get<std::string>() + " (label '" + b["label"].get<std::string>() + "', start " +
            b["start_lsn"].get<std::string>() + ", consistent at " + b["stop_lsn"].get<std::string>() + ", finished " +
            time_text(b["stop_time"]) + ")\n";
    const json& s = m["stored_backup"];
    text += !s.is_null() ? "stored by walvault as " + s["id"].get<std::string>() + ": " + s["files"].dump() + " files, " +
                               human_bytes(s["plain_bytes"].get<std::uint64_t>()) + " (" +
                               human_bytes(s["stored_bytes"].get<std::uint64_t>()) + " stored, " + s["chunk_count"].dump() +
                               " chunks)\n"
                         : "its data is not stored by walvault (taken outside it): restore it by hand\n";
  }
  for (const auto& span : m["timelines"])
    text += "  timeline " + span["timeline"].dump() + ": " + span["first_segment"].get<std::string>() + " .. " +
            span["last_segment"].get<std::string>() + " (" + span["segments"].dump() + " segments)\n";
  return text + "to fetch: " + m["segment_count"].dump() + " segments, " + human_bytes(m["bytes"].get<std::uint64_t>()) +
         " stored\n";
}

// The recovery target and timeline a request names; a bad value is the request's error.
Result<PlanRequest> plan_request_of(const protocol::Message& request) {
  PlanRequest plan_request;
  PlanTarget& target = plan_request.target;
  if (auto v = request.field("target-time")) {
    auto us = parse_timestamp(*v);
    if (!us)
      return fail(ErrorKind::invalid,
                  "--target-time '" + std::string(*v) + "' is not a timestamp (RFC 3339 or 'YYYY-MM-DD HH:MM:SS[+TZ]')");
    target.kind = PlanTarget::Kind::time;
    target.time_us = *us;
  } else if (auto lsn_text = request.field("target-lsn")) {
    auto lsn = parse_lsn(*lsn_text);
    if (!lsn) return fail(ErrorKind::invalid, "--target-lsn '" + std::string(*lsn_text) + "' is not an LSN such as 0/3000028");
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
    if (!id || *id == 0) return fail(ErrorKind::invalid, "--target-timeline '" + std::string(*tl) + "' is not 'latest' or a number");
    plan_request.timeline = id;
  }
  return plan_request;
}

}  // namespace

AdminOutput plan_verb(const VerbSources& sources, const protocol::Message& request) {
  auto plan_request = plan_request_of(request);
  if (!plan_request) return failed_output(plan_request.error());
  const PlanTarget& target = plan_request->target;
  auto segments = sources.index.segments();
  auto rows = sources.index.timelines();
  auto backups = sources.index.backups();
  auto stored = sources.index.stored_backups();
  if (!segments || !rows || !backups || !stored)
    return failed_output(!segments ? segments.error() : !rows ? rows.error() : !backups ? backups.error() : stored.error());
  // `walvault restore` (restore=1) and --backup can only use backups whose data walvault stores.
  const auto by_file = stored_by_backup_file(*stored);
  const std::string wanted(request.field("backup").value_or("latest"));
  const bool stored_only = request.field("restore").has_value() || wanted != "latest";
  if (wanted != "latest") {
    bool known = false;
    for (const auto& s : *stored) known = known || s.id == wanted;
    if (!known) return failed_output({ErrorKind::not_found, "no stored backup '" + wanted + "' (see walvault list --backups)"});
  }
  std::vector<IndexedBackup> candidates;
  for (const auto& b : *backups) {
    auto it = by_file.find(b.name);
    if (stored_only && (it == by_file.end() || (wanted != "latest" && it->second->id != wanted))) continue;
    candidates.push_back(b);
  }
  Plan plan = make_plan(*plan_request, *segments, *rows, candidates);
  if (stored_only && candidates.empty()) {
    plan.reachable = false;
    plan.reason = wanted != "latest" ? "backup " + wanted + " is not complete (its .backup file is not in the index)"
                                     : "no base backup stored by walvault yet (take one with walvault backup)";
  }
  const StoredBackup* chosen = nullptr;
  if (plan.backup)
    if (auto it = by_file.find(plan.backup->name); it != by_file.end()) chosen = it->second;

  json spans = json::array();
  for (const auto& span : plan.spans)
    spans.push_back(json{{"timeline", span.timeline},
                         {"first_segment", format_wal_name(segment_from_number(span.timeline, span.first_segno, plan.segment_size))},
                         {"last_segment", format_wal_name(segment_from_number(span.timeline, span.last_segno, plan.segment_size))},
                         {"segments", span.last_segno - span.first_segno + 1}});
  json model{{"reachable", plan.reachable},
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
  return from_model(std::move(model), plan_text, plan.reachable ? 0 : 1,
                    plan.reachable ? "" : "target not reachable: " + plan.reason);
}

}  // namespace walvault
