#include "common/core/index.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace walvault {

namespace {

// Schema versions, applied in order, each in one transaction with its PRAGMA user_version
// (SQLite's own slot for it). The next schema change is a new entry at the end; an entry is
// never edited once released, because indexes in the field already carry its number.
struct Migration {
  int version;
  std::string_view what;
  std::string_view sql;
};

constexpr std::string_view k_schema_1 = R"sql(
CREATE TABLE IF NOT EXISTS objects (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  timeline INTEGER NOT NULL,
  segno INTEGER NOT NULL,
  segment_size INTEGER NOT NULL,
  plain_size INTEGER NOT NULL,
  stored_size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  stored_at INTEGER NOT NULL,
  first_xact INTEGER,
  last_xact INTEGER,
  xact_count INTEGER NOT NULL,
  carry BLOB,
  carry_lsn INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_position ON objects (kind, timeline, segno);
CREATE TABLE IF NOT EXISTS timelines (
  timeline INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL,
  switch_lsn INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS backups (
  name TEXT PRIMARY KEY,
  timeline INTEGER NOT NULL,
  start_lsn INTEGER NOT NULL,
  stop_lsn INTEGER NOT NULL,
  checkpoint_lsn INTEGER NOT NULL,
  label TEXT NOT NULL,
  start_time INTEGER,
  stop_time INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stored_backups (
  id TEXT PRIMARY KEY,
  backup_file TEXT NOT NULL,
  document TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pruned (
  name TEXT PRIMARY KEY,
  pruned_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

constexpr Migration k_migrations[] = {
    {1, "objects, timelines, backups, stored backups, pruned names", k_schema_1},
    // status asks for the newest archived segment on every call: an index instead of a scan.
    {2, "newest segment by archive time", "CREATE INDEX IF NOT EXISTS objects_by_stored_at ON objects (kind, stored_at);"},
    // Encryption at rest: status counts objects by the key that encrypts them.
    {3, "the key id of each object", "ALTER TABLE objects ADD COLUMN key_id INTEGER;"},
};

constexpr std::string_view k_object_columns =
    "name, kind, timeline, segno, segment_size, plain_size, stored_size, sha256, stored_at, first_xact, last_xact, xact_count, key_id";

WalFileKind kind_from(std::string_view text) {
  if (text == "history") return WalFileKind::history;
  if (text == "partial") return WalFileKind::partial;
  if (text == "backup") return WalFileKind::backup;
  return WalFileKind::segment;
}

IndexedObject read_object(const sqlite::Statement& row) {
  IndexedObject object;
  object.name = row.column_text(0);
  object.kind = kind_from(row.column_text(1));
  object.timeline = static_cast<std::uint32_t>(row.column_int(2));
  object.segno = static_cast<std::uint64_t>(row.column_int(3));
  object.segment_size = static_cast<std::uint64_t>(row.column_int(4));
  object.plain_size = static_cast<std::uint64_t>(row.column_int(5));
  object.stored_size = static_cast<std::uint64_t>(row.column_int(6));
  object.sha256 = row.column_text(7);
  object.stored_at_us = row.column_int(8);
  object.first_xact_us = row.column_optional_int(9);
  object.last_xact_us = row.column_optional_int(10);
  object.xact_count = static_cast<std::uint64_t>(row.column_int(11));
  if (auto key_id = row.column_optional_int(12)) object.key_id = static_cast<std::uint32_t>(*key_id);
  return object;
}

std::int64_t i64(std::uint64_t value) { return static_cast<std::int64_t>(value); }

}  // namespace

Result<std::unique_ptr<Index>> Index::open(const std::string& path) {
  auto db = sqlite::Database::open(path);
  if (!db) return std::unexpected(db.error());
  std::unique_ptr<Index> index(new Index(std::move(*db), path));
  // WAL journal: readers never block the writer. synchronous=NORMAL may lose the last
  // transactions on power loss, which start-up repair recovers from the repository.
  if (auto r = index->m_db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"); !r) return std::unexpected(r.error());
  if (auto r = index->migrate(); !r) return std::unexpected(r.error());
  return index;
}

int Index::latest_schema_version() { return k_migrations[std::size(k_migrations) - 1].version; }

Result<int> Index::schema_version() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("PRAGMA user_version");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  return *row ? static_cast<int>(stmt->column_int(0)) : 0;
}

Result<void> Index::migrate() {
  auto current = schema_version();
  if (!current) return std::unexpected(current.error());
  if (*current > latest_schema_version())
    return fail(ErrorKind::invalid, "index '" + m_path + "' has schema version " + std::to_string(*current) +
                                        ", written by a newer walvault (this one knows up to " +
                                        std::to_string(latest_schema_version()) +
                                        "): run the newer walvaultd, or move the index aside and it is rebuilt from the repository");
  std::lock_guard lock(m_mutex);
  for (const Migration& m : k_migrations) {
    if (m.version <= *current) continue;
    const std::string sql = "BEGIN IMMEDIATE;\n" + std::string(m.sql) + "\nPRAGMA user_version = " + std::to_string(m.version) + ";\nCOMMIT;";
    if (auto r = m_db.exec(sql); !r) {
      (void)m_db.exec("ROLLBACK;");
      return fail(r.error().kind, "index '" + m_path + "': migration to schema version " + std::to_string(m.version) + " (" +
                                      std::string(m.what) + ") failed: " + r.error().message);
    }
  }
  return {};
}

Result<std::optional<IndexedObject>> Index::newest_segment() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT " + std::string(k_object_columns) +
                           " FROM objects WHERE kind = 'segment' AND sha256 NOT IN ('unreadable', 'missing')"
                           " ORDER BY stored_at DESC LIMIT 1");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<IndexedObject>();
  return std::optional<IndexedObject>(read_object(*stmt));
}

Result<void> Index::check_integrity() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("PRAGMA quick_check");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  const std::string verdict = *row ? stmt->column_text(0) : std::string("no answer");
  if (verdict != "ok") return fail(ErrorKind::corrupt, "index '" + m_path + "' fails its integrity check: " + verdict.substr(0, 200));
  return {};
}

Result<Index::Checked> Index::open_checked(const std::string& path) {
  Checked checked;
  auto index = open(path);
  Result<void> sound = index ? (*index)->check_integrity() : Result<void>(std::unexpected(index.error()));
  if (sound) {
    checked.index = std::move(*index);
    return checked;
  }
  if (sound.error().kind != ErrorKind::corrupt) return std::unexpected(sound.error());
  checked.damage = sound.error().message;
  if (index) index->reset();  // closed before its files move
  checked.moved_aside = path + ".damaged." + std::to_string(std::time(nullptr));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string from = path + suffix, to = checked.moved_aside + suffix;
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) return fail_os("move the damaged index aside to", to, errno);
  }
  auto fresh = open(path);
  if (!fresh) return std::unexpected(fresh.error());
  checked.index = std::move(*fresh);
  return checked;
}

Result<void> Index::put_object(const IndexedObject& object, std::span<const std::byte> carry, std::uint64_t carry_lsn) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(
      "INSERT OR REPLACE INTO objects (name, kind, timeline, segno, segment_size, plain_size, stored_size, sha256, stored_at, "
      "first_xact, last_xact, xact_count, carry, carry_lsn, key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, object.name).bind(2, to_string(object.kind)).bind(3, std::int64_t{object.timeline}).bind(4, i64(object.segno));
  stmt->bind(5, i64(object.segment_size)).bind(6, i64(object.plain_size)).bind(7, i64(object.stored_size));
  stmt->bind(8, object.sha256).bind(9, object.stored_at_us).bind(10, object.first_xact_us).bind(11, object.last_xact_us);
  stmt->bind(12, i64(object.xact_count));
  if (carry.empty()) stmt->bind_null(13);
  else stmt->bind(13, carry);
  stmt->bind(14, i64(carry_lsn));
  if (object.key_id) stmt->bind(15, std::int64_t{*object.key_id});
  else stmt->bind_null(15);
  return stmt->run();
}

Result<void> Index::put_timeline(const IndexedTimeline& timeline) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("INSERT OR REPLACE INTO timelines (timeline, parent, switch_lsn, reason) VALUES (?1, ?2, ?3, ?4)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, std::int64_t{timeline.timeline}).bind(2, std::int64_t{timeline.parent}).bind(3, i64(timeline.switch_lsn));
  stmt->bind(4, timeline.reason);
  return stmt->run();
}

Result<void> Index::put_backup(const IndexedBackup& backup) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(
      "INSERT OR REPLACE INTO backups (name, timeline, start_lsn, stop_lsn, checkpoint_lsn, label, start_time, stop_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, backup.name).bind(2, std::int64_t{backup.timeline}).bind(3, i64(backup.start_lsn)).bind(4, i64(backup.stop_lsn));
  stmt->bind(5, i64(backup.checkpoint_lsn)).bind(6, backup.label).bind(7, backup.start_us).bind(8, backup.stop_us);
  return stmt->run();
}

Result<void> Index::remove_object(std::string_view name) {
  std::lock_guard lock(m_mutex);
  if (auto parsed = parse_wal_name(name); parsed && parsed->kind == WalFileKind::history) {
    auto timeline = m_db.prepare("DELETE FROM timelines WHERE timeline = ?1");
    if (!timeline) return std::unexpected(timeline.error());
    timeline->bind(1, std::int64_t{parsed->timeline});
    if (auto r = timeline->run(); !r) return r;
  }
  auto stmt = m_db.prepare("DELETE FROM objects WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name);
  if (auto r = stmt->run(); !r) return r;
  auto backup = m_db.prepare("DELETE FROM backups WHERE name = ?1");
  if (!backup) return std::unexpected(backup.error());
  backup->bind(1, name);
  return backup->run();
}

Result<void> Index::mark_missing(std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("UPDATE objects SET sha256 = ?2 WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name).bind(2, k_missing_sha256);
  return stmt->run();
}

Result<void> Index::set_key_id(std::string_view name, std::uint32_t key_id) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("UPDATE objects SET key_id = ?2 WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name).bind(2, std::int64_t{key_id});
  return stmt->run();
}

Result<std::map<std::optional<std::uint32_t>, std::uint64_t>> Index::count_by_key_id() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT key_id, count(*) FROM objects WHERE sha256 NOT IN ('unreadable', 'missing') GROUP BY key_id");
  if (!stmt) return std::unexpected(stmt.error());
  std::map<std::optional<std::uint32_t>, std::uint64_t> counts;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    std::optional<std::uint32_t> key;
    if (auto id = stmt->column_optional_int(0)) key = static_cast<std::uint32_t>(*id);
    counts[key] = static_cast<std::uint64_t>(stmt->column_int(1));
  }
  return counts;
}

Result<void> Index::clear() {
  std::lock_guard lock(m_mutex);
  return m_db.exec("DELETE FROM objects; DELETE FROM timelines; DELETE FROM backups; DELETE FROM stored_backups;");
}

Result<bool> Index::contains(std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT 1 FROM objects WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name);
  return stmt->step();
}

Result<std::optional<std::string>> Index::later_segment(std::uint32_t timeline, std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(
      "SELECT name FROM objects WHERE name > ?2 AND name < ?3 AND kind IN ('segment', 'partial') AND timeline = ?1 "
      "ORDER BY name LIMIT 1");
  if (!stmt) return std::unexpected(stmt.error());
  // A range scan of the primary key over this timeline's names: "<name>~" sorts after
  // "<name>.partial" and before the next position, the next timeline's prefix after them all.
  char next_timeline[16] = "~";  // timeline FFFFFFFF: no next one
  if (timeline != 0xFFFFFFFFu) std::snprintf(next_timeline, sizeof next_timeline, "%08X", timeline + 1);
  stmt->bind(1, std::int64_t{timeline}).bind(2, std::string(name.substr(0, 24)) + "~").bind(3, std::string_view(next_timeline));
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(stmt->column_text(0));
}

Result<std::optional<std::uint32_t>> Index::newest_timeline() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT max(t) FROM (SELECT max(timeline) AS t FROM objects UNION ALL SELECT max(timeline) FROM timelines)");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  const auto newest = *row ? stmt->column_optional_int(0) : std::nullopt;
  if (!newest) return std::optional<std::uint32_t>();
  return std::optional<std::uint32_t>(static_cast<std::uint32_t>(*newest));
}

Result<std::uint64_t> Index::segment_size() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT segment_size FROM objects WHERE segment_size > 0 LIMIT 1");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::uint64_t{0};
  return static_cast<std::uint64_t>(stmt->column_int(0));
}

Result<void> Index::record_pruned(std::string_view name, std::int64_t at_us) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("INSERT OR REPLACE INTO pruned (name, pruned_at) VALUES (?1, ?2)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name).bind(2, at_us);
  return stmt->run();
}

Result<bool> Index::was_pruned(std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT 1 FROM pruned WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name);
  return stmt->step();
}

Result<std::optional<IndexedObject>> Index::find(std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT " + std::string(k_object_columns) + " FROM objects WHERE name = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, name);
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<IndexedObject>();
  return std::optional<IndexedObject>(read_object(*stmt));
}

Result<std::vector<IndexedObject>> Index::segments(const SegmentFilter& filter) {
  std::lock_guard lock(m_mutex);
  std::string sql = "SELECT " + std::string(k_object_columns) +
                    " FROM objects WHERE kind IN ('segment', 'partial') AND sha256 NOT IN ('unreadable', 'missing') AND (?1 IS NULL OR timeline = ?1)"
                    " AND (?2 IS NULL OR segno >= ?2) AND (?3 IS NULL OR segno <= ?3) ORDER BY timeline, segno, kind DESC";
  auto stmt = m_db.prepare(sql);
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, filter.timeline ? std::optional<std::int64_t>(*filter.timeline) : std::nullopt);
  stmt->bind(2, filter.from_segno ? std::optional<std::int64_t>(i64(*filter.from_segno)) : std::nullopt);
  stmt->bind(3, filter.to_segno ? std::optional<std::int64_t>(i64(*filter.to_segno)) : std::nullopt);
  std::vector<IndexedObject> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    result.push_back(read_object(*stmt));
  }
  return result;
}

Result<std::vector<IndexedObject>> Index::all_objects() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT " + std::string(k_object_columns) + " FROM objects ORDER BY name");
  if (!stmt) return std::unexpected(stmt.error());
  std::vector<IndexedObject> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    result.push_back(read_object(*stmt));
  }
  return result;
}

Result<std::vector<std::string>> Index::names(bool include_unreadable) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(include_unreadable ? "SELECT name FROM objects ORDER BY name"
                                              : "SELECT name FROM objects WHERE sha256 NOT IN ('unreadable', 'missing') ORDER BY name");
  if (!stmt) return std::unexpected(stmt.error());
  std::vector<std::string> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    result.push_back(stmt->column_text(0));
  }
  return result;
}

Result<std::vector<IndexedTimeline>> Index::timelines() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT timeline, parent, switch_lsn, reason FROM timelines ORDER BY timeline");
  if (!stmt) return std::unexpected(stmt.error());
  std::vector<IndexedTimeline> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    result.push_back({static_cast<std::uint32_t>(stmt->column_int(0)), static_cast<std::uint32_t>(stmt->column_int(1)),
                      static_cast<std::uint64_t>(stmt->column_int(2)), stmt->column_text(3)});
  }
  return result;
}

Result<std::vector<IndexedBackup>> Index::backups() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(
      "SELECT name, timeline, start_lsn, stop_lsn, checkpoint_lsn, label, start_time, stop_time FROM backups ORDER BY start_lsn, name");
  if (!stmt) return std::unexpected(stmt.error());
  std::vector<IndexedBackup> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    IndexedBackup backup;
    backup.name = stmt->column_text(0);
    backup.timeline = static_cast<std::uint32_t>(stmt->column_int(1));
    backup.start_lsn = static_cast<std::uint64_t>(stmt->column_int(2));
    backup.stop_lsn = static_cast<std::uint64_t>(stmt->column_int(3));
    backup.checkpoint_lsn = static_cast<std::uint64_t>(stmt->column_int(4));
    backup.label = stmt->column_text(5);
    backup.start_us = stmt->column_optional_int(6);
    backup.stop_us = stmt->column_optional_int(7);
    result.push_back(std::move(backup));
  }
  return result;
}

Result<void> Index::put_stored_backup(const StoredBackup& backup) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("INSERT OR REPLACE INTO stored_backups (id, backup_file, document) VALUES (?1, ?2, ?3)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, backup.id).bind(2, backup.backup_file).bind(3, render_backup_info(backup));
  return stmt->run();
}

Result<void> Index::remove_stored_backup(std::string_view id) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("DELETE FROM stored_backups WHERE id = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, id);
  return stmt->run();
}

Result<std::vector<StoredBackup>> Index::stored_backups() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT id, document FROM stored_backups ORDER BY id");
  if (!stmt) return std::unexpected(stmt.error());
  std::vector<StoredBackup> result;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto backup = parse_backup_info(stmt->column_text(1), "index row " + stmt->column_text(0));
    if (!backup) return std::unexpected(backup.error());
    result.push_back(std::move(*backup));
  }
  return result;
}

Result<std::optional<StoredBackup>> Index::stored_backup(std::string_view id) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT document FROM stored_backups WHERE id = ?1");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, id);
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<StoredBackup>();
  auto backup = parse_backup_info(stmt->column_text(0), "index row " + std::string(id));
  if (!backup) return std::unexpected(backup.error());
  return std::optional<StoredBackup>(std::move(*backup));
}

Result<IndexTotals> Index::totals() {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare("SELECT kind, count(*), coalesce(sum(plain_size), 0), coalesce(sum(stored_size), 0) FROM objects GROUP BY kind");
  if (!stmt) return std::unexpected(stmt.error());
  IndexTotals totals;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    const auto count = static_cast<std::uint64_t>(stmt->column_int(1));
    switch (kind_from(stmt->column_text(0))) {
      case WalFileKind::segment: totals.segments = count; break;
      case WalFileKind::partial: totals.partials = count; break;
      case WalFileKind::history: totals.histories = count; break;
      case WalFileKind::backup: totals.backups = count; break;
    }
    totals.plain_bytes += static_cast<std::uint64_t>(stmt->column_int(2));
    totals.stored_bytes += static_cast<std::uint64_t>(stmt->column_int(3));
  }
  return totals;
}

Result<std::optional<Index::Carry>> Index::carry(std::uint32_t timeline, std::uint64_t segno) {
  std::lock_guard lock(m_mutex);
  auto stmt = m_db.prepare(
      "SELECT carry, carry_lsn FROM objects WHERE kind = 'segment' AND timeline = ?1 AND segno = ?2 AND carry IS NOT NULL");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, std::int64_t{timeline}).bind(2, i64(segno));
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<Carry>();
  return std::optional<Carry>(Carry{stmt->column_blob(0), static_cast<std::uint64_t>(stmt->column_int(1))});
}

}  // namespace walvault
