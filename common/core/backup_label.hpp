#pragma once
// PostgreSQL's backup_label, the file pg_basebackup puts into a base backup's tar stream:
//   START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
//   CHECKPOINT LOCATION: 0/2000060
//   BACKUP METHOD: streamed
//   BACKUP FROM: primary
//   START TIME: 2026-11-24 09:30:01 UTC
//   LABEL: walvault 20261124T093001Z
//   START TIMELINE: 1
// Its sibling, the .backup history file PostgreSQL archives at the end, is backup_file.hpp.
#include <cstdint>
#include <string_view>

#include "common/base/error.hpp"

namespace walvault {

// The lines of backup_label a backup needs: where it starts and on which timeline.
struct BackupLabel {
  std::uint64_t start_lsn = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::uint32_t timeline = 0;
  bool from_standby = false;
};

// ErrorKind::refused when START WAL LOCATION or START TIMELINE is missing or unreadable.
Result<BackupLabel> parse_backup_label(std::string_view text);

}  // namespace walvault
