#pragma once
// The daemon's durable index (SQLite, WAL journal) of what the repository holds: every object
// by name (the hot-path "is it there?" answer), segments with their commit-time range,
// timelines from .history files, and base backups from .backup files. The repository stays the
// source of truth: the index is written only after an object is durable and can be rebuilt
// from the repository alone (Indexer::rebuild).
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/base_backup.hpp"
#include "common/core/sqlite.hpp"

namespace walvault {

// sha256 of a row that records an object which exists but could not be decoded: it answers
// contains() (so it is never reported "not there") but is left out of segments().
inline constexpr std::string_view k_unreadable_sha256 = "unreadable";
// sha256 of a row whose object was archived (indexed) and is gone from the repository: it too
// answers contains(), so the name is reported as lost ("archived on <time> and is gone"),
// never as "not there", and it is left out of segments() (the archive has a hole there).
inline constexpr std::string_view k_missing_sha256 = "missing";

struct IndexedObject {
  std::string name;
  WalFileKind kind{};
  std::uint32_t timeline = 0;
  std::uint64_t segno = 0;          // segments and .partial: XLogSegNo; 0 otherwise
  std::uint64_t segment_size = 0;   // segments and .partial
  std::uint64_t plain_size = 0;
  std::uint64_t stored_size = 0;
  std::string sha256;               // hex, of the plain content
  std::int64_t stored_at_us = 0;    // the object's modification time in the repository
  std::optional<std::int64_t> first_xact_us;  // earliest commit/abort timestamp (Unix µs)
  std::optional<std::int64_t> last_xact_us;   // latest commit/abort timestamp (Unix µs)
  std::uint64_t xact_count = 0;
  // The key its stored copy is encrypted with: 0 plain, nullopt not known (indexed before
  // walvault recorded it, or a row for an object that cannot be read).
  std::optional<std::uint32_t> key_id;
};

struct IndexedTimeline {
  std::uint32_t timeline = 0;
  std::uint32_t parent = 0;
  std::uint64_t switch_lsn = 0;  // where the parent ended and this timeline began
  std::string reason;
};

struct IndexedBackup {
  std::string name;  // the .backup file name
  std::uint32_t timeline = 0;
  std::uint64_t start_lsn = 0;
  std::uint64_t stop_lsn = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::string label;
  std::optional<std::int64_t> start_us;
  std::optional<std::int64_t> stop_us;
};

struct SegmentFilter {
  std::optional<std::uint32_t> timeline;
  std::optional<std::uint64_t> from_segno;
  std::optional<std::uint64_t> to_segno;
};

struct IndexTotals {
  std::uint64_t segments = 0;
  std::uint64_t partials = 0;
  std::uint64_t histories = 0;
  std::uint64_t backups = 0;
  std::uint64_t plain_bytes = 0;
  std::uint64_t stored_bytes = 0;
};

class Index {
 public:
  static Result<std::unique_ptr<Index>> open(const std::string& path);
  // open(), then PRAGMA quick_check; a damaged file (and its -wal/-shm) is moved aside to
  // `<path>.damaged.<unix time>` and a new, empty index opened in its place: it is rebuilt from
  // the repository by the start-up repair. `moved_aside` says where the damaged one went.
  struct Checked {
    std::unique_ptr<Index> index;
    std::string moved_aside;  // empty when the index was sound
    std::string damage;       // what SQLite said
  };
  static Result<Checked> open_checked(const std::string& path);
  // PRAGMA quick_check; ErrorKind::corrupt with SQLite's first complaint.
  Result<void> check_integrity();

  const std::string& path() const { return m_path; }

  // False while the index may be behind the repository (an index write failed after an
  // object became durable): then "not there" must be asked of the storage, not the index.
  bool trusted() const { return m_trusted.load(); }
  void set_trusted(bool trusted) { m_trusted.store(trusted); }
  // An index write failed after an object became durable: untrusted until a repair that
  // started after this completes.
  void record_failure() {
    ++m_failures;
    m_trusted.store(false);
  }
  std::uint64_t failures() const { return m_failures.load(); }

  // Inserts or replaces. `carry` is the start of a record that continues into the next
  // segment (kept so that segment's walk can complete it).
  Result<void> put_object(const IndexedObject& object, std::span<const std::byte> carry = {}, std::uint64_t carry_lsn = 0);
  Result<void> put_timeline(const IndexedTimeline& timeline);
  Result<void> put_backup(const IndexedBackup& backup);
  Result<void> remove_object(std::string_view name);
  // Keeps the row of an object that vanished from the repository, marked k_missing_sha256.
  Result<void> mark_missing(std::string_view name);
  // `walvault rekey` moved the object's data key to another key.
  Result<void> set_key_id(std::string_view name, std::uint32_t key_id);
  // Readable objects by the key that encrypts them (0: plain; nullopt: not known), for status
  // and check. Rows of unreadable and missing objects are left out.
  Result<std::map<std::optional<std::uint32_t>, std::uint64_t>> count_by_key_id();
  Result<void> clear();

  Result<bool> contains(std::string_view name);
  // Names retention deleted on purpose. Kept across clear()/reindex: it is history, not a
  // copy of the repository. A missing segment that was pruned is an expected end of WAL (the
  // end of an older backup's island); one that was not, below an archived later one, is a hole.
  Result<void> record_pruned(std::string_view name, std::int64_t at_us);
  Result<bool> was_pruned(std::string_view name);
  // The first segment or .partial on `timeline` at a later position than `name` (names of one
  // timeline sort by position; N.partial is not later than N).
  Result<std::optional<std::string>> later_segment(std::uint32_t timeline, std::string_view name);
  // The highest timeline any row (object or timeline history) names; nullopt when empty.
  Result<std::optional<std::uint32_t>> newest_timeline();
  // The segment size of the archived WAL (from any segment row); 0 when none is archived.
  Result<std::uint64_t> segment_size();
  // The most recently archived readable segment (status), by an index, not a scan.
  Result<std::optional<IndexedObject>> newest_segment();
  // PRAGMA user_version: the schema this index file has, and the one this walvault writes.
  Result<int> schema_version();
  static int latest_schema_version();
  Result<std::optional<IndexedObject>> find(std::string_view name);
  Result<std::vector<IndexedObject>> segments(const SegmentFilter& filter = {});
  // Every indexed name; without `include_unreadable`, rows of unreadable and missing objects
  // are left out.
  Result<std::vector<std::string>> names(bool include_unreadable = true);
  // Every row of every kind, unreadable and missing ones included.
  Result<std::vector<IndexedObject>> all_objects();
  Result<std::vector<IndexedTimeline>> timelines();
  Result<std::vector<IndexedBackup>> backups();
  Result<IndexTotals> totals();

  // Base backups whose data walvault stores (backup.json written), by id.
  Result<void> put_stored_backup(const StoredBackup& backup);
  Result<void> remove_stored_backup(std::string_view id);
  Result<std::vector<StoredBackup>> stored_backups();
  Result<std::optional<StoredBackup>> stored_backup(std::string_view id);

  struct Carry {
    std::vector<std::byte> bytes;
    std::uint64_t lsn = 0;
  };
  // The carry stored with segment `segno` on `timeline`, if any.
  Result<std::optional<Carry>> carry(std::uint32_t timeline, std::uint64_t segno);

 private:
  Index(sqlite::Database db, std::string path) : m_db(std::move(db)), m_path(std::move(path)) {}
  Result<void> migrate();

  std::mutex m_mutex;  // one connection, used by every worker
  std::atomic<bool> m_trusted{false};
  std::atomic<std::uint64_t> m_failures{0};
  sqlite::Database m_db;
  std::string m_path;
};

}  // namespace walvault
