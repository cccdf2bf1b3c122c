#pragma once
// pg_basebackup as a child of walvaultd: tar format on its stdout (-X none: the WAL a backup
// needs arrives through archive_command like all other WAL), -P progress and messages on its
// stderr, read on a thread of their own. The child is reaped on every path, and a signal is
// never sent to a pid that may have been reused.
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "archiver/backup_connection.hpp"
#include "common/base/error.hpp"
#include "common/base/fd.hpp"

namespace walvault {

struct PgBasebackupOptions {
  std::string bindir;  // where pg_basebackup is
  std::string checkpoint = "fast";
  std::string label;
  PgConnection connection;
};

class PgBasebackup {
 public:
  // Starts it; `on_estimate` gets the size pg_basebackup expects (bytes) whenever it says.
  static Result<std::unique_ptr<PgBasebackup>> start(const PgBasebackupOptions& options,
                                                     std::function<void(std::uint64_t)> on_estimate);
  ~PgBasebackup();  // stops and reaps a child still running
  PgBasebackup(const PgBasebackup&) = delete;
  PgBasebackup& operator=(const PgBasebackup&) = delete;

  // The tar stream.
  int tar_fd() const { return m_out.get(); }
  // From any thread: SIGTERM, unless the child was already reaped.
  void terminate();
  // After the tar stream ended: reaps the child; an error naming its exit status and what it
  // said unless it exited 0.
  Result<void> finish();
  // Our side failed (`ours`): gives the child a moment to exit on its own, stops and reaps it,
  // and returns the failure worth reporting. When pg_basebackup exited with an error, its own
  // words are the cause and ours ("unrecognized archive format") only the symptom.
  Failure explain(Failure ours);

 private:
  class StderrReader;
  PgBasebackup(pid_t pid, UniqueFd out, std::unique_ptr<StderrReader> messages);
  // Waits for the child to exit (blocking or not) and reaps it; true once it is reaped.
  bool collect(bool block);

  pid_t m_pid;
  UniqueFd m_out;
  std::unique_ptr<StderrReader> m_messages;
  std::mutex m_mutex;  // m_reaped: set before the pid is released, read by terminate()
  bool m_reaped = false;
  int m_status = 0;
};

}  // namespace walvault
