#pragma once
// What walvaultd reads from the data directory of the PostgreSQL it serves (the `pgdata`
// option): where the running server listens (postmaster.pid), which cluster it is
// (global/pg_control) and who owns it. Read each time it is needed: a restarted server may
// listen elsewhere.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/path_access.hpp"

namespace walvault {

struct PostmasterInfo {
  int port = 0;
  std::string socket_directory;  // the first of unix_socket_directories; empty when none
  std::string listen_address;    // the first of listen_addresses; empty when none
};

// Lines 4 to 6 of PGDATA/postmaster.pid (PostgreSQL 10 and later). A missing file means the
// server is not running: ErrorKind::invalid saying so.
Result<PostmasterInfo> read_postmaster_pid(const std::string& pgdata);

// The system identifier: the first 8 bytes of PGDATA/global/pg_control (native byte order, as
// PostgreSQL writes them).
Result<std::uint64_t> read_system_identifier(const std::string& pgdata);

// The user owning PGDATA: the cluster's own OS user (groups.front() is its primary group).
Result<UserIdentity> owner_of(const std::string& pgdata);

class Repository;
// pgdata must be the cluster whose WAL the repository holds (once it holds any):
// ErrorKind::refused naming both system identifiers otherwise.
Result<void> check_pgdata_cluster(const std::string& pgdata, const Repository& repository);

}  // namespace walvault
