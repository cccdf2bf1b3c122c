#pragma once
// Stores a base backup's tar stream as chunk objects: libarchive reads the stream entry by
// entry and writes each entry into the current chunk, itself a tar archive encoded straight
// into an object; a chunk is closed once it holds `chunk_size` bytes (at an entry boundary),
// so memory stays bounded whatever the cluster's size and restore can fetch chunks in
// parallel. It keeps what the backup's description needs from the stream on the way.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/base_backup.hpp"
#include "common/core/codec.hpp"
#include "common/core/object_store.hpp"

namespace walvault {

struct ChunkedTar {
  std::vector<BackupChunk> chunks;
  std::uint64_t files = 0;         // regular files
  std::uint64_t plain_bytes = 0;   // file data read
  std::uint64_t stored_bytes = 0;  // all chunks, encoded
  bool has_manifest = false;       // a backup_manifest entry was in the stream
  std::string backup_label;        // the backup_label entry's text (at most 64 KiB)
  std::string pg_version;          // the PG_VERSION entry's text
};

struct ChunkerHooks {
  // Called as data is read, and again after each chunk is closed.
  std::function<void(const ChunkedTar&)> on_progress;
  // Asked before each entry; true stops with ErrorKind::io "cancelled".
  std::function<bool()> cancelled;
  // backup-rate-limit: called with each piece's size before it is read on; may wait (and so
  // slow pg_basebackup's stream). false: cancelled while it waited.
  std::function<bool(std::uint64_t bytes)> throttle;
};

// Reads the tar stream on `tar_fd` to its end and stores it as the chunks of backup `id`.
// On failure the chunks stored so far stay (the caller removes the backup's directory).
Result<ChunkedTar> store_tar_as_chunks(int tar_fd, ObjectStore& objects, const std::string& id, std::uint64_t chunk_size,
                                       const CompressSpec& compress, const ChunkerHooks& hooks);

}  // namespace walvault
