#include "restorer/backup_server.hpp"

#include <charconv>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/client_output.hpp"
#include "common/core/object_store.hpp"

namespace walvault {

namespace {

constexpr std::chrono::milliseconds k_restore_stream_idle_limit{300 * 1000};

}  // namespace

void BackupReads::register_handlers(HandlerRegistry& registry) {
  registry.register_handler("BACKUP-READ", [this](Request& r) { return read_chunk(r); }, Lane::long_running);
}

protocol::Message BackupReads::read_chunk(Request& request) {
  if (!request.fd) return protocol::error({ErrorKind::invalid, "BACKUP-READ needs a pipe passed with the request"});
  const std::string id(request.message.field("id").value_or(""));
  const std::string_view number_text = request.message.field("chunk").value_or("");
  std::size_t number = 0;
  if (!is_valid_backup_id(id)) return protocol::error({ErrorKind::invalid, "BACKUP-READ: bad backup id '" + id + "'"});
  if (std::from_chars(number_text.data(), number_text.data() + number_text.size(), number).ec != std::errc() || number == 0)
    return protocol::error({ErrorKind::invalid, "BACKUP-READ: bad chunk number '" + std::string(number_text) + "'"});
  // Every failure below closes the pipe first, so the client's reader sees EOF at once.
  auto refuse = [&](Failure failure) {
    request.fd.reset();
    return protocol::error(failure);
  };
  auto found = m_index.stored_backup(id);
  if (!found) return refuse(found.error());
  if (!*found) return refuse({ErrorKind::not_found, "no stored backup '" + id + "' (see walvault list --backups)"});
  const StoredBackup* backup = &**found;
  if (number > backup->chunks.size())
    return refuse({ErrorKind::invalid, "backup " + id + " has " + std::to_string(backup->chunks.size()) + " chunks, not " +
                                                    std::to_string(number)});
  const BackupChunk& chunk = backup->chunks[number - 1];
  auto reader = m_repository.objects().open_listed(chunk.key, ReadChecks::expecting(chunk.sha256));
  if (!reader) {
    spdlog::error("backup {} chunk {}: {}", id, number, reader.error().message);
    // A chunk backup.json lists but storage lacks is corrupt (open_listed says so).
    return refuse({reader.error().kind, "backup " + id + " is damaged: " + reader.error().message});
  }
  std::vector<std::byte> buffer(1 << 20);
  std::uint64_t sent = 0;
  for (;;) {
    auto n = reader->read(buffer);
    if (!n) {
      spdlog::error("backup {} chunk {}: {}", id, number, n.error().message);
      return refuse(n.error());
    }
    if (*n == 0) break;
    if (m_rate_limit) m_rate_limit->acquire(*n);
    // Bounded: a restore client that stops reading must not hold a long-lane thread (or a
    // SIGTERM) forever; extraction stalls shorter than this are normal.
    if (auto r = write_client_output(request.fd.get(), std::span<const std::byte>(buffer.data(), *n), k_restore_stream_idle_limit,
                                     "the restore client's pipe");
        !r)
      return refuse(r.error());
    sent += *n;
  }
  request.fd.reset();  // EOF for the reader before the verdict
  ++m_served;
  return protocol::ok().set("bytes", std::to_string(sent)).set("sha256", chunk.sha256);
}

}  // namespace walvault
