#pragma once
// The BACKUP verb and the backup's line in STATUS.
#include <optional>

#include <nlohmann/json.hpp>

#include "archiver/backup_taker.hpp"
#include "common/core/request.hpp"

namespace walvault {

// The BACKUP verb (docs/protocol.md): starts a backup (label=L), writes progress lines to the
// request's second descriptor when there is one (a terminal), and answers once the backup is
// complete (exit=0) or failed (exit=1, message=why), with the document in the first descriptor.
protocol::Message serve_backup_request(BackupTaker& taker, Request& request);
// The running or last backup, for STATUS; null when there was none since start-up.
nlohmann::ordered_json backup_status_json(const std::optional<BackupProgress>& progress);

}  // namespace walvault
