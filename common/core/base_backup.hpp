#pragma once
// A base backup stored by walvault: its data as chunk objects (tar archives, encoded like every
// object), and its description, backup.json, written last. backup.json is the commit point: a
// backup without it never happened as far as restore, list and retention are concerned.
//   backup/<id>/chunk-00001.tar ...   the pg_basebackup tar stream, cut at entry boundaries
//   backup/<id>/backup.json           this structure (docs/repository-format.md)
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

struct BackupChunk {
  std::string key;
  std::uint64_t plain_size = 0;
  std::uint64_t stored_size = 0;
  std::string sha256;  // hex, of the plain tar bytes
  std::uint64_t entries = 0;
};

struct StoredBackup {
  std::string id;     // 20261124T093001Z: when walvault started it, UTC
  std::string label;
  std::uint32_t timeline = 0;
  std::uint64_t start_lsn = 0;
  std::uint64_t stop_lsn = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::string backup_file;  // the .backup history file PostgreSQL archived for it
  std::optional<std::int64_t> start_us;
  std::optional<std::int64_t> stop_us;
  std::int64_t started_at_us = 0;   // walvault's clock: pg_basebackup started
  std::int64_t finished_at_us = 0;  // walvault's clock: backup.json written
  std::uint64_t plain_bytes = 0;
  std::uint64_t stored_bytes = 0;
  std::uint64_t files = 0;
  bool has_manifest = false;        // backup_manifest is inside the data (pg_verifybackup)
  int pg_version = 0;
  std::uint64_t system_identifier = 0;
  std::vector<BackupChunk> chunks;
};

inline constexpr std::string_view k_backup_prefix = "backup";

bool is_valid_backup_id(std::string_view id);
std::string backup_id_for(std::int64_t unix_us);  // 20261124T093001Z
std::string backup_directory_key(std::string_view id);
std::string backup_info_key(std::string_view id);
std::string backup_chunk_key(std::string_view id, std::size_t number);  // number from 1

// Stored backups by the .backup file that makes them complete (pointers into `stored`).
std::map<std::string, const StoredBackup*> stored_by_backup_file(const std::vector<StoredBackup>& stored);

std::string render_backup_info(const StoredBackup& backup);
// ErrorKind::corrupt naming `what` when the document is not a valid backup.json.
Result<StoredBackup> parse_backup_info(std::string_view text, std::string_view what);

}  // namespace walvault
