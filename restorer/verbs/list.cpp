// LIST: the archived files (or, with backups, the base backups), one line each.
#include <cstdio>

#include "common/core/base_backup.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string backups_text(const json& m) {
  char line[320];
  std::snprintf(line, sizeof line, "%-18s %-40s %4s %14s %14s %-21s %10s %s\n", "stored as", "backup file", "tli", "start lsn",
                "stop lsn", "stop", "size", "label");
  std::string text = line;
  std::size_t stored = 0;
  for (const auto& b : m["backups"]) {
    const json& s = b["stored"];
    stored += !s.is_null();
    std::snprintf(line, sizeof line, "%-18s %-40s %4u %14s %14s %-21s %10s %s\n",
                  s.is_null() ? "-" : s["id"].get<std::string>().c_str(), b["name"].get<std::string>().c_str(),
                  b["timeline"].get<std::uint32_t>(), b["start_lsn"].get<std::string>().c_str(),
                  b["stop_lsn"].get<std::string>().c_str(), time_text(b["stop_time"]).c_str(),
                  s.is_null() ? "-" : human_bytes(s["plain_bytes"].get<std::uint64_t>()).c_str(),
                  b["label"].get<std::string>().c_str());
    text += line;
  }
  return text + std::to_string(m["backups"].size()) + " backup(s), " + std::to_string(stored) +
         " stored by walvault (restorable with walvault restore)\n";
}

std::string segments_text(const json& m) {
  char line[320];
  std::snprintf(line, sizeof line, "%-32s %4s %10s %10s %6s  %-27s %-27s\n", "name", "tli", "size", "stored", "ratio",
                "first commit", "last commit");
  std::string text = line;
  for (const auto& s : m["segments"]) {
    std::snprintf(line, sizeof line, "%-32s %4u %10s %10s %6s  %-27s %-27s\n", s["name"].get<std::string>().c_str(),
                  s["timeline"].get<std::uint32_t>(), human_bytes(s["size"].get<std::uint64_t>()).c_str(),
                  human_bytes(s["stored_size"].get<std::uint64_t>()).c_str(), fixed(s["ratio"].get<double>(), 1).c_str(),
                  time_text(s["first_commit_time"]).c_str(), time_text(s["last_commit_time"]).c_str());
    text += line;
  }
  return text + std::to_string(m["segments"].size()) + " file(s)\n";
}

std::string list_text(const json& m) { return m.contains("backups") ? backups_text(m) : segments_text(m); }

AdminOutput list_backups(const VerbSources& sources) {
  auto backups = sources.index.backups();
  auto stored = sources.index.stored_backups();
  if (!backups || !stored) return failed_output(!backups ? backups.error() : stored.error());
  const auto by_file = stored_by_backup_file(*stored);
  json model{{"backups", json::array()}};
  for (const auto& b : *backups) {
    auto it = by_file.find(b.name);
    json row = backup_json(b);
    row["stored"] = it == by_file.end() ? json(nullptr) : stored_backup_json(*it->second, false);
    model["backups"].push_back(row);
  }
  return from_model(std::move(model), list_text);
}

}  // namespace

AdminOutput list_verb(const VerbSources& sources, const protocol::Message& request) {
  SegmentFilter filter;
  filter.timeline = field_u32(request, "timeline");
  if (auto text = request.field("timeline"); text && (!filter.timeline || *filter.timeline == 0))
    return failed_output({ErrorKind::invalid, "--timeline '" + std::string(*text) + "' is not a timeline number"});
  auto known_size = sources.index.segment_size();
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
  if (request.field("backups")) return list_backups(sources);

  auto segments = sources.index.segments(filter);
  if (!segments) return failed_output(segments.error());
  json model{{"segments", json::array()}};
  for (const auto& s : *segments)
    model["segments"].push_back(json{{"name", s.name},
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
  return from_model(std::move(model), list_text);
}

}  // namespace walvault
