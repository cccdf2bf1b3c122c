#include <utility>  // see server.cpp

#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <iostream>
#include <thread>
#include <tuple>

#include "archiver/backup_verb.hpp"
#include "archiver/handlers.hpp"
#include "archiver/ingest.hpp"
#include "archiver/look_ahead.hpp"
#include "archiver/pruner.hpp"
#include "daemon/drill_record.hpp"
#include "daemon/http_server.hpp"
#include "daemon/metrics.hpp"
#include "daemon/notifier.hpp"
#include "daemon/server.hpp"
#include "common/base/path_access.hpp"
#include "common/base/process.hpp"
#include "common/core/config.hpp"
#include "common/core/cron.hpp"
#include "common/core/index.hpp"
#include "common/core/indexer.hpp"
#include "common/core/time_format.hpp"
#include "restorer/admin.hpp"
#include "common/core/logging.hpp"
#include "common/core/pgdata.hpp"
#include "common/core/repository.hpp"
#include "restorer/backup_server.hpp"
#include "restorer/fetch.hpp"
#include "restorer/handlers.hpp"
#include "restorer/prefetch.hpp"

namespace walvault {

namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failure = 1;

unsigned worker_count(const DaemonConfig& config) {
  if (config.workers > 0) return config.workers;
  return std::max(1u, std::thread::hardware_concurrency());
}

ServerPolicy policy_of(const DaemonConfig& config) { return ServerPolicy{config.allow_uids, config.request_timeout}; }

CheckThresholds thresholds_of(const DaemonConfig& config) {
  return CheckThresholds{config.check_max_wal_age_us, config.check_max_backup_age_us, config.check_max_disk_usage};
}

RetentionPolicy retention_of(const DaemonConfig& config) {
  return RetentionPolicy{config.retention_backups, config.retention_backup_days_us, config.retention_wal_days_us};
}

BackupSettings backup_settings_of(const DaemonConfig& config) {
  BackupSettings settings;
  settings.conninfo = config.pg_conninfo;
  settings.pgdata = config.pgdata;
  settings.bindir = config.pg_bindir;
  settings.checkpoint = config.backup_checkpoint;
  settings.chunk_size = config.backup_chunk_size;
  settings.compress = config.compress;
  // One large stream: let zstd use as many threads as PUSH has workers (the same process
  // count pgBackRest's process-max would get).
  settings.compress.threads = static_cast<int>(worker_count(config));
  return settings;
}

// Every uid allow-uid names must be able to reach the socket through the filesystem as well
// (SO_PEERCRED is the gate, but a peer that cannot even connect only sees "Permission
// denied"): search permission on each directory above it, write permission on the socket.
// The first one that cannot, as one line naming the uid, the path and what is missing.
std::optional<std::string> unreachable_allowed_user(const DaemonConfig& config) {
  for (uid_t uid : config.allow_uids) {
    if (uid == ::geteuid()) continue;
    const UserIdentity who = identity_of_uid(uid);
    if (who.name.empty()) {
      // A numeric uid of another container (a Kubernetes sidecar): its groups (fsGroup) are not
      // known here, so its access cannot be judged; it is not a reason to refuse to start.
      spdlog::warn("allow-uid {} has no passwd entry here, so its access to socket '{}' cannot be checked "
                   "(in a pod, give both containers the socket's group through fsGroup or set socket-group)",
                   uid, config.socket);
      continue;
    }
    auto problem = socket_access_problem(who, config.socket);
    if (problem) {
      // In a pod, fsGroup adds a group to every container's processes, not to /etc/group: if a
      // group walvaultd has that the user database does not give it would let this user in,
      // that is the likely setup. Warn only.
      const UserIdentity listed = identity_of_uid(::geteuid());
      UserIdentity with_injected = who;
      for (gid_t g : identity_of_process().groups)
        if (std::find(listed.groups.begin(), listed.groups.end(), g) == listed.groups.end()) with_injected.groups.push_back(g);
      if (with_injected.groups.size() > who.groups.size() && !socket_access_problem(with_injected, config.socket)) {
        spdlog::warn("allow-uid {} can reach socket '{}' only if it shares walvaultd's supplementary groups (as with a "
                     "pod's fsGroup, which the user database does not show): {}", describe_user(who), config.socket, *problem);
        continue;
      }
    }
    if (problem)
      return "allow-uid " + describe_user(who) + " cannot connect to socket '" + config.socket + "': " + *problem +
             "; set socket-group to a group of that user (or socket-mode), or open the directory to it";
  }
  return std::nullopt;
}

}  // namespace

class Daemon::Impl {
 public:
  Impl(DaemonCommandLine command_line, DaemonConfig config, std::unique_ptr<Repository> repository,
       std::unique_ptr<Index> index, GetEnv getenv)
      : m_command_line(std::move(command_line)), m_getenv(std::move(getenv)), m_config(std::move(config)),
        m_snapshot(std::make_shared<const DaemonConfig>(m_config)), m_repository(std::move(repository)),
        m_index(std::move(index)), m_indexer(*m_repository, *m_index),
        m_ingest(*m_repository, LiveSetting<CompressSpec>([this] { return this->config()->compress; }), &m_indexer),
        m_fetch(*m_repository, *m_index),
        m_admin(*m_repository, *m_index, m_indexer, [this] { return daemon_state(); },
                LiveSetting<CheckThresholds>([this] { return thresholds_of(*this->config()); })),
        m_server(m_io, m_handlers,
                 ServerSettings{m_config.socket, m_config.socket_mode, socket_group_for(m_config, ::geteuid()), worker_count(m_config),
                                m_config.max_connections},
                 LiveSetting<ServerPolicy>([this] { return policy_of(*this->config()); })),
        m_signals(m_io), m_started_us(now_unix_us()) {
    m_ingest.set_rate_limiter(&m_push_limit);
    m_fetch.set_rate_limiter(&m_get_limit);
    m_backup_reads.set_rate_limiter(&m_get_limit);
    m_backups.set_rate_limiter(&m_backup_limit);
    register_handlers(m_handlers, ArchiverServices{m_ingest, m_backups, m_pruner, [this] { schedule_prune_now(); }});
    register_handlers(m_handlers, RestorerServices{m_fetch, m_admin, m_backup_reads, &m_prefetch});
    m_handlers.register_handler("PING", [](Request&) { return protocol::ok().set("version", WALVAULT_VERSION); });
    m_handlers.register_handler(
        "DRILL-RESULT",
        [this](Request& r) {
          auto recorded = m_drills.record(r.message);
          if (!recorded) return protocol::error(recorded.error());
          const bool ok = r.message.field("ok") == std::optional<std::string_view>("1");
          nlohmann::ordered_json event{{"event", ok ? "drill_passed" : "drill_failed"}};
          const nlohmann::ordered_json drill = m_drills.document()["last"];
          for (const char* key : {"backup", "started_at", "finished_at", "rto_seconds", "rpo_seconds", "reason"}) event[key] = drill[key];
          m_notifier.notify(std::move(event));
          return protocol::ok();
        },
        Lane::admin);
    instrument_handler(m_handlers, "PUSH", m_request_metrics.push_seconds, m_request_metrics.pushed, push_result);
    instrument_handler(m_handlers, "GET", m_request_metrics.get_seconds, m_request_metrics.fetched, get_result);
    m_backups.set_on_finished([this] {
      schedule_prune_now();
      notify_backup_finished();
    });
    m_pruner.set_running_backup_probe([this]() -> std::optional<std::string> {
      auto p = m_backups.progress();
      if (p && !p->finished()) return p->id;
      return std::nullopt;
    });
    m_admin.set_retention_probe([this]() {
      Admin::RetentionView view;
      PruneReport report = m_pruner.run(/*dry_run=*/true, now_unix_us());
      if (report.failure) view.problem = report.failure->message;
      else if (!report.decision.allowed) view.problem = report.decision.refusal;
      else view.window_start_lsn = report.decision.window_start_lsn;
      return view;
    });
  }

  int run() {
    if (auto r = m_server.listen(); !r) {
      spdlog::critical("{}", r.error().message);
      return k_exit_failure;
    }
    const auto config = this->config();
    if (!config->metrics_listen.empty()) {
      m_http = std::make_unique<HttpServer>(m_io, http_routes());
      if (auto r = m_http->listen(config->metrics_listen); !r) {
        spdlog::critical("{}", r.error().message);
        return k_exit_failure;
      }
    }
    if (auto problem = unreachable_allowed_user(*config)) {
      spdlog::critical("{}", *problem);
      return k_exit_failure;
    }
    warn_about_slow_limits(*config, "");
    if (!config->pgdata.empty()) {
      // A pgdata of another cluster is a configuration error; one not readable yet (the
      // server's volume not mounted) is checked again at each backup.
      if (auto r = check_pgdata_cluster(config->pgdata, *m_repository); !r) {
        if (r.error().kind == ErrorKind::refused) {
          spdlog::critical("{}", r.error().message);
          return k_exit_failure;
        }
        spdlog::warn("pgdata: {}", r.error().message);
      }
    }
    // The lock is ours, so no other walvaultd writes here: temp files are a crash's leftovers.
    if (auto swept = m_repository->objects().remove_abandoned_writes(); !swept)
      spdlog::warn("unable to remove writes a crash left behind: {}", swept.error().message);
    else if (swept->objects)
      spdlog::warn("removed {} unfinished write(s) a crash left behind ({} bytes)", swept->objects, swept->bytes);
    // The lock is ours: bring the index up to the repository (a crash between storing an
    // object and indexing it leaves the index behind) before answering "not there".
    auto repaired = m_indexer.repair();
    if (!repaired) {
      spdlog::critical("unable to bring the index '{}' up to the repository: {}", m_index->path(), repaired.error().message);
      return k_exit_failure;
    }
    if (repaired->added || repaired->removed || repaired->unreadable || repaired->lost_count)
      spdlog::warn("index repaired: {} object(s) added, {} removed, {} unreadable, {} LOST", repaired->added,
                   repaired->removed, repaired->unreadable, repaired->lost_count);
    // Both read and write the index: only once it matches the repository.
    if (auto r = m_prefetch.start(); !r) spdlog::error("prefetch off: {}", r.error().message);
    start_look_ahead(*config);
    m_server.start();
    m_serving = true;
    if (m_http) m_http->start();
    tick();
    if (m_handle_signals) wait_for_signal();
    arm_prune_timer();
    arm_backup_schedule();
    arm_drill_schedule();
    spdlog::info("walvaultd {} serving '{}' on socket '{}' ({} workers, compress {})", WALVAULT_VERSION,
                 m_repository->describe(), config->socket, worker_count(*config), to_string(config->compress));
    m_io.run();
    if (m_look_ahead) m_look_ahead->stop();  // a push it is making finishes (it is durable or not there)
    m_prefetch.stop();
    m_background.join();
    m_state_pool.join();
    m_drill_pool.join();
    const auto& c = m_ingest.counters();
    spdlog::info("walvaultd stopped: {} stored, {} duplicates, {} refused, {} conflicts, {} failed, {} served", c.stored.load(),
                 c.duplicates.load(), c.refused.load(), c.conflicts.load(), c.failed.load(), m_fetch.served());
    return m_forced ? k_exit_failure : k_exit_ok;
  }

 private:
  // With pgdata: look-ahead, unless look-ahead-workers is 0. It watches the pgdata set at
  // start-up (a reload that changes pgdata says so).
  void start_look_ahead(const DaemonConfig& config) {
    if (config.pgdata.empty()) return;
    if (config.look_ahead_workers == 0) {
      spdlog::info("look-ahead off (look-ahead-workers = 0)");
      return;
    }
    // Before serving: PostgreSQL's pushes consult the records only when there can be any.
    m_ingest.set_ahead_registry(&m_ahead);
    m_look_ahead = std::make_unique<LookAhead>(m_ingest, *m_index, m_ahead, config.pgdata, config.look_ahead_workers);
    m_look_ahead->start();
  }

  void wait_for_signal() {
    m_signals.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        (void)reload();  // a refusal is logged; the running configuration stays
        wait_for_signal();
        return;
      }
      begin_shutdown(signal == SIGTERM ? "received SIGTERM" : "received SIGINT");
    });
  }

 public:
  // SIGHUP: the whole configuration is resolved and validated again; only then is it swapped
  // in, as one snapshot, which every part reads through its LiveSetting from then on. Options the table
  // marks restart-only keep their running value, and a change to one is said, not ignored.
  Result<void> reload() {
    auto resolved = resolve_config(m_command_line, m_getenv);
    if (!resolved) {
      spdlog::error("SIGHUP: configuration not reloaded: {}", resolved.error().message);
      return std::unexpected(resolved.error());
    }
    const auto running = config();
    const std::vector<std::string> restart_only = restart_only_changes(*running, *resolved);
    auto next = std::make_shared<const DaemonConfig>(keep_restart_only(*running, std::move(*resolved)));
    if (auto r = logging::configure(next->log_level, next->log_format); !r) {
      spdlog::error("SIGHUP: configuration not reloaded: {}", r.error().message);
      return r;
    }
    {
      std::lock_guard lock(m_snapshot_mutex);
      m_snapshot = next;
    }
    arm_prune_timer();
    // A new schedule plans from now, not from the old schedule's next run.
    if (next->backup_schedule != running->backup_schedule) {
      m_schedule_planned_us = 0;
      arm_backup_schedule();
    }
    if (next->drill_schedule != running->drill_schedule) {
      m_drill_planned_us = 0;
      arm_drill_schedule();
    }
    if (auto problem = unreachable_allowed_user(*next)) spdlog::warn("SIGHUP: {}", *problem);
    warn_about_slow_limits(*next, "SIGHUP: ");
    if (m_look_ahead && next->pgdata != running->pgdata)
      spdlog::warn("SIGHUP: pgdata changed; look-ahead keeps watching '{}' until walvaultd restarts", running->pgdata);
    if (!restart_only.empty()) {
      std::string names;
      for (const auto& name : restart_only) names += (names.empty() ? "" : ", ") + name;
      spdlog::warn("SIGHUP: {} changed, which takes effect only after a restart; still running with the old value(s)", names);
    }
    spdlog::info("SIGHUP: configuration reloaded (compress {}, {} allowed uid(s), log-level {})", to_string(next->compress),
                 next->allow_uids.size(), next->log_level);
    return {};
  }

  // A limit at which one segment takes longer than an archive-push or archive-get waits by
  // default (300 s) makes every push or get of it fail, forever: said at start and on SIGHUP.
  // Look-ahead's workers share the push limit with PostgreSQL's own push.
  void warn_about_slow_limits(const DaemonConfig& c, const std::string& when) const {
    const auto segment = m_repository->segment_size();
    if (!segment) return;
    const double sharing = 1.0 + (c.pgdata.empty() ? 0 : c.look_ahead_workers);
    for (const auto& [name, rate, share] : {std::tuple{"push-rate-limit", c.push_rate_limit, sharing},
                                            std::tuple{"get-rate-limit", c.get_rate_limit, 1.0}}) {
      if (rate == 0) continue;
      const double seconds = static_cast<double>(*segment) * share / static_cast<double>(rate);
      if (seconds > 120)
        spdlog::warn("{}{} {} bytes/s: a {} MiB segment may take {:.0f} s, close to or past the 300 s archive-push and "
                     "archive-get wait for an answer (--timeout): raise the limit",
                     when, name, rate, *segment >> 20, seconds);
    }
  }

  std::shared_ptr<const DaemonConfig> config() const {
    std::lock_guard lock(m_snapshot_mutex);
    return m_snapshot;
  }

  // SIGTERM: stop accepting, cancel what can be cancelled, and let the open connections finish
  // within shutdown-timeout; after it, stop anyway.
  void begin_shutdown(const char* why) {
    if (m_stopping) return;
    m_stopping = true;
    for (RateLimiter* limiter : {&m_push_limit, &m_get_limit, &m_backup_limit}) limiter->release_all();
    spdlog::info("{}: finishing {} open connection(s) (shutdown-timeout {} s)", why, m_server.active_connections(),
                 config()->shutdown_timeout.count());
    m_prune_timer.cancel();
    m_schedule_timer.cancel();
    m_drill_timer.cancel();
    if (const pid_t drill = m_drill_pid.load(); drill > 0) ::kill(drill, SIGTERM);  // its PostgreSQL is stopped by its own cleanup
    m_tick_timer.cancel();
    m_serving = false;  // /readyz says so while the drain runs
    if (m_http) m_http->stop();
    m_backups.cancel();  // a running backup fails cleanly instead of holding up the stop
    if (m_look_ahead) m_look_ahead->request_stop();  // joined once the loop ends
    m_prefetch.request_stop();                       // a GET waiting for a fetch goes to the repository
    m_shutdown_timer.expires_after(config()->shutdown_timeout);
    m_shutdown_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      spdlog::error("shutdown-timeout: {} connection(s) still open after {} s (a client that does not read, a stuck restore "
                    "stream); stopping without them: nothing they were doing had been acknowledged",
                    m_server.active_connections(), config()->shutdown_timeout.count());
      m_forced = true;
      m_signals.cancel();
      m_io.stop();
    });
    m_server.drain([this] {
      m_shutdown_timer.cancel();
      m_signals.cancel();
      m_io.stop();
    });
  }

  void handle_signals() {
    m_signals.add(SIGTERM);
    m_signals.add(SIGINT);
    m_signals.add(SIGHUP);
    m_handle_signals = true;
  }

  bool forced() const { return m_forced.load(); }
  boost::asio::io_context& io() { return m_io; }

 private:
  // Prunes on the background thread, never on the io thread or a push worker.
  void schedule_prune_now() {
    boost::asio::post(m_background, [this] {
      PruneReport report = m_pruner.run(/*dry_run=*/false, now_unix_us());
      if (report.failure) m_notifier.notify({{"event", "prune_failed"}, {"error", report.failure->message}});
    });
  }

  void arm_prune_timer() {
    m_prune_timer.cancel();
    const auto interval = config()->prune_interval;
    if (interval.count() == 0 || m_stopping) return;
    m_prune_timer.expires_after(interval);
    m_prune_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      schedule_prune_now();
      arm_prune_timer();
    });
  }


  // Arms `timer` for the next time `schedule_text` (cron, UTC; the value of `option`) fires,
  // from the later of now and the run already planned: a steady-clock timer can fire a little
  // before the wall clock reaches the minute (NTP slew), which must not plan that minute again.
  // `fire` runs on the io thread then; it re-arms.
  void arm_cron(boost::asio::steady_timer& timer, std::int64_t& planned_us, const char* option, const std::string& schedule_text,
                const char* what, std::function<void()> fire) {
    timer.cancel();
    if (schedule_text.empty() || m_stopping) return;
    auto schedule = parse_cron(schedule_text);
    if (!schedule) {
      spdlog::error("{}", schedule.error().message);
      return;
    }
    const std::int64_t now = now_unix_us();
    auto next = next_cron_time(*schedule, std::max(now, planned_us));
    if (!next) {
      spdlog::warn("{} '{}' never fires", option, schedule_text);
      return;
    }
    spdlog::info("next scheduled {} at {} ({} '{}')", what, format_timestamp(*next), option, schedule_text);
    planned_us = *next;
    timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, *next - now)));
    timer.async_wait([fire = std::move(fire)](const boost::system::error_code& ec) {
      if (!ec) fire();
    });
  }

  // backup-schedule: a backup already running at that moment makes this run a no-op (logged),
  // never a second backup.
  void arm_backup_schedule() {
    arm_cron(m_schedule_timer, m_schedule_planned_us, "backup-schedule", config()->backup_schedule, "backup", [this] {
      // Off the io thread: starting a backup lists the repository.
      boost::asio::post(m_background, [this] {
        auto id = m_backups.start("", "schedule");
        if (id) spdlog::info("scheduled backup {} started", *id);
        else spdlog::error("scheduled backup not started: {}", id.error().message);
      });
      arm_backup_schedule();
    });
  }

  // Every k_state_interval: with metrics-listen, the index and repository state is read on a
  // thread of its own (one read at a time), so a scrape or a probe only renders the last one;
  // and the push counters are looked at for the archive_failing notification.
  static constexpr std::chrono::seconds k_state_interval{5};

  void tick() {
    if (m_stopping) return;
    if (m_http) refresh_state();
    watch_archiving();
    m_prefetch.expire();
    m_tick_timer.expires_after(k_state_interval);
    m_tick_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  }

  void watch_archiving() {
    const auto counts = m_request_metrics.pushed.snapshot();
    auto count = [&](const char* result) { auto it = counts.find(result); return it == counts.end() ? 0 : it->second; };
    const std::uint64_t failed = count("error") + count("refused") + count("conflict");
    const std::uint64_t succeeded = count("stored") + count("duplicate") + count("ahead");
    const auto change = m_failure_watch.update(failed, succeeded, now_unix_us(), config()->notify_archive_failing_after);
    if (change == ArchiveFailureWatch::Change::failing)
      m_notifier.notify({{"event", "archive_failing"}, {"failing_since", format_timestamp(m_failure_watch.failing_since_us())},
                         {"failed_pushes_since_start", failed}, {"message", "archive-push has failed for over " +
                             format_duration(std::chrono::microseconds(config()->notify_archive_failing_after).count()) +
                             " with no success; walvaultd's log names each file and cause"}});
    else if (change == ArchiveFailureWatch::Change::recovered)
      m_notifier.notify({{"event", "archive_recovered"}, {"message", "archive-push succeeds again"}});
  }

  void notify_backup_finished() {
    auto progress = m_backups.progress();
    if (!progress || !progress->finished()) return;
    nlohmann::ordered_json event{{"event", progress->phase == "complete" ? "backup_finished" : "backup_failed"},
                                 {"id", progress->id}, {"label", progress->label}, {"trigger", progress->trigger},
                                 {"duration_seconds", static_cast<double>(progress->finished_at_us - progress->started_at_us) / 1e6},
                                 {"bytes", progress->bytes}, {"stored_bytes", progress->stored_bytes}};
    if (progress->phase != "complete") event["error"] = progress->error;
    m_notifier.notify(std::move(event));
  }

  void refresh_state() {
    if (!m_collecting.exchange(true)) {
      // The gap count reads every segment row: once a minute is enough for an alert with a
      // 15-minute 'for', and keeps the index's lock free for pushes the rest of the time.
      const bool count_gaps = m_ticks++ % 12 == 0;
      boost::asio::post(m_state_pool, [this, count_gaps] {
        auto next = std::make_shared<const StateSnapshot>(collect_state(*m_repository, *m_index, state().get(), count_gaps));
        std::shared_ptr<const StateSnapshot> previous;
        {
          std::lock_guard lock(m_state_mutex);
          previous = std::exchange(m_state, next);
        }
        log_state_changes(previous.get(), *next);
        m_collecting = false;
      });
    }
  }

  static void log_state_changes(const StateSnapshot* before, const StateSnapshot& now) {
    for (std::size_t i = 0; i < now.repositories.size(); ++i) {
      const RepositoryHealth& r = now.repositories[i];
      const bool was_up = !before || i >= before->repositories.size() || before->repositories[i].up;
      if (was_up && !r.up) spdlog::error("repository '{}' is not reachable: {}", r.location, r.problem);
      else if (!was_up && r.up) spdlog::info("repository '{}' is reachable again", r.location);
    }
    if ((!before || before->index_ok) && !now.index_ok) spdlog::error("the index cannot be read: {}", now.index_problem);
  }

  std::shared_ptr<const StateSnapshot> state() const {
    std::lock_guard lock(m_state_mutex);
    return m_state;
  }

  LiveState live_state() const {
    LiveState live;
    live.started_us = m_started_us;
    live.connections = m_server.active_connections();
    live.index_trusted = m_index->trusted();
    live.prune_last_run_us = m_pruner.last_run_us();
    live.pruned_objects = m_pruner.objects_removed();
    live.pruned_bytes = m_pruner.bytes_freed();
    const DrillSummary drill = m_drills.summary();
    live.drill_last_success_us = drill.last_success_us;
    live.drill_rto_seconds = drill.last_success_rto_seconds;
    live.drill_rpo_seconds = drill.last_success_rpo_seconds;
    live.drill_last_ok = drill.last_ok;
    if (m_look_ahead) live.look_ahead = m_look_ahead->status();
    live.prefetch = m_prefetch.status();
    if (auto progress = m_backups.progress()) {
      live.backup_running = !progress->finished();
      live.last_backup_failed = progress->phase == "failed";
    }
    return live;
  }

  HttpServer::Routes http_routes() {
    HttpServer::Routes routes;
    routes["/metrics"] = [this] {
      auto snapshot = state();
      return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8",
                       render_metrics(m_request_metrics, snapshot ? *snapshot : StateSnapshot{}, live_state())};
    };
    // Liveness: this answer comes from the event loop itself; storage trouble is readiness's.
    routes["/healthz"] = [this] {
      return m_stopping ? HttpReply{503, "text/plain; charset=utf-8", "stopping\n"} : HttpReply{200, "text/plain; charset=utf-8", "ok\n"};
    };
    routes["/readyz"] = [this] {
      auto snapshot = state();
      std::string why;
      if (!m_serving) why = "the socket is not serving (starting or stopping)";
      else if (!snapshot) why = "the repository has not been checked yet";
      else if (!snapshot->index_ok) why = "the index cannot be read: " + snapshot->index_problem;
      else
        for (const auto& r : snapshot->repositories)
          if (!r.up) why += (why.empty() ? "" : "; ") + std::string("repository '") + r.location + "' is not reachable: " + r.problem;
      if (why.empty() && now_unix_us() - snapshot->taken_us > 6 * std::chrono::microseconds(k_state_interval).count())
        why = "the repository state is " + std::to_string((now_unix_us() - snapshot->taken_us) / 1000000) + " s old (a check is hanging)";
      return why.empty() ? HttpReply{200, "text/plain; charset=utf-8", "ready\n"}
                         : HttpReply{503, "text/plain; charset=utf-8", "not ready: " + why + "\n"};
    };
    return routes;
  }

  // drill-schedule: runs `walvault drill --json` (the CLI next to walvaultd) on its own thread;
  // the CLI records its result (DRILL-RESULT) like a drill run by hand. One at a time.
  void arm_drill_schedule() {
    arm_cron(m_drill_timer, m_drill_planned_us, "drill-schedule", config()->drill_schedule, "drill", [this] {
      if (m_drill_pid.load() != 0) spdlog::warn("scheduled drill skipped: the previous one is still running");
      else boost::asio::post(m_drill_pool, [this] { run_scheduled_drill(); });
      arm_drill_schedule();
    });
  }

  void run_scheduled_drill() {
    const std::string dir = executable_directory();
    const std::string cli = dir.empty() ? "walvault" : dir + "/walvault";
    UniqueFd devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    m_drill_pid = -1;
    auto pid = spawn_process({cli, "--socket", m_config.socket, "--json", "drill"}, devnull.get(), devnull.get());
    if (!pid) {
      m_drill_pid = 0;
      spdlog::error("scheduled drill not started: {}", pid.error().message);
      return;
    }
    m_drill_pid = *pid;
    spdlog::info("scheduled drill started ({} drill, pid {})", cli, *pid);
    const int status = wait_process(*pid);
    m_drill_pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) spdlog::info("scheduled drill passed");
    else spdlog::error("scheduled drill did not pass (exit {}): 'walvault status' shows its reason", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }

  nlohmann::ordered_json look_ahead_json() const {
    if (!m_look_ahead) {
      const auto c = config();
      return {{"enabled", false},
              {"reason", c->pgdata.empty() ? "pgdata is not set" : "look-ahead-workers is 0"}};
    }
    const LookAheadStatus s = m_look_ahead->status();
    return {{"enabled", true},
            {"workers", config()->look_ahead_workers},
            {"problem", s.problem.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.problem)},
            {"ready", s.ready},
            {"queued", s.queued},
            {"stored_ahead", s.stored_ahead},
            {"oldest_ready_age_seconds", s.oldest_ready_us ? nlohmann::ordered_json(std::max<std::int64_t>(0, now_unix_us() - *s.oldest_ready_us) / 1000000)
                                                           : nlohmann::ordered_json(nullptr)},
            {"pushed", s.pushed},
            {"verified", s.verified},
            {"failed", s.failed}};
  }

  nlohmann::ordered_json prefetch_json() const {
    const PrefetchStatus s = m_prefetch.status();
    return {{"enabled", s.enabled},
            {"budget_bytes", s.budget_bytes},
            {"directory", s.directory},
            {"hits", s.hits},
            {"handed_over", s.handed_over},
            {"misses", s.misses},
            {"fetched", s.fetched},
            {"discarded", s.discarded},
            {"spool_bytes", s.spool_bytes},
            {"spool_files", s.spool_files},
            {"in_flight", s.in_flight},
            {"pinned_timeline", s.pinned_timeline ? nlohmann::ordered_json(*s.pinned_timeline) : nlohmann::ordered_json(nullptr)}};
  }

  static nlohmann::ordered_json rate_limit_json(const RateLimiter& limiter) {
    const RateLimiter::Stats s = limiter.stats();
    return {{"bytes_per_second", s.bytes_per_second},
            {"bytes", s.bytes},
            {"waited_seconds", s.waited_seconds},
            {"waiting", s.waiting}};
  }

  nlohmann::ordered_json daemon_state() {
    const auto& c = m_ingest.counters();
    const std::string schedule_text = config()->backup_schedule;
    return nlohmann::ordered_json{
        {"uptime_seconds", (now_unix_us() - m_started_us) / 1000000},
        {"connections_in_flight", m_server.active_connections() > 0 ? m_server.active_connections() - 1 : 0},
        {"index_trusted", m_index->trusted()},
        {"backup", backup_status_json(m_backups.progress())},
        {"backup_schedule", schedule_text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(schedule_text)},
        {"drill", m_drills.document()},
        {"drill_schedule", config()->drill_schedule.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(config()->drill_schedule)},
        {"retention",
         {{"objects_pruned", m_pruner.objects_removed()}, {"bytes_freed", m_pruner.bytes_freed()},
          {"last_run", m_pruner.last_run_us() ? nlohmann::ordered_json(format_timestamp(m_pruner.last_run_us())) : nlohmann::ordered_json(nullptr)},
          {"last_result", m_pruner.last_result()}}},
        {"look_ahead", look_ahead_json()},
        {"prefetch", prefetch_json()},
        {"rate_limits",
         {{"push", rate_limit_json(m_push_limit)}, {"get", rate_limit_json(m_get_limit)}, {"backup", rate_limit_json(m_backup_limit)}}},
        {"since_start",
         {{"stored", c.stored.load()}, {"duplicates", c.duplicates.load()}, {"ahead", c.ahead.load()}, {"ahead_misses", c.ahead_misses.load()}, {"refused", c.refused.load()},
          {"conflicts", c.conflicts.load()}, {"failed", c.failed.load()}, {"served", m_fetch.served()}}}};
  }

  DaemonCommandLine m_command_line;
  GetEnv m_getenv;
  const DaemonConfig m_config;  // as started; the constructor's and the socket's
  mutable std::mutex m_snapshot_mutex;
  std::shared_ptr<const DaemonConfig> m_snapshot;  // what runs now, swapped whole by reload()
  std::unique_ptr<Repository> m_repository;
  std::unique_ptr<Index> m_index;
  Indexer m_indexer;
  DrillRecord m_drills{parent_directory(m_index->path()) + "/drill.json"};
  boost::asio::io_context m_io;
  HandlerRegistry m_handlers;
  // Before their users, so they outlive every transfer they pace.
  RateLimiter m_push_limit{LiveSetting<std::uint64_t>([this] { return config()->push_rate_limit; })};
  RateLimiter m_get_limit{LiveSetting<std::uint64_t>([this] { return config()->get_rate_limit; })};
  RateLimiter m_backup_limit{LiveSetting<std::uint64_t>([this] { return config()->backup_rate_limit; })};
  Ingest m_ingest;
  Fetch m_fetch;
  AheadRegistry m_ahead;
  std::unique_ptr<LookAhead> m_look_ahead;  // with pgdata; started once the index is repaired
  Prefetcher m_prefetch{*m_repository, *m_index, m_fetch, parent_directory(m_index->path()) + "/prefetch",
                        // Off under get-rate-limit: its threads would share the limit with the
                        // segment recovery waits for, which could then take longer than the
                        // client waits (archive-get --timeout) and stop the recovery.
                        LiveSetting<std::uint64_t>([this] {
                          const auto c = config();
                          return c->get_rate_limit ? 0 : c->prefetch_bytes;
                        }),
                        // Fetching from an object store waits on round trips more than on CPU.
                        std::max(4u, worker_count(m_config))};
  Admin m_admin;
  Pruner m_pruner{*m_repository, *m_index, LiveSetting<RetentionPolicy>([this] { return retention_of(*config()); })};
  boost::asio::thread_pool m_background{1};  // scheduled prunes; joined before the index closes
  std::int64_t m_schedule_planned_us = 0;                  // io thread only
  // Before the server: destroyed after it, so no handler can still be waiting on them.
  RequestMetrics m_request_metrics;
  Notifier m_notifier{[this] {
    const auto c = config();
    return NotifySettings{c->notify_command, c->notify_timeout};
  }};
  BackupTaker m_backups{*m_repository, *m_index, [this] { return backup_settings_of(*config()); }};
  BackupReads m_backup_reads{*m_repository, *m_index};
  Server m_server;
  std::unique_ptr<HttpServer> m_http;  // metrics-listen; null when off
  mutable std::mutex m_state_mutex;
  std::shared_ptr<const StateSnapshot> m_state;  // the last collect_state(); null before the first
  std::atomic<bool> m_collecting{false};
  std::atomic<bool> m_serving{false};
  boost::asio::thread_pool m_state_pool{1};  // collect_state(); joined before the index closes
  boost::asio::steady_timer m_tick_timer{m_io};
  boost::asio::steady_timer m_drill_timer{m_io};
  std::int64_t m_drill_planned_us = 0;     // io thread only
  std::atomic<pid_t> m_drill_pid{0};       // the scheduled drill's CLI while it runs (-1: starting)
  boost::asio::thread_pool m_drill_pool{1};
  ArchiveFailureWatch m_failure_watch;  // io thread only
  std::uint64_t m_ticks = 0;            // io thread only
  boost::asio::signal_set m_signals;
  boost::asio::steady_timer m_prune_timer{m_io};
  boost::asio::steady_timer m_schedule_timer{m_io};
  boost::asio::steady_timer m_shutdown_timer{m_io};
  bool m_handle_signals = false;
  bool m_stopping = false;  // io thread only
  std::atomic<bool> m_forced{false};
  std::int64_t m_started_us;
};

Daemon::Daemon(DaemonCommandLine command_line, DaemonConfig config, std::unique_ptr<Repository> repository,
               std::unique_ptr<Index> index, GetEnv getenv)
    : m_impl(std::make_unique<Impl>(std::move(command_line), std::move(config), std::move(repository), std::move(index),
                                    std::move(getenv))) {}

Daemon::~Daemon() = default;

int Daemon::run() { return m_impl->run(); }

void Daemon::handle_signals() { m_impl->handle_signals(); }

std::future<Result<void>> Daemon::reload() {
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto outcome = done->get_future();
  boost::asio::post(m_impl->io(), [impl = m_impl.get(), done] { done->set_value(impl->reload()); });
  return outcome;
}

void Daemon::stop() {
  boost::asio::post(m_impl->io(), [impl = m_impl.get()] { impl->begin_shutdown("stop requested"); });
}

bool Daemon::stopped_by_deadline() const { return m_impl->forced(); }

std::shared_ptr<const DaemonConfig> Daemon::config() const { return m_impl->config(); }

}  // namespace walvault

