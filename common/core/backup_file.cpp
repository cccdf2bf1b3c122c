#include "common/core/backup_file.hpp"

#include <charconv>

#include "common/base/wal_name.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

Result<BackupHistory> parse_backup_history(std::string_view content, std::string_view file_name) {
  BackupHistory backup;
  bool have_start = false, have_stop = false;
  auto bad = [&](const std::string& why) {
    return fail(ErrorKind::refused, "backup history file '" + std::string(file_name) + "' refused: " + why);
  };
  while (!content.empty()) {
    auto newline = content.find('\n');
    std::string_view line = content.substr(0, newline);
    content.remove_prefix(newline == std::string_view::npos ? content.size() : newline + 1);
    auto colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 2);
    auto first_word = value.substr(0, value.find(' '));
    auto timeline = [&](std::uint32_t& out) -> bool {
      return std::from_chars(value.data(), value.data() + value.size(), out).ec == std::errc();
    };
    if (key == "START WAL LOCATION") {
      auto lsn = parse_lsn(first_word);
      if (!lsn) return bad("bad START WAL LOCATION '" + std::string(value) + "'");
      backup.start_lsn = *lsn;
      have_start = true;
    } else if (key == "STOP WAL LOCATION") {
      auto lsn = parse_lsn(first_word);
      if (!lsn) return bad("bad STOP WAL LOCATION '" + std::string(value) + "'");
      backup.stop_lsn = *lsn;
      have_stop = true;
    } else if (key == "CHECKPOINT LOCATION") {
      if (auto lsn = parse_lsn(first_word)) backup.checkpoint_lsn = *lsn;
    } else if (key == "START TIME") {
      backup.start_us = parse_timestamp(value);
    } else if (key == "STOP TIME") {
      backup.stop_us = parse_timestamp(value);
    } else if (key == "LABEL") {
      backup.label = std::string(value);
    } else if (key == "START TIMELINE") {
      if (!timeline(backup.start_timeline)) return bad("bad START TIMELINE");
    } else if (key == "STOP TIMELINE") {
      if (!timeline(backup.stop_timeline)) return bad("bad STOP TIMELINE");
    }
  }
  if (!have_start) return bad("no 'START WAL LOCATION' line");
  if (!have_stop) return bad("no 'STOP WAL LOCATION' line");
  if (backup.stop_lsn < backup.start_lsn) return bad("stop location is before the start location");
  return backup;
}

}  // namespace walvault
