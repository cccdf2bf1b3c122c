#pragma once
// Starting the PostgreSQL programs walvault runs (pg_basebackup in walvaultd, pg_verifybackup in
// `walvault restore`): one way to spawn them, so each gets the same hygiene.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

// Who the child runs as, when not as this process (a root walvaultd runs pg_basebackup as the
// owner of PGDATA, so that peer authentication sees the cluster's own user).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

struct SpawnOptions {
  // NAME=VALUE entries that replace (or add to) the inherited environment: how a password
  // reaches libpq (PGPASSWORD) without ever being on a command line. With run_as, only PATH,
  // LANG, LC_* and TZ are inherited besides these.
  std::vector<std::string> environment;
  std::optional<RunAs> run_as;
  int stdin_fd = -1;  // the child's stdin; -1: /dev/null
  bool new_process_group = false;  // the child leads a process group of its own (kill(-pid) reaches its children)
};

// Starts argv[0] (a path) with stdin from /dev/null (or options.stdin_fd), stdout and stderr on the given descriptors,
// no other descriptor inherited (Asio's sockets are not close-on-exec), and SIGPIPE back at its
// default (the daemon ignores it; a child whose reader vanished must end).
Result<pid_t> spawn_process(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd,
                            const SpawnOptions& options = {});

// Waits for `pid` to exit (retrying EINTR) and returns its wait status.
int wait_process(pid_t pid);

// Reads `fd` to its end, keeping at most `limit` bytes (the rest is read and dropped, so the
// writer never blocks or sees EPIPE).
std::string read_to_end(int fd, std::size_t limit);

// A program run to its end: its wait status and what it printed (stdout and stderr together,
// at most the limit given).
struct ProgramRun {
  int status = -1;
  std::string output;
  bool ok() const;  // exited 0
};
// spawn_process + read_to_end + wait_process: for programs that end by themselves (pg_ctl,
// psql, pg_verifybackup); the caller bounds them (their own timeouts).
Result<ProgramRun> run_program(const std::vector<std::string>& argv, const SpawnOptions& options = {}, std::size_t limit = 64 * 1024);

// The directory of the running executable (/proc/self/exe), where walvault's other programs
// are installed beside it; "" when it cannot be read.
std::string executable_directory();

}  // namespace walvault
