#pragma once
// PostgreSQL's backup history file (<segment>.<offset>.backup), written at the end of a base
// backup:  START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
//          STOP WAL LOCATION: ... / CHECKPOINT LOCATION: ... / START TIME: 2026-11-24 09:30:01 UTC
//          LABEL: ... / START TIMELINE: 1 / STOP TIME: ... / STOP TIMELINE: 1
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/error.hpp"

namespace walvault {

struct BackupHistory {
  std::uint64_t start_lsn = 0;
  std::uint64_t stop_lsn = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::uint32_t start_timeline = 0;
  std::uint32_t stop_timeline = 0;
  std::string label;
  std::optional<std::int64_t> start_us;  // unset when the zone abbreviation is not UTC/GMT/numeric
  std::optional<std::int64_t> stop_us;
};

// ErrorKind::refused naming the file and the missing or bad line.
Result<BackupHistory> parse_backup_history(std::string_view content, std::string_view file_name);

}  // namespace walvault
