#pragma once
// The `walvault` admin verbs, served by the daemon: STATUS, LIST, TIMELINES, CHECK, VERIFY,
// PLAN, REINDEX. Each writes one document (text for people, or JSON with format=json) into
// the descriptor the CLI passed, and answers OK with exit=<code> (0 done / all checks hold,
// 1 a check failed or the target is unreachable). Keys of the JSON documents: docs/cli.md.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/core/document.hpp"
#include "common/core/index.hpp"
#include "common/core/indexer.hpp"
#include "common/core/live_setting.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

struct CheckThresholds {
  std::int64_t max_wal_age_us = 3600LL * 1000000;
  std::int64_t max_backup_age_us = 48LL * 3600 * 1000000;
  double max_disk_usage = 0.80;
};

class Admin {
 public:
  // `daemon_state` adds the daemon's own facts (uptime, counters, work in flight) to STATUS.
  // `thresholds` are check's defaults for a request that does not name them, read per request.
  Admin(Repository& repository, Index& index, Indexer& indexer, std::function<nlohmann::ordered_json()> daemon_state,
        LiveSetting<CheckThresholds> thresholds = CheckThresholds{});

  void register_handlers(HandlerRegistry& registry);
  // What retention says: a problem makes check's retention line fail; the window start is
  // where check and verify begin to require continuous WAL (older WAL is pruned on purpose,
  // apart from each kept backup's own start..stop).
  struct RetentionView {
    std::optional<std::string> problem;
    std::optional<std::uint64_t> window_start_lsn;
  };
  void set_retention_probe(std::function<RetentionView()> probe);

  // The verbs themselves (fields as in docs/protocol.md); public for tests.
  AdminOutput status();
  AdminOutput list(const protocol::Message& request);
  AdminOutput timelines();
  AdminOutput check(const protocol::Message& request);
  AdminOutput verify(int progress_fd);
  AdminOutput plan(const protocol::Message& request);
  AdminOutput reindex();

 private:
  protocol::Message serve(Request& request, const std::function<AdminOutput()>& verb);

  Repository& m_repository;
  Index& m_index;
  Indexer& m_indexer;
  std::function<nlohmann::ordered_json()> m_daemon_state;
  std::function<RetentionView()> m_retention_probe;
  RetentionView retention_view();
  // Segments recovery needs that are missing: from the window start (else the oldest backup's
  // start, else the oldest segment) to the newest segment along the path to the newest
  // timeline, and every backup's own start..stop. Also returns where continuity starts.
  std::vector<std::string> required_gaps(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines,
                                         const std::vector<IndexedBackup>& backups, const RetentionView& view,
                                         std::uint64_t& from_lsn);
  mutable std::mutex m_mutex;  // the retention probe
  LiveSetting<CheckThresholds> m_thresholds;
};

}  // namespace walvault
