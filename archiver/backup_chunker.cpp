#include "archiver/backup_chunker.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "common/core/sha256.hpp"

namespace walvault {

namespace {

// One chunk: a tar archive written by libarchive straight into an object being encoded.
class ChunkWriter {
 public:
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;
  ~ChunkWriter() {
    if (m_archive) archive_write_free(m_archive);
  }

  static Result<std::unique_ptr<ChunkWriter>> open(ObjectStore& objects, std::string key, const CompressSpec& spec) {
    auto object = objects.begin_put(key, spec, PutMode::create_only);
    if (!object) return std::unexpected(object.error());
    std::unique_ptr<ChunkWriter> chunk(new ChunkWriter(std::move(*object), std::move(key)));
    chunk->m_archive = archive_write_new();
    archive* a = chunk->m_archive;
    if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_set_bytes_per_block(a, 1 << 16) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, chunk.get(), nullptr, &ChunkWriter::write_callback, nullptr, nullptr) != ARCHIVE_OK)
      return fail(ErrorKind::internal, "unable to start tar chunk '" + chunk->m_key + "': " + chunk->archive_error());
    return chunk;
  }

  Result<void> write_header(archive_entry* entry) {
    if (archive_write_header(m_archive, entry) != ARCHIVE_OK) return failure("write entry header");
    ++m_entries;
    return {};
  }
  Result<void> write_data(const void* data, std::size_t size) {
    const la_ssize_t n = archive_write_data(m_archive, data, size);
    if (n < 0 || static_cast<std::size_t>(n) != size) return failure("write entry data");
    return {};
  }
  Result<void> finish_entry() {
    if (archive_write_finish_entry(m_archive) != ARCHIVE_OK) return failure("finish entry");
    return {};
  }
  // Ends the tar archive and makes the object durable.
  Result<BackupChunk> close() {
    if (archive_write_close(m_archive) != ARCHIVE_OK) return std::unexpected(failure("end tar archive").error());
    auto header = m_object.finish();
    if (!header) return std::unexpected(header.error());
    return BackupChunk{m_key, header->plain_size, m_object.stored_size(), to_hex(header->plain_sha256), m_entries};
  }
  std::uint64_t plain_size() const { return m_object.plain_size(); }

 private:
  ChunkWriter(ObjectPut object, std::string key) : m_object(std::move(object)), m_key(std::move(key)) {}

  static la_ssize_t write_callback(archive*, void* client, const void* buffer, size_t length) {
    auto* self = static_cast<ChunkWriter*>(client);
    if (auto r = self->m_object.append({static_cast<const std::byte*>(buffer), length}); !r) {
      self->m_storage_failure = r.error();
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }
  std::string archive_error() const {
    const char* text = m_archive ? archive_error_string(m_archive) : nullptr;
    return text ? text : "unknown libarchive error";
  }
  std::unexpected<Failure> failure(const std::string& what) {
    if (m_storage_failure) return std::unexpected(*m_storage_failure);
    return std::unexpected(Failure{ErrorKind::io, "unable to " + what + " in '" + m_key + "': " + archive_error()});
  }

  ObjectPut m_object;
  std::string m_key;
  archive* m_archive = nullptr;
  std::uint64_t m_entries = 0;
  std::optional<Failure> m_storage_failure;
};

class ArchiveReader {
 public:
  explicit ArchiveReader(int fd) : m_archive(archive_read_new()) {
    archive_read_support_format_tar(m_archive);
    m_open = archive_read_open_fd(m_archive, fd, 1 << 20) == ARCHIVE_OK;
  }
  ~ArchiveReader() { archive_read_free(m_archive); }
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;
  archive* get() const { return m_archive; }
  bool opened() const { return m_open; }
  std::string error() const {
    const char* text = archive_error_string(m_archive);
    return text ? text : "unknown libarchive error";
  }

 private:
  archive* m_archive;
  bool m_open = false;
};

Result<void> close_chunk(std::unique_ptr<ChunkWriter>& chunk, ChunkedTar& tar) {
  auto done = chunk->close();
  if (!done) return std::unexpected(done.error());
  tar.stored_bytes += done->stored_size;
  tar.chunks.push_back(std::move(*done));
  chunk.reset();
  return {};
}

}  // namespace

Result<ChunkedTar> store_tar_as_chunks(int tar_fd, ObjectStore& objects, const std::string& id, std::uint64_t chunk_size,
                                       const CompressSpec& compress, const ChunkerHooks& hooks) {
  ChunkedTar tar;
  auto progress = [&] {
    if (hooks.on_progress) hooks.on_progress(tar);
  };
  ArchiveReader reader(tar_fd);
  if (!reader.opened()) return fail(ErrorKind::io, "unable to read pg_basebackup's output: " + reader.error());
  std::unique_ptr<ChunkWriter> chunk;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    if (hooks.cancelled && hooks.cancelled()) return fail(ErrorKind::io, "cancelled (walvaultd is stopping)");
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(reader.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return fail(ErrorKind::io, "pg_basebackup's tar stream ended or broke: " + reader.error());
    if (!chunk) {
      auto opened = ChunkWriter::open(objects, backup_chunk_key(id, tar.chunks.size() + 1), compress);
      if (!opened) return std::unexpected(opened.error());
      chunk = std::move(*opened);
    }
    const std::string path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    if (path == "backup_manifest") tar.has_manifest = true;
    std::string* capture = path == "backup_label" ? &tar.backup_label : path == "PG_VERSION" ? &tar.pg_version : nullptr;
    if (auto r = chunk->write_header(entry); !r) return std::unexpected(r.error());
    if (archive_entry_filetype(entry) == AE_IFREG) ++tar.files;
    for (;;) {
      const la_ssize_t n = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (n < 0) return fail(ErrorKind::io, "pg_basebackup's tar stream broke in '" + path + "': " + reader.error());
      if (n == 0) break;
      if (hooks.throttle && !hooks.throttle(static_cast<std::uint64_t>(n))) return fail(ErrorKind::io, "cancelled (walvaultd is stopping)");
      if (auto r = chunk->write_data(buffer.data(), static_cast<std::size_t>(n)); !r) return std::unexpected(r.error());
      if (capture && capture->size() < 65536) capture->append(buffer.data(), static_cast<std::size_t>(std::min<la_ssize_t>(n, 65536)));
      tar.plain_bytes += static_cast<std::uint64_t>(n);
      progress();
    }
    if (auto r = chunk->finish_entry(); !r) return std::unexpected(r.error());
    if (chunk->plain_size() >= chunk_size) {
      if (auto r = close_chunk(chunk, tar); !r) return std::unexpected(r.error());
      progress();
    }
  }
  if (chunk)
    if (auto r = close_chunk(chunk, tar); !r) return std::unexpected(r.error());
  return tar;
}

}  // namespace walvault
