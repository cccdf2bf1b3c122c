#include "common/core/pgdata.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "common/base/fd.hpp"
#include "common/base/text.hpp"
#include "common/core/repository.hpp"

namespace walvault {

Result<PostmasterInfo> read_postmaster_pid(const std::string& pgdata) {
  const std::string path = pgdata + "/postmaster.pid";
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    if (err == ENOENT)
      return fail(ErrorKind::invalid, "PostgreSQL is not running on pgdata '" + pgdata + "' (no postmaster.pid)");
    return fail(ErrorKind::io, os_error_text("read", path, err) + " (walvaultd needs to read postmaster.pid to find the server)");
  }
  std::vector<std::string> lines;
  for (std::string line; lines.size() < 7 && std::getline(in, line);) lines.push_back(line);
  if (lines.size() < 5)
    return fail(ErrorKind::invalid, "'" + path + "' has " + std::to_string(lines.size()) +
                                        " lines, not the 5 or more a running PostgreSQL 10+ writes (is the server still starting?)");
  PostmasterInfo info;
  const std::string port(trim_blanks(lines[3]));
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), info.port);
  if (ec != std::errc() || ptr != port.data() + port.size() || info.port <= 0 || info.port > 65535)
    return fail(ErrorKind::invalid, "'" + path + "' line 4 is not a port: '" + port.substr(0, 40) + "'");
  info.socket_directory = std::string(trim_blanks(lines[4]));
  if (lines.size() > 5) info.listen_address = std::string(trim_blanks(lines[5]));
  if (info.socket_directory.empty() && info.listen_address.empty())
    return fail(ErrorKind::invalid, "the server of pgdata '" + pgdata + "' listens on neither a Unix socket nor TCP (" + path + ")");
  return info;
}

Result<std::uint64_t> read_system_identifier(const std::string& pgdata) {
  const std::string path = pgdata + "/global/pg_control";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_os("open", path, errno);
  std::uint64_t id = 0;
  ssize_t n;
  while ((n = ::pread(fd.get(), &id, sizeof id, 0)) < 0 && errno == EINTR) {
  }
  if (n < 0) return fail_os("read", path, errno);
  if (n != static_cast<ssize_t>(sizeof id)) return fail(ErrorKind::invalid, "'" + path + "' is too short to be pg_control");
  return id;
}

Result<UserIdentity> owner_of(const std::string& pgdata) {
  struct stat st {};
  if (::stat(pgdata.c_str(), &st) != 0) return fail_os("inspect pgdata", pgdata, errno);
  if (!S_ISDIR(st.st_mode)) return fail(ErrorKind::invalid, "pgdata '" + pgdata + "' is not a directory");
  UserIdentity owner = identity_of_uid(st.st_uid);
  if (owner.groups.empty()) owner.groups.push_back(st.st_gid);
  return owner;
}

Result<void> check_pgdata_cluster(const std::string& pgdata, const Repository& repository) {
  auto id = read_system_identifier(pgdata);
  if (!id) return std::unexpected(id.error());
  const auto expected = repository.system_identifier();
  if (expected && *expected != *id)
    return fail(ErrorKind::refused, "pgdata '" + pgdata + "' is the cluster with system identifier " + std::to_string(*id) +
                                        ", but repository '" + repository.describe() + "' holds WAL of " +
                                        std::to_string(*expected) + ": point pgdata at the cluster this repository archives");
  return {};
}

}  // namespace walvault
