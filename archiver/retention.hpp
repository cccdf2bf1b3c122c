#pragma once
// Which objects retention may delete, decided from the index alone (a pure function, so every
// rule is table-tested with an injected clock). Rules, in docs/retention.md:
//  - a complete base backup (its WAL from start to stop archived) is kept while it is among
//    the newest `keep_backups` or younger than `backup_days`; the newest one always;
//  - the PITR window: every segment from the start of the newest complete backup on the
//    present timeline's path that is at least `wal_days` old, else the oldest such backup, to the newest segment, along the timelines
//    that lead to the present (the newest timeline), is kept; that backup is kept too;
//  - every kept backup keeps the segments from its start to its stop;
//  - .history files are always kept; segments and .partial files of abandoned timelines are
//    kept while they are inside the window's LSN range;
//  - nothing is deleted when no complete backup is known.
#include <cstdint>
#include <string>
#include <vector>

#include "common/core/index.hpp"

namespace walvault {

struct RetentionPolicy {
  unsigned keep_backups = 1;
  std::int64_t backup_days_us = 30LL * 86400 * 1000000;
  std::int64_t wal_days_us = 7LL * 86400 * 1000000;
};

struct RetentionItem {
  std::string name;
  std::string reason;  // why it is kept, or why it goes
};

struct PruneDecision {
  bool allowed = false;         // false: nothing may be deleted (see `refusal`)
  std::string refusal;
  std::vector<RetentionItem> remove;  // in deletion order: oldest position first
  std::vector<RetentionItem> keep;
  std::string window_start;     // first segment of the PITR window, empty if none
  std::uint64_t window_start_lsn = 0;  // the start LSN of the backup that opens the window
  std::uint64_t bytes_freed = 0;
};

PruneDecision plan_prune(const RetentionPolicy& policy, std::int64_t now_us, const std::vector<IndexedObject>& objects,
                         const std::vector<IndexedTimeline>& timelines, const std::vector<IndexedBackup>& backups);

}  // namespace walvault
