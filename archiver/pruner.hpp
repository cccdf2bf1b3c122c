#pragma once
// Carries out retention: plan_prune() decides from the index, the Pruner deletes in a
// crash-safe order (each object's index row first, then the object, oldest position first):
// a kill -9 at any moment leaves no index entry for a missing object, and start-up repair
// re-indexes an object whose row went but whose deletion did not happen.
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "archiver/retention.hpp"
#include "common/base/error.hpp"
#include "common/core/index.hpp"
#include "common/core/live_setting.hpp"
#include "common/core/repository.hpp"

namespace walvault {

struct PruneReport {
  PruneDecision decision;
  bool dry_run = false;
  std::size_t removed = 0;  // objects actually deleted
  std::uint64_t bytes_removed = 0;
  std::optional<Failure> failure;  // stopped early (the rest stays)
  std::vector<std::string> swept_backups;  // ids of unfinished backups removed
};

class Pruner {
 public:
  // `policy` is read at every run.
  Pruner(Repository& repository, Index& index, LiveSetting<RetentionPolicy> policy = RetentionPolicy{})
      : m_repository(repository), m_index(index), m_policy(std::move(policy)) {}

  RetentionPolicy policy() const { return m_policy(); }
  // The id of the backup being taken now, whose unfinished directory must not be swept.
  void set_running_backup_probe(std::function<std::optional<std::string>()> probe);
  // One prune at a time; `now_us` is injectable for tests.
  PruneReport run(bool dry_run, std::int64_t now_us);

  std::uint64_t objects_removed() const { return m_objects_removed.load(); }
  std::uint64_t bytes_freed() const { return m_bytes_freed.load(); }
  std::int64_t last_run_us() const { return m_last_run_us.load(); }
  std::string last_result() const;

 private:
  Result<void> remove_stored_backup(const StoredBackup& backup, PruneReport& report);
  Result<void> sweep_unfinished_backups(PruneReport& report);

  Repository& m_repository;
  Index& m_index;
  mutable std::mutex m_mutex;  // the probe, last result
  std::mutex m_run_mutex;      // one prune at a time
  LiveSetting<RetentionPolicy> m_policy;
  std::function<std::optional<std::string>()> m_running_backup;
  std::string m_last_result = "never ran";
  std::atomic<std::uint64_t> m_objects_removed{0};
  std::atomic<std::uint64_t> m_bytes_freed{0};
  std::atomic<std::int64_t> m_last_run_us{0};
};

}  // namespace walvault

#include "common/core/document.hpp"

namespace walvault {
// The PRUNE verb's document: what goes and why, what stays and why (docs/cli.md).
AdminOutput render_prune(const PruneReport& report);
}  // namespace walvault
