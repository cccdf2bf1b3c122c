#pragma once
// What walvaultd exports on /metrics (docs/metrics.md lists every name: they are a contract).
// Three sources, so that a scrape never waits on storage or holds up a push or a get:
// - RequestMetrics: counted and timed by the PUSH and GET handlers themselves;
// - StateSnapshot: read from the index and the repositories every few seconds on a thread of
//   its own (collect_state), and rendered as last read;
// - LiveState: the daemon's own counters, read at scrape time (atomics and small locks).
#include <cstdint>
#include <optional>

#include "archiver/look_ahead.hpp"
#include "restorer/prefetch.hpp"
#include <string>
#include <vector>

#include "common/base/protocol.hpp"
#include "common/core/index.hpp"
#include "common/core/metrics.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"

namespace walvault {

struct RequestMetrics {
  metrics::LabeledCounter pushed{{"stored", "duplicate", "refused", "conflict", "error"}};
  metrics::LabeledCounter fetched{{"served", "not_found", "corrupt", "refused", "error"}};
  metrics::Histogram push_seconds{metrics::request_duration_bounds()};
  metrics::Histogram get_seconds{metrics::request_duration_bounds()};
};

// The `result` label of a PUSH or GET from its response (docs/protocol.md statuses).
std::string push_result(const protocol::Message& response);
std::string get_result(const protocol::Message& response);

// Wraps the handler registered for `verb` so that each request is timed and its result
// counted; `verb` must be registered already.
void instrument_handler(HandlerRegistry& registry, const std::string& verb, metrics::Histogram& seconds,
                        metrics::LabeledCounter& results, std::string (*result_of)(const protocol::Message&));

struct RepositoryHealth {
  std::string location;
  bool up = false;
  std::string problem;                // why not up (logged when it changes)
  std::optional<double> disk_usage;   // 0..1, where the backend knows it
};

struct StateSnapshot {
  std::int64_t taken_us = 0;  // 0: not read yet
  bool index_ok = false;
  std::string index_problem;
  std::vector<RepositoryHealth> repositories;
  std::uint64_t stored_bytes = 0;  // WAL and base backups, as stored (index)
  std::optional<IndexedObject> newest_segment;
  std::uint64_t backups_complete = 0;
  std::optional<std::int64_t> last_backup_finished_us;
  std::optional<double> last_backup_seconds;
  std::optional<std::int64_t> pitr_window_start_us;  // the oldest backup's consistent point
  std::uint64_t wal_gaps = 0;                          // segments recovery needs that are missing
  bool ready() const;
};

// Reads the index and asks every repository for its identity object (a stat, or a HEAD on S3):
// an answer that cannot be had is "down". Blocking: call it off the io thread. The gap count
// reads every segment row (the index is locked meanwhile): with `previous`, it is taken from
// there unless `count_gaps`.
StateSnapshot collect_state(Repository& repository, Index& index, const StateSnapshot* previous = nullptr, bool count_gaps = true);

struct LiveState {
  std::int64_t started_us = 0;
  unsigned connections = 0;
  bool index_trusted = true;
  std::int64_t prune_last_run_us = 0;
  std::uint64_t pruned_objects = 0;
  std::uint64_t pruned_bytes = 0;
  bool backup_running = false;
  bool last_backup_failed = false;  // the most recent backup since start failed
  std::optional<std::int64_t> drill_last_success_us;
  std::optional<double> drill_rto_seconds;  // of the last successful drill
  std::optional<double> drill_rpo_seconds;
  std::optional<bool> drill_last_ok;        // the last drill; nullopt before the first
  std::optional<LookAheadStatus> look_ahead;  // nullopt: off (no pgdata, or look-ahead-workers 0)
  PrefetchStatus prefetch;
};

// The whole /metrics document (text exposition format 0.0.4).
std::string render_metrics(const RequestMetrics& requests, const StateSnapshot& state, const LiveState& live);

}  // namespace walvault
