#include "archiver/look_ahead.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/crc32c.hpp"
#include "common/core/sha256.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

namespace {

constexpr std::string_view k_ready_suffix = ".ready";

// "000000010000000000000003.ready" -> the segment name; anything else (a .history's or a
// .partial's status file, PostgreSQL's temp files) -> nullopt: look-ahead pushes segments only.
std::optional<std::string> ready_segment(std::string_view file) {
  if (!file.ends_with(k_ready_suffix)) return std::nullopt;
  std::string_view base = file.substr(0, file.size() - k_ready_suffix.size());
  auto name = parse_wal_name(base);
  if (!name || name->kind != WalFileKind::segment) return std::nullopt;
  return std::string(base);
}

}  // namespace

LookAhead::LookAhead(Ingest& ingest, Index& index, AheadRegistry& registry, std::string pgdata, unsigned workers)
    : m_ingest(ingest), m_index(index), m_registry(registry), m_pgdata(std::move(pgdata)), m_wal_dir(m_pgdata + "/pg_wal"),
      m_status_dir(m_wal_dir + "/archive_status"), m_workers(workers),
      // The index's time of a stored object is the storage's: a filesystem's mtime lags the
      // clock by up to a tick (4-10 ms), so a push just after this showed as before it. 20 ms
      // is less than any restart of walvaultd takes, so what an earlier run stored is still
      // proven. (S3's Last-Modified is whole seconds: a push of this run's first second is
      // proven once more, which costs a read, nothing else.)
      m_started_us(now_unix_us() - 20'000) {}

LookAhead::~LookAhead() { stop(); }

void LookAhead::start() {
  m_wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  m_watcher = std::thread([this] { watch_loop(); });
  for (unsigned i = 0; i < m_workers; ++i) m_threads.emplace_back([this] { worker_loop(); });
  spdlog::info("look-ahead: watching '{}' with {} worker(s)", m_status_dir, m_workers);
}

void LookAhead::request_stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_work.notify_all();
  if (m_wake_fd >= 0) {
    const std::uint64_t one = 1;
    (void)!::write(m_wake_fd, &one, sizeof one);
  }
}

void LookAhead::stop() {
  request_stop();
  if (m_watcher.joinable()) m_watcher.join();
  for (auto& t : m_threads)
    if (t.joinable()) t.join();
  if (m_wake_fd >= 0) ::close(m_wake_fd);
  m_wake_fd = -1;
}

void LookAhead::note_problem(std::string problem) {
  std::lock_guard lock(m_mutex);
  if (problem != m_problem && !problem.empty()) spdlog::warn("look-ahead: {}", problem);
  else if (problem.empty() && !m_problem.empty()) spdlog::info("look-ahead: working again");
  m_problem = std::move(problem);
}

// The watch is set again whenever it is missing (the directory appeared late, a volume was
// remounted); events only say "look now", the scan is what decides.
void LookAhead::watch_loop() {
  UniqueFd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify) spdlog::warn("look-ahead: inotify unavailable ({}); rescanning every {} s", std::strerror(errno), k_rescan_interval.count());
  int watch = -1;
  bool scan_due = true;
  auto last_scan = std::chrono::steady_clock::now() - k_min_scan_gap;
  for (;;) {
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping) return;
    }
    if (inotify && watch < 0) {
      watch = ::inotify_add_watch(inotify.get(), m_status_dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF);
      if (watch < 0 && errno != ENOENT && errno != EACCES)
        spdlog::warn("look-ahead: cannot watch '{}': {}", m_status_dir, std::strerror(errno));
      if (watch >= 0) scan_due = true;  // what appeared before the watch was set
    }
    if (scan_due) {
      // A burst of new .ready files (a bulk load) is one scan, not one each.
      const auto since = std::chrono::steady_clock::now() - last_scan;
      if (since < k_min_scan_gap) {
        std::array<pollfd, 1> wake{pollfd{m_wake_fd, POLLIN, 0}};
        (void)::poll(wake.data(), 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(k_min_scan_gap - since).count()) + 1);
        continue;
      }
      scan();
      last_scan = std::chrono::steady_clock::now();
    }
    scan_due = false;
    std::array<pollfd, 2> fds{pollfd{m_wake_fd, POLLIN, 0}, pollfd{inotify.get(), POLLIN, 0}};
    const int n = ::poll(fds.data(), inotify ? 2 : 1, static_cast<int>(std::chrono::milliseconds(k_rescan_interval).count()));
    if (n == 0) scan_due = true;  // the periodic rescan
    if (n <= 0 || (fds[0].revents & POLLIN)) continue;  // EINTR; or stop(): the loop head sees it
    if (!inotify || !(fds[1].revents & POLLIN)) continue;
    // Only a new .ready file is worth a scan: PostgreSQL's own renames to .done are as many
    // events again, and a scan stats every .ready file.
    alignas(inotify_event) std::array<char, 16384> events{};
    for (;;) {
      const ssize_t got = ::read(inotify.get(), events.data(), events.size());
      if (got <= 0) break;
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(events.data() + at);
        if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW)) {
          if ((event->mask & IN_MOVE_SELF) && watch >= 0) (void)::inotify_rm_watch(inotify.get(), watch);  // watch the path again
          if (!(event->mask & IN_Q_OVERFLOW)) watch = -1;
          scan_due = true;
        } else if (event->len > 0 && std::string_view(event->name).ends_with(k_ready_suffix)) {
          scan_due = true;
        }
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
  }
}

void LookAhead::scan() {
  std::set<std::string> ready;
  std::optional<std::int64_t> oldest;
  std::error_code ec;
  std::filesystem::directory_iterator it(m_status_dir, ec);
  if (ec) {
    note_problem("cannot read '" + m_status_dir + "': " + ec.message() +
                 (ec == std::errc::permission_denied ? " (walvaultd needs read access to pg_wal: run it as PostgreSQL's user or "
                                                       "give the group access, initdb --allow-group-access)"
                                                     : ""));
    return;
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    auto segment = ready_segment(it->path().filename().native());
    if (!segment) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) continue;  // archived meanwhile
    const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
    if (!oldest || mtime < *oldest) oldest = mtime;
    ready.insert(std::move(*segment));
  }
  if (ec) {
    note_problem("cannot read '" + m_status_dir + "': " + ec.message());
    return;
  }
  // Records of names PostgreSQL has archived since are of no more use.
  m_registry.keep_only(ready);
  {
    std::lock_guard lock(m_mutex);
    ++m_scans;
    const std::int64_t now = now_steady_us();
    for (auto f = m_not_before.begin(); f != m_not_before.end();)
      f = ready.contains(f->first) ? std::next(f) : m_not_before.erase(f);
    for (auto p = m_pending.begin(); p != m_pending.end();) p = ready.contains(*p) ? std::next(p) : m_pending.erase(p);
    // Oldest first and never more than the registry holds: past it, look-ahead waits for
    // PostgreSQL to archive (records of the oldest names are the ones about to be used).
    std::size_t held = m_registry.size() + m_in_flight.size();
    for (const auto& name : ready) {
      if (m_in_flight.contains(name) || m_registry.contains(name)) continue;
      if (held + m_pending.size() >= AheadRegistry::k_capacity) {
        m_pending.erase(m_pending.lower_bound(name), m_pending.end());
        break;
      }
      if (auto f = m_not_before.find(name); f != m_not_before.end() && f->second > now) continue;
      m_pending.insert(name);
    }
    m_ready = std::move(ready);
    m_oldest_ready_us = oldest;
  }
  m_work.notify_all();
  bool was_unreadable = false;
  {
    std::lock_guard lock(m_mutex);
    was_unreadable = m_problem.starts_with("cannot read '" + m_status_dir);
  }
  if (was_unreadable) note_problem("");
}

void LookAhead::worker_loop() {
  for (;;) {
    std::string name;
    {
      std::unique_lock lock(m_mutex);
      m_work.wait(lock, [&] { return m_stopping || !m_pending.empty(); });
      if (m_stopping) return;
      name = *m_pending.begin();  // oldest first: the one PostgreSQL calls for next
      m_pending.erase(m_pending.begin());
      m_in_flight.insert(name);
    }
    const bool recorded = push_one(name);
    std::lock_guard lock(m_mutex);
    m_in_flight.erase(name);
    if (!recorded && m_not_before[name] != INT64_MAX) m_not_before[name] = now_steady_us() + std::chrono::microseconds(k_retry_after).count();
  }
}

bool LookAhead::push_one(const std::string& name) {
  const std::string path = m_wal_dir + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    // Archived and recycled meanwhile: PostgreSQL's own push has it.
    if (errno == ENOENT) return false;
    note_problem("cannot open '" + path + "': " + std::strerror(errno) +
                 (errno == EACCES ? " (walvaultd needs read access to pg_wal: run it as PostgreSQL's user or give the group "
                                    "access, initdb --allow-group-access)"
                                  : ""));
    ++m_failed;
    return false;
  }
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0 || !S_ISREG(before.st_mode)) return false;
  // Already archived by PostgreSQL's own push during this run: nothing left to gain. Stored by
  // an earlier run (walvaultd restarted mid-backlog): the Ingest proves the stored copy against
  // this content, as for any second push, and the record makes PostgreSQL's push cheap.
  const auto row = m_index.find(name);
  const bool was_indexed = row && *row;
  auto leave_to_postgres = [&] {
    std::lock_guard lock(m_mutex);
    m_not_before[name] = INT64_MAX;  // not looked at again while it stays .ready
    return false;
  };
  if (was_indexed && (*row)->stored_at_us >= m_started_us) return leave_to_postgres();
  // Marked before looking at PostgreSQL's side: a push of this name that starts now waits for
  // this one; one already under way is left to finish (its answer is PostgreSQL's).
  const AheadRegistry::Storing storing(m_registry, name);
  if (m_registry.postgres_pushing(name)) return leave_to_postgres();
  // Read while PostgreSQL (or whatever archives when walvault does not) recycled it: renamed,
  // then overwritten from the first page on. What was read may be torn: never stored.
  const FileIdentity identity = FileIdentity::of(before);
  auto unchanged = [&]() -> Result<void> {
    struct stat now {};
    if (::fstat(fd.get(), &now) != 0 || !(FileIdentity::of(now) == identity))
      return fail(ErrorKind::io, "'" + path + "' changed while it was read (recycled?); not stored ahead");
    return {};
  };
  auto pushed = m_ingest.push(name, fd.get(), unchanged);
  if (!pushed) {
    ++m_failed;
    const Failure& why = pushed.error();
    // Not worth a retry: PostgreSQL's own push of this name gets the same answer, and that one
    // is what the operator sees and what the metrics count.
    if (why.kind == ErrorKind::refused || why.kind == ErrorKind::invalid || why.kind == ErrorKind::conflict) {
      std::lock_guard lock(m_mutex);
      m_not_before[name] = INT64_MAX;
    }
    spdlog::warn("look-ahead: '{}' not stored ahead (PostgreSQL's own archive-push will decide): {}", name, why.message);
    return false;
  }
  const auto stored_at = std::chrono::steady_clock::now();
  std::array<std::byte, k_ahead_first_page> first{};
  const std::span<std::byte> page(first.data(), std::min<std::size_t>(first.size(), static_cast<std::size_t>(before.st_size)));
  if (!pread_exact(fd.get(), page, 0, name)) return false;
  struct stat after {};
  // Changed while it was read (recycled: renamed and rewritten): what was stored is not
  // proven to be this file's content, so PostgreSQL's push will read it again.
  if (::fstat(fd.get(), &after) != 0 || !(FileIdentity::of(before) == FileIdentity::of(after))) return false;
  auto indexed = m_index.find(name);
  if (!indexed || !*indexed) return false;
  // Whole-second timestamps (an old or network filesystem) cannot prove the file unchanged:
  // stored, but PostgreSQL's push of it takes the full path.
  if (auto identity_after = FileIdentity::proving(after))
    m_registry.remember(name, AheadRecord{*identity_after, crc32c(page), (*indexed)->sha256, stored_at});
  else if (!m_warned_coarse.exchange(true))
    spdlog::warn("look-ahead: '{}' has whole-second timestamps, which cannot prove a file unchanged; PostgreSQL's pushes "
                 "are checked in full", path);
  {
    std::lock_guard lock(m_mutex);
    if (m_problem.starts_with("cannot open")) m_problem.clear();
  }
  if (*pushed == PushOutcome::stored) {
    ++m_pushed;
    spdlog::info("look-ahead: archived {} ahead of PostgreSQL", name);
  } else {
    ++m_verified;
    spdlog::debug("look-ahead: {} was {} archived; proven the same", name, was_indexed ? "already" : "just");
  }
  return true;
}

LookAheadStatus LookAhead::status() const {
  LookAheadStatus s;
  s.enabled = true;
  {
    std::lock_guard lock(m_mutex);
    s.problem = m_problem;
    s.ready = m_ready.size();
    s.queued = m_pending.size() + m_in_flight.size();
    for (const auto& name : m_ready)
      if (m_registry.contains(name)) ++s.stored_ahead;
    s.oldest_ready_us = m_oldest_ready_us;
    s.scans = m_scans;
  }
  s.pushed = m_pushed.load();
  s.verified = m_verified.load();
  s.failed = m_failed.load();
  return s;
}

}  // namespace walvault
