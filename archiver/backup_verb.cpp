#include "archiver/backup_verb.hpp"

#include <algorithm>
#include <cstdio>

#include "common/core/client_output.hpp"
#include "common/core/document.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

namespace {

std::string rate_text(std::uint64_t bytes, double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
  return buf;
}

std::string progress_line(const BackupProgress& p) {
  const double seconds = static_cast<double>(now_unix_us() - p.started_at_us) / 1e6;
  std::string line = "\rbackup " + p.id + ": " + p.phase + ", " + human_bytes(p.bytes);
  if (p.estimated_bytes > 0 && p.phase == "streaming") {
    const double fraction = std::min(1.0, static_cast<double>(p.bytes) / static_cast<double>(p.estimated_bytes));
    line += " of ~" + human_bytes(p.estimated_bytes) + " (" + std::to_string(static_cast<int>(fraction * 100)) + "%)";
    if (fraction > 0.01) line += ", ETA " + std::to_string(static_cast<int>(seconds / fraction - seconds)) + "s";
  }
  line += ", " + rate_text(p.bytes, seconds) + "      ";
  return line;
}

}  // namespace

nlohmann::ordered_json backup_status_json(const std::optional<BackupProgress>& p) {
  using json = nlohmann::ordered_json;
  if (!p) return json(nullptr);
  return json{{"id", p->id},
              {"label", p->label},
              {"trigger", p->trigger},
              {"phase", p->phase},
              {"bytes", p->bytes},
              {"estimated_bytes", p->estimated_bytes},
              {"stored_bytes", p->stored_bytes},
              {"chunks", p->chunks},
              {"started_at", format_timestamp(p->started_at_us)},
              {"finished_at", p->finished_at_us ? json(format_timestamp(p->finished_at_us)) : json(nullptr)},
              {"error", p->error.empty() ? json(nullptr) : json(p->error)}};
}

protocol::Message serve_backup_request(BackupTaker& taker, Request& request) {
  using json = nlohmann::ordered_json;
  if (!request.fd) return protocol::error({ErrorKind::invalid, "no output descriptor was passed with the request"});
  CallerConnection caller;
  caller.uid = request.peer_uid;
  caller.dbname = std::string(request.message.field("dbname").value_or(""));
  for (const char* variable : protocol::k_backup_caller_variables)
    if (auto value = request.message.field(variable); value && !value->empty()) caller.environment.emplace_back(variable, *value);
  auto id = taker.start(std::string(request.message.field("label").value_or("")), "walvault backup", caller);
  if (!id) return protocol::error(id.error());
  const int progress_fd = request.progress_fd.get();
  auto result = taker.wait(*id, [&](const BackupProgress& p) {
    if (progress_fd >= 0) write_progress(progress_fd, progress_line(p));
  });
  write_progress(progress_fd, "\n");
  const bool as_json = request.message.field("format") == std::optional<std::string_view>("json");
  std::string document;
  protocol::Message response = protocol::ok();
  if (!result) {
    response.set("exit", "1").set("message", result.error().message);
    document = as_json ? json{{"id", *id}, {"complete", false}, {"error", result.error().message}}.dump(2) + "\n"
                       : "backup " + *id + " FAILED: " + result.error().message + "\n";
  } else {
    const StoredBackup& b = *result;
    const double seconds = static_cast<double>(b.finished_at_us - b.started_at_us) / 1e6;
    response.set("exit", "0");
    if (as_json) {
      document = json{{"id", b.id},
                      {"complete", true},
                      {"label", b.label},
                      {"timeline", b.timeline},
                      {"start_lsn", format_lsn(b.start_lsn)},
                      {"stop_lsn", format_lsn(b.stop_lsn)},
                      {"backup_file", b.backup_file},
                      {"files", b.files},
                      {"plain_bytes", b.plain_bytes},
                      {"stored_bytes", b.stored_bytes},
                      {"chunks", b.chunks.size()},
                      {"seconds", seconds},
                      {"mb_per_s", seconds > 0 ? static_cast<double>(b.plain_bytes) / 1e6 / seconds : 0.0}}
                     .dump(2) +
                 "\n";
    } else {
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, "%.1fx", b.stored_bytes ? static_cast<double>(b.plain_bytes) / static_cast<double>(b.stored_bytes) : 0.0);
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f s", seconds);
      document = "backup " + b.id + " complete: " + std::to_string(b.files) + " files, " + human_bytes(b.plain_bytes) + " (" +
                 human_bytes(b.stored_bytes) + " stored, " + ratio + ") in " + secs + " (" + rate_text(b.plain_bytes, seconds) +
                 "), " + std::to_string(b.chunks.size()) + " chunk(s)\n" + "WAL " + format_lsn(b.start_lsn) + " .. " +
                 format_lsn(b.stop_lsn) + " on timeline " + std::to_string(b.timeline) + " (" + b.backup_file + ")\n";
    }
  }
  return respond_with_document(request, document, std::move(response));
}

}  // namespace walvault
