#pragma once
// How walvaultd reaches the PostgreSQL it backs up, from (first that is set wins):
//   1. walvaultd's pg-conninfo;
//   2. `walvault backup -d CONNINFO`, then the caller's PGHOST/PGPORT/PGUSER/PGDATABASE;
//   3. walvaultd's pgdata: host and port from PGDATA/postmaster.pid, user = PGDATA's owner.
// Parts of 2 and 3 combine the way libpq combines them (the connection string over the
// environment), so `-d 'dbname=x'` with pgdata still finds the server. A password never goes
// on pg_basebackup's command line: it is cut out of the connection string and handed over as
// PGPASSWORD in the child's environment. A root walvaultd never runs pg_basebackup as root for
// someone else: with the caller's parameters it runs as the caller (its ~/.pgpass, its
// certificates), with pgdata's alone as the cluster's owner.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/process.hpp"

namespace walvault {

struct CallerConnection {
  uid_t uid = 0;                                             // the caller (SO_PEERCRED)
  std::string dbname;                                        // -d/--dbname; may be empty
  std::vector<std::pair<std::string, std::string>> environment;  // of protocol::k_backup_caller_variables
};

struct PgConnection {
  std::string dbname;                    // pg_basebackup --dbname, password removed; may be empty
  std::vector<std::string> environment;  // NAME=VALUE for the child (PGHOST, ..., PGPASSWORD)
  std::optional<RunAs> run_as;           // a root walvaultd runs pg_basebackup as the caller or PGDATA's owner
  std::string source;                    // where the connection came from, safe to show
};

struct ConninfoParts {
  std::string conninfo;  // without the password
  std::string password;  // empty when there was none
  bool malformed = false;  // an item that is not key=value (libpq would refuse the string)
};
// Cuts `password` out of a libpq connection string (key=value form, values quoted or not) or
// URI (postgresql://user:secret@host/db?password=...).
ConninfoParts split_password(std::string_view conninfo);

Result<PgConnection> choose_connection(const std::string& daemon_conninfo, const std::string& pgdata,
                                       const CallerConnection& caller, uid_t daemon_uid);

}  // namespace walvault
