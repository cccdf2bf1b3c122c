#include "restorer/fetch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/object_format.hpp"
#include "common/core/wal_checks.hpp"

namespace walvault {

Result<std::uint64_t> Fetch::get(std::string_view file_name, int out_fd, bool exact) {
  auto name = parse_wal_name(file_name);
  if (!name)
    return fail(ErrorKind::invalid, "'" + std::string(file_name).substr(0, 80) +
                                        "' is not a WAL file name (segment, .history, .partial or .backup)");
  if (out_fd < 0) return fail(ErrorKind::invalid, "no file descriptor was passed with the request for '" + std::string(file_name) + "'");
  struct stat st {};
  if (::fstat(out_fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(ErrorKind::invalid, "the descriptor passed for '" + std::string(file_name) + "' is not a regular file");

  if (!exact && m_index && m_index->trusted()) {
    auto known = m_index->contains(file_name);
    if (known && !*known) return fail(ErrorKind::not_found, "'" + std::string(file_name) + "' is not in the archive");
    // An index error falls through to storage: never answer "not there" on a guess.
  }
  const std::string key = object_key(*name);
  auto stored = m_repository.storage().get(key);
  if (!stored) {
    if (stored.error().kind == ErrorKind::not_found)
      return fail(ErrorKind::not_found, "'" + std::string(file_name) + "' is not in the archive");
    return std::unexpected(stored.error());
  }
  auto opened = open_object(*stored, m_repository.describe() + "/" + key);
  if (!opened) return std::unexpected(opened.error());
  // The content passed its checksum; prove it is also the WAL its name says, of this cluster.
  if (auto r = check_wal_content(m_repository, opened->plain, *name, file_name); !r)
    return fail(ErrorKind::corrupt, "stored object '" + m_repository.describe() + "/" + key +
                                        "' fails verification: " + r.error().message);

  if (::ftruncate(out_fd, 0) != 0) return fail_os("truncate output for", file_name, errno);
  if (auto r = pwrite_all(out_fd, opened->plain, 0, file_name); !r) return std::unexpected(r.error());
  return static_cast<std::uint64_t>(opened->plain.size());
}

protocol::Message Fetch::handle(Request& request) {
  const std::string name(request.message.argument());
  const bool exact = request.message.field("mode") != std::optional<std::string_view>("recovery");
  auto size = get(name, request.fd.get(), exact);
  request.fd.reset();
  if (!size) {
    if (size.error().kind == ErrorKind::not_found) {
      spdlog::debug("{} requested, not in the archive", name.substr(0, 80));
      return protocol::not_found(size.error().message);
    }
    spdlog::error("get of '{}' failed: {}", name.substr(0, 80), size.error().message);
    return protocol::error(size.error());
  }
  ++m_served;
  spdlog::info("restored {} ({} bytes)", name, *size);
  protocol::Message response = protocol::ok();
  response.set("size", std::to_string(*size));
  return response;
}

}  // namespace walvault
