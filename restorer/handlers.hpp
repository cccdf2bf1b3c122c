#pragma once
// The requests the restorer side answers (docs/protocol.md): GET, BACKUP-READ and the admin
// verbs (STATUS, LIST, TIMELINES, CHECK, VERIFY, PLAN, REINDEX). The daemon (daemon/) registers
// these next to the archiver's; neither side links the other.
#include "common/core/request.hpp"
#include "restorer/admin.hpp"
#include "restorer/backup_server.hpp"
#include "restorer/fetch.hpp"
#include "restorer/prefetch.hpp"

namespace walvault {

struct RestorerServices {
  Fetch& fetch;
  Admin& admin;
  BackupReads& backup_reads;
  Prefetcher* prefetch = nullptr;  // GET goes through it when set
};

void register_handlers(HandlerRegistry& registry, RestorerServices services);

}  // namespace walvault
