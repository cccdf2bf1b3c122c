#include "restorer/prefetch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/crc32c.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_checks.hpp"
#include "common/core/wal_page.hpp"

namespace walvault {

namespace {

// More than this many segments ahead buys nothing (replay is the bottleneck by then) and only
// fills the spool with 1 MiB segments.
constexpr std::uint64_t k_max_depth = 256;

// Target's path back to timeline 1, newest first: (timeline, first segment number on it).
// A timeline without a history row is taken as a root (its history was never archived).
std::vector<std::pair<std::uint32_t, std::uint64_t>> path_to(const std::vector<IndexedTimeline>& timelines, std::uint32_t target,
                                                             std::uint64_t segment_size) {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> path;
  std::uint32_t current = target;
  while (current != 0 && path.size() <= timelines.size()) {
    auto row = std::find_if(timelines.begin(), timelines.end(), [&](const IndexedTimeline& t) { return t.timeline == current; });
    if (row == timelines.end() || current == 1) {
      path.emplace_back(current, 0);
      break;
    }
    path.emplace_back(current, row->switch_lsn / segment_size);
    current = row->parent < current ? row->parent : 0;  // parents are older: a loop is a damaged index
  }
  return path;
}

bool on_path(const std::vector<IndexedTimeline>& timelines, std::uint32_t target, std::uint32_t timeline) {
  std::uint32_t current = target;
  for (std::size_t steps = 0; current != 0 && steps <= timelines.size() + 1; ++steps) {
    if (current == timeline) return true;
    auto row = std::find_if(timelines.begin(), timelines.end(), [&](const IndexedTimeline& t) { return t.timeline == current; });
    if (row == timelines.end() || row->parent >= current) return false;
    current = row->parent;
  }
  return false;
}

// A spool copy that failed a check: logged, removed, and the request fetches from the
// repository instead (the output is emptied of whatever was copied into it).
std::optional<std::uint64_t> not_served(const std::string& path, const std::string& why, int out_fd) {
  spdlog::error("prefetched copy '{}' not served ({}); fetching it from the repository instead", path, why);
  if (out_fd >= 0) (void)::ftruncate(out_fd, 0);
  (void)::unlink(path.c_str());
  return std::nullopt;
}

}  // namespace

std::uint32_t newest_descendant(const std::vector<IndexedTimeline>& timelines, std::uint32_t requested) {
  std::uint32_t newest = requested;
  for (const auto& t : timelines)
    if (t.timeline > newest && on_path(timelines, t.timeline, requested)) newest = t.timeline;
  return newest;
}

std::vector<WalName> predict_segments(const std::vector<IndexedTimeline>& timelines, std::uint32_t requested, std::uint64_t segno,
                                      std::uint64_t segment_size, std::uint32_t target, std::size_t count) {
  std::vector<WalName> names;
  if (!is_valid_segment_size(segment_size)) return names;
  const auto path = path_to(timelines, target, segment_size);
  if (std::none_of(path.begin(), path.end(), [&](const auto& p) { return p.first == requested; })) return names;
  const std::uint64_t last_segno = (std::uint64_t{0xFFFFFFFF} + 1) * segments_per_log(segment_size) - 1;
  for (std::uint64_t s = segno + 1; s <= segno + count && s <= last_segno; ++s) {
    auto on = std::find_if(path.begin(), path.end(), [&](const auto& p) { return p.second <= s; });
    if (on == path.end()) break;
    names.push_back(segment_from_number(on->first, s, segment_size));
  }
  return names;
}

Prefetcher::Prefetcher(Repository& repository, Index& index, Fetch& fetch, std::string directory, LiveSetting<std::uint64_t> budget,
                       unsigned threads)
    : m_repository(repository), m_index(index), m_fetch(fetch), m_directory(std::move(directory)), m_budget(std::move(budget)),
      m_thread_count(std::max(1u, threads)) {}

Prefetcher::~Prefetcher() { stop(); }

Result<void> Prefetcher::start() {
  if (auto r = make_directories(m_directory, 0700); !r) return r;
  struct stat st {};
  if (::lstat(m_directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(ErrorKind::invalid, "prefetch directory '" + m_directory + "' is not a directory");
  // Files of an earlier run may be of another repository or a half-written one: never served.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(m_directory, ec))
    if (entry.is_regular_file(ec)) (void)::unlink(entry.path().c_str());
  if (ec) return fail_os("empty prefetch directory", m_directory, ec.value());
  m_directory_device = st.st_dev;
  std::lock_guard lock(m_mutex);
  m_started = true;
  for (unsigned i = 0; i < m_thread_count; ++i) m_threads.emplace_back([this] { fetch_loop(); });
  return {};
}

void Prefetcher::request_stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
}

void Prefetcher::stop() {
  request_stop();
  for (auto& t : m_threads)
    if (t.joinable()) t.join();
  remove_handed_over(/*all=*/true);
  std::lock_guard lock(m_mutex);
  m_removals.clear();
}

protocol::Message Prefetcher::handle(Request& request) {
  const std::string file_name(request.message.argument());
  const bool recovery = request.message.field("mode") == std::optional<std::string_view>("recovery");
  const auto name = parse_wal_name(file_name);
  bool active = false;
  {
    std::lock_guard lock(m_mutex);
    active = m_started && !m_stopping;
  }
  if (!recovery || !name || name->kind != WalFileKind::segment || !active || m_budget() == 0) return m_fetch.handle(request);
  {
    std::lock_guard lock(m_mutex);
    m_last_request_us = now_steady_us();
  }
  remove_handed_over();
  // Decided before anything is planned: the segments fetched after this request are written
  // back early when they are to become PostgreSQL's files (it fsyncs each one), and only then.
  const bool hand_over = can_hand_over(request);
  m_handing_over = hand_over;
  const auto started = std::chrono::steady_clock::now();
  if (auto size = take(file_name, *name, request, hand_over)) {
    request.fd.reset();
    m_fetch.note_served();
    const bool handed_over = request.reply_fd.valid();
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    spdlog::info("restored {} ({} bytes, prefetched{}; {:.1f} ms)", file_name, *size, handed_over ? ", handed over" : "", ms);
    plan_after(*name, false);
    protocol::Message response = protocol::ok().set("size", std::to_string(*size));
    if (handed_over) response.set("handoff", "1");
    return response;
  }
  protocol::Message response = m_fetch.handle(request);
  if (response.head() == "OK") plan_after(*name, true);
  return response;
}

bool Prefetcher::can_hand_over(const Request& request) const {
  if (request.message.field("handoff") != std::optional<std::string_view>("1")) return false;
  // A file of another owner would be one PostgreSQL cannot reuse as a later segment; the
  // kernel (protected_hardlinks) would mostly refuse the link anyway.
  if (request.peer_uid != ::geteuid()) return false;
  struct stat out {};
  return ::fstat(request.fd.get(), &out) == 0 && out.st_dev == m_directory_device;
}

void Prefetcher::remove_handed_over(bool all) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(m_mutex);
    const std::int64_t cutoff = now_steady_us() - std::chrono::microseconds(k_handoff_grace).count();
    auto young = std::stable_partition(m_handed_over.begin(), m_handed_over.end(),
                                       [&](const HandedOver& h) { return !all && h.since_us > cutoff; });
    for (auto it = young; it != m_handed_over.end(); ++it) names.push_back(std::move(it->path));
    m_handed_over.erase(young, m_handed_over.end());
  }
  for (const auto& path : names) (void)::unlink(path.c_str());
}

std::optional<std::uint64_t> Prefetcher::take(const std::string& file_name, const WalName& name, Request& request, bool hand_over) {
  const int out_fd = request.fd.get();
  Entry entry;
  {
    std::unique_lock lock(m_mutex);
    auto it = m_entries.find(file_name);
    if (it == m_entries.end()) return std::nullopt;
    // Being fetched: wait for it rather than fetch it a second time.
    m_changed.wait_for(lock, std::chrono::seconds(120), [&] {
      it = m_entries.find(file_name);
      return m_stopping || it == m_entries.end() || it->second.ready;
    });
    it = m_entries.find(file_name);
    if (it == m_entries.end() || !it->second.ready) return std::nullopt;
    entry = it->second;
    m_entries.erase(it);
  }
  const std::string path = path_of(file_name);
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  auto rejected = [&](const std::string& why) { return not_served(path, why, out_fd); };
  if (!in) return rejected(std::strerror(errno));
  // A handoff of the very file a fetch thread wrote, checked and renamed, untouched since (same
  // inode, size, modification and change times): its bytes are the ones the CRC-32C was taken
  // of, so only the page header is read again. Reading all 16 MiB again, on the path recovery
  // waits on, cost 2.6-3.8 ms a segment and proved nothing more: PostgreSQL reads the same
  // pages from the same disk right after, and anything that could write to the spool (its
  // owner, root) can as well write to pg_wal, which the file is about to join.
  struct stat now {};
  if (hand_over && entry.written_as && ::fstat(in.get(), &now) == 0 && *entry.written_as == FileIdentity::of(now)) {
    std::array<std::byte, k_long_page_header_size> header{};
    if (auto r = pread_exact(in.get(), header, 0, path); !r) return rejected(r.error().message);
    if (auto r = check_segment_header(m_repository, header, entry.size, name, file_name); !r) return rejected(r.error().message);
    return hand_over_file(path, in, request, entry.size);
  }
  if (!hand_over) {
    if (auto r = make_empty(out_fd, "output"); !r) return rejected(r.error().message);
  }
  // 256 KiB pieces stay in the CPU cache between the CRC and the write.
  thread_local std::vector<std::byte> t_buffer(256 << 10);
  std::uint32_t crc = 0xFFFFFFFF;
  std::uint64_t done = 0;
  EarlyWriteback writeback(out_fd);
  for (;;) {
    const ssize_t got = ::read(in.get(), t_buffer.data(), t_buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return rejected(std::string("read: ") + std::strerror(errno));
    if (got == 0) break;
    const std::span<const std::byte> piece(t_buffer.data(), static_cast<std::size_t>(got));
    if (done == 0) {
      if (auto r = check_segment_header(m_repository, piece, entry.size, name, file_name); !r) return rejected(r.error().message);
    }
    crc = crc32c_update(crc, piece);
    done += piece.size();
    if (hand_over) continue;
    if (auto r = pwrite_all(out_fd, piece, static_cast<off_t>(done - piece.size()), file_name); !r) {
      (void)::ftruncate(out_fd, 0);
      (void)::unlink(path.c_str());
      return std::nullopt;  // the output is what failed: Fetch will say so with the cause
    }
    writeback.written_up_to(done);
  }
  if (done != entry.size || (crc ^ 0xFFFFFFFF) != entry.crc) return rejected("its size or CRC-32C changed since it was written");
  if (hand_over) return hand_over_file(path, in, request, done);
  std::vector<UniqueFd> overdue;
  {
    std::lock_guard lock(m_mutex);
    ++m_hits;
    (void)::unlink(path.c_str());  // cheap while `in` is open: the pages go when it is closed
    m_removals.push_back(std::move(in));
    // Every fetch thread busy (a slow object store): close the older ones here rather than
    // hold more than a couple of served segments' disk beyond prefetch-bytes.
    if (m_removals.size() > k_max_pending_removals) {
      overdue.assign(std::make_move_iterator(m_removals.begin()), std::make_move_iterator(m_removals.end() - 1));
      m_removals.erase(m_removals.begin(), m_removals.end() - 1);
    }
  }
  m_changed.notify_all();  // one thread of several may be a request waiting in take()
  return done;
}

void Prefetcher::plan_after(const WalName& served, bool missed) {
  const std::uint64_t budget = m_budget();
  auto segment_size = m_index.segment_size();
  auto timelines = m_index.timelines();
  if (!segment_size || *segment_size == 0 || !timelines || budget == 0) return;
  const std::uint64_t segno = segment_number(served, *segment_size);
  // A budget below one segment (1 GiB segments against the default) prefetches nothing.
  const std::size_t depth = static_cast<std::size_t>(std::min<std::uint64_t>(budget / *segment_size, k_max_depth));
  if (depth == 0) return;
  std::lock_guard lock(m_mutex);
  if (missed) {
    ++m_misses;
    // The last plan expected another timeline for this segment: recovery follows another path
    // (recovery_target_timeline names an older timeline, or a newer one appeared).
    if (auto expected = m_predicted.find(segno); expected != m_predicted.end() && expected->second != served.timeline) {
      if (served.timeline < expected->second) m_pinned = served.timeline;
      else m_pinned.reset();
      spdlog::info("prefetch: recovery asked for {} where timeline {} was expected; following timeline {} from now on",
                   format_wal_name(served), expected->second, served.timeline);
    }
  }
  std::vector<WalName> wanted;
  if (m_pinned) wanted = predict_segments(*timelines, served.timeline, segno, *segment_size, *m_pinned, depth);
  if (wanted.empty()) {
    m_pinned.reset();
    wanted = predict_segments(*timelines, served.timeline, segno, *segment_size, newest_descendant(*timelines, served.timeline), depth);
  }
  m_predicted.clear();
  std::set<std::string> names;
  for (const auto& w : wanted) {
    m_predicted[segment_number(w, *segment_size)] = w.timeline;
    names.insert(format_wal_name(w));
  }
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    const std::string name = it->first;
    ++it;
    if (!names.contains(name)) drop_locked(name);
  }
  const std::int64_t now = now_steady_us();
  for (const auto& w : wanted) {
    const std::string name = format_wal_name(w);
    if (m_entries.contains(name)) continue;
    m_entries[name] = Entry{false, false, 0, 0, now, ++m_next_serial, std::nullopt};
    m_jobs.push_back(name);
  }
  m_changed.notify_all();
}

void Prefetcher::drop_locked(const std::string& file_name) {
  auto it = m_entries.find(file_name);
  if (it == m_entries.end()) return;
  if (it->second.ready) {
    (void)::unlink(path_of(file_name).c_str());
    ++m_discarded;
  }
  m_entries.erase(it);  // one being fetched finds itself unwanted when it ends
  m_changed.notify_all();
}

void Prefetcher::drop_queued_after(const std::string& file_name) {
  const auto end = parse_wal_name(file_name);
  if (!end) return;
  std::lock_guard lock(m_mutex);
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    const auto name = parse_wal_name(it->first);
    const bool later = name && std::pair(name->log, name->seg) > std::pair(end->log, end->seg);
    it = later && !it->second.ready && !it->second.fetching ? m_entries.erase(it) : std::next(it);
  }
}

void Prefetcher::fetch_loop() {
  for (;;) {
    std::string name;
    std::uint64_t serial = 0;
    std::vector<UniqueFd> removals;
    {
      std::unique_lock lock(m_mutex);
      m_changed.wait(lock, [&] { return m_stopping || !m_jobs.empty() || !m_removals.empty(); });
      if (m_stopping) return;
      removals.swap(m_removals);
    }
    removals.clear();  // closes them
    {
      std::unique_lock lock(m_mutex);
      if (m_stopping) return;
      if (m_jobs.empty()) continue;
      name = std::move(m_jobs.front());
      m_jobs.pop_front();
      auto it = m_entries.find(name);
      if (it == m_entries.end() || it->second.ready || it->second.fetching) continue;
      it->second.fetching = true;
      serial = it->second.serial;
    }
    fetch_one(name, serial);
  }
}

// The checked copy itself becomes PostgreSQL's file: archive-get links it into pg_wal. Its
// spool name moves aside (a later fetch of the same name must not meet it) and goes once the
// client has surely linked it: k_handoff_grace later, at a request or expiry tick.
std::optional<std::uint64_t> Prefetcher::hand_over_file(const std::string& path, UniqueFd& in, Request& request, std::uint64_t size) {
  const std::string served = path + ".served";
  if (::rename(path.c_str(), served.c_str()) != 0) return not_served(path, std::string("rename: ") + std::strerror(errno), request.fd.get());
  std::lock_guard lock(m_mutex);
  ++m_hits;
  ++m_handed_over_count;
  m_handed_over.push_back(HandedOver{served, now_steady_us()});
  request.reply_fd = std::move(in);
  m_changed.notify_all();
  return size;
}

void Prefetcher::fetch_one(const std::string& file_name, std::uint64_t serial) {
  static std::atomic<std::uint64_t> s_serial{0};
  const std::string final_path = path_of(file_name);
  const std::string temp = final_path + "." + std::to_string(++s_serial) + ".tmp";
  std::optional<std::uint64_t> size;
  std::uint32_t crc = 0;
  std::optional<FileIdentity> written_as;
  {
    UniqueFd fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
      spdlog::warn("prefetch: cannot create '{}': {}", temp, std::strerror(errno));
    } else if (auto got = m_fetch.get(file_name, fd.get(), /*exact=*/false, &crc, m_handing_over.load()); !got) {
      // Not archived yet (the end of WAL, for now) or not servable: the request itself will
      // get the real answer; nothing is remembered about it. The segments planned after it
      // are not asked for either (no storage round trip each, at the end of WAL); the next
      // plan asks again.
      // "Not there" is the end of WAL, normal; anything else (the spool's disk failing, a
      // damaged object) is worth the operator's eye: it costs every later request a miss.
      if (got.error().kind == ErrorKind::not_found) {
        spdlog::debug("prefetch: {} not fetched: {}", file_name, got.error().message);
        drop_queued_after(file_name);
      } else {
        spdlog::warn("prefetch: {} not fetched: {}", file_name, got.error().message);
      }
    } else if (::rename(temp.c_str(), final_path.c_str()) == 0) {
      // The copy is checked again when it is served, against the CRC-32C of what was written
      // now (taken from the pieces as they were written: no read back), unless it is handed
      // over unchanged since this rename (Entry::written_as).
      size = *got;
      struct stat st {};
      if (::fstat(fd.get(), &st) == 0) written_as = FileIdentity::proving(st);
    } else {
      spdlog::warn("prefetch: cannot keep '{}': {}", final_path, std::strerror(errno));
    }
  }
  if (!size) (void)::unlink(temp.c_str());
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(file_name);
  if (!size) {
    if (it != m_entries.end() && !it->second.ready && it->second.serial == serial) m_entries.erase(it);
  } else if (it == m_entries.end()) {
    (void)::unlink(final_path.c_str());  // no longer wanted; no other copy is listed
    ++m_discarded;
  } else if (!it->second.ready) {
    // Another fetch of the same name that ended first wrote the same content: keep its entry.
    it->second = Entry{true, false, *size, crc, now_steady_us(), 0, written_as};
    ++m_fetched;
  }
  m_changed.notify_all();
}

void Prefetcher::expire() {
  remove_handed_over();
  const std::uint64_t budget = m_budget();
  std::lock_guard lock(m_mutex);
  const std::int64_t cutoff = now_steady_us() - std::chrono::microseconds(k_expire_after).count();
  if (budget != 0 && m_last_request_us > cutoff) return;
  std::vector<std::string> old;
  for (const auto& [name, entry] : m_entries)
    if (budget == 0 || entry.since_us < cutoff) old.push_back(name);
  if (!old.empty()) spdlog::info("prefetch: removing {} prefetched segment(s) no recovery asked for", old.size());
  for (const auto& name : old) drop_locked(name);
  // Idle: the next recovery starts with no expectations (and no pin) of its own.
  if (m_entries.empty()) {
    m_predicted.clear();
    m_pinned.reset();
  }
}

PrefetchStatus Prefetcher::status() const {
  PrefetchStatus s;
  s.budget_bytes = m_budget();
  s.directory = m_directory;
  std::lock_guard lock(m_mutex);
  s.enabled = m_started && !m_stopping && s.budget_bytes > 0;
  s.hits = m_hits;
  s.handed_over = m_handed_over_count;
  s.misses = m_misses;
  s.fetched = m_fetched;
  s.discarded = m_discarded;
  s.pinned_timeline = m_pinned;
  for (const auto& [name, entry] : m_entries) {
    if (entry.ready) {
      s.spool_bytes += entry.size;
      ++s.spool_files;
    } else {
      ++s.in_flight;
    }
  }
  return s;
}

}  // namespace walvault
