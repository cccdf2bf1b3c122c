#include "common/core/indexer.hpp"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/backup_file.hpp"
#include "common/core/object_store.hpp"
#include "common/core/timeline_history.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_page.hpp"
#include "common/core/wal_records.hpp"

namespace walvault {

namespace {

// A row that records an object the index cannot describe from its content: one that exists
// but cannot be decoded (k_unreadable_sha256) or one that was archived and is gone
// (k_missing_sha256). Either way the name answers contains(), so it is never "not there".
IndexedObject marker_row(const WalName& name, std::string_view marker, std::uint64_t stored_size, std::int64_t stored_at_us) {
  IndexedObject object;
  object.name = format_wal_name(name);
  object.kind = name.kind;
  object.timeline = name.timeline;
  object.stored_size = stored_size;
  object.stored_at_us = stored_at_us;
  object.sha256 = std::string(marker);
  return object;
}

}  // namespace

Result<void> Indexer::index_pushed(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest,
                                   std::optional<std::uint32_t> key_id) {
  auto info = m_repository.objects().info(object_key(name));
  if (!info) return std::unexpected(info.error());
  if (!*info)
    return fail(ErrorKind::io, "'" + format_wal_name(name) + "' was stored in repository '" + m_repository.describe() +
                                   "' and is gone right after: is something else deleting from it?");
  return index_plain(name, plain, digest, (*info)->size, (*info)->modified_us, key_id);
}

Result<void> Indexer::index_plain(const WalName& name, std::span<const std::byte> plain, const Sha256Digest& digest,
                                  std::uint64_t stored_size, std::int64_t stored_at_us, std::optional<std::uint32_t> key_id) {
  const std::string file_name = format_wal_name(name);
  IndexedObject object;
  object.name = file_name;
  object.kind = name.kind;
  object.timeline = name.timeline;
  object.plain_size = plain.size();
  object.stored_size = stored_size;
  object.sha256 = to_hex(digest);
  object.stored_at_us = stored_at_us;
  object.key_id = key_id;
  std::vector<std::byte> carry;
  std::uint64_t carry_lsn = 0;

  switch (name.kind) {
    case WalFileKind::segment:
    case WalFileKind::partial: {
      auto header = read_long_page_header(plain, file_name);
      if (!header) return std::unexpected(header.error());
      object.segment_size = header->segment_size;
      object.segno = segment_number(name, header->segment_size);
      std::optional<Index::Carry> previous;
      if (object.segno > 0) {
        auto found = carry_before(name.timeline, object.segno);
        if (!found) return std::unexpected(found.error());
        previous = std::move(*found);
      }
      auto scan = scan_segment(plain, previous ? std::span<const std::byte>(previous->bytes) : std::span<const std::byte>{},
                               previous ? previous->lsn : 0, file_name);
      if (!scan) return std::unexpected(scan.error());
      if (scan->first_xact_time) object.first_xact_us = unix_us_from_postgres(*scan->first_xact_time);
      if (scan->last_xact_time) object.last_xact_us = unix_us_from_postgres(*scan->last_xact_time);
      object.xact_count = scan->xact_records;
      if (name.kind == WalFileKind::segment) {
        carry = std::move(scan->carry);
        carry_lsn = scan->carry_lsn;
      }
      break;
    }
    case WalFileKind::history: {
      auto entries = parse_timeline_history(as_text(plain), name.timeline, file_name);
      if (!entries) return std::unexpected(entries.error());
      if (!entries->empty()) {
        const auto& last = entries->back();
        if (auto r = m_index.put_timeline({name.timeline, last.parent, last.switch_lsn, last.reason}); !r) return r;
      }
      break;
    }
    case WalFileKind::backup: {
      auto backup = parse_backup_history(as_text(plain), file_name);
      if (!backup) return std::unexpected(backup.error());
      IndexedBackup row;
      row.name = file_name;
      row.timeline = backup->start_timeline ? backup->start_timeline : name.timeline;
      row.start_lsn = backup->start_lsn;
      row.stop_lsn = backup->stop_lsn;
      row.checkpoint_lsn = backup->checkpoint_lsn;
      row.label = backup->label;
      row.start_us = backup->start_us;
      // PostgreSQL writes these times with the server's zone abbreviation (e.g. CET), which
      // cannot be read unambiguously; the .backup file is archived as the backup ends, so its
      // stored time stands in for the stop time.
      row.stop_us = backup->stop_us ? backup->stop_us : std::optional<std::int64_t>(stored_at_us);
      if (auto r = m_index.put_backup(row); !r) return r;
      break;
    }
  }
  return m_index.put_object(object, carry, carry_lsn);
}

// The record left unfinished at the end of segment `segno - 1`: on this timeline, or, for the
// first segment of a timeline (which starts as a copy of its parent's), on the nearest
// ancestor that has that segment.
Result<std::optional<Index::Carry>> Indexer::carry_before(std::uint32_t timeline, std::uint64_t segno) {
  auto timelines = m_index.timelines();
  if (!timelines) return std::unexpected(timelines.error());
  std::set<std::uint32_t> seen;
  for (std::uint32_t current = timeline; current != 0 && seen.insert(current).second;) {
    auto found = m_index.carry(current, segno - 1);
    if (!found || *found) return found;
    std::uint32_t parent = 0;
    for (const auto& t : *timelines)
      if (t.timeline == current) parent = t.parent;
    current = parent;
  }
  return std::optional<Index::Carry>();
}

namespace {

// The objects of a listing that are WAL files at their own key (strays are ignored), by name.
std::set<std::string> wal_names_in(const std::vector<ObjectInfo>& objects) {
  std::set<std::string> names;
  for (const auto& info : objects) {
    const std::string file_name(base_name(info.key));
    auto name = parse_wal_name(file_name);
    if (name && object_key(*name) == info.key) names.insert(file_name);
  }
  return names;
}

}  // namespace

Result<RepairReport> Indexer::repair() {
  // The index is read before the repository is listed: a push landing in between is then in
  // the listing (and re-indexed, harmlessly) but never in the snapshot of names to judge.
  auto known = m_index.names(true);
  if (!known) return std::unexpected(known.error());
  auto objects = m_repository.objects().list("wal");
  if (!objects) return std::unexpected(objects.error());
  return repair_from(*known, std::move(*objects), nullptr);
}

Result<RepairReport> Indexer::rebuild() {
  m_index.set_trusted(false);
  // What the index knew is kept aside: an object it listed that the repository no longer has
  // is reported lost (and stays recorded as such), never silently dropped with the rows. Only
  // those rows are saved (names for the rest), so memory stays small on a large archive; the
  // same listing then drives the rebuild, so nothing can vanish between the two.
  auto known = m_index.names(true);
  if (!known) return std::unexpected(known.error());
  auto objects = m_repository.objects().list("wal");
  if (!objects) return std::unexpected(objects.error());
  const std::set<std::string> stored = wal_names_in(*objects);
  std::map<std::string, IndexedObject> vanished;
  for (const auto& name : *known) {
    if (stored.contains(name)) continue;
    auto row = m_index.find(name);
    if (!row) return std::unexpected(row.error());
    if (*row) vanished.emplace(name, std::move(**row));
  }
  if (auto r = m_index.clear(); !r) return std::unexpected(r.error());
  return repair_from(*known, std::move(*objects), &vanished);
}

// `known`: the names the index held before `objects` was listed; `cleared`: after rebuild()
// cleared the index, the saved rows of those whose object is gone (objects found gone while
// indexing are added). Rows of unreadable or missing objects are retried each time (the object
// may have been replaced by a good copy).
Result<RepairReport> Indexer::repair_from(const std::vector<std::string>& known, std::vector<ObjectInfo> objects,
                                          std::map<std::string, IndexedObject>* cleared) {
  RepairReport report;
  const std::uint64_t failures_before = m_index.failures();
  auto current = m_index.names(false);
  if (!current) return std::unexpected(current.error());
  std::set<std::string> indexed(current->begin(), current->end());
  std::set<std::string> present;

  // Timeline histories first (a new timeline's first segment continues its parent's record),
  // then segments in (timeline, segment) order, as list() sorts them, so each walk can pick up
  // the record its predecessor left unfinished.
  std::stable_partition(objects.begin(), objects.end(),
                        [](const ObjectInfo& info) { return info.key.starts_with("wal/history/"); });
  for (const auto& info : objects) {
    const std::string file_name(base_name(info.key));
    auto name = parse_wal_name(file_name);
    if (!name || object_key(*name) != info.key) continue;  // not ours (a stray file): ignore
    present.insert(file_name);
    if (indexed.contains(file_name)) continue;
    auto opened = m_repository.objects().read(info.key, ReadChecks::named(m_repository.describe() + "/" + info.key));
    if (opened && !*opened) {  // deleted since the listing: judged with the rest below
      present.erase(file_name);
      if (cleared) cleared->emplace(file_name, marker_row(*name, k_missing_sha256, info.size, info.modified_us));
      continue;
    }
    Result<void> indexed_ok = opened ? index_plain(*name, (*opened)->plain, (*opened)->header.plain_sha256, info.size, info.modified_us,
                                                 (*opened)->header.cipher ? (*opened)->header.key_id : 0)
                                     : Result<void>(std::unexpected(opened.error()));
    if (!indexed_ok) {
      // The object exists but cannot be read: record that it exists, so "not in the index"
      // never turns into "not in the archive" for it (archive-get then reports it corrupt).
      spdlog::error("index repair: unable to index '{}': {}", info.key, indexed_ok.error().message);
      ++report.unreadable;
      if (auto r = m_index.put_object(marker_row(*name, k_unreadable_sha256, info.size, info.modified_us)); !r) return std::unexpected(r.error());
      continue;
    }
    ++report.added;
  }
  if (auto r = record_lost(known, present, cleared, report); !r) return std::unexpected(r.error());
  if (auto r = repair_stored_backups(report); !r) return std::unexpected(r.error());
  // Every object the repository holds is now in the index (or recorded as unreadable, which
  // `verify` reports), and every object it lost is recorded as missing: "not in the index"
  // means "never archived" again, unless an index write failed while this repair ran.
  if (m_index.failures() == failures_before) m_index.set_trusted(true);
  return report;
}

// Rows whose object is gone: dropped when retention removed it (a prune interrupted between
// its steps), otherwise kept as "missing" so the name is answered as lost, not as never archived.
Result<void> Indexer::record_lost(const std::vector<std::string>& known, const std::set<std::string>& present,
                                  const std::map<std::string, IndexedObject>* cleared, RepairReport& report) {
  for (const auto& name : known) {
    if (present.contains(name)) continue;
    auto pruned = m_index.was_pruned(name);
    if (!pruned) return std::unexpected(pruned.error());
    if (*pruned) {
      if (auto r = m_index.remove_object(name); !r) return r;
      ++report.removed;
      continue;
    }
    if (cleared) {
      // rebuild() emptied the index: the row comes back from what was saved (a row is never
      // dropped here, whatever the listing said, or the name would read as never archived).
      auto saved = cleared->find(name);
      auto parsed = parse_wal_name(name);
      if (saved == cleared->end() && !parsed) continue;  // not a WAL name: nothing to answer for
      IndexedObject lost = saved != cleared->end() ? saved->second : marker_row(*parsed, k_missing_sha256, 0, 0);
      lost.sha256 = std::string(k_missing_sha256);
      if (auto r = m_index.put_object(lost); !r) return r;
    } else if (auto r = m_index.mark_missing(name); !r) {
      return r;
    }
    if (report.lost_names.size() < k_lost_names_reported) report.lost_names.push_back(name);
    ++report.lost_count;
  }
  if (report.lost_count)
    spdlog::error("{} object(s) the index listed as archived are missing from repository '{}' (first: {}): they are "
                  "reported as lost, never as 'not there'; restore them from a copy, or take a new base backup",
                  report.lost_count, m_repository.describe(), report.lost_names.front());
  return {};
}

// Base backups: a backup.json in the repository is a stored backup; its chunks are listed in it
// and need no rows of their own. A backup directory without one is a backup that never
// finished (retention sweeps those).
Result<void> Indexer::repair_stored_backups(RepairReport& report) {
  auto indexed = m_index.stored_backups();
  if (!indexed) return std::unexpected(indexed.error());
  auto objects = m_repository.objects().list(std::string(k_backup_prefix));
  if (!objects) return std::unexpected(objects.error());
  std::set<std::string> known, present;
  for (const auto& b : *indexed) known.insert(b.id);
  for (const auto& info : *objects) {
    const std::string_view key = info.key;
    if (base_name(key) != "backup.json") continue;
    const std::string id(base_name(parent_directory(key)));
    if (!is_valid_backup_id(id) || info.key != backup_info_key(id)) continue;
    present.insert(id);
    if (known.contains(id)) continue;
    auto opened = m_repository.objects().read(info.key, ReadChecks::named(m_repository.describe() + "/" + info.key));
    if (opened && !*opened) {  // deleted since the listing (a prune removing the backup)
      present.erase(id);
      continue;
    }
    Result<StoredBackup> backup = opened ? parse_backup_info(as_text((*opened)->plain), info.key)
                                         : Result<StoredBackup>(std::unexpected(opened.error()));
    if (!backup || backup->id != id) {
      spdlog::error("index repair: unable to index backup '{}': {}", info.key,
                    backup ? "its id does not match its directory" : backup.error().message);
      ++report.unreadable;
      continue;
    }
    if (auto r = m_index.put_stored_backup(*backup); !r) return r;
    ++report.added;
  }
  for (const auto& id : known) {
    if (present.contains(id)) continue;
    if (auto r = m_index.remove_stored_backup(id); !r) return r;
    ++report.removed;
  }
  return {};
}

}  // namespace walvault
