#include "daemon/metrics.hpp"

#include <chrono>

#include "common/core/base_backup.hpp"
#include "common/core/time_format.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using metrics::ExpositionWriter;
using metrics::Labels;

double seconds_of(std::int64_t us) { return static_cast<double>(us) / 1e6; }

void counter_family(ExpositionWriter& out, const char* name, const char* help, const std::map<std::string, std::uint64_t>& counts,
                    const char* label) {
  out.family(name, "counter", help);
  for (const auto& [value, n] : counts) out.sample(name, {{label, value}}, static_cast<double>(n));
}

void gauge(ExpositionWriter& out, const char* name, const char* help, std::optional<double> value) {
  out.family(name, "gauge", help);
  if (value) out.sample(name, *value);
}

}  // namespace

std::string push_result(const protocol::Message& response) {
  const std::string_view status = response.head(), kind = response.argument();  // "ERR refused"
  if (status == "OK") {
    const auto detail = response.field("detail").value_or("stored");
    return detail == "duplicate" || detail == "ahead" ? std::string(detail) : "stored";
  }
  if (status == "ERR" && (kind == "refused" || kind == "invalid" || kind == "forbidden")) return "refused";
  if (status == "ERR" && kind == "conflict") return "conflict";
  return "error";
}

std::string get_result(const protocol::Message& response) {
  const std::string_view status = response.head(), kind = response.argument();
  if (status == "OK") return "served";
  if (status == "NOTFOUND") return "not_found";
  if (status == "ERR" && kind == "corrupt") return "corrupt";
  if (status == "ERR" && (kind == "refused" || kind == "invalid" || kind == "forbidden")) return "refused";
  return "error";
}

void instrument_handler(HandlerRegistry& registry, const std::string& verb, metrics::Histogram& seconds,
                        metrics::LabeledCounter& results, std::string (*result_of)(const protocol::Message&)) {
  const RegisteredHandler* registered = registry.find(verb);
  if (!registered) return;
  Handler inner = registered->handler;
  registry.register_handler(
      verb,
      [inner = std::move(inner), &seconds, &results, result_of](Request& request) {
        const auto started = std::chrono::steady_clock::now();
        protocol::Message response = inner(request);
        seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        results.add(result_of(response));
        return response;
      },
      registered->lane);
}

bool StateSnapshot::ready() const {
  if (!taken_us || !index_ok) return false;
  for (const auto& r : repositories)
    if (!r.up) return false;
  return true;
}

StateSnapshot collect_state(Repository& repository, Index& index, const StateSnapshot* previous, bool count_gaps) {
  if (!previous || !previous->index_ok) count_gaps = true;
  StateSnapshot state;
  ObjectStore& objects = repository.objects();
  for (std::size_t i = 0; i < objects.member_count(); ++i) {
    ObjectStore& member = objects.member(i);
    RepositoryHealth health;
    health.location = member.describe();
    // A directory (the backends that know their space) gets a write probe as well, so a
    // read-only remount, a failing disk or a full one shows here and not only in failed
    // pushes; the identity file is read, not only looked up (a disk failing reads still lists
    // its files). Not on S3, where every probe would be a billed PUT and DELETE. One fixed
    // name, so a probe a crash left is replaced by the next: two walvaultd on one directory (a
    // standby's) may interleave, and a removal that finds nothing is fine.
    std::optional<Storage::Space> space;
    if (auto s = member.space(); s && *s) space = **s;
    // A member a mirror keeps closed for writes (another cluster's, or not synced yet) is not
    // written to, the probe's file included.
    const bool closed = objects.mirror() && objects.mirror()->write_block(i);
    auto probed = member.probe(std::string(k_identity_key), space && !closed ? "walvault.probe" : "");
    if (!probed) health.problem = probed.error().message;
    else if (!*probed) health.problem = "its identity file '" + std::string(k_identity_key) + "' is missing (not mounted, emptied, or not synced yet)";
    health.up = health.problem.empty();
    if (health.up && space && space->total) health.disk_usage = space->used();
    state.repositories.push_back(std::move(health));
  }

  auto totals = index.totals();
  auto newest = index.newest_segment();
  auto stored = index.stored_backups();
  auto segments = count_gaps ? index.segments() : Result<std::vector<IndexedObject>>(std::vector<IndexedObject>{});
  auto timelines = index.timelines();
  auto backups = index.backups();
  const Failure* failure = !totals ? &totals.error() : !newest ? &newest.error() : !stored ? &stored.error()
                         : !segments ? &segments.error() : !timelines ? &timelines.error() : !backups ? &backups.error() : nullptr;
  if (failure) {
    state.index_problem = failure->message;
    state.taken_us = now_unix_us();
    return state;
  }
  state.index_ok = true;
  state.stored_bytes = totals->stored_bytes;
  state.newest_segment = *newest;
  for (const auto& b : *stored) {
    state.stored_bytes += b.stored_bytes;
    ++state.backups_complete;
    if (!state.last_backup_finished_us || b.finished_at_us > *state.last_backup_finished_us) {
      state.last_backup_finished_us = b.finished_at_us;
      state.last_backup_seconds = seconds_of(b.finished_at_us - b.started_at_us);
    }
    if (b.stop_us && (!state.pitr_window_start_us || *b.stop_us < *state.pitr_window_start_us)) state.pitr_window_start_us = b.stop_us;
  }
  // Before walvault stores a backup, one taken by hand (its .backup file) is where PITR can start.
  if (stored->empty())
    for (const auto& b : *backups)
      if (b.stop_us && (!state.pitr_window_start_us || *b.stop_us < *state.pitr_window_start_us)) state.pitr_window_start_us = b.stop_us;
  std::uint64_t from_lsn = 0;
  state.wal_gaps = count_gaps ? verbs::required_gaps(*segments, *timelines, *backups, RetentionView{}, from_lsn).size() : previous->wal_gaps;
  state.taken_us = now_unix_us();
  return state;
}

std::string render_metrics(const RequestMetrics& requests, const StateSnapshot& state, const LiveState& live) {
  ExpositionWriter out;
  out.family("walvault_build_info", "gauge", "walvault's version; always 1");
  out.sample("walvault_build_info", {{"version", WALVAULT_VERSION}}, 1);
  gauge(out, "walvault_start_time_seconds", "when walvaultd started (Unix time)", seconds_of(live.started_us));

  counter_family(out, "walvault_wal_pushed_total", "archive-push requests by result: stored, duplicate (same content again), ahead (stored by look-ahead before PostgreSQL asked), refused (not WAL of this cluster, bad name), conflict (same name, other content), error",
                 requests.pushed.snapshot(), "result");
  counter_family(out, "walvault_wal_fetched_total", "archive-get requests by result: served, not_found, corrupt, refused (a key not held, a bad name), error",
                 requests.fetched.snapshot(), "result");
  out.family("walvault_push_duration_seconds", "histogram", "time walvaultd took to check, compress and durably store one pushed file");
  metrics::write_histogram(out, "walvault_push_duration_seconds", {}, requests.push_seconds.snapshot());
  out.family("walvault_get_duration_seconds", "histogram", "time walvaultd took to fetch, verify and hand over one requested file");
  metrics::write_histogram(out, "walvault_get_duration_seconds", {}, requests.get_seconds.snapshot());

  gauge(out, "walvault_connections", "client connections being served now", live.connections);
  gauge(out, "walvault_index_trusted", "1 while the index is known to match the repository; 0 after an index write failed (repair pending)",
        live.index_trusted ? 1.0 : 0.0);
  gauge(out, "walvault_prune_last_run_timestamp_seconds", "when retention last ran (Unix time)",
        live.prune_last_run_us ? std::optional<double>(seconds_of(live.prune_last_run_us)) : std::nullopt);
  out.family("walvault_pruned_objects_total", "counter", "objects retention deleted since walvaultd started");
  out.sample("walvault_pruned_objects_total", static_cast<double>(live.pruned_objects));
  out.family("walvault_pruned_bytes_total", "counter", "bytes retention freed since walvaultd started");
  out.sample("walvault_pruned_bytes_total", static_cast<double>(live.pruned_bytes));

  gauge(out, "walvault_state_timestamp_seconds", "when the index and repository state below was read (every few seconds)",
        state.taken_us ? std::optional<double>(seconds_of(state.taken_us)) : std::nullopt);
  out.family("walvault_repository_up", "gauge", "1 when the repository answers, its identity file reads back and (a directory) it takes a write, else 0");
  for (const auto& r : state.repositories) out.sample("walvault_repository_up", {{"repo", r.location}}, r.up ? 1 : 0);
  out.family("walvault_repository_disk_usage_ratio", "gauge", "share of the repository's filesystem in use, 0..1 (directories only)");
  for (const auto& r : state.repositories)
    if (r.disk_usage) out.sample("walvault_repository_disk_usage_ratio", {{"repo", r.location}}, *r.disk_usage);
  out.family("walvault_repository_bytes", "gauge", "bytes of WAL and base backups the repository holds, as stored (compressed, encrypted), from the index");
  if (state.index_ok)
    for (const auto& r : state.repositories) out.sample("walvault_repository_bytes", {{"repo", r.location}}, static_cast<double>(state.stored_bytes));

  gauge(out, "walvault_last_archived_timestamp_seconds", "when the most recently archived WAL segment was stored (Unix time)",
        state.newest_segment ? std::optional<double>(seconds_of(state.newest_segment->stored_at_us)) : std::nullopt);
  out.family("walvault_last_archived_segment_info", "gauge", "the most recently archived WAL segment; always 1");
  if (state.newest_segment)
    out.sample("walvault_last_archived_segment_info",
               {{"segment", state.newest_segment->name}, {"timeline", std::to_string(state.newest_segment->timeline)}}, 1);
  gauge(out, "walvault_last_backup_completion_timestamp_seconds", "when the newest complete base backup walvault stores finished (Unix time)",
        state.last_backup_finished_us ? std::optional<double>(seconds_of(*state.last_backup_finished_us)) : std::nullopt);
  gauge(out, "walvault_backup_duration_seconds", "how long the newest complete base backup took", state.last_backup_seconds);
  out.family("walvault_backups", "gauge", "base backups by state: complete (stored, restorable), running (0 or 1), failed (1 when the most recent one since walvaultd started failed)");
  if (state.index_ok) out.sample("walvault_backups", {{"state", "complete"}}, static_cast<double>(state.backups_complete));
  out.sample("walvault_backups", {{"state", "running"}}, live.backup_running ? 1 : 0);
  out.sample("walvault_backups", {{"state", "failed"}}, live.last_backup_failed ? 1 : 0);
  gauge(out, "walvault_pitr_window_start_timestamp_seconds", "the earliest time a point-in-time restore can reach: the oldest base backup's end (Unix time)",
        state.pitr_window_start_us ? std::optional<double>(seconds_of(*state.pitr_window_start_us)) : std::nullopt);
  gauge(out, "walvault_wal_gaps", "WAL segments recovery needs that the index lacks (from the oldest backup to the newest segment, every timeline on the path)",
        state.index_ok ? std::optional<double>(static_cast<double>(state.wal_gaps)) : std::nullopt);
  gauge(out, "walvault_drill_last_success_timestamp_seconds", "when the last successful 'walvault drill' finished (Unix time)",
        live.drill_last_success_us ? std::optional<double>(seconds_of(*live.drill_last_success_us)) : std::nullopt);
  gauge(out, "walvault_drill_rto_seconds", "the last successful drill's recovery time: restore plus recovery", live.drill_rto_seconds);
  gauge(out, "walvault_drill_rpo_seconds", "the last successful drill's recovery point: newest archived commit minus newest replayed commit",
        live.drill_rpo_seconds);
  gauge(out, "walvault_drill_last_success", "1 when the most recent drill passed, 0 when it failed",
        live.drill_last_ok ? std::optional<double>(*live.drill_last_ok ? 1.0 : 0.0) : std::nullopt);

  if (const auto& ahead = live.look_ahead) {
    gauge(out, "walvault_look_ahead_ready_segments", "segments PostgreSQL lists as .ready in pg_wal/archive_status (its archive backlog)",
          static_cast<double>(ahead->ready));
    gauge(out, "walvault_look_ahead_queue_segments", "of those, segments look-ahead has yet to store (queued or being stored)",
          static_cast<double>(ahead->queued));
    gauge(out, "walvault_look_ahead_oldest_ready_age_seconds", "age of the oldest .ready status file: how far PostgreSQL's archiving is behind",
          ahead->oldest_ready_us ? std::optional<double>(std::max<double>(0, seconds_of(now_unix_us() - *ahead->oldest_ready_us))) : std::optional<double>(0.0));
    out.family("walvault_look_ahead_pushed_total", "counter", "segments look-ahead stored before PostgreSQL's archive_command asked for them");
    out.sample("walvault_look_ahead_pushed_total", static_cast<double>(ahead->pushed));
    out.family("walvault_look_ahead_failed_total", "counter", "look-ahead pushes that failed (PostgreSQL's own archive-push then decides)");
    out.sample("walvault_look_ahead_failed_total", static_cast<double>(ahead->failed));
  }
  const PrefetchStatus& prefetch = live.prefetch;
  out.family("walvault_prefetch_hits_total", "counter", "recovery requests answered from the prefetch spool");
  out.sample("walvault_prefetch_hits_total", static_cast<double>(prefetch.hits));
  out.family("walvault_prefetch_misses_total", "counter", "recovery requests for a segment that had not been prefetched");
  out.sample("walvault_prefetch_misses_total", static_cast<double>(prefetch.misses));
  out.family("walvault_prefetch_discarded_total", "counter", "prefetched segments removed unused (recovery took another timeline, ended, or stopped asking)");
  out.sample("walvault_prefetch_discarded_total", static_cast<double>(prefetch.discarded));
  gauge(out, "walvault_prefetch_spool_bytes", "bytes of verified, prefetched WAL waiting in the spool", static_cast<double>(prefetch.spool_bytes));
  return out.text();
}

}  // namespace walvault
