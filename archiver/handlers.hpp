#pragma once
// The requests the archiver side answers (docs/protocol.md): PUSH, BACKUP and PRUNE. The
// daemon (daemon/) registers these next to the restorer's; neither side links the other.
#include <functional>

#include "archiver/backup_taker.hpp"
#include "archiver/ingest.hpp"
#include "archiver/pruner.hpp"
#include "common/core/request.hpp"

namespace walvault {

struct ArchiverServices {
  Ingest& ingest;
  BackupTaker& backups;
  Pruner& pruner;
  // A .backup file was stored: PostgreSQL archives it as a base backup ends (the daemon
  // prunes right after it).
  std::function<void()> after_backup_file;
};

void register_handlers(HandlerRegistry& registry, ArchiverServices services);

}  // namespace walvault
