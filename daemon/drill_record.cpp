#include "daemon/drill_record.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/base/fd.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

namespace {

using json = nlohmann::ordered_json;

std::optional<double> number_field(const protocol::Message& request, std::string_view key) {
  auto text = request.field(key);
  if (!text) return std::nullopt;
  const std::string value(*text);
  char* end = nullptr;
  const double number = std::strtod(value.c_str(), &end);
  if (value.empty() || *end || number < 0) return std::nullopt;
  return number;
}

std::string underscored(std::string name) {
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

std::optional<std::int64_t> time_of(const json& drill) {
  if (!drill.is_object() || !drill.contains("finished_at") || !drill["finished_at"].is_string()) return std::nullopt;
  return parse_timestamp(drill["finished_at"].get<std::string>());
}

}  // namespace

DrillRecord::DrillRecord(std::string path) : m_path(std::move(path)), m_document(json{{"last", nullptr}, {"last_success", nullptr}}) {
  if (::access(m_path.c_str(), F_OK) != 0 && errno == ENOENT) return;  // no drill recorded yet
  auto bytes = read_file(m_path);
  if (!bytes) {
    spdlog::warn("drill record '{}' cannot be read: {}", m_path, bytes.error().message);
    return;
  }
  json loaded = json::parse(as_text(*bytes), nullptr, false);
  if (loaded.is_object() && loaded.contains("last") && loaded.contains("last_success")) m_document = std::move(loaded);
  else spdlog::warn("drill record '{}' is not a drill record; it is replaced by the next drill's", m_path);
}

Result<void> DrillRecord::record(const protocol::Message& request) {
  auto ok = request.field("ok");
  auto started = request.field("started-at");
  auto finished = request.field("finished-at");
  if (!ok || (*ok != "0" && *ok != "1") || !started || !finished || !parse_timestamp(*started) || !parse_timestamp(*finished))
    return fail(ErrorKind::invalid, "DRILL-RESULT needs ok=0|1, started-at and finished-at (RFC 3339)");
  // The record's keys are the fields' with underscores (as status shows them).
  json drill{{"ok", *ok == "1"}, {"started_at", std::string(*started)}, {"finished_at", std::string(*finished)}};
  for (const char* field : {"rto-seconds", "rpo-seconds"}) {
    auto n = number_field(request, field);
    drill[underscored(field)] = n ? json(*n) : json(nullptr);
  }
  auto wal = number_field(request, "wal-segments-replayed");
  drill["wal_segments_replayed"] = wal ? json(static_cast<std::uint64_t>(*wal)) : json(nullptr);
  for (const char* field : {"backup", "reason", "check-sql", "check-output"}) {
    auto text = request.field(field);
    drill[underscored(field)] = text ? json(std::string(*text)) : json(nullptr);
  }
  // One writer at a time; readers (status, every scrape) wait only for the swap, not the fsync.
  std::lock_guard writing(m_write_mutex);
  json next = document();
  next["last"] = drill;
  if (drill["ok"].get<bool>()) next["last_success"] = drill;
  // A reason from PostgreSQL's log may hold bytes that are not UTF-8: replaced, never a throw.
  const std::string text = next.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  if (auto r = write_file_durable(m_path, as_bytes(text), true, 0640); !r) return r;
  {
    std::lock_guard lock(m_mutex);
    m_document = json::parse(text);
  }
  if (drill["ok"].get<bool>())
    spdlog::info("drill of backup {} passed: RTO {} s", drill["backup"].is_string() ? drill["backup"].get<std::string>() : "?", drill["rto_seconds"].dump());
  else
    spdlog::error("drill failed: {}", drill["reason"].is_string() ? drill["reason"].get<std::string>() : "no reason given");
  return {};
}

json DrillRecord::document() const {
  std::lock_guard lock(m_mutex);
  return m_document;
}

DrillSummary DrillRecord::summary() const {
  std::lock_guard lock(m_mutex);
  DrillSummary s;
  // A hand-edited file may lack any key: look before reading.
  auto number = [](const json& drill, const char* key) {
    return drill.is_object() && drill.contains(key) && drill[key].is_number() ? std::optional<double>(drill[key].get<double>()) : std::nullopt;
  };
  const json& success = m_document["last_success"];
  s.last_success_us = time_of(success);
  s.last_success_rto_seconds = number(success, "rto_seconds");
  s.last_success_rpo_seconds = number(success, "rpo_seconds");
  const json& last = m_document["last"];
  if (last.is_object() && last.contains("ok") && last["ok"].is_boolean()) {
    s.last_ok = last["ok"].get<bool>();
    s.last_finished_us = time_of(last);
  }
  return s;
}

}  // namespace walvault
