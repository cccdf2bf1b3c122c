#pragma once
// The `walvault` admin verbs, served by the daemon: STATUS, LIST, TIMELINES, CHECK, VERIFY,
// PLAN, REINDEX, SYNC. Each writes one document (text for people, or JSON with format=json) into
// the descriptor the CLI passed, and answers OK with exit=<code> (0 done / all checks hold,
// 1 a check failed or the target is unreachable). Keys of the JSON documents: docs/cli.md.
// Admin registers them and gives each what it reads; the verbs live in restorer/verbs/.
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
#include "restorer/verbs/verb.hpp"

namespace walvault {

class Admin {
 public:
  // `daemon_state` adds the daemon's own facts (uptime, counters, work in flight) to STATUS.
  // `thresholds` are check's defaults for a request that does not name them, read per request.
  Admin(Repository& repository, Index& index, Indexer& indexer, std::function<nlohmann::ordered_json()> daemon_state,
        LiveSetting<CheckThresholds> thresholds = CheckThresholds{});

  void register_handlers(HandlerRegistry& registry);
  using RetentionView = walvault::RetentionView;
  void set_retention_probe(std::function<RetentionView()> probe);

  // The verbs themselves (fields as in docs/protocol.md); public for tests.
  AdminOutput status();
  AdminOutput list(const protocol::Message& request);
  AdminOutput timelines();
  AdminOutput check(const protocol::Message& request);
  AdminOutput verify(int progress_fd);
  AdminOutput plan(const protocol::Message& request);
  AdminOutput reindex();
  AdminOutput sync(int progress_fd);
  AdminOutput rekey(int progress_fd);

 private:
  protocol::Message serve(Request& request, const std::function<AdminOutput()>& verb);
  VerbSources sources() { return VerbSources{m_repository, m_index}; }
  // nullopt without a probe (tests, a daemon without retention).
  std::optional<RetentionView> retention_view();

  Repository& m_repository;
  Index& m_index;
  Indexer& m_indexer;
  std::function<nlohmann::ordered_json()> m_daemon_state;
  LiveSetting<CheckThresholds> m_thresholds;
  mutable std::mutex m_mutex;  // the retention probe
  std::function<RetentionView()> m_retention_probe;
};

}  // namespace walvault
