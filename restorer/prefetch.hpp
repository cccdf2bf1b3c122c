#pragma once
// Prefetch during archive recovery. PostgreSQL asks for one segment at a time and replays it
// before it asks for the next, so a restore that fetches, decodes and verifies each segment on
// request waits for storage once per 16 MiB. After serving a segment asked for as
// pg_wal/RECOVERYXLOG, walvaultd fetches the segments recovery will ask for next (through the
// same Fetch: same checks against the index and the page headers) into <spool>/prefetch/, in
// parallel, while PostgreSQL replays; the next request is then a local copy, verified again
// against the CRC-32C taken when the file was written.
//
// What is prefetched follows the timelines: for each following segment, the newest timeline on
// the path of the timeline recovery is headed for that has begun by then (PostgreSQL's own
// rule, XLogFileReadAnyTLI). Recovery is taken to head for the newest timeline that descends
// from the one asked for (recovery_target_timeline = 'latest', the default); a request that
// shows otherwise pins the plan to the timeline asked for and drops what was fetched.
//
// Never: a prefetch of .history files (PostgreSQL probes them to choose its timeline), a
// half-written file served (temp name, rename), a cached "not there" (a segment not archived
// yet is simply asked for again), or a prefetch for an exact request (pg_rewind's real names).
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/base/fd.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/index.hpp"
#include "common/core/live_setting.hpp"
#include "common/core/repository.hpp"
#include "common/core/request.hpp"
#include "restorer/fetch.hpp"

namespace walvault {

// The timeline recovery heads for when it asks for `requested` and `pinned` is not set: the
// newest timeline whose history contains `requested` (itself when none does).
std::uint32_t newest_descendant(const std::vector<IndexedTimeline>& timelines, std::uint32_t requested);

// The `count` segment names PostgreSQL asks for after segment `segno` when it replays toward
// `target`: for each segment number, the newest timeline on target's path that began at or
// before that segment. Empty when `requested` is not on target's path.
std::vector<WalName> predict_segments(const std::vector<IndexedTimeline>& timelines, std::uint32_t requested, std::uint64_t segno,
                                      std::uint64_t segment_size, std::uint32_t target, std::size_t count);

struct PrefetchStatus {
  bool enabled = false;
  std::uint64_t budget_bytes = 0;
  std::string directory;
  std::uint64_t hits = 0;       // requests answered from the spool
  std::uint64_t handed_over = 0;  // of those, answered by passing the spool's file itself
  std::uint64_t misses = 0;     // recovery requests for a segment not prefetched
  std::uint64_t fetched = 0;    // segments written to the spool
  std::uint64_t discarded = 0;  // fetched and never asked for (another timeline, expired)
  std::uint64_t spool_bytes = 0;
  std::size_t spool_files = 0;
  std::size_t in_flight = 0;
  std::optional<std::uint32_t> pinned_timeline;
};

class Prefetcher {
 public:
  // Prefetched files nobody asked for within this long are removed (a recovery that ended or
  // was abandoned must not hold the spool).
  static constexpr std::chrono::seconds k_expire_after{300};

  Prefetcher(Repository& repository, Index& index, Fetch& fetch, std::string directory, LiveSetting<std::uint64_t> budget,
             unsigned threads);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Creates the directory and empties it (files of an earlier run may be of another
  // repository), then starts the fetch threads. An error leaves prefetch off.
  Result<void> start();
  // Wakes requests waiting for a fetch (they go to the repository) and stops the threads
  // without waiting for them; stop() also joins them.
  void request_stop();
  void stop();

  // The GET handler (docs/protocol.md): recovery requests for segments go through the spool,
  // the rest straight to Fetch.
  protocol::Message handle(Request& request);

  // Removes files unused for k_expire_after; the daemon calls it from its timer.
  void expire();

  PrefetchStatus status() const;

 private:
  struct Entry {
    bool ready = false;     // in the spool under its name
    bool fetching = false;  // a fetch thread took its job
    std::uint64_t size = 0;
    std::uint32_t crc = 0;
    std::int64_t since_us = 0;  // steady clock: queued or written
    std::uint64_t serial = 0;   // which planning made it: a fetch ends only its own entry
    // The spool file as it was once written and renamed: while fstat still says exactly this,
    // nothing has written to it since (see FileIdentity), and a handoff need not read it again.
    // Empty when the filesystem keeps whole-second times only.
    std::optional<FileIdentity> written_as;
  };

  // Serves `file_name` from the spool when it is there (waiting for it when it is being
  // fetched): copied into request.fd, or, with `hand_over` (can_hand_over()), checked and passed
  // back itself in request.reply_fd. nullopt: not prefetched, or the spool copy failed its checks.
  std::optional<std::uint64_t> take(const std::string& file_name, const WalName& name, Request& request, bool hand_over);
  // The client accepts the spool's file (handoff=1), can link it (same filesystem) and owns it
  // then as PostgreSQL owns its segments (same uid as walvaultd).
  bool can_hand_over(const Request& request) const;
  // Passes the checked spool file at `path` (open as `in`) back with the answer: `size` bytes.
  std::optional<std::uint64_t> hand_over_file(const std::string& path, UniqueFd& in, Request& request, std::uint64_t size);
  // Removes the spool names of files handed over more than k_handoff_grace ago (`all`: every one).
  void remove_handed_over(bool all = false);
  void plan_after(const WalName& served, bool missed);
  void fetch_loop();
  void fetch_one(const std::string& file_name, std::uint64_t serial);
  void drop_locked(const std::string& file_name);  // m_mutex held
  void drop_queued_after(const std::string& file_name);  // not there yet: neither are the later ones
  std::string path_of(const std::string& file_name) const { return m_directory + "/" + file_name; }

  Repository& m_repository;
  Index& m_index;
  Fetch& m_fetch;
  const std::string m_directory;
  LiveSetting<std::uint64_t> m_budget;
  const unsigned m_thread_count;

  mutable std::mutex m_mutex;
  std::condition_variable m_changed;  // an entry became ready or was dropped; a job was queued
  bool m_started = false;
  bool m_stopping = false;
  std::map<std::string, Entry> m_entries;
  std::deque<std::string> m_jobs;
  // Served spool files, already unlinked and still open: a fetch thread closes them, usually
  // after the answer went out, since freeing 16 MiB of page cache takes milliseconds recovery
  // would otherwise wait for. At most k_max_pending_removals wait; a request closes the older.
  static constexpr std::size_t k_max_pending_removals = 2;
  std::vector<UniqueFd> m_removals;
  std::map<std::uint64_t, std::uint32_t> m_predicted;  // segment number -> timeline the last plan expects
  std::optional<std::uint32_t> m_pinned;
  std::int64_t m_last_request_us = 0;
  std::uint64_t m_next_serial = 0;
  std::uint64_t m_hits = 0, m_misses = 0, m_fetched = 0, m_discarded = 0, m_handed_over_count = 0;
  dev_t m_directory_device = 0;
  // Spool names of files handed over, removed once the client has linked them. archive-get
  // links within a millisecond or so; a name removed before that costs it a copy, nothing more.
  struct HandedOver {
    std::string path;
    std::int64_t since_us = 0;
  };
  static constexpr std::chrono::seconds k_handoff_grace{1};
  std::vector<HandedOver> m_handed_over;
  // The last recovery request could take a handoff: fetches write back early, since PostgreSQL
  // fsyncs the very file the spool holds (a copy never reaches the disk: it is gone within
  // seconds). Without it the first segments of a recovery cost PostgreSQL 11-19 ms of fsync each.
  std::atomic<bool> m_handing_over{false};
  std::vector<std::thread> m_threads;
};

}  // namespace walvault
